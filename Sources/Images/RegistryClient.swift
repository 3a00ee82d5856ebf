// The registry client (OCI distribution-spec, Docker registry API v2): resolve a reference to a manifest,
// fetch manifests and blobs (blobs streamed to a sink, resumed with Range after a dropped connection), and
// push blobs (monolithic or chunked, cross-repository mount) and manifests. One shared AsyncHTTPClient
// pools keep-alive connections for every registry.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import OCI
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The bytes of a blob to push.
public enum BlobSource: Sendable {
    case bytes([UInt8])
    /// a file holding exactly the blob
    case file(String)
    /// up to `maxLength` bytes from `offset`; fewer only at the end
    case reader(@Sendable (_ offset: Int64, _ maxLength: Int) throws -> [UInt8])
}

/// What `pushBlob` did.
public enum BlobPushResult: Sendable, Hashable {
    /// the registry had it already
    case exists
    /// mounted from the other repository, nothing uploaded
    case mounted
    case uploaded
}

public final class RegistryClient: Sendable {
    /// containerd's limit on a manifest or index: bigger ones are refused before they are read.
    public static let manifestSizeLimit = 4 << 20
    /// What resolve accepts, in order of preference.
    public static let manifestMediaTypes = [MediaType.ociIndex, MediaType.dockerManifestList,
                                            MediaType.ociManifest, MediaType.dockerManifest]

    /// One HTTPClient for the process: keep-alive pools per host, redirects followed by the registry client itself.
    public static let sharedHTTPClient: HTTPClient = {
        var c = HTTPClient.Configuration()
        c.redirectConfiguration = .disallow
        c.timeout = .init(connect: .seconds(30), read: .seconds(60))
        c.decompression = .disabled
        // AHC would retry a failed TLS handshake until the request's deadline (a plain-HTTP registry answers
        // a ClientHello with a 400 at once); `retrying` and the endpoint fallback do the retrying here.
        c.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
    }()

    static let insecureTLS: TLSConfiguration = {
        var t = TLSConfiguration.makeClientConfiguration()
        t.certificateVerification = .none
        return t
    }()

    public struct RetryPolicy: Sendable {
        /// tries in all, the first included
        public var attempts: Int
        /// delay before the second try; doubled for each further one, up to 4 s
        public var initialDelay: Duration
        public init(attempts: Int = 5, initialDelay: Duration = .milliseconds(200)) {
            self.attempts = max(1, attempts)
            self.initialDelay = initialDelay
        }
        func delay(_ retry: Int) -> Duration {
            min(initialDelay * (1 << min(retry - 1, 5)), .seconds(4))
        }
    }

    struct State: Sendable {
        var challenges: [String: AuthChallenge] = [:]
        var tokens: [TokenKey: CachedToken] = [:]
        var tokenFetches: [TokenKey: Task<CachedToken, any Error>] = [:]
        var credentials: [String: (value: RegistryCredential?, expires: ContinuousClock.Instant)] = [:]
        /// insecure registries whose HTTPS failed and whose plain HTTP worked
        var plainHTTP: Set<String> = []
    }

    let http: HTTPClient
    let config: RegistryConfig
    let credentials: (any RegistryCredentialProvider)?
    let userAgent: String
    let retryPolicy: RetryPolicy
    let state = Mutex(State())

    /// - credentials: asked only when a registry answers 401; nil: always anonymous.
    public init(config: RegistryConfig = RegistryConfig(),
                credentials: (any RegistryCredentialProvider)? = DockerCredentials(),
                httpClient: HTTPClient = RegistryClient.sharedHTTPClient,
                userAgent: String = "berth/0.1",
                retry: RetryPolicy = RetryPolicy()) {
        self.config = config
        self.credentials = credentials
        http = httpClient
        self.userAgent = userAgent
        retryPolicy = retry
    }

    static func pullScope(_ path: String) -> String { "repository:\(path):pull" }
    static func pushScope(_ path: String) -> String { "repository:\(path):pull,push" }

    // MARK: - manifests

    /// The manifest or index a reference names (its digest when it has one, else its tag), verified against
    /// that digest and against the registry's Docker-Content-Digest.
    public func resolve(_ ref: Reference) async throws -> (descriptor: Descriptor, bytes: [UInt8]) {
        try await boundary("resolve \(ref)") {
            try await manifest(ref.repository, reference: ref.manifestReference, expected: ref.digest, what: ref.description)
        }
    }

