// Writing linux.resources into the container's cgroup: the v1 driver (one directory per controller)
// and the v2 driver (one unified directory), with runc's conversions and write orders.
#if canImport(Glibc)
import Glibc
#endif
import CLinux
import OCI

extension Cgroup {
    /// Where warnings go (the Runtime points this at its log); stderr by default.
    nonisolated(unsafe) public static var warn: (String) -> Void = { msg in
        var b = Array("berth-runtime: warning: \(msg)\n".utf8)
        _ = b.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    /// Writes every limit set in `r` (fields left nil are not touched). A rootless runtime that may not
    /// write its cgroup runs without device rules and warns, as runc does.
    public func apply(_ r: Resources, field: String = "linux.resources") throws(LinuxError) {
        if r.isEmpty { return }
        if r.memory.kernel != nil { Self.warn("\(field).memory.kernel is ignored: kernel memory limits are deprecated by the kernel") }
        do {
            switch mode {
            case .v1: try applyV1(r, field: field)
            case .v2: try applyV2(r, field: field)
            }
        } catch {
            let denied = error.errno == EACCES || error.errno == EPERM || error.errno == EROFS
            if denied && geteuid() != 0 && r.onlyDevices {
                Self.warn("cgroup \(paths.first?.dir ?? ""): not writable by a rootless runtime; running without device rules (\(error.message))")
                return
            }
            throw error
        }
    }

    // MARK: helpers

    /// The directory of v1 controller `controller` ("cpu" finds "cpu,cpuacct").
    func dir(of controller: String) -> String? {
        paths.first { $0.name.split(separator: ",").contains(Substring(controller)) }?.dir
    }

    func need(_ controller: String, for field: String) throws(LinuxError) -> String {
        guard let d = dir(of: controller) else {
            throw LinuxError(.unsupported, "\(field): the \(controller) cgroup controller is not mounted on this host")
        }
        return d
    }

    /// One write(2) of `value` to `dir/file`; the error reads
    /// "set memory limit 4096 on /sys/fs/cgroup/memory/x: memory.limit_in_bytes: device or resource busy".
    static func set(_ what: String, _ value: String, _ dir: String, _ file: String) throws(LinuxError) {
        let path = dir + "/" + file
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            throw LinuxError.sys("set \(what) \(value) on \(dir): \(file)", errno: e)
        }
        defer { close(fd) }
        var bytes = Array(value.utf8)
        while true {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n >= 0 { return }
            let e = errno
            if e == EINTR { continue }
            throw LinuxError.sys("set \(what) \(value) on \(dir): \(file)", errno: e)
        }
    }

    static func read(_ dir: String, _ file: String) -> String? {
        (try? FS.readString(dir + "/" + file))?.trimmingCharacters()
    }

    /// Writes the device rules the v1 way: from deny-all (or allow-all) then each rule in order.
    static func setDevicesV1(_ rules: [Resources.DeviceRule], _ d: String) throws(LinuxError) {
        var rest = rules[...]
        if let first = rest.first, first.isAllDevices, first.allow {
            try set("device rule", "a", d, "devices.allow")
            rest = rest.dropFirst()
        } else {
            if let first = rest.first, first.isAllDevices { rest = rest.dropFirst() }
            try set("device rule", "a", d, "devices.deny")
        }
        for rule in rest {
            try set("device rule", rule.v1Text, d, rule.allow ? "devices.allow" : "devices.deny")
        }
    }

    // MARK: v1

