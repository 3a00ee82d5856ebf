import CEngine
import Foundation
import Glibc
import Images

extension Engine {
    /// The shim's `wait` reply (`ok exited CODE NANOS`), or nil when the connection closed without one (the
    /// shim died): then the exit file says what happened, or the container is lost (255).
    func shimReported(_ id: String, line: String?) async {
        var code: Int32 = 255
        var finished = Date()
        var lost = false
        if let line, line.hasPrefix("ok exited ") {
            let f = line.split(separator: " ")
            if f.count >= 4, let c = Int32(f[2]), let ns = Double(f[3]) { code = c; finished = Date(timeIntervalSince1970: ns / 1e9) }
        } else if let e = shim(id).exitRecord() {
            (code, finished) = e
        } else {
            lost = true
        }
        await exited(id, code: code, at: finished, lost: lost)
    }

    /// Records an exit: state, mounts, netns, events, waiters; then AutoRemove or the restart policy.
    func exited(_ id: String, code: Int32, at finished: Date, lost: Bool) async {
        if launching.contains(id) {
            // The process exited before `launch` recorded it as running: it finishes the job.
            earlyExits[id] = (code, finished, lost)
            return
        }
        guard var r = containers[id], r.state.status == .running || r.state.status == .paused else { return }
        r.state.status = .exited
        r.state.exitCode = code
        r.state.finishedAt = finished
        r.state.pid = 0
        if lost { r.state.error = "the container's shim exited without recording an exit status" }
        try? save(r)
        let rootfs = rootfs(id), netns = netnsPath(id), state = stateDir(id)
        let runtime = options.runtime, runtimeRoot = options.execRoot + "/runtime"
        try? await blocking {
            Host.unmount(rootfs)
            Host.removeNetns(at: netns)
            if lost { Engine.runtimeDelete(runtime, root: runtimeRoot, id: id) }
            Host.removeTree(state)
        }
        events.emit("container", "die", id: id, ["name": r.name, "image": r.imageRef, "exitCode": String(code)])
        for e in execs.values where e.containerID == id && e.running { execs[e.id]?.running = false }
        let ws = waiters[id] ?? []
        waiters[id] = ws.filter { $0.condition == .removed }
        for w in ws where w.condition != .removed { w.cont.resume(returning: (code, nil)) }
        if r.hostConfig.autoRemove {
            try? await remove(id, force: true, volumes: false)
            return
        }
        scheduleRestart(r)
    }

    /// Docker's policy: always / unless-stopped restart unless stopped by the user; on-failure on a non-zero
    /// code up to the maximum. The delay starts at 100 ms and doubles per consecutive restart (max 1 min).
    func shouldRestart(_ r: ContainerRecord, daemonStart: Bool = false) -> Bool {
        switch r.hostConfig.restartPolicy.name {
        case .no: return false
        case .always: return !r.state.stoppedByUser || daemonStart
        case .unlessStopped: return !r.state.stoppedByUser
        case .onFailure:
            let max = r.hostConfig.restartPolicy.maximumRetryCount
            return !r.state.stoppedByUser && r.state.exitCode != 0 && (max == 0 || r.state.restartCount < max)
        }
    }

    func scheduleRestart(_ rec: ContainerRecord, daemonStart: Bool = false) {
        guard shouldRestart(rec, daemonStart: daemonStart) else { return }
        var r = rec
        r.state.status = .restarting
        r.state.restartCount += 1
        try? save(r)
        let ran = r.state.startedAt.map { (r.state.finishedAt ?? Date()).timeIntervalSince($0) } ?? 0
        let n = ran > 10 ? 0 : min(r.state.restartCount - 1, 10)
        let delay = daemonStart ? 0 : min(0.1 * pow(2, Double(n)), 60)
        let id = r.id
        restartTasks[id] = Task { [weak self] in
            if delay > 0 { try? await Task.sleep(nanoseconds: UInt64(delay * 1e9)) }
            if Task.isCancelled { return }
            await self?.restartNow(id)
        }
    }

    func restartNow(_ id: String) async {
        restartTasks[id] = nil
        guard let r = containers[id], r.state.status == .restarting else { return }
        do {
            try await launch(id)
            events.emit("container", "restart", id: id, ["name": r.name])
        } catch {
            log.warning("restart of \(r.shortID) failed: \(error.message)")
            if var cur = containers[id] {
                cur.state.status = .exited
                cur.state.error = error.message
                try? save(cur)
                scheduleRestart(cur)
            }
        }
    }

    nonisolated static func runtimeDelete(_ runtime: String, root: String, id: String) {
        _ = try? Proc.run([runtime, "--root", root, "delete", "--force", id])
    }

    // MARK: signals

