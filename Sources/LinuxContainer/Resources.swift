// linux.resources (config-linux.md "Control groups") decoded into plain values; every error names
// the field. A field left out stays nil (or empty) and is never written (update writes only what it got).
import OCI

public struct Resources: Sendable, Equatable {
    public struct Memory: Sendable, Equatable {
        public var limit: Int64?
        public var reservation: Int64?
        /// memory+swap, as in the spec and runc (-1: unlimited)
        public var swap: Int64?
        /// ignored (the kernel dropped kmem limits); kept so that we can warn
        public var kernel: Int64?
        public var kernelTCP: Int64?
        public var swappiness: UInt64?
        public var disableOOMKiller: Bool?
        public var useHierarchy: Bool?
        public init() {}
        public var isEmpty: Bool { self == Memory() }
    }

    public struct CPU: Sendable, Equatable {
        public var shares: UInt64?
        public var quota: Int64?
        public var burst: UInt64?
        public var period: UInt64?
        public var realtimeRuntime: Int64?
        public var realtimePeriod: UInt64?
        public var cpus: String?
        public var mems: String?
        public var idle: Int64?
        public init() {}
        public var isEmpty: Bool { self == CPU() }
    }

    public struct WeightDevice: Sendable, Equatable {
        public var major: Int64, minor: Int64
        public var weight: UInt16?, leafWeight: UInt16?
    }

    public struct ThrottleDevice: Sendable, Equatable {
        public var major: Int64, minor: Int64
        public var rate: UInt64
    }

    public struct BlockIO: Sendable, Equatable {
        public var weight: UInt16?
        public var leafWeight: UInt16?
        public var weightDevice: [WeightDevice] = []
        public var throttleReadBps: [ThrottleDevice] = []
        public var throttleWriteBps: [ThrottleDevice] = []
        public var throttleReadIOPS: [ThrottleDevice] = []
        public var throttleWriteIOPS: [ThrottleDevice] = []
        public init() {}
        public var isEmpty: Bool { self == BlockIO() }
    }

    public struct HugepageLimit: Sendable, Equatable {
        public var pageSize: String
        public var limit: UInt64
    }

    /// One rule of the device allow/deny list; nil major/minor is the wildcard.
    public struct DeviceRule: Sendable, Equatable {
        public var allow: Bool
        /// "a", "c" or "b"
        public var type: String
        public var major: Int64?
        public var minor: Int64?
        public var access: String

        public init(allow: Bool, type: String, major: Int64?, minor: Int64?, access: String) {
            self.allow = allow
            self.type = type
            self.major = major
            self.minor = minor
            self.access = access
        }

        /// "c 1:3 rwm" (v1's devices.allow/devices.deny syntax)
        public var v1Text: String {
            if type == "a" && major == nil && minor == nil { return "a" }
            return "\(type) \(major.map(String.init) ?? "*"):\(minor.map(String.init) ?? "*") \(access)"
        }

        public var isAllDevices: Bool { type == "a" && major == nil && minor == nil }
    }

    public struct Network: Sendable, Equatable {
        public var classID: UInt32?
        public var priorities: [(name: String, priority: UInt32)] = []
        public init() {}
        public var isEmpty: Bool { classID == nil && priorities.isEmpty }
        public static func == (a: Network, b: Network) -> Bool {
            a.classID == b.classID && a.priorities.map(\.name) == b.priorities.map(\.name)
                && a.priorities.map(\.priority) == b.priorities.map(\.priority)
        }
    }

    public var memory = Memory()
    public var cpu = CPU()
    public var pidsLimit: Int64?
    public var blockIO = BlockIO()
    public var hugepageLimits: [HugepageLimit] = []
    public var devices: [DeviceRule] = []
    public var network = Network()
    public var unified: [(key: String, value: String)] = []

    public init() {}

    public static func == (a: Resources, b: Resources) -> Bool {
        a.memory == b.memory && a.cpu == b.cpu && a.pidsLimit == b.pidsLimit && a.blockIO == b.blockIO
            && a.hugepageLimits == b.hugepageLimits && a.devices == b.devices && a.network == b.network
            && a.unified.map(\.key) == b.unified.map(\.key) && a.unified.map(\.value) == b.unified.map(\.value)
    }

    /// Nothing that needs a cgroup file written.
    public var isEmpty: Bool { self == Resources() }

    /// Only device rules (the part a rootless container may go without, as runc does).
    public var onlyDevices: Bool {
        var r = self
        r.devices = []
        return r.isEmpty
    }

