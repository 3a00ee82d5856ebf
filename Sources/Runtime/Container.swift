// The runc-compatible operations on one container: create, start, state, kill, delete, exec, ps.
#if canImport(Glibc)
import Glibc
#endif
import CLinux
import LinuxContainer
import OCI

public struct CreateOptions: Sendable {
    public var bundle: String = "."
    public var pidFile: String?
    public var consoleSocket: String?
    public var noPivot = false
    public var noNewKeyring = false
    public var preserveFds = 0
    public init() {}
}

/// LISTEN_FDS of the runtime's environment (systemd socket activation), when set.
var listenFds: Int? {
    guard let v = getenv("LISTEN_FDS"), let n = Int(String(cString: v)) else { return nil }
    return n
}

public struct Runtime: Sendable {
    public let root: StateRoot
    public init(root: String) {
        self.root = StateRoot(path: root)
        // not a valid container id, so never a container's state directory
        Seccomp.cacheDirectory = root + "/@seccomp-cache"
        // cgroup warnings (ignored fields, rootless without a cgroup) go where our log goes
        Cgroup.warn = { Log.warn($0) }
    }

    // MARK: status

    /// The live status: the init's pid and start time decide whether it still runs.
    public func status(of r: ContainerRecord) -> Status {
        if r.status == .creating { return .creating }
        guard let p = r.process, p.liveness == .alive else { return .stopped }
        if FS.exists(root.dir(r.id) + "/exec.fifo") { return .created }
        if let cg = r.cgroup, Self.isFrozen(cg) { return .paused }
        return .running
    }

    static func isFrozen(_ cg: Cgroup) -> Bool {
        switch cg.mode {
        case .v1:
            guard let f = cg.paths.first(where: { $0.name == "freezer" }) else { return false }
            return ((try? FS.readString(f.dir + "/freezer.state")) ?? "").hasPrefix("FROZEN")
        case .v2:
            guard let d = cg.paths.first else { return false }
            return ((try? FS.readString(d.dir + "/cgroup.freeze")) ?? "").hasPrefix("1")
        }
    }

    public func state(_ id: String) throws(RuntimeError) -> JSON {
        let r = try root.load(id)
        return stateJSON(r, status: status(of: r))
    }

    func stateJSON(_ r: ContainerRecord, status: Status) -> JSON {
        var o: [(key: String, value: JSON)] = [
            ("ociVersion", .string("1.0.2")), ("id", .string(r.id)),
            ("pid", .number(String(status == .stopped ? 0 : r.pid))), ("status", .string(status.rawValue)),
            ("bundle", .string(r.bundle)), ("rootfs", .string(r.rootfs)), ("created", .string(r.created)),
            ("owner", .string(r.owner)),
        ]
        if !r.annotations.isEmpty { o.append(("annotations", .object(r.annotations.map { ($0.key, JSON.string($0.value)) }))) }
        return .object(o)
    }

    /// The spec's state for hooks (runtime.md): ociVersion, id, status, pid, bundle, annotations.
    func hookState(_ r: ContainerRecord, status: Status, pid: Int32) -> String {
        var o: [(key: String, value: JSON)] = [
            ("ociVersion", .string("1.0.2")), ("id", .string(r.id)), ("status", .string(status.rawValue)),
            ("pid", .number(String(pid))), ("bundle", .string(r.bundle)),
        ]
        if !r.annotations.isEmpty { o.append(("annotations", .object(r.annotations.map { ($0.key, JSON.string($0.value)) }))) }
        return JSON.object(o).serialized()
    }

    // MARK: create