    public func kill(_ ref: String, signal: String?) async throws(EngineError) {
        var r = try resolve(ref)
        let sig = try signal.map { (s: String) throws(EngineError) -> Int32 in
            guard let n = SpecBuilder.signalNumber(s) else { throw EngineError(.invalidArgument, "Invalid signal: \(s)") }
            return n
        } ?? SIGKILL
        guard r.state.running else {
            throw EngineError(.conflict, "Cannot kill container: \(ref): container \(r.id) is not running")
        }
        if r.state.status == .paused && sig != SIGKILL {
            throw EngineError(.conflict, "Cannot kill container: \(ref): container \(r.id) is paused. Unpause the container before stopping or killing")
        }
        if sig == SIGKILL || sig == (r.config.stopSignal.flatMap(SpecBuilder.signalNumber) ?? SIGTERM) {
            r.state.stoppedByUser = true
            try save(r)
        }
        let client = shim(r.id)
        if r.state.status == .paused {
            // A frozen cgroup keeps SIGKILL pending; thaw after signalling, as Docker does.
            _ = try? await blocking { try client.call("kill \(sig)") }
            try? await unpause(r.id)
        } else {
            do { _ = try await blocking { try client.call("kill \(sig)") } } catch {
                throw EngineError(.conflict, "Cannot kill container: \(ref): \(EngineError.wrap(error).message)")
            }
        }
        events.emit("container", "kill", id: r.id, ["name": r.name, "signal": String(sig)])
    }

    /// Stop signal, then SIGKILL after the timeout (Docker's default 10 s, or the container's StopTimeout).
    public func stop(_ ref: String, timeout: Int?, signal: String? = nil) async throws(EngineError) {
        var r = try resolve(ref)
        if r.state.status == .restarting {
            restartTasks[r.id]?.cancel(); restartTasks[r.id] = nil
            r.state.status = .exited
            r.state.stoppedByUser = true
            try save(r)
            return
        }
        guard r.state.running else { throw EngineError(.notModified, "container already stopped") }
        r.state.stoppedByUser = true
        try save(r)
        let sig = signal ?? r.config.stopSignal ?? "SIGTERM"
        let t = timeout ?? r.config.stopTimeout ?? 10
        let exit = waitFor(r.id, .nextExit)
        if t != 0 { try? await kill(r.id, signal: sig) }
        // SIGKILL after the timeout (a negative timeout waits for ever), unless the exit comes first.
        let id = r.id
        let killer: Task<Void, Never>? = t < 0 ? nil : Task { [weak self] in
            if t > 0 { try? await Task.sleep(nanoseconds: UInt64(t) * 1_000_000_000) }
            if Task.isCancelled { return }
            try? await self?.kill(id, signal: "SIGKILL")
        }
        _ = await exit.value
        killer?.cancel()
        events.emit("container", "stop", id: r.id, ["name": r.name])
    }

    public func restart(_ ref: String, timeout: Int?) async throws(EngineError) {
        let r = try resolve(ref)
        if r.state.running { try await stop(r.id, timeout: timeout) }
        try await start(r.id)
        events.emit("container", "restart", id: r.id, ["name": r.name])
    }

    public func pause(_ ref: String) async throws(EngineError) {
        var r = try resolve(ref)
        guard r.state.status == .running else {
            if r.state.status == .paused { throw EngineError(.conflict, "Container \(r.id) is already paused") }
            throw EngineError(.conflict, "Container \(r.id) is not running")
        }
        try await runtimeCommand(["pause", r.id])
        r.state.status = .paused
        try save(r)
        events.emit("container", "pause", id: r.id, ["name": r.name])
    }

    public func unpause(_ ref: String) async throws(EngineError) {
        var r = try resolve(ref)
        guard r.state.status == .paused else { throw EngineError(.conflict, "Container \(r.id) is not paused") }
        try await runtimeCommand(["resume", r.id])
        r.state.status = .running
        try save(r)
        events.emit("container", "unpause", id: r.id, ["name": r.name])
    }

