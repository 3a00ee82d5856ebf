// Image references ("busybox", "user/app:1.2", "localhost:5000/x@sha256:…") parsed and normalised the way
// Docker does it (distribution/reference's ParseNormalizedNamed, then TagNameOnly for the default tag), with
// Docker's error texts, so a user sees in berth what docker would have told them.
//
// Grammar (distribution/reference regexp.go):
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path-component ( "/" path-component )*      (≤ 255 characters in all)
//   domain     := host [ ":" port ]   host := domain-component ( "." domain-component )* | "[" ipv6 "]"
//   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//   path-component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//   tag        := [\w][\w.-]{0,127}
//   digest     := algorithm ":" hex   (algorithm [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*, hex ≥ 32)
import OCI

/// A repository: where a registry keeps the manifests and blobs of one image name.
public struct Repository: Hashable, Sendable, CustomStringConvertible {
    /// "docker.io", "localhost:5000", "ghcr.io"
    public let domain: String
    /// "library/busybox", "user/app"
    public let path: String

    public init(domain: String, path: String) throws {
        let r = try Reference(domain: domain, path: path)
        self.domain = r.domain
        self.path = r.path
    }

    init(validDomain: String, path: String) {
        domain = validDomain
        self.path = path
    }

    /// "docker.io/library/busybox"
    public var name: String { domain + "/" + path }
    public var description: String { name }

    /// What `docker images` shows: "busybox", "user/app", "localhost:5000/x".
    public var familiarName: String {
        guard domain == Reference.defaultDomain else { return name }
        if path.hasPrefix(Reference.officialPrefix) {
            let rest = path.dropFirst(Reference.officialPrefix.count)
            if !rest.contains("/") { return String(rest) }
        }
        return path
    }

    /// The host (and port) to contact for this repository: "registry-1.docker.io" for Docker Hub.
    public var registryHost: String { Reference.registryHost(forDomain: domain) }
}

/// A normalised image reference: `docker.io/library/busybox:latest`, `localhost:5000/x@sha256:…`.
public struct Reference: Hashable, Sendable, CustomStringConvertible {
    public static let defaultDomain = "docker.io"
    public static let legacyDefaultDomain = "index.docker.io"
    public static let defaultRegistryHost = "registry-1.docker.io"
    public static let officialPrefix = "library/"
    public static let defaultTag = "latest"
    /// distribution/reference NameTotalLengthMax: domain, "/" and path together
    public static let nameTotalLengthMax = 255

    public let domain: String
    public let path: String
    public let tag: String?
    public let digest: Digest?

    /// Parses `text` as Docker does (`ParseNormalizedNamed`): a missing domain becomes docker.io, a
    /// single-component Hub name gets "library/", `index.docker.io` becomes docker.io. With `defaultTag`
    /// (the default), a reference with neither tag nor digest gets ":latest", as `docker pull` does.
    public init(parsing text: String, defaultTag: Bool = true) throws {
        if Reference.isHexIdentifier(text) {
            throw ImagesError(.invalidArgument,
                              "invalid repository name (\(text)), cannot specify 64-byte hexadecimal strings")
        }
        let (domain, remainder) = Reference.splitDockerDomain(text)
        let remote: Substring
        if let colon = remainder.firstIndex(of: ":") { remote = remainder[..<colon] } else { remote = remainder[...] }
        if remote.lowercased() != remote {
            throw ImagesError(.invalidArgument, "invalid reference format: repository name (\(remote)) must be lowercase")
        }
        let parsed = try Reference.parse(domain: domain, remainder: remainder)
        let tag = parsed.tag ?? (defaultTag && parsed.digest == nil ? Reference.defaultTag : nil)
        self.init(unchecked: parsed.domain, parsed.path, tag, parsed.digest)
    }

    /// A reference from its parts, validated as `init(parsing:)` validates them (no normalisation: the
    /// domain is taken as given, except that index.docker.io becomes docker.io).
    public init(domain: String, path: String, tag: String? = nil, digest: Digest? = nil) throws {
        let d = domain == Reference.legacyDefaultDomain ? Reference.defaultDomain : domain
        guard Reference.isDomain(d) else {
            throw ImagesError(.invalidArgument, "invalid reference format: \"\(domain)\" is not a registry host[:port]")
        }
        guard Reference.isPath(path) else {
            throw ImagesError(.invalidArgument, path.lowercased() != path && Reference.isPath(path.lowercased())
                ? "invalid reference format: repository name (\(path)) must be lowercase"
                : "invalid reference format: \"\(path)\" is not a repository path")
        }
        guard d.utf8.count + 1 + path.utf8.count <= Reference.nameTotalLengthMax else {
            throw ImagesError(.invalidArgument, "repository name must not be more than \(Reference.nameTotalLengthMax) characters")
        }
        if let tag, !Reference.isTag(tag) {
            throw ImagesError(.invalidArgument, "invalid tag format: \"\(tag.prefix(140))\" (up to 128 letters, digits, _ . -, not starting with . or -)")
        }
        self.init(unchecked: d, path, tag, digest)
    }

