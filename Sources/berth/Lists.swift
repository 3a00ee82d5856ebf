// Listings and inspect: docker's formatter contexts (the fields `--format` sees, as strings), its table
// headers and tabwriter layout, and `inspect`'s indented JSON or per-object template.

/// docker's --format resolution: "" / "table" → the default table, "json" → {{json .}}, "table TEMPLATE", else a
/// template; `\t` and `\n` in the text become tab and newline as docker's formatter does.
func renderList(_ rows: [JSON], format: String?, defaultTable: String, headers: [String: String]) throws -> String {
    var f = format ?? ""
    if f.isEmpty || f == "table" { f = "table " + defaultTable }
    if f == "json" { f = "{{json .}}" }
    let table = f.hasPrefix("table")
    if table { f = String(f.dropFirst(5)) }
    f = f.trimmed.replacingAll("\\t", with: "\t").replacingAll("\\n", with: "\n")
    let t = try Template(f)
    var out = ""
    if table {
        out += try t.execute(.object(headers.map { ($0.key, JSON.string($0.value)) })) + "\n"
    }
    for r in rows { out += try t.execute(r) + "\n" }
    return table ? tabwrite(out) : out
}

func filtersJSON(_ filters: [String], extra: [(String, String)] = []) throws -> String? {
    var m: [(String, [String])] = []
    for f in filters.map({ ($0, true) }) + extra.map({ ("\($0.0)=\($0.1)", true) }) {
        guard let eq = f.0.firstIndex(of: "=") else { throw CLIError("bad format of filter (expected name=value)") }
        let k = String(f.0[..<eq]).trimmed.lowercased()
        let v = String(f.0[f.0.index(after: eq)...]).trimmed
        if let i = m.firstIndex(where: { $0.0 == k }) { m[i].1.append(v) } else { m.append((k, [v])) }
    }
    if m.isEmpty { return nil }
    return JSON.object(m.map { ($0.0, .array($0.1.map { .string($0) })) }).serialized()
}

// MARK: - ps

let psHeaders: [String: String] = [
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
    "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS",
    "Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
]

func displayPorts(_ ports: [JSON]) -> String {
    var items: [String] = []
    for p in ports {
        let priv = p["PrivatePort"]?.int ?? 0
        let type = p["Type"]?.string ?? "tcp"
        if let pub = p["PublicPort"]?.int, pub != 0 {
            let ip = p["IP"]?.string ?? ""
            let host = ip.contains(":") ? "[\(ip)]" : ip
            items.append("\(host):\(pub)->\(priv)/\(type)")
        } else {
            items.append("\(priv)/\(type)")
        }
    }
    var seen = Set<String>()
    return items.filter { seen.insert($0).inserted }.joined(separator: ", ")
}

func containerContext(_ c: JSON, trunc: Bool) -> JSON {
    let id = c["Id"]?.string ?? ""
    var names = (c["Names"]?.array ?? []).compactMap(\.string).map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }
    if trunc, let single = names.first(where: { !$0.contains("/") }) { names = [single] }
    var image = c["Image"]?.string ?? ""
    if image.isEmpty { image = "<no image>" } else if trunc {
        if image.hasPrefix("sha256:") { image = shortID(image) } else if let at = image.firstIndex(of: "@"),
            image[..<at].contains(":") { image = String(image[..<at]) }
    }
    let command = c["Command"]?.string ?? ""
    let created = Double(c["Created"]?.int64 ?? 0)
    var size = ""
    if let rw = c["SizeRw"]?.int64 {
        size = humanSize(Double(rw), precision: 3)
        if let root = c["SizeRootFs"]?.int64, root > 0 { size += " (virtual \(humanSize(Double(root), precision: 3)))" }
    }
    let labels = c["Labels"]?.object ?? []
    let mounts = (c["Mounts"]?.array ?? []).map { m -> String in
        let name = m["Name"]?.string ?? ""
        return ellipsis(name.isEmpty ? (m["Source"]?.string ?? "") : name, trunc ? 15 : 1 << 30)
    }
    let networks = (c["NetworkSettings"]?["Networks"]?.object ?? []).map(\.0).sorted()
    let volumes = (c["Mounts"]?.array ?? []).filter { $0["Type"]?.string == "volume" }.count
    return .object([
        ("Command", .string(JSON.quoted(trunc ? ellipsis(command, 20) : command).replacingAll("\\u003c", with: "<")
            .replacingAll("\\u003e", with: ">").replacingAll("\\u0026", with: "&"))),
        ("CreatedAt", .string(created > 0 ? goTimeString(created) : "")),
        ("ID", .string(trunc ? shortID(id) : id)),
        ("Image", .string(image)),
        ("Labels", .string(labels.map { "\($0.0)=\($0.1.text ?? "")" }.sorted().joined(separator: ","))),
        ("LocalVolumes", .string(String(volumes))),
        ("Mounts", .string(mounts.joined(separator: ","))),
        ("Names", .string(names.joined(separator: ","))),
        ("Networks", .string(networks.joined(separator: ","))),
        ("Ports", .string(displayPorts(c["Ports"]?.array ?? []))),
        ("RunningFor", .string(created > 0 ? humanDuration(now() - created) + " ago" : "")),
        ("Size", .string(size.isEmpty ? "0B" : size)),
        ("State", .string(c["State"]?.string ?? "")),
        ("Status", .string(c["Status"]?.string ?? "")),
        ("__labels", .object(labels)),
    ])
}

