// config.json → Spec. Field names follow runtime-spec config.md / config-linux.md; unknown fields are
// ignored (config.md "Extensibility"), `null` reads as absent, wrong types and out-of-range numbers throw
// with the JSON path ("process.user.uid: expected an unsigned integer"). Checks of values live in
// Spec+Validate.swift.

extension Spec {
    /// parse and decode config.json bytes; errors read "config.json: ..."
    public static func parse(_ bytes: [UInt8]) throws(OCIError) -> Spec {
        let json: JSON
        do { json = try JSON.parse(bytes) } catch { throw error.prefixed("config.json") }
        do { return try Spec(json: json) } catch { throw error.prefixed("config.json") }
    }

    public init(json: JSON) throws(OCIError) {
        self.init()
        ociVersion = ""
        for (key, value) in try Decode.object(json, "config") {
            switch key {
            case "ociVersion": ociVersion = try Decode.optionalString(value, key) ?? ""
            case "process": process = value.isNull ? nil : try Process(json: value, path: key)
            case "root": root = value.isNull ? nil : try Root(json: value, path: key)
            case "hostname": hostname = try Decode.optionalString(value, key)
            case "domainname": domainname = try Decode.optionalString(value, key)
            case "mounts": mounts = try Decode.array(value, key) { (v, p) throws(OCIError) in try Mount(json: v, path: p) }
            case "hooks": hooks = value.isNull ? nil : try Hooks(json: value, path: key)
            case "annotations": annotations = try Decode.stringMap(value, key)
            case "linux": linux = value.isNull ? nil : try Linux(json: value, path: key)
            default: break
            }
        }
    }
}

extension Process {
    public init(json: JSON, path: String = "process") throws(OCIError) {
        self.init()
        cwd = ""
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "terminal": terminal = try Decode.bool(value, Decode.join(path, key))
            case "consoleSize":
                consoleSize = value.isNull ? nil : try ConsoleSize(json: value, path: Decode.join(path, key))
            case "user": user = try User(json: value, path: Decode.join(path, key))
            case "args": args = try Decode.strings(value, Decode.join(path, key))
            case "commandLine": commandLine = try Decode.optionalString(value, Decode.join(path, key))
            case "env": env = try Decode.strings(value, Decode.join(path, key))
            case "cwd": cwd = try Decode.optionalString(value, Decode.join(path, key)) ?? ""
            case "capabilities":
                capabilities = value.isNull ? nil : try Capabilities(json: value, path: Decode.join(path, key))
            case "rlimits":
                rlimits = try Decode.array(value, Decode.join(path, key)) { (v, p) throws(OCIError) in
                    try Rlimit(json: v, path: p)
                }
            case "noNewPrivileges": noNewPrivileges = try Decode.bool(value, Decode.join(path, key))
            case "apparmorProfile": apparmorProfile = try Decode.optionalString(value, Decode.join(path, key))
            case "oomScoreAdj": oomScoreAdj = value.isNull ? nil : try Decode.int(value, Decode.join(path, key))
            case "selinuxLabel": selinuxLabel = try Decode.optionalString(value, Decode.join(path, key))
            case "ioPriority":
                ioPriority = value.isNull ? nil : try IOPriority(json: value, path: Decode.join(path, key))
            default: break
            }
        }
    }
}

extension ConsoleSize {
    public init(json: JSON, path: String = "consoleSize") throws(OCIError) {
        self.init(height: 0, width: 0)
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "height": height = try Decode.uint32(value, Decode.join(path, key))
            case "width": width = try Decode.uint32(value, Decode.join(path, key))
            default: break
            }
        }
    }
}

extension User {
    public init(json: JSON, path: String = "user") throws(OCIError) {
        self.init()
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "uid": uid = value.isNull ? 0 : try Decode.uint32(value, Decode.join(path, key))
            case "gid": gid = value.isNull ? 0 : try Decode.uint32(value, Decode.join(path, key))
            case "umask": umask = value.isNull ? nil : try Decode.uint32(value, Decode.join(path, key))
            case "additionalGids": additionalGids = try Decode.uint32s(value, Decode.join(path, key))
            case "username": username = try Decode.optionalString(value, Decode.join(path, key))
            default: break
            }
        }
    }
}

