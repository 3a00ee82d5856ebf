import CEngine
import CLinux
import Foundation
import Glibc
import Images
import Logging
import OCI

public struct EngineOptions: Sendable {
    public var root = "/var/lib/berth"
    public var execRoot = "/run/berth"
    public var runtime = "berth-runtime"
    public var shim = "berth-shim"
    /// A static init for `--init` (Debian's tini-static), bind-mounted as /sbin/berth-init.
    public var initBinary: String? = "/usr/bin/tini-static"
    public var images = ImageService.Options()
    public var defaultLogMaxSize: Int64 = 0
    public var defaultLogMaxFiles = 1
    public init() {}
}

/// The engine: containers, their shims, metadata, restart policies and events. One actor; blocking work
/// (spawning shims, mounts, socket calls) runs on Dispatch threads, never inside the actor.
public actor Engine {
    public nonisolated let options: EngineOptions
    public nonisolated let images: ImageService
    let store: Store
    let log: Logger
    public nonisolated let events = EventBus()
    var containers: [String: ContainerRecord] = [:]
    var names: [String: String] = [:]
    var execs: [String: ExecRecord] = [:]
    /// Attach requests waiting for the container to start: fulfilled with a connected shim stream fd.
    var pendingAttach: [String: [PendingAttach]] = [:]
    var waiters: [String: [Waiter]] = [:]
    var restartTasks: [String: Task<Void, Never>] = [:]
    var starting: Set<String> = []
    /// Containers inside `launch`, and exits that arrived while they were.
    var launching: Set<String> = []
    var earlyExits: [String: (Int32, Date, Bool)] = [:]
    nonisolated let monitor: ExitMonitor

    struct PendingAttach {
        var request: String
        var cont: CheckedContinuation<Int32, any Error>
    }
    struct Waiter {
        enum Condition: String { case notRunning = "not-running", nextExit = "next-exit", removed }
        var condition: Condition
        var cont: CheckedContinuation<(Int32, String?), Never>
    }

    public init(options: EngineOptions, logger: Logger) throws(EngineError) {
        self.options = options
        self.log = logger
        for d in [options.root, options.root + "/containers", options.execRoot, options.execRoot + "/c",
                  options.execRoot + "/runtime", options.execRoot + "/netns"] {
            do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o711]) }
            catch { throw EngineError(.system, "create \(d): \(error.localizedDescription)") }
        }
        do { images = try ImageService(options.images) } catch { throw EngineError(error) }
        store = try Store(path: options.root + "/db.sqlite")
        monitor = try ExitMonitor()
        for r in try store.all() {
            containers[r.id] = r
            names[r.name] = r.id
        }
    }

    // MARK: paths

    nonisolated func bundle(_ id: String) -> String { options.root + "/containers/" + id }
    nonisolated func rootfs(_ id: String) -> String { bundle(id) + "/rootfs" }
    nonisolated func stateDir(_ id: String) -> String { options.execRoot + "/c/" + id.prefix(32) }
    nonisolated func netnsPath(_ id: String) -> String { options.execRoot + "/netns/" + id.prefix(32) }
    public nonisolated func logPath(_ id: String) -> String { bundle(id) + "/" + id + "-json.log" }
    nonisolated func shim(_ id: String) -> ShimClient { ShimClient(stateDir: stateDir(id)) }
    nonisolated static func cgroupsPath(_ id: String) -> String { "/berth/" + id }

    // MARK: lookup

    /// Full id, unique id prefix, or name (with or without the leading slash), as Docker resolves them.
    func resolve(_ ref: String) throws(EngineError) -> ContainerRecord {
        if let r = containers[ref] { return r }
        let name = ref.hasPrefix("/") ? String(ref.dropFirst()) : ref
        if let id = names[name], let r = containers[id] { return r }
        guard !ref.isEmpty, ref.allSatisfy(\.isHexDigit) else { throw EngineError.noSuchContainer(ref) }
        let matches = containers.keys.filter { $0.hasPrefix(ref) }
        if matches.count == 1, let r = containers[matches[0]] { return r }
        if matches.count > 1 { throw EngineError(.notFound, "multiple IDs found with provided prefix: \(ref)") }
        throw EngineError.noSuchContainer(ref)
    }

    public func inspect(_ ref: String) throws(EngineError) -> ContainerRecord { try resolve(ref) }

    public func list() -> [ContainerRecord] {
        containers.values.sorted { $0.created > $1.created }
    }

    func save(_ r: ContainerRecord) throws(EngineError) {
        containers[r.id] = r
        try store.update(r)
    }

    // MARK: create

    static let namePattern: @Sendable (String) -> Bool = { n in
        guard let f = n.utf8.first, isAlnum(f), n.utf8.count >= 2 else { return false }
        return n.utf8.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }
    static func isAlnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }

    public func create(name requested: String?, config: ContainerConfig, hostConfig: HostConfig,
                       platform: Platform? = nil) async throws(EngineError) -> ContainerRecord {
        var name = requested.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 } ?? ""
        if !name.isEmpty {
            guard Self.namePattern(name) else {
                throw EngineError(.invalidArgument, "Invalid container name (\(name)), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            }
            if let other = names[name] {
                throw EngineError(.conflict, "Conflict. The container name \"/\(name)\" is already in use by container "
                    + "\"\(other)\". You have to remove (or rename) that container to be able to reuse that name.")
            }
        }
        try validate(hostConfig)
        guard !config.image.isEmpty else { throw EngineError(.invalidArgument, "No image was specified") }
        let summary: ImageSummary
        do { summary = try images.inspect(config.image, platform: platform) } catch {
            if error.code == .notFound { throw EngineError(.notFound, "No such image: \(config.image)") }
            throw EngineError(error)
        }
        let ic = summary.config.config
        var id = ""
        repeat { id = Self.randomID() } while containers.keys.contains(where: { $0.hasPrefix(id.prefix(32)) })
        if name.isEmpty {
            repeat { name = NameGenerator.random() } while names[name] != nil
        }
        // Entrypoint and Cmd as Docker merges them: a given Entrypoint resets the image's Cmd.
        let entrypoint = config.entrypoint ?? ic?.Entrypoint ?? []
        let cmd = config.cmd ?? (config.entrypoint != nil ? [] : (ic?.Cmd ?? []))
        let argv = entrypoint + cmd
        guard let path = argv.first, !path.isEmpty else {
            throw EngineError(.invalidArgument, "No command specified")
        }
        var env = ic?.Env ?? []
        for kv in config.env {
            let k = kv.split(separator: "=", maxSplits: 1).first.map(String.init) ?? kv
            env.removeAll { $0 == k || $0.hasPrefix(k + "=") }
            if kv.contains("=") { env.append(kv) }
        }
        var cfg = config
        if cfg.workingDir.isEmpty { cfg.workingDir = ic?.WorkingDir ?? "" }
        if cfg.user.isEmpty { cfg.user = ic?.User ?? "" }
        if cfg.stopSignal == nil { cfg.stopSignal = ic?.StopSignal }
        cfg.labels = (ic?.Labels ?? [:]).merging(config.labels) { $1 }
        cfg.cmd = cmd
        cfg.entrypoint = entrypoint.isEmpty ? nil : entrypoint
        var hc = hostConfig
        if hc.networkMode.isEmpty || hc.networkMode == "bridge" { hc.networkMode = "default" }
        if hc.logMaxSize == 0 { hc.logMaxSize = options.defaultLogMaxSize; hc.logMaxFiles = options.defaultLogMaxFiles }
        let mounts: [Images.Mount]
        do { mounts = try images.prepareRootfs(key: id, image: config.image, platform: platform) } catch { throw EngineError(error) }
        let record = ContainerRecord(
            id: id, name: name, created: Date(), config: cfg, hostConfig: hc, state: ContainerState(),
            imageID: summary.id.description, imageRef: config.image, path: path, args: Array(argv.dropFirst()),
            resolvedEnv: env, mounts: mounts, chainID: summary.chainID?.description)
        let b = bundle(id)
        do {
            guard mkdir(b, 0o710) == 0, mkdir(b + "/rootfs", 0o755) == 0 else { throw EngineError.system("create \(b)") }
            try store.insert(record)
        } catch {
            try? images.snapshots.remove(key: id)
            _ = try? FileManager.default.removeItem(atPath: b)
            throw EngineError.wrap(error)
        }
        containers[id] = record
        names[name] = id
        events.emit("container", "create", id: id, ["name": name, "image": config.image])
        return record
    }

    func validate(_ h: HostConfig) throws(EngineError) {
        if h.memory != 0 && h.memory < 6 * 1024 * 1024 {
            throw EngineError(.invalidArgument, "Minimum memory limit allowed is 6MB")
        }
        if h.nanoCpus < 0 || h.cpuShares < 0 { throw EngineError(.invalidArgument, "invalid CPU setting: must not be negative") }
        let cores = Int64(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if h.nanoCpus > cores * 1_000_000_000 {
            throw EngineError(.invalidArgument, "Range of CPUs is from 0.01 to \(cores).00, as there are only \(cores) CPUs available")
        }
        if h.autoRemove && h.restartPolicy.name != .no {
            throw EngineError(.invalidArgument, "can't create 'AutoRemove' container with restart policy")
        }
        switch h.networkMode {
        case "", "default", "bridge", "none", "host": break
        default: throw EngineError(.notFound, "network \(h.networkMode) not found")
        }
        for b in h.binds { _ = try SpecBuilder.parseBind(b) }
        _ = try SpecBuilder.capabilities(add: h.capAdd, drop: h.capDrop, privileged: false)
    }

    static func randomID() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        _ = bytes.withUnsafeMutableBytes { getrandom($0.baseAddress, 32, 0) }
        return bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    // MARK: rename

    public func rename(_ ref: String, to newName: String) throws(EngineError) {
        var r = try resolve(ref)
        let n = newName.hasPrefix("/") ? String(newName.dropFirst()) : newName
        guard Self.namePattern(n) else {
            throw EngineError(.invalidArgument, "Invalid container name (\(n)), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        }
        if n == r.name { throw EngineError(.invalidArgument, "Renaming a container with the same name as its current name") }
        if let other = names[n] {
            throw EngineError(.conflict, "Error when allocating new name: Conflict. The container name \"/\(n)\" is already in use by container \"\(other)\". You have to remove (or rename) that container to be able to reuse that name.")
        }
        let old = r.name
        r.name = n
        try save(r)
        names[old] = nil
        names[n] = r.id
        events.emit("container", "rename", id: r.id, ["name": n, "oldName": "/" + old])
    }

    /// Chain ids of images that containers use (for rmi's in-use check).
    public func imagesInUse() -> Set<Digest> {
        Set(containers.values.compactMap { $0.chainID.flatMap { try? Digest(parsing: $0) } })
    }
    public func containersUsing(imageID: String) -> [String] {
        containers.values.filter { $0.imageID == imageID }.map(\.id)
    }
}

enum NameGenerator {
    static let left = ["admiring", "brave", "calm", "clever", "eager", "focused", "gallant", "happy", "jolly", "keen",
                       "lucid", "modest", "nifty", "quirky", "serene", "stoic", "trusting", "upbeat", "vibrant", "zen"]
    static let right = ["albattani", "babbage", "curie", "darwin", "euclid", "fermat", "galileo", "hopper", "hypatia",
                        "kepler", "lovelace", "meitner", "newton", "noether", "pascal", "ritchie", "shannon", "thompson",
                        "turing", "wozniak"]
    static func random() -> String {
        left[Int.random(in: 0..<left.count)] + "_" + right[Int.random(in: 0..<right.count)] + (Int.random(in: 0..<4) == 0 ? "\(Int.random(in: 1...9))" : "")
    }
}
