// berthd: the engine daemon. Serves the Docker Engine API on a unix socket; containers live in their shims
// and survive the daemon.
import DockerAPI
import Engine
import Foundation
import Images
import Glibc
import Logging
import NIOCore
import NIOPosix

struct Flags {
    var root = "/var/lib/berth"
    var execRoot = "/run/berth"
    var host = "unix:///run/berth/berth.sock"
    var runtime: String?
    var shim: String?
    var logLevel = Logger.Level.info
    var config: String?
    var insecure: [String] = []
    var metricsAddr: String?
}

func usage() -> Never {
    print("""
    Usage: berthd [OPTIONS]

    The berth engine: serves the Docker Engine API.

    Options:
      --root DIR             persistent state (default /var/lib/berth)
      --exec-root DIR        runtime state, sockets (default /run/berth)
      -H, --host URL         where to listen (default unix:///run/berth/berth.sock)
      --runtime PATH         the OCI runtime (default: berth-runtime next to berthd, else in PATH)
      --shim PATH            the shim (default: berth-shim next to berthd, else in PATH)
      --config FILE          daemon.json (registry-mirrors, insecure-registries)
      --insecure-registry H  a registry reached over plain HTTP (repeatable)
      --log-level LEVEL      debug, info, warn, error (default info)
      --metrics-addr H:P     serve Prometheus metrics on http://H:P/metrics (off by default)
      --version              print the version
    """)
    exit(0)
}

func fail(_ msg: String) -> Never {
    FileHandle.standardError.write(Data(("berthd: " + msg + "\n").utf8))
    exit(1)
}

var flags = Flags()
var args = Array(CommandLine.arguments.dropFirst())
while !args.isEmpty {
    var a = args.removeFirst()
    var value: String?
    if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") { value = String(a[a.index(after: eq)...]); a = String(a[..<eq]) }
    func next() -> String {
        if let value { return value }
        guard !args.isEmpty else { fail("flag \(a) needs a value") }
        return args.removeFirst()
    }
    switch a {
    case "--root": flags.root = next()
    case "--exec-root": flags.execRoot = next()
    case "-H", "--host": flags.host = next()
    case "--runtime": flags.runtime = next()
    case "--shim": flags.shim = next()
    case "--config": flags.config = next()
    case "--insecure-registry": flags.insecure.append(next())
    case "--metrics-addr": flags.metricsAddr = next()
    case "--log-level":
        let v = next()
        guard let l = Logger.Level(rawValue: v == "warn" ? "warning" : v) else { fail("unknown log level \(v)") }
        flags.logLevel = l
    case "--version", "-v": print("berthd version 0.6.0"); exit(0)
    case "-h", "--help": usage()
    default: fail("unknown flag \(a) (see berthd --help)")
    }
}

func sibling(_ name: String) -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    if n > 0 {
        let me = String(cString: buf)
        let dir = me[..<(me.lastIndex(of: "/") ?? me.endIndex)]
        let p = dir + "/" + name
        if access(p, X_OK) == 0 { return p }
    }
    for d in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
        let p = d + "/" + name
        if access(p, X_OK) == 0 { return p }
    }
    return name
}

LoggingSystem.bootstrap { label in
    var h = StreamLogHandler.standardError(label: label)
    h.logLevel = flags.logLevel
    return h
}
let log = Logger(label: "berthd")
signal(SIGPIPE, SIG_IGN)
guard geteuid() == 0 else { fail("must run as root") }
guard flags.host.hasPrefix("unix://") else { fail("only unix:// hosts are supported (got \(flags.host))") }
let socketPath = String(flags.host.dropFirst("unix://".count))

var options = EngineOptions()
options.root = flags.root
options.execRoot = flags.execRoot
options.runtime = flags.runtime ?? sibling("berth-runtime")
options.shim = flags.shim ?? sibling("berth-shim")
options.images.root = flags.root
do {
    let base = try RegistryConfig.load(daemonJSON: flags.config ?? "/etc/berth/daemon.json", missingOK: flags.config == nil)
    options.images.registry = try RegistryConfig(mirrors: base.mirrors, insecureRegistries: base.insecureRegistries + flags.insecure)
} catch { fail("\(error)") }
for (what, p) in [("runtime", options.runtime), ("shim", options.shim)] where access(p, X_OK) != 0 {
    fail("the \(what) \(p) is not executable (build it, or name it with --\(what))")
}

let engine: Engine
do { engine = try Engine(options: options, logger: log) } catch { fail(error.message) }
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let metrics = flags.metricsAddr.map { _ in Metrics(engine: engine) }
let server = APIServer(engine: engine, group: group, logger: log, metrics: metrics)
let dir = String(socketPath[..<(socketPath.lastIndex(of: "/") ?? socketPath.endIndex)])
if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }

let signals = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .main)
let signalsInt = DispatchSource.makeSignalSource(signal: SIGINT, queue: .main)
signal(SIGTERM, SIG_IGN)
signal(SIGINT, SIG_IGN)
for s in [signals, signalsInt] {
    s.setEventHandler {
        // Containers keep running in their shims; the next berthd picks them up.
        log.info("shutting down; containers keep running")
        unlink(socketPath)
        exit(0)
    }
    s.resume()
}

Task {
    await engine.recover()
    do {
        try await server.listen(unixSocket: socketPath)
        log.info("berthd listening on \(flags.host) (root \(flags.root), runtime \(options.runtime))")
        if let m = metrics, let addr = flags.metricsAddr {
            guard let colon = addr.lastIndex(of: ":"), let port = Int(addr[addr.index(after: colon)...]) else {
                fail("--metrics-addr \(addr): expected HOST:PORT")
            }
            try await m.listen(host: String(addr[..<colon]), port: port, group: group)
            log.info("metrics on http://\(addr)/metrics")
        }
    } catch {
        fail("listen on \(socketPath): \(error)")
    }
}
dispatchMain()
