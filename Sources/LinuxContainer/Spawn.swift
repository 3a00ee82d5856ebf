// The parent's half of the handshake with the container's first child and its init (init.h):
// user namespace maps, cgroup placement, hooks, readiness, and errors reported from inside.
#if canImport(Glibc)
import Glibc
#endif
import CLinux

extension bl_msg {
    /// A child's BL_MSG_ERROR as the error it reports ("operation object: cause"); nil for other messages.
    var childError: LinuxError? {
        guard type == Int32(BL_MSG_ERROR.rawValue) else { return nil }
        let text = withUnsafeBytes(of: self.text) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        return LinuxError(.system, text, errno: err == 0 ? nil : err)
    }
}

/// The parent end of the sync socket.
struct SyncChannel: ~Copyable {
    let fd: OwnedFD

    func send(_ type: bl_msg_type, value: Int64 = 0, text: String? = nil) throws(LinuxError) {
        let r: Int32 = text.map { t in t.withCString { bl_msg_send(fd.raw, Int32(type.rawValue), 0, value, $0) } }
            ?? bl_msg_send(fd.raw, Int32(type.rawValue), 0, value, nil)
        if r < 0 { throw LinuxError.sys("send to container init", errno: errno) }
    }

    /// The next message; an error message from the child is thrown as its text.
    func receive(expecting: bl_msg_type, stage: String) throws(LinuxError) -> bl_msg {
        var m = bl_msg()
        if bl_msg_recv(fd.raw, &m) < 0 {
            let e = errno
            if e == 0 { throw LinuxError(.system, "\(stage): container init exited unexpectedly") }
            throw LinuxError.sys("\(stage): receive from container init", errno: e)
        }
        if let e = m.childError { throw e }
        if m.type != Int32(expecting.rawValue) {
            throw LinuxError(.system, "\(stage): unexpected message \(m.type) from container init")
        }
        return m
    }

    /// Sends a long text in chunks the C side reassembles.
    func sendChunked(_ type: bl_msg_type, _ text: String) throws(LinuxError) {
        let bytes = Array(text.utf8)
        var off = 0
        repeat {
            let end = min(off + 1000, bytes.count)
            let chunk = String(decoding: bytes[off..<end], as: UTF8.self)
            try send(type, value: end == bytes.count ? 1 : 0, text: chunk)
            off = end
        } while off < bytes.count
    }
}