    /// Decodes `json` (an object or null); `field` names it in errors ("linux.resources").
    public init(json: JSON?, field: String = "linux.resources") throws(LinuxError) {
        guard let json, !json.isNull else { return }
        let d = FieldDecoder(prefix: field)
        let top = try d.object(json, field)
        for (key, value) in top where !value.isNull {
            let f = field + "." + key
            switch key {
            case "memory":
                for (k, v) in try d.object(value, f) where !v.isNull {
                    let p = f + "." + k
                    switch k {
                    case "limit": memory.limit = try d.int64(v, p)
                    case "reservation": memory.reservation = try d.int64(v, p)
                    case "swap": memory.swap = try d.int64(v, p)
                    case "kernel": memory.kernel = try d.int64(v, p)
                    case "kernelTCP": memory.kernelTCP = try d.int64(v, p)
                    case "swappiness": memory.swappiness = try d.uint64(v, p)
                    case "disableOOMKiller": memory.disableOOMKiller = try d.bool(v, p)
                    case "useHierarchy": memory.useHierarchy = try d.bool(v, p)
                    case "checkBeforeUpdate": _ = try d.bool(v, p)
                    default: break
                    }
                }
            case "cpu":
                for (k, v) in try d.object(value, f) where !v.isNull {
                    let p = f + "." + k
                    switch k {
                    case "shares": cpu.shares = try d.uint64(v, p)
                    case "quota": cpu.quota = try d.int64(v, p)
                    case "burst": cpu.burst = try d.uint64(v, p)
                    case "period": cpu.period = try d.uint64(v, p)
                    case "realtimeRuntime": cpu.realtimeRuntime = try d.int64(v, p)
                    case "realtimePeriod": cpu.realtimePeriod = try d.uint64(v, p)
                    case "cpus": cpu.cpus = try d.string(v, p)
                    case "mems": cpu.mems = try d.string(v, p)
                    case "idle": cpu.idle = try d.int64(v, p)
                    default: break
                    }
                }
            case "pids":
                let o = try d.object(value, f)
                guard let l = o.last(where: { $0.key == "limit" })?.value, !l.isNull else {
                    throw LinuxError(.invalidArgument, "\(f).limit: required")
                }
                pidsLimit = try d.int64(l, f + ".limit")
            case "blockIO":
                for (k, v) in try d.object(value, f) where !v.isNull {
                    let p = f + "." + k
                    switch k {
                    case "weight": blockIO.weight = try d.uint16(v, p)
                    case "leafWeight": blockIO.leafWeight = try d.uint16(v, p)
                    case "weightDevice":
                        blockIO.weightDevice = try d.array(v, p).enumerated().map { (i, e) throws(LinuxError) in
                            let q = "\(p)[\(i)]"
                            let (major, minor) = try d.majorMinor(e, q)
                            return WeightDevice(major: major, minor: minor,
                                                weight: try e["weight"].flatMap { $0.isNull ? nil : $0 }.map { (x) throws(LinuxError) in try d.uint16(x, q + ".weight") },
                                                leafWeight: try e["leafWeight"].flatMap { $0.isNull ? nil : $0 }.map { (x) throws(LinuxError) in try d.uint16(x, q + ".leafWeight") })
                        }
                    case "throttleReadBpsDevice": blockIO.throttleReadBps = try d.throttle(v, p)
                    case "throttleWriteBpsDevice": blockIO.throttleWriteBps = try d.throttle(v, p)
                    case "throttleReadIOPSDevice": blockIO.throttleReadIOPS = try d.throttle(v, p)
                    case "throttleWriteIOPSDevice": blockIO.throttleWriteIOPS = try d.throttle(v, p)
                    default: break
                    }
                }
            case "hugepageLimits":
                hugepageLimits = try d.array(value, f).enumerated().map { (i, e) throws(LinuxError) in
                    let q = "\(f)[\(i)]"
                    guard let ps = e["pageSize"], !ps.isNull else { throw LinuxError(.invalidArgument, "\(q).pageSize: required") }
                    let size = try d.string(ps, q + ".pageSize")
                    guard !size.isEmpty, !size.contains("/") else { throw LinuxError(.invalidArgument, "\(q).pageSize: invalid \"\(size)\"") }
                    guard let l = e["limit"], !l.isNull else { throw LinuxError(.invalidArgument, "\(q).limit: required") }
                    return HugepageLimit(pageSize: size, limit: try d.uint64(l, q + ".limit"))
                }
            case "devices":
                devices = try d.array(value, f).enumerated().map { (i, e) throws(LinuxError) in
                    let q = "\(f)[\(i)]"
                    _ = try d.object(e, q)
                    guard let a = e["allow"], !a.isNull else { throw LinuxError(.invalidArgument, "\(q).allow: required") }
                    let allow = try d.bool(a, q + ".allow")
                    var type = "a"
                    if let t = e["type"], !t.isNull { type = try d.string(t, q + ".type") }
                    guard ["a", "c", "b"].contains(type) else {
                        throw LinuxError(.invalidArgument, "\(q).type: \"\(type)\" is not one of a, c, b")
                    }
                    func optNum(_ k: String) throws(LinuxError) -> Int64? {
                        guard let v = e[k], !v.isNull else { return nil }
                        let n = try d.int64(v, q + "." + k)
                        return n < 0 ? nil : n  // runc: -1 is the wildcard
                    }
                    var access = "rwm"
                    if let acc = e["access"], !acc.isNull { access = try d.string(acc, q + ".access") }
                    if access.isEmpty { access = "rwm" }
                    guard access.allSatisfy({ "rwm".contains($0) }), Set(access).count == access.count else {
                        throw LinuxError(.invalidArgument, "\(q).access: \"\(access)\" is not a combination of r, w, m")
                    }
                    return DeviceRule(allow: allow, type: type, major: try optNum("major"), minor: try optNum("minor"), access: access)
                }
            case "network":
                for (k, v) in try d.object(value, f) where !v.isNull {
                    let p = f + "." + k
                    switch k {
                    case "classID": network.classID = try d.uint32(v, p)
                    case "priorities":
                        network.priorities = try d.array(v, p).enumerated().map { (i, e) throws(LinuxError) in
                            let q = "\(p)[\(i)]"
                            guard let n = e["name"], !n.isNull else { throw LinuxError(.invalidArgument, "\(q).name: required") }
                            guard let pr = e["priority"], !pr.isNull else { throw LinuxError(.invalidArgument, "\(q).priority: required") }
                            return (name: try d.string(n, q + ".name"), priority: try d.uint32(pr, q + ".priority"))
                        }
                    default: break
                    }
                }
            case "unified":
                for (k, v) in try d.object(value, f) {
                    let p = f + "." + k
                    guard !k.isEmpty, !k.contains("/"), k != ".", k != ".." else {
                        throw LinuxError(.invalidArgument, "\(f): invalid key \"\(k)\" (a file name in the cgroup directory)")
                    }
                    unified.append((key: k, value: try d.string(v, p)))
                }
            case "rdma":
                if let o = value.objectValue, !o.isEmpty {
                    throw LinuxError(.unsupported, "\(f): rdma limits are not supported by berth-runtime")
                }
            default: break
            }
        }
        try validate(field: field)
    }

