// The LinuxContainer module's one error type: "operation object: cause", with the errno kept apart.
#if canImport(Glibc)
import Glibc
#endif

public struct LinuxError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable { case invalidArgument, notFound, alreadyExists, permissionDenied, unsupported, system }
    public var code: Code
    public var message: String
    public var errno: Int32?

    public init(_ code: Code, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// An error from a syscall: the message gets strerror(errno) appended.
    public static func sys(_ op: String, errno e: Int32) -> LinuxError {
        let code: Code
        switch e {
        case ENOENT: code = .notFound
        case EEXIST: code = .alreadyExists
        case EPERM, EACCES: code = .permissionDenied
        case ENOSYS, EOPNOTSUPP: code = .unsupported
        default: code = .system
        }
        return LinuxError(code, "\(op): \(errnoString(e))", errno: e)
    }

    public var description: String { message }
}

/// strerror, lowercased at the start like Go's syscall errors ("no such file or directory").
public func errnoString(_ e: Int32) -> String {
    guard let s = strerror(e) else { return "errno \(e)" }
    var text = String(cString: s)
    if let f = text.first, f.isUppercase, !(text.dropFirst().first?.isUppercase ?? false) {
        text = f.lowercased() + text.dropFirst()
    }
    return text
}
