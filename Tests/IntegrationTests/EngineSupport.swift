// Helpers for the engine tests (ContainerdTests, PodmanTests): containerd 1.6 and podman 4.3 drive the runtime
// under test (BERTH_RUNTIME) exactly as they drive runc. Each engine gets a private world under
// /tmp/berth-it-eng-XXXXXX (root, state, sockets, storage, its own namespace / cgroup parent); the image comes
// offline from the fixture rootfs (scripts/oci-image.sh). Teardown kills what we started by pid, unmounts
// under the private dir, removes our cgroups and the dir, and registers it all for the ZCleanup check.
import Foundation
import Glibc
import Testing

enum Engines {
    /// Installs the Debian packages when missing (`apt-get install -y`); fails with apt's output otherwise.
    static func ensureInstalled(_ packages: [String]) throws {
        let missing = try packages.filter { try !Proc.run(["/usr/bin/dpkg", "-s", $0]).ok }
        if missing.isEmpty { return }
        let r = try Proc.run(["/usr/bin/env", "DEBIAN_FRONTEND=noninteractive", "/usr/bin/apt-get", "install", "-y", "-qq"]
                             + missing, timeout: 600)
        try #require(r.ok, "apt-get install \(missing.joined(separator: " ")): \(r)")
    }

    /// A private scratch dir (0755): under the tests' scratch prefix, so the final cleanup check covers it.
    static func makeScratch(_ tag: String) throws -> String {
        var template = Array((TestEnv.scratchPrefix + tag + "-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp: \(String(cString: strerror(errno)))") }
        let dir = String(cString: made)
        chmod(dir, 0o755)
        return dir
    }

    /// Writes the one-layer OCI image archive of the fixture rootfs (with the probe at /probe) to `path`.
    static func buildImage(at path: String, scratch: String) throws {
        let rootfs = try TestEnv.requireRootfs()
        let copy = scratch + "/image-rootfs"
        let cp = try Proc.run(["/bin/cp", "-a", rootfs, copy])
        try #require(cp.ok, "copy rootfs: \(cp)")
        if let probe = TestEnv.probe { _ = try Proc.run(["/bin/cp", probe, copy + "/probe"]) }
        let r = try Proc.run([TestEnv.repoRoot + "/scripts/oci-image.sh", copy, path, imageName], timeout: 60)
        _ = try? Proc.run(["/bin/rm", "-rf", "--one-file-system", copy])
        try #require(r.ok, "scripts/oci-image.sh: \(r)")
    }

    static let imageName = "docker.io/library/berth-busybox:latest"

    /// Live processes whose command line contains `text`.
    static func processes(cmdlineContaining text: String) -> [pid_t] {
        Host.pids().filter { $0 != getpid() && Host.isAlive($0) && Host.cmdline($0).contains(text) }
    }

    /// SIGKILLs every live process that runs under `dir` or names it on its command line, a few rounds.
    static func killEverything(under dir: String, alsoMatching extra: [String] = []) {
        for _ in 0..<5 {
            var pids = Set(Host.processes(rootedUnder: dir))
            for t in [dir + "/"] + extra { pids.formUnion(processes(cmdlineContaining: t)) }
            if pids.isEmpty { return }
            for p in pids { kill(p, SIGKILL) }
            usleep(100_000)
        }
    }

    /// Waits until `path` exists (a daemon's socket); false on timeout.
    static func waitForPath(_ path: String, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if access(path, F_OK) == 0 { return true }
            usleep(20_000)
        }
        return false
    }

    /// Ends a daemon we started: SIGTERM, then SIGKILL after `grace` seconds.
    static func stop(_ p: Proc, grace: Double = 5) {
        if p.isReaped { return }
        kill(p.pid, SIGTERM)
        p.wait(timeout: grace)  // kills the process group on timeout
    }

    /// rm -rf that never crosses into a mount we failed to detach; records an issue if the dir stays.
    static func removeTree(_ dir: String) {
        Bundle.detachMounts(under: dir)
        _ = try? Proc.run(["/bin/rm", "-rf", "--one-file-system", dir], timeout: 60)
        if FileManager.default.fileExists(atPath: dir) { Issue.record("teardown left \(dir) behind") }
    }

    static func basename(_ p: String) -> String { String(p.split(separator: "/").last ?? Substring(p)) }
}

// MARK: - containerd

