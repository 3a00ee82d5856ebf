// The Runtime module's one error type; messages read like runc's so engines that parse them work.
import LinuxContainer
import OCI

public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable { case invalidArgument, notFound, alreadyExists, failedPrecondition, system }
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public init(_ e: LinuxError) {
        let code: Code
        switch e.code {
        case .invalidArgument, .unsupported: code = .invalidArgument
        case .notFound: code = .notFound
        case .alreadyExists: code = .alreadyExists
        case .permissionDenied, .system: code = .system
        }
        self.init(code, e.message)
    }

    public init(_ e: OCIError) { self.init(.invalidArgument, e.message) }

    static func notExist(_ id: String) -> RuntimeError { RuntimeError(.notFound, "container \"\(id)\" does not exist") }
}

/// Runs a LinuxContainer call and converts its error.
@inline(__always)
func linux<T>(_ body: () throws(LinuxError) -> T) throws(RuntimeError) -> T {
    do { return try body() } catch { throw RuntimeError(error) }
}
