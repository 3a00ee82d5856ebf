// The OCI image-spec types (and the Docker schema2 equivalents that share their JSON shape): digests,
// descriptors, platforms, manifests, indexes and the image config. Codable is the standard library's, so
// this file keeps the OCI module free of Foundation; the daemon side decodes them with its JSONDecoder.

/// A content digest, "algorithm:encoded". Only sha256 and sha512 are accepted (image-spec's registered
/// algorithms); the encoded part is lowercase hex of the right length, so a digest is also a safe file name.
public struct Digest: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public enum Algorithm: String, Sendable, Codable {
        case sha256, sha512
        public var hexLength: Int { self == .sha256 ? 64 : 128 }
    }
    public let algorithm: Algorithm
    public let encoded: String

    public init(algorithm: Algorithm, encoded: String) throws {
        guard encoded.utf8.count == algorithm.hexLength,
              encoded.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else {
            throw OCIError(.invalidConfig, "digest \(algorithm.rawValue):\(encoded.prefix(140)): "
                + "not \(algorithm.hexLength) lowercase hex characters")
        }
        self.algorithm = algorithm
        self.encoded = encoded
    }

    /// For hex the caller made itself from a hash function's output (always the right length and case).
    public init(algorithm: Algorithm, hashOutputHex: String) {
        self.algorithm = algorithm
        encoded = hashOutputHex
    }

    public init(parsing text: String) throws {
        guard let colon = text.firstIndex(of: ":") else {
            throw OCIError(.invalidConfig, "digest \"\(text.prefix(140))\": expected algorithm:hex")
        }
        let name = String(text[..<colon])
        guard let algorithm = Algorithm(rawValue: name) else {
            throw OCIError(.invalidConfig, "digest \"\(text.prefix(140))\": unsupported algorithm \"\(name)\" (sha256, sha512)")
        }
        try self.init(algorithm: algorithm, encoded: String(text[text.index(after: colon)...]))
    }

    public var description: String { algorithm.rawValue + ":" + encoded }

    public static func < (a: Digest, b: Digest) -> Bool { a.description < b.description }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch let error as OCIError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Media types of the image spec and of Docker's registry API v2.
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let ociLayerNondistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    public static let ociLayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let ociEmpty = "application/vnd.oci.empty.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerLayerForeignGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    public static let dockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json"
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

    public static func isManifest(_ t: String) -> Bool { t == ociManifest || t == dockerManifest }
    public static func isIndex(_ t: String) -> Bool { t == ociIndex || t == dockerManifestList }
    public static func isSchema1(_ t: String) -> Bool { t == dockerSchema1 || t == dockerSchema1Signed }

    /// The layer's compression, from its media type; nil when the type is not a layer type we unpack.
    public static func layerCompression(_ t: String) -> LayerCompression? {
        switch t {
        case ociLayer, ociLayerNondistributable, "application/vnd.docker.image.rootfs.diff.tar": return LayerCompression.none
        case ociLayerGzip, ociLayerNondistributableGzip, dockerLayerGzip, dockerLayerForeignGzip: return .gzip
        case ociLayerZstd, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": return .zstd
        default: return nil
        }
    }
}

public enum LayerCompression: String, Sendable, Codable {
    case none, gzip, zstd
}

/// image-spec descriptor.md
public struct Descriptor: Hashable, Sendable, Codable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var urls: [String]?
    public var annotations: [String: String]?
    public var platform: Platform?
    public var artifactType: String?

    public init(mediaType: String, digest: Digest, size: Int64, annotations: [String: String]? = nil,
                platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
    }
}

