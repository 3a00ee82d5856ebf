// A small JSON value with ordered objects: the daemon's key order survives into `inspect` output, and numbers
// keep their text (sizes and ids print as the daemon wrote them). No Foundation: the CLI must start fast.

enum JSON: Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y || Double(x) == Double(y)
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    subscript(key: String) -> JSON? {
        if case .object(let kv) = self { return kv.first { $0.0 == key }?.1 }
        return nil
    }

    subscript(index: Int) -> JSON? {
        if case .array(let a) = self, index >= 0, index < a.count { return a[index] }
        return nil
    }

    var string: String? { if case .string(let s) = self { return s }; return nil }
    var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    var object: [(String, JSON)]? { if case .object(let o) = self { return o }; return nil }
    var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    var isNull: Bool { if case .null = self { return true }; return false }
    var int: Int? {
        if case .number(let n) = self { return Int(n) ?? Double(n).flatMap { $0.isFinite ? Int($0) : nil } }
        return nil
    }
    var int64: Int64? {
        if case .number(let n) = self { return Int64(n) ?? Double(n).flatMap { $0.isFinite ? Int64($0) : nil } }
        return nil
    }
    var double: Double? { if case .number(let n) = self { return Double(n) }; return nil }
    /// String values as they are, numbers and bools as text.
    var text: String? {
        switch self {
        case .string(let s): return s
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        default: return nil
        }
    }

    static func int(_ v: Int) -> JSON { .number(String(v)) }
    static func int64(_ v: Int64) -> JSON { .number(String(v)) }

    /// Sets (or appends) a key of an object.
    mutating func set(_ key: String, _ value: JSON) {
        guard case .object(var kv) = self else { return }
        if let i = kv.firstIndex(where: { $0.0 == key }) { kv[i].1 = value } else { kv.append((key, value)) }
        self = .object(kv)
    }
}

// MARK: - Parse

struct JSONError: Error, CustomStringConvertible {
    var description: String
}

extension JSON {
    static func parse(_ text: String) throws -> JSON { try parse(Array(text.utf8)) }

    static func parse(_ bytes: [UInt8]) throws -> JSON {
        var p = JSONParser(bytes: bytes)
        p.skipSpace()
        let v = try p.value()
        p.skipSpace()
        if p.pos != bytes.count { throw JSONError(description: "invalid JSON: trailing data at offset \(p.pos)") }
        return v
    }
}

struct JSONParser {
    let bytes: [UInt8]
    var pos = 0
    var depth = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func skipSpace() {
        while pos < bytes.count, bytes[pos] == 0x20 || bytes[pos] == 0x0a || bytes[pos] == 0x0d || bytes[pos] == 0x09 {
            pos += 1
        }
    }

    func fail(_ what: String) -> JSONError { JSONError(description: "invalid JSON: \(what) at offset \(pos)") }

    mutating func value() throws -> JSON {
        guard pos < bytes.count else { throw fail("unexpected end") }
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            depth += 1
            if depth > 512 { throw fail("nested too deeply") }
            defer { depth -= 1 }
            pos += 1
            var kv: [(String, JSON)] = []
            skipSpace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(kv) }
            while true {
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let k = try string()
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                pos += 1
                skipSpace()
                kv.append((k, try value()))
                skipSpace()
                guard pos < bytes.count else { throw fail("unexpected end") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(kv) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            depth += 1
            if depth > 512 { throw fail("nested too deeply") }
            defer { depth -= 1 }
            pos += 1
            var a: [JSON] = []
            skipSpace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(a) }
            while true {
                skipSpace()
                a.append(try value())
                skipSpace()
                guard pos < bytes.count else { throw fail("unexpected end") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(a) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true"); return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false"); return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null"); return .null
        default:
            let start = pos
            while pos < bytes.count {
                let c = bytes[pos]
                if (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                    || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { pos += 1 } else { break }
            }
            if start == pos { throw fail("unexpected character") }
            return .number(String(decoding: bytes[start..<pos], as: UTF8.self))
        }
    }

    mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard pos + w.count <= bytes.count, Array(bytes[pos..<pos + w.count]) == w else { throw fail("bad literal") }
        pos += w.count
    }

    mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            pos += 1
            v <<= 4
            switch c {
            case 0x30...0x39: v |= UInt32(c - 0x30)
            case 0x41...0x46: v |= UInt32(c - 0x41 + 10)
            case 0x61...0x66: v |= UInt32(c - 0x61 + 10)
            default: throw fail("bad \\u escape")
            }
        }
        return v
    }

    mutating func string() throws -> String {
        pos += 1  // opening quote
        var out: [UInt8] = []
        let start = pos
        // fast path: no escapes
        while pos < bytes.count, bytes[pos] != UInt8(ascii: "\""), bytes[pos] != UInt8(ascii: "\\") { pos += 1 }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") {
            let s = String(decoding: bytes[start..<pos], as: UTF8.self)
            pos += 1
            return s
        }
        out.append(contentsOf: bytes[start..<pos])
        while pos < bytes.count {
            let c = bytes[pos]
            pos += 1
            if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard pos < bytes.count else { break }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar < 0xDC00, pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"),
                   bytes[pos + 1] == UInt8(ascii: "u") {
                    pos += 2
                    let low = try hex4()
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low &- 0xDC00)
                }
                let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: out.append(e)
            }
        }
        throw fail("unterminated string")
    }
}

/// Splits a byte stream into top-level JSON values (the daemon's progress, events and stats streams are
/// concatenated values, usually one a line).
struct JSONStreamSplitter {
    private var buf: [UInt8] = []
    private var scan = 0
    private var depth = 0
    private var inString = false
    private var escaped = false
    private var started = false
    private var start = 0

    mutating func feed(_ bytes: ArraySlice<UInt8>) { buf.append(contentsOf: bytes) }

    /// The next complete value, if one has arrived.
    mutating func next() throws -> JSON? {
        while scan < buf.count {
            let c = buf[scan]
            if !started {
                if c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09 { scan += 1; start = scan; continue }
                started = true
                start = scan
            }
            scan += 1
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
                if depth == 0 && !inString { return try emit() }
                continue
            }
            switch c {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 { return try emit() }
            default:
                if depth == 0 {
                    // a bare scalar ends at whitespace
                    if scan < buf.count, [0x20, 0x0a, 0x0d, 0x09].contains(buf[scan]) { return try emit() }
                }
            }
        }
        return nil
    }

    /// What is left at the end of the stream (a bare scalar without a trailing newline).
    mutating func finish() throws -> JSON? {
        guard started else { return nil }
        let rest = Array(buf[start..<buf.count])
        if rest.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return nil }
        buf = []; scan = 0; start = 0; started = false
        return try JSON.parse(rest)
    }

    private mutating func emit() throws -> JSON {
        let v = try JSON.parse(Array(buf[start..<scan]))
        buf.removeFirst(scan)
        scan = 0
        start = 0
        started = false
        return v
    }
}

// MARK: - Serialize

extension JSON {
    /// Go's encoding/json output: compact, or indented as `json.Indent` does; `<`, `>` and `&` escaped as Go does.
    func serialized(indent: String? = nil, sortKeys: Bool = false) -> String {
        var out = ""
        write(to: &out, indent: indent, level: 0, sortKeys: sortKeys)
        return out
    }

    private func write(to out: inout String, indent: String?, level: Int, sortKeys: Bool) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): JSON.quote(s, into: &out)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                if let indent { out += "\n" + String(repeating: indent, count: level + 1) }
                v.write(to: &out, indent: indent, level: level + 1, sortKeys: sortKeys)
            }
            if let indent { out += "\n" + String(repeating: indent, count: level) }
            out += "]"
        case .object(let kv0):
            if kv0.isEmpty { out += "{}"; return }
            let kv = sortKeys ? kv0.sorted { $0.0 < $1.0 } : kv0
            out += "{"
            for (i, (k, v)) in kv.enumerated() {
                if i > 0 { out += "," }
                if let indent { out += "\n" + String(repeating: indent, count: level + 1) }
                JSON.quote(k, into: &out)
                out += indent == nil ? ":" : ": "
                v.write(to: &out, indent: indent, level: level + 1, sortKeys: sortKeys)
            }
            if let indent { out += "\n" + String(repeating: indent, count: level) }
            out += "}"
        }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    static func quoted(_ s: String) -> String {
        var o = ""
        quote(s, into: &o)
        return o
    }
}
