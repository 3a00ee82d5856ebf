// RFC 8259 JSON parser over raw bytes: no Foundation, no regex, one pass, errors with line and column.

extension JSON {
    /// the deepest nesting of arrays and objects `parse` accepts
    public static let maxDepth = 512

    /// Parses one JSON text (RFC 8259). Whitespace around the value is allowed, anything else after it is an error.
    /// Errors have code `.invalidJSON` and read "line L column C: why" (column counts UTF-8 characters, from 1).
    public static func parse(_ bytes: [UInt8]) throws(OCIError) -> JSON {
        try bytes.withUnsafeBufferPointer { (buffer) throws(OCIError) -> JSON in try parse(buffer) }
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(OCIError) -> JSON {
        try parse(bytes.bindMemory(to: UInt8.self))
    }

    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(OCIError) -> JSON {
        var parser = JSONParser(bytes)
        return try parser.document()
    }

    public static func parse(_ text: String) throws(OCIError) -> JSON {
        try parse(Array(text.utf8))
    }
}

struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var depth = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    mutating func document() throws(OCIError) -> JSON {
        let value = try parseValue()
        skipWhitespace()
        if index < bytes.count { throw failure("unexpected \(describe(bytes[index])) after the JSON value") }
        return value
    }

    // MARK: values

    mutating func parseValue() throws(OCIError) -> JSON {
        skipWhitespace()
        guard index < bytes.count else { throw failure("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case let byte: throw failure("unexpected \(describe(byte))")
        }
    }

    mutating func parseObject() throws(OCIError) -> JSON {
        try enter()
        index += 1  // {
        var fields: [(key: String, value: JSON)] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1; depth -= 1
            return .object(fields)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw failure(fields.isEmpty ? "expected '\"' or '}'" : "expected '\"' to begin an object key")
            }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure("expected ':'") }
            index += 1
            let value = try parseValue()
            fields.append((key: key, value: value))
            skipWhitespace()
            guard index < bytes.count else { throw failure("expected ',' or '}'") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; break }
            throw failure("expected ',' or '}'")
        }
        depth -= 1
        return .object(fields)
    }

    mutating func parseArray() throws(OCIError) -> JSON {
        try enter()
        index += 1  // [
        var elements: [JSON] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1; depth -= 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw failure("expected ',' or ']'") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; break }
            throw failure("expected ',' or ']'")
        }
        depth -= 1
        return .array(elements)
    }

    mutating func enter() throws(OCIError) {
        depth += 1
        if depth > JSON.maxDepth { throw failure("nesting deeper than \(JSON.maxDepth) levels") }
    }

    mutating func literal(_ word: StaticString) throws(OCIError) {
        let start = index
        let count = word.utf8CodeUnitCount
        let text = word.utf8Start
        for k in 0..<count {
            guard index < bytes.count, bytes[index] == text[k] else {
                if index >= bytes.count { throw failure("unexpected end of input") }
                index = start
                throw failure("invalid literal (expected \(word))")
            }
            index += 1
        }
    }

    // MARK: numbers

    /// number = [ "-" ] int [ frac ] [ exp ]; returns the literal text
    mutating func parseNumber() throws(OCIError) -> String {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw failure("expected a digit") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw failure("leading zeros are not allowed in numbers") }
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure("expected a digit after '.'") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure("expected a digit in the exponent") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }

    // MARK: strings

    /// at the opening quote; leaves the index after the closing quote
    mutating func parseString() throws(OCIError) -> String {
        index += 1
        let start = index
        var high: UInt8 = 0
        // fast path: no escapes
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                if high < 0x80 { return String(decoding: raw, as: UTF8.self) }
                guard let text = String(validating: raw, as: UTF8.self) else {
                    index = start - 1
                    throw failure("invalid UTF-8 in string")
                }
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw failure("control character \(describe(byte)) in string must be escaped") }
            high |= byte
            index += 1
        }
        guard index < bytes.count else { index = start - 1; throw failure("unterminated string") }
        // slow path: copy what we have, then decode escapes
        var out: [UInt8] = []
        out.reserveCapacity(index - start + 16)
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                guard let text = String(validating: out, as: UTF8.self) else {
                    index = start - 1
                    throw failure("invalid UTF-8 in string")
                }
                return text
            }
            if byte < 0x20 { throw failure("control character \(describe(byte)) in string must be escaped") }
            if byte != UInt8(ascii: "\\") { out.append(byte); index += 1; continue }
            index += 1
            guard index < bytes.count else { break }
            switch bytes[index] {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let escapeStart = index - 1
                index += 1
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                          bytes[index + 1] == UInt8(ascii: "u") else {
                        index = escapeStart
                        throw failure("unpaired surrogate in \\u escape")
                    }
                    index += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low <= 0xDFFF else {
                        index = escapeStart
                        throw failure("unpaired surrogate in \\u escape")
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    index = escapeStart
                    throw failure("unpaired surrogate in \\u escape")
                }
                appendUTF8(scalar, to: &out)
                continue  // hex4 already moved past the digits
            default:
                index -= 1
                throw failure("invalid escape sequence")
            }
            index += 1
        }
        index = start - 1
        throw failure("unterminated string")
    }

    /// four hex digits at the index, moving past them
    mutating func hex4() throws(OCIError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard index < bytes.count else { throw failure("unexpected end of input in \\u escape") }
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("expected a hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    // MARK: helpers

    @inline(__always) mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    @inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return "'" + String(UnicodeScalar(byte)) + "'" }
        return "byte 0x" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16)
    }

    /// an error at the current index, with its 1-based line and column
    func failure(_ why: String) -> OCIError {
        var line = 1
        var column = 1
        var k = 0
        let end = min(index, bytes.count)
        while k < end {
            let byte = bytes[k]
            if byte == 0x0A { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
            k += 1
        }
        return OCIError(.invalidJSON, "line \(line) column \(column): \(why)")
    }
}

@inline(__always) func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
    switch scalar {
    case 0..<0x80:
        out.append(UInt8(scalar))
    case 0x80..<0x800:
        out.append(UInt8(0xC0 | scalar >> 6))
        out.append(UInt8(0x80 | scalar & 0x3F))
    case 0x800..<0x10000:
        out.append(UInt8(0xE0 | scalar >> 12))
        out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
        out.append(UInt8(0x80 | scalar & 0x3F))
    default:
        out.append(UInt8(0xF0 | scalar >> 18))
        out.append(UInt8(0x80 | scalar >> 12 & 0x3F))
        out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
        out.append(UInt8(0x80 | scalar & 0x3F))
    }
}
