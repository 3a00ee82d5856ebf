// System verbs: info, version, events, system df, the prunes, stats, cp, and `completion bash`.
import Glibc

// MARK: - version / info

func clientVersionJSON(_ app: App?) -> JSON {
    var un = utsname()
    uname(&un)
    let machine = withUnsafeBytes(of: &un.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let arch = machine == "x86_64" ? "amd64" : (machine == "aarch64" ? "arm64" : machine)
    return .object([
        ("Platform", .object([("Name", .string("berth"))])),
        ("Version", .string(berthVersion)),
        ("ApiVersion", .string(app?.client.apiVersion ?? "1.56")),
        ("DefaultAPIVersion", .string("1.56")),
        ("GitCommit", .string("unknown")),
        ("GoVersion", .string("swift")),
        ("Os", .string("linux")),
        ("Arch", .string(arch)),
        ("BuildTime", .string("")),
        ("Context", .string("default")),
    ])
}

func cmdVersion(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("version", args)
    try requireArgs("version", p, min: 0, max: 0)
    let client = clientVersionJSON(app)
    var server: JSON = .null
    var serverError: Error?
    do { server = try app.client.getJSON("/version") } catch { serverError = error }
    if let f = p.string("format"), !f.isEmpty {
        let t = try Template(f == "json" ? "{{json .}}" : f)
        writeOut(try t.execute(.object([("Client", client), ("Server", server)])) + "\n")
        if let serverError { writeErr(errorText(serverError) + "\n"); return 1 }
        return 0
    }
    func row(_ k: String, _ v: String, indent: String = " ", width: Int = 19) -> String {
        let head = indent + k + ":"
        return head + String(repeating: " ", count: max(1, width - head.count)) + v + "\n"
    }
    var out = "Client:\n"
    out += row("Version", client["Version"]?.string ?? "")
    out += row("API version", client["ApiVersion"]?.string ?? "")
    out += row("Git commit", "unknown")
    out += row("OS/Arch", "linux/\(client["Arch"]?.string ?? "")")
    out += row("Context", "default")
    if server != .null {
        out += "\nServer: \(server["Platform"]?["Name"]?.string ?? "berth Engine")\n"
        for comp in server["Components"]?.array ?? [] {
            out += " \(comp["Name"]?.string ?? ""):\n"
            out += row("Version", comp["Version"]?.string ?? "", indent: "  ")
            for (k, v) in comp["Details"]?.object ?? [] {
                var label = k
                switch k {
                case "ApiVersion": label = "API version"
                case "MinAPIVersion": continue
                case "GitCommit": label = "Git commit"
                case "GoVersion": label = "Go version"
                case "BuildTime": label = "Built"
                case "KernelVersion": continue
                case "Os", "Arch": continue
                default: break
                }
                var value = v.text ?? ""
                if k == "ApiVersion", let min = comp["Details"]?["MinAPIVersion"]?.string { value += " (minimum version \(min))" }
                out += row(label, value, indent: "  ")
            }
        }
        if (server["Components"]?.array ?? []).isEmpty {
            out += " Engine:\n"
            out += row("Version", server["Version"]?.string ?? "", indent: "  ")
            out += row("API version", (server["ApiVersion"]?.string ?? "")
                + (server["MinAPIVersion"]?.string.map { " (minimum version \($0))" } ?? ""), indent: "  ")
            out += row("Git commit", server["GitCommit"]?.string ?? "", indent: "  ")
            out += row("OS/Arch", "\(server["Os"]?.string ?? "")/\(server["Arch"]?.string ?? "")", indent: "  ")
            out += row("Experimental", server["Experimental"]?.text ?? "false", indent: "  ")
        }
    }
    writeOut(out)
    if let serverError { writeErr(errorText(serverError) + "\n"); return 1 }
    return 0
}

func cmdInfo(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("info", args)
    try requireArgs("info", p, min: 0, max: 0)
    let info = try app.client.getJSON("/info")
    if let f = p.string("format"), !f.isEmpty {
        var merged = info
        merged.set("ClientInfo", clientVersionJSON(app))
        let t = try Template(f == "json" ? "{{json .}}" : f)
        writeOut(try t.execute(merged) + "\n")
        return 0
    }
    func v(_ k: String) -> String { info[k]?.text ?? "" }
    var out = "Client:\n Version:    \(berthVersion)\n Context:    default\n Debug Mode: false\n\nServer:\n"
    out += " Containers: \(v("Containers"))\n  Running: \(v("ContainersRunning"))\n  Paused: \(v("ContainersPaused"))\n"
    out += "  Stopped: \(v("ContainersStopped"))\n Images: \(v("Images"))\n"
    out += " Server Version: \(v("ServerVersion"))\n Storage Driver: \(v("Driver"))\n"
    for pair in info["DriverStatus"]?.array ?? [] {
        if let a = pair.array, a.count == 2 { out += "  \(a[0].text ?? ""): \(a[1].text ?? "")\n" }
    }
    out += " Logging Driver: \(v("LoggingDriver"))\n Cgroup Driver: \(v("CgroupDriver"))\n"
    out += " Cgroup Version: \(v("CgroupVersion"))\n"
    if let rt = info["Runtimes"]?.object { out += " Runtimes: \(rt.map(\.0).joined(separator: " "))\n" }
    if !v("DefaultRuntime").isEmpty { out += " Default Runtime: \(v("DefaultRuntime"))\n" }
    if let so = info["SecurityOptions"]?.array, !so.isEmpty {
        out += " Security Options:\n"
        for o in so {
            let s = o.text ?? ""
            for part in s.split(separator: ",") {
                if part.hasPrefix("name=") { out += "  \(part.dropFirst(5))\n" } else { out += "   \(part.replacingOccurrences("=", ": "))\n" }
            }
        }
    }
    out += " Kernel Version: \(v("KernelVersion"))\n Operating System: \(v("OperatingSystem"))\n"
    out += " OSType: \(v("OSType"))\n Architecture: \(v("Architecture"))\n CPUs: \(v("NCPU"))\n"
    out += " Total Memory: \(bytesSize(Double(info["MemTotal"]?.int64 ?? 0)))\n Name: \(v("Name"))\n ID: \(v("ID"))\n"
    out += " Docker Root Dir: \(v("DockerRootDir"))\n Debug Mode: \(v("Debug").isEmpty ? "false" : v("Debug"))\n"
    out += " Experimental: \(v("ExperimentalBuild").isEmpty ? "false" : v("ExperimentalBuild"))\n"
    if let reg = info["RegistryConfig"]?["IndexConfigs"]?.object {
        let insecure = reg.filter { $0.1["Secure"]?.bool == false }.map(\.0)
        if !insecure.isEmpty {
            out += " Insecure Registries:\n"
            for r in insecure { out += "  \(r)\n" }
        }
    }
    out += " Live Restore Enabled: \(v("LiveRestoreEnabled").isEmpty ? "false" : v("LiveRestoreEnabled"))\n"
    writeOut(out)
    for w in info["Warnings"]?.array ?? [] { if let s = w.string { writeErr(s + "\n") } }
    return 0
}

extension Substring {
    func replacingOccurrences(_ a: String, _ b: String) -> String { String(self).replacingAll(a, with: b) }
}

// MARK: - events

func cmdEvents(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("events", args)
    try requireArgs("events", p, min: 0, max: 0)
    let q = query([("since", p.string("since")), ("until", p.string("until")),
                   ("filters", try filtersJSON(p.strings("filter")))])
    var r = try app.client.call("GET", "/events" + q)
    let format = p.string("format")
    let t = try format.flatMap { $0.isEmpty ? nil : try Template($0 == "json" ? "{{json .}}" : $0) }
    try r.forEachJSON { e in
        if let t {
            writeOut(try t.execute(e) + "\n")
            return true
        }
        var line = ""
        if let tn = e["timeNano"]?.int64, tn != 0 { line += rfc3339NanoFixed(tn) + " " } else if let ts = e["time"]?.int64 {
            line += rfc3339NanoFixed(ts * 1_000_000_000) + " "
        }
        line += "\(e["Type"]?.string ?? "") \(e["Action"]?.string ?? "") \(e["Actor"]?["ID"]?.string ?? "")"
        let attrs = (e["Actor"]?["Attributes"]?.object ?? []).sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1.text ?? "")" }
        if !attrs.isEmpty { line += " (" + attrs.joined(separator: ", ") + ")" }
        writeOut(line + "\n")
        return true
    }
    return 0
}

