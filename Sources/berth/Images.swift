// Image verbs: pull, push (with docker's JSON progress rendering), rmi, tag, save, load; registry
// credentials from docker's config.json (auths[registry].auth) for X-Registry-Auth.
import Glibc

// MARK: - base64

enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8], url: Bool = false) -> String {
        var out: [UInt8] = []
        var i = 0
        let a = url ? Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8) : alphabet
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(a[Int(b0 >> 2)])
            out.append(a[Int((b0 & 3) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? a[Int((b1 & 15) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? a[Int(b2 & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 0
        for c in s.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = c - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"), UInt8(ascii: "-"): v = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): v = 63
            case UInt8(ascii: "="), 0x0a, 0x0d: continue
            default: return nil
            }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }
}

/// X-Registry-Auth for a registry: docker's config.json `auths` entry (base64 user:pass), else `{}`.
func registryAuth(_ ref: ImageRef) -> String {
    let dir = env("DOCKER_CONFIG") ?? ((env("HOME") ?? "/root") + "/.docker")
    guard let b = readFile(dir + "/config.json"), let cfg = try? JSON.parse(b), let auths = cfg["auths"]?.object else {
        return "e30="
    }
    let keys = ref.domain == "docker.io"
        ? ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "https://index.docker.io/v1"]
        : [ref.domain, "https://" + ref.domain, "http://" + ref.domain]
    for (k, v) in auths where keys.contains(k) {
        guard let a = v["auth"]?.string, let raw = Base64.decode(a) else { continue }
        let text = String(decoding: raw, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":") else { continue }
        let j = JSON.object([("username", .string(String(text[..<colon]))),
                             ("password", .string(String(text[text.index(after: colon)...]))),
                             ("serveraddress", .string(k))])
        return Base64.encode(Array(j.serialized().utf8), url: true)
    }
    return "e30="
}

// MARK: - Progress (docker's jsonmessage.DisplayJSONMessagesStream)

struct ProgressDisplay {
    let fd: Int32
    let tty: Bool
    private var ids: [String: Int] = [:]
    private(set) var error: String?
    var lastStatus: String?

    init(fd: Int32) {
        self.fd = fd
        tty = isTerminal(fd)
    }

    private func out(_ s: String) { writeAllFD(fd, Array(s.utf8)[...]) }

    static func goDuration(_ secs: Int) -> String {
        if secs < 60 { return "\(secs)s" }
        if secs < 3600 { return "\(secs / 60)m\(secs % 60)s" }
        return "\(secs / 3600)h\((secs % 3600) / 60)m\(secs % 60)s"
    }

    static func pad8(_ s: String) -> String { s.count >= 8 ? s : String(repeating: " ", count: 8 - s.count) + s }

    func progressString(_ p: JSON) -> String {
        let current = p["current"]?.int64 ?? 0
        let total = p["total"]?.int64 ?? 0
        let units = p["units"]?.string ?? ""
        if current <= 0 && total <= 0 { return "" }
        if total <= 0 {
            return units.isEmpty ? ProgressDisplay.pad8(humanSize(Double(current))) : "\(current) \(units)"
        }
        let width = RawTerminal.size(fd)?.1 ?? 200
        var percentage = Int(Double(current) / Double(total) * 100) / 2
        if percentage > 50 { percentage = 50 }
        var bar = ""
        if width > 110 {
            bar = "[" + String(repeating: "=", count: percentage) + ">"
                + String(repeating: " ", count: max(0, 50 - percentage)) + "] "
        }
        var numbers: String
        if p["hidecounts"]?.bool == true {
            numbers = ""
        } else if units.isEmpty {
            numbers = ProgressDisplay.pad8(humanSize(Double(current))) + "/" + humanSize(Double(total))
            if current > total { numbers = ProgressDisplay.pad8(humanSize(Double(current))) }
        } else {
            numbers = "\(current)/\(total) \(units)"
        }
        var left = ""
        if let start = p["start"]?.int64, current > 0, start > 0, percentage < 50, width > 50 {
            let elapsed = now() - Double(start)
            let secs = Int(elapsed / Double(current) * Double(total - current))
            left = " " + ProgressDisplay.goDuration(secs)
        }
        return bar + numbers + left
    }

    /// One message; false after an error message.
    mutating func show(_ m: JSON) -> Bool {
        if let e = m["errorDetail"]?["message"]?.string ?? m["error"]?.string {
            error = e
            return false
        }
        if m["aux"] != nil { return true }
        let id = m["id"]?.string ?? ""
        let progress = m["progressDetail"]
        let progressText = progress.map { progressString($0) } ?? ""
        var diff = 0
        if !id.isEmpty && (progress != nil || m["progress"]?.string != nil) {
            if ids[id] == nil {
                ids[id] = ids.count
                if tty { out("\n") }
            }
            diff = ids.count - ids[id]!
            if tty && diff > 0 { out("\u{1b}[\(diff)A") }
        } else {
            ids = [:]
        }
        // Display
        var endl = ""
        let stream = m["stream"]?.string ?? ""
        var skip = false
        if tty && stream.isEmpty && progress != nil {
            out("\u{1b}[2K\r")
            endl = "\r"
        } else if progress != nil && !progressText.isEmpty {
            skip = true  // no progress bars when not a terminal
        }
        if !skip {
            var line = ""
            if !id.isEmpty { line += "\(id): " }
            if let from = m["from"]?.string, !from.isEmpty { line += "(from \(from)) " }
            let status = m["status"]?.string ?? ""
            if progress != nil && tty {
                line += "\(status) \(progressText)\(endl)"
            } else if let pm = m["progress"]?.string, !pm.isEmpty {
                line += "\(status) \(pm)\(endl)"
            } else if !stream.isEmpty {
                line += stream + endl
            } else {
                line += status + endl + "\n"
            }
            if !status.isEmpty { lastStatus = status }
            out(line)
        }
        if !id.isEmpty && tty && diff > 0 { out("\u{1b}[\(diff)B") }
        return true
    }
}

/// Renders a progress stream; the error message of the stream, if any.
func displayStream(_ r: inout Response, fd: Int32) throws -> String? {
    var d = ProgressDisplay(fd: fd)
    try r.forEachJSON { d.show($0) }
    return d.error
}

// MARK: - pull / push

/// docker pull's flow; returns the exit status (1 when the stream reported an error).
func pullImage(_ app: App, _ image: String, platform: String?, all: Bool, quiet: Bool, out: Int32) throws -> Int32 {
    let ref = ImageRef(image)
    let q = query([("fromImage", ref.name), ("tag", all && ref.tag == nil && ref.digest == nil ? nil : ref.apiTag),
                   ("platform", platform)])
    var r = try app.client.call("POST", "/images/create" + q, headers: [("X-Registry-Auth", registryAuth(ref))])
    if quiet {
        var err: String?
        try r.forEachJSON { m in
            if let e = m["errorDetail"]?["message"]?.string ?? m["error"]?.string { err = e; return false }
            return true
        }
        if let err { writeErr(err + "\n"); return 1 }
        return 0
    }
    if let e = try displayStream(&r, fd: out) {
        writeErr(e + "\n")
        return 1
    }
    return 0
}

func cmdPull(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("pull", args)
    try requireArgs("pull", p, min: 1, max: 1)
    let image = p.positionals[0]
    let all = p.bool("all-tags")
    let ref = ImageRef(image)
    if all && (ref.tag != nil || ref.digest != nil) { throw CLIError("tag can't be used with --all-tags/-a") }
    if !all && ref.tag == nil && ref.digest == nil && !p.bool("quiet") {
        writeOut("Using default tag: latest\n")
    }
    let code = try pullImage(app, image, platform: p.string("platform"), all: all, quiet: p.bool("quiet"), out: 1)
    if code == 0 {
        writeOut((all ? ref.name : ref.name + (ref.digest.map { "@" + $0 } ?? ":" + ref.apiTag)) + "\n")
    }
    return code
}

func cmdPush(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("push", args)
    try requireArgs("push", p, min: 1, max: 1)
    let ref = ImageRef(p.positionals[0])
    let all = p.bool("all-tags")
    if !all && ref.tag == nil && ref.digest == nil { writeOut("Using default tag: latest\n") }
    let q = query([("tag", all ? nil : ref.apiTag), ("platform", p.string("platform"))])
    var r = try app.client.call("POST", "/images/\(path(ref.name))/push" + q,
                                headers: [("X-Registry-Auth", registryAuth(ref))])
    if p.bool("quiet") {
        var err: String?
        try r.forEachJSON { m in
            if let e = m["errorDetail"]?["message"]?.string ?? m["error"]?.string { err = e; return false }
            return true
        }
        if let err { writeErr(err + "\n"); return 1 }
        writeOut(ref.familiarTagged + "\n")
        return 0
    }
    if let e = try displayStream(&r, fd: 1) {
        writeErr(e + "\n")
        return 1
    }
    return 0
}

// MARK: - rmi / tag / save / load

func cmdRmi(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("rmi", args)
    try requireArgs("rmi", p, min: 1)
    let q = query([("force", p.bool("force") ? "1" : nil), ("noprune", p.bool("no-prune") ? "1" : nil),
                   ("platforms", p.string("platform"))])
    return app.each(p.positionals, print: false) { n in
        let j = try JSONResponse(try app.client.call("DELETE", "/images/\(path(n))" + q))
        for item in j.array ?? [] {
            if let u = item["Untagged"]?.string { writeOut("Untagged: \(u)\n") }
            if let d = item["Deleted"]?.string { writeOut("Deleted: \(d)\n") }
        }
    }
}

func JSONResponse(_ r: Response) throws -> JSON {
    var r = r
    return try r.json()
}

func cmdTag(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("tag", args)
    try requireArgs("tag", p, min: 2, max: 2)
    let target = ImageRef(p.positionals[1])
    if target.digest != nil { throw CLIError("refusing to create a tag with a digest reference") }
    try app.client.perform("POST", "/images/\(path(p.positionals[0]))/tag"
        + query([("repo", target.name), ("tag", target.tag ?? "latest")]))
    return 0
}

func cmdSave(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("save", args)
    try requireArgs("save", p, min: 1)
    let output = p.string("output")
    if output == nil && isTerminal(1) {
        throw CLIError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    }
    var items: [(String, String?)] = p.positionals.map { ("names", $0) }
    for pl in p.strings("platform") { items.append(("platform", pl)) }
    var r = try app.client.call("GET", "/images/get" + query(items))
    var fd: Int32 = 1
    var tmp = ""
    if let output {
        tmp = output + ".berth-save-\(getpid())"
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw CLIError("failed to save image: unable to write to \(output): \(errnoText())") }
    }
    do {
        while true {
            let piece = try r.read()
            if piece.isEmpty { break }
            writeAllFD(fd, piece)
        }
    } catch {
        if output != nil { close(fd); unlink(tmp) }
        throw error
    }
    if let output {
        fsync(fd)
        close(fd)
        if rename(tmp, output) != 0 { unlink(tmp); throw CLIError("failed to save image: rename \(output): \(errnoText())") }
    }
    return 0
}

func cmdLoad(_ app: App, _ args: [String]) throws -> Int32 {
    let p = try parseFlags("load", args)
    try requireArgs("load", p, min: 0, max: 0)
    var fd: Int32 = 0
    var length: Int?
    if let input = p.string("input") {
        fd = open(input, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw CLIError("open \(input): \(errnoText().lowercased())") }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG { length = Int(st.st_size) }
    } else if isTerminal(0) {
        throw CLIError("requested load from stdin, but stdin is empty")
    }
    defer { if fd != 0 { close(fd) } }
    let quiet = p.bool("quiet") || !isTerminal(1)
    var items: [(String, String?)] = [("quiet", quiet ? "1" : "0")]
    for pl in p.strings("platform") { items.append(("platform", pl)) }
    var r = try app.client.call("POST", "/images/load" + query(items),
                                body: .fd(fd, contentType: "application/x-tar", length: length))
    if r.header("content-type")?.contains("json") ?? true {
        if let e = try displayStream(&r, fd: 1) { writeErr(e + "\n"); return 1 }
    } else {
        while true {
            let piece = try r.read()
            if piece.isEmpty { break }
            writeAllFD(1, piece)
        }
    }
    return 0
}
