// exec: a new process in a running container, built from the container's process (runc does the
// same) with the caller's overrides, or from a --process JSON file.
#if canImport(Glibc)
import Glibc
#endif
import CLinux
import LinuxContainer
import OCI

public struct ExecOptions: Sendable {
    public var processFile: String?
    public var args: [String] = []
    public var env: [String] = []
    public var cwd: String?
    public var user: String?
    public var additionalGids: [UInt32] = []
    public var caps: [String] = []
    public var tty: Bool?
    public var noNewPrivs = false
    public var detach = false
    public var pidFile: String?
    public var consoleSocket: String?
    public var preserveFds = 0
    public init() {}
}

extension Runtime {
    func execProcess(_ spec: Spec, _ o: ExecOptions) throws(RuntimeError) -> OCI.Process {
        if let file = o.processFile {
            let bytes = try linux { () throws(LinuxError) in try FS.readFile(file) }
            do {
                let p = try OCI.Process(json: try JSON.parse(bytes))
                try p.validate()
                return p
            } catch { throw RuntimeError(.invalidArgument, "process \(file): \(error.message)") }
        }
        guard !o.args.isEmpty else { throw RuntimeError(.invalidArgument, "exec: the command to run is missing (args or --process)") }
        var p = spec.process ?? OCI.Process()
        p.args = o.args
        p.env += o.env
        p.terminal = o.tty ?? false
        p.consoleSize = nil
        if let c = o.cwd { p.cwd = c }
        if let u = o.user {
            let parts = u.split(separator: ":", maxSplits: 1)
            guard let uid = UInt32(parts[0]) else { throw RuntimeError(.invalidArgument, "exec --user \(u): must be uid[:gid]") }
            p.user.uid = uid
            if parts.count == 2 {
                guard let gid = UInt32(parts[1]) else { throw RuntimeError(.invalidArgument, "exec --user \(u): must be uid[:gid]") }
                p.user.gid = gid
            }
        }
        if !o.additionalGids.isEmpty { p.user.additionalGids = o.additionalGids }
        if !o.caps.isEmpty {
            var c = p.capabilities ?? Capabilities()
            for cap in o.caps {
                let name = cap.uppercased().hasPrefix("CAP_") ? cap.uppercased() : "CAP_" + cap.uppercased()
                guard Capabilities.number(of: name) != nil else { throw RuntimeError(.invalidArgument, "exec --cap \(cap): unknown capability") }
                for set in [\Capabilities.bounding, \.effective, \.permitted] where !c[keyPath: set].contains(name) {
                    c[keyPath: set].append(name)
                }
            }
            p.capabilities = c
        }
        if o.noNewPrivs { p.noNewPrivileges = true }
        do { try p.validate() } catch { throw RuntimeError(error) }
        return p
    }

    /// Starts the process; returns its exit code (foreground) or 0 once it runs (detached).
    public func exec(_ id: String, _ o: ExecOptions) throws(RuntimeError) -> Int32 {
        let r = try root.load(id)
        let st = status(of: r)
        switch st {
        case .running, .created: break
        case .paused: throw RuntimeError(.failedPrecondition, "cannot exec in a paused container (use --ignore-paused to override)")
        case .stopped: throw RuntimeError(.failedPrecondition, "cannot exec in a stopped container")
        case .creating: throw RuntimeError(.failedPrecondition, "cannot exec in a container that is being created")
        }
        let spec = try root.config(id)
        let process = try execProcess(spec, o)
        var copts = ContainerOptions()
        copts.preserveFds = o.preserveFds
        copts.consoleSocket = o.consoleSocket
        let own: OwnConsole? = process.terminal && o.consoleSocket == nil && !o.detach ? try OwnConsole.make() : nil
        copts.ownConsole = own != nil
        if process.terminal && o.consoleSocket == nil && o.detach {
            throw RuntimeError(.invalidArgument, "exec --tty --detach needs --console-socket")
        }
        var bp = try linux { () throws(LinuxError) in try ContainerPlan.cProcess(process, options: copts, execFifo: false, seccomp: spec.linux?.seccomp) }
        bp.setsid = process.terminal ? 1 : 0
        var namespaces: [(type: Int32, path: String)] = []
        for ns in spec.linux?.namespaces ?? [] {
            namespaces.append((namespaceFlags[ns.type]!, "/proc/\(r.pid)/ns/\(namespaceProcNames[ns.type]!)"))
        }
        // recheck the init right before we open its namespaces: never join a reused pid's
        guard r.process?.liveness == .alive else { throw RuntimeError(.failedPrecondition, "cannot exec in a stopped container") }
        var consoleFD: Int32 = own?.childEnd ?? -1
        if let cs = o.consoleSocket {
            consoleFD = bl_connect_unix(cs)
            if consoleFD < 0 { throw RuntimeError(.invalidArgument, "connect to console socket \(cs): \(errnoString(errno))") }
        }
        defer { if o.consoleSocket != nil && consoleFD >= 0 { close(consoleFD) } }
        let sfd = o.detach ? -1 : Foreground.blockSignals()
        var target = ExecTarget(initPid: r.pid, namespaces: namespaces, cgroup: r.cgroup)
        target.seccompState = hookState(r, status: .running, pid: r.pid)
        let pid: Int32
        do throws(LinuxError) {
            let handle = try spawnExec(bp, target: target, options: copts, consoleFD: consoleFD, oomScoreAdj: process.oomScoreAdj)
            pid = handle.pid
            try handle.waitExec()
        } catch { throw RuntimeError(error) }
        if let pf = o.pidFile { try writePidFile(pf, pid) }
        if o.detach { return 0 }
        let master = try own?.receiveMaster()
        return Foreground.wait(pid: pid, signalFD: sfd, master: master)
    }

    /// `run`: create + start, then (unless detached) wait, forward signals and delete.
    public func run(_ id: String, options: CreateOptions, detach: Bool, keep: Bool) throws(RuntimeError) -> Int32 {
        let spec = try peekProcess(options.bundle)
        let own: OwnConsole? = spec.terminal && options.consoleSocket == nil && !detach ? try OwnConsole.make() : nil
        let sfd = detach ? -1 : Foreground.blockSignals()
        if !detach { _ = bl_set_subreaper() }
        let r = try create(id: id, options: options, ownConsoleFD: own?.childEnd)
        let master: Int32?
        do {
            master = try own?.receiveMaster()
            try start(id)
        } catch {
            try? destroy(r, status: .created)
            throw error
        }
        if detach { return 0 }
        let code = Foreground.wait(pid: r.pid, signalFD: sfd, master: master)
        if !keep {
            if let latest = try? root.load(id) { try destroy(latest, status: status(of: latest)) }
        }
        return code
    }

    func peekProcess(_ bundle: String) throws(RuntimeError) -> OCI.Process {
        guard let bytes = try? FS.readFile(bundle + "/config.json"), let spec = try? Spec.parse(bytes) else {
            return OCI.Process()
        }
        return spec.process ?? OCI.Process()
    }
}