// MARK: - system df / prune

func cmdSystemDf(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("system df", args)
    try requireArgs("system df", p, min: 0, max: 0)
    let df = try app.client.getJSON("/system/df")
    func pct(_ reclaim: Int64, _ total: Int64) -> String {
        let s = humanSize(Double(reclaim))
        return total > 0 ? "\(s) (\(Int((100 * Double(reclaim) / Double(total)).rounded()))%)" : s
    }
    let images = df["Images"]?.array ?? []
    let layers = df["LayersSize"]?.int64 ?? images.reduce(0) { $0 + ($1["Size"]?.int64 ?? 0) }
    let activeImages = images.filter { ($0["Containers"]?.int ?? 0) > 0 }
    let activeSize = activeImages.reduce(Int64(0)) { $0 + ($1["Size"]?.int64 ?? 0) - max(0, $1["SharedSize"]?.int64 ?? 0) }
    let containers = df["Containers"]?.array ?? []
    let ctrSize = containers.reduce(Int64(0)) { $0 + ($1["SizeRw"]?.int64 ?? 0) }
    let ctrReclaim = containers.filter { $0["State"]?.string != "running" }.reduce(Int64(0)) { $0 + ($1["SizeRw"]?.int64 ?? 0) }
    let volumes = df["Volumes"]?.array ?? []
    let volSize = volumes.reduce(Int64(0)) { $0 + max(0, $1["UsageData"]?["Size"]?.int64 ?? 0) }
    let volActive = volumes.filter { ($0["UsageData"]?["RefCount"]?.int ?? 0) > 0 }
    let volReclaim = volumes.filter { ($0["UsageData"]?["RefCount"]?.int ?? 0) == 0 }
        .reduce(Int64(0)) { $0 + max(0, $1["UsageData"]?["Size"]?.int64 ?? 0) }
    let cache = df["BuildCache"]?.array ?? []
    let cacheSize = cache.reduce(Int64(0)) { $0 + ($1["Size"]?.int64 ?? 0) }
    let cacheReclaim = cache.filter { $0["InUse"]?.bool != true && $0["Shared"]?.bool != true }
        .reduce(Int64(0)) { $0 + ($1["Size"]?.int64 ?? 0) }
    let rows: [JSON] = [
        .object([("Type", .string("Images")), ("TotalCount", .string(String(images.count))),
                 ("Active", .string(String(activeImages.count))), ("Size", .string(humanSize(Double(layers)))),
                 ("Reclaimable", .string(pct(max(0, layers - activeSize), layers)))]),
        .object([("Type", .string("Containers")), ("TotalCount", .string(String(containers.count))),
                 ("Active", .string(String(containers.filter { $0["State"]?.string == "running" }.count))),
                 ("Size", .string(humanSize(Double(ctrSize)))), ("Reclaimable", .string(pct(ctrReclaim, ctrSize)))]),
        .object([("Type", .string("Local Volumes")), ("TotalCount", .string(String(volumes.count))),
                 ("Active", .string(String(volActive.count))), ("Size", .string(humanSize(Double(volSize)))),
                 ("Reclaimable", .string(pct(volReclaim, volSize)))]),
        .object([("Type", .string("Build Cache")), ("TotalCount", .string(String(cache.count))),
                 ("Active", .string(String(cache.filter { $0["InUse"]?.bool == true }.count))),
                 ("Size", .string(humanSize(Double(cacheSize)))), ("Reclaimable", .string(humanSize(Double(cacheReclaim))))]),
    ]
    writeOut(try renderList(rows, format: p.string("format"),
                            defaultTable: "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                            headers: ["Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                                      "Reclaimable": "RECLAIMABLE"]))
    return 0
}

