// Harness for the suites that drive the REAL Docker clients (docker CLI, docker-py) and raw HTTP against a private
// berthd: `ClientDaemon` is like Daemon (Daemon.swift) but needs no berth CLI (busybox goes in with `docker load`),
// can be killed with SIGKILL and started again on the same root (CrashTests), and reports its fds; `LocalRegistry`
// wraps scripts/registry.sh; `RawHTTP` speaks bytes over the unix socket. Everything is torn down at process exit
// too, so a failed test cannot leak a daemon, a registry, containers or mounts.
// Reuses CLIProc, CLIResult, CLIHost, CLIEnv and CLIRootTests of Daemon.swift.
import Foundation
import Glibc
import Testing

// MARK: - Opt-in

enum ClientTests {
    /// The repository (the real one, also when this directory is reached through a symlink).
    static let repoRoot: String = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    static func which(_ name: String) -> String? {
        for dir in (CLIEnv.path("PATH") ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    static let docker: String? = which("docker")
    static let python3: String? = which("python3")

    private static func say(_ s: String) { FileHandle.standardError.write(Data(("AcceptanceTests (docker clients): " + s + "\n").utf8)) }

    /// BERTH_ROOT_TESTS (as root) and BERTH_BERTHD; BERTH_RUNTIME/BERTH_SHIM are passed when set.
    static let daemonNamed: Bool = {
        guard CLIRootTests.enabled else { return false }
        if CLIEnv.berthd == nil { say("skipped; BERTH_BERTHD not set (BERTH_BERTHD=path/to/berthd)"); return false }
        return true
    }()

    static let dockerCLI: Bool = {
        guard daemonNamed else { return false }
        if docker == nil { say("docker CLI suites skipped; no `docker` in PATH"); return false }
        return true
    }()

    static let dockerPy: Bool = {
        guard daemonNamed else { return false }
        guard let py = python3 else { say("docker-py suite skipped; no python3 in PATH"); return false }
        let ok = (try? CLIProc([py, "-c", "import docker"], ioDir: scratchIO).wait(timeout: 30).ok) ?? false
        if !ok { say("docker-py suite skipped; python3 cannot `import docker`") }
        return ok
    }()

    /// For the harness's own commands outside any daemon's dir. Made again on every use: the exit handlers
    /// of both harnesses remove it, in an order of their own.
    static var scratchIO: String {
        mkdir(CLIEnv.ioRoot, 0o700)
        return CLIEnv.ioRoot
    }
}

/// The parent of the docker-client suites: serialized, so one of their daemons works at a time (2 cores; the
/// load and crash suites measure the machine).
@Suite(.serialized) struct DockerClients {}

// MARK: - A restartable private berthd

final class ClientDaemon: @unchecked Sendable {
    let dir: String
    let host: String
    let sock: String
    let io: String
    let root: String
    let execRoot: String
    private(set) var proc: CLIProc?
    private var torn = false
    private let lock = NSLock()
    private var extraArgs: [String]

    nonisolated(unsafe) private static var live: [ClientDaemon] = []
    private static let liveLock = NSLock()
    private static let atexitOnce: Void = { atexit { ClientDaemon.tearDownAll() } }()

    static func tearDownAll() {
        let all = liveLock.withLock { live }
        for d in all { d.tearDown() }
        try? FileManager.default.removeItem(atPath: CLIEnv.ioRoot)
    }

    /// A private berthd in /tmp/berth-acc-XXXXXX, with busybox:latest loaded through `docker load` unless told not to.
    init(loadBusybox: Bool = true, args: [String] = []) throws {
        guard CLIEnv.berthd != nil else { throw CLIHarnessError("BERTH_BERTHD must name the berthd under test") }
        extraArgs = args
        var template = Array((CLIEnv.scratchPrefix + "XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw CLIHarnessError("mkdtemp: \(String(cString: strerror(errno)))") }
        dir = String(cString: made)
        chmod(dir, 0o755)
        sock = dir + "/berth.sock"
        host = "unix://" + sock
        io = dir + "/io"
        root = dir + "/root"
        execRoot = dir + "/run"
        for d in ["root", "run", "io", "docker-config"] { mkdir(dir + "/" + d, 0o755) }
        _ = ClientDaemon.atexitOnce
        ClientDaemon.liveLock.withLock { ClientDaemon.live.append(self) }
        do {
            try start()
            if loadBusybox { try self.loadBusybox() }
        } catch {
            tearDown()
            throw error
        }
    }

    var pid: pid_t? { proc?.pid }

    /// Starts berthd on this dir's root and exec-root; returns once /_ping answers.
    func start() throws {
        guard let berthd = CLIEnv.berthd else { throw CLIHarnessError("BERTH_BERTHD not set") }
        var args = [berthd, "--root", root, "--exec-root", execRoot, "--host", host]
        if let r = CLIEnv.runtime { args += ["--runtime", r] }
        if let s = CLIEnv.shim { args += ["--shim", s] }
        args += extraArgs
        let p = try CLIProc(args, ioDir: io)
        proc = p
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if RawHTTP.ping(sock) { return }
            var st: Int32 = 0
            if waitpid(p.pid, &st, WNOHANG) == p.pid {
                p.markReaped(status: st)
                throw CLIHarnessError("berthd exited during startup: \(p.wait())")
            }
            usleep(20_000)
        }
        throw CLIHarnessError("berthd did not answer /_ping on \(host) within 20 s: \(logTail())")
    }

    /// SIGKILL to berthd only (its shims and containers live on), reaped.
    func kill9() {
        guard let p = proc, !p.isReaped else { return }
        kill(p.pid, SIGKILL)
        var st: Int32 = 0
        while waitpid(p.pid, &st, 0) < 0 && errno == EINTR {}
        p.markReaped(status: st)
    }

    var isAlive: Bool {
        guard let p = proc, !p.isReaped else { return false }
        var st: Int32 = 0
        if waitpid(p.pid, &st, WNOHANG) == p.pid { p.markReaped(status: st); return false }
        return true
    }

    /// The tail of the current berthd's stderr and stdout.
    func logTail(_ n: Int = 4000) -> String {
        guard let p = proc else { return "" }
        let text = ((try? String(contentsOfFile: p.stderrPath, encoding: .utf8)) ?? "")
            + ((try? String(contentsOfFile: p.stdoutPath, encoding: .utf8)) ?? "")
        return String(text.suffix(n))
    }

    // MARK: clients

    var dockerEnv: [String: String] {
        ["DOCKER_HOST": host, "DOCKER_CONFIG": dir + "/docker-config", "DOCKER_CLI_HINTS": "false",
         "DOCKER_CONTEXT": "", "DOCKER_TLS_VERIFY": "", "DOCKER_CERT_PATH": "", "DOCKER_API_VERSION": ""]
    }

    /// `docker ARGS...` with DOCKER_HOST at this daemon.
    @discardableResult
    func docker(_ args: [String], stdin: String? = nil, timeout: Double = 60) throws -> CLIResult {
        guard let docker = ClientTests.docker else { throw CLIHarnessError("no docker CLI") }
        return try CLIProc([docker] + args, stdin: stdin, ioDir: io, env: dockerEnv).wait(timeout: timeout)
    }

    func dockerSpawn(_ args: [String], stdin: String? = nil) throws -> CLIProc {
        guard let docker = ClientTests.docker else { throw CLIHarnessError("no docker CLI") }
        return try CLIProc([docker] + args, stdin: stdin, ioDir: io, env: dockerEnv)
    }

    /// Any command with the docker environment (script(1), sh -c pipelines).
    @discardableResult
    func command(_ argv: [String], stdin: String? = nil, timeout: Double = 60, env: [String: String] = [:]) throws -> CLIResult {
        try CLIProc(argv, stdin: stdin, ioDir: io, env: dockerEnv.merging(env) { $1 }).wait(timeout: timeout)
    }

    /// `python3 tests/acceptance/SCRIPT ARGS...` with BERTH_SOCK set to this daemon's socket.
    @discardableResult
    func python(_ script: String, _ args: [String] = [], env: [String: String] = [:], timeout: Double = 120) throws -> CLIResult {
        guard let py = ClientTests.python3 else { throw CLIHarnessError("no python3") }
        let path = ClientTests.repoRoot + "/tests/acceptance/" + script
        var e = dockerEnv.merging(env) { $1 }
        e["BERTH_SOCK"] = sock
        e["PYTHONUNBUFFERED"] = "1"
        return try CLIProc([py, path] + args, ioDir: io, env: e).wait(timeout: timeout)
    }

    /// Polls `docker inspect -f FORMAT NAME` until it prints `want`.
    func waitFor(_ name: String, format: String, _ want: String, timeout: Double = 15) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try docker(["inspect", "-f", format, name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == want { return true }
            usleep(100_000)
        }
        return false
    }

    /// `docker ARGS` described, for failure messages (never throws).
    func show(_ args: [String]) -> String { (try? docker(args)).map { "\($0)" } ?? "<docker \(args) could not run>" }

    /// Removes every container (docker rm -f of `ps -aq`); for cleanup, failures ignored.
    func removeAllContainers() {
        guard let ids = try? docker(["ps", "-aq"]).lines, !ids.isEmpty else { return }
        _ = try? docker(["rm", "-f"] + ids.map(String.init), timeout: 60)
    }

    // MARK: host facts

    /// The open fds of berthd: target of each /proc/PID/fd entry.
    func fds() -> [String] {
        guard let pid else { return [] }
        let dir = "/proc/\(pid)/fd"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map {
            "\($0) -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + $0)) ?? "?")
        }
    }

    /// Polls until berthd holds at most `limit` fds (connections wind down asynchronously); the last listing.
    func fdsSettled(atMost limit: Int, timeout: Double = 10) -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        var now = fds()
        while now.count > limit && Date() < deadline {
            usleep(100_000)
            now = fds()
        }
        return now
    }

    /// berth-shim processes and container processes of this dir.
    func leftoverProcesses() -> [String] {
        CLIHost.processes(of: dir).map { "\($0): " + CLIHost.cmdline($0).joined(separator: " ") }
    }

    func mounts() -> [String] { CLIHost.mounts(under: dir) }

    private func loadBusybox() throws {
        do {
            try CLIEnv.loadBusybox(dir: dir, io: io, client: "docker") { args, t in try docker(args, timeout: t) }
        } catch let e as CLIHarnessError { throw CLIHarnessError("\(e)\nberthd: \(logTail())") }
    }

    /// berthd SIGTERM (SIGKILL after 10 s), then whatever of the dir still runs, its mounts, the dir.
    func tearDown() {
        let first = lock.withLock { () -> Bool in
            if torn { return false }
            torn = true
            return true
        }
        guard first else { return }
        if isAlive, let p = proc {
            removeAllContainers()
            kill(p.pid, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            var st: Int32 = 0
            while Date() < deadline {
                if waitpid(p.pid, &st, WNOHANG) == p.pid { p.markReaped(status: st); break }
                usleep(10_000)
            }
            if !p.isReaped { p.signal(SIGKILL); p.wait(timeout: 5) }
        }
        for _ in 0..<5 {
            let left = CLIHost.processes(of: dir)
            if left.isEmpty { break }
            for pid in left { kill(pid, SIGKILL) }
            usleep(100_000)
        }
        for _ in 0..<4 {
            let ms = CLIHost.mounts(under: dir)
            if ms.isEmpty { break }
            for m in ms { umount2(m, Int32(MNT_DETACH)) }
        }
        // a shim or mount that goes away late can make one pass miss some of it
        for _ in 0..<3 where FileManager.default.fileExists(atPath: dir) {
            for m in CLIHost.mounts(under: dir) { umount2(m, Int32(MNT_DETACH)) }
            _ = try? CLIProc(["/bin/rm", "-rf", "--one-file-system", dir], ioDir: ClientTests.scratchIO).wait()
            if FileManager.default.fileExists(atPath: dir) { usleep(300_000) }
        }
        if FileManager.default.fileExists(atPath: dir) {
            FileHandle.standardError.write(Data("AcceptanceTests: could not remove \(dir)\n".utf8))
        }
        ClientDaemon.liveLock.withLock { ClientDaemon.live.removeAll { $0 === self } }
    }
}

/// One ClientDaemon per suite, started on first use; a dead one is replaced (recorded once in the asking test).
final class SuiteClientDaemon: @unchecked Sendable {
    private var result: Result<ClientDaemon, Error>?
    private let lock = NSLock()

    func get() throws -> ClientDaemon {
        try lock.withLock {
            if case .success(let d)? = result, !d.isAlive {
                Issue.record("berthd died during an earlier test; its log ends with:\n\(d.logTail())")
                d.tearDown()
                result = nil
            }
            if result == nil { result = Result { try ClientDaemon() } }
            return try result!.get()
        }
    }

    func tearDown() { lock.withLock { if case .success(let d)? = result { d.tearDown() }; result = nil } }
}

// MARK: - A local registry (scripts/registry.sh), with busybox pushed

final class LocalRegistry: @unchecked Sendable {
    let dir: String
    let hostPort: String

    nonisolated(unsafe) private static var live: [LocalRegistry] = []
    private static let liveLock = NSLock()
    private static let atexitOnce: Void = { atexit { LocalRegistry.stopAll() } }()
    static func stopAll() { for r in liveLock.withLock({ live }) { r.stop() } }

    /// Starts a registry in a fresh dir and pushes the busybox fixture as HOST/busybox:latest.
    init(pushBusybox: Bool = true) throws {
        var template = Array(("/tmp/berth-acc-reg-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw CLIHarnessError("mkdtemp failed") }
        let base = String(cString: made)
        dir = base + "/reg"
        let s = try CLIProc([ClientTests.repoRoot + "/scripts/registry.sh", "start", dir], ioDir: ClientTests.scratchIO).wait(timeout: 60)
        guard s.ok, let hp = s.lines.last.map(String.init), hp.contains(":") else {
            throw CLIHarnessError("scripts/registry.sh start: \(s)")
        }
        hostPort = hp
        _ = LocalRegistry.atexitOnce
        LocalRegistry.liveLock.withLock { LocalRegistry.live.append(self) }
        if pushBusybox {
            let images = (CLIEnv.path("BERTH_FIXTURES") ?? ClientTests.repoRoot + "/fixtures/cache") + "/images"
            let p = try CLIProc([ClientTests.repoRoot + "/scripts/push-fixtures.sh", hostPort, images, "busybox"],
                                ioDir: ClientTests.scratchIO).wait(timeout: 120)
            guard p.ok else { stop(); throw CLIHarnessError("scripts/push-fixtures.sh: \(p)") }
        }
    }

    func stop() {
        let was = LocalRegistry.liveLock.withLock { () -> Bool in
            let had = LocalRegistry.live.contains { $0 === self }
            LocalRegistry.live.removeAll { $0 === self }
            return had
        }
        guard was else { return }
        _ = try? CLIProc([ClientTests.repoRoot + "/scripts/registry.sh", "stop", dir], ioDir: ClientTests.scratchIO).wait(timeout: 30)
        rmdir((dir as NSString).deletingLastPathComponent)
    }
}

// MARK: - Raw HTTP over the unix socket

struct RawResponse: CustomStringConvertible {
    var raw: [UInt8]
    var timedOut: Bool
    var reset: Bool

    var text: String { String(decoding: raw, as: UTF8.self) }
    /// The status code of the first status line, or nil when nothing HTTP-shaped came back.
    var status: Int? {
        guard text.hasPrefix("HTTP/1."), let sp = text.firstIndex(of: " ") else { return nil }
        return Int(text[text.index(after: sp)...].prefix(3))
    }
    var headers: String { text.components(separatedBy: "\r\n\r\n").first ?? "" }
    /// The body after the first blank line (de-chunked when chunked).
    var body: String {
        guard let r = text.range(of: "\r\n\r\n") else { return "" }
        let b = String(text[r.upperBound...])
        guard headers.lowercased().contains("transfer-encoding: chunked") else { return b }
        var out = "", rest = Substring(b)
        while let nl = rest.range(of: "\r\n"), let n = Int(rest[..<nl.lowerBound].trimmingCharacters(in: .whitespaces), radix: 16) {
            if n == 0 { break }
            let start = nl.upperBound
            let chunk = rest[start...].utf8.prefix(n)
            out += String(decoding: chunk, as: UTF8.self)
            let after = rest.utf8.index(start, offsetBy: min(n, rest[start...].utf8.count))
            rest = rest[after...]
            if rest.hasPrefix("\r\n") { rest = rest.dropFirst(2) }
        }
        return out
    }
    /// The body's "message" when it is Docker's error JSON.
    var message: String? {
        guard let d = body.data(using: .utf8), let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return nil }
        return o["message"] as? String
    }
    var description: String {
        let t = text
        return (timedOut ? "[timed out] " : "") + (reset ? "[reset] " : "") + (t.count > 2000 ? String(t.prefix(2000)) + "…" : t)
    }
}

enum RawHTTP {
    /// A connected unix stream socket, or -1.
    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
            p[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 { close(fd); return -1 }
        return fd
    }

    /// Writes all of `data`; false when the peer went away.
    @discardableResult
    static func send(_ fd: Int32, _ data: [UInt8]) -> Bool {
        var off = 0
        while off < data.count {
            let n = data[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; return false }
            off += n
        }
        return true
    }

    /// Reads until EOF, `until` matches what came so far, or `timeout` seconds pass.
    static func read(_ fd: Int32, timeout: Double, until: (([UInt8]) -> Bool)? = nil) -> RawResponse {
        var out = [UInt8](), buf = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return RawResponse(raw: out, timedOut: true, reset: false) }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let pr = poll(&pfd, 1, Int32(max(1, left * 1000)))
            if pr < 0 { if errno == EINTR { continue }; return RawResponse(raw: out, timedOut: false, reset: true) }
            if pr == 0 { continue }
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 { return RawResponse(raw: out, timedOut: false, reset: false) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return RawResponse(raw: out, timedOut: false, reset: true)
            }
            out += buf[0..<n]
            if let until, until(out) { return RawResponse(raw: out, timedOut: false, reset: false) }
        }
    }

    /// One exchange: connect, send `request`, read until the peer closes (send `Connection: close`) or a full
    /// Content-Length response arrived.
    static func exchange(_ sock: String, _ request: [UInt8], timeout: Double = 10) -> RawResponse {
        let fd = connect(sock)
        guard fd >= 0 else { return RawResponse(raw: Array("<connect failed: \(String(cString: strerror(errno)))>".utf8), timedOut: false, reset: true) }
        defer { close(fd) }
        if !send(fd, request) {
            // the daemon may answer (413) and close before taking it all: read what it said
            return read(fd, timeout: 2, until: complete)
        }
        return read(fd, timeout: timeout, until: complete)
    }

    static func exchange(_ sock: String, _ request: String, timeout: Double = 10) -> RawResponse {
        exchange(sock, Array(request.utf8), timeout: timeout)
    }

    /// A request with a JSON body.
    static func request(_ sock: String, _ method: String, _ path: String, json: String? = nil, timeout: Double = 30) -> RawResponse {
        var r = "\(method) \(path) HTTP/1.1\r\nHost: api\r\nConnection: close\r\n"
        if let json { r += "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n" + json } else { r += "\r\n" }
        return exchange(sock, r, timeout: timeout)
    }

    /// A whole response by Content-Length (other framings: read to EOF).
    static func complete(_ b: [UInt8]) -> Bool {
        let t = String(decoding: b, as: UTF8.self)
        guard let r = t.range(of: "\r\n\r\n") else { return false }
        let head = t[..<r.lowerBound].lowercased()
        guard let cl = head.range(of: "content-length: ") else { return false }
        guard let n = Int(head[cl.upperBound...].prefix { $0.isNumber }) else { return false }
        return t[r.upperBound...].utf8.count >= n
    }

    static func ping(_ sock: String) -> Bool {
        let r = exchange(sock, "GET /_ping HTTP/1.1\r\nHost: api\r\n\r\n", timeout: 2)
        return r.status == 200 && r.body == "OK"
    }
}

// MARK: - Small helpers

extension CLIResult {
    var out: String { stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// Polls `cond` every 50 ms for up to `timeout` seconds.
func eventually(_ timeout: Double, _ cond: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try cond() { return true }
        usleep(50_000)
    }
    return try cond()
}

/// Cgroup directories of container `id` left under any /sys/fs/cgroup/<controller>/berth (v1) or the v2 root.
func leftoverCgroups(_ id: String) -> [String] {
    var found: [String] = []
    let fm = FileManager.default
    let top = "/sys/fs/cgroup"
    var bases = [top + "/berth"]
    for c in (try? fm.contentsOfDirectory(atPath: top)) ?? [] { bases.append("\(top)/\(c)/berth") }
    for b in bases {
        for e in (try? fm.contentsOfDirectory(atPath: b)) ?? [] where e.hasPrefix(id) || id.hasPrefix(e) && e.count >= 12 {
            found.append(b + "/" + e)
        }
    }
    return found
}