    /// Validates everything, then creates the state dir and the init, blocked on the exec fifo.
    @discardableResult
    public func create(id: String, options: CreateOptions, ownConsoleFD: Int32? = nil) throws(RuntimeError) -> ContainerRecord {
        let ownConsole = ownConsoleFD != nil
        do { try Spec.validateContainerID(id) } catch { throw RuntimeError(error) }
        let bundle = try linux { () throws(LinuxError) in try FS.realpath(options.bundle) }
        let bytes: [UInt8]
        do { bytes = try FS.readFile(bundle + "/config.json") } catch {
            throw RuntimeError(.invalidArgument, "read \(bundle)/config.json: \(error.errno.map(errnoString) ?? error.message)")
        }
        var spec: Spec
        do {
            spec = try Spec.parse(bytes)
            try spec.validate()
        } catch { throw RuntimeError(error) }
        // socket activation: the preserved fds are the container's, and so is pid 1 (as runc does)
        if let n = listenFds, n > 0 {
            spec.process?.env += ["LISTEN_FDS=\(n)", "LISTEN_PID=1"]
        }
        if FS.exists(root.dir(id) + "/state.json") { throw RuntimeError(.alreadyExists, "container with id exists: \(id)") }
        var copts = ContainerOptions()
        copts.noPivot = options.noPivot
        copts.noNewKeyring = options.noNewKeyring
        copts.preserveFds = options.preserveFds
        copts.consoleSocket = options.consoleSocket
        copts.ownConsole = ownConsole
        let cgroupsPath = spec.linux?.cgroupsPath ?? "/\(id)"
        // the first cgroup.procs write waits for an RCU grace period: start one now, in parallel
        let primer = Cgroup.primeAttach()
        defer {
            if let p = primer {
                Glibc.kill(p, SIGKILL)
                var st: Int32 = 0
                _ = bl_waitpid(p, &st, 0)
            }
        }
        let plan = try linux { () throws(LinuxError) in
            try ContainerPlan(spec: spec, bundle: bundle, cgroupsPath: cgroupsPath, options: copts)
        }
        let hooks = spec.hooks ?? Hooks()
        let runtimeHooks = (hooks.createRuntime + hooks.prestart).map(ContainerPlan.cHook)

        // first side effect
        try root.createDir(id)
        var record = ContainerRecord(id: id, bundle: bundle, rootfs: plan.rootfs, created: Clock.rfc3339(), annotations: spec.annotations)
        record.cgroup = plan.cgroup
        var consoleFD: Int32 = -1
        var spawned = false
        do throws(RuntimeError) {
            try linux { () throws(LinuxError) in try FS.writeAtomically(bytes, to: root.dir(id) + "/config.json", mode: 0o600) }
            try root.save(record)
            let fifo = root.dir(id) + "/exec.fifo"
            if bl_mkfifo(fifo, 0o622) != 0 || chmod(fifo, 0o622) != 0 {
                throw RuntimeError(.system, "create exec fifo \(fifo): \(errnoString(errno))")
            }
            // the init opens it for writing after it dropped privileges: its root owns it
            if plan.newUserNamespace, let (uid, gid) = plan.containerRootOnHost, chown(fifo, uid, gid) != 0 {
                throw RuntimeError(.system, "chown exec fifo \(fifo): \(errnoString(errno))")
            }
            if let cs = options.consoleSocket {
                consoleFD = bl_connect_unix(cs)
                if consoleFD < 0 { throw RuntimeError(.invalidArgument, "connect to console socket \(cs): \(errnoString(errno))") }
            } else if ownConsole {
                consoleFD = ownConsoleFD!
            }
            let snapshot = record
            spawned = true
            let pid = try linux { () throws(LinuxError) in
                try spawnInit(plan, execFifo: fifo, consoleFD: consoleFD, hooks: SpawnHooks { (pid: Int32) throws(LinuxError) -> String in
                    let state = self.hookState(snapshot, status: .creating, pid: pid)
                    for (i, h) in runtimeHooks.enumerated() {
                        do throws(LinuxError) { try runHook(h, state: state) } catch {
                            throw LinuxError(.system, "\(i < hooks.createRuntime.count ? "createRuntime" : "prestart") hook #\(i < hooks.createRuntime.count ? i : i - hooks.createRuntime.count): \(error.message)")
                        }
                    }
                    return state
                })
            }
            if consoleFD >= 0 && !ownConsole { close(consoleFD) }
            consoleFD = -1
            // rootless without delegation runs without one: then the record must not claim it
            if let cg = record.cgroup, !cg.exists { record.cgroup = nil }
            guard let ref = ProcessRef.current(pid) else { throw RuntimeError(.system, "container init \(pid) exited during create") }
            record.pid = pid
            record.startTime = ref.startTime
            record.status = .created
            try root.save(record)
            if let pf = options.pidFile { try writePidFile(pf, pid) }
            return record
        } catch {
            if consoleFD >= 0 && !ownConsole { close(consoleFD) }
            if let p = record.process { try? p.signal(SIGKILL) }
            try? plan.cgroup?.remove()
            // a failed create continues at delete (runtime.md lifecycle): poststop hooks run too
            if spawned { runPoststop(hooks.poststop, hookState(record, status: .stopped, pid: 0)) }
            try? root.remove(id)
            throw error
        }
    }

    func writePidFile(_ path: String, _ pid: Int32) throws(RuntimeError) {
        let abs = path.hasPrefix("/") ? path : currentDirectory() + "/" + path
        try linux { () throws(LinuxError) in try FS.writeAtomically(Array(String(pid).utf8), to: abs, mode: 0o644) }
    }