func confirm(_ warning: String) -> Bool {
    writeOut(warning + "\nAre you sure you want to continue? [y/N] ")
    var line: [UInt8] = []
    var c: UInt8 = 0
    while read(0, &c, 1) == 1 {
        if c == 0x0a { break }
        line.append(c)
    }
    let a = String(decoding: line, as: UTF8.self).trimmed
    return a == "y" || a == "Y"
}

func pruneContainers(_ app: App, _ filters: [String]) throws -> (String, Int64) {
    let j = try app.client.postJSON("/containers/prune" + query([("filters", try filtersJSON(filters))]))
    let ids = (j["ContainersDeleted"]?.array ?? []).compactMap(\.string)
    let text = ids.isEmpty ? "" : "Deleted Containers:\n" + ids.map { $0 + "\n" }.joined() + "\n"
    return (text, j["SpaceReclaimed"]?.int64 ?? 0)
}

func pruneImages(_ app: App, _ filters: [String], all: Bool) throws -> (String, Int64) {
    let j = try app.client.postJSON("/images/prune" + query([("filters", try filtersJSON(filters,
        extra: [("dangling", all ? "false" : "true")]))]))
    var text = ""
    for item in j["ImagesDeleted"]?.array ?? [] {
        if let u = item["Untagged"]?.string { text += "untagged: \(u)\n" }
        if let d = item["Deleted"]?.string { text += "deleted: \(d)\n" }
    }
    if !text.isEmpty { text = "Deleted Images:\n" + text + "\n" }
    return (text, j["SpaceReclaimed"]?.int64 ?? 0)
}