func socketPair() throws(LinuxError) -> (parent: Int32, child: Int32) {
    var fds: [Int32] = [-1, -1]
    try sys("socketpair") { socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
    return (fds[0], fds[1])
}

public struct SpawnHooks {
    /// Runs in the runtime once the init exists (createRuntime and legacy prestart hooks); returns the
    /// state JSON for hooks that run inside the container.
    public var afterInitExists: (Int32) throws(LinuxError) -> String
    public init(afterInitExists: @escaping (Int32) throws(LinuxError) -> String) { self.afterInitExists = afterInitExists }
}

func reap(_ pid: Int32) {
    var status: Int32 = 0
    _ = bl_waitpid(pid, &status, 0)
}

func killAndReap(_ pid: Int32) {
    if pid > 0 {
        kill(pid, SIGKILL)
        reap(pid)
    }
}

/// Starts the container's init; returns its pid once it is set up and blocked on the exec fifo.
/// On failure everything started is killed and reaped (the caller removes its state and cgroup).
public func spawnInit(_ plan: ContainerPlan, execFifo: String, consoleFD: Int32, hooks: SpawnHooks) throws(LinuxError) -> Int32 {
    let cfg = plan.config
    let (parentEnd, childEnd) = try socketPair()
    let channel = SyncChannel(fd: OwnedFD(taking: parentEnd))
    let fifo = open(execFifo, Int32(BL_O_PATH) | O_CLOEXEC)
    if fifo < 0 {
        close(childEnd)
        throw LinuxError.sys("open exec fifo \(execFifo)", errno: errno)
    }
    defer { close(fifo) }
    cfg.pointee.process.sync_fd = childEnd
    cfg.pointee.process.parent_fd = parentEnd
    cfg.pointee.process.exec_fifo_fd = fifo
    cfg.pointee.process.console_socket = consoleFD
    let lateCgroupJoin = (cfg.pointee.new_ns_flags & Int32(BL_CLONE_NEWCGROUP)) == 0
    let child1 = bl_spawn_init(cfg)
    let spawnErrno = errno
    close(childEnd)
    for fd in plan.joinFds { close(fd) }
    if child1 < 0 { throw LinuxError.sys("fork container process", errno: spawnErrno) }
    var initPid: Int32 = -1
    do throws(LinuxError) {
        let m = try channel.receive(expecting: BL_MSG_USERNS_READY, stage: "create namespaces")
        if m.value == 1 { try writeIDMaps(pid: child1, uidMap: plan.uidMap, gidMap: plan.gidMap) }
        var cgroup = plan.cgroup
        if let cg = cgroup {
            do { try cg.create() } catch {
                // rootless without delegation: no cgroup at all, as runc and crun do, when no limit was asked
                guard geteuid() != 0, error.code == .permissionDenied, plan.resources.onlyDevices else { throw error }
                Cgroup.warn("\(error.message): running without a cgroup (not writable by uid \(geteuid()); no limits were requested)")
                cgroup = nil
            }
        }
        if let cg = cgroup {
            try cg.apply(plan.resources)
            // Without a new cgroup namespace the init joins later, while it sets up its mounts: the first
            // write to cgroup.procs can wait ~10 ms for an RCU grace period, and that way it costs nothing.
            if !lateCgroupJoin { try cg.add(pid: child1) }
        }
        if let adj = plan.oomScoreAdj { try writeOOMScoreAdj(pid: child1, adj) }
        try channel.send(BL_MSG_GO)
        let p = try channel.receive(expecting: BL_MSG_INIT_PID, stage: "create namespaces")
        initPid = Int32(truncatingIfNeeded: p.value)
        reap(child1)
        if lateCgroupJoin, let cg = cgroup { try cg.add(pid: initPid) }
        let state = try hooks.afterInitExists(initPid)
        do throws(LinuxError) {
            if plan.wantsHookState { try channel.sendChunked(BL_MSG_STATE, state) }
            try channel.send(BL_MSG_GO)
        } catch {
            // the init failed on its own meanwhile (it works ahead): its message says why
            _ = try channel.receive(expecting: BL_MSG_READY, stage: "set up container")
            throw error
        }
        try channel.handOffSeccompFD(cfg.pointee.process.seccomp, pid: initPid, state: state)
        _ = try channel.receive(expecting: BL_MSG_READY, stage: "set up container")
        return initPid
    } catch {
        killAndReap(initPid)
        killAndReap(child1)
        throw error
    }
}

func writeIDMaps(pid: Int32, uidMap: String?, gidMap: String?) throws(LinuxError) {
    guard let u = uidMap, let g = gidMap else {
        throw LinuxError(.invalidArgument, "user namespace: linux.uidMappings and linux.gidMappings are required")
    }
    if geteuid() != 0 { try FS.writeFile("/proc/\(pid)/setgroups", "deny") }
    do {
        try FS.writeFile("/proc/\(pid)/uid_map", u)
        try FS.writeFile("/proc/\(pid)/gid_map", g)
    } catch {
        throw LinuxError(error.code, "user namespace: \(error.message)", errno: error.errno)
    }
}

func writeOOMScoreAdj(pid: Int32, _ adj: Int) throws(LinuxError) {
    do { try FS.writeFile("/proc/\(pid)/oom_score_adj", String(adj)) } catch {
        if adj < 0 && (error.errno == EACCES || error.errno == EPERM) {
            throw LinuxError(.permissionDenied, "set process.oomScoreAdj to \(adj): permission denied (a negative value needs CAP_SYS_RESOURCE, which this host does not grant)", errno: error.errno)
        }
        throw LinuxError(error.code, "set process.oomScoreAdj to \(adj): \(error.message)", errno: error.errno)
    }
}

public struct ExecTarget {
    public var initPid: Int32
    public var namespaces: [(type: Int32, path: String)]
    public var cgroup: Cgroup?
    /// the container's state JSON (status running) for a seccomp agent (SCMP_ACT_NOTIFY)
    public var seccompState: String?
    public init(initPid: Int32, namespaces: [(type: Int32, path: String)], cgroup: Cgroup?) {
        self.initPid = initPid
        self.namespaces = namespaces
        self.cgroup = cgroup
    }
}

/// A process started inside a running container; `channel` tells when it has exec'd.
public struct ExecHandle: ~Copyable {
    public let pid: Int32
    let channel: SyncChannel

    /// Waits until the process has exec'd (EOF on the close-on-exec socket) or reports why it could not.
    public consuming func waitExec() throws(LinuxError) {
        var m = bl_msg()
        while true {
            if bl_msg_recv(channel.fd.raw, &m) < 0 { return }
            if let e = m.childError { throw e }
        }
    }
}

/// Starts `process` inside the container whose init is `target.initPid`.
public func spawnExec(_ process: bl_process, target: ExecTarget, options: ContainerOptions, consoleFD: Int32, oomScoreAdj: Int?) throws(LinuxError) -> ExecHandle {
    let cfg = UnsafeMutablePointer<bl_exec_config>.allocate(capacity: 1)
    cfg.initialize(to: bl_exec_config())
    cfg.pointee.process = process
    // user namespace first; the rest in a fixed order, mount last but one so paths still resolve
    let order: [Int32] = [Int32(BL_CLONE_NEWUSER), Int32(BL_CLONE_NEWIPC), Int32(BL_CLONE_NEWUTS), Int32(BL_CLONE_NEWNET),
                          Int32(BL_CLONE_NEWPID), Int32(BL_CLONE_NEWCGROUP), Int32(BL_CLONE_NEWTIME), Int32(BL_CLONE_NEWNS)]
    var fds: [(Int32, Int32)] = []
    for t in order {
        guard let ns = target.namespaces.first(where: { $0.type == t }) else { continue }
        let fd = open(ns.path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            for (f, _) in fds { close(f) }
            throw LinuxError.sys("open namespace \(ns.path)", errno: e)
        }
        fds.append((fd, t))
    }
    withUnsafeMutablePointer(to: &cfg.pointee.ns_fds) { p in
        p.withMemoryRebound(to: Int32.self, capacity: 8) { for i in 0..<8 { $0[i] = i < fds.count ? fds[i].0 : -1 } }
    }
    withUnsafeMutablePointer(to: &cfg.pointee.ns_types) { p in
        p.withMemoryRebound(to: Int32.self, capacity: 8) { for i in 0..<8 { $0[i] = i < fds.count ? fds[i].1 : 0 } }
    }
    cfg.pointee.nns = Int32(fds.count)
    let (parentEnd, childEnd) = try socketPair()
    let channel = SyncChannel(fd: OwnedFD(taking: parentEnd))
    cfg.pointee.process.sync_fd = childEnd
    cfg.pointee.process.parent_fd = parentEnd
    cfg.pointee.process.console_socket = consoleFD
    cfg.pointee.process.exec_fifo_fd = -1
    let child1 = bl_spawn_exec(cfg)
    let spawnErrno = errno
    close(childEnd)
    for (f, _) in fds { close(f) }
    if child1 < 0 { throw LinuxError.sys("fork exec process", errno: spawnErrno) }
    var pid: Int32 = -1
    do {
        let p = try channel.receive(expecting: BL_MSG_INIT_PID, stage: "join container")
        pid = Int32(truncatingIfNeeded: p.value)
        reap(child1)
        if let cg = target.cgroup { try cg.add(pid: pid) }
        if let adj = oomScoreAdj { try writeOOMScoreAdj(pid: pid, adj) }
        try channel.send(BL_MSG_GO)
        try channel.handOffSeccompFD(process.seccomp, pid: pid,
                                     state: target.seccompState ?? "{\"ociVersion\":\"1.0.2\",\"status\":\"running\",\"pid\":\(target.initPid)}")
        _ = try channel.receive(expecting: BL_MSG_READY, stage: "set up process")
        return ExecHandle(pid: pid, channel: channel)
    } catch {
        killAndReap(pid)
        killAndReap(child1)
        throw error
    }
}

/// Runs a hook from the runtime (createRuntime, prestart, poststart, poststop).
public func runHook(_ hook: bl_hook, state: String) throws(LinuxError) {
    var h = hook
    var err = [CChar](repeating: 0, count: 1024)
    let r = state.withCString { s in bl_run_hook(&h, s, &err, err.count) }
    if r != 0 {
        let text = String(cBuffer: err)
        throw LinuxError(.system, text)
    }
}
