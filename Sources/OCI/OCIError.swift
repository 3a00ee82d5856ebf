// The OCI module's single error type: bad JSON text, or JSON that is not a valid OCI document.
// Messages are lowercase "what: why" and name the JSON path of the offending field.

public struct OCIError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable {
        /// the bytes are not RFC 8259 JSON
        case invalidJSON
        /// well-formed JSON that is not a valid config/state document (wrong types, bad values, failed validation)
        case invalidConfig
    }
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// the same error with "context: " in front of its message (e.g. "config.json")
    public func prefixed(_ context: String) -> OCIError {
        OCIError(code, context + ": " + message)
    }

    static func config(_ path: String, _ why: String) -> OCIError {
        OCIError(.invalidConfig, path.isEmpty ? why : path + ": " + why)
    }
}
