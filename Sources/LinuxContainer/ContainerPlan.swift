// The pure plan of a container: every path resolved, every name turned into a number, every string
// copied for C, before anything with a side effect runs (a bad config leaves nothing behind).
#if canImport(Glibc)
import Glibc
#endif
import CLinux
import OCI

public struct ContainerOptions: Sendable {
    public var noPivot = false
    public var noNewKeyring = false
    public var preserveFds = 0
    public var consoleSocket: String?
    /// the runtime itself receives the pty master (foreground `run` with a terminal)
    public var ownConsole = false
    public init() {}
}

public let namespaceFlags: [NamespaceType: Int32] = [
    .pid: Int32(BL_CLONE_NEWPID), .network: Int32(BL_CLONE_NEWNET), .mount: Int32(BL_CLONE_NEWNS), .ipc: Int32(BL_CLONE_NEWIPC),
    .uts: Int32(BL_CLONE_NEWUTS), .user: Int32(BL_CLONE_NEWUSER), .cgroup: Int32(BL_CLONE_NEWCGROUP), .time: Int32(BL_CLONE_NEWTIME),
]

/// /proc/<pid>/ns/<name> for each namespace type
public let namespaceProcNames: [NamespaceType: String] = [
    .pid: "pid", .network: "net", .mount: "mnt", .ipc: "ipc", .uts: "uts", .user: "user", .cgroup: "cgroup", .time: "time",
]

public struct ContainerPlan {
    public let spec: Spec
    public let bundle: String
    public let rootfs: String
    public let cgroup: Cgroup?
    /// linux.resources, decoded (written into the cgroup by spawnInit)
    public let resources: Resources
    public let uidMap: String?
    public let gidMap: String?
    public let oomScoreAdj: Int?
    public let newUserNamespace: Bool
    /// the host uid/gid that the container's root maps to (new user namespace only)
    public var containerRootOnHost: (uid_t, gid_t)? {
        guard newUserNamespace, let l = spec.linux,
              let u = l.uidMappings.first(where: { $0.containerID == 0 }),
              let g = l.gidMappings.first(where: { $0.containerID == 0 }) else { return nil }
        return (u.hostID, g.hostID)
    }
    public let wantsHookState: Bool
    /// The C config; pointers stay valid for the life of the process.
    public let config: UnsafeMutablePointer<bl_init_config>
    /// the open namespace fds to join (closed by the child after setns; by us after spawn)
    public let joinFds: [Int32]

