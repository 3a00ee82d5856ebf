import Engine
import Foundation
import Glibc
import Images
import NIOCore
import OCI

extension Router {
    func containers(_ req: Request, _ res: Responder, _ p: [String]) async throws {
        let m = req.method
        if p.count == 1 {
            switch (m, p[0]) {
            case (.GET, "json"): try await list(req, res); return
            case (.POST, "create"): try await create(req, res); return
            case (.POST, "prune"):
                let f = try Filters(req.q("filters"))
                let until = f["until"]?.first.flatMap { Timestamp.parse($0) }
                let r = await engine.prune(until: until, labels: f["label"] ?? [])
                await res.json(["ContainersDeleted": r.removed, "SpaceReclaimed": r.reclaimed])
                return
            default: break
            }
        }
        guard let id = p.first else { throw APIError(404, "page not found") }
        let verb = p.count > 1 ? p[1] : ""
        switch (m, verb) {
        case (.DELETE, ""):
            try await engine.remove(id, force: req.bool("force"), volumes: req.bool("v"))
            await res.noContent()
        case (.GET, "json"):
            let r = try await engine.inspect(id)
            let size = req.bool("size") ? engine.writableSize(r.id) : nil
            await res.json(Translate.inspect(r, logPath: engine.logPath(r.id), size: size))
        case (.POST, "start"):
            try await engine.start(id)
            await res.noContent()
        case (.POST, "stop"):
            try await engine.stop(id, timeout: req.int("t") ?? req.int("timeout"), signal: req.q("signal"))
            await res.noContent()
        case (.POST, "restart"):
            try await engine.restart(id, timeout: req.int("t") ?? req.int("timeout"))
            await res.noContent()
        case (.POST, "kill"):
            try await engine.kill(id, signal: req.q("signal").flatMap { $0.isEmpty ? nil : $0 })
            await res.noContent()
        case (.POST, "pause"): try await engine.pause(id); await res.noContent()
        case (.POST, "unpause"): try await engine.unpause(id); await res.noContent()
        case (.POST, "rename"):
            guard let n = req.q("name"), !n.isEmpty else { throw APIError(400, "name is required") }
            try await engine.rename(id, to: n)
            await res.noContent()
        case (.POST, "wait"): try await wait(req, res, id)
        case (.GET, "logs"): try await logs(req, res, id)
        case (.POST, "attach"): try await attach(req, res, id)
        case (.POST, "resize"):
            guard let h = req.int("h"), let w = req.int("w") else { throw APIError(400, "resize needs h and w") }
            try await engine.resize(id, height: h, width: w)
            await res.text(200, "")
        case (.POST, "exec"):
            let b = try req.json()
            guard let cmd = Translate.strings(b["Cmd"]), !cmd.isEmpty else { throw APIError(400, "No exec command specified") }
            var c = ExecConfig(cmd: cmd)
            c.env = b["Env"] as? [String] ?? []
            c.user = b["User"] as? String ?? ""
            c.workingDir = b["WorkingDir"] as? String ?? ""
            c.tty = b["Tty"] as? Bool ?? false
            c.attachStdin = b["AttachStdin"] as? Bool ?? false
            c.attachStdout = b["AttachStdout"] as? Bool ?? false
            c.attachStderr = b["AttachStderr"] as? Bool ?? false
            c.privileged = b["Privileged"] as? Bool ?? false
            c.detachKeys = b["DetachKeys"] as? String
            let eid = try await engine.execCreate(id, c)
            await res.json(201, ["Id": eid])
        case (.GET, "top"):
            let t = try await engine.top(id, psArgs: req.q("ps_args"))
            await res.json(["Titles": t.titles, "Processes": t.processes])
        case (.GET, "stats"): try await stats(req, res, id)
        case (.GET, "archive"), (.HEAD, "archive"), (.PUT, "archive"): try await archive(req, res, id)
        case (.GET, "changes"): await res.json([Any]())
        case (.POST, "update"):
            throw APIError(501, "container update is not supported by berth yet")
        default: throw APIError(404, "page not found")
        }
    }

    // MARK: list