    /// A manifest or index by digest (a platform's manifest out of an index).
    public func fetchManifest(_ repo: Repository, digest: Digest) async throws -> (descriptor: Descriptor, bytes: [UInt8]) {
        let what = "\(repo)@\(digest)"
        return try await boundary("fetch manifest \(what)") {
            try await manifest(repo, reference: digest.description, expected: digest, what: what)
        }
    }

    private func manifest(_ repo: Repository, reference: String, expected: Digest?, what: String) async throws
        -> (descriptor: Descriptor, bytes: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "Accept", value: (RegistryClient.manifestMediaTypes + ["*/*;q=0.1"]).joined(separator: ", "))
        let call = RegistryCall(method: .GET, target: "/v2/\(repo.path)/manifests/\(reference)", headers: headers,
                                scopes: [RegistryClient.pullScope(repo.path)], timeout: .seconds(120))
        return try await withEndpoints(repo, mirrors: true) { endpoint in
            try await retrying {
                let response = try await send(call, on: endpoint)
                guard response.status == .ok else {
                    throw try await failure(response, what, endpoint: endpoint, notFound: "manifest unknown: \(what)")
                }
                let limit = RegistryClient.manifestSizeLimit
                if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > limit {
                    throw ImagesError(.invalidContent, "manifest \(what) is \(length) bytes, more than the \(limit >> 20) MiB a manifest may have")
                }
                let bytes: [UInt8]
                do { bytes = try await readSmallBody(response, limit: limit, what: "manifest \(what)") } catch let e as ImagesError {
                    throw ImagesError(e.code, "manifest \(what) is more than the \(limit >> 20) MiB a manifest may have")
                }
                return (try checkManifest(bytes, headers: response.headers, expected: expected, what: what), bytes)
            }
        }
    }

    /// Media type (header or, for a generic Content-Type, the document itself), schema1 refusal and digests.
    func checkManifest(_ bytes: [UInt8], headers: HTTPHeaders, expected: Digest?, what: String) throws -> Descriptor {
        let header = headers.first(name: "Content-Type").map {
            String($0.split(separator: ";", maxSplits: 1).first ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
        let document = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        let declared = document?["mediaType"] as? String
        var mediaType = header
        let generic = ["", "application/json", "text/plain", "application/octet-stream", "binary/octet-stream"]
        if generic.contains(header) {
            if let declared {
                mediaType = declared
            } else if (document?["schemaVersion"] as? Int) == 1 {
                mediaType = MediaType.dockerSchema1
            } else if document?["manifests"] != nil {
                mediaType = MediaType.ociIndex
            } else if document?["config"] != nil && document?["layers"] != nil {
                mediaType = MediaType.ociManifest
            } else {
                throw ImagesError(.invalidContent, "manifest \(what): the registry sent \(header.isEmpty ? "no Content-Type" : header) and a document that is no manifest or index")
            }
        }
        if MediaType.isSchema1(mediaType) || (document?["schemaVersion"] as? Int) == 1 {
            throw ImagesError(.unsupported, "\(what): schema1 manifests are not supported (the image is too old; push it again with a current docker)")
        }
        guard MediaType.isManifest(mediaType) || MediaType.isIndex(mediaType) else {
            throw ImagesError(.unsupported, "manifest \(what): unsupported media type \"\(mediaType)\" (expected one of \(RegistryClient.manifestMediaTypes.joined(separator: ", ")))")
        }
        guard document != nil else {
            throw ImagesError(.invalidContent, "manifest \(what): not valid JSON")
        }
        if let declared, declared != mediaType {
            throw ImagesError(.invalidContent, "manifest \(what): the registry served it as \(mediaType), but it says it is \(declared)")
        }
        let digest = StreamHasher.digest(bytes, expected?.algorithm ?? .sha256)
        if let expected, digest != expected {
            throw ImagesError(.invalidContent, "manifest \(what): digest mismatch: got \(digest), expected \(expected)")
        }
        if let text = headers.first(name: "Docker-Content-Digest"), let claimed = try? Digest(parsing: text) {
            let mine = claimed.algorithm == digest.algorithm ? digest : StreamHasher.digest(bytes, claimed.algorithm)
            if mine != claimed {
                throw ImagesError(.invalidContent, "manifest \(what): digest mismatch: the registry says \(claimed), the bytes are \(mine)")
            }
        }
        return Descriptor(mediaType: mediaType, digest: expected ?? digest, size: Int64(bytes.count))
    }

    /// Uploads a manifest under a tag or its digest; returns its digest.
    public func pushManifest(_ repo: Repository, reference: String, mediaType: String, bytes: [UInt8]) async throws -> Digest {
        let what = "\(repo):\(reference)"
        return try await boundary("push manifest \(what)") {
            let digest: Digest
            if reference.contains(":") {
                let expected = try Digest(parsing: reference)
                digest = StreamHasher.digest(bytes, expected.algorithm)
                guard digest == expected else {
                    throw ImagesError(.invalidArgument, "the manifest's digest is \(digest), not \(expected)")
                }
            } else {
                guard Reference.isTag(reference) else {
                    throw ImagesError(.invalidArgument, "invalid tag format: \"\(reference)\"")
                }
                digest = StreamHasher.digest(bytes)
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: mediaType)
            headers.add(name: "Content-Length", value: String(bytes.count))
            let call = RegistryCall(method: .PUT, target: "/v2/\(repo.path)/manifests/\(reference)", headers: headers,
                                    body: { .bytes(ByteBuffer(bytes: bytes)) }, scopes: [RegistryClient.pushScope(repo.path)])
            return try await withEndpoints(repo, mirrors: false) { endpoint in
                let response = try await send(call, on: endpoint)
                guard response.status == .created || response.status == .ok || response.status == .accepted else {
                    throw try await failure(response, "PUT manifest", endpoint: endpoint)
                }
                _ = try? await readSmallBody(response, limit: 64 << 10, what: "PUT manifest")
                if let text = response.headers.first(name: "Docker-Content-Digest"), let claimed = try? Digest(parsing: text),
                   claimed.algorithm == digest.algorithm, claimed != digest {
                    throw ImagesError(.invalidContent, "the registry stored it as \(claimed), but its bytes are \(digest)")
                }
                return digest
            }
        }
    }

    // MARK: - blobs

    /// Whether the repository has the blob (HEAD).
    public func blobExists(_ repo: Repository, digest: Digest) async throws -> Bool {
        try await boundary("check blob \(repo)@\(digest)") {
            try await withEndpoints(repo, mirrors: true) { endpoint in
                try await blobExists(repo, digest, endpoint, scopes: [RegistryClient.pullScope(repo.path)])
            }
        }
    }

    func blobExists(_ repo: Repository, _ digest: Digest, _ endpoint: RegistryEndpoint, scopes: [String]) async throws -> Bool {
        let call = RegistryCall(method: .HEAD, target: "/v2/\(repo.path)/blobs/\(digest)", scopes: scopes, timeout: .seconds(60))
        return try await retrying {
            let response = try await send(call, on: endpoint)
            switch response.status.code {
            case 200: return true
            case 404: return false
            default: throw try await failure(response, "HEAD blob", endpoint: endpoint)
            }
        }
    }

    /// Streams the blob's bytes from `offset` to its end into `sink`, chunk by chunk as they arrive. After a
    /// dropped connection or a 5xx it asks again with `Range: bytes=N-` from what was delivered, so the sink
    /// sees one continuous stream; a registry that ignores the Range has the prefix skipped. More bytes
    /// than the descriptor's size fail at once. The digest is the caller's to verify (the content store
    /// hashes what it writes).
    public nonisolated(nonsending) func fetchBlob(_ repo: Repository, _ descriptor: Descriptor, from offset: Int64 = 0,
                                                  sink: (UnsafeRawBufferPointer) throws -> Void) async throws {
        let what = "blob \(repo)@\(descriptor.digest)"
        try await boundary("fetch \(what)") {
            guard offset >= 0, offset <= descriptor.size else {
                throw ImagesError(.invalidArgument, "offset \(offset) is outside the blob's \(descriptor.size) bytes")
            }
            var delivered = offset
            if delivered == descriptor.size && descriptor.size > 0 { return }
            try await withEndpoints(repo, mirrors: true) { endpoint in
                var attempt = 0
                while true {
                    do {
                        try await fetchBlobOnce(repo, descriptor, endpoint, delivered: &delivered, what: what, sink: sink)
                        return
                    } catch let e where RegistryClient.isTransient(e) && attempt + 1 < retryPolicy.attempts {
                        attempt += 1
                        try await Task.sleep(for: retryPolicy.delay(attempt))
                    } catch var e as TransportFailure {
                        // still a TransportFailure, so that the next endpoint (plain HTTP, Docker Hub after a mirror) is tried
                        e.summary = "\(endpoint.host): \(RegistryClient.describeTransport(e.underlying)) after \(attempt + 1) attempt\(attempt == 0 ? "" : "s"); \(delivered - offset) of \(descriptor.size - offset) bytes arrived"
                        throw e
                    } catch let e as RetryableStatus {
                        throw ImagesError(.registry, "\(e.message) after \(attempt + 1) attempts; \(delivered - offset) of \(descriptor.size - offset) bytes arrived")
                    }
                }
            }
        }
    }

    /// The sink's own failure, kept apart from the network's so it is not retried.
    private struct SinkFailure: Error { var error: any Error }

    private nonisolated(nonsending) func fetchBlobOnce(_ repo: Repository, _ descriptor: Descriptor, _ endpoint: RegistryEndpoint,
                                                       delivered: inout Int64, what: String,
                                                       sink: (UnsafeRawBufferPointer) throws -> Void) async throws {
        var headers = HTTPHeaders()
        if delivered > 0 { headers.add(name: "Range", value: "bytes=\(delivered)-") }
        let call = RegistryCall(method: .GET, target: "/v2/\(repo.path)/blobs/\(descriptor.digest)", headers: headers,
                                scopes: [RegistryClient.pullScope(repo.path)], timeout: .hours(24))
        let response = try await send(call, on: endpoint)
        var skip: Int64 = 0
        switch response.status.code {
        case 200:
            skip = delivered
        case 206:
            let range = response.headers.first(name: "Content-Range") ?? ""
            guard let start = RegistryClient.rangeStart(range), start <= delivered else {
                throw ImagesError(.registry, "asked for bytes \(delivered)-, the registry sent the range \"\(range)\"")
            }
            skip = delivered - start
        case 416 where delivered >= descriptor.size:
            return
        default:
            throw try await failure(response, "GET", endpoint: endpoint, notFound: "blob unknown: \(repo)@\(descriptor.digest)")
        }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int64.init),
           delivered - skip + length > descriptor.size {
            throw ImagesError(.invalidContent, "the registry announces \(delivered - skip + length) bytes, the descriptor says \(descriptor.size)")
        }
        do {
            for try await chunk in response.body {
                var n = Int64(chunk.readableBytes)
                var from = chunk.readerIndex
                if skip > 0 {
                    let s = min(skip, n)
                    skip -= s
                    n -= s
                    from += Int(s)
                    if n == 0 { continue }
                }
                guard delivered + n <= descriptor.size else {
                    throw ImagesError(.invalidContent, "the registry sent more than the descriptor's \(descriptor.size) bytes")
                }
                do {
                    try chunk.withUnsafeReadableBytes { raw in
                        try sink(UnsafeRawBufferPointer(rebasing: raw[(from - chunk.readerIndex)...]))
                    }
                } catch {
                    throw SinkFailure(error: error)
                }
                delivered += n
            }
        } catch let e as SinkFailure {
            throw e.error
        } catch let e as ImagesError {
            throw e
        } catch {
            if Task.isCancelled || error is CancellationError { throw CancellationError() }
            throw TransportFailure(url: endpoint.baseURL + call.target, underlying: error)
        }
        if delivered < descriptor.size {
            // a body that ended early and cleanly (no Content-Length, or a short one): ask for the rest
            throw TransportFailure(url: endpoint.baseURL + call.target,
                                   underlying: ImagesError(.registry, "the body ended after \(delivered) of \(descriptor.size) bytes"))
        }
    }

    /// "bytes 100-199/200" → 100
    static func rangeStart(_ header: String) -> Int64? {
        let t = header.trimmingCharacters(in: .whitespaces)
        guard t.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = t.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-") else { return nil }
        return Int64(spec[..<dash].trimmingCharacters(in: .whitespaces))
    }

    /// Uploads a blob unless the repository has it: HEAD first, then a cross-repository mount from
    /// `mountFrom` (another repository of the same registry) when given, else POST and one PUT (`chunkSize`
    /// nil) or PATCHes of `chunkSize` bytes and a closing PUT.
    public func pushBlob(_ repo: Repository, _ descriptor: Descriptor, from source: BlobSource,
                         mountFrom: String? = nil, chunkSize: Int? = nil) async throws -> BlobPushResult {
        let what = "blob \(repo)@\(descriptor.digest)"
        return try await boundary("push \(what)") {
            if let chunkSize, chunkSize <= 0 {
                throw ImagesError(.invalidArgument, "chunk size \(chunkSize) must be positive")
            }
            if let mountFrom, !Reference.isPath(mountFrom) {
                throw ImagesError(.invalidArgument, "cannot mount from \"\(mountFrom)\": not a repository path")
            }
            let reader = try BlobReader(source, size: descriptor.size)
            var scopes = [RegistryClient.pushScope(repo.path)]
            if let mountFrom, mountFrom != repo.path { scopes.append(RegistryClient.pullScope(mountFrom)) }
            return try await withEndpoints(repo, mirrors: false) { endpoint in
                if try await blobExists(repo, descriptor.digest, endpoint, scopes: scopes) { return .exists }
                var target = "/v2/\(repo.path)/blobs/uploads/"
                if let mountFrom, mountFrom != repo.path {
                    target += "?mount=\(RegistryClient.queryEscape(descriptor.digest.description))&from=\(RegistryClient.queryEscape(mountFrom))"
                }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: "0")
                let start = try await send(RegistryCall(method: .POST, target: target, headers: headers, scopes: scopes), on: endpoint)
                if start.status == .created, mountFrom != nil {
                    _ = try? await readSmallBody(start, limit: 64 << 10, what: "mount")
                    return .mounted
                }
                guard start.status == .accepted else {
                    throw try await failure(start, "POST upload", endpoint: endpoint)
                }
                _ = try? await readSmallBody(start, limit: 64 << 10, what: "POST upload")
                var location = try uploadLocation(start, endpoint)
                if let chunkSize {
                    var offset: Int64 = 0
                    while offset < descriptor.size {
                        let n = Int(min(Int64(chunkSize), descriptor.size - offset))
                        var h = HTTPHeaders()
                        h.add(name: "Content-Type", value: "application/octet-stream")
                        h.add(name: "Content-Range", value: "\(offset)-\(offset + Int64(n) - 1)")
                        h.add(name: "Content-Length", value: String(n))
                        let from = offset
                        let patch = RegistryCall(method: .PATCH, target: location, headers: h,
                                                 body: { reader.body(from: from, count: Int64(n)) }, scopes: scopes, timeout: .hours(1))
                        let r = try await send(patch, on: endpoint)
                        guard r.status == .accepted || r.status == .noContent else {
                            throw try await failure(r, "PATCH upload at \(offset)", endpoint: endpoint)
                        }
                        _ = try? await readSmallBody(r, limit: 64 << 10, what: "PATCH upload")
                        if let range = r.headers.first(name: "Range"), let end = range.split(separator: "-").last.flatMap({ Int64($0) }),
                           end != offset + Int64(n) - 1 {
                            throw ImagesError(.registry, "the registry has bytes up to \(end) of the upload, berth sent up to \(offset + Int64(n) - 1)")
                        }
                        location = try uploadLocation(r, endpoint, previous: location)
                        offset += Int64(n)
                    }
                }
                var h = HTTPHeaders()
                h.add(name: "Content-Type", value: "application/octet-stream")
                let size = chunkSize == nil ? descriptor.size : 0
                h.add(name: "Content-Length", value: String(size))
                var putBody: (@Sendable () -> HTTPClientRequest.Body)?
                if chunkSize == nil { putBody = { reader.body(from: 0, count: size) } }
                let put = RegistryCall(method: .PUT,
                                       target: location + (location.contains("?") ? "&" : "?") + "digest=" + RegistryClient.queryEscape(descriptor.digest.description),
                                       headers: h, body: putBody, scopes: scopes, timeout: .hours(1))
                let done = try await send(put, on: endpoint)
                guard done.status == .created || done.status == .noContent || done.status == .ok else {
                    if done.status == .badRequest {
                        let bytes = (try? await readSmallBody(done, limit: 64 << 10, what: "PUT upload")) ?? []
                        throw ImagesError(.invalidContent, "the registry refused the upload: \(registryErrorMessage(bytes) ?? "HTTP 400")")
                    }
                    throw try await failure(done, "PUT upload", endpoint: endpoint)
                }
                _ = try? await readSmallBody(done, limit: 64 << 10, what: "PUT upload")
                if let text = done.headers.first(name: "Docker-Content-Digest"), let claimed = try? Digest(parsing: text),
                   claimed != descriptor.digest {
                    throw ImagesError(.invalidContent, "the registry stored it as \(claimed)")
                }
                return .uploaded
            }
        }
    }

    /// The Location of an upload (relative or absolute), as an absolute URL.
    private func uploadLocation(_ response: HTTPClientResponse, _ endpoint: RegistryEndpoint, previous: String? = nil) throws -> String {
        guard let location = response.headers.first(name: "Location"), !location.isEmpty else {
            if let previous { return previous }
            throw ImagesError(.registry, "\(endpoint.host) started an upload without a Location header")
        }
        guard let base = URL(string: endpoint.baseURL + "/"), let url = URL(string: location, relativeTo: base)?.absoluteURL else {
            throw ImagesError(.registry, "\(endpoint.host) gave an upload Location that is not a URL: \"\(location)\"")
        }
        return url.absoluteString
    }

    static func queryEscape(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}

