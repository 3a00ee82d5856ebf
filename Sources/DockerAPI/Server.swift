import Engine
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A parsed request: method, path without the version prefix, query, headers, body.
struct Request: Sendable {
    var method: HTTPMethod
    var path: String
    var version: String?
    var query: [String: [String]]
    var headers: HTTPHeaders
    var body: ByteBuffer
    /// Set when the body went to a file (image load, archive upload).
    var bodyFile: String?

    func q(_ k: String) -> String? { query[k]?.last }
    func bool(_ k: String) -> Bool {
        guard let v = q(k)?.lowercased() else { return false }
        return !(v == "" || v == "0" || v == "false" || v == "no")
    }
    func int(_ k: String) -> Int? { q(k).flatMap { Int($0) } }
    var wantsUpgrade: Bool {
        headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
            && headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "tcp" }
    }

    func json() throws(APIError) -> [String: Any] {
        if body.readableBytes == 0 { return [:] }
        guard let o = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) else {
            throw APIError(400, "invalid JSON: the request body is not valid JSON")
        }
        guard let d = o as? [String: Any] else { throw APIError(400, "invalid JSON: expected an object") }
        return d
    }
}

struct APIError: Error {
    var status: Int
    var message: String
    init(_ status: Int, _ message: String) { self.status = status; self.message = message }
    init(_ e: EngineError) {
        message = e.message
        switch e.code {
        case .notFound: status = 404
        case .conflict: status = 409
        case .invalidArgument: status = 400
        case .notModified: status = 304
        case .unavailable, .system: status = 500
        case .cannotExec: status = 400
        }
    }
    static func from(_ e: any Error) -> APIError {
        if let e = e as? APIError { return e }
        return APIError(EngineError.wrap(e))
    }
}

/// The Docker Engine API on a unix socket: HTTP/1.1 with keep-alive, chunked streams, and the `Upgrade: tcp`
/// hijack for attach and exec.
public final class APIServer: Sendable {
    public static let maxVersion = "1.56"
    public static let minVersion = "1.24"
    let engine: Engine
    let group: MultiThreadedEventLoopGroup
    let log: Logger
    let router: Router
    let channel: NIOLockedValueBox<Channel?> = NIOLockedValueBox(nil)

    public init(engine: Engine, group: MultiThreadedEventLoopGroup, logger: Logger, metrics: Metrics? = nil) {
        self.engine = engine
        self.group = group
        self.log = logger
        self.router = Router(engine: engine, group: group, log: logger, metrics: metrics)
    }

    public func listen(unixSocket path: String) async throws {
        unlink(path)
        let router = router
        let ch = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
                    let encoder = HTTPResponseEncoder()
                    let conn = HTTPConnection(router: router)
                    try channel.pipeline.syncOperations.addHandler(EOFGate(conn), name: "eof-gate")
                    try channel.pipeline.syncOperations.addHandler(decoder, name: "http-decoder")
                    try channel.pipeline.syncOperations.addHandler(encoder, name: "http-encoder")
                    try channel.pipeline.syncOperations.addHandler(conn, name: "http-conn")
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        chmod(path, 0o660)
        channel.withLockedValue { $0 = ch }
    }

    public func close() async {
        let ch = channel.withLockedValue { $0 }
        try? await ch?.close()
    }
}

/// Sits before the HTTP decoder and keeps the client's half-close from it: a client that sends stdin and
/// shuts its side down right after an attach/exec request must not have that EOF parsed as the end of the
/// HTTP stream (NIO's decoder would drop the bytes it holds for the upgrade). After a hijack the event goes
/// on to the raw handler; before one, an idle connection is closed and a busy one after its response.
final class EOFGate: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let conn: HTTPConnection
    init(_ conn: HTTPConnection) { self.conn = conn }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed, !conn.hijacked {
            conn.inputClosed = true
            if !conn.busy { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Reads one request at a time (clients here do not pipeline), hands it to the router on a task.
final class HTTPConnection: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    static let maxBody = 32 << 20

    let router: Router
    var head: HTTPRequestHead?
    var body: ByteBuffer?
    var file: (fd: Int32, path: String)?
    var tooLarge = false
    var busy = false
    var hijacked = false
    /// When the client goes away during a streaming response, the writer learns it from this.
    let closed = NIOLockedValueBox(false)

    init(router: Router) { self.router = router }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = context.channel.allocator.buffer(capacity: 0)
            tooLarge = false
            let p = h.uri.split(separator: "?").first.map(String.init) ?? ""
            if h.method == .POST && p.hasSuffix("/images/load") || h.method == .PUT && p.hasSuffix("/archive")
                || h.method == .POST && p.hasSuffix("/images/create") && h.uri.contains("fromSrc=-") {
                let path = "/var/tmp/berthd-upload-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
                let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
                if fd >= 0 { file = (fd, path) }
            }
        case .body(var b):
            if let f = file {
                while b.readableBytes > 0 {
                    let n = b.withUnsafeReadableBytes { write(f.fd, $0.baseAddress, $0.count) }
                    if n <= 0 { tooLarge = true; break }
                    b.moveReaderIndex(forwardBy: n)
                }
            } else if (body?.readableBytes ?? 0) + b.readableBytes > Self.maxBody {
                tooLarge = true
            } else {
                body?.writeBuffer(&b)
            }
        case .end:
            guard let h = head else { return }
            head = nil
            let bodyFile: String? = file.map { close($0.fd); return $0.path }
            file = nil
            if tooLarge {
                if let bodyFile { unlink(bodyFile) }
                let r = Responder(channel: context.channel, connection: self, keepAlive: false)
                Task { await r.error(APIError(413, "request body too large (limit \(Self.maxBody >> 20) MiB)")) }
                return
            }
            var (path, query) = Self.split(h.uri)
            var version: String?
            if path.hasPrefix("/v"), let slash = path.dropFirst().firstIndex(of: "/") {
                let v = String(path[path.index(path.startIndex, offsetBy: 2)..<slash])
                if v.split(separator: ".").count == 2, v.split(separator: ".").allSatisfy({ Int($0) != nil }) {
                    version = v
                    path = String(path[slash...])
                }
            }
            let req = Request(method: h.method, path: path, version: version, query: query, headers: h.headers,
                              body: body ?? context.channel.allocator.buffer(capacity: 0), bodyFile: bodyFile)
            body = nil
            busy = true
            let responder = Responder(channel: context.channel, connection: self, keepAlive: h.isKeepAlive)
            let router = router
            Task {
                await router.handle(req, responder)
                if let f = req.bodyFile { unlink(f) }
            }
        }
    }

    /// The client half-closed (stdin ended) before a hijack completed: the raw handler learns it then.
    var inputClosed = false
    /// The status of the last response head (for metrics; 101 for hijacks).
    var lastStatus = 0

    func channelInactive(context: ChannelHandlerContext) {
        closed.withLockedValue { $0 = true }
        if let f = file { close(f.fd); unlink(f.path); file = nil }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A malformed request: answer 400 once and close (the decoder cannot resynchronise).
        if error is HTTPParserError {
            var headers = HTTPHeaders()
            let body = #"{"message":"malformed HTTP request"}"# + "\n"
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.close(promise: nil)
    }

    static func split(_ uri: String) -> (String, [String: [String]]) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0]).removingPercentEncoding ?? String(parts[0])
        var q: [String: [String]] = [:]
        if parts.count == 2 {
            for kv in parts[1].split(separator: "&") {
                let p = kv.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let k = String(p[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(p[0])
                let v = p.count == 2 ? (String(p[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(p[1])) : ""
                q[k, default: []].append(v)
            }
        }
        return (path, q)
    }
}
