// Container verbs: run/create (the config docker builds from its flags), start, stop, kill, restart, rm,
// pause, unpause, rename, wait, top, logs, exec, attach.
import Glibc

struct App {
    let client: Client

    /// Each name in turn, printing the name on success (as docker does) and the error otherwise; exit 1 if any failed.
    func each(_ names: [String], print: Bool = true, _ body: (String) throws -> Void) -> Int32 {
        var failed = false
        for n in names {
            do {
                try body(n)
                if print { writeOut(n + "\n") }
            } catch {
                writeErr(errorText(error) + "\n")
                failed = true
            }
        }
        return failed ? 1 : 0
    }
}

func errorText(_ e: Error) -> String {
    switch e {
    case let d as DaemonError: return "Error response from daemon: \(d.message)"
    case let c as CLIError: return c.message
    case let t as TemplateError: return "template: \(t.message)"
    case let j as JSONError: return j.description
    default: return "\(e)"
    }
}

func path(_ s: String) -> String { urlEncode(s) }

// MARK: - Image references (docker/distribution reference, the parts the API needs)

struct ImageRef {
    var domain: String
    var path: String
    var tag: String?
    var digest: String?

    init(_ s: String) {
        var rest = s
        if let at = rest.firstIndex(of: "@") {
            digest = String(rest[rest.index(after: at)...])
            rest = String(rest[..<at])
        }
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            tag = String(rest[rest.index(after: colon)...])
            rest = String(rest[..<colon])
        }
        let parts = rest.split(separator: "/", maxSplits: 1).map(String.init)
        if parts.count == 2, parts[0].contains(".") || parts[0].contains(":") || parts[0] == "localhost"
            || parts[0].contains(where: { $0.isUppercase }) {
            domain = parts[0]
            path = parts[1]
        } else {
            domain = "docker.io"
            path = rest
        }
        if domain == "index.docker.io" { domain = "docker.io" }
        if domain == "docker.io" && !path.contains("/") { path = "library/" + path }
    }

    /// docker.io/library/busybox
    var name: String { domain + "/" + path }
    /// busybox, me/app, localhost:5000/app
    var familiarName: String {
        if domain == "docker.io" { return path.hasPrefix("library/") ? String(path.dropFirst(8)) : path }
        return name
    }
    /// The tag or digest the API's `tag` parameter wants (latest when none).
    var apiTag: String { digest ?? tag ?? "latest" }
    /// busybox:latest (docker's TagNameOnly + FamiliarString)
    var familiarTagged: String {
        if let digest { return familiarName + (tag.map { ":" + $0 } ?? "") + "@" + digest }
        return familiarName + ":" + (tag ?? "latest")
    }
}

// MARK: - Sizes and options

/// go-units RAMInBytes: 512m, 1g, 100k, 1024 (binary multiples).
func ramInBytes(_ s: String) throws -> Int64 {
    let lower = s.lowercased().trimmed
    var digits = ""
    var unit = ""
    for c in lower {
        if unit.isEmpty && (c.isNumber || c == ".") { digits.append(c) } else { unit.append(c) }
    }
    guard let v = Double(digits) else { throw CLIError("invalid size: '\(s)'") }
    let mult: Double
    switch unit.trimmed {
    case "", "b": mult = 1
    case "k", "kb", "kib": mult = 1024
    case "m", "mb", "mib": mult = 1024 * 1024
    case "g", "gb", "gib": mult = 1024 * 1024 * 1024
    case "t", "tb", "tib": mult = 1024 * 1024 * 1024 * 1024
    case "p", "pb", "pib": mult = 1024 * 1024 * 1024 * 1024 * 1024
    default: throw CLIError("invalid size: '\(s)'")
    }
    return Int64(v * mult)
}

/// -e NAME (no '='): taken from our environment when set, else passed as is (the daemon drops it).
func envEntry(_ e: String) -> String {
    if e.contains("=") { return e }
    if let v = env(e) { return e + "=" + v }
    return e
}

func readEnvFile(_ path: String) throws -> [String] {
    guard let b = readFile(path) else { throw CLIError("open \(path): no such file or directory") }
    var out: [String] = []
    for raw in String(decoding: b, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true) {
        let line = String(raw).trimmed
        if line.isEmpty || line.hasPrefix("#") { continue }
        out.append(envEntry(line))
    }
    return out
}

func labelsObject(_ items: [String]) -> JSON {
    var kv: [(String, JSON)] = []
    for l in items {
        if let eq = l.firstIndex(of: "=") {
            kv.append((String(l[..<eq]), .string(String(l[l.index(after: eq)...]))))
        } else {
            kv.append((l, .string("")))
        }
    }
    return .object(kv)
}