func cmdContainerPrune(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("container prune", args)
    try requireArgs("container prune", p, min: 0, max: 0)
    if !p.bool("force") && !confirm("WARNING! This will remove all stopped containers.") { return 0 }
    let (text, space) = try pruneContainers(app, p.strings("filter"))
    writeOut(text + "Total reclaimed space: \(humanSize(Double(space)))\n")
    return 0
}

func cmdImagePrune(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("image prune", args)
    try requireArgs("image prune", p, min: 0, max: 0)
    let all = p.bool("all")
    let warning = all ? "WARNING! This will remove all images without at least one container associated to them."
        : "WARNING! This will remove all dangling images."
    if !p.bool("force") && !confirm(warning) { return 0 }
    let (text, space) = try pruneImages(app, p.strings("filter"), all: all)
    writeOut(text + "Total reclaimed space: \(humanSize(Double(space)))\n")
    return 0
}

func cmdSystemPrune(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("system prune", args)
    try requireArgs("system prune", p, min: 0, max: 0)
    let all = p.bool("all")
    let volumes = p.bool("volumes")
    var warning = "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n"
    if volumes { warning += "  - all anonymous volumes not used by at least one container\n" }
    warning += all ? "  - all images without at least one container associated to them\n  - all build cache\n"
        : "  - all dangling images\n  - unused build cache\n"
    if !p.bool("force") && !confirm(warning) { return 0 }
    let filters = p.strings("filter")
    var total: Int64 = 0
    var out = ""
    let (ct, cs) = try pruneContainers(app, filters)
    out += ct
    total += cs
    if let j = try? app.client.postJSON("/networks/prune" + query([("filters", try filtersJSON(filters))])) {
        let n = (j["NetworksDeleted"]?.array ?? []).compactMap(\.string)
        if !n.isEmpty { out += "Deleted Networks:\n" + n.map { $0 + "\n" }.joined() + "\n" }
    }
    if volumes, let j = try? app.client.postJSON("/volumes/prune" + query([("filters", try filtersJSON(filters))])) {
        let n = (j["VolumesDeleted"]?.array ?? []).compactMap(\.string)
        if !n.isEmpty { out += "Deleted Volumes:\n" + n.map { $0 + "\n" }.joined() + "\n" }
        total += j["SpaceReclaimed"]?.int64 ?? 0
    }
    let (it, isz) = try pruneImages(app, filters, all: all)
    out += it
    total += isz
    if let j = try? app.client.postJSON("/build/prune" + query([("all", all ? "1" : nil)])) {
        let n = (j["CachesDeleted"]?.array ?? []).compactMap(\.string)
        if !n.isEmpty { out += "Deleted build cache objects:\n" + n.map { $0 + "\n" }.joined() + "\n" }
        total += j["SpaceReclaimed"]?.int64 ?? 0
    }
    writeOut(out + "Total reclaimed space: \(humanSize(Double(total)))\n")
    return 0
}