extension Capabilities {
    public init(json: JSON, path: String = "capabilities") throws(OCIError) {
        self.init()
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "bounding": bounding = try Decode.strings(value, Decode.join(path, key))
            case "effective": effective = try Decode.strings(value, Decode.join(path, key))
            case "inheritable": inheritable = try Decode.strings(value, Decode.join(path, key))
            case "permitted": permitted = try Decode.strings(value, Decode.join(path, key))
            case "ambient": ambient = try Decode.strings(value, Decode.join(path, key))
            default: break
            }
        }
    }
}

extension Rlimit {
    public init(json: JSON, path: String = "rlimit") throws(OCIError) {
        self.init(type: "", soft: 0, hard: 0)
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "type": type = try Decode.optionalString(value, Decode.join(path, key)) ?? ""
            case "soft": soft = value.isNull ? 0 : try Decode.uint64(value, Decode.join(path, key))
            case "hard": hard = value.isNull ? 0 : try Decode.uint64(value, Decode.join(path, key))
            default: break
            }
        }
    }
}

extension IOPriority {
    public init(json: JSON, path: String = "ioPriority") throws(OCIError) {
        self.init(ioClass: "", priority: 0)
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "class": ioClass = try Decode.optionalString(value, Decode.join(path, key)) ?? ""
            case "priority": priority = value.isNull ? 0 : try Decode.int(value, Decode.join(path, key))
            default: break
            }
        }
    }
}

extension Root {
    public init(json: JSON, path: String = "root") throws(OCIError) {
        self.init(path: "")
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "path": self.path = try Decode.optionalString(value, Decode.join(path, key)) ?? ""
            case "readonly": readonly = try Decode.bool(value, Decode.join(path, key))
            default: break
            }
        }
    }
}

extension Mount {
    public init(json: JSON, path: String = "mount") throws(OCIError) {
        self.init(destination: "")
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "destination": destination = try Decode.optionalString(value, Decode.join(path, key)) ?? ""
            case "type": type = try Decode.optionalString(value, Decode.join(path, key))
            case "source": source = try Decode.optionalString(value, Decode.join(path, key))
            case "options": options = try Decode.strings(value, Decode.join(path, key))
            case "uidMappings": uidMappings = try IDMapping.list(value, Decode.join(path, key))
            case "gidMappings": gidMappings = try IDMapping.list(value, Decode.join(path, key))
            default: break
            }
        }
    }
}

extension Hook {
    public init(json: JSON, path: String = "hook") throws(OCIError) {
        self.init(path: "")
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "path": self.path = try Decode.optionalString(value, Decode.join(path, key)) ?? ""
            case "args": args = try Decode.strings(value, Decode.join(path, key))
            case "env": env = try Decode.strings(value, Decode.join(path, key))
            case "timeout": timeout = value.isNull ? nil : try Decode.int(value, Decode.join(path, key))
            default: break
            }
        }
    }
}

extension Hooks {
    public init(json: JSON, path: String = "hooks") throws(OCIError) {
        self.init()
        for (key, value) in try Decode.object(json, path) {
            let hooks = { () throws(OCIError) -> [Hook] in
                try Decode.array(value, Decode.join(path, key)) { (v, p) throws(OCIError) in try Hook(json: v, path: p) }
            }
            switch key {
            case "prestart": prestart = try hooks()
            case "createRuntime": createRuntime = try hooks()
            case "createContainer": createContainer = try hooks()
            case "startContainer": startContainer = try hooks()
            case "poststart": poststart = try hooks()
            case "poststop": poststop = try hooks()
            default: break
            }
        }
    }
}

extension Namespace {
    public init(json: JSON, path: String = "namespace") throws(OCIError) {
        var type: NamespaceType?
        var nsPath: String?
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "type":
                let name = try Decode.string(value, Decode.join(path, key))
                guard let t = NamespaceType(rawValue: name) else {
                    throw Decode.fail(Decode.join(path, key), "unknown namespace type \"\(name)\"")
                }
                type = t
            case "path":
                // "" means no path, as in runc
                nsPath = try Decode.optionalString(value, Decode.join(path, key)).flatMap { $0.isEmpty ? nil : $0 }
            default: break
            }
        }
        guard let type else { throw Decode.fail(Decode.join(path, "type"), "must be set") }
        self.init(type: type, path: nsPath)
    }
}