/// Reads a blob to push, in pieces, from whatever holds it.
final class BlobReader: Sendable {
    private let source: @Sendable (Int64, Int) throws -> [UInt8]
    let size: Int64
    static let piece = 1 << 20

    init(_ blob: BlobSource, size: Int64) throws {
        self.size = size
        switch blob {
        case .bytes(let b):
            guard Int64(b.count) == size else {
                throw ImagesError(.invalidArgument, "the source has \(b.count) bytes, the descriptor says \(size)")
            }
            source = { offset, max in
                let start = Int(offset)
                let end = Swift.min(b.count, start + max)
                return start < end ? Array(b[start..<end]) : []
            }
        case .file(let path):
            let file = try ReadOnlyFile(path)
            guard file.size == size else {
                throw ImagesError(.invalidArgument, "\(path) has \(file.size) bytes, the descriptor says \(size)")
            }
            source = { offset, max in try file.read(at: offset, max: max) }
        case .reader(let r):
            source = r
        }
    }

    /// `count` bytes from `offset`, as a request body read a piece at a time as the connection takes them.
    func body(from offset: Int64, count: Int64) -> HTTPClientRequest.Body {
        .stream(BlobPieces(reader: self, start: offset, end: offset + count), length: .known(count))
    }

    func read(at offset: Int64, max: Int) throws -> [UInt8] {
        let bytes = try source(offset, max)
        guard !bytes.isEmpty || max == 0 else {
            throw ImagesError(.invalidContent, "the blob's source ended at byte \(offset) of \(size)")
        }
        guard bytes.count <= max else {
            throw ImagesError(.invalidContent, "the blob's source gave \(bytes.count) bytes where \(max) were asked for")
        }
        return bytes
    }
}

struct BlobPieces: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let reader: BlobReader
    let start: Int64
    let end: Int64

    struct AsyncIterator: AsyncIteratorProtocol {
        let reader: BlobReader
        var offset: Int64
        let end: Int64
        mutating func next() async throws -> ByteBuffer? {
            guard offset < end else { return nil }
            let bytes = try reader.read(at: offset, max: Int(Swift.min(Int64(BlobReader.piece), end - offset)))
            offset += Int64(bytes.count)
            return ByteBuffer(bytes: bytes)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: reader, offset: start, end: end) }
}

/// A file opened for pread by several readers at once; closed with the last reference.
final class ReadOnlyFile: Sendable {
    let fd: Int32
    let path: String
    let size: Int64

    init(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImagesError.system("open \(path)", errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw ImagesError.system("stat \(path)", errno: e)
        }
        self.fd = fd
        self.path = path
        size = Int64(st.st_size)
    }

    deinit { close(fd) }

    func read(at offset: Int64, max: Int) throws -> [UInt8] {
        guard max > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: max)
        var got = 0
        while got < max {
            let n = out.withUnsafeMutableBytes { p -> Int in
                guard let base = p.baseAddress else { return 0 }
                return pread(fd, base + got, max - got, off_t(offset) + off_t(got))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw ImagesError.system("read \(path)", errno: errno)
            }
            if n == 0 { break }
            got += n
        }
        out.removeSubrange(got...)
        return out
    }
}