    /// Checks ranges the kernel would refuse with a less helpful message.
    func validate(field: String) throws(LinuxError) {
        if let s = memory.swappiness, s > 100, s != UInt64.max {
            throw LinuxError(.invalidArgument, "\(field).memory.swappiness: \(s) is out of range 0..100")
        }
        if let w = blockIO.weight, w != 0, !(10...1000).contains(w) {
            throw LinuxError(.invalidArgument, "\(field).blockIO.weight: \(w) is out of range 10..1000")
        }
        if let w = blockIO.leafWeight, w != 0, !(10...1000).contains(w) {
            throw LinuxError(.invalidArgument, "\(field).blockIO.leafWeight: \(w) is out of range 10..1000")
        }
        if let l = memory.limit, let s = memory.swap, l > 0, s > 0, s < l {
            throw LinuxError(.invalidArgument, "\(field).memory.swap: \(s) is below memory.limit \(l) (swap is memory+swap)")
        }
        if let i = cpu.idle, i != 0 && i != 1 {
            throw LinuxError(.invalidArgument, "\(field).cpu.idle: \(i) is not 0 or 1")
        }
    }

    /// Fields set in `other` replace ours (update merges onto what the container had).
    public mutating func merge(_ o: Resources) {
        func m<T>(_ a: inout T?, _ b: T?) { if let b { a = b } }
        m(&memory.limit, o.memory.limit); m(&memory.reservation, o.memory.reservation); m(&memory.swap, o.memory.swap)
        m(&memory.kernel, o.memory.kernel); m(&memory.kernelTCP, o.memory.kernelTCP); m(&memory.swappiness, o.memory.swappiness)
        m(&memory.disableOOMKiller, o.memory.disableOOMKiller); m(&memory.useHierarchy, o.memory.useHierarchy)
        m(&cpu.shares, o.cpu.shares); m(&cpu.quota, o.cpu.quota); m(&cpu.burst, o.cpu.burst); m(&cpu.period, o.cpu.period)
        m(&cpu.realtimeRuntime, o.cpu.realtimeRuntime); m(&cpu.realtimePeriod, o.cpu.realtimePeriod)
        m(&cpu.cpus, o.cpu.cpus); m(&cpu.mems, o.cpu.mems); m(&cpu.idle, o.cpu.idle)
        m(&pidsLimit, o.pidsLimit)
        m(&blockIO.weight, o.blockIO.weight); m(&blockIO.leafWeight, o.blockIO.leafWeight)
        if !o.blockIO.weightDevice.isEmpty { blockIO.weightDevice = o.blockIO.weightDevice }
        if !o.blockIO.throttleReadBps.isEmpty { blockIO.throttleReadBps = o.blockIO.throttleReadBps }
        if !o.blockIO.throttleWriteBps.isEmpty { blockIO.throttleWriteBps = o.blockIO.throttleWriteBps }
        if !o.blockIO.throttleReadIOPS.isEmpty { blockIO.throttleReadIOPS = o.blockIO.throttleReadIOPS }
        if !o.blockIO.throttleWriteIOPS.isEmpty { blockIO.throttleWriteIOPS = o.blockIO.throttleWriteIOPS }
        if !o.hugepageLimits.isEmpty { hugepageLimits = o.hugepageLimits }
        if !o.devices.isEmpty { devices = o.devices }
        m(&network.classID, o.network.classID)
        if !o.network.priorities.isEmpty { network.priorities = o.network.priorities }
        for kv in o.unified {
            if let i = unified.firstIndex(where: { $0.key == kv.key }) { unified[i].value = kv.value } else { unified.append(kv) }
        }
    }
}

