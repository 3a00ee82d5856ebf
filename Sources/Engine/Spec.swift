import CEngine
import CLinux
import Foundation
import Glibc

/// Builds the OCI config.json for a container, the way Docker's defaults shape it (capabilities, masked
/// paths, mounts, resources), from the stored record. The rootfs is mounted at `bundle/rootfs` before.
enum SpecBuilder {
    static let defaultCaps = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]
    static let allCaps = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
        "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// The capabilities berthd itself may hand out (its bounding set): `--privileged` and `--cap-add ALL`
    /// mean these, as Docker gives "all the daemon has" (here, for one, CAP_SYS_RESOURCE is not).
    static let grantable: [String] = {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("CapBnd:") }),
              let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) else { return allCaps }
        return allCaps.enumerated().filter { mask & (1 << UInt64($0.offset)) != 0 }.map(\.element)
    }()

    /// Docker's capability names: "NET_ADMIN", "CAP_NET_ADMIN", "ALL", any case.
    static func capabilities(add: [String], drop: [String], privileged: Bool) throws(EngineError) -> [String] {
        if privileged { return grantable }
        func norm(_ c: String) throws(EngineError) -> String {
            let u = c.uppercased()
            if u == "ALL" { return u }
            let n = u.hasPrefix("CAP_") ? u : "CAP_" + u
            guard allCaps.contains(n) else { throw EngineError(.invalidArgument, "invalid capability: \(c)") }
            return n
        }
        let adds = try add.map { (c: String) throws(EngineError) in try norm(c) }
        let drops = try drop.map { (c: String) throws(EngineError) in try norm(c) }
        var caps = drops.contains("ALL") ? [] : defaultCaps
        if adds.contains("ALL") { caps = grantable }
        for c in adds where c != "ALL" && !caps.contains(c) { caps.append(c) }
        caps.removeAll { drops.contains($0) }
        return caps
    }

    struct User { var uid: UInt32; var gid: UInt32; var additional: [UInt32]; var home: String }

    /// Resolves Docker's `user[:group]` (names or numbers) against the container's /etc/passwd and /etc/group.
    static func resolveUser(_ spec: String, rootfs: String) throws(EngineError) -> User {
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let userPart = parts.first ?? ""
        let passwd = readInRoot(rootfs, "/etc/passwd").map(parseColonFile) ?? []
        let groups = readInRoot(rootfs, "/etc/group").map(parseColonFile) ?? []
        var uid: UInt32 = 0, gid: UInt32 = 0, home = "/", name = "root"
        if userPart.isEmpty {
            if let e = passwd.first(where: { $0.count > 5 && $0[2] == "0" }) { home = e[5] }
        } else if let n = UInt32(userPart) {
            uid = n
            if let e = passwd.first(where: { $0.count > 5 && $0[2] == userPart }) {
                gid = UInt32(e[3]) ?? 0; home = e[5]; name = e[0]
            } else { name = "" }
        } else if let e = passwd.first(where: { $0.count > 5 && $0[0] == userPart }), let u = UInt32(e[2]) {
            uid = u; gid = UInt32(e[3]) ?? 0; home = e[5]; name = e[0]
        } else {
            throw EngineError(.invalidArgument, "unable to find user \(userPart): no matching entries in passwd file")
        }
        if parts.count == 2 {
            let g = parts[1]
            if let n = UInt32(g) { gid = n }
            else if let e = groups.first(where: { $0.count > 2 && $0[0] == g }), let n = UInt32(e[2]) { gid = n }
            else { throw EngineError(.invalidArgument, "unable to find group \(g): no matching entries in group file") }
        }
        let additional = name.isEmpty ? [] : groups.compactMap { e -> UInt32? in
            guard e.count > 3, e[3].split(separator: ",").contains(Substring(name)), let n = UInt32(e[2]), n != gid else { return nil }
            return n
        }
        return User(uid: uid, gid: gid, additional: additional, home: home)
    }

    static func parseColonFile(_ s: String) -> [[String]] {
        s.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
    }

    /// Reads a small file inside `root` with the kernel keeping the walk inside it (RESOLVE_IN_ROOT).
    static func readInRoot(_ root: String, _ path: String) -> String? {
        let rfd = be_open_dir_path(root)
        guard rfd >= 0 else { return nil }
        defer { close(rfd) }
        let fd = bl_openat2(rfd, path, UInt64(O_RDONLY | O_CLOEXEC), 0, UInt64(0x10 | 0x02)) // RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < 4 << 20 {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func parseBind(_ s: String) throws(EngineError) -> BindMount {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts.count <= 3, parts[0].hasPrefix("/"), parts[1].hasPrefix("/") else {
            throw EngineError(.invalidArgument, "invalid volume specification: '\(s)' (berth supports host-path binds SRC:DST[:ro|rw])")
        }
        var ro = false
        var opts: [String] = []
        if parts.count == 3 {
            for o in parts[2].split(separator: ",") {
                switch o {
                case "ro": ro = true
                case "rw": ro = false
                case "z", "Z", "nocopy": break
                case "shared", "rshared", "slave", "rslave", "private", "rprivate": opts.append(String(o))
                default: throw EngineError(.invalidArgument, "invalid mode: \(o)")
                }
            }
        }
        return BindMount(source: parts[0], destination: parts[1], readOnly: ro, options: opts)
    }

    static func signalNumber(_ s: String) -> Int32? {
        var n = s.uppercased()
        if let v = Int32(n), v > 0, v < 65 { return v }
        if n.hasPrefix("SIG") { n.removeFirst(3) }
        let table: [String: Int32] = [
            "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8, "KILL": 9,
            "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17,
            "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25,
            "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
        ]
        if let v = table[n] { return v }
        if n.hasPrefix("RTMIN") {
            if n == "RTMIN" { return 34 }
            if let k = Int32(n.dropFirst(6)), n.dropFirst(5).first == "+" { return 34 + k }
        }
        if n.hasPrefix("RTMAX") {
            if n == "RTMAX" { return 64 }
            if let k = Int32(n.dropFirst(6)), n.dropFirst(5).first == "-" { return 64 - k }
        }
        return nil
    }

    /// The whole config.json. `netnsPath` nil with network mode default/none = a fresh network namespace.
    static func build(_ r: ContainerRecord, bundle: String, rootfs: String, cgroupsPath: String,
                      initPath: String?, netnsPath: String?) throws(EngineError) -> [String: Any] {
        let c = r.config, h = r.hostConfig
        let user = try resolveUser(c.user, rootfs: rootfs)
        var env = r.resolvedEnv
        if !env.contains(where: { $0.hasPrefix("PATH=") }) {
            env.insert("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", at: 0)
        }
        if !env.contains(where: { $0.hasPrefix("HOSTNAME=") }) { env.append("HOSTNAME=" + hostname(r)) }
        if c.tty && !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        if !env.contains(where: { $0.hasPrefix("HOME=") }) { env.append("HOME=" + user.home) }
        var args = [r.path] + r.args
        if h.initProcess, initPath != nil { args = ["/sbin/berth-init", "--"] + args }
        let caps = try capabilities(add: h.capAdd, drop: h.capDrop, privileged: h.privileged)
        var process: [String: Any] = [
            "terminal": c.tty,
            "user": ["uid": user.uid, "gid": user.gid, "additionalGids": user.additional] as [String: Any],
            "args": args,
            "env": env,
            "cwd": c.workingDir.isEmpty ? "/" : c.workingDir,
            "capabilities": ["bounding": caps, "effective": caps, "permitted": caps] as [String: Any],
            "noNewPrivileges": false,
            "oomScoreAdj": 0,
        ]
        if h.privileged { process["noNewPrivileges"] = false }
        var mounts: [[String: Any]] = [
            ["destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]],
            ["destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]],
            ["destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]],
            ["destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", h.privileged ? "rw" : "ro"]],
            ["destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", h.privileged ? "rw" : "ro"]],
            ["destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]],
            ["destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=\(h.shmSize > 0 ? h.shmSize : 64 << 20)"]],
        ]
        if h.networkMode != "host" {
            mounts.append(["destination": "/etc/hostname", "type": "bind", "source": bundle + "/hostname", "options": ["rbind", "rprivate"]])
            mounts.append(["destination": "/etc/hosts", "type": "bind", "source": bundle + "/hosts", "options": ["rbind", "rprivate"]])
        }
        mounts.append(["destination": "/etc/resolv.conf", "type": "bind", "source": bundle + "/resolv.conf", "options": ["rbind", "rprivate"]])
        if h.initProcess, let initPath {
            mounts.append(["destination": "/sbin/berth-init", "type": "bind", "source": initPath, "options": ["rbind", "ro"]])
        }
        for (dst, opts) in h.tmpfs.sorted(by: { $0.key < $1.key }) {
            guard dst.hasPrefix("/") else { throw EngineError(.invalidArgument, "invalid tmpfs mount point \(dst): not absolute") }
            var o = ["nosuid", "nodev", "noexec"]
            if !opts.isEmpty { o = opts.split(separator: ",").map(String.init) }
            mounts.append(["destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o])
        }
        for b in h.binds {
            let m = try parseBind(b)
            var st = stat()
            guard stat(m.source, &st) == 0 else {
                throw EngineError(.invalidArgument, "invalid mount config: bind source path does not exist: \(m.source)")
            }
            mounts.append(["destination": m.destination, "type": "bind", "source": m.source,
                           "options": ["rbind", m.readOnly ? "ro" : "rw"] + (m.options.isEmpty ? ["rprivate"] : m.options)])
        }
        var namespaces: [[String: Any]] = [["type": "pid"], ["type": "ipc"], ["type": "uts"], ["type": "mount"]]
        if h.networkMode != "host" {
            namespaces.append(netnsPath.map { ["type": "network", "path": $0] } ?? ["type": "network"])
        }
        if CgroupInfo.hasCgroupNamespace { namespaces.append(["type": "cgroup"]) }
        var resources: [String: Any] = [:]
        var memory: [String: Any] = [:]
        if h.memory > 0 {
            memory["limit"] = h.memory
            if h.memorySwap != 0 { memory["swap"] = h.memorySwap }
        }
        if !memory.isEmpty { resources["memory"] = memory }
        var cpu: [String: Any] = [:]
        if h.cpuShares > 0 { cpu["shares"] = h.cpuShares }
        if h.nanoCpus > 0 {
            cpu["period"] = 100_000
            cpu["quota"] = h.nanoCpus / 10_000
        } else if h.cpuQuota > 0 {
            cpu["quota"] = h.cpuQuota
            cpu["period"] = h.cpuPeriod > 0 ? h.cpuPeriod : 100_000
        }
        if !cpu.isEmpty { resources["cpu"] = cpu }
        if h.pidsLimit > 0 { resources["pids"] = ["limit": h.pidsLimit] }
        if !h.privileged {
            resources["devices"] = [["allow": false, "access": "rwm"]] + defaultDeviceRules
        }
        var linux: [String: Any] = [
            "namespaces": namespaces,
            "cgroupsPath": cgroupsPath,
            "resources": resources,
        ]
        if !h.privileged {
            linux["maskedPaths"] = [
                "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
            ]
            linux["readonlyPaths"] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
        return [
            "ociVersion": "1.0.2",
            "process": process,
            "root": ["path": rootfs, "readonly": h.readonlyRootfs] as [String: Any],
            "hostname": hostname(r),
            "domainname": c.domainname,
            "mounts": mounts,
            "linux": linux,
        ]
    }

    nonisolated(unsafe) static let defaultDeviceRules: [[String: Any]] = [
        ["allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"],   // null
        ["allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"],   // zero
        ["allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"],   // full
        ["allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"],   // random
        ["allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"],   // urandom
        ["allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"],   // tty
        ["allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"],   // console
        ["allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"],   // ptmx
        ["allow": true, "type": "c", "major": 136, "access": "rwm"],             // pts
        ["allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"], // tun
    ]

    static func hostname(_ r: ContainerRecord) -> String {
        if r.hostConfig.networkMode == "host" {
            var buf = [CChar](repeating: 0, count: 256)
            gethostname(&buf, buf.count)
            return String(cString: buf)
        }
        return r.config.hostname.isEmpty ? r.shortID : r.config.hostname
    }

    /// An exec's process.json: the container's process with the exec's overrides.
    static func execProcess(_ r: ContainerRecord, _ e: ExecConfig, rootfs: String) throws(EngineError) -> [String: Any] {
        let user = try resolveUser(e.user.isEmpty ? r.config.user : e.user, rootfs: rootfs)
        var env = r.resolvedEnv
        if !env.contains(where: { $0.hasPrefix("PATH=") }) {
            env.insert("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", at: 0)
        }
        if !env.contains(where: { $0.hasPrefix("HOSTNAME=") }) { env.append("HOSTNAME=" + hostname(r)) }
        if !env.contains(where: { $0.hasPrefix("HOME=") }) { env.append("HOME=" + user.home) }
        for kv in e.env {
            let k = kv.split(separator: "=", maxSplits: 1).first.map(String.init) ?? kv
            env.removeAll { $0.hasPrefix(k + "=") }
            env.append(kv)
        }
        if e.tty && !env.contains(where: { $0.hasPrefix("TERM=") }) { env.append("TERM=xterm") }
        let caps = try capabilities(add: r.hostConfig.capAdd, drop: r.hostConfig.capDrop,
                                    privileged: r.hostConfig.privileged || e.privileged)
        return [
            "terminal": e.tty,
            "user": ["uid": user.uid, "gid": user.gid, "additionalGids": user.additional] as [String: Any],
            "args": e.cmd,
            "env": env,
            "cwd": !e.workingDir.isEmpty ? e.workingDir : (r.config.workingDir.isEmpty ? "/" : r.config.workingDir),
            "capabilities": ["bounding": caps, "effective": caps, "permitted": caps] as [String: Any],
            "noNewPrivileges": false,
        ]
    }
}

enum CgroupInfo {
    /// cgroup v2 only (unified at /sys/fs/cgroup)?
    static let unified: Bool = {
        be_fs_type("/sys/fs/cgroup") == 0x6367_7270 // CGROUP2_SUPER_MAGIC
    }()
    static let hasCgroupNamespace: Bool = access("/proc/self/ns/cgroup", F_OK) == 0

    /// The directory of `path` under one controller (v1) or the unified tree (v2).
    static func dir(_ controller: String, _ path: String) -> String {
        unified ? "/sys/fs/cgroup" + path : "/sys/fs/cgroup/\(controller)" + path
    }
}