/// -p [ip:][hostPort:]containerPort[/proto]
func parsePublish(_ specs: [String]) throws -> (exposed: [(String, JSON)], bindings: [(String, JSON)]) {
    var exposed: [(String, JSON)] = []
    var bindings: [String: [JSON]] = [:]
    var order: [String] = []
    for spec in specs {
        var rest = spec
        var proto = "tcp"
        if let slash = rest.lastIndex(of: "/") {
            proto = String(rest[rest.index(after: slash)...])
            rest = String(rest[..<slash])
        }
        var parts = rest.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        // an IPv6 host ip in brackets: [::1]:80:80
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            let ip = String(rest[rest.index(after: rest.startIndex)..<close])
            let tail = rest[rest.index(after: close)...].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            parts = [ip] + tail.dropFirst()
        }
        let ip: String, host: String, ctr: String
        switch parts.count {
        case 1: ip = ""; host = ""; ctr = parts[0]
        case 2: ip = ""; host = parts[0]; ctr = parts[1]
        case 3: ip = parts[0]; host = parts[1]; ctr = parts[2]
        default: throw CLIError("invalid publish opts format (should be name=value but got '\(spec)')")
        }
        guard !ctr.isEmpty else { throw CLIError("No port specified: \(spec)<empty>") }
        let key = "\(ctr)/\(proto)"
        if !exposed.contains(where: { $0.0 == key }) { exposed.append((key, .object([]))) }
        if bindings[key] == nil { order.append(key) }
        bindings[key, default: []].append(.object([("HostIp", .string(ip)), ("HostPort", .string(host))]))
    }
    return (exposed, order.map { ($0, .array(bindings[$0]!)) })
}

/// --mount type=bind,source=/a,target=/b,readonly
func parseMount(_ spec: String) throws -> JSON {
    var m: [(String, JSON)] = [("Type", .string("volume"))]
    var bindOpts: [(String, JSON)] = []
    var tmpfsOpts: [(String, JSON)] = []
    var volOpts: [(String, JSON)] = []
    for field in spec.split(separator: ",") {
        let kv = field.split(separator: "=", maxSplits: 1).map(String.init)
        let k = kv[0].lowercased()
        let v = kv.count > 1 ? kv[1] : ""
        switch k {
        case "type": m[0].1 = .string(v)
        case "source", "src": m.append(("Source", .string(v)))
        case "target", "destination", "dst": m.append(("Target", .string(v)))
        case "readonly", "ro": m.append(("ReadOnly", .bool(kv.count == 1 || v == "true" || v == "1")))
        case "bind-propagation": bindOpts.append(("Propagation", .string(v)))
        case "bind-recursive": bindOpts.append(("ReadOnlyNonRecursive", .bool(v == "readonly")))
        case "consistency": m.append(("Consistency", .string(v)))
        case "tmpfs-size": tmpfsOpts.append(("SizeBytes", .int64(try ramInBytes(v))))
        case "tmpfs-mode": tmpfsOpts.append(("Mode", .int(Int(v, radix: 8) ?? 0o1777)))
        case "volume-nocopy": volOpts.append(("NoCopy", .bool(kv.count == 1 || v == "true")))
        case "volume-driver": volOpts.append(("DriverConfig", .object([("Name", .string(v))])))
        default: throw CLIError("invalid field '\(k)' must be a key=value pair")
        }
    }
    if !bindOpts.isEmpty { m.append(("BindOptions", .object(bindOpts))) }
    if !tmpfsOpts.isEmpty { m.append(("TmpfsOptions", .object(tmpfsOpts))) }
    if !volOpts.isEmpty { m.append(("VolumeOptions", .object(volOpts))) }
    return .object(m)
}

// MARK: - run / create

struct CreateSpec {
    var body: JSON
    var name: String?
    var platform: String?
    var image: String
    var tty: Bool
    var stdin: Bool
    var attach: [String]
    var autoRemove: Bool
    var pull: String
}

