// A blocking HTTP/1.1 client over a unix socket: one request per connection (Connection: close is not sent;
// each call opens its own socket, as the docker CLI's transport effectively does for hijacked and streamed
// requests), Content-Length and chunked bodies, streamed reads, and hijacking (Upgrade: tcp → raw stream).
import Glibc

struct ConnectError: Error {
    var errno: Int32
    var path: String
}

/// A daemon error: `{"message": "..."}` with a 4xx/5xx status.
struct DaemonError: Error {
    var status: Int
    var message: String
}

struct CLIError: Error {
    var message: String
    var code: Int32 = 1
    init(_ message: String, code: Int32 = 1) { self.message = message; self.code = code }
}

final class Socket {
    let fd: Int32
    private var rbuf: [UInt8] = []
    private var rpos = 0
    private(set) var eof = false

    init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    static func connect(path: String) throws(ConnectError) -> Socket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw ConnectError(errno: errno, path: path) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw ConnectError(errno: ENAMETOOLONG, path: path)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
            p[bytes.count] = 0
        }
        var rc: Int32
        repeat {
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        } while rc < 0 && errno == EINTR
        if rc < 0 {
            let e = errno
            close(fd)
            throw ConnectError(errno: e, path: path)
        }
        return Socket(fd: fd)
    }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < bytes.count {
            let n = send(fd, bytes.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError("write to daemon: \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAll($0) }
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Buffered bytes not yet consumed (after a response head, the start of a body or a raw stream).
    func takeBuffered() -> ArraySlice<UInt8> {
        let s = rbuf[rpos...]
        rbuf = []
        rpos = 0
        return s
    }

    var hasBuffered: Bool { rpos < rbuf.count }

    /// Reads more from the socket into the buffer; false at EOF.
    private func fill() throws -> Bool {
        if eof { return false }
        if rpos > 0 && rpos == rbuf.count { rbuf.removeAll(keepingCapacity: true); rpos = 0 }
        var tmp = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = tmp.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET { eof = true; return false }
                throw CLIError("read from daemon: \(String(cString: strerror(errno)))")
            }
            if n == 0 { eof = true; return false }
            rbuf.append(contentsOf: tmp[0..<n])
            return true
        }
    }

    /// One line ending in CRLF (or LF), without it.
    func readLine() throws -> String? {
        while true {
            if let i = rbuf[rpos...].firstIndex(of: 0x0a) {
                var end = i
                if end > rpos && rbuf[end - 1] == 0x0d { end -= 1 }
                let line = String(decoding: rbuf[rpos..<end], as: UTF8.self)
                rpos = i + 1
                return line
            }
            if try !fill() { return nil }
        }
    }

    /// Up to `max` bytes: buffered ones first, else one read. Empty at EOF.
    func readSome(max: Int = 65536) throws -> ArraySlice<UInt8> {
        if rpos >= rbuf.count {
            if try !fill() { return [] }
        }
        let n = min(max, rbuf.count - rpos)
        let s = rbuf[rpos..<rpos + n]
        rpos += n
        return s
    }

    func readExactly(_ count: Int) throws -> [UInt8]? {
        while rbuf.count - rpos < count {
            if try !fill() { return nil }
        }
        let s = Array(rbuf[rpos..<rpos + count])
        rpos += count
        return s
    }
}

struct Response {
    var status: Int
    var reason: String
    var headers: [(String, String)]
    let socket: Socket
    private var body: BodyReader

    init(status: Int, reason: String, headers: [(String, String)], socket: Socket, method: String) {
        self.status = status
        self.reason = reason
        self.headers = headers
        self.socket = socket
        let te = headers.first { $0.0 == "transfer-encoding" }?.1.lowercased() ?? ""
        if method == "HEAD" || status == 204 || status == 304 || (status >= 100 && status < 200 && status != 101) {
            body = BodyReader(mode: .length(0))
        } else if status == 101 {
            body = BodyReader(mode: .untilClose)
        } else if te.contains("chunked") {
            body = BodyReader(mode: .chunked)
        } else if let cl = headers.first(where: { $0.0 == "content-length" }).flatMap({ Int($0.1.trimmed) }) {
            body = BodyReader(mode: .length(cl))
        } else {
            body = BodyReader(mode: .untilClose)
        }
    }

