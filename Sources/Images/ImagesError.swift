// The Images module's one error type. Messages say what failed and why, in words a user can act on
// ("pull docker.io/library/busybox:latest: layer sha256:ab12…: digest mismatch: got sha256:…").
import OCI

public struct ImagesError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Equatable {
        /// no such image, blob, snapshot, tag or manifest (locally or in the registry): 404 in the Docker API
        case notFound
        /// the name is taken, the object is in use, the snapshot is active: 409
        case conflict
        /// a reference, platform, config file or argument that is not valid: 400
        case invalidArgument
        /// a registry asked for credentials we lack or refused the ones we sent: 401/403
        case unauthorized
        /// content that is not what it claims: digest or size mismatch, malformed manifest, hostile layer entry
        case invalidContent
        /// a format or media type berth does not handle (schema1, foreign layers without URLs)
        case unsupported
        /// the registry or the network failed (after the retries)
        case registry
        /// the host refused: a syscall failed, the disk is full
        case system
        /// the operation was cancelled
        case cancelled
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// the same error with "context: " in front
    public func prefixed(_ context: String) -> ImagesError { ImagesError(code, context + ": " + message) }

    static func system(_ what: String, errno e: Int32) -> ImagesError {
        ImagesError(.system, "\(what): \(errnoString(e))")
    }
}

func errnoString(_ e: Int32) -> String {
    strerror(e).map { String(cString: $0) } ?? "errno \(e)"
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension ImagesError {
    /// Wraps an error of another module (OCI's, Foundation's decoding errors) with context.
    static func wrap(_ error: any Error, _ context: String, as code: Code = .invalidContent) -> ImagesError {
        if let e = error as? ImagesError { return e.prefixed(context) }
        if let e = error as? OCIError { return ImagesError(code, context + ": " + e.message) }
        if let e = error as? DecodingError { return ImagesError(code, context + ": " + describe(e)) }
        return ImagesError(code, context + ": \(error)")
    }
}

func describe(_ e: DecodingError) -> String {
    func path(_ c: [any CodingKey]) -> String {
        c.isEmpty ? "" : c.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined() + ": "
    }
    switch e {
    case .dataCorrupted(let c): return path(c.codingPath) + (c.underlyingError.map { "\($0)" } ?? c.debugDescription)
    case .keyNotFound(let k, let c): return path(c.codingPath) + "missing field \"\(k.stringValue)\""
    case .typeMismatch(let t, let c): return path(c.codingPath) + "expected \(t)"
    case .valueNotFound(let t, let c): return path(c.codingPath) + "expected \(t), found null"
    @unknown default: return "\(e)"
    }
}
