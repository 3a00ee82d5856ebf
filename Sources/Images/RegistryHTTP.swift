// The registry client's HTTP plumbing: endpoints in order (mirrors, HTTPS, HTTP for insecure registries),
// authorisation and the one retry after a 401, redirects followed by hand (so the registry's Authorization
// never goes to another host), retries with backoff for idempotent requests, and the mapping of transport
// failures to ImagesError at the public boundary.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// A failure below HTTP (connect, TLS, a connection dropped mid-body): worth another endpoint or attempt.
extension RegistryClient {
    /// A TLS handshake the server answered with something that is not TLS (a plain-HTTP registry): no
    /// retry will change that; the endpoint fallback moves on to plain HTTP at once.
    static func isTLSMismatch(_ e: any Error) -> Bool {
        guard let t = e as? TransportFailure else { return false }
        return t.underlying is NIOSSLError || t.underlying is BoringSSLError
    }

    /// Worth another attempt at the same endpoint: a dropped connection or a 5xx, not a TLS mismatch.
    static func isTransient(_ e: any Error) -> Bool {
        (e is TransportFailure || e is RetryableStatus) && !isTLSMismatch(e)
    }
}

struct TransportFailure: Error, CustomStringConvertible {
    var url: String
    var underlying: any Error
    /// what to tell the user instead, once the retries are spent
    var summary: String?
    var description: String { summary ?? "\(url): \(RegistryClient.describeTransport(underlying))" }
}

/// An HTTP answer that is worth another attempt (5xx, 429, 408).
struct RetryableStatus: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// What a request needs beyond its URL.
struct RegistryCall: Sendable {
    var method: HTTPMethod
    /// a path under the endpoint ("/v2/…") or an absolute URL (an upload's Location)
    var target: String
    var headers: HTTPHeaders = [:]
    /// made anew for each attempt, since a streamed body can be sent only once
    var body: (@Sendable () -> HTTPClientRequest.Body)?
    var scopes: [String]
    /// the whole exchange must end by then; for blob bodies the read timeout is what matters
    var timeout: TimeAmount = .seconds(120)
}

