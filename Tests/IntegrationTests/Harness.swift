// Harness for the runtime integration tests: runs the runtime binary named by BERTH_RUNTIME (runc's CLI
// contract) on bundles built from the fixture rootfs (BERTH_FIXTURES) with the probe (BERTH_PROBE) as the
// container's process. Each bundle lives in its own scratch dir under /tmp/berth-it-*, with its own --root,
// unique container ids and a unique cgroups path, and is torn down by `withBundle`'s defer.
// This target drives binaries only; it must not import the runtime's modules.
import Foundation
import Glibc
import Testing

// MARK: - Opt-in (STYLE rule 13)

enum RootTests {
    /// BERTH_ROOT_TESTS set: the tests run and must be root. Not set: disabled, and we say why, once.
    static let enabled: Bool = {
        guard getenv("BERTH_ROOT_TESTS") != nil else {
            FileHandle.standardError.write(Data(("IntegrationTests: disabled; set BERTH_ROOT_TESTS=1 (as root) with "
                + "BERTH_RUNTIME, BERTH_FIXTURES and BERTH_PROBE to run them (`sudo make test` does)\n").utf8))
            return false
        }
        precondition(geteuid() == 0, "BERTH_ROOT_TESTS is set but we are not root")
        return true
    }()
}

/// The parent of every integration suite: serialized, so that the suites run one at a time, in source order
/// (file name, then line), which puts the cleanup check (ZCleanup.swift) last.
@Suite(.serialized, .enabled(if: RootTests.enabled, "BERTH_ROOT_TESTS is not set"))
struct Integration {}

// MARK: - Environment

enum TestEnv {
    static let runtime: String? = path("BERTH_RUNTIME")
    /// BERTH_FIXTURES, else the repository's fixtures/cache when it exists.
    static let fixtures: String? = path("BERTH_FIXTURES") ?? existing(repoRoot + "/fixtures/cache")
    /// BERTH_PROBE, else the probe in the fixtures (the rootfs has a copy at /probe anyway).
    static let probe: String? = path("BERTH_PROBE") ?? fixtures.flatMap { existing($0 + "/probe") }
    static let repoRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    private static func existing(_ p: String) -> String? { FileManager.default.fileExists(atPath: p) ? p : nil }
    static let scratchPrefix = "/tmp/berth-it-"
    static let cgroupPrefix = "/berth-it-"

    private static func path(_ name: String) -> String? {
        guard let v = getenv(name).map({ String(cString: $0) }), !v.isEmpty else { return nil }
        return v
    }

    static func requireRuntime() throws -> String {
        let r = try #require(runtime, "BERTH_RUNTIME must name the runtime binary under test")
        try #require(access(r, X_OK) == 0, "BERTH_RUNTIME=\(r) is not executable")
        return r
    }

    static func requireRootfs() throws -> String {
        let f = try #require(fixtures, "BERTH_FIXTURES must name the fixture cache (scripts/fixtures.sh)")
        let rootfs = f + "/rootfs"
        try #require(access(rootfs + "/bin/busybox", X_OK) == 0, "no fixture rootfs at \(rootfs)")
        return rootfs
    }
}

/// What the runtime under test says about itself, asked once.
enum RuntimeInfo {
    static let version: String = {
        guard let r = TestEnv.runtime else { return "" }
        return (try? Proc.run([r, "--version"]).stdout) ?? ""
    }()
    /// runc 1.1.x: used only to mark behaviour berth deliberately does differently (newer spec features).
    static let isRunc11: Bool = version.contains("runc version 1.1.")

    /// linux.namespaces of `features` (empty when the runtime has no features command).
    static let namespaces: [String] = {
        guard let r = TestEnv.runtime, let out = try? Proc.run([r, "features"]), out.status == 0,
              let f = (try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8))) as? [String: Any]
        else { return [] }
        return (f["linux"] as? [String: Any])?["namespaces"] as? [String] ?? []
    }()

    static func supportsNamespace(_ type: String) -> Bool { namespaces.contains(type) }
}

