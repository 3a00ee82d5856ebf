// berth-shim's command line (docs/shim.md, Invocation).
#if canImport(Glibc)
import Glibc
#endif

struct ShimError: Error {
    var message: String
    init(_ m: String) { message = m }
}

struct Options {
    var id = ""
    var bundle = ""
    var state = ""
    var runtime = ""
    var runtimeRoot = ""
    var readyFD: Int32 = -1
    var tty = false
    var stdin = false
    var stdinOnce = false
    var log: String?
    var logMaxSize: Int64 = 0
    var logMaxFiles = 1

    static let usage = "usage: berth-shim --id ID --bundle DIR --state DIR --runtime PATH --runtime-root DIR "
        + "--ready-fd N [--tty] [--stdin] [--stdin-once] [--log FILE [--log-max-size BYTES] [--log-max-files N]]"

    /// Parses argv (without argv[0]). `readyFD` is set as soon as it is known, even when parsing fails later.
    static func parse(_ args: [String], readyFD: inout Int32) throws(ShimError) -> Options {
        var o = Options()
        var i = 0
        func value(_ name: String, _ inline: String?) throws(ShimError) -> String {
            if let inline { return inline }
            i += 1
            guard i < args.count else { throw ShimError("--\(name) needs a value") }
            return args[i]
        }
        while i < args.count {
            var a = args[i]
            var inline: String?
            if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") {
                inline = String(a[a.index(after: eq)...])
                a = String(a[..<eq])
            }
            switch a {
            case "--id": o.id = try value("id", inline)
            case "--bundle": o.bundle = try value("bundle", inline)
            case "--state": o.state = try value("state", inline)
            case "--runtime": o.runtime = try value("runtime", inline)
            case "--runtime-root": o.runtimeRoot = try value("runtime-root", inline)
            case "--ready-fd":
                let v = try value("ready-fd", inline)
                guard let n = Int32(v), n >= 0 else { throw ShimError("--ready-fd: not a file descriptor: \(v)") }
                o.readyFD = n
                readyFD = n
            case "--tty": o.tty = true
            case "--stdin": o.stdin = true
            case "--stdin-once": o.stdinOnce = true
            case "--log": o.log = try value("log", inline)
            case "--log-max-size":
                let v = try value("log-max-size", inline)
                guard let n = Int64(v), n >= 0 else { throw ShimError("--log-max-size: not a size: \(v)") }
                o.logMaxSize = n
            case "--log-max-files":
                let v = try value("log-max-files", inline)
                guard let n = Int(v), n >= 1 else { throw ShimError("--log-max-files: not a count ≥ 1: \(v)") }
                o.logMaxFiles = n
            case "-h", "--help": throw ShimError(usage)
            default: throw ShimError("unknown argument \(a)\n\(usage)")
            }
            i += 1
        }
        for (name, v) in [("id", o.id), ("bundle", o.bundle), ("state", o.state), ("runtime", o.runtime),
                          ("runtime-root", o.runtimeRoot)] where v.isEmpty {
            throw ShimError("--\(name) is required")
        }
        if o.readyFD < 0 { throw ShimError("--ready-fd is required") }
        // the shim moves to / once detached: every path absolute
        o.bundle = absolute(o.bundle)
        o.state = absolute(o.state)
        o.runtimeRoot = absolute(o.runtimeRoot)
        if o.runtime.contains("/") { o.runtime = absolute(o.runtime) }
        o.log = o.log.map(absolute)
        return o
    }

    static func absolute(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let ok = buf.withUnsafeMutableBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { getcwd($0.baseAddress, $0.count) != nil }
        }
        guard ok, let end = buf.firstIndex(of: 0) else { return p }
        let cwd = String(decoding: buf[..<end], as: UTF8.self)
        return (cwd == "/" ? "" : cwd) + "/" + p
    }
}

/// A program name without a slash: the first executable of that name on PATH.
func lookPath(_ name: String) -> String? {
    if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for dir in path.split(separator: ":") where !dir.isEmpty {
        let p = "\(dir)/\(name)"
        if access(p, X_OK) == 0 { return Options.absolute(p) }
    }
    return nil
}