func buildCreate(_ p: Parsed, detach: Bool, run: Bool) throws -> CreateSpec {
    guard let image = p.positionals.first else { throw UsageError("requires at least 1 argument") }
    let cmd = Array(p.positionals.dropFirst())
    let tty = p.bool("tty")
    let interactive = p.bool("interactive")
    var attach = p.strings("attach").map { $0.lowercased() }
    if detach && !attach.isEmpty { throw CLIError("Conflicting options: -a and -d") }
    if !detach && attach.isEmpty && run { attach = ["stdout", "stderr"] + (interactive ? ["stdin"] : []) }
    if !run && attach.isEmpty { attach = (interactive ? ["stdin"] : []) + ["stdout", "stderr"] }
    let attachStdin = attach.contains("stdin")

    var envs: [String] = []
    for f in p.strings("env-file") { envs += try readEnvFile(f) }
    envs += p.strings("env").map(envEntry)

    var labels: [String] = []
    for f in p.strings("label-file") {
        guard let b = readFile(f) else { throw CLIError("open \(f): no such file or directory") }
        labels += String(decoding: b, as: UTF8.self).split(separator: "\n").map { String($0).trimmed }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }
    labels += p.strings("label")

    let restart = p.string("restart") ?? "no"
    var restartName = restart
    var retries = 0
    if let colon = restart.firstIndex(of: ":") {
        restartName = String(restart[..<colon])
        guard let n = Int(restart[restart.index(after: colon)...]) else {
            throw CLIError("invalid restart policy format: maximum retry count must be an integer")
        }
        retries = n
    }
    guard ["no", "always", "unless-stopped", "on-failure", ""].contains(restartName) else {
        throw CLIError("invalid restart policy '\(restartName)'")
    }
    let autoRemove = p.bool("rm")
    if autoRemove && restartName != "no" && !restartName.isEmpty {
        throw CLIError("Conflicting options: --restart and --rm")
    }

    var binds: [JSON] = []
    var volumes: [(String, JSON)] = []
    for v in p.strings("volume") {
        // /ctr alone is an anonymous volume; src:dst[:opts] a bind or named volume
        let parts = v.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 1 { volumes.append((v, .object([]))) } else { binds.append(.string(v)) }
    }
    for v in p.strings("volumes-from") { _ = v }
    var tmpfs: [(String, JSON)] = []
    for t in p.strings("tmpfs") {
        if let colon = t.firstIndex(of: ":") {
            tmpfs.append((String(t[..<colon]), .string(String(t[t.index(after: colon)...]))))
        } else {
            tmpfs.append((t, .string("")))
        }
    }
    let mounts = try p.strings("mount").map(parseMount)
    let (exposedPublish, portBindings) = try parsePublish(p.strings("publish"))
    var exposed = exposedPublish
    for e in p.strings("expose") {
        let key = e.contains("/") ? e : e + "/tcp"
        if !exposed.contains(where: { $0.0 == key }) { exposed.append((key, .object([]))) }
    }

    var network = p.string("network") ?? p.string("net") ?? "default"
    if network.isEmpty { network = "default" }

    var host: [(String, JSON)] = [
        ("Binds", binds.isEmpty ? .null : .array(binds)),
        ("NetworkMode", .string(network)),
        ("PortBindings", .object(portBindings)),
        ("RestartPolicy", .object([("Name", .string(restartName)), ("MaximumRetryCount", .int(retries))])),
        ("AutoRemove", .bool(autoRemove)),
        ("CapAdd", p.strings("cap-add").isEmpty ? .null : .array(p.strings("cap-add").map { .string($0) })),
        ("CapDrop", p.strings("cap-drop").isEmpty ? .null : .array(p.strings("cap-drop").map { .string($0) })),
        ("Privileged", .bool(p.bool("privileged"))),
        ("ReadonlyRootfs", .bool(p.bool("read-only"))),
        ("PublishAllPorts", .bool(p.bool("publish-all"))),
    ]
    if !tmpfs.isEmpty { host.append(("Tmpfs", .object(tmpfs))) }
    if !mounts.isEmpty { host.append(("Mounts", .array(mounts))) }
    if let m = p.string("memory") { host.append(("Memory", .int64(try ramInBytes(m)))) }
    if let m = p.string("memory-swap") { host.append(("MemorySwap", .int64(m == "-1" ? -1 : try ramInBytes(m)))) }
    if let m = p.string("memory-reservation") { host.append(("MemoryReservation", .int64(try ramInBytes(m)))) }
    if let m = p.string("shm-size") { host.append(("ShmSize", .int64(try ramInBytes(m)))) }
    if let c = p.string("cpus") {
        guard let v = Double(c), v >= 0 else { throw CLIError("invalid argument \"\(c)\" for \"--cpus\" flag") }
        host.append(("NanoCpus", .int64(Int64((v * 1e9).rounded()))))
    }
    if let v = try p.int("cpu-shares") { host.append(("CpuShares", .int(v))) }
    if let v = try p.int("cpu-period") { host.append(("CpuPeriod", .int(v))) }
    if let v = try p.int("cpu-quota") { host.append(("CpuQuota", .int(v))) }
    if let v = p.string("cpuset-cpus") { host.append(("CpusetCpus", .string(v))) }
    if let v = p.string("cpuset-mems") { host.append(("CpusetMems", .string(v))) }
    if let v = try p.int("pids-limit") { host.append(("PidsLimit", .int(v))) }
    if let v = try p.int("oom-score-adj") { host.append(("OomScoreAdj", .int(v))) }
    if p.has("oom-kill-disable") { host.append(("OomKillDisable", .bool(p.bool("oom-kill-disable")))) }
    if p.has("init") { host.append(("Init", .bool(p.bool("init")))) }
    if let v = p.string("ipc") { host.append(("IpcMode", .string(v))) }
    if let v = p.string("pid") { host.append(("PidMode", .string(v))) }
    if let v = p.string("uts") { host.append(("UTSMode", .string(v))) }
    if let v = p.string("userns") { host.append(("UsernsMode", .string(v))) }
    if let v = p.string("cgroupns") { host.append(("CgroupnsMode", .string(v))) }
    if let v = p.string("cgroup-parent") { host.append(("CgroupParent", .string(v))) }
    if let v = p.string("runtime") { host.append(("Runtime", .string(v))) }
    if !p.strings("dns").isEmpty { host.append(("Dns", .array(p.strings("dns").map { .string($0) }))) }
    if !p.strings("dns-search").isEmpty { host.append(("DnsSearch", .array(p.strings("dns-search").map { .string($0) }))) }
    if !p.strings("dns-option").isEmpty { host.append(("DnsOptions", .array(p.strings("dns-option").map { .string($0) }))) }
    if !p.strings("add-host").isEmpty {
        host.append(("ExtraHosts", .array(p.strings("add-host").map { .string($0.replacingAll("=", with: ":")) })))
    }
    if !p.strings("security-opt").isEmpty { host.append(("SecurityOpt", .array(p.strings("security-opt").map { .string($0) }))) }
    if !p.strings("group-add").isEmpty { host.append(("GroupAdd", .array(p.strings("group-add").map { .string($0) }))) }
    if !p.strings("sysctl").isEmpty { host.append(("Sysctls", labelsObject(p.strings("sysctl")))) }
    if !p.strings("annotation").isEmpty { host.append(("Annotations", labelsObject(p.strings("annotation")))) }
    if !p.strings("ulimit").isEmpty {
        var ul: [JSON] = []
        for u in p.strings("ulimit") {
            let kv = u.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw CLIError("invalid ulimit argument: \(u)") }
            let lim = kv[1].split(separator: ":").map { Int64($0) }
            guard let soft = lim.first ?? nil else { throw CLIError("invalid ulimit argument: \(u)") }
            let hard = lim.count > 1 ? (lim[1] ?? soft) : soft
            ul.append(.object([("Name", .string(kv[0])), ("Soft", .int64(soft)), ("Hard", .int64(hard))]))
        }
        host.append(("Ulimits", .array(ul)))
    }
    if !p.strings("device").isEmpty {
        host.append(("Devices", .array(p.strings("device").map { d in
            let parts = d.split(separator: ":").map(String.init)
            let perms = parts.count == 3 ? parts[2] : (parts.count == 2 && !parts[1].hasPrefix("/") ? parts[1] : "rwm")
            let inCtr = parts.count >= 2 && parts[1].hasPrefix("/") ? parts[1] : parts[0]
            return .object([("PathOnHost", .string(parts[0])), ("PathInContainer", .string(inCtr)),
                            ("CgroupPermissions", .string(perms))])
        })))
    }
    if let driver = p.string("log-driver") {
        host.append(("LogConfig", .object([("Type", .string(driver)), ("Config", labelsObject(p.strings("log-opt")))])))
    }
    if tty, !detach, isTerminal(1), let (h, w) = RawTerminal.size() {
        host.append(("ConsoleSize", .array([.int(h), .int(w)])))
    }

    var config: [(String, JSON)] = [
        ("Hostname", .string(p.string("hostname") ?? "")),
        ("Domainname", .string(p.string("domainname") ?? "")),
        ("User", .string(p.string("user") ?? "")),
        ("AttachStdin", .bool(!detach && attachStdin)),
        ("AttachStdout", .bool(!detach && attach.contains("stdout"))),
        ("AttachStderr", .bool(!detach && attach.contains("stderr"))),
        ("ExposedPorts", exposed.isEmpty ? .null : .object(exposed)),
        ("Tty", .bool(tty)),
        ("OpenStdin", .bool(interactive)),
        ("StdinOnce", .bool(interactive && !detach && attachStdin)),
        ("Env", .array(envs.map { .string($0) })),
        ("Cmd", cmd.isEmpty ? .null : .array(cmd.map { .string($0) })),
        ("Image", .string(image)),
        ("Volumes", volumes.isEmpty ? .null : .object(volumes)),
        ("WorkingDir", .string(p.string("workdir") ?? "")),
        ("Entrypoint", p.string("entrypoint").map { .array([.string($0)]) } ?? .null),
        ("Labels", labelsObject(labels)),
    ]
    if let s = p.string("stop-signal") { config.append(("StopSignal", .string(s))) }
    if let t = try p.int("stop-timeout") { config.append(("StopTimeout", .int(t))) }
    if let mac = p.string("mac-address") { config.append(("MacAddress", .string(mac))) }
    if p.bool("no-healthcheck") {
        config.append(("Healthcheck", .object([("Test", .array([.string("NONE")]))])))
    } else if let hc = p.string("health-cmd") {
        config.append(("Healthcheck", .object([("Test", .array([.string("CMD-SHELL"), .string(hc)]))])))
    }
    config.append(("HostConfig", .object(host)))
    var endpoints: [(String, JSON)] = []
    if !["default", "none", "host", "bridge"].contains(network) && !network.hasPrefix("container:") {
        var ep: [(String, JSON)] = []
        if !p.strings("network-alias").isEmpty { ep.append(("Aliases", .array(p.strings("network-alias").map { .string($0) }))) }
        if let ip = p.string("ip") { ep.append(("IPAMConfig", .object([("IPv4Address", .string(ip))]))) }
        endpoints.append((network, .object(ep)))
    }
    config.append(("NetworkingConfig", .object([("EndpointsConfig", .object(endpoints))])))
    let pull = p.string("pull") ?? "missing"
    guard ["missing", "always", "never"].contains(pull) else {
        throw CLIError("invalid pull option: '\(pull)': must be one of \"always\", \"missing\" or \"never\"")
    }
    return CreateSpec(body: .object(config), name: p.string("name"), platform: p.string("platform"), image: image,
                      tty: tty, stdin: attachStdin && interactive, attach: attach, autoRemove: autoRemove, pull: pull)
}

