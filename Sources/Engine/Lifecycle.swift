import CLinux
import Foundation
import Glibc
import Images

extension Engine {
    // MARK: start

    public func start(_ ref: String) async throws(EngineError) {
        let r = try resolve(ref)
        switch r.state.status {
        case .running, .paused: throw EngineError(.notModified, "container already started")
        case .removing, .dead: throw EngineError(.conflict, "container \(r.id) is marked for removal and cannot be started")
        default: break
        }
        if starting.contains(r.id) { throw EngineError(.notModified, "container already started") }
        starting.insert(r.id)
        defer { starting.remove(r.id) }
        restartTasks[r.id]?.cancel()
        restartTasks[r.id] = nil
        do {
            try await launch(r.id)
        } catch {
            await startFailed(r.id, error)
            throw error
        }
    }

    /// A start that failed: the error and Docker's code (126/127 when the command could not run, else 128)
    /// are recorded, attaches and exit waiters are released, and an AutoRemove container goes away.
    func startFailed(_ id: String, _ error: EngineError) async {
        failPendingAttach(id, error)
        guard var cur = containers[id] else { return }
        let code: Int32 = { if case .cannotExec(let c) = error.code { return c }; return 128 }()
        cur.state.error = error.message
        cur.state.exitCode = code
        if cur.state.status == .restarting { cur.state.status = .exited }
        if cur.state.status == .exited { cur.state.finishedAt = Date() }
        try? save(cur)
        let ws = waiters[id] ?? []
        waiters[id] = ws.filter { $0.condition == .removed }
        for w in ws where w.condition != .removed { w.cont.resume(returning: (code, error.message)) }
        if cur.hostConfig.autoRemove { try? await remove(id, force: true, volumes: false) }
    }

    /// Mounts, writes the bundle, spawns the shim, connects waiting attaches, starts, watches the exit.
    func launch(_ id: String) async throws(EngineError) {
        launching.insert(id)
        do {
            try await launchLocked(id)
        } catch {
            launching.remove(id)
            earlyExits[id] = nil
            throw error
        }
        launching.remove(id)
        if let (code, at, lost) = earlyExits.removeValue(forKey: id) {
            await exited(id, code: code, at: at, lost: lost)
        }
    }

    private func launchLocked(_ id: String) async throws(EngineError) {
        guard var r = containers[id] else { throw EngineError.noSuchContainer(id) }
        let opts = options
        let bundle = bundle(id), rootfs = rootfs(id), state = stateDir(id), netns = netnsPath(id)
        let shimClient = shim(id)
        let spawn = ShimClient.Spawn(
            shim: opts.shim, runtime: opts.runtime, runtimeRoot: opts.execRoot + "/runtime", id: id, bundle: bundle,
            tty: r.config.tty, stdin: r.config.openStdin, stdinOnce: r.config.stdinOnce, logPath: logPath(id),
            logMaxSize: r.hostConfig.logMaxSize, logMaxFiles: r.hostConfig.logMaxFiles)
        let record = r
        let initPath = opts.initBinary.flatMap { access($0, X_OK) == 0 ? $0 : nil }
        if record.hostConfig.initProcess && initPath == nil {
            throw EngineError(.invalidArgument, "--init needs \(opts.initBinary ?? "an init binary") (Debian's tini package)")
        }
        let pid: Int32
        do {
            pid = try await blocking { () throws(EngineError) -> Int32 in
                try Host.mountRootfs(record.mounts, at: rootfs)
                do {
                    let hn = SpecBuilder.hostname(record)
                    try Host.writeFile(bundle + "/hostname", hn + "\n", durable: false)
                    try Host.writeFile(bundle + "/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                        + "127.0.0.1\t\(hn)\n" + record.hostConfig.extraHosts.map { h -> String in
                            let p = h.split(separator: ":", maxSplits: 1)
                            return p.count == 2 ? "\(p[1])\t\(p[0])\n" : ""
                        }.joined(), durable: false)
                    var resolv = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
                    if !record.hostConfig.dns.isEmpty { resolv = record.hostConfig.dns.map { "nameserver \($0)\n" }.joined() }
                    try Host.writeFile(bundle + "/resolv.conf", resolv, durable: false)
                    var netnsArg: String?
                    if record.hostConfig.networkMode != "host" {
                        Host.removeNetns(at: netns)
                        try Host.makeNetns(at: netns)
                        netnsArg = netns
                    }
                    let spec = try SpecBuilder.build(record, bundle: bundle, rootfs: rootfs, cgroupsPath: Engine.cgroupsPath(record.id),
                                                     initPath: initPath, netnsPath: netnsArg)
                    let data = try JSONSerialization.data(withJSONObject: spec, options: [.sortedKeys])
                    try Host.writeFile(bundle + "/config.json", String(decoding: data, as: UTF8.self), durable: false)
                    Host.removeTree(state)
                    guard mkdir(state, 0o700) == 0 else { throw EngineError.system("create \(state)") }
                    return try shimClient.spawn(spawn)
                } catch {
                    Host.unmount(rootfs)
                    Host.removeNetns(at: netns)
                    throw EngineError.wrap(error)
                }
            }
        } catch { throw EngineError.wrap(error) }
        // Attaches that waited for the start get their streams before the process runs.
        for p in pendingAttach.removeValue(forKey: id) ?? [] {
            do {
                let (fd, reply) = try await blocking { try shimClient.request(p.request) }
                do { _ = try ShimClient.check(reply); p.cont.resume(returning: fd) } catch { close(fd); p.cont.resume(throwing: error) }
            } catch { p.cont.resume(throwing: error) }
        }
        do {
            let fd = try await blocking { try shimClient.send("wait") }
            watchExit(id, fd: fd)
        } catch {
            try? await blocking { _ = try? shimClient.call("kill 9") }
            throw EngineError.wrap(error)
        }
        do { _ = try await blocking { try shimClient.call("start") } } catch {
            try? await blocking { _ = try? shimClient.call("kill 9") }
            throw EngineError.wrap(error)
        }
        r = containers[id] ?? r
        r.state.status = .running
        r.state.pid = pid
        r.state.startedAt = Date()
        r.state.exitCode = 0
        r.state.error = ""
        r.state.stoppedByUser = false
        try save(r)
        events.emit("container", "start", id: id, ["name": r.name, "image": r.imageRef])
    }

    nonisolated func watchExit(_ id: String, fd: Int32) {
        monitor.watch(fd: fd) { [weak self] line in
            guard let self else { return }
            Task { await self.shimReported(id, line: line) }
        }
    }
}
