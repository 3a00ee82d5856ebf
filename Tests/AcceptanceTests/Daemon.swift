// Harness for the berth CLI acceptance tests: a private berthd (BERTH_BERTHD, with BERTH_RUNTIME and BERTH_SHIM)
// per suite in a scratch dir under /tmp/berth-acc-*, the offline busybox image (fixtures/cache/images/busybox,
// from `make fixtures`) loaded with `berth load` and tagged busybox:latest, and the CLI (BERTH_CLI) run against
// it with -H. Teardown (also at process exit, so a failed test cannot leak a daemon): stop berthd, kill the
// shims and container processes of the scratch dir, detach its mounts, remove it.
// This target drives binaries only; it must not import berth's modules.
import Foundation
import Glibc
import Testing

// MARK: - Opt-in (STYLE rule 13)

enum CLIRootTests {
    /// BERTH_ROOT_TESTS set: the tests run and must be root. Not set: disabled, and we say why, once.
    static let enabled: Bool = {
        guard getenv("BERTH_ROOT_TESTS") != nil else {
            FileHandle.standardError.write(Data(("AcceptanceTests (berth CLI): disabled; set BERTH_ROOT_TESTS=1 (as root) "
                + "with BERTH_BERTHD, BERTH_CLI, BERTH_RUNTIME and BERTH_SHIM to run them\n").utf8))
            return false
        }
        precondition(geteuid() == 0, "BERTH_ROOT_TESTS is set but we are not root")
        return true
    }()

    /// The binaries are named: without them the suites are skipped, and we say which is missing.
    static let binariesNamed: Bool = {
        let missing = ["BERTH_BERTHD", "BERTH_CLI"].filter { CLIEnv.path($0) == nil }
        if !missing.isEmpty {
            FileHandle.standardError.write(Data(("AcceptanceTests (berth CLI): skipped; \(missing.joined(separator: " and ")) "
                + "not set (BERTH_BERTHD=path/to/berthd, BERTH_CLI=path/to/berth)\n").utf8))
            return false
        }
        return true
    }()

    static var runnable: Bool { enabled && binariesNamed }
}

// MARK: - Environment

enum CLIEnv {
    static let berthd: String? = path("BERTH_BERTHD")
    static let cli: String? = path("BERTH_CLI")
    static let runtime: String? = path("BERTH_RUNTIME")
    static let shim: String? = path("BERTH_SHIM")
    static let repoRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    /// The OCI layout of busybox made by `make fixtures` (BERTH_FIXTURES/images/busybox when set).
    static let busyboxLayout: String = (path("BERTH_FIXTURES") ?? repoRoot + "/fixtures/cache") + "/images/busybox"
    static let scratchPrefix = "/tmp/berth-acc-"
    /// stdio files of the harness's own commands that outlive a scratch dir
    static let ioRoot = "/tmp/berth-acc-io-\(getpid())"

    static func path(_ name: String) -> String? {
        guard let v = getenv(name).map({ String(cString: $0) }), !v.isEmpty else { return nil }
        return v
    }
}

// MARK: - Processes

extension CLIEnv {
    /// Loads a tar of the busybox OCI layout with `client` (`berth` or `docker`) and makes sure it is named
    /// busybox:latest (an OCI layout without a full name loads untagged): the one loader of both harnesses.
    static func loadBusybox(dir: String, io: String, client: String,
                            _ run: ([String], Double) throws -> CLIResult) throws {
        guard FileManager.default.fileExists(atPath: busyboxLayout + "/index.json") else {
            throw CLIHarnessError("no busybox OCI layout at \(busyboxLayout) (run `make fixtures`)")
        }
        let tar = dir + "/busybox.tar"
        let t = try CLIProc(["tar", "-C", busyboxLayout, "-cf", tar, "."], ioDir: io).wait()
        guard t.ok else { throw CLIHarnessError("tar of the busybox layout: \(t)") }
        let load = try run(["load", "-i", tar], 120)
        guard load.ok else { throw CLIHarnessError("\(client) load: \(load)") }
        // "Loaded image: NAME" or "Loaded image ID: sha256:…"
        var loaded: String?
        for line in (load.stdout + "\n" + load.stderr).split(separator: "\n") {
            if let r = line.range(of: "Loaded image ID: ") { loaded = String(line[r.upperBound...]).trimmingCharacters(in: .whitespaces) }
            else if let r = line.range(of: "Loaded image: ") { loaded = String(line[r.upperBound...]).trimmingCharacters(in: .whitespaces) }
        }
        if loaded == "busybox:latest" || loaded == "docker.io/library/busybox:latest" { return }
        if let loaded, try run(["tag", loaded, "busybox:latest"], 30).ok { return }
        // fall back to the id of the only image
        let ids = try run(["images", "-q"], 30)
        guard let id = ids.lines.first else { throw CLIHarnessError("no image after \(client) load: \(load)") }
        let tag = try run(["tag", String(id), "busybox:latest"], 30)
        guard tag.ok else { throw CLIHarnessError("\(client) tag \(id) busybox:latest: \(tag)") }
    }
}

