// What the docker CLI gets from go-units, text/tabwriter, time and strings: sizes, durations, times, columns.
import Glibc

extension String {
    /// Go's strings.Split (empty separator not handled: callers don't pass one).
    func components(separatedBy sep: String) -> [String] {
        if sep.isEmpty { return [self] }
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.find(sep) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }

    func replacingAll(_ a: String, with b: String) -> String { components(separatedBy: a).joined(separator: b) }

    func hasPrefixThenDrop(_ p: String) -> String? { hasPrefix(p) ? String(dropFirst(p.count)) : nil }
}

extension Substring {
    func find(_ needle: String) -> Range<Substring.Index>? {
        let n = Array(needle.utf8)
        guard !n.isEmpty else { return nil }
        let u = self.utf8
        var i = u.startIndex
        while i != u.endIndex {
            var j = i
            var k = 0
            while k < n.count, j != u.endIndex, u[j] == n[k] { j = u.index(after: j); k += 1 }
            if k == n.count { return i..<j }
            i = u.index(after: i)
        }
        return nil
    }
}

extension String {
    func find(_ needle: String) -> Range<String.Index>? { Substring(self).find(needle) }
}

/// C's printf for one double (Go's %g agrees with C's for what we print).
func cFormat(_ format: String, _ v: Double) -> String {
    var buf = [CChar](repeating: 0, count: 64)
    _ = withVaList([v]) { vsnprintf(&buf, buf.count, format, $0) }
    return String(cString: buf)
}

/// go-units HumanSizeWithPrecision: decimal units.
func humanSize(_ size: Double, precision: Int = 4) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    var s = size
    var i = 0
    while s >= 1000 && i < units.count - 1 { s /= 1000; i += 1 }
    return cFormat("%.\(precision)g", s) + units[i]
}

/// go-units BytesSize: binary units.
func bytesSize(_ size: Double) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    var s = size
    var i = 0
    while s >= 1024 && i < units.count - 1 { s /= 1024; i += 1 }
    return cFormat("%.4g", s) + units[i]
}

/// go-units HumanDuration.
func humanDuration(_ seconds: Double) -> String {
    let s = Int(seconds)
    if s < 1 { return "Less than a second" }
    if s == 1 { return "1 second" }
    if s < 60 { return "\(s) seconds" }
    let m = Int(seconds / 60)
    if m == 1 { return "About a minute" }
    if m < 60 { return "\(m) minutes" }
    let h = Int(seconds / 3600 + 0.5)
    if h == 1 { return "About an hour" }
    if h < 48 { return "\(h) hours" }
    if h < 24 * 7 * 2 { return "\(h / 24) days" }
    if h < 24 * 30 * 2 { return "\(h / 24 / 7) weeks" }
    if h < 24 * 365 * 2 { return "\(h / 24 / 30) months" }
    return "\(Int(seconds / 3600) / 24 / 365) years"
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// RFC 3339 (with optional fraction and offset) → seconds since the epoch; nil when unparsable.
func parseRFC3339(_ s: String) -> Double? {
    let b = Array(s.utf8)
    func num(_ from: Int, _ len: Int) -> Int? {
        guard from + len <= b.count else { return nil }
        var v = 0
        for c in b[from..<from + len] {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            v = v * 10 + Int(c - 0x30)
        }
        return v
    }
    guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
          let se = num(17, 2) else { return nil }
    var i = 19
    var frac = 0.0
    if i < b.count, b[i] == UInt8(ascii: ".") {
        i += 1
        var scale = 0.1
        while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { frac += Double(b[i] - 0x30) * scale; scale /= 10; i += 1 }
    }
    var offset = 0
    if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
        guard let oh = num(i + 1, 2), let om = num(i + 4, 2) else { return nil }
        offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "-") ? -1 : 1)
    }
    var t = tm()
    t.tm_year = Int32(y - 1900)
    t.tm_mon = Int32(mo - 1)
    t.tm_mday = Int32(d)
    t.tm_hour = Int32(h)
    t.tm_min = Int32(mi)
    t.tm_sec = Int32(se)
    let secs = timegm(&t)
    return Double(secs - offset) + frac
}