// MARK: - Processes

struct ProcResult: CustomStringConvertible {
    var argv: [String]
    /// exit code, or 128 + signal number
    var status: Int32
    var stdout: String
    var stderr: String
    var timedOut: Bool
    var stdoutPath: String
    var stderrPath: String

    var ok: Bool { status == 0 && !timedOut }
    /// Non-empty stderr lines.
    var errorLines: [Substring] { stderr.split(separator: "\n", omittingEmptySubsequences: true) }
    var lines: [Substring] { stdout.split(separator: "\n", omittingEmptySubsequences: true) }

    /// The stdout file again: a container started with create/run --detach keeps writing to it.
    func rereadStdout() -> String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    var description: String {
        func clip(_ s: String) -> String { s.count > 3000 ? String(s.prefix(3000)) + "…" : s }
        return "`\(argv.joined(separator: " "))` → \(timedOut ? "TIMED OUT, " : "")status \(status)\n"
            + "stdout: \(clip(stdout))\nstderr: \(clip(stderr))"
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
// Glibc's modulemap hides the _np file actions; they exist since glibc 2.29/2.34.
nonisolated(unsafe) private let libc = dlopen(nil, RTLD_NOW)
private let addCloseFrom = dlsym(libc, "posix_spawn_file_actions_addclosefrom_np")
    .map { unsafeBitCast($0, to: AddCloseFrom.self) }
private let addChdir = dlsym(libc, "posix_spawn_file_actions_addchdir_np")
    .map { unsafeBitCast($0, to: AddChdir.self) }

/// A spawned process: its own process group, stdio to files, every other fd closed unless passed on purpose.
final class Proc {
    let argv: [String]
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    private var result: ProcResult?

    static let defaultTimeout: Double = 10
    /// stdio files of processes run outside a bundle; removed as soon as they are read.
    static let ioDir = "/tmp/berth-itio-\(getpid())"
    private let transient: Bool
    nonisolated(unsafe) private static var counter = 0
    private static let lock = NSLock()

    /// - extraFDs: child fd → fd in this process to hand over (the tests' "leaked" or preserved fds).
    init(_ argv: [String], stdin: String? = nil, cwd: String? = nil, extraFDs: [Int32: Int32] = [:],
         ioDir: String? = nil) throws {
        self.argv = argv
        let n = Proc.lock.withLock { Proc.counter += 1; return Proc.counter }
        let dir = ioDir ?? Proc.ioDir
        transient = ioDir == nil
        if transient { mkdir(dir, 0o700) }
        let base = dir + "/proc-\(n)"
        stdoutPath = base + ".out"
        stderrPath = base + ".err"
        let inPath = base + ".in"

        let transient = self.transient
        func openCloexec(_ p: String, _ flags: Int32) throws -> Int32 {
            var fd = open(p, flags | O_CLOEXEC, 0o600)
            if fd < 0 && errno == ENOENT && transient {  // another Proc just removed the shared dir
                mkdir(dir, 0o700)
                fd = open(p, flags | O_CLOEXEC, 0o600)
            }
            if fd < 0 { throw HarnessError("open \(p): \(String(cString: strerror(errno)))") }
            return fd
        }
        if let stdin {
            let w = try openCloexec(inPath, O_WRONLY | O_CREAT | O_TRUNC)
            _ = Array(stdin.utf8).withUnsafeBytes { Glibc.write(w, $0.baseAddress, $0.count) }
            close(w)
        }
        let inFD = try openCloexec(stdin == nil ? "/dev/null" : inPath, O_RDONLY)
        let outFD = try openCloexec(stdoutPath, O_WRONLY | O_CREAT | O_TRUNC)
        let errFD = try openCloexec(stderrPath, O_WRONLY | O_CREAT | O_TRUNC)
        // Move the sources out of the way of the targets (dup2 onto itself would keep CLOEXEC).
        var sources: [Int32: Int32] = [:]
        for (target, source) in extraFDs { sources[target] = fcntl(source, F_DUPFD_CLOEXEC, 200) }
        defer {
            close(inFD); close(outFD); close(errFD)
            for (_, s) in sources { close(s) }
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inFD, 0)
        posix_spawn_file_actions_adddup2(&actions, outFD, 1)
        posix_spawn_file_actions_adddup2(&actions, errFD, 2)
        let maxTarget = extraFDs.keys.max() ?? 2
        if maxTarget > 2 {
            // close whatever is open below the highest target and is not a target
            let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
            for fd in open where fd > 2 && fd < maxTarget && extraFDs[fd] == nil {
                posix_spawn_file_actions_addclose(&actions, fd)
            }
        }
        for (target, source) in sources { posix_spawn_file_actions_adddup2(&actions, source, target) }
        if let addCloseFrom { _ = addCloseFrom(&actions, maxTarget + 1) }
        if let cwd, let addChdir { _ = addChdir(&actions, cwd) }

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

        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, argv[0], &actions, &attr, cArgs, environ)
        if rc != 0 { throw HarnessError("spawn \(argv[0]): \(String(cString: strerror(rc)))") }
        pid = child
    }

    /// Waits for the exit, killing the process group after `timeout` seconds.
    /// Consecutive timeouts, across tests: after a few, a hung runtime costs 1 s per call, not 10.
    nonisolated(unsafe) private static var timeoutsInARow = 0

    @discardableResult
    func wait(timeout: Double = Proc.defaultTimeout) -> ProcResult {
        if let result { return result }
        let hung = Proc.lock.withLock { Proc.timeoutsInARow >= 3 }
        let deadline = Date().addingTimeInterval(hung ? min(timeout, 1) : timeout)
        var st: Int32 = 0
        var timedOut = false
        while true {
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { st = 0x7f00; break }  // lost: read as status 127
            if Date() >= deadline {
                timedOut = true
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
                break
            }
            usleep(2000)
        }
        if argv.first == TestEnv.runtime {
            Proc.lock.withLock { Proc.timeoutsInARow = timedOut ? Proc.timeoutsInARow + 1 : 0 }
        }
        let sig = st & 0x7f
        let status: Int32 = sig == 0 ? (st >> 8) & 0xff : 128 + sig
        let r = ProcResult(argv: argv, status: status, stdout: read(stdoutPath), stderr: read(stderrPath),
                           timedOut: timedOut, stdoutPath: stdoutPath, stderrPath: stderrPath)
        result = r
        if transient {
            for f in [stdoutPath, stderrPath, String(stdoutPath.dropLast(4)) + ".in"] { unlink(f) }
            rmdir(Proc.ioDir)  // fails while another process's files are there; the last one removes it
        }
        return r
    }

    /// Reaped already (so its pid may belong to someone else now).
    var isReaped: Bool { result != nil }

    private func read(_ p: String) -> String { (try? String(contentsOfFile: p, encoding: .utf8)) ?? "" }

    static func run(_ argv: [String], stdin: String? = nil, timeout: Double = defaultTimeout,
                    extraFDs: [Int32: Int32] = [:], ioDir: String? = nil) throws -> ProcResult {
        try Proc(argv, stdin: stdin, extraFDs: extraFDs, ioDir: ioDir).wait(timeout: timeout)
    }
}

// MARK: - Host facts

enum Host {
    static func readFile(_ p: String) -> String? { try? String(contentsOfFile: p, encoding: .utf8) }

    static func ns(_ type: String) -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(type)")) ?? "?"
    }

    /// CapEff of this (the test) process has bit `cap`.
    static func hasCapability(_ cap: Int) -> Bool {
        guard let s = readFile("/proc/self/status"),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let v = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return false }
        return v & (1 << UInt64(cap)) != 0
    }

    struct Mount { var id: Int; var mountPoint: String; var optional: [String] }

    /// /proc/self/mountinfo of this process, mount points unescaped.
    static func mounts() -> [Mount] {
        guard let text = readFile("/proc/self/mountinfo") else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ").map(String.init)
            guard f.count > 6, let id = Int(f[0]) else { return nil }
            let optional = Array(f[6...].prefix { $0 != "-" })
            return Mount(id: id, mountPoint: unescape(f[4]), optional: optional)
        }
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

    static func mounts(under dir: String) -> [Mount] {
        mounts().filter { $0.mountPoint == dir || $0.mountPoint.hasPrefix(dir + "/") }
    }

    static func pids() -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
    }

    /// A live (not zombie) process.
    static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].first
        return state != "Z" && state != "X"
    }

    /// Processes whose root directory is `dir` or below it (i.e. running in a rootfs of ours).
    static func processes(rootedUnder dir: String) -> [pid_t] {
        pids().filter { pid in
            guard pid != getpid(), isAlive(pid),
                  let root = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/root")
            else { return false }
            return root == dir || root.hasPrefix(dir + "/")
        }
    }

    static func cmdline(_ pid: pid_t) -> String {
        guard let d = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "" }
        return String(decoding: d.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }

    static let cgroupV2Only = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
    /// The controllers the tests check placement in.
    static let cgroupControllers = ["pids", "memory"]

    /// The directory of cgroup `path` for `controller` (v1: its hierarchy; v2: the unified tree).
    static func cgroupDir(_ controller: String, _ path: String) -> String {
        cgroupV2Only ? "/sys/fs/cgroup" + path : "/sys/fs/cgroup/\(controller)" + path
    }

    /// cgroup v1 hierarchies (and the v2 one) mounted under /sys/fs/cgroup; never modified, only read.
    static let cgroupRoots: [String] = {
        let base = "/sys/fs/cgroup"
        if FileManager.default.fileExists(atPath: base + "/cgroup.controllers") { return [base] }  // v2 only
        let names = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        return names.map { base + "/" + $0 }.filter {
            var st = stat()
            return lstat($0, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        }.sorted()
    }()
}

// MARK: - config.json editing

extension Dictionary where Key == String, Value == Any {
    /// Dotted path access ("process.user.uid"); setting creates intermediate objects, nil removes.
    subscript(path path: String) -> Any? {
        get {
            let parts = path.split(separator: ".").map(String.init)
            var cur: Any? = self
            for p in parts { cur = (cur as? [String: Any])?[p] }
            return cur
        }
        set { Self.set(&self, path.split(separator: ".").map(String.init)[...], newValue) }
    }

    private static func set(_ d: inout [String: Any], _ parts: ArraySlice<String>, _ v: Any?) {
        guard let first = parts.first else { return }
        if parts.count == 1 { d[first] = v; return }
        var child = d[first] as? [String: Any] ?? [:]
        set(&child, parts.dropFirst(), v)
        d[first] = child
    }

    mutating func append(_ v: Any, to path: String) {
        var a = self[path: path] as? [Any] ?? []
        a.append(v)
        self[path: path] = a
    }

    mutating func addNamespace(_ type: String, path: String? = nil) {
        removeNamespace(type)
        var ns: [String: Any] = ["type": type]
        if let path { ns["path"] = path }
        append(ns, to: "linux.namespaces")
    }

    mutating func removeNamespace(_ type: String) {
        let a = self[path: "linux.namespaces"] as? [[String: Any]] ?? []
        self[path: "linux.namespaces"] = a.filter { $0["type"] as? String != type }
    }

    mutating func removeMount(_ destination: String) {
        let a = self[path: "mounts"] as? [[String: Any]] ?? []
        self[path: "mounts"] = a.filter { $0["destination"] as? String != destination }
    }
}

