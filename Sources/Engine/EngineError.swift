import Glibc
import Images

/// The one error type of the engine. `code` decides the HTTP status a front door answers with.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable {
        case notFound, conflict, invalidArgument, notModified, unavailable, system
        /// The container's command could not be started (Docker: 126 not executable, 127 not found).
        case cannotExec(Int32)
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
    public var description: String { message }

    static func system(_ what: String, errno e: Int32 = errno) -> EngineError {
        EngineError(.system, "\(what): \(String(cString: strerror(e)))")
    }
    static func noSuchContainer(_ ref: String) -> EngineError {
        EngineError(.notFound, "No such container: \(ref)")
    }
}

extension EngineError {
    /// Image errors keep their meaning across the boundary.
    init(_ e: ImagesError) {
        switch e.code {
        case .notFound: self.init(.notFound, e.message)
        case .conflict: self.init(.conflict, e.message)
        case .invalidArgument, .unsupported, .invalidContent: self.init(.invalidArgument, e.message)
        default: self.init(.system, e.message)
        }
    }
    public static func wrap(_ e: any Error) -> EngineError {
        if let e = e as? EngineError { return e }
        if let e = e as? ImagesError { return EngineError(e) }
        return EngineError(.system, String(describing: e))
    }
}
