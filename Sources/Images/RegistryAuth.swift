// Registry authentication (distribution's token auth, docs/spec/auth/token.md): requests go out anonymous;
// a 401's WWW-Authenticate says Basic or Bearer; for Bearer a token for the request's scopes comes from the
// realm (with Basic credentials when the user has some, or an OAuth2 refresh-token POST for identity
// tokens) and is cached per registry and scope set until it expires.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One challenge of a WWW-Authenticate header.
struct AuthChallenge: Sendable, Hashable {
    enum Scheme: Sendable, Hashable { case basic, bearer }
    var scheme: Scheme
    var realm: String
    var service: String?
    var scopes: [String]

    /// Parses `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`
    /// (several challenges may share one header: `Basic realm="x", Bearer realm="y"`).
    static func parse(_ header: String) -> [AuthChallenge] {
        var out: [AuthChallenge] = []
        var s = Substring(header)
        var current: (scheme: String, params: [String: String])?
        func flush() {
            guard let c = current else { return }
            let scheme: Scheme? = c.scheme == "bearer" ? .bearer : c.scheme == "basic" ? .basic : nil
            if let scheme {
                out.append(AuthChallenge(scheme: scheme, realm: c.params["realm"] ?? "", service: c.params["service"],
                                         scopes: (c.params["scope"] ?? "").split(separator: " ").map(String.init)))
            }
            current = nil
        }
        while true {
            s = s.drop { $0 == " " || $0 == "," || $0 == "\t" }
            guard !s.isEmpty else { break }
            let token = s.prefix { $0 != " " && $0 != "=" && $0 != "," }
            s = s.dropFirst(token.count)
            let afterSpaces = s.drop { $0 == " " }
            if afterSpaces.first == "=" {
                // a parameter of the current challenge
                s = afterSpaces.dropFirst().drop { $0 == " " }
                var value = ""
                if s.first == "\"" {
                    s = s.dropFirst()
                    while let c = s.first, c != "\"" {
                        if c == "\\", let next = s.dropFirst().first {
                            value.append(next)
                            s = s.dropFirst()
                        } else {
                            value.append(c)
                        }
                        s = s.dropFirst()
                    }
                    s = s.dropFirst()
                } else {
                    let v = s.prefix { $0 != "," && $0 != " " }
                    value = String(v)
                    s = s.dropFirst(v.count)
                }
                current?.params[token.lowercased()] = value
            } else {
                flush()
                current = (token.lowercased(), [:])
            }
        }
        flush()
        return out
    }
}

/// A cached bearer token.
struct CachedToken: Sendable {
    var token: String
    var expires: ContinuousClock.Instant
}

struct TokenKey: Hashable, Sendable {
    var realm: String
    var service: String
    var scopes: [String]
    var host: String
}

extension RegistryClient {
    /// The Authorization header for a request to `endpoint` with `scopes`, from what the registry said in an
    /// earlier 401 (nil when it never asked: go anonymous). `stale` is a header the registry just refused.
    func authorization(_ endpoint: RegistryEndpoint, scopes: [String], stale: String?) async throws -> String? {
        guard let challenge = state.withLock({ $0.challenges[endpoint.host] }) else { return nil }
        let cred = try credential(for: endpoint.host)
        switch challenge.scheme {
        case .basic:
            guard let cred, let user = cred.username, !user.isEmpty else { return nil }
            let header = "Basic " + Data((user + ":" + (cred.password ?? "")).utf8).base64EncodedString()
            return header == stale ? nil : header
        case .bearer:
            if let t = cred?.registryToken, !t.isEmpty {
                let header = "Bearer " + t
                return header == stale ? nil : header
            }
            let all = mergeScopes(scopes)
            let key = TokenKey(realm: challenge.realm, service: challenge.service ?? "", scopes: all, host: endpoint.host)
            if let stale, stale.hasPrefix("Bearer ") {
                let refused = String(stale.dropFirst(7))
                state.withLock { s in if s.tokens[key]?.token == refused { s.tokens[key] = nil } }
            }
            let token = try await bearerToken(key, credential: cred)
            let header = "Bearer " + token
            return header == stale ? nil : header
        }
    }