/// runc spec's template (as scripts/mkbundle.sh writes it), terminal false.
func baseConfig(args: [String], hostname: String, cgroupsPath: String) -> [String: Any] {
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    func m(_ dest: String, _ type: String, _ src: String, _ opts: [String]? = nil) -> [String: Any] {
        var d: [String: Any] = ["destination": dest, "type": type, "source": src]
        if let opts { d["options"] = opts }
        return d
    }
    return [
        "ociVersion": "1.0.2-dev",
        "process": [
            "terminal": false,
            "user": ["uid": 0, "gid": 0],
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": ["bounding": caps, "effective": caps, "permitted": caps, "ambient": caps],
            "rlimits": [["type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024]],
            "noNewPrivileges": true,
        ] as [String: Any],
        "root": ["path": "rootfs", "readonly": true] as [String: Any],
        "hostname": hostname,
        "mounts": [
            m("/proc", "proc", "proc"),
            m("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            m("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            m("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            m("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
            m("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
            m("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
        ],
        "linux": [
            "cgroupsPath": cgroupsPath,
            "resources": ["devices": [["allow": false, "access": "rwm"]]],
            "namespaces": ["pid", "network", "ipc", "uts", "mount"].map { ["type": $0] },
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        ] as [String: Any],
    ]
}

func randomHex(_ n: Int = 10) -> String {
    String((0..<n).map { _ in "0123456789abcdef".randomElement()! })
}

// MARK: - Scratch bundles

/// Everything the bundles of this test process made, for the final cleanup check.
enum Registry {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var dirs: [String] = []
    nonisolated(unsafe) private static var cgroups: [String] = []

    static func record(dir: String, cgroups paths: [String]) {
        lock.withLock { dirs.append(dir); cgroups += paths }
    }

    static var scratchDirs: [String] { lock.withLock { dirs } }
    static var cgroupPaths: [String] { lock.withLock { cgroups } }
}

/// One test's world: /tmp/berth-it-XXXX/{root (--root), bundle/{config.json,rootfs}, io/}.
final class Bundle {
    let dir: String
    let root: String
    let path: String
    let rootfs: String
    let io: String
    let cgroupsPath: String
    let runtime: String
    /// The first container id; `newID()` makes more. All are force-deleted at the end.
    private(set) var ids: [String] = []
    var id: String { ids[0] }
    var config: [String: Any]
    private var spawned: [Proc] = []

    fileprivate init(args: [String]) throws {
        runtime = try TestEnv.requireRuntime()
        let fixtureRootfs = try TestEnv.requireRootfs()
        var template = Array((TestEnv.scratchPrefix + "XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp: \(String(cString: strerror(errno)))") }
        dir = String(cString: made)
        chmod(dir, 0o755)  // a user namespace's root must reach the rootfs
        root = dir + "/root"
        path = dir + "/bundle"
        rootfs = path + "/rootfs"
        io = dir + "/io"
        cgroupsPath = TestEnv.cgroupPrefix + randomHex()
        config = baseConfig(args: args, hostname: "berth-it", cgroupsPath: cgroupsPath)
        ids = ["it-" + randomHex()]
        for d in [root, path, io] { mkdir(d, 0o755) }
        let cp = try Proc.run(["/bin/cp", "-a", fixtureRootfs, rootfs], ioDir: io)
        if !cp.ok { throw HarnessError("copy rootfs: \(cp)") }
        if let probe = TestEnv.probe {
            let r = try Proc.run(["/bin/cp", probe, rootfs + "/probe"], ioDir: io)
            if !r.ok { throw HarnessError("copy probe: \(r)") }
        }
    }

    func newID() -> String {
        let id = "it-" + randomHex()
        ids.append(id)
        return id
    }

    func writeConfig() throws {
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path + "/config.json"))
    }

    /// `RUNTIME --root ROOT ARGS...`, cwd the bundle.
    @discardableResult
    func rt(_ args: [String], stdin: String? = nil, timeout: Double = Proc.defaultTimeout,
            extraFDs: [Int32: Int32] = [:]) throws -> ProcResult {
        try spawn(args, stdin: stdin, extraFDs: extraFDs).wait(timeout: timeout)
    }

    /// Starts `RUNTIME --root ROOT ARGS...` without waiting; killed at teardown if still running.
    func spawn(_ args: [String], stdin: String? = nil, extraFDs: [Int32: Int32] = [:]) throws -> Proc {
        let p = try Proc([runtime, "--root", root] + args, stdin: stdin, cwd: path, extraFDs: extraFDs, ioDir: io)
        spawned.append(p)
        return p
    }

    /// `run --bundle B ID` in the foreground (writes config.json first).
    func run(id: String? = nil, extraArgs: [String] = [], extraFDs: [Int32: Int32] = [:],
             timeout: Double = Proc.defaultTimeout) throws -> ProcResult {
        try writeConfig()
        return try rt(["run"] + extraArgs + ["--bundle", path, id ?? self.id], timeout: timeout, extraFDs: extraFDs)
    }

    /// `create --bundle B ID` (writes config.json first).
    func create(id: String? = nil, extraArgs: [String] = []) throws -> ProcResult {
        try writeConfig()
        return try rt(["create"] + extraArgs + ["--bundle", path, id ?? self.id])
    }

    /// `state ID` decoded; nil when the runtime fails or prints something that is not a JSON object.
    func state(_ id: String? = nil) throws -> [String: Any]? {
        let r = try rt(["state", id ?? self.id])
        guard r.ok else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
    }

    func status(_ id: String? = nil) throws -> String? { try state(id)?["status"] as? String }

    /// Polls `state` until it reports `status`; false on timeout.
    func waitFor(_ status: String, id: String? = nil, timeout: Double = 5) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try self.status(id) == status { return true }
            usleep(10_000)
        }
        return false
    }

    /// Polls a file until it contains `text`.
    func waitForOutput(_ r: ProcResult, containing text: String, timeout: Double = 5) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if r.rereadStdout().contains(text) { return true }
            usleep(10_000)
        }
        return false
    }

    /// Teardown: force-delete every id, kill stragglers, detach mounts, remove our cgroups, remove the tree.
    fileprivate func tearDown() {
        for id in ids { _ = try? Proc([runtime, "--root", root, "delete", "--force", id], ioDir: io).wait() }
        for p in spawned where !p.isReaped {
            kill(-p.pid, SIGKILL); kill(p.pid, SIGKILL)
        }
        for p in spawned { p.wait(timeout: 2) }
        for pid in Host.processes(rootedUnder: dir) { kill(pid, SIGKILL) }
        Bundle.detachMounts(under: dir)
        Bundle.removeCgroups(named: [cgroupsPath] + ids.map { "/" + $0 })
        Registry.record(dir: dir, cgroups: [cgroupsPath] + ids.map { "/" + $0 })
        // --one-file-system: a mount we failed to detach is never descended into
        _ = try? Proc.run(["/bin/rm", "-rf", "--one-file-system", dir])
        if FileManager.default.fileExists(atPath: dir) {
            Issue.record("teardown left \(dir) behind")
        }
    }

    static func detachMounts(under dir: String) {
        // deepest first; repeat because a detach can reveal mounts below
        for _ in 0..<4 {
            let ms = Host.mounts(under: dir).sorted { $0.mountPoint.count > $1.mountPoint.count }
            if ms.isEmpty { return }
            for m in ms { umount2(m.mountPoint, Int32(MNT_DETACH)) }
        }
    }

    /// rmdir (never rm -r) of the given cgroup paths and their children, in every hierarchy.
    static func removeCgroups(named paths: [String]) {
        for hierarchy in Host.cgroupRoots {
            for p in paths where !p.isEmpty {
                let top = hierarchy + (p.hasPrefix("/") ? p : "/" + p)
                guard FileManager.default.fileExists(atPath: top) else { continue }
                var dirs = [top]
                if let e = FileManager.default.enumerator(atPath: top) {
                    for case let sub as String in e {
                        var st = stat()
                        if lstat(top + "/" + sub, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                            dirs.append(top + "/" + sub)
                        }
                    }
                }
                for d in dirs.sorted(by: { $0.count > $1.count }) { rmdir(d) }
            }
        }
    }
}

