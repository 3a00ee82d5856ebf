// events: the cgroup's statistics in runc's shape (libcontainer/cgroups.Stats as `runc events --stats`
// prints it) and the OOM notifications (v1: eventfd on memory.oom_control; v2: memory.events oom_kill).
#if canImport(Glibc)
import Glibc
#endif
import CLinux
import LinuxContainer
import OCI

extension Runtime {
    /// One `{"type":"stats","id":ID,"data":{...}}` event.
    public func statsEvent(_ id: String) throws(RuntimeError) -> JSON {
        let r = try root.load(id)
        if status(of: r) == .stopped { throw RuntimeError(.failedPrecondition, "container \(id) is not running") }
        guard let cg = r.cgroup else { throw RuntimeError(.failedPrecondition, "events \(id): the container has no cgroup") }
        return .object([("type", .string("stats")), ("id", .string(id)), ("data", CgroupStats.read(cg))])
    }

    /// Streams events to `emit` until the container stops: stats every `intervalMs`, and OOMs as they happen.
    public func events(_ id: String, intervalMs: Int32, emit: (JSON) -> Void) throws(RuntimeError) {
        let r = try root.load(id)
        if status(of: r) == .stopped { throw RuntimeError(.failedPrecondition, "container \(id) is not running") }
        guard let cg = r.cgroup else { throw RuntimeError(.failedPrecondition, "events \(id): the container has no cgroup") }
        let oom = OOMWatch(cg)
        var nextStats: Int64 = 0
        while true {
            guard let p = r.process, p.liveness == .alive else { return }
            let now = monotonicMs()
            if now >= nextStats {
                emit(.object([("type", .string("stats")), ("id", .string(id)), ("data", CgroupStats.read(cg))]))
                nextStats = now + Int64(intervalMs)
            }
            // wake at the next tick, on an OOM, or every 200 ms to notice that the container stopped
            let wait = Int32(max(1, min(200, nextStats - monotonicMs())))
            if oom.wait(ms: wait) { emit(.object([("type", .string("oom")), ("id", .string(id))])) }
        }
    }
}

func monotonicMs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Waits for OOM notifications of one cgroup.
final class OOMWatch {
    private var fd: Int32 = -1
    private var controlFD: Int32 = -1
    private var eventsFile: String?
    private var lastCount: UInt64 = 0

    init(_ cg: Cgroup) {
        switch cg.mode {
        case .v1:
            guard let d = cg.paths.first(where: { $0.name.split(separator: ",").contains("memory") })?.dir else { return }
            let efd = bl_eventfd_cloexec()
            let ctl = open(d + "/memory.oom_control", O_RDONLY | O_CLOEXEC)
            guard efd >= 0, ctl >= 0 else {
                if efd >= 0 { close(efd) }
                if ctl >= 0 { close(ctl) }
                return
            }
            do {
                try FS.writeFile(d + "/cgroup.event_control", "\(efd) \(ctl)")
                fd = efd
                controlFD = ctl
            } catch {
                close(efd)
                close(ctl)
            }
        case .v2:
            guard let d = cg.paths.first?.dir else { return }
            let file = d + "/memory.events"
            let ifd = inotify_init1(Int32(IN_CLOEXEC))
            guard ifd >= 0 else { return }
            if inotify_add_watch(ifd, file, UInt32(IN_MODIFY)) < 0 { close(ifd); return }
            fd = ifd
            eventsFile = file
            lastCount = Self.oomKills(file)
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
        if controlFD >= 0 { close(controlFD) }
    }

    static func oomKills(_ file: String) -> UInt64 {
        guard let text = try? FS.readString(file) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return UInt64(line.dropFirst("oom_kill ".count)) ?? 0
        }
        return 0
    }

    /// true when an OOM happened within `ms`.
    func wait(ms: Int32) -> Bool {
        guard fd >= 0 else {
            usleep(useconds_t(ms) * 1000)
            return false
        }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let n = poll(&p, 1, ms)
        guard n > 0 else { return false }
        var buf = [UInt8](repeating: 0, count: 4096)
        _ = read(fd, &buf, buf.count)
        if let file = eventsFile {
            let now = Self.oomKills(file)
            defer { lastCount = now }
            return now > lastCount
        }
        return true  // the eventfd counted an OOM
    }
}

/// The cgroup's counters in runc's JSON shape.
enum CgroupStats {
    static func read(_ cg: Cgroup) -> JSON {
        switch cg.mode {
        case .v1: return v1(cg)
        case .v2: return v2(cg.paths.first?.dir ?? "/nonexistent")
        }
    }

    static func text(_ path: String) -> String? { (try? FS.readString(path))?.trimmingSpace() }
    static func num(_ path: String) -> UInt64 {
        guard let t = text(path) else { return 0 }
        if t == "max" { return UInt64.max }
        return UInt64(t) ?? 0
    }
    static func n(_ v: UInt64) -> JSON { .number(String(v)) }
    /// "key value" lines (memory.stat, cpu.stat)
    static func keyed(_ path: String) -> [(key: String, value: UInt64)] {
        (text(path) ?? "").split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 2, let v = UInt64(f[1]) else { return nil }
            return (String(f[0]), v)
        }
    }
    static func get(_ kv: [(key: String, value: UInt64)], _ k: String) -> UInt64 { kv.first { $0.key == k }?.value ?? 0 }

    static func entry(limit: UInt64, usage: UInt64, max: UInt64, failcnt: UInt64) -> JSON {
        .object([("limit", n(limit)), ("usage", n(usage)), ("max", n(max)), ("failcnt", n(failcnt))])
    }

    static func pidsJSON(current: UInt64, limit: UInt64) -> JSON {
        .object([("current", n(current)), ("limit", n(limit == UInt64.max ? 0 : limit))])
    }

    static func v1(_ cg: Cgroup) -> JSON {
        func dir(_ c: String) -> String? { cg.paths.first { $0.name.split(separator: ",").contains(Substring(c)) }?.dir }
        var data: [(key: String, value: JSON)] = []
        // cpu
        let acct = dir("cpuacct")
        let percpu = acct.flatMap { text($0 + "/cpuacct.usage_percpu") }?.split(separator: " ").compactMap { UInt64($0) } ?? []
        var percpuUser: [UInt64] = [], percpuKernel: [UInt64] = []
        for line in (acct.flatMap { text($0 + "/cpuacct.usage_all") } ?? "").split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ")
            if f.count == 3, let u = UInt64(f[1]), let s = UInt64(f[2]) { percpuUser.append(u); percpuKernel.append(s) }
        }
        let ticks = acct.map { keyed($0 + "/cpuacct.stat") } ?? []
        let hz = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        let cpuStat = dir("cpu").map { keyed($0 + "/cpu.stat") } ?? []
        data.append(("cpu", .object([
            ("usage", .object([
                ("total", n(acct.map { num($0 + "/cpuacct.usage") } ?? 0)),
                ("percpu", .array(percpu.map(n))),
                ("percpu_kernel", .array(percpuKernel.map(n))), ("percpu_user", .array(percpuUser.map(n))),
                ("kernel", n(get(ticks, "system") * 1_000_000_000 / hz)), ("user", n(get(ticks, "user") * 1_000_000_000 / hz)),
            ])),
            ("throttling", .object([
                ("periods", n(get(cpuStat, "nr_periods"))), ("throttled_periods", n(get(cpuStat, "nr_throttled"))),
                ("throttled_time", n(get(cpuStat, "throttled_time"))),
            ])),
        ])))
        // memory
        if let m = dir("memory") {
            func e(_ prefix: String) -> JSON {
                entry(limit: num(m + "/\(prefix).limit_in_bytes"), usage: num(m + "/\(prefix).usage_in_bytes"),
                      max: num(m + "/\(prefix).max_usage_in_bytes"), failcnt: num(m + "/\(prefix).failcnt"))
            }
            let raw = keyed(m + "/memory.stat")
            let hier = (text(m + "/memory.use_hierarchy") ?? "1") == "1"
            data.append(("memory", .object([
                ("cache", n(get(raw, hier ? "total_cache" : "cache"))),
                ("usage", e("memory")), ("swap", e("memory.memsw")), ("kernel", e("memory.kmem")), ("kernelTCP", e("memory.kmem.tcp")),
                ("raw", .object(raw.map { ($0.key, n($0.value)) })),
            ])))
        }
        if let p = dir("pids") { data.append(("pids", pidsJSON(current: num(p + "/pids.current"), limit: num(p + "/pids.max")))) }
        if let b = dir("blkio") {
            func entries(_ names: [String]) -> JSON {
                for name in names {
                    guard let t = text(b + "/" + name) else { continue }
                    var out: [JSON] = []
                    for line in t.split(separator: "\n") {
                        let f = line.split(separator: " ")
                        let mm = f.first?.split(separator: ":") ?? []
                        guard mm.count == 2, let major = UInt64(mm[0]), let minor = UInt64(mm[1]) else { continue }
                        let op = f.count == 3 ? String(f[1]) : ""
                        guard let v = UInt64(f.last ?? "") else { continue }
                        out.append(.object([("major", n(major)), ("minor", n(minor)), ("op", .string(op)), ("value", n(v))]))
                    }
                    if !out.isEmpty || FS.exists(b + "/" + name) { return .array(out) }
                }
                return .array([])
            }
            data.append(("blkio", .object([
                ("ioServiceBytesRecursive", entries(["blkio.io_service_bytes_recursive", "blkio.bfq.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive"])),
                ("ioServicedRecursive", entries(["blkio.io_serviced_recursive", "blkio.bfq.io_serviced_recursive", "blkio.throttle.io_serviced_recursive"])),
                ("ioQueueRecursive", entries(["blkio.io_queued_recursive"])),
                ("ioServiceTimeRecursive", entries(["blkio.io_service_time_recursive"])),
                ("ioWaitTimeRecursive", entries(["blkio.io_wait_time_recursive"])),
                ("ioMergedRecursive", entries(["blkio.io_merged_recursive"])),
                ("ioTimeRecursive", entries(["blkio.time_recursive"])),
                ("sectorsRecursive", entries(["blkio.sectors_recursive"])),
            ])))
        }
        var huge: [(key: String, value: JSON)] = []
        if let h = dir("hugetlb") {
            for size in hugepageSizes() {
                huge.append((size, .object([("usage", n(num(h + "/hugetlb.\(size).usage_in_bytes"))),
                                            ("max", n(num(h + "/hugetlb.\(size).max_usage_in_bytes"))),
                                            ("failcnt", n(num(h + "/hugetlb.\(size).failcnt")))])))
            }
        }
        data.append(("hugetlb", .object(huge)))
        return .object(data)
    }

    /// "2MB", "1GB" from /sys/kernel/mm/hugepages (hugepages-2048kB)
    static func hugepageSizes() -> [String] {
        ((try? FS.list("/sys/kernel/mm/hugepages")) ?? []).compactMap { name in
            guard name.hasPrefix("hugepages-"), name.hasSuffix("kB"), let kb = UInt64(name.dropFirst(10).dropLast(2)) else { return nil }
            if kb >= 1 << 20 { return "\(kb >> 20)GB" }
            if kb >= 1 << 10 { return "\(kb >> 10)MB" }
            return "\(kb)KB"
        }.sorted()
    }

    static func v2(_ d: String) -> JSON {
        var data: [(key: String, value: JSON)] = []
        let cpu = keyed(d + "/cpu.stat")
        data.append(("cpu", .object([
            ("usage", .object([
                ("total", n(get(cpu, "usage_usec") * 1000)), ("percpu", .array([])),
                ("kernel", n(get(cpu, "system_usec") * 1000)), ("user", n(get(cpu, "user_usec") * 1000)),
            ])),
            ("throttling", .object([
                ("periods", n(get(cpu, "nr_periods"))), ("throttled_periods", n(get(cpu, "nr_throttled"))),
                ("throttled_time", n(get(cpu, "throttled_usec") * 1000)),
            ])),
        ])))
        let raw = keyed(d + "/memory.stat")
        let events = keyed(d + "/memory.events")
        let swapEvents = keyed(d + "/memory.swap.events")
        data.append(("memory", .object([
            ("cache", n(get(raw, "file"))),
            ("usage", entry(limit: num(d + "/memory.max"), usage: num(d + "/memory.current"), max: num(d + "/memory.peak"),
                            failcnt: get(events, "max"))),
            ("swap", entry(limit: num(d + "/memory.swap.max"), usage: num(d + "/memory.swap.current"),
                           max: num(d + "/memory.swap.peak"), failcnt: get(swapEvents, "max"))),
            ("kernel", entry(limit: 0, usage: get(raw, "kernel"), max: 0, failcnt: 0)),
            ("kernelTCP", entry(limit: 0, usage: get(raw, "sock"), max: 0, failcnt: 0)),
            ("raw", .object(raw.map { ($0.key, n($0.value)) })),
        ])))
        data.append(("pids", pidsJSON(current: num(d + "/pids.current"), limit: num(d + "/pids.max"))))
        var bytes: [JSON] = [], ios: [JSON] = []
        for line in (text(d + "/io.stat") ?? "").split(separator: "\n") {
            let f = line.split(separator: " ")
            let mm = f.first?.split(separator: ":") ?? []
            guard mm.count == 2, let major = UInt64(mm[0]), let minor = UInt64(mm[1]) else { continue }
            for kv in f.dropFirst() {
                let p = kv.split(separator: "=")
                guard p.count == 2, let v = UInt64(p[1]) else { continue }
                func e(_ op: String) -> JSON { .object([("major", n(major)), ("minor", n(minor)), ("op", .string(op)), ("value", n(v))]) }
                switch p[0] {
                case "rbytes": bytes.append(e("Read"))
                case "wbytes": bytes.append(e("Write"))
                case "rios": ios.append(e("Read"))
                case "wios": ios.append(e("Write"))
                default: break
                }
            }
        }
        data.append(("blkio", .object([("ioServiceBytesRecursive", .array(bytes)), ("ioServicedRecursive", .array(ios))])))
        var huge: [(key: String, value: JSON)] = []
        for size in hugepageSizes() where FS.exists(d + "/hugetlb.\(size).current") {
            let ev = keyed(d + "/hugetlb.\(size).events")
            huge.append((size, .object([("usage", n(num(d + "/hugetlb.\(size).current"))), ("max", n(num(d + "/hugetlb.\(size).max"))),
                                        ("failcnt", n(get(ev, "max")))])))
        }
        data.append(("hugetlb", .object(huge)))
        return .object(data)
    }
}

extension String {
    func trimmingSpace() -> String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == " " { s = s.dropLast() }
        while let f = s.first, f == "\n" || f == " " { s = s.dropFirst() }
        return String(s)
    }
}
