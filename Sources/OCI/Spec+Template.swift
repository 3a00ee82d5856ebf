// The config.json `spec` writes: the same fields and values as `runc spec` / `runc spec --rootless`
// (runc 1.1), with ociVersion "1.0.2". Serialize with `serialized(pretty: true)` for runc's layout.

extension Spec {
    /// `rootless` drops the network namespace, linux.resources and devpts' gid=5, bind-mounts /sys, and adds a
    /// user namespace mapping container root to `hostUID`/`hostGID` (runc uses the caller's euid/egid).
    public static func defaultTemplate(rootless: Bool, hostUID: UInt32 = 0, hostGID: UInt32 = 0) -> JSON {
        func obj(_ fields: [(String, JSON)]) -> JSON { .object(fields.map { (key: $0.0, value: $0.1) }) }
        func mount(_ destination: String, _ type: String, _ source: String, _ options: [String]) -> JSON {
            var fields: [(String, JSON)] = [
                ("destination", .string(destination)), ("type", .string(type)), ("source", .string(source)),
            ]
            if !options.isEmpty { fields.append(("options", .strings(options))) }
            return obj(fields)
        }
        let caps = JSON.strings(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
        let process = obj([
            ("terminal", .bool(true)),
            ("user", obj([("uid", .number(0)), ("gid", .number(0))])),
            ("args", .strings(["sh"])),
            ("env", .strings(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"])),
            ("cwd", .string("/")),
            ("capabilities", obj([("bounding", caps), ("effective", caps), ("permitted", caps), ("ambient", caps)])),
            ("rlimits", .array([obj([("type", .string("RLIMIT_NOFILE")), ("hard", .number(1024)), ("soft", .number(1024))])])),
            ("noNewPrivileges", .bool(true)),
        ])
        var devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
        if !rootless { devpts.append("gid=5") }
        let mounts: [JSON] = [
            mount("/proc", "proc", "proc", []),
            mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount("/dev/pts", "devpts", "devpts", devpts),
            mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
            rootless
                ? mount("/sys", "none", "/sys", ["rbind", "nosuid", "noexec", "nodev", "ro"])
                : mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
            mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
        ]
        let namespaceTypes = rootless ? ["pid", "ipc", "uts", "mount", "user"] : ["pid", "network", "ipc", "uts", "mount"]
        var linux: [(String, JSON)] = []
        if rootless {
            linux.append(("uidMappings", .array([obj([("containerID", .number(0)), ("hostID", .number(hostUID)), ("size", .number(1))])])))
            linux.append(("gidMappings", .array([obj([("containerID", .number(0)), ("hostID", .number(hostGID)), ("size", .number(1))])])))
        } else {
            linux.append(("resources", obj([("devices", .array([obj([("allow", .bool(false)), ("access", .string("rwm"))])]))])))
        }
        linux.append(("namespaces", .array(namespaceTypes.map { obj([("type", .string($0))]) })))
        linux.append(("maskedPaths", .strings([
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
        ])))
        linux.append(("readonlyPaths", .strings(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"])))
        return obj([
            ("ociVersion", .string("1.0.2")),
            ("process", process),
            ("root", obj([("path", .string("rootfs")), ("readonly", .bool(true))])),
            ("hostname", .string("runc")),
            ("mounts", .array(mounts)),
            ("linux", obj(linux)),
        ])
    }
}