/// POST /containers/create, pulling the image first when it is missing (or with --pull always).
func createContainer(_ app: App, _ spec: CreateSpec, quietPull: Bool = false) throws -> String {
    let q = query([("name", spec.name), ("platform", spec.platform)])
    func pull() throws {
        let code = try pullImage(app, spec.image, platform: spec.platform, all: false, quiet: quietPull, out: 2)
        if code != 0 { throw CLIError("", code: 125) }
    }
    if spec.pull == "always" { try pull() }
    var r = try app.client.send("POST", "/containers/create" + q, body: .json(spec.body))
    if r.status == 404 && spec.pull != "never" {
        let e = r.error()
        guard e.message.lowercased().contains("no such image") else { throw e }
        writeErr("Unable to find image '\(ImageRef(spec.image).familiarTagged)' locally\n")
        try pull()
        r = try app.client.send("POST", "/containers/create" + q, body: .json(spec.body))
    }
    if r.status >= 400 { throw r.error() }
    let j = try r.json()
    for w in j["Warnings"]?.array ?? [] { if let s = w.string, !s.isEmpty { writeErr("WARNING: \(s)\n") } }
    guard let id = j["Id"]?.string else { throw CLIError("the daemon's create answer has no Id") }
    return id
}

/// docker's toStatusError: 127 when the command isn't found, 126 when it can't be run, else 125.
func runStatus(_ e: Error) -> Int32 {
    let m = errorText(e).lowercased()
    if m.contains("executable file not found") || m.contains("no such file or directory") { return 127 }
    if m.contains("permission denied") || m.contains("is a directory") { return 126 }
    return 125
}

