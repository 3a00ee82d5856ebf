import Engine
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Writes one response on a connection: plain JSON, a chunked stream, or a hijacked raw stream.
struct Responder: Sendable {
    let channel: Channel
    let connection: HTTPConnection
    let keepAlive: Bool

    /// Writes and flushes; resumes when the bytes are handed to the kernel (or the write failed).
    func flushed<T: Sendable>(_ part: T) async throws {
        let p = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(part, promise: p)
        try await p.futureResult.get()
    }

    var isClosed: Bool { connection.closed.withLockedValue { $0 } || !channel.isActive }

    func headers(_ contentType: String?, length: Int?) -> HTTPHeaders {
        var h = HTTPHeaders()
        h.add(name: "Api-Version", value: APIServer.maxVersion)
        h.add(name: "Docker-Experimental", value: "false")
        h.add(name: "Ostype", value: "linux")
        h.add(name: "Server", value: "berthd/\(Router.berthVersion) (linux)")
        if let contentType { h.add(name: "Content-Type", value: contentType) }
        if let length { h.add(name: "Content-Length", value: String(length)) } else { h.add(name: "Transfer-Encoding", value: "chunked") }
        if !keepAlive { h.add(name: "Connection", value: "close") }
        return h
    }

    func send(_ status: Int, contentType: String?, body: [UInt8], extra: [(String, String)] = []) async {
        var h = headers(contentType, length: body.count)
        for (k, v) in extra { h.replaceOrAdd(name: k, value: v) }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: h)
        connection.lastStatus = status
        channel.write(HTTPServerResponsePart.head(head), promise: nil)
        if !body.isEmpty {
            channel.write(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
        }
        try? await flushed(HTTPServerResponsePart.end(nil))
        connection.busy = false
        if !keepAlive || connection.inputClosed { try? await channel.close() }
    }

    func json(_ value: Any) async { await json(200, value) }

    func json(_ status: Int, _ value: Any) async {
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.withoutEscapingSlashes])) ?? Data("{}".utf8)
        await send(status, contentType: "application/json", body: Array(data) + [10])
    }

    func noContent(_ status: Int = 204) async { await send(status, contentType: nil, body: []) }

    func text(_ status: Int, _ s: String, contentType: String = "text/plain; charset=utf-8") async {
        await send(status, contentType: contentType, body: Array(s.utf8))
    }

    func error(_ e: APIError) async {
        if e.status == 304 { await send(304, contentType: nil, body: []); return }
        await json(e.status, ["message": e.message])
    }

    // MARK: streams (chunked)

    func startStream(_ status: Int = 200, contentType: String, extra: [(String, String)] = []) async {
        var h = headers(contentType, length: nil)
        for (k, v) in extra { h.replaceOrAdd(name: k, value: v) }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: h)
        connection.lastStatus = status
        try? await flushed(HTTPServerResponsePart.head(head))
    }

    /// Writes a chunk; false once the client is gone.
    @discardableResult
    func write(_ bytes: [UInt8]) async -> Bool {
        if isClosed { return false }
        do {
            try await flushed(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: bytes))))
            return true
        } catch { return false }
    }

    func writeJSON(_ value: Any) async -> Bool {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.withoutEscapingSlashes]) else { return true }
        return await write(Array(data) + [10])
    }

    /// Streams an open file from its current offset, in 1 MiB chunks; false if the client went away.
    func writeFile(_ fd: Int32) async -> Bool {
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return true }
            if !(await write(Array(buf[0..<n]))) { return false }
        }
    }

    func end() async {
        try? await flushed(HTTPServerResponsePart.end(nil))
        connection.busy = false
        if !keepAlive || connection.inputClosed { try? await channel.close() }
    }

    // MARK: hijack

    /// Answers `101 UPGRADED` (or 200 for clients that did not ask to upgrade) and turns the connection into
    /// a raw byte stream: the HTTP handlers leave the pipeline, `RawClient` takes their place.
    func hijack(upgrade: Bool, contentType: String, raw: RawClient) async throws {
        var h = HTTPHeaders()
        h.add(name: "Content-Type", value: contentType)
        if upgrade {
            h.add(name: "Connection", value: "Upgrade")
            h.add(name: "Upgrade", value: "tcp")
        }
        h.add(name: "Api-Version", value: APIServer.maxVersion)
        let status: HTTPResponseStatus = upgrade ? .switchingProtocols : .ok
        connection.lastStatus = Int(status.code)
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: h)
        try await flushed(HTTPServerResponsePart.head(head))
        let ch = channel
        let conn = connection
        try await ch.eventLoop.submit {
            let ops = ch.pipeline.syncOperations
            if conn.inputClosed { raw.inputClosed = true }
            conn.hijacked = true
            try ops.addHandler(raw)
            _ = ops.removeHandler(name: "http-encoder")
            _ = ops.removeHandler(name: "http-conn")
            _ = ops.removeHandler(name: "http-decoder")
        }.get()
    }
}