    func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: 4097)
        guard getcwd(&buf, 4096) != nil else { return "." }
        return String(cBuffer: buf)
    }

    // MARK: start

    public func start(_ id: String) throws(RuntimeError) {
        let lock = try root.lock(id)
        _ = lock
        var r = try root.load(id)
        let st = status(of: r)
        switch st {
        case .created: break
        case .stopped: throw RuntimeError(.failedPrecondition, "cannot start a container that has stopped")
        case .running, .paused: throw RuntimeError(.failedPrecondition, "cannot start an already running container")
        case .creating: throw RuntimeError(.failedPrecondition, "cannot start a container that is still being created")
        }
        let fifo = root.dir(id) + "/exec.fifo"
        let fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 { throw RuntimeError(.system, "open exec fifo: \(errnoString(errno))") }
        defer { close(fd) }
        var byte: UInt8 = 0
        var waited = 0
        while true {
            let n = read(fd, &byte, 1)
            if n == 1 { break }
            if n < 0 && errno != EAGAIN && errno != EINTR { throw RuntimeError(.system, "read exec fifo: \(errnoString(errno))") }
            // no writer yet (n == 0) or nothing written yet: the init is on its way, unless it died. An init
            // that opened the fifo, wrote its byte, exec'd and exited between our read and this check did
            // start: its byte is still in the fifo.
            if r.process?.liveness != .alive {
                if read(fd, &byte, 1) == 1 { break }
                throw RuntimeError(.failedPrecondition, "cannot start a container that has stopped")
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, waited < 100 ? 1 : 10)
            waited += 1
        }
        unlink(fifo)
        r.status = .running
        try root.save(r)
        let spec = try root.config(id)
        let hooks = spec.hooks?.poststart ?? []
        if !hooks.isEmpty {
            let state = hookState(r, status: .running, pid: r.pid)
            for (i, h) in hooks.enumerated() {
                do { try runHook(ContainerPlan.cHook(h), state: state) } catch {
                    Log.warn("poststart hook #\(i): \(error.message)")
                }
            }
        }
    }

    // MARK: kill

    public func kill(_ id: String, signal sig: Int32, all: Bool) throws(RuntimeError) {
        let r = try root.load(id)
        let st = status(of: r)
        if st == .stopped && !all { throw RuntimeError(.failedPrecondition, "container not running") }
        if st == .creating { throw RuntimeError(.failedPrecondition, "container \"\(id)\" is still being created") }
        if all, let cg = r.cgroup {
            if st == .paused && sig == SIGKILL { try? freeze(cg, false) }
            for pid in cg.pids() { _ = Glibc.kill(pid, sig) }
            return
        }
        guard let p = r.process else { throw RuntimeError(.failedPrecondition, "container not running") }
        do { try p.signal(sig) } catch {
            if error.code == .notFound { throw RuntimeError(.failedPrecondition, "container not running") }
            throw RuntimeError(error)
        }
    }

    // MARK: delete

    public func delete(_ id: String, force: Bool) throws(RuntimeError) {
        let lock: OwnedFD
        do { lock = try root.lock(id) } catch {
            if force && error.code == .notFound { return }
            throw error
        }
        _ = lock
        let r: ContainerRecord
        do { r = try root.load(id) } catch {
            if force && error.code == .notFound { return }
            throw error
        }
        let st = status(of: r)
        switch st {
        case .stopped, .created, .creating: break
        case .running, .paused:
            if !force { throw RuntimeError(.failedPrecondition, "cannot delete container \(id) that is not stopped: \(st.rawValue)") }
        }
        try destroy(r, status: st)
    }

    /// Kills what is left, removes the cgroup, runs poststop hooks, removes the state.
    func destroy(_ r: ContainerRecord, status st: Status) throws(RuntimeError) {
        if let cg = r.cgroup {
            if st == .paused { try? freeze(cg, false) }
            for _ in 0..<3 {
                let pids = cg.pids()
                if pids.isEmpty { break }
                if st == .paused { try? freeze(cg, false) }
                for pid in pids { _ = Glibc.kill(pid, SIGKILL) }
                for pid in pids { _ = ProcessRef.current(pid)?.waitGone(timeoutMs: 2000) }
            }
        }
        if let p = r.process, p.liveness == .alive {
            try? p.signal(SIGKILL)
            _ = p.waitGone(timeoutMs: 5000)
        }
        if let cg = r.cgroup {
            do { try cg.remove() } catch { Log.warn("delete \(r.id): \(error.message)") }
        }
        if st != .creating, let spec = try? root.config(r.id), let hooks = spec.hooks?.poststop, !hooks.isEmpty {
            runPoststop(hooks, hookState(r, status: .stopped, pid: 0))
        }
        try root.remove(r.id)
    }

    /// poststop failures are warnings: the container is gone either way
    func runPoststop(_ hooks: [Hook], _ state: String) {
        for (i, h) in hooks.enumerated() {
            do throws(LinuxError) { try runHook(ContainerPlan.cHook(h), state: state) } catch { Log.warn("poststop hook #\(i): \(error.message)") }
        }
    }

    // MARK: list, ps

    public func list() -> [JSON] {
        root.ids().compactMap { id in
            guard let r = try? root.load(id) else { return nil }
            return stateJSON(r, status: status(of: r))
        }
    }

    public func pids(_ id: String) throws(RuntimeError) -> [Int32] {
        let r = try root.load(id)
        if let cg = r.cgroup { return cg.pids() }
        if let p = r.process, p.liveness == .alive { return [p.pid] }
        return []
    }
}
