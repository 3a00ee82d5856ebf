import Engine
import Foundation
import Glibc
import Images
import Logging
import NIOCore
import NIOPosix
import OCI

/// Maps Docker API paths to engine calls.
final class Router: Sendable {
    static let berthVersion = "0.6.0"
    let engine: Engine
    let group: MultiThreadedEventLoopGroup
    let log: Logger
    let started = Date()
    let metrics: Metrics?

    init(engine: Engine, group: MultiThreadedEventLoopGroup, log: Logger, metrics: Metrics?) {
        self.engine = engine
        self.group = group
        self.log = log
        self.metrics = metrics
    }

    func handle(_ req: Request, _ res: Responder) async {
        let t0 = ContinuousClock.now
        await handleRequest(req, res)
        metrics?.observe(method: req.method.rawValue, status: res.connection.lastStatus, elapsed: ContinuousClock.now - t0)
    }

    func handleRequest(_ req: Request, _ res: Responder) async {
        if let v = req.version {
            if Self.compare(v, APIServer.minVersion) < 0 {
                await res.error(APIError(400, "client version \(v) is too old. Minimum supported API version is \(APIServer.minVersion), please upgrade your client to a newer version"))
                return
            }
            if Self.compare(v, APIServer.maxVersion) > 0 {
                await res.error(APIError(400, "client version \(v) is too new. Maximum supported API version is \(APIServer.maxVersion)"))
                return
            }
        }
        do {
            try await route(req, res)
        } catch {
            let e = APIError.from(error)
            if e.status >= 500 { log.error("\(req.method) \(req.path): \(e.message)") }
            if !res.connection.hijacked { await res.error(e) }
        }
    }