func cmdCreate(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("create", args, interspersed: false)
    try requireArgs("create", p, min: 1)
    do {
        let spec = try buildCreate(p, detach: true, run: false)
        let id = try createContainer(app, spec, quietPull: p.bool("quiet"))
        if let f = p.string("cidfile") { try writeFileAtomically(f, id) }
        writeOut(id + "\n")
        return 0
    } catch let e as CLIError where e.message.isEmpty {
        return e.code
    } catch {
        writeErr("berth: " + errorText(error) + "\n\nRun 'berth create --help' for more information\n")
        return 125
    }
}

func writeFileAtomically(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    if fd < 0 { throw CLIError("Container ID file found, make sure the other container isn't running or delete \(path)") }
    writeAllFD(fd, Array(text.utf8)[...])
    close(fd)
}

/// A wait request sent now, answered when the container exits (or is removed).
final class PendingWait {
    private let app: App
    private var socket: Socket?
    private var error: Error?

    init(_ app: App, id: String, condition: String) {
        self.app = app
        do {
            // send only: the daemon may hold even the head back until the exit
            socket = try app.client.write("POST", "/containers/\(path(id))/wait?condition=\(condition)")
        } catch { self.error = error }
    }

    /// The exit status (125 when the wait itself failed).
    func result() -> Int32 {
        if let error { writeErr("berth: " + errorText(error) + "\n"); return 125 }
        guard let s = socket else { return 125 }
        var r: Response
        do { r = try app.client.readHead(s, method: "POST") } catch {
            writeErr("berth: " + errorText(error) + "\n")
            return 125
        }
        if r.status >= 400 {
            let e = r.error()
            // the container was removed (--rm) before we could ask: nothing more to know
            writeErr("berth: Error response from daemon: \(e.message)\n")
            return 125
        }
        guard let j = try? r.json() else { return 125 }
        if let m = j["Error"]?["Message"]?.string, !m.isEmpty {
            writeErr("berth: Error waiting for container: \(m)\n")
            return 125
        }
        return Int32(truncatingIfNeeded: j["StatusCode"]?.int ?? 125)
    }
}

func resize(_ app: App, _ kind: String, _ id: String) {
    guard let (h, w) = RawTerminal.size() else { return }
    _ = try? app.client.call("POST", "/\(kind)/\(path(id))/resize?h=\(h)&w=\(w)")
}

