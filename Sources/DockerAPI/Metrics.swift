import Engine
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// Prometheus metrics (off unless berthd gets --metrics-addr): API requests by method and status, their
/// latency, container lifecycle events, and the containers by state at scrape time.
public final class Metrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let engine: Engine
    let duration: DurationHistogram

    public init(engine: Engine) {
        self.engine = engine
        duration = registry.makeDurationHistogram(
            name: "berth_api_request_duration_seconds",
            buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                      .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)],
            help: "Docker API request latency (streams count until their response head)")
        let stream = engine.events.subscribe(since: nil)
        let registry = registry
        Task.detached {
            for await e in stream {
                let action = e.action.split(separator: ":").first.map(String.init) ?? e.action
                registry.makeCounter(name: "berth_events_total", labels: [("type", e.type), ("action", action)],
                                     help: "Engine events by type and action").increment()
            }
        }
    }

    func observe(method: String, status: Int, elapsed: Duration) {
        registry.makeCounter(name: "berth_api_requests_total", labels: [("method", method), ("code", String(status))],
                             help: "Docker API requests by method and status code").increment()
        duration.record(elapsed)
    }

    func scrape() async -> [UInt8] {
        let list = await engine.list()
        for s in ["created", "running", "paused", "restarting", "removing", "exited", "dead"] {
            registry.makeGauge(name: "berth_containers", labels: [("state", s)], help: "Containers by state")
                .set(Double(list.filter { $0.state.status.rawValue == s }.count))
        }
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }

    /// Serves GET /metrics on host:port (TCP).
    public func listen(host: String, port: Int, group: MultiThreadedEventLoopGroup) async throws {
        let metrics = self
        _ = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(metrics: metrics))
                }
            }
            .bind(host: host, port: port).get()
    }
}

final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let metrics: Metrics
    var uri = ""
    init(metrics: Metrics) { self.metrics = metrics }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): uri = h.uri
        case .body: break
        case .end:
            let channel = context.channel
            let ok = uri == "/metrics" || uri.hasPrefix("/metrics?")
            let metrics = metrics
            Task {
                let body = ok ? await metrics.scrape() : Array("not found\n".utf8)
                var h = HTTPHeaders()
                h.add(name: "Content-Type", value: ok ? "text/plain; version=0.0.4" : "text/plain")
                h.add(name: "Content-Length", value: String(body.count))
                channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: ok ? .ok : .notFound, headers: h)), promise: nil)
                channel.write(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
                channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
            }
        }
    }
}