    func runtimeCommand(_ args: [String]) async throws(EngineError) {
        let argv = [options.runtime, "--root", options.execRoot + "/runtime"] + args
        let res: Proc.Result
        do { res = try await blocking { try Proc.run(argv) } } catch { throw EngineError.wrap(error) }
        guard res.status == 0 else {
            throw EngineError(.system, "berth-runtime \(args.joined(separator: " ")): " + res.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    // MARK: wait

    /// Resolves when the condition holds: `not-running` (at once if it is not running), `next-exit`, `removed`.
    func waitFor(_ id: String, _ condition: Waiter.Condition) -> Task<(Int32, String?), Never> {
        Task { await withCheckedContinuation { c in self.addWaiter(id, condition, c) } }
    }

    func addWaiter(_ id: String, _ condition: Waiter.Condition, _ c: CheckedContinuation<(Int32, String?), Never>) {
        guard let r = containers[id] else { c.resume(returning: (0, nil)); return }
        if condition == .notRunning && !r.state.running && r.state.status != .restarting {
            c.resume(returning: (r.state.exitCode, nil)); return
        }
        waiters[id, default: []].append(Waiter(condition: condition, cont: c))
    }

    /// The `wait` call: returns the exit code (and an error text when the wait could not complete).
    public func wait(_ ref: String, condition: String?) throws(EngineError) -> Task<(Int32, String?), Never> {
        let r = try resolve(ref)
        let cond: Waiter.Condition
        switch condition ?? "" {
        case "", "not-running": cond = .notRunning
        case "next-exit": cond = .nextExit
        case "removed": cond = .removed
        default: throw EngineError(.invalidArgument, "invalid condition: \"\(condition ?? "")\"")
        }
        return waitFor(r.id, cond)
    }

    // MARK: remove

    public func remove(_ ref: String, force: Bool, volumes: Bool) async throws(EngineError) {
        var r = try resolve(ref)
        if r.state.running || r.state.status == .restarting {
            guard force else {
                throw EngineError(.conflict, "You cannot remove a \(r.state.status.rawValue) container \(r.id). Stop the container before attempting removal or force remove")
            }
            restartTasks[r.id]?.cancel(); restartTasks[r.id] = nil
            if r.state.running {
                r.state.stoppedByUser = true
                try save(r)
                let exit = waitFor(r.id, .nextExit)
                try? await kill(r.id, signal: "SIGKILL")
                _ = await exit.value
            }
        }
        guard var cur = containers[r.id], cur.state.status != .removing else {
            throw EngineError(.conflict, "removal of container \(r.id) is already in progress")
        }
        cur.state.status = .removing
        containers[r.id] = cur
        let id = r.id
        let rootfs = rootfs(id), bundle = bundle(id), state = stateDir(id), netns = netnsPath(id)
        let images = images
        try? await blocking {
            Host.unmount(rootfs)
            Host.removeNetns(at: netns)
            Host.removeTree(state)
            try? images.snapshots.remove(key: id)
            Host.removeTree(bundle)
        }
        try store.delete(id)
        containers[id] = nil
        if names[r.name] == id { names[r.name] = nil }
        for (k, e) in execs where e.containerID == id { execs[k] = nil }
        failPendingAttach(id, EngineError(.notFound, "container \(id) was removed"))
        for w in waiters.removeValue(forKey: id) ?? [] { w.cont.resume(returning: (r.state.exitCode, nil)) }
        events.emit("container", "destroy", id: id, ["name": r.name, "image": r.imageRef])
    }

    func failPendingAttach(_ id: String, _ e: EngineError) {
        for p in pendingAttach.removeValue(forKey: id) ?? [] { p.cont.resume(throwing: e) }
    }

    // MARK: daemon start

    /// Rebuilds the view after a daemon (re)start: live shims are watched again, exits that happened while we
    /// were away get their codes from the exit files, restart policies run.
    public func recover() async {
        for r in containers.values {
            switch r.state.status {
            case .running, .paused:
                let client = shim(r.id)
                let st = try? await blocking { try client.call("state") }
                if let st, st.first == "running" || st.first == "created" {
                    if st.first == "created" { _ = try? await blocking { try client.call("kill 9") } }
                    if let fd = try? await blocking({ try client.send("wait") }) { watchExit(r.id, fd: fd); continue }
                }
                if let st, st.first == "exited", st.count >= 3, let c = Int32(st[1]), let ns = Double(st[2]) {
                    await exited(r.id, code: c, at: Date(timeIntervalSince1970: ns / 1e9), lost: false)
                } else {
                    await shimReported(r.id, line: nil)
                }
            case .restarting:
                var cur = r
                cur.state.status = .exited
                try? save(cur)
                scheduleRestart(cur, daemonStart: true)
            case .removing:
                try? await remove(r.id, force: true, volumes: false)
            case .created, .exited, .dead:
                if r.state.status == .exited && [.always, .unlessStopped].contains(r.hostConfig.restartPolicy.name) {
                    scheduleRestart(r, daemonStart: true)
                }
            }
        }
    }
}

/// Runs a short command to completion with its output captured (files, not pipes, so that a detached
/// grandchild holding them cannot hang us). For runtime calls and `ps`.
enum Proc {
    struct Result: Sendable { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ argv: [String]) throws(EngineError) -> Result {
        var out: [Int32] = [-1, -1]
        out[0] = be_tmpfile("/tmp"); out[1] = be_tmpfile("/tmp")
        defer { if out[0] >= 0 { close(out[0]) }; if out[1] >= 0 { close(out[1]) } }
        guard out[0] >= 0, out[1] >= 0 else { throw EngineError.system("create a temporary file in /tmp") }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&fa, out[0], 1)
        posix_spawn_file_actions_adddup2(&fa, out[1], 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var mask = sigset_t(); sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attr, &mask)
        var def = sigset_t(); sigfillset(&def)
        posix_spawnattr_setsigdefault(&attr, &def)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let cargs = argv.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &fa, &attr, cargs, environ)
        guard rc == 0 else { throw EngineError.system("run \(argv[0])", errno: rc) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        func slurp(_ fd: Int32) -> String {
            lseek(fd, 0, SEEK_SET)
            var data = [UInt8]()
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                data += buf[0..<n]
            }
            return String(decoding: data, as: UTF8.self)
        }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, stdout: slurp(out[0]), stderr: slurp(out[1]))
    }
}
