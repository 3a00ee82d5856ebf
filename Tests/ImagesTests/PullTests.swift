// End to end against real peers: Debian's docker-registry on 127.0.0.1 (scripts/registry.sh), images built
// offline from busybox-static (scripts/image-fixtures.sh) and pushed with skopeo; what berth pushes and
// saves is read back with skopeo and umoci, what they write berth loads.
import Foundation
import Glibc
@testable import Images
import OCI
import Testing

enum ImageFixtures {
    static let repoRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// BERTH_FIXTURES/images (make fixtures builds it), else the repository's fixtures/cache/images.
    static let dir: String? = {
        let base = ProcessInfo.processInfo.environment["BERTH_FIXTURES"] ?? repoRoot + "/fixtures/cache"
        let d = base + "/images"
        return FileManager.default.fileExists(atPath: d + "/busybox/index.json") ? d : nil
    }()

    static var available: Bool { dir != nil && geteuid() == 0 && tool("docker-registry") && tool("skopeo") }

    static func tool(_ name: String) -> Bool {
        ["/usr/bin/", "/usr/sbin/", "/usr/local/bin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + name) }
    }

    static let reason = "needs root, docker-registry, skopeo and the image fixtures (`sudo make fixtures`)"

    struct Expected: Decodable {
        struct File: Decodable {
            var path: String
            var type: String
            var mode: String?
            var uid: Int?
            var sha256: String?
            var target: String?
            var linkedTo: [String]?
        }
        var files: [File]?
        var absent: [String]?
    }

    static func expected(_ image: String) -> Expected? {
        // {"images": {NAME: {"tags": {"latest": {files, absent, …}}}}}, written by scripts/image-fixtures.py
        guard let dir, let data = FileManager.default.contents(atPath: dir + "/EXPECTED.json"),
              let all = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let images = all["images"] as? [String: Any], let img = images[image] as? [String: Any],
              let tags = img["tags"] as? [String: Any], let entry = tags["latest"],
              let raw = try? JSONSerialization.data(withJSONObject: entry)
        else { return nil }
        return try? JSONDecoder().decode(Expected.self, from: raw)
    }
}

/// Runs a tool from PATH (or by absolute path); its output when it succeeds.
@discardableResult
func runTool(_ argv: [String]) throws -> String {
    var a = argv
    if !a[0].hasPrefix("/") {
        let path = ["/usr/bin/", "/usr/sbin/", "/bin/", "/usr/local/bin/"].map { $0 + a[0] }
        a[0] = path.first { FileManager.default.isExecutableFile(atPath: $0) } ?? a[0]
    }
    return try RegistryFixtures.run(a)
}

/// A docker-registry on a free loopback port for the duration of `body`, with the named fixtures pushed
/// as 127.0.0.1:PORT/<name>:latest.
func withLocalRegistry<T>(push fixtures: [String], _ body: (String) async throws -> T) async throws -> T {
    let server = try TestServer.registry()
    defer { server.stop() }
    for f in fixtures {
        try runTool(["skopeo", "copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false",
                     "oci:\(ImageFixtures.dir!)/\(f):latest", "docker://\(server.host)/\(f):latest"])
    }
    return try await body(server.host)
}

/// An image service in a scratch root.
func makeService(_ s: Scratch, driver: Snapshotter.Driver? = nil) throws -> ImageService {
    try ImageService(ImageService.Options(root: s.path + "/store", driver: driver))
}

/// The files of an image as a container would see them: the snapshot mounted at `target`.
func withRootfs<T>(_ service: ImageService, _ image: String, _ s: Scratch, _ body: (String) throws -> T) throws -> T {
    let key = "view-\(UInt32.random(in: 0 ... .max))"
    let mounts = try service.prepareRootfs(key: key, image: image, readOnly: true)
    defer { try? service.snapshots.remove(key: key) }
    let target = s.path + "/" + key
    mkdir(target, 0o755)
    let m = try #require(mounts.first)
    if m.type == "overlay" {
        #expect(mount("overlay", target, "overlay", UInt(MS_RDONLY), m.options.joined(separator: ",")) == 0,
                "mount overlay: \(String(cString: strerror(errno)))")
    } else {
        #expect(mount(m.source, target, nil, UInt(MS_BIND | MS_REC), nil) == 0)
    }
    defer { umount2(target, Int32(MNT_DETACH)) }
    return try body(target)
}

