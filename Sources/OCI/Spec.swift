// OCI runtime-spec types (config.json), as berth-runtime needs them.
// Decoding lives in Spec+Decode.swift, validation in Spec+Validate.swift; no Foundation here.

public struct Spec: Sendable, Equatable {
    public var ociVersion: String = "1.0.2"
    public var process: Process?
    public var root: Root?
    public var hostname: String?
    public var domainname: String?
    public var mounts: [Mount] = []
    public var hooks: Hooks?
    public var annotations: [(key: String, value: String)] = []
    public var linux: Linux?
    public init() {}
    public static func == (a: Spec, b: Spec) -> Bool {
        a.ociVersion == b.ociVersion && a.process == b.process && a.root == b.root && a.hostname == b.hostname
            && a.domainname == b.domainname && a.mounts == b.mounts && a.hooks == b.hooks
            && a.annotations.map(\.key) == b.annotations.map(\.key)
            && a.annotations.map(\.value) == b.annotations.map(\.value) && a.linux == b.linux
    }
}

public struct Process: Sendable, Equatable {
    public var terminal: Bool = false
    public var consoleSize: ConsoleSize?
    public var user: User = User()
    public var args: [String] = []
    public var commandLine: String?
    public var env: [String] = []
    public var cwd: String = "/"
    public var capabilities: Capabilities?
    public var rlimits: [Rlimit] = []
    public var noNewPrivileges: Bool = false
    public var apparmorProfile: String?
    public var oomScoreAdj: Int?
    public var selinuxLabel: String?
    public var ioPriority: IOPriority?
    public init() {}
}

public struct ConsoleSize: Sendable, Equatable { public var height: UInt32; public var width: UInt32
    public init(height: UInt32, width: UInt32) { self.height = height; self.width = width } }

public struct User: Sendable, Equatable {
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var umask: UInt32?
    public var additionalGids: [UInt32] = []
    public var username: String?
    public init() {}
}

public struct Capabilities: Sendable, Equatable {
    public var bounding: [String] = []
    public var effective: [String] = []
    public var inheritable: [String] = []
    public var permitted: [String] = []
    public var ambient: [String] = []
    public init() {}
}

public struct Rlimit: Sendable, Equatable {
    public var type: String   // "RLIMIT_NOFILE"
    public var soft: UInt64
    public var hard: UInt64
    public init(type: String, soft: UInt64, hard: UInt64) { self.type = type; self.soft = soft; self.hard = hard }
}

public struct IOPriority: Sendable, Equatable {
    public var ioClass: String   // IOPRIO_CLASS_RT | IOPRIO_CLASS_BE | IOPRIO_CLASS_IDLE
    public var priority: Int
    public init(ioClass: String, priority: Int) { self.ioClass = ioClass; self.priority = priority }
}

public struct Root: Sendable, Equatable {
    public var path: String
    public var readonly: Bool = false
    public init(path: String, readonly: Bool = false) { self.path = path; self.readonly = readonly }
}

public struct Mount: Sendable, Equatable {
    public var destination: String
    public var type: String?
    public var source: String?
    public var options: [String] = []
    public var uidMappings: [IDMapping] = []
    public var gidMappings: [IDMapping] = []
    public init(destination: String, type: String? = nil, source: String? = nil, options: [String] = []) {
        self.destination = destination; self.type = type; self.source = source; self.options = options
    }
}

public struct Hook: Sendable, Equatable {
    public var path: String
    public var args: [String] = []
    public var env: [String] = []
    public var timeout: Int?
    public init(path: String) { self.path = path }
}

public struct Hooks: Sendable, Equatable {
    public var prestart: [Hook] = []
    public var createRuntime: [Hook] = []
    public var createContainer: [Hook] = []
    public var startContainer: [Hook] = []
    public var poststart: [Hook] = []
    public var poststop: [Hook] = []
    public init() {}
}

public enum NamespaceType: String, Sendable, CaseIterable {
    case pid, network, mount, ipc, uts, user, cgroup, time
}

public struct Namespace: Sendable, Equatable {
    public var type: NamespaceType
    public var path: String?
    public init(type: NamespaceType, path: String? = nil) { self.type = type; self.path = path }
}

public struct IDMapping: Sendable, Equatable {
    public var containerID: UInt32
    public var hostID: UInt32
    public var size: UInt32
    public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
        self.containerID = containerID; self.hostID = hostID; self.size = size
    }
}

public struct TimeOffset: Sendable, Equatable {
    public var secs: Int64 = 0
    public var nanosecs: UInt32 = 0
    public init(secs: Int64 = 0, nanosecs: UInt32 = 0) { self.secs = secs; self.nanosecs = nanosecs }
}

public struct Device: Sendable, Equatable {
    public var type: String      // "c", "b", "u", "p"
    public var path: String
    public var major: Int64 = 0
    public var minor: Int64 = 0
    public var fileMode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public init(type: String, path: String) { self.type = type; self.path = path }
}

public struct Linux: Sendable, Equatable {
    public var namespaces: [Namespace] = []
    public var uidMappings: [IDMapping] = []
    public var gidMappings: [IDMapping] = []
    /// keyed by "monotonic" / "boottime"
    public var timeOffsets: [(clock: String, offset: TimeOffset)] = []
    public var devices: [Device] = []
    public var cgroupsPath: String?
    /// linux.resources kept as raw JSON; the cgroup limits issue decodes it.
    public var resources: JSON?
    public var rootfsPropagation: String?
    public var maskedPaths: [String] = []
    public var readonlyPaths: [String] = []
    public var mountLabel: String?
    public var sysctl: [(key: String, value: String)] = []
    /// linux.seccomp kept as raw JSON; the seccomp issue decodes it.
    public var seccomp: JSON?
    public init() {}
    public static func == (a: Linux, b: Linux) -> Bool {
        a.namespaces == b.namespaces && a.uidMappings == b.uidMappings && a.gidMappings == b.gidMappings
            && a.timeOffsets.map(\.clock) == b.timeOffsets.map(\.clock)
            && a.timeOffsets.map(\.offset) == b.timeOffsets.map(\.offset) && a.devices == b.devices
            && a.cgroupsPath == b.cgroupsPath && a.resources == b.resources
            && a.rootfsPropagation == b.rootfsPropagation && a.maskedPaths == b.maskedPaths
            && a.readonlyPaths == b.readonlyPaths && a.mountLabel == b.mountLabel
            && a.sysctl.map(\.key) == b.sysctl.map(\.key) && a.sysctl.map(\.value) == b.sysctl.map(\.value)
            && a.seccomp == b.seccomp
    }
}

/// runtime-spec state (runtime.md "State").
public struct State: Sendable, Equatable {
    public var ociVersion: String
    public var id: String
    public var status: String   // creating | created | running | stopped | paused
    public var pid: Int32?
    public var bundle: String
    public var annotations: [(key: String, value: String)]
    public init(ociVersion: String, id: String, status: String, pid: Int32?, bundle: String,
                annotations: [(key: String, value: String)]) {
        self.ociVersion = ociVersion; self.id = id; self.status = status; self.pid = pid
        self.bundle = bundle; self.annotations = annotations
    }
    public static func == (a: State, b: State) -> Bool {
        a.ociVersion == b.ociVersion && a.id == b.id && a.status == b.status && a.pid == b.pid
            && a.bundle == b.bundle && a.annotations.map(\.key) == b.annotations.map(\.key)
            && a.annotations.map(\.value) == b.annotations.map(\.value)
    }
}
