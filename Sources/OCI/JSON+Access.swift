// Convenience accessors over JSON values. Integer accessors accept only integer literals
// ("5", "-3"; not "5.0" or "5e0", as Go's encoding/json) that fit the type.

extension JSON {
    /// the value of `key` in an object (the last one when a key repeats); nil for a missing key or a non-object
    public subscript(key: String) -> JSON? {
        guard case let .object(fields) = self else { return nil }
        var k = fields.count
        while k > 0 {
            k -= 1
            if fields[k].key == key { return fields[k].value }
        }
        return nil
    }

    /// the element at `index` of an array; nil when out of range or not an array
    public subscript(index: Int) -> JSON? {
        guard case let .array(elements) = self, index >= 0, index < elements.count else { return nil }
        return elements[index]
    }

    public var isNull: Bool { if case .null = self { true } else { false } }

    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var arrayValue: [JSON]? { if case let .array(a) = self { a } else { nil } }
    public var objectValue: [(key: String, value: JSON)]? { if case let .object(o) = self { o } else { nil } }
    /// the literal text of a number
    public var numberText: String? { if case let .number(n) = self { n } else { nil } }

    public var doubleValue: Double? {
        guard case let .number(text) = self else { return nil }
        return Double(text)
    }

    public var int64Value: Int64? {
        guard case let .number(text) = self, case let .value(negative, magnitude) = IntegerLiteral(text) else { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return Int64(bitPattern: 0 &- magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    public var uint64Value: UInt64? {
        guard case let .number(text) = self, case let .value(negative, magnitude) = IntegerLiteral(text) else { return nil }
        if negative { return magnitude == 0 ? 0 : nil }
        return magnitude
    }

    public var uint32Value: UInt32? { uint64Value.flatMap { UInt32(exactly: $0) } }
    public var int32Value: Int32? { int64Value.flatMap { Int32(exactly: $0) } }
    public var intValue: Int? { int64Value.flatMap { Int(exactly: $0) } }

    // MARK: building values

    public static func number<T: BinaryInteger>(_ value: T) -> JSON { .number(String(value)) }
    /// an object from string pairs (annotations, sysctl)
    public static func stringMap(_ pairs: [(key: String, value: String)]) -> JSON {
        .object(pairs.map { (key: $0.key, value: .string($0.value)) })
    }
    public static func strings(_ values: [String]) -> JSON { .array(values.map { .string($0) }) }
}

/// An integer literal taken apart: sign and magnitude, or why it is not a usable integer.
enum IntegerLiteral: Equatable {
    case value(negative: Bool, magnitude: UInt64)
    /// a fraction or an exponent, or not a number at all
    case notInteger
    /// an integer beyond UInt64's magnitude
    case tooLarge

    init(_ text: String) {
        var negative = false
        var magnitude: UInt64 = 0
        var digits = 0
        var tooLarge = false
        for byte in text.utf8 {
            if byte == UInt8(ascii: "-") && digits == 0 && !negative { negative = true; continue }
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { self = .notInteger; return }
            digits += 1
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
            if o1 || o2 { tooLarge = true }
            magnitude = sum
        }
        if digits == 0 { self = .notInteger; return }
        self = tooLarge ? .tooLarge : .value(negative: negative, magnitude: magnitude)
    }
}
