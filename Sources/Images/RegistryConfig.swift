// Where to reach a registry and as whom: the daemon's registry settings (Docker's daemon.json keys
// `registry-mirrors` and `insecure-registries`) and the user's credentials as the docker CLI keeps them
// (~/.docker/config.json: `auths`, `credHelpers`, `credsStore`).
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// MARK: - daemon settings

/// One place to send a registry's requests, in the order they are tried.
public struct RegistryEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// "https" or "http"
    public var scheme: String
    /// host[:port] as it goes into the URL ("registry-1.docker.io", "127.0.0.1:5000", "[::1]:5000")
    public var host: String
    /// a docker.io mirror: any failure there moves on to the next endpoint
    public var isMirror: Bool
    /// an insecure registry: TLS certificates are not verified
    public var skipTLSVerify: Bool

    public init(scheme: String, host: String, isMirror: Bool = false, skipTLSVerify: Bool = false) {
        self.scheme = scheme
        self.host = host
        self.isMirror = isMirror
        self.skipTLSVerify = skipTLSVerify
    }

    /// "https://registry-1.docker.io"
    public var baseURL: String { scheme + "://" + host }
    public var description: String { baseURL + (isMirror ? " (mirror)" : "") }
}

/// The registry part of the daemon's configuration.
public struct RegistryConfig: Sendable, Hashable {
    /// `registry-mirrors`: base URLs ("https://mirror.example.com"), used for docker.io only, in order,
    /// before Docker Hub itself.
    public private(set) var mirrors: [String]
    /// `insecure-registries` as configured: "host[:port]" entries and CIDRs.
    public private(set) var insecureRegistries: [String]

    private var insecureHosts: Set<String> = []
    private var insecureCIDRs: [CIDR] = []

    /// Docker's defaults: no mirrors, no insecure registries besides loopback.
    public init() {
        mirrors = []
        insecureRegistries = []
    }

    /// Validates the entries as dockerd does (ValidateMirror, LoadInsecureRegistries).
    public init(mirrors: [String], insecureRegistries: [String]) throws {
        self.init()
        for m in mirrors { self.mirrors.append(try RegistryConfig.validateMirror(m)) }
        for entry in insecureRegistries {
            var r = entry
            let lower = r.lowercased()
            if lower.hasPrefix("http://") { r.removeFirst(7) } else if lower.hasPrefix("https://") { r.removeFirst(8) }
            if r.contains("://") {
                throw ImagesError(.invalidArgument, "insecure registry \(entry) should not contain '://'")
            }
            if let cidr = CIDR(parsing: r) {
                insecureCIDRs.append(cidr)
            } else {
                guard RegistryConfig.isHostPort(r) else {
                    throw ImagesError(.invalidArgument, "insecure registry \(entry) is not valid: expected host[:port] or a CIDR such as 10.0.0.0/8")
                }
                insecureHosts.insert(r.lowercased())
            }
            self.insecureRegistries.append(r)
        }
    }

    /// Reads the registry keys of a daemon.json (the other keys are not this module's business). A missing
    /// file is Docker's defaults when `missingOK`, else an error naming it.
    public static func load(daemonJSON path: String, missingOK: Bool = false) throws -> RegistryConfig {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let e as CocoaError where e.code == .fileReadNoSuchFile && missingOK {
            return RegistryConfig()
        } catch {
            throw ImagesError(.invalidArgument, "daemon config \(path): cannot read it: \(readFailure(error))")
        }
        return try RegistryConfig(daemonJSON: data, source: path)
    }