/// Typed reads of JSON values with "field: expected ..." errors.
struct FieldDecoder {
    let prefix: String

    func fail(_ field: String, _ why: String) -> LinuxError { LinuxError(.invalidArgument, "\(field): \(why)") }

    func object(_ v: JSON, _ f: String) throws(LinuxError) -> [(key: String, value: JSON)] {
        guard let o = v.objectValue else { throw fail(f, "expected an object") }
        // the last of a repeated key wins
        var out: [(key: String, value: JSON)] = []
        for kv in o {
            if let i = out.firstIndex(where: { $0.key == kv.key }) { out[i].value = kv.value } else { out.append(kv) }
        }
        return out
    }

    func array(_ v: JSON, _ f: String) throws(LinuxError) -> [JSON] {
        guard let a = v.arrayValue else { throw fail(f, "expected an array") }
        return a
    }

    func string(_ v: JSON, _ f: String) throws(LinuxError) -> String {
        guard let s = v.stringValue else { throw fail(f, "expected a string") }
        return s
    }

    func bool(_ v: JSON, _ f: String) throws(LinuxError) -> Bool {
        guard let b = v.boolValue else { throw fail(f, "expected true or false") }
        return b
    }

    func int64(_ v: JSON, _ f: String) throws(LinuxError) -> Int64 {
        guard let n = v.int64Value else { throw fail(f, v.numberText.map { "\($0) is not a 64-bit integer" } ?? "expected an integer") }
        return n
    }

    func uint64(_ v: JSON, _ f: String) throws(LinuxError) -> UInt64 {
        // runc's Go types accept -1 in a few uint64 fields (swappiness): read it as "unset"
        if let n = v.int64Value, n == -1 { return UInt64.max }
        guard let n = v.uint64Value else { throw fail(f, v.numberText.map { "\($0) is not an unsigned 64-bit integer" } ?? "expected an integer") }
        return n
    }

    func uint32(_ v: JSON, _ f: String) throws(LinuxError) -> UInt32 {
        guard let n = v.uint32Value else { throw fail(f, v.numberText.map { "\($0) is not an unsigned 32-bit integer" } ?? "expected an integer") }
        return n
    }

    func uint16(_ v: JSON, _ f: String) throws(LinuxError) -> UInt16 {
        guard let n = v.uint64Value.flatMap({ UInt16(exactly: $0) }) else {
            throw fail(f, v.numberText.map { "\($0) is not an unsigned 16-bit integer" } ?? "expected an integer")
        }
        return n
    }

    func majorMinor(_ e: JSON, _ q: String) throws(LinuxError) -> (Int64, Int64) {
        _ = try object(e, q)
        guard let ma = e["major"], !ma.isNull else { throw fail(q + ".major", "required") }
        guard let mi = e["minor"], !mi.isNull else { throw fail(q + ".minor", "required") }
        return (try int64(ma, q + ".major"), try int64(mi, q + ".minor"))
    }

    func throttle(_ v: JSON, _ p: String) throws(LinuxError) -> [Resources.ThrottleDevice] {
        try array(v, p).enumerated().map { (i, e) throws(LinuxError) in
            let q = "\(p)[\(i)]"
            let (major, minor) = try majorMinor(e, q)
            guard let r = e["rate"], !r.isNull else { throw fail(q + ".rate", "required") }
            return Resources.ThrottleDevice(major: major, minor: minor, rate: try uint64(r, q + ".rate"))
        }
    }
}
