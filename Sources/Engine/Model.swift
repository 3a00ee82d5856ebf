import Foundation
import Images

/// What a container runs, as the create call gave it (Docker's Config, in our names).
public struct ContainerConfig: Codable, Sendable, Equatable {
    public var image: String = ""
    public var cmd: [String]?
    public var entrypoint: [String]?
    public var env: [String] = []
    public var workingDir: String = ""
    public var user: String = ""
    public var labels: [String: String] = [:]
    public var hostname: String = ""
    public var domainname: String = ""
    public var tty = false
    public var openStdin = false
    public var stdinOnce = false
    public var attachStdin = false
    public var attachStdout = false
    public var attachStderr = false
    public var stopSignal: String?
    public var stopTimeout: Int?
    public var exposedPorts: [String] = []
    public var volumes: [String] = []
    public init() {}
}

public struct RestartPolicy: Codable, Sendable, Equatable {
    public enum Name: String, Codable, Sendable { case no, always, onFailure = "on-failure", unlessStopped = "unless-stopped" }
    public var name: Name = .no
    public var maximumRetryCount = 0
    public init(name: Name = .no, maximumRetryCount: Int = 0) { self.name = name; self.maximumRetryCount = maximumRetryCount }

    /// Docker's `--restart` syntax: no, always, unless-stopped, on-failure[:N].
    public init(parsing s: String, maximumRetryCount n: Int = 0) throws(EngineError) {
        let parts = s.split(separator: ":", maxSplits: 1).map(String.init)
        guard let first = parts.first ?? Optional(""), let name = first.isEmpty ? Name.no : Name(rawValue: first) else {
            throw EngineError(.invalidArgument, "invalid restart policy '\(s)'")
        }
        self.name = name
        self.maximumRetryCount = n
        if parts.count == 2 {
            guard name == .onFailure, let v = Int(parts[1]), v >= 0 else {
                throw EngineError(.invalidArgument, "invalid restart policy '\(s)': maximum retry count only with on-failure")
            }
            self.maximumRetryCount = v
        }
        if name != .onFailure && maximumRetryCount != 0 {
            throw EngineError(.invalidArgument, "maximum retry count cannot be used with restart policy '\(name.rawValue)'")
        }
    }
}

public struct BindMount: Codable, Sendable, Equatable {
    public var source: String
    public var destination: String
    public var readOnly: Bool
    public var options: [String]
}

/// How the host runs it (Docker's HostConfig, the part berth honours).
public struct HostConfig: Codable, Sendable, Equatable {
    public var binds: [String] = []
    public var tmpfs: [String: String] = [:]
    public var memory: Int64 = 0
    public var memorySwap: Int64 = 0
    public var nanoCpus: Int64 = 0
    public var cpuShares: Int64 = 0
    public var cpuQuota: Int64 = 0
    public var cpuPeriod: Int64 = 0
    public var pidsLimit: Int64 = 0
    public var capAdd: [String] = []
    public var capDrop: [String] = []
    public var privileged = false
    public var readonlyRootfs = false
    public var autoRemove = false
    public var restartPolicy = RestartPolicy()
    public var initProcess = false
    public var networkMode = "default"
    public var shmSize: Int64 = 0
    public var logMaxSize: Int64 = 0
    public var logMaxFiles: Int = 1
    public var extraHosts: [String] = []
    public var dns: [String] = []
    public init() {}
}

/// The lifecycle: explicit states, persisted; transitions live on `Container`.
public enum ContainerStatus: String, Codable, Sendable {
    case created, running, paused, restarting, removing, exited, dead
}

public struct ContainerState: Codable, Sendable, Equatable {
    public var status: ContainerStatus = .created
    public var pid: Int32 = 0
    public var exitCode: Int32 = 0
    public var error: String = ""
    public var startedAt: Date?
    public var finishedAt: Date?
    public var restartCount = 0
    public var oomKilled = false
    /// Set by an explicit stop/kill from the user: `unless-stopped` and `always` do not restart then.
    public var stoppedByUser = false
    public var running: Bool { status == .running || status == .paused }
}

/// One container as the store keeps it.
public struct ContainerRecord: Codable, Sendable {
    public var id: String
    public var name: String
    public var created: Date
    public var config: ContainerConfig
    public var hostConfig: HostConfig
    public var state: ContainerState
    /// The image's id (config digest) and the name it was created from.
    public var imageID: String
    public var imageRef: String
    /// The process that runs: path + args (entrypoint and cmd resolved against the image).
    public var path: String
    public var args: [String]
    /// The image config's env, workdir, user etc. as they were merged at create time.
    public var resolvedEnv: [String]
    public var mounts: [Images.Mount]
    public var chainID: String?
    public var shortID: String { String(id.prefix(12)) }
}

/// One exec instance (memory only, as in Docker).
public struct ExecConfig: Sendable {
    public var cmd: [String]
    public var env: [String] = []
    public var user: String = ""
    public var workingDir: String = ""
    public var tty = false
    public var attachStdin = false
    public var attachStdout = true
    public var attachStderr = true
    public var privileged = false
    public var detachKeys: String?
    public init(cmd: [String]) { self.cmd = cmd }
}

public struct ExecRecord: Sendable {
    public var id: String
    public var containerID: String
    public var config: ExecConfig
    public var running = false
    public var exitCode: Int32?
    public var pid: Int32 = 0
    public var started = false
}

/// An event for /events (Docker's shape: Type, Action, Actor{ID, Attributes}, time).
public struct EngineEvent: Sendable {
    public var type: String
    public var action: String
    public var id: String
    public var attributes: [String: String]
    public var time: Date
}