    func applyV1(_ r: Resources, field: String) throws(LinuxError) {
        if !r.unified.isEmpty {
            throw LinuxError(.invalidArgument, "\(field).unified: needs cgroup v2, and this host runs cgroup v1")
        }
        let m = r.memory
        if !m.isEmpty && !(m.kernel != nil && m.limit == nil && m.reservation == nil && m.swap == nil && m.kernelTCP == nil
                           && m.swappiness == nil && m.disableOOMKiller == nil && m.useHierarchy == nil) {
            let d = try need("memory", for: field + ".memory")
            if m.useHierarchy == true { try Self.set("memory use_hierarchy", "1", d, "memory.use_hierarchy") }
            let limit = m.limit.flatMap { $0 == 0 ? nil : $0 }
            var swap = m.swap.flatMap { $0 == 0 ? nil : $0 }
            let hasSwap = FS.exists(d + "/memory.memsw.limit_in_bytes")
            if limit == -1 && swap == nil && hasSwap { swap = -1 }
            if swap != nil && !hasSwap {
                throw LinuxError(.unsupported, "\(field).memory.swap: the kernel does not account swap (no memory.memsw.limit_in_bytes; boot with swapaccount=1)")
            }
            func setLimit(_ l: Int64) throws(LinuxError) {
                do { try Self.set("memory limit", String(l), d, "memory.limit_in_bytes") } catch {
                    if error.errno == EBUSY {
                        let usage = Self.read(d, "memory.usage_in_bytes") ?? "?"
                        let peak = Self.read(d, "memory.max_usage_in_bytes") ?? "?"
                        throw LinuxError(error.code, error.message + " (current usage \(usage), peak usage \(peak))", errno: error.errno)
                    }
                    throw error
                }
            }
            func setSwap(_ s: Int64) throws(LinuxError) { try Self.set("memory+swap limit", String(s), d, "memory.memsw.limit_in_bytes") }
            if let l = limit, let s = swap {
                // keep memory <= memory+swap at every step
                let cur = Self.read(d, "memory.limit_in_bytes").flatMap { UInt64($0) } ?? 0
                if s == -1 || cur < UInt64(s) {
                    try setSwap(s)
                    try setLimit(l)
                } else {
                    try setLimit(l)
                    try setSwap(s)
                }
            } else {
                if let l = limit { try setLimit(l) }
                if let s = swap { try setSwap(s) }
            }
            if let v = m.reservation, v != 0 { try Self.set("memory reservation", String(v), d, "memory.soft_limit_in_bytes") }
            if let v = m.kernelTCP, v != 0 { try Self.set("kernel TCP memory limit", String(v), d, "memory.kmem.tcp.limit_in_bytes") }
            if m.disableOOMKiller == true { try Self.set("memory oom_control", "1", d, "memory.oom_control") }
            if let s = m.swappiness, s != UInt64.max { try Self.set("memory swappiness", String(s), d, "memory.swappiness") }
        }

        let c = r.cpu
        if c.shares != nil || c.quota != nil || c.period != nil || c.burst != nil || c.idle != nil
            || c.realtimePeriod != nil || c.realtimeRuntime != nil {
            let d = try need("cpu", for: field + ".cpu")
            if let s = c.shares, s != 0 {
                try Self.set("cpu shares", String(s), d, "cpu.shares")
                if let got = Self.read(d, "cpu.shares").flatMap(UInt64.init), got != s {
                    throw LinuxError(.invalidArgument, "\(field).cpu.shares: \(s) is out of the kernel's range (it set \(got))")
                }
            }
            let quota = c.quota.flatMap { $0 == 0 ? nil : $0 }
            var periodLater: UInt64?
            if let p = c.period, p != 0 {
                // lowering the period under the current quota can exceed the parent's limit: retry after the quota
                do { try Self.set("cpu period", String(p), d, "cpu.cfs_period_us") } catch {
                    if error.errno != EINVAL || quota == nil { throw error }
                    periodLater = p
                }
            }
            var burstLater: UInt64?
            if let b = c.burst {
                do { try Self.set("cpu burst", String(b), d, "cpu.cfs_burst_us") } catch {
                    if error.errno != EINVAL || quota == nil { throw error }
                    burstLater = b
                }
            }
            if let q = quota {
                try Self.set("cpu quota", String(q), d, "cpu.cfs_quota_us")
                if let p = periodLater { try Self.set("cpu period", String(p), d, "cpu.cfs_period_us") }
                if let b = burstLater { try Self.set("cpu burst", String(b), d, "cpu.cfs_burst_us") }
            }
            if let i = c.idle { try Self.set("cpu idle", String(i), d, "cpu.idle") }
            if let p = c.realtimePeriod, p != 0 { try Self.set("cpu realtime period", String(p), d, "cpu.rt_period_us") }
            if let rt = c.realtimeRuntime, rt != 0 { try Self.set("cpu realtime runtime", String(rt), d, "cpu.rt_runtime_us") }
        }
        if c.cpus != nil || c.mems != nil {
            let d = try need("cpuset", for: field + ".cpu")
            if let v = c.cpus, !v.isEmpty { try Self.set("cpuset cpus", v, d, "cpuset.cpus") }
            if let v = c.mems, !v.isEmpty { try Self.set("cpuset mems", v, d, "cpuset.mems") }
        }

        if let l = r.pidsLimit {
            let d = try need("pids", for: field + ".pids")
            try Self.set("pids limit", l > 0 ? String(l) : "max", d, "pids.max")
        }

        let b = r.blockIO
        if !b.isEmpty {
            let d = try need("blkio", for: field + ".blockIO")
            let bfq = !FS.exists(d + "/blkio.weight")
            let weightFile = bfq ? "blkio.bfq.weight" : "blkio.weight"
            let weightDeviceFile = bfq ? "blkio.bfq.weight_device" : "blkio.weight_device"
            if let w = b.weight, w != 0 { try Self.set("blkio weight", String(w), d, weightFile) }
            if let w = b.leafWeight, w != 0 { try Self.set("blkio leaf weight", String(w), d, "blkio.leaf_weight") }
            for wd in b.weightDevice {
                if let w = wd.weight, w != 0 { try Self.set("blkio device weight", "\(wd.major):\(wd.minor) \(w)", d, weightDeviceFile) }
                if let w = wd.leafWeight, w != 0 { try Self.set("blkio device leaf weight", "\(wd.major):\(wd.minor) \(w)", d, "blkio.leaf_weight_device") }
            }
            for (list, file, what) in [(b.throttleReadBps, "read_bps_device", "read bps"), (b.throttleWriteBps, "write_bps_device", "write bps"),
                                       (b.throttleReadIOPS, "read_iops_device", "read iops"), (b.throttleWriteIOPS, "write_iops_device", "write iops")] {
                for t in list { try Self.set("blkio throttle \(what)", "\(t.major):\(t.minor) \(t.rate)", d, "blkio.throttle." + file) }
            }
        }

        if !r.hugepageLimits.isEmpty {
            let d = try need("hugetlb", for: field + ".hugepageLimits")
            for h in r.hugepageLimits {
                try Self.set("hugetlb \(h.pageSize) limit", String(h.limit), d, "hugetlb.\(h.pageSize).limit_in_bytes")
            }
        }

        if let id = r.network.classID {
            let d = try need("net_cls", for: field + ".network.classID")
            try Self.set("net_cls classid", String(id), d, "net_cls.classid")
        }
        if !r.network.priorities.isEmpty {
            let d = try need("net_prio", for: field + ".network.priorities")
            for p in r.network.priorities { try Self.set("net_prio priority", "\(p.name) \(p.priority)", d, "net_prio.ifpriomap") }
        }

        if !r.devices.isEmpty {
            let d = try need("devices", for: field + ".devices")
            try Self.setDevicesV1(r.devices, d)
        }
    }

