// Typed field readers used by the init(json:) decoders. Each names the JSON path in its error; the
// path is an autoclosure so it is only built when something is wrong. `null` reads as absent.

enum Decode {
    static func fail(_ path: String, _ why: String) -> OCIError { OCIError.config(path, why) }

    static func object(_ value: JSON, _ path: @autoclosure () -> String) throws(OCIError)
        -> [(key: String, value: JSON)]
    {
        switch value {
        case let .object(fields): return fields
        case .null: return []
        default: throw fail(path(), "expected an object")
        }
    }

    static func string(_ value: JSON, _ path: @autoclosure () -> String) throws(OCIError) -> String {
        guard case let .string(s) = value else { throw fail(path(), "expected a string") }
        return s
    }

    static func optionalString(_ value: JSON, _ path: @autoclosure () -> String) throws(OCIError) -> String? {
        switch value {
        case let .string(s): return s
        case .null: return nil
        default: throw fail(path(), "expected a string")
        }
    }

    static func bool(_ value: JSON, _ path: @autoclosure () -> String) throws(OCIError) -> Bool {
        switch value {
        case let .bool(b): return b
        case .null: return false
        default: throw fail(path(), "expected a boolean")
        }
    }

    static func strings(_ value: JSON, _ path: @autoclosure () -> String) throws(OCIError) -> [String] {
        switch value {
        case .null: return []
        case let .array(elements):
            var out: [String] = []
            out.reserveCapacity(elements.count)
            for k in elements.indices {
                guard case let .string(s) = elements[k] else { throw fail(path() + "[\(k)]", "expected a string") }
                out.append(s)
            }
            return out
        default: throw fail(path(), "expected an array of strings")
        }
    }

    static func stringMap(_ value: JSON, _ path: @autoclosure () -> String) throws(OCIError)
        -> [(key: String, value: String)]
    {
        switch value {
        case .null: return []
        case let .object(fields):
            var out: [(key: String, value: String)] = []
            out.reserveCapacity(fields.count)
            for field in fields {
                guard case let .string(s) = field.value else { throw fail(path() + "." + field.key, "expected a string") }
                if let k = out.firstIndex(where: { $0.key == field.key }) { out[k].value = s } else {
                    out.append((key: field.key, value: s))
                }
            }
            return out
        default: throw fail(path(), "expected an object of strings")
        }
    }

    static func array<T>(_ value: JSON, _ path: String, _ element: (JSON, String) throws(OCIError) -> T)
        throws(OCIError) -> [T]
    {
        switch value {
        case .null: return []
        case let .array(elements):
            var out: [T] = []
            out.reserveCapacity(elements.count)
            for k in elements.indices { out.append(try element(elements[k], path + "[\(k)]")) }
            return out
        default: throw fail(path, "expected an array")
        }
    }

    static func unsigned(_ value: JSON, max: UInt64, _ path: @autoclosure () -> String) throws(OCIError) -> UInt64 {
        guard case let .number(text) = value else { throw fail(path(), "expected an unsigned integer") }
        switch IntegerLiteral(text) {
        case .notInteger: throw fail(path(), "expected an unsigned integer, got \(text)")
        case .tooLarge: throw fail(path(), "\(text) is out of range (0...\(max))")
        case let .value(negative, magnitude):
            if negative && magnitude != 0 || magnitude > max {
                throw fail(path(), "\(text) is out of range (0...\(max))")
            }
            return magnitude
        }
    }

    static func signed(_ value: JSON, min: Int64, max: Int64, _ path: @autoclosure () -> String) throws(OCIError)
        -> Int64
    {
        guard case let .number(text) = value else { throw fail(path(), "expected an integer") }
        switch IntegerLiteral(text) {
        case .notInteger: throw fail(path(), "expected an integer, got \(text)")
        case .tooLarge: throw fail(path(), "\(text) is out of range (\(min)...\(max))")
        case let .value(negative, magnitude):
            let v: Int64?
            if negative {
                v = magnitude <= UInt64(Int64.max) + 1 ? Int64(bitPattern: 0 &- magnitude) : nil
            } else {
                v = magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
            }
            guard let v, v >= min, v <= max else { throw fail(path(), "\(text) is out of range (\(min)...\(max))") }
            return v
        }
    }

    static func uint32(_ value: JSON, _ path: @autoclosure () -> String) throws(OCIError) -> UInt32 {
        UInt32(try unsigned(value, max: UInt64(UInt32.max), path()))
    }

    static func uint64(_ value: JSON, _ path: @autoclosure () -> String) throws(OCIError) -> UInt64 {
        try unsigned(value, max: UInt64.max, path())
    }

    static func int64(_ value: JSON, _ path: @autoclosure () -> String) throws(OCIError) -> Int64 {
        try signed(value, min: Int64.min, max: Int64.max, path())
    }

    static func int(_ value: JSON, _ path: @autoclosure () -> String) throws(OCIError) -> Int {
        Int(try signed(value, min: Int64(Int.min), max: Int64(Int.max), path()))
    }

    static func uint32s(_ value: JSON, _ path: @autoclosure () -> String) throws(OCIError) -> [UInt32] {
        switch value {
        case .null: return []
        case let .array(elements):
            var out: [UInt32] = []
            out.reserveCapacity(elements.count)
            for k in elements.indices { out.append(try uint32(elements[k], path() + "[\(k)]")) }
            return out
        default: throw fail(path(), "expected an array of unsigned integers")
        }
    }

    @inline(__always) static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : path + "." + key
    }
}