@Suite(.serialized, .enabled(if: ImageFixtures.available, Comment(rawValue: ImageFixtures.reason)))
struct PullTests {
    func checkExpected(_ image: String, _ root: String) throws {
        let exp = try #require(ImageFixtures.expected(image), "EXPECTED.json has no entry for \(image)")
        for f in exp.files ?? [] {
            let p = root + "/" + f.path
            var st = stat()
            #expect(lstat(p, &st) == 0, "\(f.path) is missing")
            guard lstat(p, &st) == 0 else { continue }
            let type: String
            switch st.st_mode & S_IFMT {
            case S_IFREG: type = "file"
            case S_IFDIR: type = "dir"
            case S_IFLNK: type = "symlink"
            case S_IFIFO: type = "fifo"
            case S_IFCHR: type = "char"
            default: type = "other"
            }
            #expect(type == f.type, "\(f.path): \(type), expected \(f.type)")
            if let m = f.mode, let want = UInt32(m, radix: 8) { #expect(UInt32(st.st_mode) & 0o7777 == want, "\(f.path): mode") }
            if let uid = f.uid { #expect(Int(st.st_uid) == uid, "\(f.path): uid") }
            if let sum = f.sha256 {
                let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: p)))
                #expect(StreamHasher.digest(data).encoded == sum, "\(f.path): content")
            }
            if let t = f.target { #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: p)) == t, "\(f.path): target") }
            for other in f.linkedTo ?? [] {
                var o = stat()
                #expect(lstat(root + "/" + other, &o) == 0 && o.st_ino == st.st_ino, "\(f.path) and \(other) should be one inode")
            }
        }
        for a in exp.absent ?? [] {
            var st = stat()
            #expect(lstat(root + "/" + a, &st) != 0, "\(a) should have been removed by a whiteout")
        }
    }

    @Test(arguments: [Snapshotter.Driver.overlay, .copy])
    func pullMultiLayerImage(driver: Snapshotter.Driver) async throws {
        let s = Scratch()
        try await withLocalRegistry(push: ["multi"]) { host in
            let service = try makeService(s, driver: driver)
            let events = EventLog()
            let r = try await service.pull("\(host)/multi:latest", progress: { events.add($0) })
            #expect(r.name == "\(host)/multi:latest")
            #expect(r.reused == 0)
            #expect(events.states.contains(.complete))
            try withRootfs(service, "\(host)/multi", s) { root in try checkExpected("multi", root) }
            // Again: every layer is already here, nothing is downloaded.
            let again = try await service.pull("\(host)/multi:latest")
            #expect(again.bytesDownloaded == 0)
            #expect(again.reused == again.reusedCount(service))
            #expect(try service.list().count == 1)
        }
    }

    @Test func concurrentPullsShareOneDownload() async throws {
        let s = Scratch()
        try await withLocalRegistry(push: ["bench-small"]) { host in
            let service = try makeService(s)
            let ref = "\(host)/bench-small:latest"
            async let a = service.pull(ref)
            async let b = service.pull(ref)
            let (ra, rb) = try await (a, b)
            let (_, m) = try service.manifest(for: ra.target)
            let total = m.layers.reduce(Int64(0)) { $0 + $1.size }
            // Every layer came over the network once, whichever pull fetched it; the other waited for it.
            #expect(ra.bytesDownloaded + rb.bytesDownloaded == total)
            #expect(service.snapshots.committedSnapshots().count == m.layers.count)
            #expect(try service.list().count == 1)
            #expect(try await service.gc().snapshotsRemoved == 0)
        }
    }