    /// Parses daemon.json text; `source` names it in errors.
    public init(daemonJSON data: Data, source: String) throws {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ImagesError(.invalidArgument, "daemon config \(source): not valid JSON: \(jsonFailure(error))")
        }
        guard let top = object as? [String: Any] else {
            throw ImagesError(.invalidArgument, "daemon config \(source): expected a JSON object at the top")
        }
        func strings(_ key: String) throws -> [String] {
            guard let value = top[key], !(value is NSNull) else { return [] }
            guard let list = value as? [Any], let s = list as? [String] else {
                throw ImagesError(.invalidArgument, "daemon config \(source): \"\(key)\" must be a list of strings")
            }
            return s
        }
        let parsed: RegistryConfig
        do {
            parsed = try RegistryConfig(mirrors: strings("registry-mirrors"), insecureRegistries: strings("insecure-registries"))
        } catch let e as ImagesError where !e.message.hasPrefix("daemon config") {
            throw e.prefixed("daemon config \(source)")
        }
        self = parsed
    }

    /// Whether TLS is optional for `host` ("host[:port]"): configured as insecure, in an insecure CIDR, or
    /// loopback (Docker treats 127.0.0.0/8 as insecure by default; berth adds ::1 and "localhost").
    public func isInsecure(_ host: String) -> Bool {
        let h = host.lowercased()
        let bare = RegistryConfig.stripPort(h)
        if bare == Reference.defaultDomain || bare == Reference.legacyDefaultDomain || bare == Reference.defaultRegistryHost {
            return false
        }
        if insecureHosts.contains(h) || insecureHosts.contains(bare) { return true }
        if bare == "localhost" || bare.hasSuffix(".localhost") { return true }
        if let ip = IPAddress(parsing: bare) {
            return ip.isLoopback || insecureCIDRs.contains { $0.contains(ip) }
        }
        // dockerd resolves names to match them against the CIDRs; only worth a lookup when some are configured
        guard !insecureCIDRs.isEmpty else { return false }
        return IPAddress.resolve(bare).contains { ip in ip.isLoopback || insecureCIDRs.contains { $0.contains(ip) } }
    }

    /// The endpoints to try for a registry domain, as dockerd's lookupV2Endpoints orders them: for docker.io
    /// the mirrors (when `includeMirrors`: pulls; pushes never go to a mirror) and then Docker Hub; for any
    /// other registry HTTPS, and for an insecure one plain HTTP after it.
    public func endpoints(for domain: String, includeMirrors: Bool = true) -> [RegistryEndpoint] {
        let host = Reference.registryHost(forDomain: domain)
        var out: [RegistryEndpoint] = []
        if host == Reference.defaultRegistryHost {
            if includeMirrors {
                for m in mirrors {
                    guard let u = URLComponents(string: m), let scheme = u.scheme, let h = u.host else { continue }
                    let hostPort = (h.contains(":") && !h.hasPrefix("[") ? "[" + h + "]" : h) + (u.port.map { ":\($0)" } ?? "")
                    out.append(RegistryEndpoint(scheme: scheme, host: hostPort, isMirror: true, skipTLSVerify: isInsecure(hostPort)))
                }
            }
            out.append(RegistryEndpoint(scheme: "https", host: host))
            return out
        }
        let insecure = isInsecure(host)
        out.append(RegistryEndpoint(scheme: "https", host: host, skipTLSVerify: insecure))
        if insecure { out.append(RegistryEndpoint(scheme: "http", host: host, skipTLSVerify: true)) }
        return out
    }

    // MARK: validation

    static func validateMirror(_ text: String) throws -> String {
        guard let u = URLComponents(string: text), let scheme = u.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = u.host, !host.isEmpty else {
            throw ImagesError(.invalidArgument, "invalid mirror: \"\(text)\" is not a valid URI (expected http:// or https:// and a host)")
        }
        if u.user != nil || u.password != nil {
            throw ImagesError(.invalidArgument, "invalid mirror: does not support user-info (user:password@host): \"\(text)\"")
        }
        if !(u.path.isEmpty || u.path == "/") || u.query != nil || u.fragment != nil {
            throw ImagesError(.invalidArgument, "invalid mirror: path, query, or fragment at end of the URI \"\(text)\"")
        }
        var s = text
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }

    static func isHostPort(_ s: String) -> Bool {
        !s.isEmpty && !s.contains("/") && Reference.isDomain(s)
    }

    static func stripPort(_ hostPort: String) -> String {
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            return String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
        }
        if let colon = hostPort.lastIndex(of: ":"), hostPort.firstIndex(of: ":") == colon {
            return String(hostPort[..<colon])
        }
        return hostPort
    }
}

/// An IPv4 or IPv6 address as bytes (4 or 16).
struct IPAddress: Hashable, Sendable {
    var bytes: [UInt8]

    init?(parsing text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    var isLoopback: Bool {
        if bytes.count == 4 { return bytes[0] == 127 }
        if bytes == [UInt8](repeating: 0, count: 15) + [1] { return true }
        // ::ffff:127.x.x.x
        return bytes.count == 16 && bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff && bytes[12] == 127
    }

    /// getaddrinfo's addresses for a name; empty when it does not resolve.
    static func resolve(_ name: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &res) == 0, let first = res else { return [] }
        defer { freeaddrinfo(first) }
        var out: [IPAddress] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            if ai.pointee.ai_family == AF_INET, let sa = ai.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var a = sin.pointee.sin_addr
                    out.append(IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) }))
                }
            } else if ai.pointee.ai_family == AF_INET6, let sa = ai.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var a = sin6.pointee.sin6_addr
                    out.append(IPAddress(bytes: withUnsafeBytes(of: &a) { Array($0) }))
                }
            }
            p = ai.pointee.ai_next
        }
        return out
    }
}

/// "10.0.0.0/8", "fd00::/8"
struct CIDR: Hashable, Sendable {
    var network: IPAddress
    var prefix: Int