/// A private containerd: its own root, state, gRPC + ttrpc sockets, no CRI, the overlayfs snapshotter, one
/// containerd namespace (whose name is also the cgroup parent the runc shim gives containers: /NS/ID).
final class Containerd {
    let dir: String
    let socket: String
    let namespace: String
    let runtime: String
    let runcRoot: String
    let fifoDir: String
    private let daemon: Proc

    init(runtime: String) throws {
        self.runtime = runtime
        dir = try Engines.makeScratch("ctd")
        socket = dir + "/c.sock"
        namespace = "berth-it-ctd-" + randomHex(8)
        runcRoot = dir + "/runc-root"
        fifoDir = dir + "/fifo"
        for d in ["io", "root", "state", "opt", "fifo", "runc-root"] { mkdir(dir + "/" + d, 0o711) }
        let config = """
            version = 2
            root = "\(dir)/root"
            state = "\(dir)/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", \
            "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", \
            "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", \
            "io.containerd.internal.v1.tracing"]
            [grpc]
              address = "\(socket)"
            [ttrpc]
              address = "\(socket).ttrpc"
            [debug]
              address = ""
            [metrics]
              address = ""
            [plugins."io.containerd.internal.v1.opt"]
              path = "\(dir)/opt"

            """
        try config.write(toFile: dir + "/config.toml", atomically: true, encoding: .utf8)
        do {
            daemon = try Proc(["/usr/bin/containerd", "--root", dir + "/root", "--state", dir + "/state",
                               "--address", socket, "--config", dir + "/config.toml"], ioDir: dir + "/io")
        } catch {
            Engines.removeTree(dir)
            throw error
        }
        guard Engines.waitForPath(socket, timeout: 20), try ctr(["version"]).ok else {
            let log = (try? String(contentsOfFile: daemon.stderrPath, encoding: .utf8)) ?? ""
            tearDown()
            throw HarnessError("containerd did not start: \(String(log.suffix(3000)))")
        }
    }

    var log: String { (try? String(contentsOfFile: daemon.stderrPath, encoding: .utf8)) ?? "" }

    /// `ctr --address SOCK -n NS ARGS...`
    @discardableResult
    func ctr(_ args: [String], timeout: Double = 20) throws -> ProcResult {
        try Proc.run(["/usr/bin/ctr", "--address", socket, "-n", namespace] + args, timeout: timeout, ioDir: dir + "/io")
    }

    /// `ctr run` with the runtime under test (or `runtime`), our runc root and fifo dir.
    func runArgs(_ runtime: String? = nil) -> [String] {
        ["run", "--runc-binary", runtime ?? self.runtime, "--runc-root", runcRoot, "--fifo-dir", fifoDir]
    }

    func importImage() throws {
        let tar = dir + "/image.tar"
        try Engines.buildImage(at: tar, scratch: dir)
        let r = try ctr(["image", "import", tar], timeout: 60)
        try #require(r.ok, "ctr image import: \(r)")
    }

    /// The cgroup (v1: in each hierarchy) the runc shim gives container `id`.
    func cgroupDir(_ controller: String, _ id: String) -> String { Host.cgroupDir(controller, "/\(namespace)/\(id)") }

    /// Kills and removes every task and container, stops containerd and its shims, then removes everything.
    func tearDown() {
        if !daemon.isReaped {
            let ids = ((try? ctr(["containers", "list", "-q"]).lines) ?? []).map(String.init)
            for id in ids {
                _ = try? ctr(["task", "kill", "-s", "SIGKILL", id], timeout: 5)
                _ = try? ctr(["task", "delete", "-f", id], timeout: 10)
                _ = try? ctr(["containers", "delete", id], timeout: 10)
            }
            Engines.stop(daemon)
        }
        // shims name our socket on their command line; containers run under our state dir
        Engines.killEverything(under: dir, alsoMatching: ["-namespace \(namespace) "])
        Bundle.removeCgroups(named: ["/" + namespace])
        // the runc shim makes its default runc root even when told another one
        rmdir("/run/containerd/runc/" + namespace)
        Registry.record(dir: dir, cgroups: ["/" + namespace])
        Engines.removeTree(dir)
    }
}

/// Starts a private containerd with the image imported, runs `body`, and always tears it down.
func withContainerd<T>(runtime: String? = nil, _ body: (Containerd) throws -> T) throws -> T {
    try Engines.ensureInstalled(["containerd"])
    let c = try Containerd(runtime: runtime ?? TestEnv.requireRuntime())
    defer { c.tearDown() }
    try c.importImage()
    return try body(c)
}