// MARK: - stats

func statsRow(_ s: JSON, name: String, id: String, trunc: Bool) -> JSON {
    let cpu = s["cpu_stats"], pre = s["precpu_stats"]
    let cpuDelta = (cpu?["cpu_usage"]?["total_usage"]?.double ?? 0) - (pre?["cpu_usage"]?["total_usage"]?.double ?? 0)
    let sysDelta = (cpu?["system_cpu_usage"]?.double ?? 0) - (pre?["system_cpu_usage"]?.double ?? 0)
    var online = cpu?["online_cpus"]?.double ?? 0
    if online == 0 { online = Double(cpu?["cpu_usage"]?["percpu_usage"]?.array?.count ?? 1) }
    let cpuPerc = sysDelta > 0 && cpuDelta > 0 ? cpuDelta / sysDelta * online * 100 : 0
    let mem = s["memory_stats"]
    var usage = mem?["usage"]?.double ?? 0
    let stats = mem?["stats"]
    if let v = stats?["total_inactive_file"]?.double, v < usage { usage -= v } else if let v = stats?["inactive_file"]?.double,
        v < usage { usage -= v }
    let limit = mem?["limit"]?.double ?? 0
    var rx = 0.0, tx = 0.0
    for (_, n) in s["networks"]?.object ?? [] {
        rx += n["rx_bytes"]?.double ?? 0
        tx += n["tx_bytes"]?.double ?? 0
    }
    var rd = 0.0, wr = 0.0
    for e in s["blkio_stats"]?["io_service_bytes_recursive"]?.array ?? [] {
        switch (e["op"]?.string ?? "").lowercased() {
        case "read": rd += e["value"]?.double ?? 0
        case "write": wr += e["value"]?.double ?? 0
        default: break
        }
    }
    let pids = s["pids_stats"]?["current"]?.int ?? 0
    let n = name.hasPrefix("/") ? String(name.dropFirst()) : name
    return .object([
        ("BlockIO", .string(humanSize(rd, precision: 3) + " / " + humanSize(wr, precision: 3))),
        ("CPUPerc", .string(cFormat("%.2f", cpuPerc) + "%")),
        ("Container", .string(n.isEmpty ? shortID(id) : n)),
        ("ID", .string(trunc ? shortID(id) : id)),
        ("MemPerc", .string(cFormat("%.2f", limit > 0 ? usage / limit * 100 : 0) + "%")),
        ("MemUsage", .string(bytesSize(usage) + " / " + bytesSize(limit))),
        ("Name", .string(n.isEmpty ? "--" : n)),
        ("NetIO", .string(humanSize(rx, precision: 3) + " / " + humanSize(tx, precision: 3))),
        ("PIDs", .string(String(pids))),
    ])
}

let statsHeaders: [String: String] = [
    "ID": "CONTAINER ID", "Name": "NAME", "Container": "CONTAINER", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
]

func cmdStats(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("stats", args)
    let trunc = !p.bool("no-trunc")
    var names = p.positionals
    if names.isEmpty {
        let list = try app.client.getJSON("/containers/json" + (p.bool("all") ? "?all=1" : "")).array ?? []
        names = list.compactMap { $0["Id"]?.string }
    }
    let def = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
    let format = p.string("format")
    if p.bool("no-stream") {
        var rows: [JSON] = []
        var failed = false
        for n in names {
            do {
                let s = try app.client.getJSON("/containers/\(path(n))/stats?stream=0")
                rows.append(statsRow(s, name: s["name"]?.string ?? "", id: s["id"]?.string ?? n, trunc: trunc))
            } catch {
                writeErr(errorText(error) + "\n")
                failed = true
            }
        }
        writeOut(try renderList(rows, format: format, defaultTable: def, headers: statsHeaders))
        return failed ? 1 : 0
    }
    // streaming: one connection per container, redrawn as samples arrive
    var streams: [(String, Response, JSONStreamSplitter)] = []
    for n in names {
        let r = try app.client.call("GET", "/containers/\(path(n))/stats?stream=1")
        streams.append((n, r, JSONStreamSplitter()))
    }
    var latest: [String: JSON] = [:]
    let tty = isTerminal(1)
    Signals.reset([SIGINT])
    var lastDraw = 0.0
    while !streams.isEmpty {
        var fds = streams.map { pollfd(fd: $0.1.socket.fd, events: Int16(POLLIN), revents: 0) }
        let anyBuffered = streams.contains { $0.1.socket.hasBuffered }
        if !anyBuffered && poll(&fds, nfds_t(fds.count), 1000) < 0 && errno != EINTR { break }
        var ended: [Int] = []
        for i in streams.indices where fds[i].revents != 0 || streams[i].1.socket.hasBuffered {
            let piece = try streams[i].1.read()
            if piece.isEmpty { ended.append(i); continue }
            streams[i].2.feed(piece)
            while let v = try streams[i].2.next() {
                latest[streams[i].0] = statsRow(v, name: v["name"]?.string ?? "", id: v["id"]?.string ?? streams[i].0,
                                                trunc: trunc)
            }
        }
        for i in ended.reversed() { streams.remove(at: i) }
        if now() - lastDraw >= 0.5 && !latest.isEmpty {
            lastDraw = now()
            let table = try renderList(names.compactMap { latest[$0] }, format: format, defaultTable: def, headers: statsHeaders)
            writeOut((tty ? "\u{1b}[2J\u{1b}[H" : "") + table)
        }
    }
    return 0
}

// MARK: - cp

/// Runs argv with stdin or stdout connected to the returned pipe end.
func spawnPiped(_ argv: [String], childStdin: Bool) throws -> (pid_t, Int32) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw CLIError("pipe: \(errnoText())") }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, childStdin ? fds[0] : fds[1], childStdin ? 0 : 1)
    let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for a in cArgs { free(a) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, argv[0], &actions, nil, cArgs, environ)
    close(childStdin ? fds[0] : fds[1])
    if rc != 0 {
        close(childStdin ? fds[1] : fds[0])
        throw CLIError("run \(argv[0]): \(String(cString: strerror(rc)))")
    }
    return (pid, childStdin ? fds[1] : fds[0])
}