    // MARK: v2

    /// runc's cpu.shares (2..262144) to cpu.weight (1..10000).
    public static func cpuWeight(shares: UInt64) -> UInt64 {
        shares == 0 ? 0 : 1 + ((max(shares, 2) - 2) * 9999) / 262142
    }

    /// runc's blkio weight (10..1000) to io.weight (1..10000).
    public static func ioWeight(blkio w: UInt16) -> UInt64 {
        w == 0 ? 0 : 1 + (UInt64(max(w, 10)) - 10) * 9999 / 990
    }

    /// memory+swap (the spec's swap) to memory.swap.max (swap alone), as runc converts it.
    static func swapV2(swap: Int64, memory: Int64, field: String) throws(LinuxError) -> Int64 {
        if memory == -1 && swap == 0 { return -1 }
        if swap == -1 || swap == 0 { return swap }
        if memory == 0 || memory == -1 {
            throw LinuxError(.invalidArgument, "\(field).memory.swap: a swap limit needs a memory limit")
        }
        if swap < memory { throw LinuxError(.invalidArgument, "\(field).memory.swap: memory+swap \(swap) is below the memory limit \(memory)") }
        return swap - memory
    }

    static func v2Number(_ v: Int64) -> String { v < 0 ? "max" : String(v) }

    /// Enables `controllers` in cgroup.subtree_control of every ancestor below the mount point.
    func enableControllersV2(_ controllers: [String], dir: String, field: String) throws(LinuxError) {
        guard !controllers.isEmpty else { return }
        let hs = (try? Cgroup.hierarchies()) ?? []
        let mount = hs.filter { $0.isV2 && (dir == $0.mountPoint || dir.hasPrefix($0.mountPoint == "/" ? "/" : $0.mountPoint + "/")) }
            .max { $0.mountPoint.count < $1.mountPoint.count }?.mountPoint ?? "/sys/fs/cgroup"
        var chain: [String] = []
        var cur = FS.split(dir).dir
        while cur.count >= mount.count && (cur == mount || cur.hasPrefix(mount + "/")) {
            chain.insert(cur, at: 0)
            if cur == mount { break }
            cur = FS.split(cur).dir
        }
        for parent in chain {
            let available = Set((Self.read(parent, "cgroup.controllers") ?? "").split(separator: " ").map(String.init))
            let enabled = Set((Self.read(parent, "cgroup.subtree_control") ?? "").split(separator: " ").map(String.init))
            for c in controllers where !enabled.contains(c) {
                guard available.contains(c) else {
                    throw LinuxError(.unsupported, "\(field): the \(c) controller is not available in \(parent) (cgroup.controllers: \(available.sorted().joined(separator: " ")))")
                }
                try Self.set("enable controller", "+" + c, parent, "cgroup.subtree_control")
            }
        }
    }