// MARK: - podman

/// podman with a private root, runroot, tmpdir, volume path, containers.conf (cgroupfs, file events, ulimits
/// the host allows, the runtime's JSON log), and its own cgroup parent for every container.
final class Podman {
    let dir: String
    let runtime: String
    let cgroupParent: String

    init(runtime: String) throws {
        self.runtime = runtime
        dir = try Engines.makeScratch("pod")
        cgroupParent = "/berth-it-pod-" + randomHex(8)
        for d in ["io", "root", "run", "tmp", "vol"] { mkdir(dir + "/" + d, 0o711) }
        // podman sets RLIMIT_NOFILE/NPROC to 1048576 for root: this host cannot raise hard limits (no
        // CAP_SYS_RESOURCE; runc fails the same way), so ask for limits below the host's.
        // runtime_supports_json: podman passes --log-format=json --log FILE only to runtimes named there.
        let supportsJSON = ["crun", "runc", "kata", "runsc", "youki", "krun", Engines.basename(runtime)]
        let conf = """
            [containers]
            default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            events_logfile_path = "\(dir)/events.log"
            runtime_supports_json = [\(supportsJSON.map { "\"\($0)\"" }.joined(separator: ", "))]

            """
        try conf.write(toFile: dir + "/containers.conf", atomically: true, encoding: .utf8)
    }

    var globalArgs: [String] {
        ["--root", dir + "/root", "--runroot", dir + "/run", "--tmpdir", dir + "/tmp", "--volumepath", dir + "/vol",
         "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--storage-driver", "overlay", "--runtime", runtime]
         // no --runtime-flag root=...: podman's exit command (`container cleanup`, which runs `delete --force`)
         // does not pass runtime flags on, so the runtime's state stays in its default root, per container id
    }

    var command: [String] { ["/usr/bin/env", "CONTAINERS_CONF=\(dir)/containers.conf", "/usr/bin/podman"] + globalArgs }

    /// `podman GLOBAL... ARGS...`
    @discardableResult
    func podman(_ args: [String], timeout: Double = 30) throws -> ProcResult {
        try Proc.run(command + args, timeout: timeout, ioDir: dir + "/io")
    }

    /// `podman run` with no network and our cgroup parent, then `args`.
    var runArgs: [String] { ["run", "--network", "none", "--cgroup-parent", cgroupParent] }

    func loadImage() throws {
        let tar = dir + "/image.tar"
        try Engines.buildImage(at: tar, scratch: dir)
        let r = try podman(["load", "-i", tar], timeout: 60)
        try #require(r.ok, "podman load: \(r)")
    }

    /// Removes every container (force), kills conmon and what is left, unmounts, removes cgroups and the dir.
    func tearDown() {
        let ids = ((try? podman(["ps", "--all", "--no-trunc", "--format", "{{.ID}}"]).lines) ?? []).map(String.init)
        _ = try? podman(["rm", "--all", "--force", "--time", "0"], timeout: 30)
        // whatever podman left in the runtime's default root
        for id in ids { _ = try? Proc.run([runtime, "delete", "--force", id], ioDir: dir + "/io") }
        _ = try? podman(["image", "rm", "--all", "--force"], timeout: 30)
        Engines.killEverything(under: dir)
        Bundle.removeCgroups(named: [cgroupParent])
        Registry.record(dir: dir, cgroups: [cgroupParent])
        Engines.removeTree(dir)
    }
}

/// Sets up a private podman with the image loaded, runs `body`, and always tears it down.
func withPodman<T>(runtime: String? = nil, _ body: (Podman) throws -> T) throws -> T {
    try Engines.ensureInstalled(["podman"])
    let p = try Podman(runtime: runtime ?? TestEnv.requireRuntime())
    defer { p.tearDown() }
    try p.loadImage()
    return try body(p)
}

/// Runs `argv` under a pseudo-terminal (util-linux `script`), for `-t`/`-it` flows: stdout is the terminal's.
func underPTY(_ argv: [String], timeout: Double = 30, ioDir: String) throws -> ProcResult {
    func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
    return try Proc.run(["/usr/bin/script", "-qec", argv.map(quote).joined(separator: " "), "/dev/null"],
                        timeout: timeout, ioDir: ioDir)
}