func cmdPs(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("ps", args)
    try requireArgs("ps", p, min: 0, max: 0)
    var last = try p.int("last") ?? -1
    if p.bool("latest") { last = 1 }
    let all = p.bool("all") || last > 0
    let format = p.string("format")
    let wantSize = p.bool("size") || (format?.contains(".Size") ?? false)
    let q = query([("all", all ? "1" : nil), ("limit", last > 0 ? String(last) : nil), ("size", wantSize ? "1" : nil),
                   ("filters", try filtersJSON(p.strings("filter")))])
    let list = try app.client.getJSON("/containers/json" + q).array ?? []
    let trunc = !p.bool("no-trunc")
    if p.bool("quiet") && (format == nil || format!.isEmpty) {
        for c in list { writeOut((trunc ? shortID(c["Id"]?.string ?? "") : c["Id"]?.string ?? "") + "\n") }
        return 0
    }
    var def = "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    if p.bool("size") { def += "\t{{.Size}}" }
    writeOut(try renderList(list.map { containerContext($0, trunc: trunc) }, format: format, defaultTable: def,
                            headers: psHeaders))
    return 0
}

// MARK: - images

let imageHeaders: [String: String] = [
    "Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST", "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
]

func imageRows(_ img: JSON, trunc: Bool, digests: Bool) -> [JSON] {
    let id = img["Id"]?.string ?? ""
    let created = Double(img["Created"]?.int64 ?? 0)
    let size = Double(img["Size"]?.int64 ?? 0)
    func row(_ repo: String, _ tag: String, _ digest: String) -> JSON {
        let containers = img["Containers"]?.int ?? -1
        let shared = img["SharedSize"]?.int64 ?? -1
        return .object([
            ("Containers", .string(containers < 0 ? "N/A" : String(containers))),
            ("CreatedAt", .string(created > 0 ? goTimeString(created) : "")),
            ("CreatedSince", .string(created > 0 ? humanDuration(now() - created) + " ago" : "N/A")),
            ("Digest", .string(digest)),
            ("ID", .string(trunc ? shortID(id) : id)),
            ("Repository", .string(repo)),
            ("SharedSize", .string(shared < 0 ? "N/A" : humanSize(Double(shared), precision: 3))),
            ("Size", .string(humanSize(size, precision: 3))),
            ("Tag", .string(tag)),
            ("UniqueSize", .string(shared < 0 ? "N/A" : humanSize(size - Double(shared), precision: 3))),
            ("VirtualSize", .string(humanSize(size, precision: 3))),
            ("__labels", img["Labels"] ?? .object([])),
        ])
    }
    let tags = (img["RepoTags"]?.array ?? []).compactMap(\.string).filter { $0 != "<none>:<none>" }
    let repoDigests = (img["RepoDigests"]?.array ?? []).compactMap(\.string).filter { $0 != "<none>@<none>" }
    var rows: [JSON] = []
    for t in tags {
        guard let colon = t.lastIndex(of: ":") else { continue }
        let repo = String(t[..<colon])
        let tag = String(t[t.index(after: colon)...])
        let digest = repoDigests.first { $0.hasPrefix(repo + "@") }.map { String($0.dropFirst(repo.count + 1)) } ?? "<none>"
        rows.append(row(repo, tag, digest))
    }
    if rows.isEmpty {
        if let d = repoDigests.first, let at = d.firstIndex(of: "@") {
            rows.append(row(String(d[..<at]), "<none>", String(d[d.index(after: at)...])))
        } else {
            rows.append(row("<none>", "<none>", "<none>"))
        }
    }
    return rows
}

