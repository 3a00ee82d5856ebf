// The registry client against real registries started here: Debian's docker-registry (distribution 2.8)
// anonymous, with htpasswd (Basic) and with token auth (tests/registry/token-server.py), and the
// misbehaving tests/registry/fake-registry.py for what a good registry never does.
import Foundation
import Testing
@testable import Images
import OCI

private func manifestBytes(config: Descriptor, layers: [Descriptor]) throws -> [UInt8] {
    let m = ImageManifest(config: config, layers: layers)
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return Array(try e.encode(m))
}

private func fetch(_ client: RegistryClient, _ repo: Repository, _ d: Descriptor, from offset: Int64 = 0) async throws -> [UInt8] {
    let c = Collector()
    try await client.fetchBlob(repo, d, from: offset) { c.sink($0) }
    return c.bytes
}

private let quick = RegistryClient.RetryPolicy(attempts: 4, initialDelay: .milliseconds(20))

@Suite("Registry: docker-registry, anonymous", .timeLimit(.minutes(2)))
struct RegistryAnonymousTests {
    @Test func pushPullBlobsAndManifests() async throws {
        let server = try TestServer.registry()
        defer { server.stop() }
        let client = RegistryClient(credentials: nil, retry: quick)
        let repo = try Repository(domain: server.host, path: "berth/test")

        // monolithic and chunked uploads
        let a = RegistryFixtures.blob((1 << 20) + 3, seed: 1)
        let b = RegistryFixtures.blob(700_001, seed: 2)
        let da = RegistryFixtures.descriptor(a), db = RegistryFixtures.descriptor(b)
        #expect(try await client.blobExists(repo, digest: da.digest) == false)
        #expect(try await client.pushBlob(repo, da, from: .bytes(a)) == .uploaded)
        #expect(try await client.pushBlob(repo, da, from: .bytes(a)) == .exists)
        #expect(try await client.pushBlob(repo, db, from: .bytes(b), chunkSize: 256 << 10) == .uploaded)
        #expect(try await client.blobExists(repo, digest: da.digest))
        #expect(try await client.blobExists(repo, digest: db.digest))
        #expect(try await fetch(client, repo, da) == a)
        #expect(try await fetch(client, repo, db) == b)
        // from an offset: the registry answers the Range with 206
        #expect(try await fetch(client, repo, da, from: 1000) == Array(a[1000...]))

        // a file source, chunked with a last short chunk
        let c = RegistryFixtures.blob(300_000, seed: 3)
        let file = try RegistryFixtures.tempDir("src") + "/blob"
        defer { try? FileManager.default.removeItem(atPath: (file as NSString).deletingLastPathComponent) }
        try Data(c).write(to: URL(fileURLWithPath: file))
        let dc = RegistryFixtures.descriptor(c, MediaType.ociConfig)
        #expect(try await client.pushBlob(repo, dc, from: .file(file), chunkSize: 128 << 10) == .uploaded)

        // manifest by tag and by digest
        let manifest = try manifestBytes(config: dc, layers: [da, db])
        let digest = try await client.pushManifest(repo, reference: "v1", mediaType: MediaType.ociManifest, bytes: manifest)
        #expect(digest == StreamHasher.digest(manifest))
        let ref = try Reference(parsing: "\(server.host)/berth/test:v1")
        let (desc, bytes) = try await client.resolve(ref)
        #expect(desc.digest == digest)
        #expect(desc.mediaType == MediaType.ociManifest)
        #expect(desc.size == Int64(manifest.count))
        #expect(bytes == manifest)
        let byDigest = try await client.resolve(ref.with(digest: digest))
        #expect(byDigest.bytes == manifest)
        let fetched = try await client.fetchManifest(repo, digest: digest)
        #expect(fetched.descriptor.digest == digest)
        // pushed by digest
        _ = try await client.pushManifest(repo, reference: digest.description, mediaType: MediaType.ociManifest, bytes: manifest)
        // an index of it, Docker's list type
        let index = ImageIndex(mediaType: MediaType.dockerManifestList, manifests: [desc])
        let indexBytes = Array(try JSONEncoder().encode(index))
        _ = try await client.pushManifest(repo, reference: "list", mediaType: MediaType.dockerManifestList, bytes: indexBytes)
        let list = try await client.resolve(try Reference(parsing: "\(server.host)/berth/test:list"))
        #expect(list.descriptor.mediaType == MediaType.dockerManifestList)
    }