    @Test func platformSelectionFromIndex() async throws {
        let s = Scratch()
        try await withLocalRegistry(push: ["index"]) { host in
            let service = try makeService(s)
            let arm = try await service.pull("\(host)/index:latest", platform: try Platform(parsing: "linux/arm64"))
            let (_, m) = try service.manifest(for: arm.target, platform: try Platform(parsing: "linux/arm64"))
            #expect(try service.config(of: m).0.architecture == "arm64")
            // Asked without a platform, the one that was pulled is the image (the host's is not here).
            #expect(try service.inspect("\(host)/index:latest").platform.architecture == "arm64")
            let e = await #expect(throws: ImagesError.self) {
                try await service.pull("\(host)/index:latest", platform: try Platform(parsing: "linux/s390x"))
            }
            #expect(e?.code == .notFound)
            #expect(e?.message.contains("linux/s390x") == true)
        }
    }

    @Test func pushRoundTripReadBySkopeoAndUmoci() async throws {
        let s = Scratch()
        try await withLocalRegistry(push: ["multi", "busybox"]) { host in
            let service = try makeService(s)
            _ = try await service.pull("\(host)/multi:latest")
            try service.tag("\(host)/multi:latest", "\(host)/copied/multi:v1")
            // Chunked, with blobs mounted from the repository the image came from.
            let events = EventLog()
            let d = try await service.push("\(host)/copied/multi:v1", chunkSize: 1 << 20, progress: { events.add($0) })
            #expect(events.messages.contains("mounted"))
            let inspect = try runTool(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://\(host)/copied/multi:v1"])
            #expect(StreamHasher.digest(Array(inspect.utf8)) == d)
            try runTool(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://\(host)/copied/multi:v1", "oci:\(s.path)/layout:v1"])
            // umoci 0.4.7 cannot read zstd layers: it unpacks what we push of the gzip-only busybox.
            _ = try await service.pull("\(host)/busybox:latest")
            try service.tag("\(host)/busybox:latest", "\(host)/other/busybox:v1")
            try await service.push("\(host)/other/busybox:v1")
            try runTool(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://\(host)/other/busybox:v1", "oci:\(s.path)/bb:v1"])
            if ImageFixtures.tool("umoci") {
                try runTool(["umoci", "unpack", "--image", "\(s.path)/bb:v1", "\(s.path)/bundle"])
                try checkExpected("busybox", s.path + "/bundle/rootfs")
            }
        }
    }

    @Test func saveLoadRoundTrip() async throws {
        let s = Scratch()
        try await withLocalRegistry(push: ["multi"]) { host in
            let service = try makeService(s)
            _ = try await service.pull("\(host)/multi:latest")
            let id = try service.inspect("\(host)/multi:latest").id
            try service.save(["\(host)/multi:latest"], to: s.path + "/saved.tar")
            // skopeo reads it as an OCI archive and as a docker archive.
            try runTool(["skopeo", "inspect", "oci-archive:\(s.path)/saved.tar"])
            try runTool(["skopeo", "inspect", "docker-archive:\(s.path)/saved.tar"])
            let other = Scratch()
            let fresh = try makeService(other)
            let names = try await fresh.load(from: s.path + "/saved.tar")
            #expect(names == ["\(host)/multi:latest"])
            #expect(try fresh.inspect("\(host)/multi:latest").id == id)
            try withRootfs(fresh, "\(host)/multi:latest", other) { root in try checkExpected("multi", root) }
            // A docker-archive written by skopeo (the old `docker save` layout, uncompressed layers; busybox
            // because that format has no zstd) loads too.
            try runTool(["skopeo", "copy", "--quiet", "oci:\(ImageFixtures.dir!)/busybox:latest",
                         "docker-archive:\(s.path)/docker.tar:example.com/busybox:old"])
            let third = Scratch()
            let t = try makeService(third)
            #expect(try await t.load(from: s.path + "/docker.tar") == ["example.com/busybox:old"])
            try withRootfs(t, "example.com/busybox:old", third) { root in try checkExpected("busybox", root) }
            // And an OCI archive skopeo wrote (its index names the image by tag only: loaded by digest).
            try runTool(["skopeo", "copy", "--quiet", "oci:\(ImageFixtures.dir!)/multi:latest", "oci-archive:\(s.path)/oci.tar:v9"])
            let fourth = Scratch()
            let f4 = try makeService(fourth)
            let loaded = try await f4.load(from: s.path + "/oci.tar")
            #expect(loaded.count == 1)
            #expect(try f4.inspect(loaded[0]).id == id)
            try withRootfs(f4, loaded[0], fourth) { root in try checkExpected("multi", root) }
        }
    }

    @Test func gcKeepsWhatIsReferenced() async throws {
        let s = Scratch()
        try await withLocalRegistry(push: ["busybox", "multi"]) { host in
            let service = try makeService(s)
            _ = try await service.pull("\(host)/busybox:latest")
            _ = try await service.pull("\(host)/multi:latest")
            let before = try service.content.list().count
            #expect(try await service.gc().blobsRemoved == 0)
            // A container's snapshot keeps multi's layers after its name is gone.
            _ = try service.prepareRootfs(key: "ctr", image: "\(host)/multi:latest")
            try service.remove("\(host)/multi:latest")
            let g1 = try await service.gc()
            #expect(g1.snapshotsRemoved == 0)
            #expect(try service.content.list().count < before)
            try service.snapshots.remove(key: "ctr")
            let g2 = try await service.gc()
            #expect(g2.snapshotsRemoved > 0)
            // busybox is whole.
            try withRootfs(service, "\(host)/busybox", s) { root in
                #expect(FileManager.default.isExecutableFile(atPath: root + "/bin/busybox"))
            }
        }
    }

    @Test func importRootfsTarball() async throws {
        let s = Scratch()
        let rootfs = (ProcessInfo.processInfo.environment["BERTH_FIXTURES"] ?? ImageFixtures.repoRoot + "/fixtures/cache") + "/rootfs"
        try runTool(["tar", "-C", rootfs, "-czf", s.path + "/rootfs.tgz", "."])
        let service = try makeService(s)
        let sum = try await service.importRootfs(s.path + "/rootfs.tgz", as: "imported:1")
        #expect(sum.names == ["docker.io/library/imported:1"])
        #expect(sum.layers.first?.mediaType == MediaType.ociLayerGzip)
        try withRootfs(service, "imported:1", s) { root in
            #expect(FileManager.default.isExecutableFile(atPath: root + "/bin/busybox"))
        }
        // Not a tarball: an error, nothing recorded, no snapshot left.
        try "garbage".write(toFile: s.path + "/bad.tar", atomically: false, encoding: .utf8)
        await #expect(throws: ImagesError.self) { try await service.importRootfs(s.path + "/bad.tar", as: "bad:1") }
        #expect(try service.list().count == 1)
        #expect(service.snapshots.committedSnapshots().count == 1)
    }
}

final class EventLog: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var events: [ProgressEvent] = []
    func add(_ e: ProgressEvent) { lock.withLock { events.append(e) } }
    var states: Set<ProgressEvent.State> { lock.withLock { Set(events.map(\.state)) } }
    var messages: Set<String> { lock.withLock { Set(events.compactMap(\.message)) } }
}

extension ImageService.PullResult {
    func reusedCount(_ service: ImageService) -> Int {
        (try? service.manifest(for: manifest).1.layers.count) ?? -1
    }
}

/// An image made here, pushed with our own client: for what skopeo would refuse to build.
struct HandmadeImage {
    var layers: [[UInt8]]
    var diffIDs: [Digest]
    var config: [UInt8]
    var manifest: [UInt8]

    /// One gzip layer per entry list; `lie` replaces the first diff ID in the config with a wrong one.
    static func make(_ entries: [[(TarEntry, [UInt8])]], lieAboutDiffID: Bool = false) throws -> HandmadeImage {
        var layers: [[UInt8]] = [], diffIDs: [Digest] = []
        for list in entries {
            var tar: [UInt8] = []
            let w = TarWriter { tar.append(contentsOf: $0) }
            for (e, data) in list { try w.append(e, contents: data) }
            try w.finish()
            diffIDs.append(StreamHasher.digest(tar))
            var gz: [UInt8] = []
            let c = try Compressor(.gzip)
            try tar.withUnsafeBytes { try c.feed($0, finish: true) { gz.append(contentsOf: $0) } }
            layers.append(gz)
        }
        var ids = diffIDs
        if lieAboutDiffID { ids[0] = StreamHasher.digest("not this layer") }
        let cfg = ImageConfig(platform: Platform.host, config: ImageConfig.Config(), diffIDs: ids)
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        let config = Array(try enc.encode(cfg))
        let m = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: StreamHasher.digest(config), size: Int64(config.count)),
                              layers: layers.map { Descriptor(mediaType: MediaType.ociLayerGzip, digest: StreamHasher.digest($0), size: Int64($0.count)) })
        return HandmadeImage(layers: layers, diffIDs: diffIDs, config: config, manifest: Array(try enc.encode(m)))
    }

    func push(_ client: RegistryClient, _ ref: Reference) async throws {
        for l in layers {
            _ = try await client.pushBlob(ref.repository, Descriptor(mediaType: MediaType.ociLayerGzip, digest: StreamHasher.digest(l), size: Int64(l.count)), from: .bytes(l))
        }
        _ = try await client.pushBlob(ref.repository, Descriptor(mediaType: MediaType.ociConfig, digest: StreamHasher.digest(config), size: Int64(config.count)), from: .bytes(config))
        _ = try await client.pushManifest(ref.repository, reference: ref.tag ?? "latest", mediaType: MediaType.ociManifest, bytes: manifest)
    }
}