func cmdImages(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("images", args)
    try requireArgs("images", p, min: 0, max: 1)
    var extra: [(String, String)] = []
    if let r = p.positionals.first { extra.append(("reference", r)) }
    let q = query([("all", p.bool("all") ? "1" : nil), ("filters", try filtersJSON(p.strings("filter"), extra: extra)),
                   ("digests", p.bool("digests") ? "1" : nil)])
    let list = try app.client.getJSON("/images/json" + q).array ?? []
    let trunc = !p.bool("no-trunc")
    if p.bool("quiet") {
        var seen = Set<String>()
        for img in list {
            let id = img["Id"]?.string ?? ""
            let shown = trunc ? shortID(id) : id
            if seen.insert(shown).inserted { writeOut(shown + "\n") }
        }
        return 0
    }
    var rows: [JSON] = []
    for img in list { rows += imageRows(img, trunc: trunc, digests: p.bool("digests")) }
    var def = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    if p.bool("digests") { def = "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}" }
    writeOut(try renderList(rows, format: p.string("format"), defaultTable: def, headers: imageHeaders))
    return 0
}

// MARK: - history

func cmdHistory(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("history", args)
    try requireArgs("history", p, min: 1, max: 1)
    let list = try app.client.getJSON("/images/\(path(p.positionals[0]))/history"
        + query([("platform", p.string("platform"))])).array ?? []
    let trunc = !p.bool("no-trunc")
    let human = p.string("human") != "false"
    if p.bool("quiet") {
        for h in list { writeOut((trunc ? shortID(h["Id"]?.string ?? "") : h["Id"]?.string ?? "") + "\n") }
        return 0
    }
    let rows: [JSON] = list.map { h in
        let id = h["Id"]?.string ?? "<missing>"
        let created = Double(h["Created"]?.int64 ?? 0)
        var by = (h["CreatedBy"]?.string ?? "").replacingAll("\t", with: " ")
        if trunc { by = ellipsis(by, 45) }
        let size = Double(h["Size"]?.int64 ?? 0)
        return .object([
            ("Comment", .string(h["Comment"]?.string ?? "")),
            ("CreatedAt", .string(human ? goTimeString(created) : rfcTime(created))),
            ("CreatedBy", .string(by)),
            ("CreatedSince", .string(human ? humanDuration(now() - created) + " ago" : rfcTime(created))),
            ("ID", .string(id == "<missing>" ? id : (trunc ? shortID(id) : id))),
            ("Size", .string(human ? humanSize(size, precision: 3) : String(Int64(size)))),
        ])
    }
    writeOut(try renderList(rows, format: p.string("format"),
                            defaultTable: "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
                            headers: ["ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                                      "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"]))
    return 0
}

func rfcTime(_ t: Double) -> String {
    var z = localTime(t, "%z")
    if z == "+0000" { z = "Z" } else if z.count == 5 { z = String(z.prefix(3)) + ":" + String(z.suffix(2)) }
    return localTime(t, "%Y-%m-%dT%H:%M:%S") + z
}

// MARK: - inspect

func cmdInspect(_ app: App, _ args: [String], verb: String = "inspect", type forced: String? = nil) throws -> Int32 {
    let p = try parseFlags(verb, args)
    try requireArgs(verb, p, min: 1)
    let type = forced ?? p.string("type")
    let size = p.bool("size")
    var results: [JSON] = []
    var failed = false
    for name in p.positionals {
        var found: JSON?
        var lastError: Error?
        let kinds: [String]
        switch type {
        case nil, "": kinds = ["container", "image", "network", "volume"]
        case let t?:
            guard ["container", "image", "network", "volume"].contains(t) else {
                throw CLIError("\"\(t)\" is not a valid value for --type")
            }
            kinds = [t]
        }
        for k in kinds {
            let url: String
            switch k {
            case "container": url = "/containers/\(path(name))/json" + (size ? "?size=1" : "")
            case "image": url = "/images/\(path(name))/json"
            case "network": url = "/networks/\(path(name))"
            default: url = "/volumes/\(path(name))"
            }
            var r = try app.client.send("GET", url)
            if r.status == 200 { found = try r.json(); break }
            let e = r.error()
            if r.status != 404 { lastError = e; break }
            lastError = e
        }
        if let found { results.append(found); continue }
        failed = true
        if type == nil || type == "" {
            if let e = lastError as? DaemonError, e.status != 404 { writeErr(errorText(e) + "\n") } else {
                writeErr("Error: No such object: \(name)\n")
            }
        } else if let e = lastError as? DaemonError {
            writeErr((e.status == 404 ? "Error: " + e.message : errorText(e)) + "\n")
        }
    }
    if let f = p.string("format"), !f.isEmpty {
        let t = try Template(f == "json" ? "{{json .}}" : f)
        var out = ""
        for r in results { out += try t.execute(r) + "\n" }
        writeOut(out)
    } else {
        writeOut(JSON.array(results).serialized(indent: "    ") + "\n")
    }
    return failed ? 1 : 0
}