func cmdRun(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("run", args, interspersed: false)
    try requireArgs("run", p, min: 1)
    let detach = p.bool("detach")
    let spec: CreateSpec
    let id: String
    do {
        spec = try buildCreate(p, detach: detach, run: true)
        if spec.tty && spec.stdin && !isTerminal(0) {
            writeErr("berth: the input device is not a TTY\n")
            return 1
        }
        id = try createContainer(app, spec, quietPull: p.bool("quiet"))
        if let f = p.string("cidfile") { try writeFileAtomically(f, id) }
    } catch let e as CLIError where e.message.isEmpty {
        return e.code
    } catch {
        writeErr("berth: " + errorText(error) + "\n\nRun 'berth run --help' for more information\n")
        return 125
    }
    if detach {
        do {
            try app.client.perform("POST", "/containers/\(path(id))/start")
        } catch {
            writeErr("berth: " + errorText(error) + "\n\nRun 'berth run --help' for more information\n")
            return runStatus(error)
        }
        writeOut(id + "\n")
        return 0
    }
    let detachKeys = p.string("detach-keys") ?? "ctrl-p,ctrl-q"
    let keys = try parseDetachKeys(detachKeys)
    // attach first, then wait, then start (docker's order: no output and no exit is missed). The attach
    // answer is read only after the start: a daemon may hold its 101 back until a created container runs.
    var attachSocket: Socket?
    if !spec.attach.isEmpty {
        let q = query([("stream", "1"), ("stdin", spec.attach.contains("stdin") ? "1" : nil),
                       ("stdout", spec.attach.contains("stdout") ? "1" : nil),
                       ("stderr", spec.attach.contains("stderr") ? "1" : nil), ("detachKeys", detachKeys)])
        do {
            attachSocket = try app.client.write("POST", "/containers/\(path(id))/attach" + q, upgrade: true)
        } catch {
            writeErr("berth: " + errorText(error) + "\n")
            return 125
        }
    }
    let wait = PendingWait(app, id: id, condition: spec.autoRemove ? "removed" : "next-exit")
    let term = RawTerminal(fd: 0)
    if spec.tty && spec.stdin { term.makeRaw() }
    defer { term.restore() }
    do {
        try app.client.perform("POST", "/containers/\(path(id))/start")
    } catch {
        term.restore()
        writeErr("berth: " + errorText(error) + "\n\nRun 'berth run --help' for more information\n")
        return runStatus(error)
    }
    var stream: (Socket, ArraySlice<UInt8>, Response)?
    if let s = attachSocket {
        do { stream = try app.client.finishHijack(s) } catch {
            term.restore()
            writeErr("berth: " + errorText(error) + "\n")
            return 125
        }
    }
    if let (sock, initial, _) = stream {
        var o = PumpOptions()
        o.stdin = spec.stdin
        o.tty = spec.tty
        o.multiplexed = !spec.tty
        o.detachKeys = keys
        if spec.tty && isTerminal(1) {
            resize(app, "containers", id)
            o.onResize = { resize(app, "containers", id) }
            Signals.install([SIGWINCH])
        }
        if !spec.tty && p.string("sig-proxy") != "false" {
            Signals.install(Signals.proxied)
            o.onSignal = { sig in
                _ = try? app.client.call("POST", "/containers/\(path(id))/kill?signal=\(Signals.name(sig))")
            }
        }
        let end = try pump(sock, initial: initial, o)
        if end == .detached {
            term.restore()
            return 0
        }
    }
    term.restore()
    return wait.result()
}

extension Response {
    /// Reads and drops the body.
    mutating func discard() { _ = try? readAll() }
}


// MARK: - start / stop / kill / restart / rm / pause / unpause / rename / wait

func cmdStart(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("start", args)
    try requireArgs("start", p, min: 1)
    let attach = p.bool("attach")
    let interactive = p.bool("interactive")
    if !attach && !interactive {
        return app.each(p.positionals) { n in
            var r = try app.client.call("POST", "/containers/\(path(n))/start")
            r.discard()
        }
    }
    guard p.positionals.count == 1 else { throw CLIError("you cannot start and attach multiple containers at once") }
    let n = p.positionals[0]
    let info = try app.client.getJSON("/containers/\(path(n))/json")
    let id = info["Id"]?.string ?? n
    let tty = info["Config"]?["Tty"]?.bool ?? false
    let detachKeys = p.string("detach-keys") ?? "ctrl-p,ctrl-q"
    let stdin = interactive && (info["Config"]?["OpenStdin"]?.bool ?? false)
    let q = query([("stream", "1"), ("stdin", stdin ? "1" : nil), ("stdout", "1"), ("stderr", "1"),
                   ("detachKeys", detachKeys)])
    let attachSocket = try app.client.write("POST", "/containers/\(path(id))/attach" + q, upgrade: true)
    let wait = PendingWait(app, id: id, condition: "next-exit")
    let term = RawTerminal(fd: 0)
    if tty && stdin { term.makeRaw() }
    defer { term.restore() }
    try app.client.perform("POST", "/containers/\(path(id))/start")
    let (sock, initial, _) = try app.client.finishHijack(attachSocket)
    var o = PumpOptions()
    o.stdin = stdin
    o.tty = tty
    o.multiplexed = !tty
    o.detachKeys = try parseDetachKeys(detachKeys)
    if tty && isTerminal(1) {
        resize(app, "containers", id)
        o.onResize = { resize(app, "containers", id) }
        Signals.install([SIGWINCH])
    }
    if try pump(sock, initial: initial, o) == .detached { return 0 }
    term.restore()
    return wait.result()
}

func cmdStop(_ app: App, _ args: [String], verb: String = "stop") throws -> Int32 {
    let p = try parseFlags(verb, args)
    try requireArgs(verb, p, min: 1)
    let t = try p.int("timeout") ?? p.int("time")
    let q = query([("signal", p.string("signal")), ("t", t.map(String.init))])
    return app.each(p.positionals) { n in
        var r = try app.client.call("POST", "/containers/\(path(n))/\(verb)" + q)
        r.discard()
    }
}