    init?(parsing text: String) {
        guard let slash = text.firstIndex(of: "/"), let ip = IPAddress(parsing: String(text[..<slash])),
              let p = Int(text[text.index(after: slash)...]), p >= 0, p <= ip.bytes.count * 8 else { return nil }
        network = ip
        prefix = p
    }

    func contains(_ ip: IPAddress) -> Bool {
        guard ip.bytes.count == network.bytes.count else { return false }
        var bits = prefix
        for i in 0..<ip.bytes.count where bits > 0 {
            let take = min(bits, 8)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - take))
            if ip.bytes[i] & mask != network.bytes[i] & mask { return false }
            bits -= take
        }
        return true
    }
}

// MARK: - credentials

/// What to authenticate to a registry with.
public struct RegistryCredential: Sendable, Hashable {
    public var username: String?
    public var password: String?
    /// an OAuth2 refresh token (`docker login` to a registry that hands them out); exchanged at the token realm
    public var identityToken: String?
    /// a bearer token sent to the registry as it is
    public var registryToken: String?

    public init(username: String? = nil, password: String? = nil, identityToken: String? = nil, registryToken: String? = nil) {
        self.username = username
        self.password = password
        self.identityToken = identityToken
        self.registryToken = registryToken
    }

    var isEmpty: Bool {
        (username ?? "").isEmpty && (password ?? "").isEmpty && (identityToken ?? "").isEmpty && (registryToken ?? "").isEmpty
    }
}

/// Where the registry client gets credentials; asked only after a registry said 401.
public protocol RegistryCredentialProvider: Sendable {
    /// The credential for a registry host ("docker.io", "localhost:5000", a mirror's host); nil: anonymous.
    func credential(forRegistry host: String) throws -> RegistryCredential?
}

/// Credentials as the docker CLI reads them: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
/// `credHelpers[registry]` wins, then `credsStore`, then the `auths` entry (`auth` = base64 "user:password",
/// or `username`/`password`, `identitytoken`, `registrytoken`). Keys may be written with or without
/// "https://" and a path (Docker Hub's key is "https://index.docker.io/v1/").
public struct DockerCredentials: RegistryCredentialProvider {
    public static let hubServerAddress = "https://index.docker.io/v1/"

    public let configPath: String
    /// PATH to find `docker-credential-<name>` helpers on
    public let searchPath: String

    public init(configPath: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.configPath = configPath ?? DockerCredentials.defaultConfigPath(environment: environment)
        searchPath = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    }

    public static func defaultConfigPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let dir = environment["DOCKER_CONFIG"], !dir.isEmpty { return dir + "/config.json" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.docker/config.json"
    }

    /// The server address the docker CLI files a registry's credentials under.
    public static func serverAddress(forRegistry host: String) -> String {
        let h = hostname(host)
        return h == Reference.defaultDomain || h == Reference.legacyDefaultDomain || h == Reference.defaultRegistryHost
            ? hubServerAddress : h
    }

    /// docker CLI ConvertToHostname: "https://index.docker.io/v1/" → "index.docker.io"
    static func hostname(_ address: String) -> String {
        var s = Substring(address)
        if s.hasPrefix("http://") { s = s.dropFirst(7) } else if s.hasPrefix("https://") { s = s.dropFirst(8) }
        if let slash = s.firstIndex(of: "/") { s = s[..<slash] }
        return String(s)
    }

    public func credential(forRegistry host: String) throws -> RegistryCredential? {
        guard let file = try loadFile() else { return nil }
        let server = DockerCredentials.serverAddress(forRegistry: host)
        let wanted = keys(for: server)

        let helperEntry = file.credHelpers.first { wanted.contains(DockerCredentials.hostname($0.key)) || $0.key == server }
        if let pick = helperEntry.map({ ($0.value, "credHelpers") }) ?? file.credsStore.map({ ($0, "credsStore") }),
           !pick.0.isEmpty {
            if let c = try runHelper(pick.0, origin: pick.1, server: server) { return c }
        }
        let entry = file.auths[server] ?? file.auths.first { wanted.contains(DockerCredentials.hostname($0.key)) }?.value
        guard let entry, !entry.isEmpty else { return nil }
        return entry
    }

    /// Hostnames that name the same registry as `server` in config.json keys.
    private func keys(for server: String) -> Set<String> {
        let h = DockerCredentials.hostname(server)
        if server == DockerCredentials.hubServerAddress {
            return [Reference.legacyDefaultDomain, Reference.defaultDomain, Reference.defaultRegistryHost]
        }
        return [h]
    }

    struct File {
        var auths: [String: RegistryCredential] = [:]
        var credHelpers: [String: String] = [:]
        var credsStore: String?
    }