struct CLIResult: CustomStringConvertible {
    var argv: [String]
    /// exit code, or 128 + signal number
    var status: Int32
    var stdout: String
    var stderr: String
    var timedOut: Bool

    var ok: Bool { status == 0 && !timedOut }
    var lines: [Substring] { stdout.split(separator: "\n", omittingEmptySubsequences: true) }

    var description: String {
        func clip(_ s: String) -> String { s.count > 3000 ? String(s.prefix(3000)) + "…" : s }
        return "`\(argv.joined(separator: " "))` → \(timedOut ? "TIMED OUT, " : "")status \(status)\n"
            + "stdout: \(clip(stdout))\nstderr: \(clip(stderr))"
    }
}

struct CLIHarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A spawned process in its own process group, stdio to files in `ioDir`.
final class CLIProc {
    let argv: [String]
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    private var result: CLIResult?
    nonisolated(unsafe) private static var counter = 0
    private static let lock = NSLock()

    init(_ argv: [String], stdin: String? = nil, ioDir: String, env extra: [String: String] = [:]) throws {
        self.argv = argv
        let n = CLIProc.lock.withLock { CLIProc.counter += 1; return CLIProc.counter }
        let base = ioDir + "/proc-\(n)"
        stdoutPath = base + ".out"
        stderrPath = base + ".err"
        func openCloexec(_ p: String, _ flags: Int32) throws -> Int32 {
            let fd = open(p, flags | O_CLOEXEC, 0o600)
            if fd < 0 { throw CLIHarnessError("open \(p): \(String(cString: strerror(errno)))") }
            return fd
        }
        var inPath = "/dev/null"
        if let stdin {
            inPath = base + ".in"
            try stdin.write(toFile: inPath, atomically: false, encoding: .utf8)
        }
        let inFD = try openCloexec(inPath, O_RDONLY)
        let outFD = try openCloexec(stdoutPath, O_WRONLY | O_CREAT | O_TRUNC)
        let errFD = try openCloexec(stderrPath, O_WRONLY | O_CREAT | O_TRUNC)
        defer { close(inFD); close(outFD); close(errFD) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inFD, 0)
        posix_spawn_file_actions_adddup2(&actions, outFD, 1)
        posix_spawn_file_actions_adddup2(&actions, errFD, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var envList = ProcessInfo.processInfo.environment
        envList["BERTH_HOST"] = nil  // -H is passed explicitly
        for (k, v) in extra { envList[k] = v }
        let cEnv: [UnsafeMutablePointer<CChar>?] = envList.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs + cEnv { free(a) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, argv[0], &actions, &attr, cArgs, cEnv)
        if rc != 0 { throw CLIHarnessError("spawn \(argv[0]): \(String(cString: strerror(rc)))") }
        pid = child
    }

    /// Waits for the exit, killing the process group after `timeout` seconds.
    @discardableResult
    func wait(timeout: Double = 30) -> CLIResult {
        if let result { return result }
        let deadline = Date().addingTimeInterval(timeout)
        var st: Int32 = 0
        var timedOut = false
        while true {
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { st = 0x7f00; break }
            if Date() >= deadline {
                timedOut = true
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
                break
            }
            usleep(2000)
        }
        let sig = st & 0x7f
        let status: Int32 = sig == 0 ? (st >> 8) & 0xff : 128 + sig
        let r = CLIResult(argv: argv, status: status, stdout: readStdout(), stderr: read(stderrPath), timedOut: timedOut)
        result = r
        return r
    }

    var isReaped: Bool { result != nil }

    /// Records an exit status someone else collected with waitpid.
    func markReaped(status st: Int32) {
        let sig = st & 0x7f
        result = CLIResult(argv: argv, status: sig == 0 ? (st >> 8) & 0xff : 128 + sig, stdout: readStdout(),
                           stderr: read(stderrPath), timedOut: false)
    }

    /// What it wrote to stdout so far.
    func readStdout() -> String { read(stdoutPath) }

    private func read(_ p: String) -> String { (try? String(contentsOfFile: p, encoding: .utf8)) ?? "" }

    /// Signals the whole process group.
    func signal(_ s: Int32) { if !isReaped { kill(-pid, s) } }
}

// MARK: - Host facts

enum CLIHost {
    static func readFile(_ p: String) -> String? { try? String(contentsOfFile: p, encoding: .utf8) }