func cmdKill(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("kill", args)
    try requireArgs("kill", p, min: 1)
    let q = query([("signal", p.string("signal"))])
    return app.each(p.positionals) { n in
        var r = try app.client.call("POST", "/containers/\(path(n))/kill" + q)
        r.discard()
    }
}

func cmdRm(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("rm", args)
    try requireArgs("rm", p, min: 1)
    let q = query([("force", p.bool("force") ? "1" : nil), ("v", p.bool("volumes") ? "1" : nil),
                   ("link", p.bool("link") ? "1" : nil)])
    return app.each(p.positionals) { n in
        var r = try app.client.call("DELETE", "/containers/\(path(n))" + q)
        r.discard()
    }
}

func cmdSimple(_ app: App, _ args: [String], verb: String) throws -> Int32 {
    let p = try parseFlags(verb, args)
    try requireArgs(verb, p, min: 1)
    return app.each(p.positionals) { n in
        var r = try app.client.call("POST", "/containers/\(path(n))/\(verb)")
        r.discard()
    }
}

func cmdRename(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("rename", args)
    try requireArgs("rename", p, min: 2, max: 2)
    let newName = p.positionals[1]
    if newName.trimmed.isEmpty { throw CLIError("Error: Neither old nor new names may be empty") }
    var r = try app.client.call("POST", "/containers/\(path(p.positionals[0]))/rename" + query([("name", newName)]))
    r.discard()
    return 0
}

func cmdWait(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("wait", args)
    try requireArgs("wait", p, min: 1)
    return app.each(p.positionals, print: false) { n in
        let j = try app.client.postJSON("/containers/\(path(n))/wait")
        if let m = j["Error"]?["Message"]?.string, !m.isEmpty { throw CLIError(m) }
        writeOut("\(j["StatusCode"]?.int ?? -1)\n")
    }
}

func cmdTop(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("top", args, interspersed: false)
    try requireArgs("top", p, min: 1)
    let psArgs = p.positionals.dropFirst().joined(separator: " ")
    let j = try app.client.getJSON("/containers/\(path(p.positionals[0]))/top"
        + query([("ps_args", psArgs.isEmpty ? nil : psArgs)]))
    var text = (j["Titles"]?.array ?? []).map { $0.text ?? "" }.joined(separator: "\t") + "\n"
    for row in j["Processes"]?.array ?? [] {
        text += (row.array ?? []).map { $0.text ?? "" }.joined(separator: "\t") + "\n"
    }
    writeOut(tabwrite(text, minWidth: 20, padding: 3))
    return 0
}

func cmdPort(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("port", args)
    try requireArgs("port", p, min: 1, max: 2)
    let info = try app.client.getJSON("/containers/\(path(p.positionals[0]))/json")
    var lines: [String] = []
    for (key, v) in info["NetworkSettings"]?["Ports"]?.object ?? [] {
        if p.positionals.count == 2 {
            let want = p.positionals[1].contains("/") ? p.positionals[1] : p.positionals[1] + "/tcp"
            if key != want { continue }
        }
        for b in v.array ?? [] {
            let ip = b["HostIp"]?.string ?? ""
            let hp = b["HostPort"]?.string ?? ""
            let addr = ip.contains(":") ? "[\(ip)]:\(hp)" : "\(ip.isEmpty ? "0.0.0.0" : ip):\(hp)"
            lines.append(p.positionals.count == 2 ? addr : "\(key) -> \(addr)")
        }
    }
    for l in lines { writeOut(l + "\n") }
    if lines.isEmpty && p.positionals.count == 2 {
        throw CLIError("Error: No public port '\(p.positionals[1])' published for \(p.positionals[0])")
    }
    return 0
}

// MARK: - logs

func cmdLogs(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("logs", args)
    try requireArgs("logs", p, min: 1, max: 1)
    let n = p.positionals[0]
    let info = try app.client.getJSON("/containers/\(path(n))/json")
    let tty = info["Config"]?["Tty"]?.bool ?? false
    let q = query([("stdout", "1"), ("stderr", "1"), ("follow", p.bool("follow") ? "1" : nil),
                   ("timestamps", p.bool("timestamps") ? "1" : nil), ("details", p.bool("details") ? "1" : nil),
                   ("since", p.string("since")), ("until", p.string("until")), ("tail", p.string("tail") ?? "all")])
    var r = try app.client.call("GET", "/containers/\(path(n))/logs" + q)
    var demux = Demux()
    if p.bool("follow") { Signals.reset([SIGINT]) }
    while true {
        let piece = try r.read()
        if piece.isEmpty { break }
        if tty { writeAllFD(1, piece) } else { demux.feed(piece) }
    }
    if let e = demux.systemError { writeErr(e); return 1 }
    return 0
}

// MARK: - attach