    /// nil when there is no config file (anonymous, as for the docker CLI).
    func loadFile() throws -> File? {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: configPath))
        } catch let e as CocoaError where e.code == .fileReadNoSuchFile {
            return nil
        } catch {
            throw ImagesError(.invalidArgument, "docker config \(configPath): cannot read it: \(readFailure(error))")
        }
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return File() }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ImagesError(.invalidArgument, "docker config \(configPath): not valid JSON: \(jsonFailure(error))")
        }
        guard let top = object as? [String: Any] else {
            throw ImagesError(.invalidArgument, "docker config \(configPath): expected a JSON object at the top")
        }
        func bad(_ what: String) -> ImagesError { ImagesError(.invalidArgument, "docker config \(configPath): \(what)") }
        // Go's encoding/json matches keys without regard to case; so does this.
        func field(_ object: [String: Any], _ name: String) -> Any? {
            if let v = object[name] { return v }
            return object.first { $0.key.lowercased() == name.lowercased() }?.value
        }
        func string(_ object: [String: Any], _ name: String, _ path: String) throws -> String? {
            guard let v = field(object, name), !(v is NSNull) else { return nil }
            guard let s = v as? String else { throw bad("\(path).\(name) must be a string") }
            return s
        }
        var file = File()
        if let a = field(top, "auths"), !(a is NSNull) {
            guard let auths = a as? [String: Any] else { throw bad("\"auths\" must be an object") }
            for (key, value) in auths {
                guard let e = value as? [String: Any] else { throw bad("auths[\"\(key)\"] must be an object") }
                let path = "auths[\"\(key)\"]"
                var c = RegistryCredential(username: try string(e, "username", path), password: try string(e, "password", path),
                                           identityToken: try string(e, "identitytoken", path),
                                           registryToken: try string(e, "registrytoken", path))
                if let auth = try string(e, "auth", path), !auth.isEmpty {
                    guard let decoded = Data(base64Encoded: auth, options: .ignoreUnknownCharacters),
                          let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else {
                        throw bad("\(path).auth is not base64 of \"user:password\"")
                    }
                    c.username = String(text[..<colon])
                    c.password = String(text[text.index(after: colon)...])
                }
                file.auths[key] = c
            }
        }
        if let h = field(top, "credHelpers"), !(h is NSNull) {
            guard let helpers = h as? [String: Any], let s = helpers as? [String: String] else {
                throw bad("\"credHelpers\" must map registries to helper names")
            }
            file.credHelpers = s
        }
        file.credsStore = try string(top, "credsStore", "")
        return file
    }

    /// Runs `docker-credential-<name> get` with the server address on stdin (the docker-credential-helpers
    /// protocol); nil when the helper has no credentials for it.
    private func runHelper(_ name: String, origin: String, server: String) throws -> RegistryCredential? {
        let program = "docker-credential-" + name
        guard let executable = searchPath.split(separator: ":").lazy
            .map({ String($0) + "/" + program }).first(where: { access($0, X_OK) == 0 }) else {
            throw ImagesError(.invalidArgument, "docker config \(configPath): \(origin) names \"\(name)\", but \(program) is not on PATH (\(searchPath))")
        }
        let p = Foundation.Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["get"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = errors
        do { try p.run() } catch {
            throw ImagesError(.system, "credential helper \(executable): cannot start it: \(error.localizedDescription)")
        }
        input.fileHandleForWriting.write(Data(server.utf8))
        try? input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let outText = String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let errText = String(decoding: err, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard p.terminationStatus == 0 else {
            if outText.lowercased().contains("credentials not found") || errText.lowercased().contains("credentials not found") {
                return nil
            }
            let why = [outText, errText].filter { !$0.isEmpty }.joined(separator: "; ")
            throw ImagesError(.unauthorized, "credential helper \(program) get \(server): exit status \(p.terminationStatus)"
                + (why.isEmpty ? "" : ": " + why))
        }
        guard let object = try? JSONSerialization.jsonObject(with: out) as? [String: Any] else {
            throw ImagesError(.unauthorized, "credential helper \(program) get \(server): its output is not a JSON object: \(outText.prefix(200))")
        }
        let user = object["Username"] as? String ?? ""
        let secret = object["Secret"] as? String ?? ""
        if user.isEmpty && secret.isEmpty { return nil }
        if user == "<token>" { return RegistryCredential(identityToken: secret) }
        return RegistryCredential(username: user, password: secret)
    }
}

func readFailure(_ error: any Error) -> String {
    if let e = error as? CocoaError, let u = e.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
        return errnoString(Int32(u.code))
    }
    if let e = error as? CocoaError {
        switch e.code {
        case .fileReadNoPermission: return "permission denied"
        case .fileReadNoSuchFile: return "no such file"
        default: break
        }
    }
    return error.localizedDescription
}

func jsonFailure(_ error: any Error) -> String {
    let ns = error as NSError
    return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
}