    static func compare(_ a: String, _ b: String) -> Int {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }, y = b.split(separator: ".").map { Int($0) ?? 0 }
        for i in 0..<max(x.count, y.count) {
            let l = i < x.count ? x[i] : 0, r = i < y.count ? y[i] : 0
            if l != r { return l < r ? -1 : 1 }
        }
        return 0
    }

    func route(_ req: Request, _ res: Responder) async throws {
        let parts = req.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let m = req.method
        switch (m, parts.first ?? "") {
        case (.GET, "_ping"), (.HEAD, "_ping"):
            await res.send(200, contentType: "text/plain; charset=utf-8", body: m == .HEAD ? [] : Array("OK".utf8),
                           extra: [("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache"), ("Builder-Version", "")])
            return
        case (.GET, "version"): await res.json(version()); return
        case (.GET, "info"): await res.json(await info()); return
        case (.GET, "events"): try await events(req, res); return
        case (.GET, "system") where parts.count == 2 && parts[1] == "df": await res.json(try await systemDF()); return
        case (_, "containers"): try await containers(req, res, Array(parts.dropFirst())); return
        case (_, "exec"): try await exec(req, res, Array(parts.dropFirst())); return
        case (_, "images"): try await images(req, res, Array(parts.dropFirst())); return
        default: break
        }
        throw APIError(404, "page not found")
    }

    func version() -> [String: Any] {
        var u = utsname()
        uname(&u)
        let kernel = withUnsafePointer(to: &u.release) { $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) } }
        return [
            "Platform": ["Name": "berth"],
            "Components": [["Name": "Engine", "Version": Self.berthVersion, "Details": ["ApiVersion": APIServer.maxVersion, "MinAPIVersion": APIServer.minVersion, "Os": "linux", "Arch": Platform.host.architecture]]],
            "Version": Self.berthVersion, "ApiVersion": APIServer.maxVersion, "MinAPIVersion": APIServer.minVersion,
            "GitCommit": "", "GoVersion": "swift6", "Os": "linux", "Arch": Platform.host.architecture,
            "KernelVersion": kernel, "BuildTime": "",
        ]
    }

    func info() async -> [String: Any] {
        let c = await engine.containerCount
        let imgs = (try? engine.images.list().count) ?? 0
        var u = utsname()
        uname(&u)
        let kernel = withUnsafePointer(to: &u.release) { $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) } }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let mem = Int64(sysconf(Int32(_SC_PHYS_PAGES))) * Int64(sysconf(Int32(_SC_PAGESIZE)))
        let unified = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0
        return [
            "ID": "berth", "Containers": c.total, "ContainersRunning": c.running, "ContainersPaused": c.paused,
            "ContainersStopped": c.stopped, "Images": imgs, "Driver": "overlay2", "DriverStatus": [[String]](),
            "MemoryLimit": true, "SwapLimit": false, "CpuCfsPeriod": true, "CpuCfsQuota": true, "CPUShares": true,
            "PidsLimit": true, "IPv4Forwarding": false, "Debug": false, "NFd": 0, "NGoroutines": 0,
            "SystemTime": Timestamp.rfc3339Nano(Date()), "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": unified ? "2" : "1", "KernelVersion": kernel,
            "OperatingSystem": "linux", "OSType": "linux", "Architecture": Platform.host.architecture,
            "NCPU": Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), "MemTotal": mem, "Name": String(cString: host),
            "DockerRootDir": engine.options.root, "ServerVersion": Router.berthVersion, "Labels": [String](),
            "ExperimentalBuild": false, "Runtimes": ["berth": ["path": engine.options.runtime]],
            "DefaultRuntime": "berth", "LiveRestoreEnabled": true, "Isolation": "", "InitBinary": engine.options.initBinary ?? "",
            "SecurityOptions": [String](), "Warnings": [String](), "RegistryConfig": ["IndexConfigs": [String: Any](), "InsecureRegistryCIDRs": ["127.0.0.0/8"]],
            "Plugins": ["Volume": [String](), "Network": ["none", "host"], "Log": ["json-file"]],
        ]
    }

    // MARK: events

    func events(_ req: Request, _ res: Responder) async throws {
        let since = req.q("since").flatMap { Timestamp.parse($0) }
        let until = req.q("until").flatMap { Timestamp.parse($0) }
        let filters = try Filters(req.q("filters"))
        await res.startStream(contentType: "application/json")
        let stream = engine.events.subscribe(since: since)
        let deadline = until
        await withTaskGroup(of: Void.self) { g in
            g.addTask {
                for await e in stream {
                    if let deadline, e.time > deadline { break }
                    if !filters.matchEvent(e) { continue }
                    if !(await res.writeJSON(Translate.event(e))) { break }
                }
            }
            g.addTask {
                // Ends the stream at `until`, or when the client hangs up.
                while !res.isClosed {
                    if let deadline, Date() > deadline { break }
                    try? await Task.sleep(nanoseconds: 200_000_000)
                }
            }
            _ = await g.next()
            g.cancelAll()
        }
        await res.end()
    }

    func systemDF() async throws -> [String: Any] {
        let list = await engine.list()
        let imgs = try engine.images.list()
        let engine = engine
        let du = try engine.images.diskUsage()
        return [
            "LayersSize": du.content + du.snapshots,
            "Images": imgs.map { s in Translate.imageSummary(s, containers: list.filter { $0.imageID == s.id.description }.count) },
            "Containers": list.map { Translate.summary($0, size: engine.writableSize($0.id)) } as [Any],
            "Volumes": [Any](), "BuildCache": [Any](),
        ]
    }
}

/// Docker's `filters` query parameter: {"key":["v1","v2"]} (or the old {"key":{"v1":true}}).
struct Filters: Sendable {
    var values: [String: [String]] = [:]
    init(_ raw: String?) throws(APIError) {
        guard let raw, !raw.isEmpty else { return }
        guard let o = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any] else {
            throw APIError(400, "invalid filter: \(raw)")
        }
        for (k, v) in o {
            if let a = v as? [String] { values[k] = a }
            else if let d = v as? [String: Any] { values[k] = Array(d.keys) }
            else { throw APIError(400, "invalid filter '\(k)'") }
        }
    }
    subscript(_ k: String) -> [String]? { values[k] }

    func matchEvent(_ e: EngineEvent) -> Bool {
        for (k, vs) in values {
            switch k {
            case "type": if !vs.contains(e.type) { return false }
            case "event": if !vs.contains(where: { e.action == $0 || e.action.hasPrefix($0 + ":") }) { return false }
            case "container": if !vs.contains(where: { e.id.hasPrefix($0) || e.attributes["name"] == $0 }) { return false }
            case "image": if !vs.contains(where: { e.attributes["image"] == $0 || e.id == $0 }) { return false }
            case "label": if !vs.allSatisfy({ Filters.matchLabel(e.attributes, $0) }) { return false }
            default: continue
            }
        }
        return true
    }

    static func matchLabel(_ labels: [String: String], _ f: String) -> Bool {
        let p = f.split(separator: "=", maxSplits: 1).map(String.init)
        if p.count == 1 { return labels[p[0]] != nil }
        return labels[p[0]] == p[1]
    }
}
