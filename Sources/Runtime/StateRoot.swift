// The state directory: --root/<id>/{state.json, config.json, exec.fifo}; every write atomic.
#if canImport(Glibc)
import Glibc
#endif
import LinuxContainer
import OCI

public struct ContainerRecord: Sendable {
    public var id: String
    public var bundle: String
    public var rootfs: String
    public var pid: Int32
    public var startTime: UInt64
    public var created: String
    public var owner: String
    /// the last status written; the live status is derived (Container.status)
    public var status: Status
    public var cgroup: Cgroup?
    public var annotations: [(key: String, value: String)]

    func json() -> JSON {
        var o: [(key: String, value: JSON)] = [
            ("id", .string(id)), ("bundle", .string(bundle)), ("rootfs", .string(rootfs)),
            ("pid", .number(String(pid))), ("startTime", .number(String(startTime))),
            ("created", .string(created)), ("owner", .string(owner)), ("status", .string(status.rawValue)),
            ("annotations", .object(annotations.map { ($0.key, JSON.string($0.value)) })),
        ]
        if let cg = cgroup {
            o.append(("cgroup", .object([
                ("mode", .string(cg.mode.rawValue)),
                ("paths", .array(cg.paths.map { .object([("name", .string($0.name)), ("dir", .string($0.dir))]) })),
            ])))
        }
        return .object(o)
    }

    init(id: String, bundle: String, rootfs: String, created: String, annotations: [(key: String, value: String)]) {
        self.id = id
        self.bundle = bundle
        self.rootfs = rootfs
        self.pid = 0
        self.startTime = 0
        self.created = created
        self.owner = ""
        self.status = .creating
        self.cgroup = nil
        self.annotations = annotations
    }

    init(json j: JSON) throws(RuntimeError) {
        func str(_ k: String) throws(RuntimeError) -> String {
            guard let v = j[k]?.stringValue else { throw RuntimeError(.system, "state.json: missing \(k)") }
            return v
        }
        id = try str("id")
        bundle = try str("bundle")
        rootfs = try str("rootfs")
        created = try str("created")
        owner = j["owner"]?.stringValue ?? ""
        pid = j["pid"]?.int32Value ?? 0
        startTime = j["startTime"]?.uint64Value ?? 0
        guard let s = Status(rawValue: try str("status")) else { throw RuntimeError(.system, "state.json: bad status") }
        status = s
        annotations = (j["annotations"]?.objectValue ?? []).compactMap { kv in kv.value.stringValue.map { (kv.key, $0) } }
        if let cg = j["cgroup"], let mode = cg["mode"]?.stringValue.flatMap(Cgroup.Mode.init(rawValue:)) {
            let paths = (cg["paths"]?.arrayValue ?? []).compactMap { p -> (name: String, dir: String)? in
                guard let n = p["name"]?.stringValue, let d = p["dir"]?.stringValue else { return nil }
                return (n, d)
            }
            cgroup = Cgroup(mode: mode, paths: paths)
        } else {
            cgroup = nil
        }
    }

    public var process: ProcessRef? { pid > 0 ? ProcessRef(pid: pid, startTime: startTime) : nil }
}

public struct StateRoot: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    func dir(_ id: String) -> String { path + "/" + id }

    func ensure() throws(RuntimeError) {
        do { try FS.mkdirAll(path, mode: 0o711) } catch { throw RuntimeError(.system, "create state root \(path): \(error.message)") }
    }

    /// Creates <root>/<id>; fails when it exists.
    func createDir(_ id: String) throws(RuntimeError) {
        try ensure()
        if mkdir(dir(id), 0o711) != 0 {
            let e = errno
            if e == EEXIST { throw RuntimeError(.alreadyExists, "container with id exists: \(id)") }
            throw RuntimeError(.system, "create state directory \(dir(id)): \(errnoString(e))")
        }
    }

    func save(_ r: ContainerRecord) throws(RuntimeError) {
        try linux { () throws(LinuxError) in try FS.writeAtomically(r.json().serializedBytes(), to: dir(r.id) + "/state.json", mode: 0o600) }
    }

    func load(_ id: String) throws(RuntimeError) -> ContainerRecord {
        do { try OCI.Spec.validateContainerID(id) } catch { throw RuntimeError.notExist(id) }
        let bytes: [UInt8]
        do { bytes = try FS.readFile(dir(id) + "/state.json") } catch {
            if error.code == .notFound { throw RuntimeError.notExist(id) }
            throw RuntimeError(error)
        }
        let j: JSON
        do { j = try JSON.parse(bytes) } catch { throw RuntimeError(.system, "state of \(id) is corrupt: \(error.message)") }
        return try ContainerRecord(json: j)
    }

    func config(_ id: String) throws(RuntimeError) -> Spec {
        let bytes = try linux { () throws(LinuxError) in try FS.readFile(dir(id) + "/config.json") }
        do { return try Spec.parse(bytes) } catch { throw RuntimeError(error) }
    }

    func ids() -> [String] {
        ((try? FS.list(path)) ?? []).filter { FS.exists(path + "/" + $0 + "/state.json") }.sorted()
    }

    func remove(_ id: String) throws(RuntimeError) {
        try linux { () throws(LinuxError) in try FS.removeTree(dir(id)) }
    }

    /// An exclusive lock on one container's state (flock on its directory).
    func lock(_ id: String) throws(RuntimeError) -> OwnedFD {
        let fd = open(dir(id), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { throw RuntimeError.notExist(id) }
            throw RuntimeError(.system, "lock \(dir(id)): \(errnoString(errno))")
        }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR {
                let e = errno
                close(fd)
                throw RuntimeError(.system, "lock \(dir(id)): \(errnoString(e))")
            }
        }
        return OwnedFD(taking: fd)
    }
}