    /// Mount points under `dir` (mountinfo, unescaped), deepest first.
    static func mounts(under dir: String) -> [String] {
        guard let text = readFile("/proc/self/mountinfo") else { return [] }
        let points = text.split(separator: "\n").compactMap { line -> String? in
            let f = line.split(separator: " ")
            return f.count > 4 ? unescape(String(f[4])) : nil
        }
        return points.filter { $0 == dir || $0.hasPrefix(dir + "/") }.sorted { $0.count > $1.count }
    }

    static func unescape(_ s: String) -> String {
        var out = [UInt8](), b = Array(s.utf8), i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count,
               let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v); i += 4
            } else { out.append(b[i]); i += 1 }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func pids() -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
    }

    static func cmdline(_ pid: pid_t) -> [String] {
        guard let d = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return d.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Processes that belong to the scratch dir: a berth-shim whose --state (or any argument) is under it, or a
    /// process whose root directory is under it (a container's).
    static func processes(of dir: String) -> [pid_t] {
        pids().filter { pid in
            if pid == getpid() { return false }
            let args = cmdline(pid)
            if args.first.map({ $0.hasSuffix("berth-shim") }) == true,
               args.contains(where: { $0 == dir || $0.hasPrefix(dir + "/") || $0.hasPrefix("--state=" + dir) }) {
                return true
            }
            if let root = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/root"),
               root.hasPrefix(dir + "/") { return true }
            return false
        }
    }
}

// MARK: - The daemon

/// A private berthd in /tmp/berth-acc-XXXXXX/{root,run,berth.sock,io/,berthd.log}, with busybox:latest loaded.
final class Daemon: @unchecked Sendable {
    let dir: String
    let host: String
    let io: String
    let cli: String
    private var daemon: CLIProc?
    private var torn = false
    private let lock = NSLock()

    nonisolated(unsafe) private static var live: [Daemon] = []
    private static let liveLock = NSLock()
    private static let atexitOnce: Void = { atexit { Daemon.tearDownAll() } }()

    /// At exit: every daemon still up, then the io dir the harnesses share (suites run in parallel, so no
    /// single teardown may remove it).
    static func tearDownAll() {
        let all = liveLock.withLock { live }
        for d in all { d.tearDown() }
        try? FileManager.default.removeItem(atPath: CLIEnv.ioRoot)
    }