/// Makes a scratch bundle whose process runs `args`, lets `edit` change config.json, runs `body`, then tears
/// everything down (see `Bundle.tearDown`).
func withBundle<T>(args: [String], edit: (inout [String: Any]) throws -> Void = { _ in },
                   _ body: (Bundle) throws -> T) throws -> T {
    let b = try Bundle(args: args)
    defer { b.tearDown() }
    try edit(&b.config)
    try b.writeConfig()
    return try body(b)
}

/// The common case: run `probe ARGS...` in the foreground and return the result.
func runProbe(_ args: [String], edit: (inout [String: Any]) throws -> Void = { _ in }) throws -> ProcResult {
    try withBundle(args: ["/probe"] + args, edit: edit) { b in try b.run() }
}

/// Records an issue with the whole result when the run did not succeed; returns stdout.
@discardableResult
func expectOK(_ r: ProcResult, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    #expect(r.ok, "\(r)", sourceLocation: sourceLocation)
    return r.stdout
}

/// A listening unix stream socket at `path` (close-on-exec), for the runtime to connect to.
func listenUnix(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    if fd < 0 { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
        close(fd)
        throw HarnessError("socket path too long")
    }
    withUnsafeMutableBytes(of: &addr.sun_path) { p in
        for (i, b) in bytes.enumerated() { p[i] = b }
        p[bytes.count] = 0
    }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if rc < 0 || listen(fd, 1) < 0 {
        let e = errno
        close(fd)
        throw HarnessError("bind/listen \(path): \(String(cString: strerror(e)))")
    }
    return fd
}