/// image-index.md platform object
public struct Platform: Hashable, Sendable, Codable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var osVersion: String?
    public var osFeatures: [String]?
    public var variant: String?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// "os/arch[/variant]" as `--platform` takes it; arch aliases normalised the way containerd does
    /// (x86_64 → amd64, aarch64 → arm64, arm64 without a variant → v8, arm without one → v7).
    public init(parsing text: String) throws {
        let parts = text.lowercased().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else {
            throw OCIError(.invalidConfig, "platform \"\(text)\": expected os/arch[/variant]")
        }
        if parts.count == 1 {
            self.init(os: "linux", architecture: parts[0])
        } else {
            self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
        }
        self = normalized
    }

    public var normalized: Platform {
        var p = self
        switch p.architecture {
        case "x86_64", "x86-64": p.architecture = "amd64"
        case "aarch64": p.architecture = "arm64"
        case "i386", "i686": p.architecture = "386"
        case "armhf": p.architecture = "arm"; if p.variant == nil { p.variant = "v7" }
        case "armel": p.architecture = "arm"; if p.variant == nil { p.variant = "v6" }
        default: break
        }
        if p.architecture == "arm64", p.variant == "v8" { p.variant = nil }
        if p.architecture == "amd64", p.variant == "v1" { p.variant = nil }
        if p.architecture == "arm", p.variant == nil { p.variant = "v7" }
        return p
    }

    /// Does an index entry for `other` serve a request for this platform? The os and architecture must be
    /// equal after normalisation; a requested variant must be equal, none requested takes any.
    public func matches(_ other: Platform) -> Bool {
        let a = normalized, b = other.normalized
        guard a.os == b.os, a.architecture == b.architecture else { return false }
        if let v = a.variant { return v == b.variant }
        return true
    }

    public var description: String { os + "/" + architecture + (variant.map { "/" + $0 } ?? "") }

    /// linux/amd64 on x86_64 hosts (Docker's default), the host's architecture otherwise.
    public static var host: Platform {
        #if arch(x86_64)
        return Platform(os: "linux", architecture: "amd64")
        #elseif arch(arm64)
        return Platform(os: "linux", architecture: "arm64")
        #else
        return Platform(os: "linux", architecture: "unknown")
        #endif
    }
}

/// image-spec manifest.md (and Docker's schema2 manifest, which has the same shape)
public struct ImageManifest: Sendable, Codable, Hashable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(mediaType: String = MediaType.ociManifest, config: Descriptor, layers: [Descriptor],
                annotations: [String: String]? = nil) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
        self.annotations = annotations
    }
}

/// image-spec image-index.md (and Docker's manifest list)
public struct ImageIndex: Sendable, Codable, Hashable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var manifests: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(mediaType: String = MediaType.ociIndex, manifests: [Descriptor], annotations: [String: String]? = nil) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.manifests = manifests
        self.annotations = annotations
    }
}

/// image-spec config.md: the parts an engine reads. Unknown fields are not kept; the raw config blob
/// stays in the content store and is what inspect and push use.
public struct ImageConfig: Sendable, Codable, Hashable {
    public struct Config: Sendable, Codable, Hashable {
        public var User: String?
        public var ExposedPorts: [String: Empty]?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var Volumes: [String: Empty]?
        public var WorkingDir: String?
        public var Labels: [String: String]?
        public var StopSignal: String?
        public var ArgsEscaped: Bool?
        public var Healthcheck: Healthcheck?
        public var OnBuild: [String]?
        public var Shell: [String]?
        public init() {}
    }
    public struct Healthcheck: Sendable, Codable, Hashable {
        public var Test: [String]?
        public var Interval: Int64?
        public var Timeout: Int64?
        public var StartPeriod: Int64?
        public var Retries: Int?
    }
    public struct Empty: Sendable, Codable, Hashable { public init() {} }
    public struct RootFS: Sendable, Codable, Hashable {
        public var type: String
        public var diff_ids: [Digest]
        public init(diffIDs: [Digest]) { type = "layers"; diff_ids = diffIDs }
    }
    public struct History: Sendable, Codable, Hashable {
        public var created: String?
        public var author: String?
        public var created_by: String?
        public var comment: String?
        public var empty_layer: Bool?
        public init(created: String? = nil, createdBy: String? = nil, comment: String? = nil, emptyLayer: Bool? = nil) {
            self.created = created
            created_by = createdBy
            self.comment = comment
            empty_layer = emptyLayer
        }
    }

    public var created: String?
    public var author: String?
    public var architecture: String
    public var os: String
    public var variant: String?
    public var config: Config?
    public var rootfs: RootFS
    public var history: [History]?

    public init(platform: Platform, config: Config?, diffIDs: [Digest], history: [History]? = nil, created: String? = nil) {
        architecture = platform.architecture
        os = platform.os
        variant = platform.variant
        self.config = config
        rootfs = RootFS(diffIDs: diffIDs)
        self.history = history
        self.created = created
    }

    public var platform: Platform { Platform(os: os, architecture: architecture, variant: variant) }
}

/// The chain ID of a layer stack (image-spec config.md "Layer ChainID"): ChainID(L0) = DiffID(L0),
/// ChainID(L0|...|Ln) = sha256(ChainID(L0|...|Ln-1) + " " + DiffID(Ln)). `sha256` digests a string; it is
/// supplied by the caller so that this module carries no hashing code.
public func chainIDs(_ diffIDs: [Digest], sha256: (String) -> Digest) -> [Digest] {
    var out: [Digest] = []
    out.reserveCapacity(diffIDs.count)
    for d in diffIDs {
        out.append(out.last.map { sha256($0.description + " " + d.description) } ?? d)
    }
    return out
}