    @Test func notFoundAndMount() async throws {
        let server = try TestServer.registry()
        defer { server.stop() }
        let client = RegistryClient(credentials: nil, retry: quick)
        let repo = try Repository(domain: server.host, path: "berth/one")
        let other = try Repository(domain: server.host, path: "berth/two")

        await expectImagesError(.notFound, containing: "manifest unknown: \(server.host)/berth/one:nope") {
            _ = try await client.resolve(try Reference(parsing: "\(server.host)/berth/one:nope"))
        }
        let missing = RegistryFixtures.descriptor([1, 2, 3])
        await expectImagesError(.notFound, containing: "blob unknown") {
            _ = try await fetch(client, repo, missing)
        }
        #expect(try await client.blobExists(repo, digest: missing.digest) == false)

        let a = RegistryFixtures.blob(100_000, seed: 4)
        let da = RegistryFixtures.descriptor(a)
        #expect(try await client.pushBlob(repo, da, from: .bytes(a)) == .uploaded)
        #expect(try await client.pushBlob(other, da, from: .bytes(a), mountFrom: "berth/one") == .mounted)
        #expect(try await fetch(client, other, da) == a)
        // mount from a repository without the blob: the registry answers 202, the client uploads
        let b = RegistryFixtures.blob(5_000, seed: 5)
        let db = RegistryFixtures.descriptor(b)
        #expect(try await client.pushBlob(other, db, from: .bytes(b), mountFrom: "berth/none") == .uploaded)

        // a source that does not match the descriptor: the registry refuses the digest
        let wrong = Descriptor(mediaType: MediaType.ociLayer, digest: StreamHasher.digest([9]), size: Int64(b.count))
        await expectImagesError(.invalidContent) {
            _ = try await client.pushBlob(repo, wrong, from: .bytes(b))
        }
        await expectImagesError(.invalidArgument, containing: "descriptor says") {
            _ = try await client.pushBlob(repo, db, from: .bytes([1]))
        }
    }

    /// ~50 MB from the local registry, with the throughput printed (and compared to curl by the report).
    @Test func bigBlobThroughput() async throws {
        let server = try TestServer.registry()
        defer { server.stop() }
        let client = RegistryClient(credentials: nil, retry: quick)
        let repo = try Repository(domain: server.host, path: "berth/big")
        let size = 50 << 20
        let blob = RegistryFixtures.blob(size, seed: 6)
        let d = RegistryFixtures.descriptor(blob)
        let pushStart = ContinuousClock.now
        #expect(try await client.pushBlob(repo, d, from: .bytes(blob), chunkSize: 8 << 20) == .uploaded)
        let pushTime = ContinuousClock.now - pushStart
        final class Counter { var n = 0; let h = StreamHasher() }
        let counter = Counter()
        // warm the connection and the registry's cache of the blob
        try await client.fetchBlob(repo, d, from: Int64(size - 10)) { counter.n += $0.count }
        counter.n = 0
        let start = ContinuousClock.now
        try await client.fetchBlob(repo, d) { p in counter.n += p.count }
        let elapsed = ContinuousClock.now - start
        #expect(counter.n == size)
        try await client.fetchBlob(repo, d) { p in counter.h.update(p) }
        #expect(counter.h.finish() == d.digest)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let pushSeconds = Double(pushTime.components.seconds) + Double(pushTime.components.attoseconds) / 1e18
        print("registry blob GET: \(size >> 20) MiB in \(String(format: "%.3f", seconds)) s = \(String(format: "%.0f", Double(size) / seconds / 1e6)) MB/s; push (8 MiB chunks) \(String(format: "%.0f", Double(size) / pushSeconds / 1e6)) MB/s; url \(server.baseURL)/v2/\(repo.path)/blobs/\(d.digest)")
        if let wait = ProcessInfo.processInfo.environment["BERTH_REGISTRY_BENCH_WAIT"], let s = UInt32(wait) {
            sleep(s)  // lets a person run curl against the same URL
        }
    }
}