/// The client's side of a hijacked stream: bytes up to the shim (stdin), half-close, detach keys.
final class RawClient: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var shim: Channel?
    var pending: [ByteBuffer] = []
    var inputClosed = false
    let detachKeys: [UInt8]
    var matched = 0
    let onDetach: @Sendable () -> Void

    init(detachKeys: [UInt8], onDetach: @escaping @Sendable () -> Void) {
        self.detachKeys = detachKeys
        self.onDetach = onDetach
    }

    /// Called on the client's event loop once the shim connection exists.
    func connect(_ shim: Channel) {
        self.shim = shim
        for b in pending { shim.write(b, promise: nil) }
        pending = []
        shim.flush()
        if inputClosed { shim.close(mode: .output, promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let b = unwrapInboundIn(data)
        if !detachKeys.isEmpty {
            for byte in b.readableBytesView {
                if byte == detachKeys[matched] {
                    matched += 1
                    if matched == detachKeys.count { onDetach(); context.close(promise: nil); shim?.close(promise: nil); return }
                } else {
                    matched = byte == detachKeys[0] ? 1 : 0
                }
            }
        }
        if let shim { shim.writeAndFlush(b, promise: nil) } else { pending.append(b) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed {
            inputClosed = true
            shim?.close(mode: .output, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        shim?.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// The shim's side: parses its frames and writes them to the client as Docker expects (multiplexed frames
/// without a tty, raw bytes with one). Frame 3 is the exit code.
final class ShimSide: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let client: Channel
    let multiplexed: Bool
    let onExit: @Sendable (Int32?) -> Void
    var buf = ByteBuffer()
    var exit: Int32?
    var reported = false

    init(client: Channel, multiplexed: Bool, onExit: @escaping @Sendable (Int32?) -> Void) {
        self.client = client
        self.multiplexed = multiplexed
        self.onExit = onExit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        buf.writeBuffer(&b)
        while buf.readableBytes >= 8 {
            guard let type = buf.getInteger(at: buf.readerIndex, as: UInt8.self),
                  let len = buf.getInteger(at: buf.readerIndex + 4, as: UInt32.self) else { return }
            guard buf.readableBytes >= 8 + Int(len) else { break }
            if type == 3 {
                buf.moveReaderIndex(forwardBy: 8)
                let s = buf.readString(length: Int(len)) ?? ""
                exit = Int32(s.trimmingCharacters(in: .whitespaces))
                continue
            }
            if multiplexed {
                if let frame = buf.readSlice(length: 8 + Int(len)) { client.write(frame, promise: nil) }
            } else {
                buf.moveReaderIndex(forwardBy: 8)
                if let payload = buf.readSlice(length: Int(len)) { client.write(payload, promise: nil) }
            }
        }
        buf.discardReadBytes()
        client.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { finish(context) ; return }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) { finish(context) }

    func finish(_ context: ChannelHandlerContext) {
        if !reported { reported = true; onExit(exit) }
        let c = client
        c.writeAndFlush(ByteBuffer()).whenComplete { _ in c.close(promise: nil) }
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { finish(context) }
}

enum Bridge {
    /// Joins a hijacked client channel and a connected shim stream fd.
    static func join(client: Channel, raw: RawClient, shimFD: Int32, multiplexed: Bool, group: EventLoopGroup,
                     onExit: @escaping @Sendable (Int32?) -> Void) async throws {
        let shim = try await ClientBootstrap(group: client.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(ShimSide(client: client, multiplexed: multiplexed, onExit: onExit))
                }
            }
            .withConnectedSocket(shimFD).get()
        try await client.eventLoop.submit { raw.connect(shim) }.get()
        if !client.isActive { try? await shim.close() }
    }

    static func parseDetachKeys(_ s: String?) -> [UInt8] {
        guard let s, !s.isEmpty else { return [0x10, 0x11] }
        var out: [UInt8] = []
        for k in s.split(separator: ",") {
            let k = k.lowercased()
            if k.hasPrefix("ctrl-"), let c = k.dropFirst(5).first, k.count == 6 {
                switch c {
                case "a"..."z": out.append((c.asciiValue ?? 96) - 96)
                case "@": out.append(0)
                case "[": out.append(27)
                case "\\": out.append(28)
                case "]": out.append(29)
                case "^": out.append(30)
                case "_": out.append(31)
                default: return [0x10, 0x11]
                }
            } else if k.count == 1, let a = k.first?.asciiValue { out.append(a) }
            else { return [0x10, 0x11] }
        }
        return out
    }
}