    public init(spec: Spec, bundle: String, cgroupsPath: String?, options: ContainerOptions) throws(LinuxError) {
        guard let process = spec.process else { throw LinuxError(.invalidArgument, "config.json: process is required") }
        guard let root = spec.root else { throw LinuxError(.invalidArgument, "config.json: root is required") }
        let linux = spec.linux ?? Linux()
        self.spec = spec
        self.bundle = bundle
        let rootPath = root.path.hasPrefix("/") ? root.path : bundle + "/" + root.path
        guard FS.isDirectory(rootPath) else {
            throw LinuxError(.notFound, "rootfs \(rootPath): not a directory (root.path in config.json)")
        }
        rootfs = try FS.realpath(rootPath)
        try Self.checkLSMs(process, linux)
        let seccompFilter = try linux.seccomp.flatMap { (j: JSON) throws(LinuxError) in try Seccomp.filter(j) }

        let cfg = UnsafeMutablePointer<bl_init_config>.allocate(capacity: 1)
        cfg.initialize(to: bl_init_config())
        // namespaces
        var newFlags: Int32 = 0
        var joins: [(Int32, Int32)] = []
        var newUser = false
        for ns in linux.namespaces {
            let flag = namespaceFlags[ns.type]!
            if let path = ns.path, !path.isEmpty {
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                if fd < 0 {
                    let e = errno
                    for (f, _) in joins { close(f) }
                    throw LinuxError.sys("open \(ns.type.rawValue) namespace \(path)", errno: e)
                }
                joins.append((fd, flag))
            } else if ns.type == .user {
                newUser = true
            } else {
                newFlags |= flag
            }
        }
        // the user namespace first, in the order given otherwise
        joins.sort { ($0.1 == Int32(BL_CLONE_NEWUSER) ? 0 : 1) < ($1.1 == Int32(BL_CLONE_NEWUSER) ? 0 : 1) }
        if joins.count > 8 { throw LinuxError(.invalidArgument, "linux.namespaces: too many namespaces") }
        withUnsafeMutablePointer(to: &cfg.pointee.join_fds) { p in
            p.withMemoryRebound(to: Int32.self, capacity: 8) { for i in 0..<8 { $0[i] = i < joins.count ? joins[i].0 : -1 } }
        }
        withUnsafeMutablePointer(to: &cfg.pointee.join_types) { p in
            p.withMemoryRebound(to: Int32.self, capacity: 8) { for i in 0..<8 { $0[i] = i < joins.count ? joins[i].1 : 0 } }
        }
        joinFds = joins.map(\.0)
        cfg.pointee.njoin = Int32(joins.count)
        cfg.pointee.new_ns_flags = newFlags
        cfg.pointee.new_userns = newUser ? 1 : 0
        newUserNamespace = newUser
        func mapText(_ m: [IDMapping]) -> String? {
            m.isEmpty ? nil : m.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
        }
        uidMap = newUser ? mapText(linux.uidMappings) : nil
        gidMap = newUser ? mapText(linux.gidMappings) : nil
        if !linux.timeOffsets.isEmpty && (newFlags & 0x80) != 0 {
            let text = linux.timeOffsets.map { "\($0.clock) \($0.offset.secs) \($0.offset.nanosecs)\n" }.joined()
            cfg.pointee.timens_offsets = CMemory.string(text)
        }
        let hasMountNS = (newFlags & Int32(BL_CLONE_NEWNS)) != 0 || joins.contains { $0.1 == Int32(BL_CLONE_NEWNS) }
        cfg.pointee.has_mount_ns = (newFlags & Int32(BL_CLONE_NEWNS)) != 0 ? 1 : 0
        if !hasMountNS && !spec.mounts.isEmpty {
            throw LinuxError(.invalidArgument, "config.json: mounts need a new mount namespace (linux.namespaces has no \"mount\")")
        }

        // rootfs and mounts
        cfg.pointee.rootfs = CMemory.string(rootfs)
        cfg.pointee.readonly_root = root.readonly ? 1 : 0
        cfg.pointee.no_pivot = options.noPivot ? 1 : 0
        if let prop = linux.rootfsPropagation, !prop.isEmpty {
            let f = MountFlags.parse([prop])
            guard let p = f.propagation.first else {
                throw LinuxError(.invalidArgument, "linux.rootfsPropagation: unknown value \"\(prop)\"")
            }
            cfg.pointee.root_propagation = p
        }
        let cgroupResolved: Cgroup? = try Self.resolveCgroup(cgroupsPath: cgroupsPath)
        cgroup = cgroupResolved
        resources = try Resources(spec: spec)
        let cgroupNS = (newFlags & Int32(BL_CLONE_NEWCGROUP)) != 0
        var mounts: [bl_mount] = []
        var devBound = false
        for m in spec.mounts {
            let f = MountFlags.parse(m.options)
            if f.idmap || f.recursiveIdmap { throw LinuxError(.unsupported, "mount \(m.destination): idmapped mounts are not supported yet") }
            let isBind = f.isBind || m.type == "bind"
            if m.type == "cgroup" || m.type == "cgroup2" {
                mounts += try Self.cgroupMounts(m, flags: f, cgroup: cgroupResolved, cgroupNS: cgroupNS)
                continue
            }
            var bm = bl_mount()
            bm.dest = CMemory.string(m.destination)
            bm.flags = f.flags | (isBind ? UInt(MS_BIND) : 0)
            if !f.data.isEmpty { bm.data = CMemory.string(f.dataString) }
            withUnsafeMutablePointer(to: &bm.propagation) { p in
                p.withMemoryRebound(to: UInt.self, capacity: 4) { for (i, v) in f.propagation.prefix(4).enumerated() { $0[i] = v } }
            }
            bm.npropagation = Int32(min(f.propagation.count, 4))
            bm.attr_set = f.attrSet
            bm.attr_clr = f.attrClear
            // podman puts it on its tmpfs mounts (/run, /tmp, --tmpfs): the image's files stay visible
            bm.tmpcopyup = f.tmpcopyup ? 1 : 0
            if isBind {
                guard let src = m.source, !src.isEmpty else {
                    throw LinuxError(.invalidArgument, "mount \(m.destination): a bind mount needs a source")
                }
                bm.kind = Int32(BL_MOUNT_BIND.rawValue)
                bm.source = CMemory.string(src.hasPrefix("/") ? src : bundle + "/" + src)
                bm.recursive = f.recursive ? 1 : 0
                if m.destination == "/dev" { devBound = true }
            } else {
                bm.kind = Int32(BL_MOUNT_FS.rawValue)
                bm.source = CMemory.string(m.source ?? m.type ?? "none")
                bm.fstype = CMemory.string(m.type ?? "none")
                if m.type == nil { throw LinuxError(.invalidArgument, "mount \(m.destination): type is required for a non-bind mount") }
            }
            mounts.append(bm)
        }
        cfg.pointee.mounts = CMemory.array(mounts)
        cfg.pointee.nmounts = Int32(mounts.count)

        // devices
        var devices: [bl_device] = []
        var devicePaths: Set<String> = []
        for d in linux.devices {
            var bd = bl_device()
            let kind: UInt32
            switch d.type {
            case "c", "u": kind = UInt32(S_IFCHR)
            case "b": kind = UInt32(S_IFBLK)
            case "p": kind = UInt32(S_IFIFO)
            default: throw LinuxError(.invalidArgument, "linux.devices \(d.path): unknown type \"\(d.type)\"")
            }
            bd.path = CMemory.string(d.path)
            bd.mode = kind | ((d.fileMode ?? 0o666) & 0o7777)
            bd.major = UInt32(truncatingIfNeeded: d.major)
            bd.minor = UInt32(truncatingIfNeeded: d.minor)
            bd.uid = d.uid ?? 0
            bd.gid = d.gid ?? 0
            devices.append(bd)
            devicePaths.insert(d.path)
        }
        if !devBound {
            for (name, major, minor) in [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)] {
                let path = "/dev/" + name
                if devicePaths.contains(path) { continue }
                var bd = bl_device()
                bd.path = CMemory.string(path)
                bd.mode = UInt32(S_IFCHR) | 0o666
                bd.major = UInt32(major)
                bd.minor = UInt32(minor)
                devices.append(bd)
            }
            cfg.pointee.default_devices = 1
        }
        if !hasMountNS { devices.removeAll(); cfg.pointee.default_devices = 0 }
        cfg.pointee.devices = CMemory.array(devices)
        cfg.pointee.ndevices = Int32(devices.count)
        cfg.pointee.masked = CMemory.constStrings(linux.maskedPaths)
        cfg.pointee.nmasked = Int32(linux.maskedPaths.count)
        cfg.pointee.readonly = CMemory.constStrings(linux.readonlyPaths)
        cfg.pointee.nreadonly = Int32(linux.readonlyPaths.count)
        cfg.pointee.hostname = CMemory.optionalString(spec.hostname)
        cfg.pointee.domainname = CMemory.optionalString(spec.domainname)
        cfg.pointee.sysctl_keys = CMemory.constStrings(linux.sysctl.map(\.key))
        cfg.pointee.sysctl_values = CMemory.constStrings(linux.sysctl.map(\.value))
        cfg.pointee.nsysctl = Int32(linux.sysctl.count)