@Suite("Registry: docker-registry with htpasswd (Basic)", .timeLimit(.minutes(2)))
struct RegistryBasicTests {
    @Test func basicAuth() async throws {
        let server = try TestServer.registry(.htpasswd(user: "alice", password: "s3cret"))
        defer { server.stop() }
        let repo = try Repository(domain: server.host, path: "private/app")
        let blob = RegistryFixtures.blob(10_000, seed: 7)
        let d = RegistryFixtures.descriptor(blob)

        let (creds, dir) = try dockerConfig(basicAuthConfig(host: server.host, user: "alice", password: "s3cret"))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let client = RegistryClient(credentials: creds, retry: quick)
        #expect(try await client.pushBlob(repo, d, from: .bytes(blob), chunkSize: 4096) == .uploaded)
        #expect(try await fetch(client, repo, d) == blob)
        let manifest = try manifestBytes(config: d, layers: [])
        _ = try await client.pushManifest(repo, reference: "latest", mediaType: MediaType.ociManifest, bytes: manifest)
        #expect(try await client.resolve(try Reference(parsing: "\(server.host)/private/app")).bytes == manifest)

        // nobody
        let anonymous = RegistryClient(credentials: nil, retry: quick)
        await expectImagesError(.unauthorized, containing: "unauthorized: authentication required") {
            _ = try await anonymous.resolve(try Reference(parsing: "\(server.host)/private/app"))
        }
        // no entry for the host in config.json: the hint names the file
        let (none, dir2) = try dockerConfig(#"{"auths": {}}"#)
        defer { try? FileManager.default.removeItem(atPath: dir2) }
        await expectImagesError(.unauthorized, containing: "docker login \(server.host)") {
            _ = try await RegistryClient(credentials: none, retry: quick).blobExists(repo, digest: d.digest)
        }
        // the wrong password
        let (bad, dir3) = try dockerConfig(basicAuthConfig(host: "http://\(server.host)/v2/", user: "alice", password: "nope"))
        defer { try? FileManager.default.removeItem(atPath: dir3) }
        await expectImagesError(.unauthorized, containing: "were refused") {
            _ = try await fetch(RegistryClient(credentials: bad, retry: quick), repo, d)
        }
    }
}

@Suite("Registry: docker-registry with token auth (Bearer)", .timeLimit(.minutes(2)))
struct RegistryTokenTests {
    func start(_ extra: [String]) throws -> (TestServer, TestServer) {
        let tokens = try TestServer.tokenServer(extra + ["--service", "berth-test-registry", "--issuer", "berth-test-issuer"])
        do {
            let registry = try TestServer.registry(.token(realm: "\(tokens.baseURL)/token", service: "berth-test-registry",
                                                          issuer: "berth-test-issuer", certificate: tokens.certificate))
            return (tokens, registry)
        } catch {
            tokens.stop()
            throw error
        }
    }