extension RegistryClient {
    static func describeTransport(_ error: any Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .remoteConnectionClosed: return "the registry closed the connection"
            case .readTimeout: return "no data from the registry for too long (read timeout)"
            case .connectTimeout: return "connection timed out"
            case .deadlineExceeded: return "the request took too long"
            default: return "\(e)"
            }
        }
        return "\(error)"
    }

    /// Runs `body` against the endpoints of `repo`'s registry in order, moving on after a transport failure, and
    /// after any failure at a mirror. An insecure registry's HTTPS endpoint is skipped once it failed and
    /// its HTTP one worked.
    nonisolated(nonsending) func withEndpoints<T>(_ repo: Repository, mirrors: Bool,
                                                  _ body: (RegistryEndpoint) async throws -> T) async throws -> T {
        let all = config.endpoints(for: repo.domain, includeMirrors: mirrors)
        let plain = state.withLock { $0.plainHTTP }
        let endpoints = all.filter { e in
            !(e.scheme == "https" && !e.isMirror && plain.contains(e.host)
                && all.contains { $0.scheme == "http" && $0.host == e.host })
        }
        var failures: [String] = []
        for (i, endpoint) in endpoints.enumerated() {
            do {
                let result = try await body(endpoint)
                if endpoint.scheme == "http", !endpoint.isMirror, i > 0 {
                    state.withLock { _ = $0.plainHTTP.insert(endpoint.host) }
                }
                return result
            } catch {
                let moveOn: Bool
                switch error {
                case is TransportFailure, is RetryableStatus: moveOn = true
                case let e as ImagesError: moveOn = endpoint.isMirror && e.code != .cancelled
                default: moveOn = false
                }
                if moveOn && i < endpoints.count - 1 {
                    failures.append("\(endpoint): \(error)")
                    continue
                }
                if error is TransportFailure && !failures.isEmpty {
                    throw ImagesError(.registry, (failures + ["\(endpoint): \(error)"]).joined(separator: "; then "))
                }
                throw error
            }
        }
        throw ImagesError(.registry, "no endpoint to reach \(repo.domain)")
    }

    /// Retries `body` after transport failures and retryable statuses, with a short backoff.
    nonisolated(nonsending) func retrying<T>(_ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let e where RegistryClient.isTransient(e) && attempt + 1 < retryPolicy.attempts {
                attempt += 1
                try await Task.sleep(for: retryPolicy.delay(attempt))
            }
        }
    }

    /// One request on one endpoint, with the authorisation the registry asked for earlier; after a 401 the
    /// challenge is recorded, a token (or Basic credentials) obtained, and the request sent once more.
    func send(_ call: RegistryCall, on endpoint: RegistryEndpoint) async throws -> HTTPClientResponse {
        let url: String
        if call.target.hasPrefix("http://") || call.target.hasPrefix("https://") {
            url = call.target
        } else {
            url = endpoint.baseURL + call.target
        }
        var auth = try await authorization(endpoint, scopes: call.scopes, stale: nil)
        var answered401 = false
        while true {
            var request = HTTPClientRequest(url: url)
            request.method = call.method
            request.headers = call.headers
            request.headers.replaceOrAdd(name: "User-Agent", value: userAgent)
            let sameOrigin = RegistryClient.origin(url) == RegistryClient.origin(endpoint.baseURL)
            if let auth, sameOrigin { request.headers.replaceOrAdd(name: "Authorization", value: auth) }
            if let body = call.body { request.body = body() }
            if endpoint.skipTLSVerify && sameOrigin { request.tlsConfiguration = RegistryClient.insecureTLS }
            let response = try await execute(request, sameOrigin: endpoint, deadline: .now() + call.timeout)
            guard response.status == .unauthorized, !answered401 else { return response }
            answered401 = true
            let challenges = response.headers["WWW-Authenticate"].flatMap(AuthChallenge.parse)
            guard let challenge = challenges.first(where: { $0.scheme == .bearer }) ?? challenges.first else {
                return response
            }
            // keep the error body: the caller reports it if this stays a 401
            let bytes = try await readSmallBody(response, limit: 64 << 10, what: "\(call.method) \(url)")
            let kept = HTTPClientResponse(version: response.version, status: response.status, headers: response.headers,
                                          body: .bytes(ByteBuffer(bytes: bytes)), history: response.history)
            state.withLock { $0.challenges[endpoint.host] = challenge }
            guard let next = try await authorization(endpoint, scopes: call.scopes + challenge.scopes, stale: auth) else {
                return kept
            }
            auth = next
        }
    }

    /// Executes `request`, following GET/HEAD redirects by hand (up to 10). The Authorization header and the
    /// endpoint's relaxed TLS stay with the endpoint's origin.
    func execute(_ request: HTTPClientRequest, sameOrigin endpoint: RegistryEndpoint?, deadline: NIODeadline) async throws -> HTTPClientResponse {
        var current = request
        let firstOrigin = RegistryClient.origin(request.url)
        var hops = 0
        while true {
            let response: HTTPClientResponse
            do {
                response = try await http.execute(current, deadline: deadline)
            } catch {
                if Task.isCancelled || error is CancellationError { throw CancellationError() }
                throw TransportFailure(url: current.url, underlying: error)
            }
            let redirect: Set<UInt> = [301, 302, 303, 307, 308]
            guard redirect.contains(response.status.code), current.method == .GET || current.method == .HEAD,
                  let location = response.headers.first(name: "Location") else { return response }
            hops += 1
            guard hops <= 10 else {
                throw ImagesError(.registry, "\(request.url): more than 10 redirects")
            }
            _ = try? await readSmallBody(response, limit: 64 << 10, what: "redirect")
            guard let base = URL(string: current.url), let next = URL(string: location, relativeTo: base)?.absoluteURL,
                  let scheme = next.scheme, scheme == "http" || scheme == "https" else {
                throw ImagesError(.registry, "\(current.url) redirects to \"\(location)\", which is not an http(s) URL")
            }
            var follow = HTTPClientRequest(url: next.absoluteString)
            follow.method = current.method
            follow.headers = current.headers
            let nextOrigin = RegistryClient.origin(next.absoluteString)
            if nextOrigin != firstOrigin {
                follow.headers.remove(name: "Authorization")
                follow.headers.remove(name: "Cookie")
            }
            if let endpoint, endpoint.skipTLSVerify, nextOrigin == RegistryClient.origin(endpoint.baseURL) {
                follow.tlsConfiguration = RegistryClient.insecureTLS
            }
            current = follow
        }
    }

    /// scheme://host:port, with the default port filled in
    static func origin(_ url: String) -> String {
        guard let u = URLComponents(string: url), let scheme = u.scheme?.lowercased(), let host = u.host?.lowercased() else {
            return url
        }
        let port = u.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(host):\(port)"
    }

    /// Reads a body that should be small (manifests, error documents, tokens).
    func readSmallBody(_ response: HTTPClientResponse, limit: Int, what: String) async throws -> [UInt8] {
        do {
            var buffer = try await response.body.collect(upTo: limit)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw ImagesError(.invalidContent, "\(what): the registry sent more than \(limit) bytes")
        } catch {
            if Task.isCancelled || error is CancellationError { throw CancellationError() }
            throw TransportFailure(url: what, underlying: error)
        }
    }

    /// Turns a response that is not what the caller wanted into the error a user should see.
    func failure(_ response: HTTPClientResponse, _ what: String, endpoint: RegistryEndpoint,
                 notFound: String? = nil) async throws -> any Error {
        let bytes = (try? await readSmallBody(response, limit: 64 << 10, what: what)) ?? []
        let message = registryErrorMessage(bytes)
        let status = response.status
        let detail = message ?? "HTTP \(status.code) \(status.reasonPhrase)"
        switch status.code {
        case 401, 403:
            let cred = (try? credential(for: endpoint.host)) ?? nil
            return ImagesError(.unauthorized, "\(what): \(detail)" + credentialHint(endpoint.host, have: cred))
        case 404:
            return ImagesError(.notFound, notFound ?? "\(what): \(detail)")
        case 408, 429, 500...599:
            return RetryableStatus(message: "\(what): \(endpoint.host) answered \(detail)")
        default:
            return ImagesError(.registry, "\(what): \(endpoint.host) answered \(detail)")
        }
    }

    /// The public boundary: internal failure types become ImagesError with `context` in front.
    nonisolated(nonsending) func boundary<T>(_ context: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as ImagesError {
            throw e.message.hasPrefix(context) ? e : e.prefixed(context)
        } catch let e as TransportFailure {
            throw ImagesError(.registry, "\(context): \(e)")
        } catch let e as RetryableStatus {
            throw ImagesError(.registry, "\(context): \(e.message)")
        } catch is CancellationError {
            throw ImagesError(.cancelled, "\(context): cancelled")
        } catch {
            throw ImagesError.wrap(error, context, as: .registry)
        }
    }
}