    /// A token for `key` from the cache or from the realm; concurrent requests for the same key share one fetch.
    func bearerToken(_ key: TokenKey, credential: RegistryCredential?) async throws -> String {
        enum Lookup { case cached(String), wait(Task<CachedToken, any Error>) }
        let now = ContinuousClock.now
        let lookup: Lookup = state.withLock { s in
            if let t = s.tokens[key], t.expires > now { return .cached(t.token) }
            if let task = s.tokenFetches[key] { return .wait(task) }
            let task = Task { try await self.fetchToken(key, credential: credential) }
            s.tokenFetches[key] = task
            return .wait(task)
        }
        switch lookup {
        case .cached(let t): return t
        case .wait(let task):
            do {
                let t = try await task.value
                state.withLock { s in
                    s.tokens[key] = t
                    s.tokenFetches[key] = nil
                }
                return t.token
            } catch {
                state.withLock { s in s.tokenFetches[key] = nil }
                throw error
            }
        }
    }

    /// GET realm?service=…&scope=… (Basic auth when there is a username), or the OAuth2 refresh-token POST for
    /// an identity token.
    func fetchToken(_ key: TokenKey, credential: RegistryCredential?) async throws -> CachedToken {
        guard var url = URLComponents(string: key.realm), let scheme = url.scheme, scheme == "https" || scheme == "http",
              url.host != nil else {
            throw ImagesError(.registry, "registry \(key.host) names a token realm that is not an http(s) URL: \"\(key.realm)\"")
        }
        var headers = HTTPHeaders()
        headers.add(name: "User-Agent", value: userAgent)
        headers.add(name: "Accept", value: "application/json")
        var method = HTTPMethod.GET
        var body: [UInt8]?
        if let refresh = credential?.identityToken, !refresh.isEmpty {
            method = .POST
            var form = URLComponents()
            form.queryItems = [URLQueryItem(name: "grant_type", value: "refresh_token"),
                               URLQueryItem(name: "refresh_token", value: refresh),
                               URLQueryItem(name: "client_id", value: "berth"),
                               URLQueryItem(name: "access_type", value: "offline")]
                + (key.service.isEmpty ? [] : [URLQueryItem(name: "service", value: key.service)])
                + (key.scopes.isEmpty ? [] : [URLQueryItem(name: "scope", value: key.scopes.joined(separator: " "))])
            let encoded = (form.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
            body = Array(encoded.utf8)
            headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        } else {
            var items = url.queryItems ?? []
            if !key.service.isEmpty { items.append(URLQueryItem(name: "service", value: key.service)) }
            for s in key.scopes { items.append(URLQueryItem(name: "scope", value: s)) }
            url.queryItems = items
            if let user = credential?.username, !user.isEmpty {
                headers.add(name: "Authorization",
                            value: "Basic " + Data((user + ":" + (credential?.password ?? "")).utf8).base64EncodedString())
            }
        }
        guard let target = url.string else {
            throw ImagesError(.registry, "token realm \(key.realm): cannot build the request URL")
        }
        var request = HTTPClientRequest(url: target)
        request.method = method
        request.headers = headers
        if let body {
            request.headers.add(name: "Content-Length", value: String(body.count))
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        if config.isInsecure(url.host.map { h in url.port.map { "\(h):\($0)" } ?? h } ?? "") {
            request.tlsConfiguration = RegistryClient.insecureTLS
        }
        let response = try await execute(request, sameOrigin: nil, deadline: .now() + .seconds(60))
        let bytes = try await readSmallBody(response, limit: 1 << 20, what: "token from \(key.realm)")
        let scopeText = key.scopes.isEmpty ? "" : " for \(key.scopes.joined(separator: " "))"
        guard response.status == .ok else {
            let why = registryErrorMessage(bytes) ?? "HTTP \(response.status.code) \(response.status.reasonPhrase)"
            let code: ImagesError.Code = response.status == .unauthorized || response.status == .forbidden ? .unauthorized : .registry
            let hint = code == .unauthorized ? credentialHint(key.host, have: credential) : ""
            throw ImagesError(code, "authentication to \(key.host) failed: token server \(key.realm) refused a token\(scopeText): \(why)\(hint)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let token = (object["token"] as? String).flatMap({ $0.isEmpty ? nil : $0 })
                ?? (object["access_token"] as? String).flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw ImagesError(.registry, "token server \(key.realm) answered without a token\(scopeText): \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
        // distribution: expires_in defaults to 60 s, and a token is never trusted for less than that
        var lifetime = (object["expires_in"] as? NSNumber)?.doubleValue ?? 60
        if lifetime < 60 { lifetime = 60 }
        // refresh a little early so a token does not lapse between the check and the request
        let margin = min(lifetime * 0.1, 30)
        return CachedToken(token: token, expires: .now + .milliseconds(Int64((lifetime - margin) * 1000)))
    }

    /// The user's credential for a host, cached a minute so a pull does not read config.json per request.
    func credential(for host: String) throws -> RegistryCredential? {
        guard let credentials else { return nil }
        let now = ContinuousClock.now
        if let c = state.withLock({ $0.credentials[host] }), c.expires > now { return c.value }
        let value = try credentials.credential(forRegistry: host)
        state.withLock { $0.credentials[host] = (value, now + .seconds(60)) }
        return value
    }

    /// What to tell a user who was refused.
    func credentialHint(_ host: String, have: RegistryCredential?) -> String {
        if let have, !have.isEmpty { return " (the credentials berth sent for \(host) were refused)" }
        let server = DockerCredentials.serverAddress(forRegistry: host)
        let login = server == DockerCredentials.hubServerAddress ? "docker login" : "docker login \(server)"
        if let d = credentials as? DockerCredentials {
            return " (no credentials for \(host) in \(d.configPath); `\(login)` stores some)"
        }
        return " (no credentials for \(host))"
    }
}

/// Scopes with the actions of one resource merged: ["repository:a:pull", "repository:a:pull,push"] →
/// ["repository:a:pull,push"], sorted, so equal needs share one cached token.
func mergeScopes(_ scopes: [String]) -> [String] {
    var actions: [String: Set<String>] = [:]
    var others: Set<String> = []
    for scope in scopes {
        guard let last = scope.lastIndex(of: ":"), scope.firstIndex(of: ":") != last else {
            others.insert(scope)
            continue
        }
        let resource = String(scope[..<last])
        actions[resource, default: []].formUnion(scope[scope.index(after: last)...].split(separator: ",").map(String.init))
    }
    return (actions.map { $0.key + ":" + $0.value.sorted().joined(separator: ",") } + others).sorted()
}

/// distribution's error body `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}` as
/// Docker prints it ("unauthorized: authentication required"), or a token server's `details`.
func registryErrorMessage(_ bytes: [UInt8]) -> String? {
    guard !bytes.isEmpty, let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
        let text = String(decoding: bytes.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty || text.hasPrefix("<") ? nil : text
    }
    if let errors = object["errors"] as? [[String: Any]], !errors.isEmpty {
        return errors.map { e in
            let code = (e["code"] as? String ?? "unknown").lowercased().replacingOccurrences(of: "_", with: " ")
            let message = e["message"] as? String ?? ""
            return message.isEmpty ? code : code + ": " + message
        }.joined(separator: "; ")
    }
    if let d = object["details"] as? String { return d }
    if let d = object["error_description"] as? String ?? object["error"] as? String { return d }
    if let d = object["message"] as? String { return d }
    return nil
}