        // hooks run inside the container
        let hooks = spec.hooks ?? Hooks()
        let cc = hooks.createContainer.map(Self.cHook)
        let sc = hooks.startContainer.map(Self.cHook)
        cfg.pointee.create_container_hooks = CMemory.array(cc)
        cfg.pointee.ncreate_container_hooks = Int32(cc.count)
        cfg.pointee.start_container_hooks = CMemory.array(sc)
        cfg.pointee.nstart_container_hooks = Int32(sc.count)
        wantsHookState = !cc.isEmpty || !sc.isEmpty
        cfg.pointee.wants_hook_state = wantsHookState ? 1 : 0

        cfg.pointee.process = try Self.cProcess(process, options: options, execFifo: true)
        cfg.pointee.process.seccomp = seccompFilter
        cfg.pointee.process.setsid = 1
        oomScoreAdj = process.oomScoreAdj
        config = cfg
    }

    static func checkLSMs(_ process: Process, _ linux: Linux) throws(LinuxError) {
        if let p = process.apparmorProfile, !p.isEmpty {
            let on = (try? FS.readString("/sys/module/apparmor/parameters/enabled"))?.hasPrefix("Y") ?? false
            throw LinuxError(.unsupported, on
                ? "process.apparmorProfile \"\(p)\": AppArmor profiles are not supported by this build"
                : "process.apparmorProfile \"\(p)\": AppArmor is not enabled on this host")
        }
        if let l = process.selinuxLabel, !l.isEmpty {
            throw LinuxError(.unsupported, FS.exists("/sys/fs/selinux/enforce")
                ? "process.selinuxLabel: SELinux labels are not supported by this build"
                : "process.selinuxLabel \"\(l)\": SELinux is not enabled on this host")
        }
        if let l = linux.mountLabel, !l.isEmpty, !FS.exists("/sys/fs/selinux/enforce") {
            throw LinuxError(.unsupported, "linux.mountLabel \"\(l)\": SELinux is not enabled on this host")
        }
    }

    static func resolveCgroup(cgroupsPath: String?) throws(LinuxError) -> Cgroup? {
        guard let path = cgroupsPath, !path.isEmpty else { return nil }
        if path.contains(":") && !path.hasPrefix("/") {
            throw LinuxError(.invalidArgument, "linux.cgroupsPath \"\(path)\": systemd slice:prefix:name paths need --systemd-cgroup")
        }
        return try Cgroup.resolve(cgroupsPath: path)
    }

    public static func cHook(_ h: Hook) -> bl_hook {
        var b = bl_hook()
        b.path = CMemory.string(h.path)
        b.argv = CMemory.stringArray(h.args.isEmpty ? [h.path] : h.args)
        b.envp = CMemory.stringArray(h.env)
        b.timeout = Int32(h.timeout ?? 0)
        return b
    }

    /// A cgroup mount: v1 is a tmpfs with one entry per hierarchy (a cgroup mount inside a cgroup
    /// namespace, a bind of the container's own cgroup otherwise); v2 is one cgroup2 mount.
    static func cgroupMounts(_ m: Mount, flags: MountFlags, cgroup: Cgroup?, cgroupNS: Bool) throws(LinuxError) -> [bl_mount] {
        let base = flags.flags & ~UInt(MS_RDONLY)
        let readonly = (flags.flags & UInt(MS_RDONLY)) != 0
        if Cgroup.isUnifiedOnly() {
            var bm = bl_mount()
            bm.dest = CMemory.string(m.destination)
            if cgroupNS {
                bm.kind = Int32(BL_MOUNT_FS.rawValue)
                bm.source = CMemory.string("cgroup2")
                bm.fstype = CMemory.string("cgroup2")
                bm.flags = flags.flags
            } else {
                bm.kind = Int32(BL_MOUNT_BIND.rawValue)
                bm.source = CMemory.string(cgroup?.paths.first?.dir ?? "/sys/fs/cgroup")
                bm.flags = UInt(MS_BIND) | flags.flags
                bm.recursive = 1
            }
            return [bm]
        }
        var out: [bl_mount] = []
        var t = bl_mount()
        t.kind = Int32(BL_MOUNT_FS.rawValue)
        t.dest = CMemory.string(m.destination)
        t.source = CMemory.string("tmpfs")
        t.fstype = CMemory.string("tmpfs")
        t.flags = base
        t.data = CMemory.string("mode=755")
        out.append(t)
        let hs = try Cgroup.hierarchies()
        for h in hs {
            var bm = bl_mount()
            let sub = h.isV2 ? "unified" : (h.name.hasPrefix("name=") ? String(h.name.dropFirst(5)) : h.name)
            bm.dest = CMemory.string(m.destination + "/" + sub)
            let own = cgroup?.paths.first(where: { $0.name == h.name })?.dir
            if cgroupNS {
                bm.kind = Int32(BL_MOUNT_FS.rawValue)
                bm.source = CMemory.string("cgroup")
                bm.fstype = CMemory.string(h.isV2 ? "cgroup2" : "cgroup")
                bm.flags = base | (readonly ? UInt(MS_RDONLY) : 0)
                if !h.isV2 { bm.data = CMemory.string(h.controllers.joined(separator: ",")) }
            } else {
                bm.kind = Int32(BL_MOUNT_BIND.rawValue)
                bm.source = CMemory.string(own ?? h.mountPoint)
                bm.flags = UInt(MS_BIND) | base | (readonly ? UInt(MS_RDONLY) : 0)
                bm.ignore_missing_source = 1
            }
            out.append(bm)
        }
        if readonly {
            var ro = bl_mount()
            ro.kind = Int32(BL_MOUNT_REMOUNT.rawValue)
            ro.dest = CMemory.string(m.destination)
            ro.flags = base | UInt(MS_RDONLY)
            out.append(ro)
        }
        return out
    }

    /// - seccomp: linux.seccomp of the container (exec applies it too, as runc does)
    public static func cProcess(_ p: Process, options: ContainerOptions, execFifo: Bool,
                                seccomp: JSON? = nil) throws(LinuxError) -> bl_process {
        var bp = bl_process()
        if let s = seccomp { bp.seccomp = try Seccomp.filter(s) }
        if p.args.isEmpty { throw LinuxError(.invalidArgument, "process.args: must not be empty") }
        bp.argv = CMemory.stringArray(p.args)
        bp.envp = CMemory.stringArray(p.env)
        bp.cwd = CMemory.string(p.cwd.isEmpty ? "/" : p.cwd)
        bp.uid = p.user.uid
        bp.gid = p.user.gid
        bp.ngroups = Int32(p.user.additionalGids.count)
        bp.groups = CMemory.array(p.user.additionalGids)
        bp.umask = p.user.umask.map { Int32($0 & 0o777) } ?? -1
        if let caps = p.capabilities {
            func mask(_ names: [String], _ set: String) throws(LinuxError) -> UInt64 {
                var m: UInt64 = 0
                for n in names {
                    guard let i = Capabilities.number(of: n) else {
                        throw LinuxError(.invalidArgument, "process.capabilities.\(set): unknown capability \"\(n)\"")
                    }
                    m |= 1 << UInt64(i)
                }
                return m
            }
            bp.has_caps = 1
            bp.cap_bounding = try mask(caps.bounding, "bounding")
            bp.cap_effective = try mask(caps.effective, "effective")
            bp.cap_inheritable = try mask(caps.inheritable, "inheritable")
            bp.cap_permitted = try mask(caps.permitted, "permitted")
            bp.cap_ambient = try mask(caps.ambient, "ambient")
        }
        bp.no_new_privs = p.noNewPrivileges ? 1 : 0
        var rl: [bl_rlimit] = []
        for r in p.rlimits {
            guard let res = r.resource else { throw LinuxError(.invalidArgument, "process.rlimits: unknown type \"\(r.type)\"") }
            rl.append(bl_rlimit(resource: res, soft: r.soft, hard: r.hard, name: CMemory.string(r.type)))
        }
        bp.rlimits = CMemory.array(rl)
        bp.nrlimits = Int32(rl.count)
        if let io = p.ioPriority {
            guard let v = io.ioprioValue else { throw LinuxError(.invalidArgument, "process.ioPriority.class: unknown \"\(io.ioClass)\"") }
            bp.ioprio_set = 1
            bp.ioprio = v
        }
        bp.terminal = p.terminal ? 1 : 0
        if let cs = p.consoleSize {
            bp.console_rows = UInt16(truncatingIfNeeded: cs.height)
            bp.console_cols = UInt16(truncatingIfNeeded: cs.width)
        }
        bp.console_socket = -1
        bp.exec_fifo_fd = -1
        bp.sync_fd = -1
        bp.parent_fd = -1
        bp.preserve_fds = Int32(options.preserveFds)
        bp.new_keyring = options.noNewKeyring ? 0 : 1
        if p.terminal && options.consoleSocket == nil && !options.ownConsole {
            throw LinuxError(.invalidArgument, "process.terminal is true: --console-socket is required")
        }
        if !p.terminal && options.consoleSocket != nil {
            throw LinuxError(.invalidArgument, "--console-socket given but process.terminal is false")
        }
        return bp
    }
}