    func list(_ req: Request, _ res: Responder) async throws {
        let f = try Filters(req.q("filters"))
        let all = req.bool("all")
        var rows = await engine.list()
        rows = rows.filter { r in
            if !all && f["status"] == nil && !(r.state.running || r.state.status == .restarting) { return false }
            if let s = f["status"], !s.contains(r.state.status.rawValue) { return false }
            if let n = f["name"], !n.contains(where: { r.name.contains($0.hasPrefix("/") ? String($0.dropFirst()) : $0) }) { return false }
            if let ids = f["id"], !ids.contains(where: { r.id.hasPrefix($0) }) { return false }
            if let ls = f["label"], !ls.allSatisfy({ Filters.matchLabel(r.config.labels, $0) }) { return false }
            if let ex = f["exited"], !(r.state.status == .exited && ex.contains(String(r.state.exitCode))) { return false }
            if let an = f["ancestor"], !an.contains(where: { r.imageRef == $0 || r.imageID.hasPrefix($0) || r.imageID.dropFirst(7).hasPrefix($0) }) { return false }
            return true
        }
        if let l = req.int("limit"), l > 0 { rows = Array(rows.prefix(l)) }
        let size = req.bool("size")
        await res.json(rows.map { Translate.summary($0, size: size ? engine.writableSize($0.id) : nil) })
    }

    // MARK: create

    func create(_ req: Request, _ res: Responder) async throws {
        let body = try req.json()
        var (config, host, platformText) = try Translate.createBody(body)
        if let p = req.q("platform"), !p.isEmpty { platformText = p }
        var platform: Platform?
        if let t = platformText, !t.isEmpty {
            do { platform = try Platform(parsing: t) } catch { throw APIError(400, "invalid platform \(t): \(error)") }
        }
        // API < 1.25 had no AutoRemove; older clients remove themselves.
        if let v = req.version, Router.compare(v, "1.25") < 0 { host.autoRemove = false }
        if config.attachStdin && config.openStdin && !config.stdinOnce && body["StdinOnce"] == nil { config.stdinOnce = true }
        let r = try await engine.create(name: req.q("name"), config: config, hostConfig: host, platform: platform)
        await res.json(201, ["Id": r.id, "Warnings": [String]()])
    }

    // MARK: wait

    func wait(_ req: Request, _ res: Responder, _ id: String) async throws {
        let task = try await engine.wait(id, condition: req.q("condition"))
        // Headers go out at once: clients (docker run) wait for them before they start the container.
        await res.startStream(contentType: "application/json")
        let (code, err) = await task.value
        var body: [String: Any] = ["StatusCode": Int(code)]
        body["Error"] = err.map { ["Message": $0] } ?? NSNull()
        _ = await res.writeJSON(body)
        await res.end()
    }

    // MARK: logs

