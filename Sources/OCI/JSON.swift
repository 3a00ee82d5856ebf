// Minimal JSON value: implemented in JSON+Parse.swift / JSON+Serialize.swift (no Foundation).
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// the number's literal text, exactly as it appeared (so 64-bit integers survive)
    case number(String)
    case string(String)
    case array([JSON])
    /// keys in document order; duplicate keys: the last one wins on lookup
    case object([(key: String, value: JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }
}