    func applyV2(_ r: Resources, field: String) throws(LinuxError) {
        guard let d = paths.first?.dir else { throw LinuxError(.notFound, "cgroup: no directory") }
        let m = r.memory, c = r.cpu, b = r.blockIO
        let memorySet = m.limit != nil || m.reservation != nil || m.swap != nil
        let cpuSet = c.shares != nil || c.quota != nil || c.period != nil || c.burst != nil || c.idle != nil
        if c.realtimePeriod.map({ $0 != 0 }) == true || c.realtimeRuntime.map({ $0 != 0 }) == true {
            throw LinuxError(.unsupported, "\(field).cpu.realtimePeriod/realtimeRuntime: realtime scheduling limits are not supported on cgroup v2")
        }
        if let id = r.network.classID, id != 0 {
            throw LinuxError(.unsupported, "\(field).network.classID: net_cls is not available on cgroup v2")
        }
        if !r.network.priorities.isEmpty {
            throw LinuxError(.unsupported, "\(field).network.priorities: net_prio is not available on cgroup v2")
        }
        var controllers: [String] = []
        if memorySet { controllers.append("memory") }
        if cpuSet { controllers.append("cpu") }
        if c.cpus != nil || c.mems != nil { controllers.append("cpuset") }
        if r.pidsLimit != nil { controllers.append("pids") }
        if !b.isEmpty { controllers.append("io") }
        if !r.hugepageLimits.isEmpty { controllers.append("hugetlb") }
        for kv in r.unified {
            if let dot = kv.key.firstIndex(of: "."), case let c = String(kv.key[..<dot]), c != "cgroup", !controllers.contains(c) {
                controllers.append(c)
            }
        }
        try enableControllersV2(controllers, dir: d, field: field)

        if memorySet {
            let limit = m.limit ?? 0
            if let s = m.swap {
                let swap = try Self.swapV2(swap: s, memory: limit, field: field)
                var text = swap == 0 ? "" : Self.v2Number(swap)
                if text.isEmpty && s > 0 { text = "0" }  // memory == memory+swap: no swap
                if !text.isEmpty {
                    do { try Self.set("memory swap limit", text, d, "memory.swap.max") } catch {
                        // no swap accounting: unlimited or none is what we have anyway
                        if !(error.errno == ENOENT && (text == "max" || text == "0")) { throw error }
                    }
                }
            } else if limit == -1 {
                try? Self.set("memory swap limit", "max", d, "memory.swap.max")
            }
            if limit != 0 { try Self.set("memory limit", Self.v2Number(limit), d, "memory.max") }
            if let v = m.reservation, v != 0 { try Self.set("memory reservation", Self.v2Number(v), d, "memory.low") }
        }
        if m.kernelTCP != nil { Self.warn("\(field).memory.kernelTCP is ignored on cgroup v2") }
        if let s = m.swappiness, s != UInt64.max { Self.warn("\(field).memory.swappiness is ignored on cgroup v2") }
        if m.disableOOMKiller == true { Self.warn("\(field).memory.disableOOMKiller is ignored on cgroup v2 (the kernel has no switch)") }

        if cpuSet {
            if let s = c.shares, s != 0 {
                try Self.set("cpu weight (from shares \(s))", String(Self.cpuWeight(shares: s)), d, "cpu.weight")
            }
            if let i = c.idle { try Self.set("cpu idle", String(i), d, "cpu.idle") }
            var burstLater: UInt64?
            let quota = c.quota ?? 0, period = c.period ?? 0
            if let bu = c.burst {
                do { try Self.set("cpu burst", String(bu), d, "cpu.max.burst") } catch {
                    if error.errno != EINVAL || quota == 0 { throw error }
                    burstLater = bu
                }
            }
            if quota != 0 || period != 0 {
                var text = quota > 0 ? String(quota) : "max"
                if period != 0 { text += " " + String(period) }
                try Self.set("cpu max", text, d, "cpu.max")
            }
            if let bu = burstLater { try Self.set("cpu burst", String(bu), d, "cpu.max.burst") }
        }
        if let v = c.cpus, !v.isEmpty { try Self.set("cpuset cpus", v, d, "cpuset.cpus") }
        if let v = c.mems, !v.isEmpty { try Self.set("cpuset mems", v, d, "cpuset.mems") }

        if let l = r.pidsLimit { try Self.set("pids limit", l > 0 ? String(l) : "max", d, "pids.max") }

        if !b.isEmpty {
            let bfq = FS.exists(d + "/io.bfq.weight")
            if let w = b.weight, w != 0 {
                if bfq {
                    try Self.set("io bfq weight", String(w), d, "io.bfq.weight")
                } else {
                    try Self.set("io weight (from blkio weight \(w))", String(Self.ioWeight(blkio: w)), d, "io.weight")
                }
            }
            if bfq {
                for wd in b.weightDevice {
                    if let w = wd.weight, w != 0 { try Self.set("io device weight", "\(wd.major):\(wd.minor) \(w)", d, "io.bfq.weight") }
                }
            }
            for (list, key) in [(b.throttleReadBps, "rbps"), (b.throttleWriteBps, "wbps"), (b.throttleReadIOPS, "riops"), (b.throttleWriteIOPS, "wiops")] {
                for t in list { try Self.set("io max", "\(t.major):\(t.minor) \(key)=\(t.rate)", d, "io.max") }
            }
        }

        for h in r.hugepageLimits {
            try Self.set("hugetlb \(h.pageSize) limit", String(h.limit), d, "hugetlb.\(h.pageSize).max")
        }

        if !r.devices.isEmpty {
            try DeviceFilter.attach(r.devices, to: d, field: field)
        }

        // last, so that an explicit key wins over a converted value
        for kv in r.unified {
            do { try Self.set("unified \(kv.key)", kv.value, d, kv.key) } catch {
                if error.errno == ENOENT {
                    throw LinuxError(.invalidArgument, "\(field).unified.\(kv.key): no such file in \(d) (is its controller enabled?)", errno: ENOENT)
                }
                throw error
            }
        }
    }
}