    private init(unchecked domain: String, _ path: String, _ tag: String?, _ digest: Digest?) {
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest
    }

    public var repository: Repository { Repository(validDomain: domain, path: path) }
    /// "docker.io/library/busybox"
    public var name: String { domain + "/" + path }
    /// "busybox", "user/app", "localhost:5000/x"
    public var familiarName: String { repository.familiarName }
    /// "busybox:latest", "user/app@sha256:…": what Docker prints for the reference
    public var familiarString: String { familiarName + suffix }
    /// "docker.io/library/busybox:latest"
    public var description: String { name + suffix }
    /// The registry host to contact: "registry-1.docker.io" for docker.io.
    public var registryHost: String { Reference.registryHost(forDomain: domain) }
    /// What goes after /manifests/ in the URL: the digest when there is one, else the tag.
    public var manifestReference: String { digest?.description ?? tag ?? Reference.defaultTag }

    public func with(tag: String?) throws -> Reference { try Reference(domain: domain, path: path, tag: tag, digest: digest) }
    public func with(digest: Digest?) -> Reference { Reference(unchecked: domain, path, tag, digest) }

    private var suffix: String {
        (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0.description } ?? "")
    }

    public static func registryHost(forDomain domain: String) -> String {
        domain == defaultDomain || domain == legacyDefaultDomain ? defaultRegistryHost : domain
    }

    // MARK: - parsing

    /// distribution/reference splitDockerDomain (the current one: an uppercase first component is a domain).
    static func splitDockerDomain(_ name: String) -> (String, String) {
        guard let slash = name.firstIndex(of: "/") else {
            return (defaultDomain, officialPrefix + name)
        }
        let first = String(name[..<slash])
        let rest = String(name[name.index(after: slash)...])
        var domain: String
        var remote: String
        if first == "localhost" || first.contains(".") || first.contains(":") || first.lowercased() != first {
            (domain, remote) = (first, rest)
        } else {
            (domain, remote) = (defaultDomain, name)
        }
        if domain == legacyDefaultDomain { domain = defaultDomain }
        if domain == defaultDomain && !remote.contains("/") { remote = officialPrefix + remote }
        return (domain, remote)
    }

    /// distribution/reference Parse of domain + "/" + remainder, with its error texts.
    private static func parse(domain: String, remainder: String) throws -> Reference {
        let whole = domain + "/" + remainder
        guard let parts = split(domain: domain, remainder: remainder) else {
            if whole.isEmpty { throw ImagesError(.invalidArgument, "repository name must have at least one component") }
            if split(domain: domain.lowercased(), remainder: remainder.lowercased()) != nil {
                throw ImagesError(.invalidArgument, "invalid reference format: repository name must be lowercase")
            }
            throw ImagesError(.invalidArgument, "invalid reference format")
        }
        if domain.utf8.count + 1 + parts.path.utf8.count > nameTotalLengthMax {
            throw ImagesError(.invalidArgument, "repository name must not be more than \(nameTotalLengthMax) characters")
        }
        var digest: Digest?
        if let text = parts.digest { digest = try parseDigest(text) }
        return Reference(unchecked: domain, parts.path, parts.tag, digest)
    }

    /// The reference grammar's match, or nil when it does not match.
    private static func split(domain: String, remainder: String) -> (path: String, tag: String?, digest: String?)? {
        guard isDomain(domain) else { return nil }
        var rest = Substring(remainder)
        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            let d = rest[rest.index(after: at)...]
            guard isDigestSyntax(d) else { return nil }
            digest = String(d)
            rest = rest[..<at]
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":") {
            let t = rest[rest.index(after: colon)...]
            guard !t.contains("/"), isTag(t) else { return nil }
            tag = String(t)
            rest = rest[..<colon]
        }
        guard isPath(rest) else { return nil }
        return (String(rest), tag, digest)
    }

    /// go-digest's Parse and Validate, for the algorithms berth supports.
    private static func parseDigest(_ text: String) throws -> Digest {
        guard let colon = text.firstIndex(of: ":") else {
            throw ImagesError(.invalidArgument, "invalid checksum digest format: \(text)")
        }
        let algorithm = String(text[..<colon])
        let hex = text[text.index(after: colon)...]
        guard let a = Digest.Algorithm(rawValue: algorithm) else {
            throw ImagesError(.invalidArgument, "unsupported digest algorithm: \(algorithm) (berth handles sha256 and sha512)")
        }
        guard hex.utf8.count == a.hexLength else {
            throw ImagesError(.invalidArgument, "invalid checksum digest length: \(algorithm) takes \(a.hexLength) hex characters, got \(hex.utf8.count)")
        }
        guard hex.utf8.allSatisfy({ isDigit($0) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw ImagesError(.invalidArgument, "invalid checksum digest format: \(text) (the hex must be lowercase)")
        }
        do { return try Digest(algorithm: a, encoded: String(hex)) } catch {
            throw ImagesError.wrap(error, "invalid checksum digest format", as: .invalidArgument)
        }
    }

    // MARK: - grammar pieces

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    private static func isLowerAlnum(_ c: UInt8) -> Bool { isDigit(c) || (c >= 0x61 && c <= 0x7a) }
    private static func isAlpha(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) }
    private static func isAlnum(_ c: UInt8) -> Bool { isDigit(c) || isAlpha(c) }
    private static func isWord(_ c: UInt8) -> Bool { isAlnum(c) || c == 0x5f }
    private static func isHex(_ c: UInt8) -> Bool { isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46) }

    static func isHexIdentifier<S: StringProtocol>(_ s: S) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { isDigit($0) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// path-component ( "/" path-component )*
    static func isPath<S: StringProtocol>(_ s: S) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        return !parts.isEmpty && parts.allSatisfy { isPathComponent($0.utf8) }
    }

    /// [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*
    private static func isPathComponent<C: Collection>(_ s: C) -> Bool where C.Element == UInt8 {
        var i = s.startIndex
        while true {
            // one alphanumeric run
            let runStart = i
            while i != s.endIndex && isLowerAlnum(s[i]) { i = s.index(after: i) }
            if i == runStart { return false }
            if i == s.endIndex { return true }
            // one separator
            let c = s[i]
            i = s.index(after: i)
            switch c {
            case UInt8(ascii: "."): break
            case UInt8(ascii: "_"):
                if i != s.endIndex && s[i] == UInt8(ascii: "_") { i = s.index(after: i) }
            case UInt8(ascii: "-"):
                while i != s.endIndex && s[i] == UInt8(ascii: "-") { i = s.index(after: i) }
            default: return false
            }
        }
    }

    /// host [ ":" port ]
    static func isDomain<S: StringProtocol>(_ s: S) -> Bool {
        let u = Array(s.utf8)
        var hostEnd = u.count
        if u.first == UInt8(ascii: "[") {
            guard let close = u.firstIndex(of: UInt8(ascii: "]")), close > 1,
                  u[1..<close].allSatisfy({ isHex($0) || $0 == UInt8(ascii: ":") }) else { return false }
            hostEnd = close + 1
        } else {
            if let colon = u.firstIndex(of: UInt8(ascii: ":")) { hostEnd = colon }
            let labels = u[..<hostEnd].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
            guard !labels.isEmpty else { return false }
            for label in labels {
                guard let f = label.first, let l = label.last, isAlnum(f), isAlnum(l),
                      label.allSatisfy({ isAlnum($0) || $0 == UInt8(ascii: "-") }) else { return false }
            }
        }
        if hostEnd == u.count { return true }
        guard u[hostEnd] == UInt8(ascii: ":") else { return false }
        let port = u[(hostEnd + 1)...]
        return !port.isEmpty && port.allSatisfy(isDigit)
    }

    /// [\w][\w.-]{0,127}
    static func isTag<S: StringProtocol>(_ s: S) -> Bool {
        let u = s.utf8
        guard let f = u.first, isWord(f), u.count <= 128 else { return false }
        return u.allSatisfy { isWord($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* ":" [[:xdigit:]]{32,}
    private static func isDigestSyntax<S: StringProtocol>(_ s: S) -> Bool {
        let u = Array(s.utf8)
        guard let colon = u.firstIndex(of: UInt8(ascii: ":")) else { return false }
        let alg = u[..<colon]
        let hex = u[(colon + 1)...]
        guard hex.count >= 32, hex.allSatisfy(isHex) else { return false }
        var expectAlpha = true
        for c in alg {
            if expectAlpha {
                guard isAlpha(c) else { return false }
                expectAlpha = false
            } else if c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") {
                expectAlpha = true
            } else if !isAlnum(c) {
                return false
            }
        }
        return !alg.isEmpty && !expectAlpha
    }
}
