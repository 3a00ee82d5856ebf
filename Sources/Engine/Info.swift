import Foundation
import Glibc

extension Engine {
    // MARK: top

    /// `ps` on the host (ps_args, default -ef), keeping the rows of the container's processes.
    public func top(_ ref: String, psArgs: String?) async throws(EngineError) -> (titles: [String], processes: [[String]]) {
        let r = try resolve(ref)
        guard r.state.running else { throw EngineError(.conflict, "Container \(r.id) is not running") }
        let pids = Set(Self.cgroupPids(r.id))
        let args = (psArgs?.isEmpty == false ? psArgs! : "-ef").split(separator: " ").map(String.init)
        let res: Proc.Result
        do { res = try await blocking { try Proc.run(["ps"] + args) } } catch { throw EngineError.wrap(error) }
        guard res.status == 0 else { throw EngineError(.system, "ps: \(res.stderr)") }
        var lines = res.stdout.split(separator: "\n").map(String.init)
        guard !lines.isEmpty else { throw EngineError(.system, "ps printed nothing") }
        let header = lines.removeFirst()
        let titles = header.split(separator: " ").map(String.init)
        guard let pidCol = titles.firstIndex(of: "PID") else {
            throw EngineError(.invalidArgument, "Couldn't find PID field in ps output")
        }
        var rows: [[String]] = []
        for l in lines {
            let f = l.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard f.count > pidCol, let p = Int32(f[pidCol]), pids.contains(p) else { continue }
            // The last column (CMD) keeps its spaces.
            var row = Array(f.prefix(titles.count - 1))
            row.append(f.dropFirst(titles.count - 1).joined(separator: " "))
            rows.append(row)
        }
        return (titles, rows)
    }

    nonisolated static func cgroupPids(_ id: String) -> [Int32] {
        for c in ["pids", "memory", "cpu,cpuacct", "systemd"] {
            let p = CgroupInfo.dir(c, cgroupsPath(id)) + "/cgroup.procs"
            if let s = try? String(contentsOfFile: p, encoding: .utf8) {
                return s.split(separator: "\n").compactMap { Int32($0) }
            }
        }
        return []
    }

    // MARK: stats

    public struct Stats: Sendable {
        public var read = Date()
        public var cpuTotal: UInt64 = 0
        public var perCPU: [UInt64] = []
        public var cpuUser: UInt64 = 0
        public var cpuSystem: UInt64 = 0
        public var systemCPU: UInt64 = 0
        public var onlineCPUs = 1
        public var memUsage: UInt64 = 0
        public var memLimit: UInt64 = 0
        public var memStat: [String: UInt64] = [:]
        public var pids: UInt64 = 0
        public var pidsLimit: UInt64 = 0
        public var blkRead: UInt64 = 0
        public var blkWrite: UInt64 = 0
        public init() {}
    }

    public func statsTarget(_ ref: String) throws(EngineError) -> (id: String, name: String, running: Bool) {
        let r = try resolve(ref)
        return (r.id, r.name, r.state.running)
    }

    /// One sample of the container's cgroup counters (v1 or v2).
    public nonisolated static func sample(_ id: String) -> Stats {
        var s = Stats()
        let path = cgroupsPath(id)
        func num(_ p: String) -> UInt64? {
            (try? String(contentsOfFile: p, encoding: .utf8)).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        func kv(_ p: String) -> [String: UInt64] {
            var d: [String: UInt64] = [:]
            for l in ((try? String(contentsOfFile: p, encoding: .utf8)) ?? "").split(separator: "\n") {
                let f = l.split(separator: " ")
                if f.count == 2, let v = UInt64(f[1]) { d[String(f[0])] = v }
            }
            return d
        }
        s.onlineCPUs = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if CgroupInfo.unified {
            let d = "/sys/fs/cgroup" + path
            let cpu = kv(d + "/cpu.stat")
            s.cpuTotal = (cpu["usage_usec"] ?? 0) * 1000
            s.cpuUser = (cpu["user_usec"] ?? 0) * 1000
            s.cpuSystem = (cpu["system_usec"] ?? 0) * 1000
            s.memUsage = num(d + "/memory.current") ?? 0
            s.memLimit = num(d + "/memory.max") ?? 0
            s.memStat = kv(d + "/memory.stat")
            s.pids = num(d + "/pids.current") ?? 0
            s.pidsLimit = num(d + "/pids.max") ?? 0
        } else {
            let cpuacct = CgroupInfo.dir("cpuacct", path)
            s.cpuTotal = num(cpuacct + "/cpuacct.usage") ?? 0
            s.perCPU = ((try? String(contentsOfFile: cpuacct + "/cpuacct.usage_percpu", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            let st = kv(cpuacct + "/cpuacct.stat")
            let hz = UInt64(sysconf(Int32(_SC_CLK_TCK)))
            s.cpuUser = (st["user"] ?? 0) * 1_000_000_000 / max(hz, 1)
            s.cpuSystem = (st["system"] ?? 0) * 1_000_000_000 / max(hz, 1)
            let mem = CgroupInfo.dir("memory", path)
            s.memUsage = num(mem + "/memory.usage_in_bytes") ?? 0
            s.memLimit = num(mem + "/memory.limit_in_bytes") ?? 0
            s.memStat = kv(mem + "/memory.stat")
            let pids = CgroupInfo.dir("pids", path)
            s.pids = num(pids + "/pids.current") ?? 0
            s.pidsLimit = num(pids + "/pids.max") ?? 0
            for l in ((try? String(contentsOfFile: CgroupInfo.dir("blkio", path) + "/blkio.throttle.io_service_bytes", encoding: .utf8)) ?? "").split(separator: "\n") {
                let f = l.split(separator: " ")
                if f.count == 3, let v = UInt64(f[2]) { if f[1] == "Read" { s.blkRead += v } else if f[1] == "Write" { s.blkWrite += v } }
            }
        }
        // A "max" or a huge v1 value means no limit: Docker reports the host's memory.
        let host = UInt64(sysconf(Int32(_SC_PHYS_PAGES))) * UInt64(sysconf(Int32(_SC_PAGESIZE)))
        if s.memLimit == 0 || s.memLimit > host { s.memLimit = host }
        if let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = stat.split(separator: "\n").first {
            let hz = UInt64(sysconf(Int32(_SC_CLK_TCK)))
            let ticks = line.split(separator: " ").dropFirst().prefix(7).compactMap { UInt64($0) }.reduce(0, +)
            s.systemCPU = ticks * 1_000_000_000 / max(hz, 1)
        }
        return s
    }

    // MARK: prune

    public func prune(until: Date?, labels: [String]) async -> (removed: [String], reclaimed: Int64) {
        var removed: [String] = []
        for r in containers.values where !r.state.running && r.state.status != .restarting {
            if let until, r.created >= until { continue }
            if !labels.allSatisfy({ Self.matchLabel(r.config.labels, $0) }) { continue }
            do { try await remove(r.id, force: false, volumes: false); removed.append(r.id) } catch {}
        }
        return (removed, 0)
    }

    nonisolated static func matchLabel(_ labels: [String: String], _ filter: String) -> Bool {
        let p = filter.split(separator: "=", maxSplits: 1).map(String.init)
        if p.count == 1 { return labels[p[0]] != nil }
        return labels[p[0]] == p[1]
    }

    /// Bytes in a container's writable layer (the snapshot's upper dir) — for `ps -s` and `system df`.
    public nonisolated func writableSize(_ id: String) -> Int64 {
        guard let dir = images.snapshots.keyPath(id) else { return 0 }
        return Self.du(dir + "/fs")
    }

    nonisolated static func du(_ path: String) -> Int64 {
        var total: Int64 = 0
        guard let e = FileManager.default.enumerator(atPath: path) else { return 0 }
        while let f = e.nextObject() as? String {
            var st = stat()
            if lstat(path + "/" + f, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_size) }
        }
        return total
    }

    public var containerCount: (total: Int, running: Int, paused: Int, stopped: Int) {
        let all = containers.values
        let running = all.filter { $0.state.status == .running }.count
        let paused = all.filter { $0.state.status == .paused }.count
        return (all.count, running, paused, all.count - running - paused)
    }
}
