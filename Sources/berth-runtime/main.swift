// berth-runtime: an OCI runtime with runc's command line.
#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Runtime

nonisolated let globalFlags = [
    FlagSpec("root", value: true), FlagSpec("log", value: true), FlagSpec("log-format", value: true),
    FlagSpec("debug"), FlagSpec("systemd-cgroup"), FlagSpec("criu", value: true), FlagSpec("rootless", value: true),
    FlagSpec("help", "h"), FlagSpec("version", "v"),
]

struct Context {
    let runtime: Runtime
    let args: [String]
    let systemdCgroup: Bool
}

typealias Command = (Context) throws -> Int32

func command(named name: String) -> Command? {
    switch name {
    case "create": createCommand
    case "start": startCommand
    case "run": runCommand
    case "state": stateCommand
    case "list": listCommand
    case "kill": killCommand
    case "delete": deleteCommand
    case "exec": execCommand
    case "ps": psCommand
    case "features": featuresCommand
    case "spec": specCommand
    case "pause": pauseCommand
    case "resume": resumeCommand
    case "update": updateCommand
    case "events": eventsCommand
    default: nil
    }
}

nonisolated let usage = """
    usage: berth-runtime [global options] COMMAND [options] [args]

    commands: create start run state list kill delete exec ps features spec pause resume
    global options: --root DIR (default /run/berth/runtime) --log FILE --log-format text|json --debug --systemd-cgroup

    """

func fail(_ message: String) -> Never {
    Log.error(message)
    if !Log.toStderr { writeStderr(message + "\n") }
    exit(1)
}

func writeStderr(_ s: String) {
    var b = Array(s.utf8)
    _ = b.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

func writeStdout(_ s: String) {
    var b = Array(s.utf8)
    var off = 0
    while off < b.count {
        let n = b.withUnsafeMutableBytes { write(1, $0.baseAddress! + off, $0.count - off) }
        if n <= 0 { if errno == EINTR { continue }; break }
        off += n
    }
}

func main() -> Int32 {
    let argv = Array(CommandLine.arguments.dropFirst())
    var split = 0
    // global flags: up to the command name
    var i = 0
    while i < argv.count {
        let a = argv[i]
        if !a.hasPrefix("-") { break }
        let name = String(a.drop(while: { $0 == "-" }).prefix(while: { $0 != "=" }))
        if let f = globalFlags.first(where: { $0.names.contains(name) }), f.takesValue, !a.contains("=") { i += 1 }
        i += 1
    }
    split = i
    let global: ParsedArgs
    do { global = try parseArgs(Array(argv[..<min(split, argv.count)]), flags: globalFlags) } catch {
        writeStderr(error.message + "\n")
        return 1
    }
    let format: Log.Format = global.string("log-format") == "json" ? .json : .text
    if let f = global.string("log-format"), f != "json" && f != "text" {
        writeStderr("invalid log-format: \(f)\n")
        return 1
    }
    if let err = Log.configure(path: global.string("log"), format: format, debug: global.bool("debug")) {
        writeStderr(err + "\n")
        return 1
    }
    if global.bool("version") {
        writeStdout("berth-runtime version 0.1.0\nspec: 1.2.0\n")
        return 0
    }
    guard split < argv.count else {
        writeStdout(usage)
        return global.bool("help") ? 0 : 1
    }
    let name = argv[split]
    guard let command = command(named: name) else { fail("unknown command \"\(name)\" for \"berth-runtime\"") }
    if global.bool("systemd-cgroup") && !FileManagerLite.exists("/run/systemd/system") {
        fail("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use cgroupfs paths")
    }
    // the process that enters a container runs from a sealed copy of this binary (CVE-2019-5736)
    if ["create", "run", "exec"].contains(name) {
        if bl_ensure_cloned_binary(CommandLine.unsafeArgv, environ) != 0 {
            fail("re-exec from a sealed copy of the runtime binary: \(String(cString: strerror(errno)))")
        }
    }
    let root = global.string("root") ?? "/run/berth/runtime"
    let ctx = Context(runtime: Runtime(root: root), args: Array(argv[(split + 1)...]), systemdCgroup: global.bool("systemd-cgroup"))
    do {
        return try command(ctx)
    } catch let e as RuntimeError {
        fail(e.message)
    } catch let e as ArgError {
        fail(e.message)
    } catch {
        fail("\(error)")
    }
}

enum FileManagerLite {
    static func exists(_ p: String) -> Bool { access(p, F_OK) == 0 }
}

exit(main())