// MARK: device rules

extension Resources {
    /// runc's default device rules (specconv.AllowedDevices), appended after the spec's own: mknod of any
    /// node, the standard character devices, /dev/pts/*, /dev/ptmx and /dev/net/tun.
    public static let defaultDeviceRules: [DeviceRule] = [
        DeviceRule(allow: true, type: "c", major: nil, minor: nil, access: "m"),
        DeviceRule(allow: true, type: "b", major: nil, minor: nil, access: "m"),
        DeviceRule(allow: true, type: "c", major: 1, minor: 3, access: "rwm"),
        DeviceRule(allow: true, type: "c", major: 1, minor: 8, access: "rwm"),
        DeviceRule(allow: true, type: "c", major: 1, minor: 7, access: "rwm"),
        DeviceRule(allow: true, type: "c", major: 5, minor: 0, access: "rwm"),
        DeviceRule(allow: true, type: "c", major: 1, minor: 5, access: "rwm"),
        DeviceRule(allow: true, type: "c", major: 1, minor: 9, access: "rwm"),
        DeviceRule(allow: true, type: "c", major: 136, minor: nil, access: "rwm"),
        DeviceRule(allow: true, type: "c", major: 5, minor: 2, access: "rwm"),
        DeviceRule(allow: true, type: "c", major: 10, minor: 200, access: "rwm"),
    ]