func cmdAttach(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("attach", args)
    try requireArgs("attach", p, min: 1, max: 1)
    let n = p.positionals[0]
    let info = try app.client.getJSON("/containers/\(path(n))/json")
    let id = info["Id"]?.string ?? n
    if info["State"]?["Running"]?.bool != true {
        throw CLIError("You cannot attach to a stopped container, start it first")
    }
    if info["State"]?["Paused"]?.bool == true { throw CLIError("You cannot attach to a paused container, unpause it first") }
    let tty = info["Config"]?["Tty"]?.bool ?? false
    let stdin = !p.bool("no-stdin") && (info["Config"]?["OpenStdin"]?.bool ?? false)
    if tty && stdin && !isTerminal(0) { throw CLIError("the input device is not a TTY") }
    let detachKeys = p.string("detach-keys") ?? "ctrl-p,ctrl-q"
    let q = query([("stream", "1"), ("stdin", stdin ? "1" : nil), ("stdout", "1"), ("stderr", "1"),
                   ("detachKeys", detachKeys)])
    let (sock, initial, _) = try app.client.hijack("/containers/\(path(id))/attach" + q)
    let term = RawTerminal(fd: 0)
    if tty && stdin { term.makeRaw() }
    defer { term.restore() }
    var o = PumpOptions()
    o.stdin = stdin
    o.tty = tty
    o.multiplexed = !tty
    o.detachKeys = try parseDetachKeys(detachKeys)
    if tty && isTerminal(1) {
        resize(app, "containers", id)
        o.onResize = { resize(app, "containers", id) }
        Signals.install([SIGWINCH])
    }
    if !tty && p.string("sig-proxy") != "false" {
        Signals.install(Signals.proxied)
        o.onSignal = { sig in _ = try? app.client.call("POST", "/containers/\(path(id))/kill?signal=\(Signals.name(sig))") }
    }
    if try pump(sock, initial: initial, o) == .detached { return 0 }
    term.restore()
    // the exit code of the container, as docker attach returns it
    if let j = try? app.client.getJSON("/containers/\(path(id))/json"), let code = j["State"]?["ExitCode"]?.int,
       j["State"]?["Running"]?.bool == false {
        return Int32(truncatingIfNeeded: code)
    }
    return 0
}

// MARK: - exec

func cmdExec(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("exec", args, interspersed: false)
    try requireArgs("exec", p, min: 2)
    let n = p.positionals[0]
    let cmd = Array(p.positionals.dropFirst())
    let detach = p.bool("detach")
    let tty = p.bool("tty")
    let stdin = p.bool("interactive")
    if tty && stdin && !detach && !isTerminal(0) { throw CLIError("the input device is not a TTY") }
    var envs: [String] = []
    for f in p.strings("env-file") { envs += try readEnvFile(f) }
    envs += p.strings("env").map(envEntry)
    let detachKeys = p.string("detach-keys") ?? "ctrl-p,ctrl-q"
    var body: [(String, JSON)] = [
        ("User", .string(p.string("user") ?? "")),
        ("Privileged", .bool(p.bool("privileged"))),
        ("Tty", .bool(tty)),
        ("AttachStdin", .bool(stdin && !detach)),
        ("AttachStderr", .bool(!detach)),
        ("AttachStdout", .bool(!detach)),
        ("Detach", .bool(detach)),
        ("DetachKeys", .string(detachKeys)),
        ("Env", .array(envs.map { .string($0) })),
        ("WorkingDir", .string(p.string("workdir") ?? "")),
        ("Cmd", .array(cmd.map { .string($0) })),
    ]
    let size = tty && isTerminal(1) ? RawTerminal.size() : nil
    if let (h, w) = size { body.append(("ConsoleSize", .array([.int(h), .int(w)]))) }
    let created = try app.client.postJSON("/containers/\(path(n))/exec", .object(body))
    guard let execID = created["Id"]?.string else { throw CLIError("the daemon's exec answer has no Id") }
    var start: [(String, JSON)] = [("Detach", .bool(detach)), ("Tty", .bool(tty))]
    if let (h, w) = size { start.append(("ConsoleSize", .array([.int(h), .int(w)]))) }
    if detach {
        try app.client.perform("POST", "/exec/\(path(execID))/start", body: .json(.object(start)))
        return 0
    }
    let sock: Socket, initial: ArraySlice<UInt8>, resp: Response
    do {
        (sock, initial, _) = try app.client.hijack("/exec/\(path(execID))/start", body: .object(start))
    } catch {
        writeErr(errorText(error) + "\n")
        let s = runStatus(error)
        return s == 125 ? 1 : s
    }
    let term = RawTerminal(fd: 0)
    if tty && stdin { term.makeRaw() }
    defer { term.restore() }
    var o = PumpOptions()
    o.stdin = stdin
    o.tty = tty
    o.multiplexed = !tty
    o.detachKeys = try parseDetachKeys(detachKeys)
    if tty && isTerminal(1) {
        resize(app, "exec", execID)
        o.onResize = { resize(app, "exec", execID) }
        Signals.install([SIGWINCH])
    }
    if try pump(sock, initial: initial, o) == .detached { return 0 }
    term.restore()
    // the exit code may land a moment after the stream closes
    for _ in 0..<100 {
        let j = try app.client.getJSON("/exec/\(path(execID))/json")
        if j["Running"]?.bool != true, let code = j["ExitCode"]?.int {
            return Int32(truncatingIfNeeded: code)
        }
        usleep(10_000)
    }
    return 0
}