/// Go's zero time (0001-01-01T00:00:00Z) and anything before 1970 read as "never".
func isZeroTime(_ s: String?) -> Bool {
    guard let s, let t = parseRFC3339(s) else { return true }
    return t <= 0
}

/// strftime in local time.
func localTime(_ seconds: Double, _ format: String) -> String {
    var t = time_t(seconds.rounded(.down))
    var parts = tm()
    localtime_r(&t, &parts)
    var buf = [CChar](repeating: 0, count: 128)
    let n = strftime(&buf, buf.count, format, &parts)
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Go's "2006-01-02 15:04:05 -0700 MST" (docker's CreatedAt).
func goTimeString(_ seconds: Double) -> String { localTime(seconds, "%Y-%m-%d %H:%M:%S %z %Z") }

/// RFC 3339 with nanoseconds, local zone, as `docker events` prints ("2006-01-02T15:04:05.000000000Z07:00").
func rfc3339NanoFixed(_ nanos: Int64) -> String {
    let secs = nanos / 1_000_000_000
    let frac = nanos % 1_000_000_000
    var base = localTime(Double(secs), "%Y-%m-%dT%H:%M:%S")
    let f = String(frac)
    base += "." + String(repeating: "0", count: 9 - f.count) + f
    var z = localTime(Double(secs), "%z")  // +0000
    if z == "+0000" { z = "Z" } else if z.count == 5 { z = String(z.prefix(3)) + ":" + String(z.suffix(2)) }
    return base + z
}

/// docker's formatter.Ellipsis: at most `width` characters, the last one "…" when cut.
func ellipsis(_ s: String, _ width: Int) -> String {
    if s.count <= width { return s }
    if width <= 0 { return "" }
    return String(s.prefix(width - 1)) + "…"
}

/// The 12-character short form of an id (sha256: prefix dropped).
func shortID(_ id: String) -> String {
    let s = id.hasPrefix("sha256:") ? String(id.dropFirst(7)) : id
    return String(s.prefix(12))
}

/// Go's text/tabwriter with docker's settings (minwidth 10, tabwidth 1, padding 3, pad ' ', no flags).
func tabwrite(_ text: String, minWidth: Int = 10, padding: Int = 3) -> String {
    var lines = text.components(separatedBy: "\n")
    let trailingNewline = lines.last == ""
    if trailingNewline { lines.removeLast() }
    let cells = lines.map { $0.components(separatedBy: "\t") }
    var widths = cells.map { [Int](repeating: 0, count: max(0, $0.count - 1)) }
    func format(_ line0: Int, _ line1: Int, _ col: Int) {
        var i = line0
        while i < line1 {
            if cells[i].count - 1 > col {
                var j = i
                var width = minWidth
                while j < line1 && cells[j].count - 1 > col {
                    width = max(width, cells[j][col].count + padding)
                    j += 1
                }
                for k in i..<j { widths[k][col] = width }
                format(i, j, col + 1)
                i = j
            } else {
                i += 1
            }
        }
    }
    format(0, cells.count, 0)
    var out = ""
    for (li, row) in cells.enumerated() {
        for (ci, cell) in row.enumerated() {
            out += cell
            if ci < row.count - 1 { out += String(repeating: " ", count: max(0, widths[li][ci] - cell.count)) }
        }
        if li < cells.count - 1 || trailingNewline { out += "\n" }
    }
    return out
}

func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

/// Reads a whole file; nil when it can't be read.
func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buf, buf.count)
        if n < 0 { if errno == EINTR { continue }; return nil }
        if n == 0 { return out }
        out.append(contentsOf: buf[0..<n])
    }
}

func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }
