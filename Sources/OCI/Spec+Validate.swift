// Pure checks of a decoded config.json (no syscalls): the runtime-spec MUSTs plus what runc's
// libcontainer/configs/validate rejects. The first error wins; messages read "config.json: path: why".

extension Spec {
    /// Throws `.invalidConfig` for the first problem found. `requireProcess` is true for create/run;
    /// pass false where a config without `process` is fine.
    public func validate(requireProcess: Bool = true) throws(OCIError) {
        do { try check(requireProcess: requireProcess) } catch { throw error.prefixed("config.json") }
    }

    /// the propagation values allowed in linux.rootfsPropagation
    public static let rootfsPropagations = [
        "shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable",
    ]

    /// runc's container id rule: ^[\w+\-.]+$, not "." or "..", at most 1024 bytes
    public static func validateContainerID(_ id: String) throws(OCIError) {
        guard !id.isEmpty else { throw OCIError(.invalidConfig, "container id: must not be empty") }
        guard id.utf8.count <= 1024 else {
            throw OCIError(.invalidConfig, "container id: longer than 1024 bytes")
        }
        guard id != "." && id != ".." else { throw OCIError(.invalidConfig, "container id \"\(id)\": not allowed") }
        for byte in id.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "+"), UInt8(ascii: "-"),
                 UInt8(ascii: "."):
                continue
            default:
                throw OCIError(.invalidConfig,
                               "container id \"\(id)\": may contain only letters, digits, '_', '+', '-' and '.'")
            }
        }
    }

    func check(requireProcess: Bool) throws(OCIError) {
        func fail(_ path: String, _ why: String) -> OCIError { OCIError.config(path, why) }

        // ociVersion
        guard !ociVersion.isEmpty else { throw fail("ociVersion", "must be set") }
        let major = ociVersion.utf8.prefix { $0 != UInt8(ascii: ".") }
        guard major.elementsEqual("1".utf8) else {
            throw fail("ociVersion", "unsupported version \"\(ociVersion)\" (major version must be 1)")
        }

        // root
        guard let root else { throw fail("root", "must be set") }
        guard !root.path.isEmpty else { throw fail("root.path", "must be set") }

        let linux = self.linux ?? Linux()
        func has(_ type: NamespaceType) -> Bool { linux.namespaces.contains { $0.type == type } }
        func ns(_ type: NamespaceType) -> Namespace? { linux.namespaces.first { $0.type == type } }

        // process
        if let process {
            try process.check(path: "process")
        } else if requireProcess {
            throw fail("process", "must be set")
        }

        // hostname, domainname
        if let hostname, !hostname.isEmpty, !has(.uts) {
            throw fail("hostname", "unable to set hostname without a private UTS namespace")
        }
        if let domainname, !domainname.isEmpty, !has(.uts) {
            throw fail("domainname", "unable to set domainname without a private UTS namespace")
        }

        // mounts
        for (k, mount) in mounts.enumerated() where !isAbsolute(mount.destination) {
            throw fail("mounts[\(k)].destination", "\"\(mount.destination)\" must be an absolute path")
        }

        // hooks
        if let hooks {
            let all: [(String, [Hook])] = [
                ("prestart", hooks.prestart), ("createRuntime", hooks.createRuntime),
                ("createContainer", hooks.createContainer), ("startContainer", hooks.startContainer),
                ("poststart", hooks.poststart), ("poststop", hooks.poststop),
            ]
            for (name, list) in all {
                for (k, hook) in list.enumerated() {
                    if !isAbsolute(hook.path) {
                        throw fail("hooks.\(name)[\(k)].path", "\"\(hook.path)\" must be an absolute path")
                    }
                    if let timeout = hook.timeout, timeout <= 0 {
                        throw fail("hooks.\(name)[\(k)].timeout", "must be greater than 0, got \(timeout)")
                    }
                }
            }
        }

        // namespaces
        for (k, namespace) in linux.namespaces.enumerated() {
            if linux.namespaces[..<k].contains(where: { $0.type == namespace.type }) {
                throw fail("linux.namespaces[\(k)].type", "duplicate namespace type \"\(namespace.type.rawValue)\"")
            }
            if let path = namespace.path, !isAbsolute(path) {
                throw fail("linux.namespaces[\(k)].path", "\"\(path)\" must be an absolute path")
            }
        }

        // user namespace and id mappings
        if let user = ns(.user) {
            if user.path == nil {
                if linux.uidMappings.isEmpty {
                    throw fail("linux.uidMappings", "a new user namespace needs uid mappings")
                }
                if linux.gidMappings.isEmpty {
                    throw fail("linux.gidMappings", "a new user namespace needs gid mappings")
                }
            }
            // joining by path with mappings given is allowed (containerd does it); the runtime checks they match
        } else {
            if !linux.uidMappings.isEmpty {
                throw fail("linux.uidMappings", "user namespace mappings given but no user namespace")
            }
            if !linux.gidMappings.isEmpty {
                throw fail("linux.gidMappings", "user namespace mappings given but no user namespace")
            }
        }
        for (name, list) in [("uidMappings", linux.uidMappings), ("gidMappings", linux.gidMappings)] {
            for (k, mapping) in list.enumerated() where mapping.size == 0 {
                throw fail("linux.\(name)[\(k)].size", "must be greater than 0")
            }
        }

        // time namespace offsets
        if !linux.timeOffsets.isEmpty {
            for entry in linux.timeOffsets {
                guard entry.clock == "monotonic" || entry.clock == "boottime" else {
                    throw fail("linux.timeOffsets", "unknown clock \"\(entry.clock)\" (want monotonic or boottime)")
                }
                if entry.offset.nanosecs >= 1_000_000_000 {
                    throw fail("linux.timeOffsets.\(entry.clock).nanosecs", "must be less than 1000000000")
                }
            }
            guard let time = ns(.time) else {
                throw fail("linux.timeOffsets", "time offsets given but no time namespace")
            }
            if time.path != nil {
                throw fail("linux.timeOffsets", "time offsets cannot be set when joining an existing time namespace")
            }
        }

        // devices
        for (k, device) in linux.devices.enumerated() {
            guard ["c", "b", "u", "p"].contains(device.type) else {
                throw fail("linux.devices[\(k)].type", "unknown device type \"\(device.type)\" (want c, b, u or p)")
            }
            if !isAbsolute(device.path) {
                throw fail("linux.devices[\(k)].path", "\"\(device.path)\" must be an absolute path")
            }
        }

        // rootfs propagation
        if let propagation = linux.rootfsPropagation, !propagation.isEmpty,
           !Spec.rootfsPropagations.contains(propagation)
        {
            throw fail("linux.rootfsPropagation", "unknown propagation \"\(propagation)\"")
        }

        // sysctl
        for (key, _) in linux.sysctl {
            let name = String(decoding: key.utf8.map { $0 == UInt8(ascii: "/") ? UInt8(ascii: ".") : $0 }, as: UTF8.self)
            let path = "linux.sysctl.\(key)"
            if name.hasPrefix("kernel.msg") || name == "kernel.sem" || name.hasPrefix("kernel.sem_")
                || name.hasPrefix("kernel.shm") || name.hasPrefix("fs.mqueue.")
            {
                if !has(.ipc) { throw fail(path, "sysctl \"\(key)\" is not allowed in the host's ipc namespace") }
            } else if name.hasPrefix("net.") {
                if !has(.network) { throw fail(path, "sysctl \"\(key)\" is not allowed in the host's network namespace") }
            } else if name == "kernel.hostname" || name == "kernel.domainname" {
                if !has(.uts) { throw fail(path, "sysctl \"\(key)\" is not allowed in the host's uts namespace") }
            } else {
                throw fail(path, "sysctl \"\(key)\" is not in a separate kernel namespace")
            }
        }
    }
}