    /// linux.resources of a container: when it has device rules, runc's defaults and an allow rule for
    /// each of linux.devices follow them (as runc builds its cgroup config).
    public init(spec: Spec) throws(LinuxError) {
        try self.init(json: spec.linux?.resources)
        if !devices.isEmpty {
            devices += Self.defaultDeviceRules
            for d in spec.linux?.devices ?? [] where d.type != "p" {
                devices.append(DeviceRule(allow: true, type: d.type == "b" ? "b" : "c", major: d.major, minor: d.minor, access: "rwm"))
            }
        }
    }
}

/// cgroup v2 has no devices.allow: an eBPF program decides (CLinux/cgroup_bpf.c).
enum DeviceFilter {
    static func attach(_ rules: [Resources.DeviceRule], to dir: String, field: String) throws(LinuxError) {
        var list = rules[...]
        var defaultAllow: Int32 = 0
        if let first = list.first, first.isAllDevices {
            defaultAllow = first.allow ? 1 : 0
            list = list.dropFirst()
        }
        let c: [bl_dev_rule] = list.map { r in
            var access: UInt32 = 0
            if r.access.contains("m") { access |= BL_DEV_MKNOD }
            if r.access.contains("r") { access |= BL_DEV_READ }
            if r.access.contains("w") { access |= BL_DEV_WRITE }
            return bl_dev_rule(allow: r.allow ? 1 : 0, type: CChar(UInt8(ascii: r.type == "b" ? "b" : r.type == "c" ? "c" : "a")),
                               major: r.major ?? -1, minor: r.minor ?? -1, access: access)
        }
        let fd = try OwnedFD.open(dir, O_RDONLY | O_DIRECTORY)
        var log = [CChar](repeating: 0, count: 16384)
        let rc = c.withUnsafeBufferPointer { p in
            bl_cgroup_devices_attach(fd.raw, p.baseAddress, Int32(p.count), defaultAllow, &log, UInt32(log.count))
        }
        if rc != 0 {
            let e = errno
            let text = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw LinuxError.sys("set \(field).devices on \(dir): attach eBPF device program\(text.isEmpty ? "" : " (verifier: \(text.suffix(300)))")", errno: e)
        }
    }
}