// MARK: - Console socket (runc's --console-socket: the runtime sends the pty master over SCM_RIGHTS)

final class ConsoleSocket {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = try listenUnix(path)
    }

    deinit { close(fd) }

    /// Accepts one connection and returns the fd it carries (the pty master), or nil on timeout.
    func receiveFD(timeout: Double = 5) -> Int32? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(timeout * 1000)) == 1 else { return nil }
        let conn = accept(fd, nil, nil)
        guard conn >= 0 else { return nil }
        _ = fcntl(conn, F_SETFD, FD_CLOEXEC)
        defer { close(conn) }
        var p2 = pollfd(fd: conn, events: Int16(POLLIN), revents: 0)
        guard poll(&p2, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var data = [UInt8](repeating: 0, count: 4096)
        var control = [UInt8](repeating: 0, count: 256)
        return data.withUnsafeMutableBytes { dataBuf -> Int32? in
            control.withUnsafeMutableBytes { ctlBuf -> Int32? in
                var iov = iovec(iov_base: dataBuf.baseAddress, iov_len: dataBuf.count)
                return withUnsafeMutablePointer(to: &iov) { iovp -> Int32? in
                    var msg = msghdr()
                    msg.msg_iov = iovp
                    msg.msg_iovlen = 1
                    msg.msg_control = ctlBuf.baseAddress
                    msg.msg_controllen = ctlBuf.count
                    guard recvmsg(conn, &msg, Int32(MSG_CMSG_CLOEXEC)) >= 0, msg.msg_controllen >= MemoryLayout<cmsghdr>.size
                    else { return nil }
                    let hdr = ctlBuf.load(as: cmsghdr.self)
                    guard hdr.cmsg_level == SOL_SOCKET, hdr.cmsg_type == Int32(SCM_RIGHTS) else { return nil }
                    return ctlBuf.load(fromByteOffset: MemoryLayout<cmsghdr>.size, as: Int32.self)
                }
            }
        }
    }
}

/// Reads a pty master until EIO/EOF (the slave side closed) or `timeout`.
func readTerminal(_ fd: Int32, timeout: Double = 5) -> String {
    var out = [UInt8]()
    let deadline = Date().addingTimeInterval(timeout)
    var buf = [UInt8](repeating: 0, count: 4096)
    while Date() < deadline {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, 100)
        if r < 0 && errno == EINTR { continue }
        if r == 0 { continue }
        let n = read(fd, &buf, buf.count)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}