    init() throws {
        guard let berthd = CLIEnv.berthd, let cli = CLIEnv.cli else {
            throw CLIHarnessError("BERTH_BERTHD and BERTH_CLI must name the binaries under test")
        }
        guard access(berthd, X_OK) == 0 else { throw CLIHarnessError("BERTH_BERTHD=\(berthd) is not executable") }
        guard access(cli, X_OK) == 0 else { throw CLIHarnessError("BERTH_CLI=\(cli) is not executable") }
        self.cli = cli
        var template = Array((CLIEnv.scratchPrefix + "XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw CLIHarnessError("mkdtemp: \(String(cString: strerror(errno)))") }
        dir = String(cString: made)
        chmod(dir, 0o755)
        host = "unix://\(dir)/berth.sock"
        io = dir + "/io"
        for d in ["root", "run", "io"] { mkdir(dir + "/" + d, 0o755) }
        _ = Daemon.atexitOnce
        Daemon.liveLock.withLock { Daemon.live.append(self) }
        do {
            try start(berthd)
            try loadBusybox()
        } catch {
            tearDown()
            throw error
        }
    }

    private func start(_ berthd: String) throws {
        var args = [berthd, "--root", dir + "/root", "--exec-root", dir + "/run", "--host", host]
        if let r = CLIEnv.runtime { args += ["--runtime", r] }
        if let s = CLIEnv.shim { args += ["--shim", s] }
        let p = try CLIProc(args, ioDir: io)
        daemon = p
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if ping() { return }
            var st: Int32 = 0
            if waitpid(p.pid, &st, WNOHANG) == p.pid {
                p.markReaped(status: st)
                throw CLIHarnessError("berthd exited during startup: \(p.wait())")
            }
            usleep(20_000)
        }
        throw CLIHarnessError("berthd did not answer /_ping on \(host) within 15 s: \(logTail())")
    }

    /// berthd is still running.
    var isAlive: Bool {
        guard let p = daemon, !p.isReaped else { return false }
        var st: Int32 = 0
        if waitpid(p.pid, &st, WNOHANG) == p.pid {
            p.markReaped(status: st)
            return false
        }
        return true
    }

    func logTail() -> String {
        guard let p = daemon else { return "" }
        let text = ((try? String(contentsOfFile: p.stderrPath, encoding: .utf8)) ?? "")
            + ((try? String(contentsOfFile: p.stdoutPath, encoding: .utf8)) ?? "")
        return String(text.suffix(3000))
    }

    /// GET /_ping answered 200 (a raw socket: the harness tests the CLI, not itself through the CLI).
    func ping() -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = Array((dir + "/berth.sock").utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in path.enumerated() { p[i] = b }
            p[path.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { return false }
        let req = Array("GET /_ping HTTP/1.1\r\nHost: api\r\n\r\n".utf8)
        guard req.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == req.count else { return false }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buf = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buf, buf.count, 0)
        return n > 12 && String(decoding: buf[0..<n], as: UTF8.self).hasPrefix("HTTP/1.1 200")
    }

    /// `berth load -i` of a tar of the busybox OCI layout, then `berth tag` to busybox:latest if named otherwise.
    private func loadBusybox() throws {
        try CLIEnv.loadBusybox(dir: dir, io: io, client: "berth") { args, t in try berth(args, timeout: t) }
    }

    /// `berth -H HOST ARGS...`
    @discardableResult
    func berth(_ args: [String], stdin: String? = nil, timeout: Double = 30) throws -> CLIResult {
        try CLIProc([cli, "-H", host] + args, stdin: stdin, ioDir: io).wait(timeout: timeout)
    }

    /// Starts `berth -H HOST ARGS...` without waiting.
    func spawn(_ args: [String], stdin: String? = nil) throws -> CLIProc {
        try CLIProc([cli, "-H", host] + args, stdin: stdin, ioDir: io)
    }

    /// Teardown: berthd SIGTERM (SIGKILL after 10 s), then whatever of the scratch dir still runs, its mounts, the dir.
    func tearDown() {
        let first = lock.withLock { () -> Bool in
            if torn { return false }
            torn = true
            return true
        }
        guard first else { return }
        if let d = daemon, !d.isReaped {
            kill(d.pid, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            var st: Int32 = 0
            while Date() < deadline {
                if waitpid(d.pid, &st, WNOHANG) == d.pid { d.markReaped(status: st); break }
                usleep(10_000)
            }
            if !d.isReaped {
                d.signal(SIGKILL)
                d.wait(timeout: 5)
            }
        }
        for _ in 0..<3 {
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
        mkdir(CLIEnv.ioRoot, 0o700)
        _ = try? CLIProc(["/bin/rm", "-rf", "--one-file-system", dir], ioDir: CLIEnv.ioRoot).wait()
        if FileManager.default.fileExists(atPath: dir) { Issue.record("teardown left \(dir) behind") }
        Daemon.liveLock.withLock { Daemon.live.removeAll { $0 === self } }
    }

    /// Polls `berth inspect -f FORMAT NAME` until it prints `want`.
    func waitFor(_ name: String, format: String, _ want: String, timeout: Double = 10) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try berth(["inspect", "-f", format, name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == want {
                return true
            }
            usleep(50_000)
        }
        return false
    }
}

/// Records an issue with the whole result when the command failed; returns stdout.
@discardableResult
func expectSuccess(_ r: CLIResult, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    #expect(r.ok, "\(r)", sourceLocation: sourceLocation)
    return r.stdout
}