extension Process {
    /// checks of a process on its own (also for `exec --process`); path is its JSON path
    public func validate(path: String = "process") throws(OCIError) { try check(path: path) }

    func check(path: String) throws(OCIError) {
        func fail(_ sub: String, _ why: String) -> OCIError { OCIError.config(path + sub, why) }
        guard !args.isEmpty else { throw fail(".args", "must not be empty") }
        guard isAbsolute(cwd) else {
            throw fail(".cwd", cwd.isEmpty ? "must be set to an absolute path" : "\"\(cwd)\" must be an absolute path")
        }
        for (k, entry) in env.enumerated() {
            guard let eq = entry.utf8.firstIndex(of: UInt8(ascii: "=")) else {
                throw fail(".env[\(k)]", "\"\(entry)\" must be of the form KEY=value")
            }
            if eq == entry.utf8.startIndex { throw fail(".env[\(k)]", "\"\(entry)\" has an empty name") }
            if entry.utf8.contains(0) { throw fail(".env[\(k)]", "must not contain a NUL byte") }
        }
        for (k, limit) in rlimits.enumerated() {
            guard limit.resource != nil else {
                throw fail(".rlimits[\(k)].type", "unknown rlimit type \"\(limit.type)\"")
            }
            if rlimits[..<k].contains(where: { $0.type == limit.type }) {
                throw fail(".rlimits[\(k)].type", "duplicate rlimit type \"\(limit.type)\"")
            }
            if limit.soft > limit.hard {
                throw fail(".rlimits[\(k)]", "soft limit \(limit.soft) exceeds hard limit \(limit.hard)")
            }
        }
        if let caps = capabilities {
            let sets: [(String, [String])] = [
                ("bounding", caps.bounding), ("effective", caps.effective), ("inheritable", caps.inheritable),
                ("permitted", caps.permitted), ("ambient", caps.ambient),
            ]
            for (name, list) in sets {
                for (k, cap) in list.enumerated() where Capabilities.number(of: cap) == nil {
                    throw fail(".capabilities.\(name)[\(k)]", "unknown capability \"\(cap)\"")
                }
            }
        }
        if let io = ioPriority {
            guard io.classNumber != nil else {
                throw fail(".ioPriority.class",
                           "unknown class \"\(io.ioClass)\" (want IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE)")
            }
            guard (0...7).contains(io.priority) else {
                throw fail(".ioPriority.priority", "\(io.priority) is out of range (0...7)")
            }
        }
        if let adj = oomScoreAdj, !(-1000...1000).contains(adj) {
            throw fail(".oomScoreAdj", "\(adj) is out of range (-1000...1000)")
        }
    }
}

@inline(__always) func isAbsolute(_ path: String) -> Bool { path.utf8.first == UInt8(ascii: "/") }
