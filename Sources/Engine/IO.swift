import Foundation
import Glibc

extension Engine {
    // MARK: attach

    /// A connected stream to the container's stdio (docs/shim.md framing). For a created container the call
    /// waits until it is started, so that no early output is missed.
    public func attach(_ ref: String, stdin: Bool, stdout: Bool, stderr: Bool) async throws(EngineError) -> (fd: Int32, tty: Bool) {
        let r = try resolve(ref)
        let req = "attach \(stdin ? 1 : 0) \(stdout ? 1 : 0) \(stderr ? 1 : 0)"
        switch r.state.status {
        case .running:
            let client = shim(r.id)
            do {
                let (fd, reply) = try await blocking { try client.request(req) }
                do { _ = try ShimClient.check(reply) } catch { close(fd); throw error }
                return (fd, r.config.tty)
            } catch { throw EngineError.wrap(error) }
        case .paused: throw EngineError(.conflict, "You cannot attach to a paused container, unpause it first")
        case .created, .restarting, .exited:
            if r.state.status == .exited && !starting.contains(r.id) && r.hostConfig.restartPolicy.name == .no {
                throw EngineError(.conflict, "You cannot attach to a stopped container, start it first")
            }
            do {
                let fd = try await withCheckedThrowingContinuation { (c: CheckedContinuation<Int32, any Error>) in
                    pendingAttach[r.id, default: []].append(PendingAttach(request: req, cont: c))
                }
                return (fd, r.config.tty)
            } catch { throw EngineError.wrap(error) }
        case .removing, .dead: throw EngineError(.conflict, "container \(r.id) is being removed")
        }
    }

    public func resize(_ ref: String, height: Int, width: Int) async throws(EngineError) {
        let r = try resolve(ref)
        guard r.state.running else { throw EngineError(.conflict, "Container \(r.id) is not running") }
        let client = shim(r.id)
        do { _ = try await blocking { try client.call("resize \(height) \(width)") } } catch { throw EngineError.wrap(error) }
    }

    // MARK: exec

    public func execCreate(_ ref: String, _ config: ExecConfig) throws(EngineError) -> String {
        let r = try resolve(ref)
        guard r.state.status == .running else {
            if r.state.status == .paused { throw EngineError(.conflict, "Container \(r.id) is paused, unpause the container before exec") }
            throw EngineError(.conflict, "Container \(r.id) is not running")
        }
        guard !config.cmd.isEmpty else { throw EngineError(.invalidArgument, "No exec command specified") }
        let id = Self.randomID()
        execs[id] = ExecRecord(id: id, containerID: r.id, config: config)
        events.emit("container", "exec_create: " + config.cmd.joined(separator: " "), id: r.id, ["name": r.name, "execID": id])
        return id
    }

    public func execInspect(_ id: String) throws(EngineError) -> ExecRecord {
        guard let e = execs[id] else { throw EngineError(.notFound, "No such exec instance: \(id)") }
        return e
    }

    /// Starts an exec; returns its stream (docs/shim.md framing; the type-3 frame is its exit code).
    public func execStart(_ id: String) async throws(EngineError) -> (fd: Int32, tty: Bool) {
        guard var e = execs[id] else { throw EngineError(.notFound, "No such exec instance: \(id)") }
        guard !e.started else { throw EngineError(.conflict, "exec \(id) has already been started") }
        guard let r = containers[e.containerID], r.state.status == .running else {
            throw EngineError(.conflict, "Container \(e.containerID) is not running")
        }
        e.started = true
        e.running = true
        execs[id] = e
        let rootfs = rootfs(r.id), client = shim(r.id)
        let process = try SpecBuilder.execProcess(r, e.config, rootfs: rootfs)
        let cfg = e.config
        let processJSON: Data
        do { processJSON = try JSONSerialization.data(withJSONObject: process, options: [.withoutEscapingSlashes]) } catch { throw EngineError.wrap(error) }
        do {
            let json = String(decoding: processJSON, as: UTF8.self)
            let (fd, pid) = try await blocking { () throws -> (Int32, Int32) in
                let (fd, reply) = try client.request("exec \(id.prefix(16)) \(cfg.tty ? 1 : 0) \(cfg.attachStdin ? 1 : 0) \(json)")
                let f: [String]
                do { f = try ShimClient.check(reply) } catch { close(fd); throw error }
                return (fd, f.first.flatMap { Int32($0) } ?? 0)
            }
            execs[id]?.pid = pid
            events.emit("container", "exec_start: " + cfg.cmd.joined(separator: " "), id: r.id, ["name": r.name, "execID": id])
            return (fd, cfg.tty)
        } catch {
            execs[id]?.running = false
            execs[id]?.exitCode = 126
            throw EngineError.wrap(error)
        }
    }

    public func execResize(_ id: String, height: Int, width: Int) async throws(EngineError) {
        guard let e = execs[id] else { throw EngineError(.notFound, "No such exec instance: \(id)") }
        let client = shim(e.containerID)
        do { _ = try await blocking { try client.call("resize-exec \(id.prefix(16)) \(height) \(width)") } } catch { throw EngineError.wrap(error) }
    }