    @Test func bearerPushPullMountAndCaching() async throws {
        let (tokens, server) = try start(["--user", "bob:hunter2", "--anonymous-pull", "--deny", "team/secret"])
        defer { server.stop(); tokens.stop() }
        let (creds, dir) = try dockerConfig(#"{"auths": {"https://\#(server.host)": {"username": "bob", "password": "hunter2"}}}"#)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let client = RegistryClient(credentials: creds, retry: quick)
        let repo = try Repository(domain: server.host, path: "team/app")
        let copy = try Repository(domain: server.host, path: "team/copy")
        let blob = RegistryFixtures.blob(200_000, seed: 8)
        let d = RegistryFixtures.descriptor(blob)

        #expect(try await client.pushBlob(repo, d, from: .bytes(blob)) == .uploaded)
        let manifest = try manifestBytes(config: d, layers: [d])
        let digest = try await client.pushManifest(repo, reference: "1.0", mediaType: MediaType.ociManifest, bytes: manifest)
        // pull: a new scope set, one token; the second pull reuses it
        let ref = try Reference(parsing: "\(server.host)/team/app:1.0")
        #expect(try await client.resolve(ref).descriptor.digest == digest)
        #expect(try await fetch(client, repo, d) == blob)
        #expect(try await client.resolve(ref).bytes == manifest)
        #expect(try await fetch(client, repo, d) == blob)
        let pullKey = "repository:team/app:pull"
        var scopes = try tokens.stats()["scopes"] as? [String: Int] ?? [:]
        #expect(scopes[pullKey] == 1, "\(scopes)")
        #expect(scopes["repository:team/app:pull,push"] == 1, "\(scopes)")

        // mount: push on the target, pull on the source, in one token
        #expect(try await client.pushBlob(copy, d, from: .bytes(blob), mountFrom: "team/app") == .mounted)
        scopes = try tokens.stats()["scopes"] as? [String: Int] ?? [:]
        #expect(scopes["repository:team/app:pull repository:team/copy:pull,push"] == 1, "\(scopes)")
        #expect(try await fetch(client, copy, d) == blob)

        // a scope the token server will not grant
        await expectImagesError(.unauthorized, containing: "authentication required") {
            _ = try await client.resolve(try Reference(parsing: "\(server.host)/team/secret:1"))
        }
        // anonymous: pull yes, push no
        let anonymous = RegistryClient(credentials: nil, retry: quick)
        #expect(try await fetch(anonymous, repo, d) == blob)
        await expectImagesError(.unauthorized) {
            _ = try await anonymous.pushBlob(try Repository(domain: server.host, path: "team/other"), d, from: .bytes(blob))
        }
        // wrong password: the token server refuses
        let (bad, dir2) = try dockerConfig(basicAuthConfig(host: server.host, user: "bob", password: "x"))
        defer { try? FileManager.default.removeItem(atPath: dir2) }
        await expectImagesError(.unauthorized, containing: "incorrect username or password") {
            _ = try await RegistryClient(credentials: bad, retry: quick).resolve(ref)
        }
    }

    @Test func identityTokenAndRegistryToken() async throws {
        let (tokens, server) = try start(["--user", "bob:hunter2", "--refresh-token", "refresh-me"])
        defer { server.stop(); tokens.stop() }
        let repo = try Repository(domain: server.host, path: "team/id")
        let blob = RegistryFixtures.blob(1000, seed: 9)
        let d = RegistryFixtures.descriptor(blob)
        let (creds, dir) = try dockerConfig(#"{"auths": {"\#(server.host)": {"identitytoken": "refresh-me"}}}"#)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let client = RegistryClient(credentials: creds, retry: quick)
        #expect(try await client.pushBlob(repo, d, from: .bytes(blob)) == .uploaded)
        #expect(try await fetch(client, repo, d) == blob)

        let (wrong, dir2) = try dockerConfig(#"{"auths": {"\#(server.host)": {"identitytoken": "stale"}}}"#)
        defer { try? FileManager.default.removeItem(atPath: dir2) }
        await expectImagesError(.unauthorized, containing: "bad refresh token") {
            _ = try await fetch(RegistryClient(credentials: wrong, retry: quick), repo, d)
        }
        // a registry token is sent as it is: a garbage one is refused by the registry
        let (raw, dir3) = try dockerConfig(#"{"auths": {"\#(server.host)": {"registrytoken": "not-a-jwt"}}}"#)
        defer { try? FileManager.default.removeItem(atPath: dir3) }
        await expectImagesError(.unauthorized) {
            _ = try await fetch(RegistryClient(credentials: raw, retry: quick), repo, d)
        }
    }
}

@Suite("Registry: a misbehaving registry", .timeLimit(.minutes(2)))
struct RegistryMisbehaviourTests {
    func client(_ creds: (any RegistryCredentialProvider)? = nil) -> RegistryClient {
        RegistryClient(credentials: creds, retry: quick)
    }

    @Test func manifests() async throws {
        let server = try TestServer.fakeRegistry()
        defer { server.stop() }
        let c = client()
        let some = StreamHasher.digest("something else")
        func ref(_ mode: String, _ tag: String = "latest") throws -> Reference {
            try Reference(parsing: "\(server.host)/\(mode)/x:\(tag)")
        }
        await expectImagesError(.invalidContent, containing: "digest mismatch") {
            _ = try await c.resolve(try ref("baddigest").with(digest: some))
        }
        await expectImagesError(.invalidContent, containing: "the registry says sha256:0000") {
            _ = try await c.resolve(try ref("badheader"))
        }
        await expectImagesError(.invalidContent, containing: "4 MiB") {
            _ = try await c.resolve(try ref("big"))
        }
        await expectImagesError(.invalidContent, containing: "4 MiB") {
            _ = try await c.resolve(try ref("bigchunked"))
        }
        await expectImagesError(.unsupported, containing: "schema1 manifests are not supported (the image is too old; push it again with a current docker)") {
            _ = try await c.resolve(try ref("schema1"))
        }
        await expectImagesError(.unsupported, containing: "unsupported media type \"application/vnd.oci.image.layer.v1.tar+gzip\"") {
            _ = try await c.resolve(try ref("layertype"))
        }
        let sniffed = try await c.resolve(try ref("sniff"))
        #expect(sniffed.descriptor.mediaType == MediaType.ociIndex)
        // a 500 first: retried
        let flaky = try await c.resolve(try ref("flaky"))
        #expect(flaky.descriptor.mediaType == MediaType.ociIndex)
        await expectImagesError(.notFound, containing: "manifest unknown") {
            _ = try await c.resolve(try ref("nothing"))
        }
    }

    @Test func blobsResumeAndFail() async throws {
        let server = try TestServer.fakeRegistry()
        defer { server.stop() }
        let blob = RegistryFixtures.blob(3 << 20, seed: 10)
        let d = RegistryFixtures.descriptor(blob)
        try Data(blob).write(to: URL(fileURLWithPath: server.dir + "/blobs/" + d.digest.encoded))
        let c = client()
        func repo(_ mode: String) throws -> Repository { try Repository(domain: server.host, path: "\(mode)/x") }

        // dropped half-way, resumed with Range (206)
        #expect(try await fetch(c, try repo("droponce"), d) == blob)
        let ranges = (try server.stats()["requests"] as? [[String: Any]] ?? [])
            .filter { ($0["path"] as? String)?.contains("/droponce/") == true }.compactMap { $0["range"] as? String }
        #expect(ranges.count == 1 && ranges[0].hasPrefix("bytes=") && ranges[0] != "bytes=0-", "\(ranges)")
        // dropped, and the registry ignores the Range: the prefix is skipped
        #expect(try await fetch(c, try repo("dropnorange"), d) == blob)
        // a 503 first
        #expect(try await fetch(c, try repo("erronce"), d) == blob)
        // dropped every time: fails after the retries, saying how far it got
        final class Count { var n = 0 }
        let got = Count()
        await expectImagesError(.registry, containing: "bytes arrived") {
            try await c.fetchBlob(try repo("dropalways"), d) { got.n += $0.count }
        }
        #expect(got.n > blob.count / 2 && got.n < blob.count)
        // more than the descriptor's size
        await expectImagesError(.invalidContent, containing: "descriptor") {
            _ = try await fetch(c, try repo("long"), d)
        }
        // a sink that fails: not retried, its error comes through
        do {
            try await c.fetchBlob(try repo("plain"), d) { _ in throw ImagesError(.system, "disk full") }
            Issue.record("the sink's error was lost")
        } catch let e as ImagesError {
            #expect(e.code == .system && e.message.contains("disk full"), "\(e)")
        }
    }

    @Test func redirectDropsAuthorization() async throws {
        let server = try TestServer.fakeRegistry()
        defer { server.stop() }
        let blob = RegistryFixtures.blob(50_000, seed: 11)
        let d = RegistryFixtures.descriptor(blob)
        try Data(blob).write(to: URL(fileURLWithPath: server.dir + "/blobs/" + d.digest.encoded))
        let (creds, dir) = try dockerConfig(basicAuthConfig(host: server.host, user: "u", password: "p"))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = client(creds)
        #expect(try await fetch(c, try Repository(domain: server.host, path: "redirect/x"), d) == blob)
        let requests = try server.stats()["requests"] as? [[String: Any]] ?? []
        let registryAuth = requests.filter { ($0["path"] as? String)?.hasPrefix("/v2/redirect/") == true }.compactMap { $0["auth"] as? String }
        let storage = requests.filter { ($0["path"] as? String)?.hasPrefix("/storage/") == true }
        #expect(registryAuth.contains { $0.hasPrefix("Basic ") }, "\(requests)")
        #expect(storage.count == 1, "\(requests)")
        #expect(storage.allSatisfy { $0["auth"] == nil || $0["auth"] is NSNull }, "\(storage)")
    }

    @Test func unreachableRegistry() async throws {
        let port = try RegistryFixtures.freePort()
        let c = client()
        await expectImagesError(.registry) {
            _ = try await c.resolve(try Reference(parsing: "127.0.0.1:\(port)/x/y:z"))
        }
    }
}