@Suite(.serialized, .enabled(if: ImageFixtures.available, Comment(rawValue: ImageFixtures.reason)))
struct PullFailureTests {
    @Test func diffIDMismatchLeavesNothingListed() async throws {
        let s = Scratch()
        try await withLocalRegistry(push: []) { host in
            let service = try makeService(s)
            let ref = try Reference(parsing: "\(host)/liar:1")
            let img = try HandmadeImage.make([[(TarEntry(.regular, path: "hello"), Array("hi\n".utf8))]], lieAboutDiffID: true)
            try await img.push(service.registry, ref)
            let e = await #expect(throws: ImagesError.self) { try await service.pull(ref.description) }
            #expect(e?.code == .invalidContent)
            #expect(e?.message.contains(img.diffIDs[0].description) == true, "\(e?.message ?? "")")
            #expect(try service.list().isEmpty)
            #expect(service.snapshots.committedSnapshots().isEmpty)
            // The layer's bytes were not what the config promised: they are not kept as a blob either.
            #expect(!service.content.contains(StreamHasher.digest(img.layers[0])))
            #expect(try FileManager.default.contentsOfDirectory(atPath: service.snapshots.root).filter { Int($0) != nil }.isEmpty)
        }
    }

    @Test func hostileLayerThroughAPullTouchesNothingOutside() async throws {
        let s = Scratch()
        let outside = s.path + "/outside"
        mkdir(outside, 0o755)
        try await withLocalRegistry(push: []) { host in
            let service = try makeService(s)
            let ref = try Reference(parsing: "\(host)/evil:1")
            // A symlink to the host dir, then a write through it; then a `..` climb.
            let img = try HandmadeImage.make([[
                (TarEntry(.symlink, path: "escape", linkTarget: outside), []),
                (TarEntry(.regular, path: "escape/owned"), Array("x".utf8)),
                (TarEntry(.regular, path: "../../../../\(outside.dropFirst())/climbed"), Array("x".utf8)),
            ]])
            try await img.push(service.registry, ref)
            _ = try? await service.pull(ref.description)
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty, "the layer wrote outside its root")
        }
    }

    @Test func killedPullLeavesAConsistentStore() async throws {
        guard let tool = ProcessInfo.processInfo.environment["BERTH_IMAGE"], FileManager.default.isExecutableFile(atPath: tool) else {
            Issue.record("BERTH_IMAGE must name the berth-image binary (make test sets it)")
            return
        }
        let s = Scratch()
        try await withLocalRegistry(push: ["bench-large"]) { host in
            let root = s.path + "/store"
            let p = Foundation.Process()
            p.executableURL = URL(fileURLWithPath: tool)
            p.arguments = ["--root", root, "pull", "-q", "\(host)/bench-large:latest"]
            p.standardError = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            // Kill it once some layer bytes are in an ingest (mid-download), or after 3 s at most.
            let deadline = Date().addingTimeInterval(3)
            while Date() < deadline {
                let ingests = (try? FileManager.default.contentsOfDirectory(atPath: root + "/content/ingest")) ?? []
                let bytes = ingests.compactMap { try? FileManager.default.attributesOfItem(atPath: root + "/content/ingest/\($0)/data")[.size] as? Int }.reduce(0, +)
                if bytes > 1 << 20 { break }
                usleep(5000)
            }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            #expect(p.terminationReason == .uncaughtSignal, "the pull ended before it could be killed mid-download")
            let service = try makeService(s)
            // Nothing half-pulled is listed.
            #expect(try service.list().isEmpty)
            // The next pull completes, and a GC afterwards finds nothing stray.
            let r = try await service.pull("\(host)/bench-large:latest")
            #expect(r.name.hasSuffix("bench-large:latest"))
            let g = try await service.gc()
            #expect(g.blobsRemoved == 0)
            try withRootfs(service, "\(host)/bench-large:latest", s) { root in
                #expect(((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).count > 0)
            }
        }
    }
}