func waitChild(_ pid: pid_t) -> Int32 {
    var st: Int32 = 0
    while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
    return (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
}

func pathStat(_ r: Response) -> JSON? {
    guard let h = r.header("x-docker-container-path-stat"), let raw = Base64.decode(h) else { return nil }
    return try? JSON.parse(raw)
}

func splitContainerPath(_ s: String) -> (String, String)? {
    // "ctr:/path"; a local path with a colon must start with / or . to be read as local
    if s.hasPrefix("/") || s.hasPrefix(".") { return nil }
    guard let colon = s.firstIndex(of: ":") else { return nil }
    return (String(s[..<colon]), String(s[s.index(after: colon)...]))
}

func dirname(_ p: String) -> String {
    var s = p
    while s.count > 1 && s.hasSuffix("/") { s.removeLast() }
    guard let slash = s.lastIndex(of: "/") else { return "." }
    let d = String(s[..<slash])
    return d.isEmpty ? "/" : d
}

func basename(_ p: String) -> String {
    var s = p
    while s.count > 1 && s.hasSuffix("/") { s.removeLast() }
    guard let slash = s.lastIndex(of: "/") else { return s }
    return String(s[s.index(after: slash)...])
}

func regexEscape(_ s: String) -> String {
    var o = ""
    for c in s {
        if "\\^$.*[],&".contains(c) { o.append("\\") }
        o.append(c)
    }
    return o
}

func cmdCp(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("cp", args)
    try requireArgs("cp", p, min: 2, max: 2)
    let src = p.positionals[0], dst = p.positionals[1]
    let archive = p.bool("archive")
    let follow = p.bool("follow-link")
    let showDone = !p.bool("quiet") && isTerminal(2)
    switch (splitContainerPath(src), splitContainerPath(dst)) {
    case (nil, nil): throw CLIError("must specify at least one container source")
    case (.some, .some): throw CLIError("copying between containers is not supported")
    case let ((ctr, cpath)?, nil):
        var r = try app.client.call("GET", "/containers/\(path(ctr))/archive" + query([("path", cpath)]))
        var size: Int64 = 0
        if dst == "-" {
            while true {
                let piece = try r.read()
                if piece.isEmpty { break }
                writeAllFD(1, piece)
            }
            return 0
        }
        let stat0 = pathStat(r)
        let name = stat0?["name"]?.string ?? basename(cpath)
        var st = stat()
        let dstExists = lstat(dst, &st) == 0
        let dstIsDir = dstExists && (st.st_mode & S_IFMT) == S_IFDIR
        if !dstExists && dst.hasSuffix("/") { throw CLIError("destination directory \"\(dst)\" must exist") }
        let intoDir = dstIsDir ? dst : dirname(dst)
        // extract into a temp dir next to the destination, then move the one entry into place
        var template = Array((intoDir + "/.berth-cp-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw CLIError("mkdtemp in \(intoDir): \(errnoText())") }
        let tmp = String(cString: made)
        defer { _ = waitChild((try? spawnPiped(["rm", "-rf", tmp], childStdin: true))?.0 ?? 0) }
        var tarArgs = ["tar", "-x", "-f", "-", "-C", tmp]
        if !archive { tarArgs.append("--no-same-owner") }
        let (pid, w) = try spawnPiped(tarArgs, childStdin: true)
        while true {
            let piece = try r.read()
            if piece.isEmpty { break }
            size += Int64(piece.count)
            writeAllFD(w, piece)
        }
        close(w)
        if waitChild(pid) != 0 { throw CLIError("extracting the copy failed") }
        let target = dstIsDir ? dst + "/" + name : dst
        if rename(tmp + "/" + name, target) != 0 {
            // an existing directory: merge into it, as docker does
            let (pid2, _) = try spawnPiped(["cp", "-a", tmp + "/" + name + "/.", target + "/"], childStdin: true)
            if waitChild(pid2) != 0 { throw CLIError("copy into \(target) failed") }
        }
        if showDone { writeErr("Successfully copied \(humanSize(Double(size))) to \(dst)\n") }
        return 0
    case let (nil, (ctr, cpath)?):
        let cp = cpath.isEmpty ? "/" : cpath
        if src == "-" {
            try app.client.perform("PUT", "/containers/\(path(ctr))/archive"
                + query([("path", cp), ("noOverwriteDirNonDir", "true"), ("copyUIDGID", archive ? "true" : nil)]),
                body: .fd(0, contentType: "application/x-tar", length: nil))
            return 0
        }
        var st = stat()
        guard (follow ? stat(src, &st) : lstat(src, &st)) == 0 else {
            throw CLIError("lstat \(src): no such file or directory")
        }
        let srcIsDir = (st.st_mode & S_IFMT) == S_IFDIR
        let head = try app.client.send("HEAD", "/containers/\(path(ctr))/archive" + query([("path", cp)]))
        var targetDir: String
        var entryName = basename(src)
        if head.status == 200, let s = pathStat(head), let mode = s["mode"]?.int64, mode & (1 << 31) != 0 {
            targetDir = cp
        } else if head.status == 200 || head.status == 404 {
            if head.status == 404 && cp.hasSuffix("/") { throw CLIError("Error response from daemon: Could not find the file \(cp) in container \(ctr)") }
            if head.status == 200 && srcIsDir { throw CLIError("cannot copy directory to a file") }
            targetDir = dirname(cp)
            entryName = basename(cp)
        } else {
            var h = head
            throw h.error()
        }
        let srcBase = basename(src)
        var tarArgs = ["tar", "-c", "-f", "-", "-C", dirname(src)]
        if follow { tarArgs.append("-h") }
        if entryName != srcBase {
            tarArgs += ["--transform", "s,^\(regexEscape(srcBase)),\(regexEscape(entryName).replacingAll("\\.", with: ".")),"]
        }
        tarArgs.append(srcBase)
        let (pid, rfd) = try spawnPiped(tarArgs, childStdin: false)
        defer { close(rfd) }
        do {
            try app.client.perform("PUT", "/containers/\(path(ctr))/archive"
                + query([("path", targetDir), ("noOverwriteDirNonDir", "true"), ("copyUIDGID", archive ? "true" : nil)]),
                body: .fd(rfd, contentType: "application/x-tar", length: nil))
        } catch {
            _ = waitChild(pid)
            throw error
        }
        if waitChild(pid) != 0 { throw CLIError("tar of \(src) failed") }
        if showDone { writeErr("Successfully copied to \(dst)\n") }
        return 0
    }
}

// MARK: - completion

func cmdCompletion(_ args: [String]) throws -> Int32 {
    let p = try parseFlags("completion", args)
    guard p.positionals.first == "bash" || p.positionals.isEmpty else {
        throw CLIError("berth completion: only bash is supported")
    }
    var verbFlags = ""
    for (verb, h) in helps.sorted(by: { $0.key < $1.key }) where !verb.contains(" ") {
        let flags = h.flags.map { "--" + $0.long } + h.flags.filter { !$0.short.isEmpty }.map { "-" + $0.short }
        verbFlags += "        \(verb)) flags=\"\(flags.joined(separator: " "))\" ;;\n"
    }
    let verbs = topVerbs.joined(separator: " ")
    writeOut("""
    # bash completion for berth (generated by `berth completion bash`)
    _berth_containers() { berth ps -a --format '{{.Names}}' 2>/dev/null; }
    _berth_images() { berth images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>'; }
    _berth() {
        local cur="${COMP_WORDS[COMP_CWORD]}" verb="" i
        for ((i = 1; i < COMP_CWORD; i++)); do
            case "${COMP_WORDS[i]}" in
                -H|--host|--config|-c|--context|-l|--log-level) ((i++)) ;;
                -*) ;;
                *) verb="${COMP_WORDS[i]}"; break ;;
            esac
        done
        if [[ -z "$verb" ]]; then
            COMPREPLY=($(compgen -W "\(verbs) -H --host --help --version" -- "$cur"))
            return
        fi
        local flags=""
        case "$verb" in
    \(verbFlags)        system) COMPREPLY=($(compgen -W "df prune info events" -- "$cur")); return ;;
            container) COMPREPLY=($(compgen -W "ls ps run create start stop kill restart rm logs exec attach inspect wait top stats pause unpause rename cp prune port" -- "$cur")); return ;;
            image) COMPREPLY=($(compgen -W "ls pull push rm tag save load history inspect prune" -- "$cur")); return ;;
        esac
        if [[ "$cur" == -* ]]; then
            COMPREPLY=($(compgen -W "$flags --help" -- "$cur"))
            return
        fi
        case "$verb" in
            run|create|pull|push|rmi|tag|save|history) COMPREPLY=($(compgen -W "$(_berth_images)" -- "$cur")) ;;
            start|stop|kill|restart|rm|logs|exec|attach|inspect|wait|top|stats|pause|unpause|rename|port) COMPREPLY=($(compgen -W "$(_berth_containers)" -- "$cur")) ;;
            cp) COMPREPLY=($(compgen -f -- "$cur")) ;;
            completion) COMPREPLY=($(compgen -W "bash" -- "$cur")) ;;
        esac
    }
    complete -F _berth berth

    """)
    return 0
}