    func logs(_ req: Request, _ res: Responder, _ id: String) async throws {
        var o = Engine.LogOptions()
        o.follow = req.bool("follow")
        o.stdout = req.bool("stdout")
        o.stderr = req.bool("stderr")
        if !o.stdout && !o.stderr { throw APIError(400, "Bad parameters: you must choose at least one stream") }
        if let s = req.q("since"), s != "0", !s.isEmpty { o.since = Timestamp.parse(s) }
        if let u = req.q("until"), u != "0", !u.isEmpty { o.until = Timestamp.parse(u) }
        if let t = req.q("tail"), t != "all", !t.isEmpty { o.tail = Int(t) }
        let timestamps = req.bool("timestamps")
        let src = try await engine.logSource(id)
        let stream = try await engine.logs(id, o)
        await res.startStream(contentType: src.tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream")
        var batch: [UInt8] = []
        do {
            for try await l in stream {
                var payload = l.text
                if timestamps { payload = Array((l.time + " ").utf8) + payload }
                if src.tty { batch += payload } else { batch += Frames.header(l.stream, payload.count) + payload }
                if batch.count > 32768 {
                    if !(await res.write(batch)) { return }
                    batch = []
                }
                if o.follow && batch.count > 0 {
                    if !(await res.write(batch)) { return }
                    batch = []
                }
            }
        } catch {}
        if !batch.isEmpty { await res.write(batch) }
        await res.end()
    }

    // MARK: attach

    func attach(_ req: Request, _ res: Responder, _ id: String) async throws {
        guard req.bool("stream") || req.bool("logs") else { throw APIError(400, "attach needs stream=1 (or logs=1)") }
        let stdin = req.bool("stdin"), stdout = req.bool("stdout"), stderr = req.bool("stderr")
        let r = try await engine.inspect(id)
        let keys = Bridge.parseDetachKeys(req.q("detachKeys"))
        let contentType = r.config.tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream"
        if !req.bool("stream") {
            // logs=1 only: the past output, then the end.
            var o = Engine.LogOptions(); o.stdout = stdout; o.stderr = stderr
            let lines = try await engine.logs(id, o)
            let raw = RawClient(detachKeys: [], onDetach: {})
            try await res.hijack(upgrade: req.wantsUpgrade, contentType: contentType, raw: raw)
            for try await l in lines {
                let bytes = r.config.tty ? l.text : Frames.header(l.stream, l.text.count) + l.text
                try? await res.flushed(res.channel.allocator.buffer(bytes: bytes))
            }
            try? await res.channel.close()
            return
        }
        let raw = RawClient(detachKeys: stdin ? keys : [], onDetach: {})
        // The client is upgraded at once (docker run starts the container only after that); the shim's
        // stream follows when the container runs. Stdin typed meanwhile waits in `raw`.
        try await res.hijack(upgrade: req.wantsUpgrade, contentType: contentType, raw: raw)
        do {
            let (fd, tty) = try await engine.attach(id, stdin: stdin, stdout: stdout, stderr: stderr)
            do {
                try await Bridge.join(client: res.channel, raw: raw, shimFD: fd, multiplexed: !tty, group: group) { _ in }
            } catch {
                close(fd)
                throw error
            }
        } catch {
            try? await res.channel.close()
        }
    }

    // MARK: stats

    func stats(_ req: Request, _ res: Responder, _ id: String) async throws {
        let t = try await engine.statsTarget(id)
        // Docker's BoolValue: docker-py sends stream=False (Python's spelling), so compare case-insensitively.
        let stream = req.q("stream") == nil ? true : req.bool("stream")
        let oneShot = req.bool("one-shot")
        func doc(_ s: Engine.Stats, _ pre: Engine.Stats?) -> [String: Any] {
            func cpu(_ s: Engine.Stats?) -> [String: Any] {
                guard let s else { return ["cpu_usage": ["total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0], "throttling_data": [String: Int]()] }
                return [
                    "cpu_usage": ["total_usage": s.cpuTotal, "percpu_usage": s.perCPU, "usage_in_kernelmode": s.cpuSystem, "usage_in_usermode": s.cpuUser] as [String: Any],
                    "system_cpu_usage": s.systemCPU, "online_cpus": s.onlineCPUs,
                    "throttling_data": ["periods": 0, "throttled_periods": 0, "throttled_time": 0],
                ]
            }
            var memStats: [String: Any] = [:]
            for (k, v) in s.memStat { memStats[k] = v }
            return [
                "read": Timestamp.rfc3339Nano(s.read), "preread": Timestamp.rfc3339Nano(pre?.read),
                "pids_stats": ["current": s.pids, "limit": s.pidsLimit],
                "blkio_stats": ["io_service_bytes_recursive": [
                    ["major": 0, "minor": 0, "op": "read", "value": s.blkRead],
                    ["major": 0, "minor": 0, "op": "write", "value": s.blkWrite],
                ]],
                "num_procs": 0, "storage_stats": [String: Any](),
                "cpu_stats": cpu(s), "precpu_stats": cpu(pre),
                "memory_stats": ["usage": s.memUsage, "limit": s.memLimit, "stats": memStats] as [String: Any],
                "name": "/" + t.name, "id": t.id,
                "networks": ["lo": ["rx_bytes": 0, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0, "tx_bytes": 0, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0]],
            ]
        }
        if !t.running {
            // Docker answers a stopped container with zeroed stats.
            var s = Engine.Stats(); s.read = Date(timeIntervalSince1970: 0)
            await res.json(doc(s, nil))
            return
        }
        if !stream {
            var pre: Engine.Stats?
            if !oneShot {
                pre = Engine.sample(t.id)
                try? await Task.sleep(nanoseconds: 1_000_000_000)
            }
            await res.json(doc(Engine.sample(t.id), pre))
            return
        }
        await res.startStream(contentType: "application/json")
        var pre: Engine.Stats?
        while !res.isClosed {
            let s = Engine.sample(t.id)
            if !(await res.writeJSON(doc(s, pre))) { break }
            pre = s
            if !(await engine.isRunning(t.id)) { break }
            try? await Task.sleep(nanoseconds: 1_000_000_000)
        }
        await res.end()
    }
}

enum Frames {
    static func header(_ stream: UInt8, _ len: Int) -> [UInt8] {
        [stream, 0, 0, 0, UInt8((len >> 24) & 0xff), UInt8((len >> 16) & 0xff), UInt8((len >> 8) & 0xff), UInt8(len & 0xff)]
    }
}