extension IDMapping {
    public init(json: JSON, path: String = "mapping") throws(OCIError) {
        self.init(containerID: 0, hostID: 0, size: 0)
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "containerID": containerID = try Decode.uint32(value, Decode.join(path, key))
            case "hostID": hostID = try Decode.uint32(value, Decode.join(path, key))
            case "size": size = try Decode.uint32(value, Decode.join(path, key))
            default: break
            }
        }
    }

    static func list(_ value: JSON, _ path: String) throws(OCIError) -> [IDMapping] {
        try Decode.array(value, path) { (v, p) throws(OCIError) in try IDMapping(json: v, path: p) }
    }
}

extension TimeOffset {
    public init(json: JSON, path: String = "timeOffset") throws(OCIError) {
        self.init()
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "secs": secs = value.isNull ? 0 : try Decode.int64(value, Decode.join(path, key))
            case "nanosecs": nanosecs = value.isNull ? 0 : try Decode.uint32(value, Decode.join(path, key))
            default: break
            }
        }
    }
}

extension Device {
    public init(json: JSON, path: String = "device") throws(OCIError) {
        self.init(type: "", path: "")
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "type": type = try Decode.optionalString(value, Decode.join(path, key)) ?? ""
            case "path": self.path = try Decode.optionalString(value, Decode.join(path, key)) ?? ""
            case "major": major = value.isNull ? 0 : try Decode.int64(value, Decode.join(path, key))
            case "minor": minor = value.isNull ? 0 : try Decode.int64(value, Decode.join(path, key))
            case "fileMode": fileMode = value.isNull ? nil : try Decode.uint32(value, Decode.join(path, key))
            case "uid": uid = value.isNull ? nil : try Decode.uint32(value, Decode.join(path, key))
            case "gid": gid = value.isNull ? nil : try Decode.uint32(value, Decode.join(path, key))
            default: break
            }
        }
    }
}

extension Linux {
    public init(json: JSON, path: String = "linux") throws(OCIError) {
        self.init()
        for (key, value) in try Decode.object(json, path) {
            switch key {
            case "namespaces":
                namespaces = try Decode.array(value, Decode.join(path, key)) { (v, p) throws(OCIError) in
                    try Namespace(json: v, path: p)
                }
            case "uidMappings": uidMappings = try IDMapping.list(value, Decode.join(path, key))
            case "gidMappings": gidMappings = try IDMapping.list(value, Decode.join(path, key))
            case "timeOffsets":
                let where_ = Decode.join(path, key)
                timeOffsets = []
                for field in try Decode.object(value, where_) {
                    let offset = try TimeOffset(json: field.value, path: where_ + "." + field.key)
                    if let k = timeOffsets.firstIndex(where: { $0.clock == field.key }) {
                        timeOffsets[k].offset = offset
                    } else {
                        timeOffsets.append((clock: field.key, offset: offset))
                    }
                }
            case "devices":
                devices = try Decode.array(value, Decode.join(path, key)) { (v, p) throws(OCIError) in
                    try Device(json: v, path: p)
                }
            case "cgroupsPath": cgroupsPath = try Decode.optionalString(value, Decode.join(path, key))
            case "resources":
                if !value.isNull {
                    guard case .object = value else { throw Decode.fail(Decode.join(path, key), "expected an object") }
                    resources = value
                }
            case "rootfsPropagation": rootfsPropagation = try Decode.optionalString(value, Decode.join(path, key))
            case "maskedPaths": maskedPaths = try Decode.strings(value, Decode.join(path, key))
            case "readonlyPaths": readonlyPaths = try Decode.strings(value, Decode.join(path, key))
            case "mountLabel": mountLabel = try Decode.optionalString(value, Decode.join(path, key))
            case "sysctl": sysctl = try Decode.stringMap(value, Decode.join(path, key))
            case "seccomp":
                if !value.isNull {
                    guard case .object = value else { throw Decode.fail(Decode.join(path, key), "expected an object") }
                    seccomp = value
                }
            default: break
            }
        }
    }
}
