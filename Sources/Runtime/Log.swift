// runc's log contract: --log FILE (default stderr), --log-format text|json; a failure's last line
// is level=error with the message (containerd reads it from the JSON log).
#if canImport(Glibc)
import Glibc
#endif
import OCI

public enum Log {
    public enum Format: Sendable { case text, json }
    nonisolated(unsafe) static var fd: Int32 = 2
    nonisolated(unsafe) static var format: Format = .text
    nonisolated(unsafe) public static var debugEnabled = false

    public static func configure(path: String?, format f: Format, debug: Bool) -> String? {
        format = f
        debugEnabled = debug
        if let p = path, !p.isEmpty {
            let l = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            if l < 0 { return "open log file \(p): \(String(cString: strerror(errno)))" }
            fd = l
        }
        return nil
    }

    public static var toStderr: Bool { fd == 2 }

    static func write(_ level: String, _ msg: String) {
        let line: String
        switch format {
        case .json:
            line = JSON.object([("level", .string(level)), ("msg", .string(msg)), ("time", .string(Clock.rfc3339()))]).serialized() + "\n"
        case .text:
            var quoted = "\""
            for c in msg.unicodeScalars {
                switch c {
                case "\"": quoted += "\\\""
                case "\\": quoted += "\\\\"
                case "\n": quoted += "\\n"
                default: quoted.unicodeScalars.append(c)
                }
            }
            quoted += "\""
            line = "time=\"\(Clock.rfc3339(nanos: false))\" level=\(level) msg=\(quoted)\n"
        }
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    public static func error(_ msg: String) { write("error", msg) }
    public static func warn(_ msg: String) { write("warning", msg) }
    public static func debug(_ msg: String) { if debugEnabled { write("debug", msg) } }
}