    func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.0 == n }?.1
    }

    /// The next piece of the body; empty at its end.
    mutating func read() throws -> ArraySlice<UInt8> { try body.read(socket) }

    mutating func readAll() throws -> [UInt8] {
        var out: [UInt8] = []
        while true {
            let s = try read()
            if s.isEmpty { return out }
            out.append(contentsOf: s)
        }
    }

    mutating func json() throws -> JSON {
        let b = try readAll()
        if b.isEmpty { return .null }
        return try JSON.parse(b)
    }

    /// The daemon's message for an error status.
    mutating func error() -> DaemonError {
        let b = (try? readAll()) ?? []
        if let j = try? JSON.parse(b), let m = j["message"]?.string { return DaemonError(status: status, message: m) }
        let text = String(decoding: b, as: UTF8.self).trimmed
        return DaemonError(status: status, message: text.isEmpty ? "\(status) \(reason)" : text)
    }

    /// Calls `each` with every JSON value of a streamed body until it ends or `each` returns false.
    mutating func forEachJSON(_ each: (JSON) throws -> Bool) throws {
        var splitter = JSONStreamSplitter()
        while true {
            let s = try read()
            if s.isEmpty { break }
            splitter.feed(s)
            while let v = try splitter.next() {
                if try !each(v) { return }
            }
        }
        if let v = try splitter.finish() { _ = try each(v) }
    }
}

struct BodyReader {
    enum Mode { case length(Int), chunked, untilClose, done }
    var mode: Mode
    private var chunkLeft = 0

    init(mode: Mode) { self.mode = mode }

    mutating func read(_ s: Socket) throws -> ArraySlice<UInt8> {
        switch mode {
        case .done: return []
        case .length(let left):
            if left == 0 { mode = .done; return [] }
            let piece = try s.readSome(max: left)
            if piece.isEmpty { mode = .done; return [] }
            mode = .length(left - piece.count)
            return piece
        case .untilClose:
            let piece = try s.readSome()
            if piece.isEmpty { mode = .done }
            return piece
        case .chunked:
            while chunkLeft == 0 {
                guard let line = try s.readLine() else { mode = .done; return [] }
                let sizeText = line.split(separator: ";", maxSplits: 1).first.map(String.init)?.trimmed ?? ""
                if sizeText.isEmpty { continue }  // the CRLF after a chunk
                guard let size = Int(sizeText, radix: 16) else { throw CLIError("bad chunk size from daemon: \(line)") }
                if size == 0 {
                    // trailers until an empty line
                    while let t = try s.readLine(), !t.isEmpty {}
                    mode = .done
                    return []
                }
                chunkLeft = size
            }
            let piece = try s.readSome(max: chunkLeft)
            if piece.isEmpty { mode = .done; return [] }
            chunkLeft -= piece.count
            return piece
        }
    }
}

/// The body of a request.
enum RequestBody {
    case none
    case bytes([UInt8], contentType: String)
    /// Streamed from an fd with chunked transfer encoding (or with a known length).
    case fd(Int32, contentType: String, length: Int?)

    static func json(_ j: JSON) -> RequestBody { .bytes(Array(j.serialized().utf8), contentType: "application/json") }
}

extension String {
    var trimmed: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" || f == "\n" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" || l == "\n" { s = s.dropLast() }
        return String(s)
    }
}

/// Percent-encoding for query values and path segments.
func urlEncode(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
             UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(b))
        default:
            let h = String(b, radix: 16, uppercase: true)
            out += "%" + (h.count == 1 ? "0" + h : h)
        }
    }
    return out
}

/// Query strings keep the order given (repeated keys allowed, as `names=a&names=b`).
func query(_ items: [(String, String?)]) -> String {
    let parts = items.compactMap { k, v in v.map { "\(urlEncode(k))=\(urlEncode($0))" } }
    return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
}

func writeAllFD(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
    bytes.withUnsafeBytes { p in
        var off = 0
        while off < p.count {
            let n = write(fd, p.baseAddress! + off, p.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            off += n
        }
    }
}

func writeOut(_ s: String) { writeAllFD(1, Array(s.utf8)[...]) }
func writeErr(_ s: String) { writeAllFD(2, Array(s.utf8)[...]) }