    /// The front door reports the exit frame of an exec stream (or nil if the stream broke).
    public func execFinished(_ id: String, code: Int32?) {
        guard var e = execs[id] else { return }
        e.running = false
        e.exitCode = code ?? 137
        execs[id] = e
        if let r = containers[e.containerID] {
            events.emit("container", "exec_die", id: r.id, ["name": r.name, "execID": id, "exitCode": String(e.exitCode ?? 0)])
        }
    }

    // MARK: logs

    public struct LogOptions: Sendable {
        public var follow = false
        public var stdout = true
        public var stderr = true
        public var since: Date?
        public var until: Date?
        public var tail: Int?
        public init() {}
    }

    public struct LogLine: Sendable {
        public var stream: UInt8 // 1 stdout, 2 stderr
        public var time: String
        public var text: [UInt8]
    }

    public func logSource(_ ref: String) throws(EngineError) -> (path: String, tty: Bool, id: String) {
        let r = try resolve(ref)
        return (logPath(r.id), r.config.tty, r.id)
    }

    public func isRunning(_ id: String) -> Bool { containers[id]?.state.running ?? false || containers[id]?.state.status == .restarting }

    /// The container's json-file log (rotated files first), filtered; with `follow`, new lines until it stops.
    public nonisolated func logs(_ ref: String, _ o: LogOptions) async throws(EngineError) -> AsyncThrowingStream<LogLine, any Error> {
        let (path, _, id) = try await logSource(ref)
        let (stream, cont) = AsyncThrowingStream<LogLine, any Error>.makeStream(bufferingPolicy: .bufferingOldest(1024))
        let task = Task.detached { [self] in
            do {
                var files: [String] = []
                var k = 1
                while access(path + ".\(k)", F_OK) == 0 { files.insert(path + ".\(k)", at: 0); k += 1 }
                files.append(path)
                var lines: [LogLine] = []
                func accept(_ l: LogLine) -> Bool {
                    if l.stream == 1 && !o.stdout || l.stream == 2 && !o.stderr { return false }
                    if o.since != nil || o.until != nil, let t = Timestamp.parse(l.time) {
                        if let s = o.since, t < s { return false }
                        if let u = o.until, t > u { return false }
                    }
                    return true
                }
                var reader = LogReader()
                for f in files.dropLast() {
                    try reader.readAll(f) { if accept($0) { lines.append($0) } }
                }
                var tailFile = LogReader.Tail(path: path)
                defer { tailFile.close() }
                try tailFile.read { if accept($0) { lines.append($0) } }
                if let n = o.tail, n >= 0, lines.count > n { lines.removeFirst(lines.count - n) }
                for l in lines {
                    while case .dropped = cont.yield(l) { try await Task.sleep(nanoseconds: 5_000_000) }
                }
                lines = []
                guard o.follow else { cont.finish(); return }
                while !Task.isCancelled {
                    var got = false
                    try tailFile.read { l in got = true; if accept(l) { _ = cont.yield(l) } }
                    if !got {
                        if await !self.isRunning(id) {
                            try tailFile.read { if accept($0) { _ = cont.yield($0) } }
                            break
                        }
                        try await Task.sleep(nanoseconds: 50_000_000)
                    }
                    if let u = o.until, Date() > u { break }
                }
                cont.finish()
            } catch { cont.finish(throwing: error) }
        }
        cont.onTermination = { _ in task.cancel() }
        return stream
    }
}

/// Reads Docker json-file lines: {"log":"...","stream":"stdout","time":"..."}.
struct LogReader {
    static func parse(_ line: ArraySlice<UInt8>) -> Engine.LogLine? {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
              let text = obj["log"] as? String else { return nil }
        let stream: UInt8 = (obj["stream"] as? String) == "stderr" ? 2 : 1
        return Engine.LogLine(stream: stream, time: obj["time"] as? String ?? "", text: Array(text.utf8))
    }

    func readAll(_ path: String, _ body: (Engine.LogLine) -> Void) throws {
        var t = Tail(path: path)
        defer { t.close() }
        try t.read(body)
    }

    /// Follows one file by offset; a rotation (new inode or a shorter file) starts it over.
    struct Tail {
        let path: String
        var fd: Int32 = -1
        var ino: ino_t = 0
        var pending: [UInt8] = []
        init(path: String) { self.path = path }

        mutating func read(_ body: (Engine.LogLine) -> Void) throws {
            var st = stat()
            if stat(path, &st) == 0, st.st_ino != ino || fd < 0 {
                if fd >= 0 {
                    drain(body) // whatever the old file still had
                    Glibc.close(fd)
                }
                fd = open(path, O_RDONLY | O_CLOEXEC)
                ino = st.st_ino
                pending = []
            }
            guard fd >= 0 else { return }
            drain(body)
        }

        /// Tail is a value without a deinit: whoever made one closes it.
        mutating func close() {
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }

        mutating func drain(_ body: (Engine.LogLine) -> Void) {
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                pending += buf[0..<n]
            }
            var start = 0
            while let nl = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                if let l = LogReader.parse(pending[start..<nl]) { body(l) }
                start = nl + 1
            }
            if start > 0 { pending.removeFirst(start) }
        }
    }
}
