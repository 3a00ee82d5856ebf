// The image half of the engine as one object: the content store, the snapshotter, the image store and
// the registry client under one root (default /var/lib/berth), and the operations berthd serves: pull,
// push, list, inspect, tag, remove, save, load, import, GC and a container's rootfs.
//
//   <root>/content     blobs and ingests (ContentStore)
//   <root>/snapshots   unpacked layers and containers' writable layers (Snapshotter)
//   <root>/images.json names → manifest/index descriptors (ImageStore)
//   <root>/gc.lock     held shared by every operation that adds content, exclusively by GC
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LinuxContainer
import OCI

public final class ImageService: Sendable {
    public struct Options: Sendable {
        /// where the store lives
        public var root: String
        /// nil: overlay where the filesystem and kernel allow it, copy otherwise
        public var driver: Snapshotter.Driver?
        /// layers downloaded at once per pull (Docker's max-concurrent-downloads is 3)
        public var maxConcurrentDownloads: Int
        /// a layer may not decompress to more than this many times its compressed size, or
        /// `minUnpackLimit` when that is more: the decompression-bomb bound
        public var maxExpansionRatio: Int64
        public var minUnpackLimit: Int64
        public var registry: RegistryConfig

        public init(root: String = "/var/lib/berth", driver: Snapshotter.Driver? = nil, maxConcurrentDownloads: Int = 3,
                    maxExpansionRatio: Int64 = 100, minUnpackLimit: Int64 = 1 << 30, registry: RegistryConfig = RegistryConfig()) {
            self.root = root
            self.driver = driver
            self.maxConcurrentDownloads = maxConcurrentDownloads
            self.maxExpansionRatio = maxExpansionRatio
            self.minUnpackLimit = minUnpackLimit
            self.registry = registry
        }
    }

    public let options: Options
    public let content: ContentStore
    public let snapshots: Snapshotter
    public let images: ImageStore
    public let registry: RegistryClient

    public init(_ options: Options = Options()) throws(ImagesError) {
        self.options = options
        do { try FS.mkdirAll(options.root, mode: 0o711) } catch { throw ImagesError(wrapping: error) }
        content = try ContentStore(root: options.root + "/content")
        snapshots = try Snapshotter(root: options.root + "/snapshots", driver: options.driver)
        images = try ImageStore(root: options.root)
        registry = RegistryClient(config: options.registry)
    }

    /// The GC lock, shared: what this operation adds is safe from a concurrent GC until it is released.
    func lease() async throws -> FileLock {
        try await FileLock.acquire(options.root + "/gc.lock", exclusive: false)
    }

    // MARK: reading what is stored

    func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], _ what: String) throws(ImagesError) -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw ImagesError.wrap(error, what)
        }
    }

    /// A manifest, from the store. An index is resolved to the entry for `platform` (host by default).
    public func manifest(for target: Descriptor, platform: Platform? = nil) throws(ImagesError) -> (Descriptor, ImageManifest) {
        let bytes = try content.read(target.digest)
        if isIndex(target, bytes) {
            let index = try decode(ImageIndex.self, bytes, "index \(target.digest)")
            let want = platform ?? Platform.host
            let candidates = index.manifests.filter { d in
                (MediaType.isManifest(d.mediaType) || MediaType.isIndex(d.mediaType)) && (d.platform.map { want.matches($0) } ?? false)
            }
            // No platform asked for: the host's when it is here, else whichever one was pulled (`pull
            // --platform linux/arm64` on an amd64 host, then `inspect`).
            let present = index.manifests.filter { MediaType.isManifest($0.mediaType) && content.contains($0.digest) }
            let fallback = platform == nil ? present.first : nil
            guard let chosen = candidates.first(where: { content.contains($0.digest) }) ?? fallback ?? candidates.first else {
                throw ImagesError(.notFound, "no manifest for platform \(want) in index \(target.digest) "
                    + "(it has: \(index.manifests.compactMap { $0.platform?.description }.joined(separator: ", ")))")
            }
            return try manifest(for: chosen, platform: platform)
        }
        let m = try decode(ImageManifest.self, bytes, "manifest \(target.digest)")
        return (target, m)
    }

    /// Is this blob an index? Its media type says so; a descriptor without a manifest or index type (an
    /// OCI layout written without mediaType fields) is one when its JSON has `manifests` and no `layers`.
    func isIndex(_ d: Descriptor, _ bytes: [UInt8]) -> Bool {
        if MediaType.isIndex(d.mediaType) { return true }
        if MediaType.isManifest(d.mediaType) { return false }
        struct Probe: Decodable { var manifests: [Descriptor]?; var layers: [Descriptor]? }
        guard let p = try? JSONDecoder().decode(Probe.self, from: Data(bytes)) else { return false }
        return p.manifests != nil && p.layers == nil
    }

    public func config(of manifest: ImageManifest) throws(ImagesError) -> (ImageConfig, [UInt8]) {
        let bytes = try content.read(manifest.config.digest, limit: 16 << 20)
        return (try decode(ImageConfig.self, bytes, "config \(manifest.config.digest)"), bytes)
    }

    /// Finds an image by name ("busybox", "docker.io/library/busybox:latest"), by digest reference, or by
    /// (a prefix of at least 4 digits of) its id, the config digest as Docker shows it.
    public func lookup(_ nameOrID: String) throws(ImagesError) -> ImageRecord {
        let records = try images.list()
        if let r = records.first(where: { $0.name == nameOrID }) { return r }
        if let ref = try? Reference(parsing: nameOrID), let r = records.first(where: { $0.name == ref.description }) {
            return r
        }
        var id = nameOrID
        if id.hasPrefix("sha256:") { id.removeFirst(7) }
        if id.count >= 4, id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) {
            let matches = records.compactMap { r in imageID(r).flatMap { $0.encoded.hasPrefix(id) ? (r, $0) : nil } }
            let ids = Set(matches.map(\.1))
            if ids.count == 1, let first = matches.first { return first.0 }
            if ids.count > 1 { throw ImagesError(.conflict, "image id prefix \(nameOrID) is ambiguous") }
        }
        throw ImagesError(.notFound, "No such image: \(nameOrID)")
    }

    // MARK: pull

    public struct PullResult: Sendable {
        public var name: String
        public var target: Descriptor
        public var manifest: Descriptor
        public var config: Digest
        public var chainID: Digest?
        /// layers that were already here
        public var reused: Int
        public var bytesDownloaded: Int64
    }

    /// Pulls `reference` (`busybox`, `localhost:5000/app:1`, `…@sha256:…`) for `platform` (the host's by
    /// default), unpacking every layer into a snapshot as its bytes arrive. When it returns the image is
    /// recorded under its normalised name and ready to mount; when it throws nothing half-done is listed.
    public func pull(_ reference: String, platform: Platform? = nil, progress: ProgressHandler? = nil) async throws -> PullResult {
        let ref: Reference
        do { ref = try Reference(parsing: reference) } catch { throw ImagesError.wrap(error, "pull \(reference)", as: .invalidArgument) }
        do {
            return try await pull(ref, platform: platform, progress: progress)
        } catch let e as ImagesError {
            throw e.prefixed("pull \(ref)")
        }
    }

    func pull(_ ref: Reference, platform: Platform?, progress: ProgressHandler?) async throws -> PullResult {
        let lock = try await lease()
        defer { withExtendedLifetime(lock) {} }
        progress?(ProgressEvent(id: ref.tag ?? ref.digest?.description ?? "latest", state: .resolving, message: ref.familiarName))
        let (rootDesc, rootBytes) = try await registry.resolve(ref)
        try content.write(rootBytes, expected: rootDesc.digest)

        var manifestDesc = rootDesc
        var manifestBytes = rootBytes
        if MediaType.isIndex(rootDesc.mediaType) {
            let index = try decode(ImageIndex.self, rootBytes, "index \(rootDesc.digest)")
            let want = platform ?? Platform.host
            guard let chosen = index.manifests.first(where: { d in
                MediaType.isManifest(d.mediaType) && (d.platform.map { want.matches($0) } ?? false)
            }) else {
                throw ImagesError(.notFound, "no matching manifest for \(want) in the manifest list entries "
                    + "(it has: \(index.manifests.compactMap { $0.platform?.description }.joined(separator: ", ")))")
            }
            if content.contains(chosen.digest) {
                manifestBytes = try content.read(chosen.digest)
            } else {
                let (_, bytes) = try await registry.fetchManifest(ref.repository, digest: chosen.digest)
                try content.write(bytes, expected: chosen.digest)
                manifestBytes = bytes
            }
            manifestDesc = chosen
        } else if !MediaType.isManifest(rootDesc.mediaType) {
            throw ImagesError(.unsupported, "unsupported manifest media type \(rootDesc.mediaType)")
        }
        let manifest = try decode(ImageManifest.self, manifestBytes, "manifest \(manifestDesc.digest)")
        try checkManifest(manifest, manifestDesc)

        // The config first: its diff IDs say what every layer must unpack to, and its chain IDs name the
        // snapshots, so all layers can then be fetched and unpacked at once.
        if !content.contains(manifest.config.digest) {
            guard manifest.config.size <= 16 << 20 else {
                throw ImagesError(.invalidContent, "config \(manifest.config.digest): \(manifest.config.size) bytes is too large (16 MiB at most)")
            }
            // Its own counters: the pull's count layer bytes only.
            try await fetchOnly(ref, manifest.config, label: "config", counters: PullCounters(), progress: nil)
        }
        let (config, _) = try config(of: manifest)
        if let platform, !platform.matches(config.platform) {
            throw ImagesError(.notFound, "image \(ref) is for \(config.platform), not the requested \(platform)")
        }
        let diffIDs = config.rootfs.diff_ids
        guard diffIDs.count == manifest.layers.count else {
            throw ImagesError(.invalidContent, "manifest \(manifestDesc.digest) has \(manifest.layers.count) layers but its config lists \(diffIDs.count) diff IDs")
        }
        let chains = chainIDs(diffIDs)

        let counters = PullCounters()
        for (i, layer) in manifest.layers.enumerated() where !snapshots.hasCommitted(chains[i]) || !content.contains(layer.digest) {
            progress?(ProgressEvent(id: layer.digest.shortID, state: .waiting, total: layer.size))
        }
        switch snapshots.driver {
        case .overlay:
            // Every layer unpacks on its own: fetch, decompress, hash and write all overlap, across layers.
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = 0
                func add() {
                    let i = next
                    next += 1
                    group.addTask {
                        try await self.pullLayer(ref, manifest.layers[i], diffID: diffIDs[i], chain: chains[i],
                                                 parent: i > 0 ? chains[i - 1] : nil, counters: counters, progress: progress)
                    }
                }
                while next < manifest.layers.count && next < max(1, options.maxConcurrentDownloads) { add() }
                while try await group.next() != nil {
                    if next < manifest.layers.count { add() }
                }
            }
        case .copy:
            // Each layer is its parent's copy plus itself: downloads overlap, unpacking goes in order.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for layer in manifest.layers where !content.contains(layer.digest) {
                    group.addTask { try await self.fetchOnly(ref, layer, counters: counters, progress: progress) }
                }
                try await group.waitForAll()
            }
            for (i, layer) in manifest.layers.enumerated() {
                try await pullLayer(ref, layer, diffID: diffIDs[i], chain: chains[i], parent: i > 0 ? chains[i - 1] : nil,
                                    counters: counters, progress: progress)
            }
        }

        let name = ref.description
        try images.put(name, target: rootDesc, labels: ["berth.source": ref.name])
        return PullResult(name: name, target: rootDesc, manifest: manifestDesc, config: manifest.config.digest,
                          chainID: chains.last, reused: counters.reused, bytesDownloaded: counters.bytes)
    }

    func checkManifest(_ m: ImageManifest, _ d: Descriptor) throws(ImagesError) {
        guard m.schemaVersion == 2 else {
            throw ImagesError(.unsupported, "manifest \(d.digest): schemaVersion \(m.schemaVersion) is not supported")
        }
        for l in m.layers where MediaType.layerCompression(l.mediaType) == nil {
            throw ImagesError(.unsupported, "layer \(l.digest): media type \(l.mediaType) is not a layer berth can unpack")
        }
        for l in m.layers where l.size < 0 {
            throw ImagesError(.invalidContent, "layer \(l.digest): negative size")
        }
    }

    func unpackLimits(_ layer: Descriptor) -> UnpackLimits {
        .forCompressedSize(layer.size, ratio: options.maxExpansionRatio, minimum: options.minUnpackLimit)
    }

    /// One layer: blob into the content store and files into a snapshot, from one stream of bytes.
    func pullLayer(_ ref: Reference, _ layer: Descriptor, diffID: Digest, chain: Digest, parent: Digest?,
                   counters: PullCounters, progress: ProgressHandler?) async throws {
        let id = layer.digest.shortID
        if snapshots.hasCommitted(chain) {
            if !content.contains(layer.digest) { try await fetchOnly(ref, layer, counters: counters, progress: progress) }
            counters.addReused()
            progress?(ProgressEvent(id: id, state: .exists))
            return
        }
        let compression = MediaType.layerCompression(layer.mediaType) ?? .gzip
        // The ingest lock, once we hold it, keeps other pulls of this layer waiting until it is committed.
        let writer = try await content.writer(for: layer)
        if snapshots.hasCommitted(chain) {
            counters.addReused()
            progress?(ProgressEvent(id: id, state: .exists))
            return
        }
        let (dir, mode) = try snapshots.beginLayer(parent: parent)
        var started: LayerUnpacker?
        do {
            let unpacker = try LayerUnpacker(rootPath: dir + "/fs", compression: compression, mode: mode,
                                             limits: unpackLimits(layer), expectedDiffID: diffID)
            started = unpacker
            if let writer {
                try writer.replay { try unpacker.feed($0) }
                var reported: Int64 = writer.written
                let total = layer.size
                try await registry.fetchBlob(ref.repository, layer, from: writer.written) { chunk in
                    try writer.write(chunk)
                    try unpacker.feed(chunk)
                    if writer.written - reported >= 256 << 10 || writer.written == total {
                        reported = writer.written
                        progress?(ProgressEvent(id: id, state: .downloading, current: reported, total: total))
                    }
                }
                counters.addBytes(writer.written - writer.resumable)
                _ = try unpacker.finish()
                try writer.commit()
            } else {
                try unpackBlob(layer, into: unpacker)
                _ = try unpacker.finish()
            }
            try snapshots.commitLayer(dir, chain: chain, parent: parent)
        } catch {
            started?.cancel()
            snapshots.abortLayer(dir)
            // Bytes that are not this blob can never become it; bytes cut off by the network resume next time.
            if let e = error as? ImagesError, e.code == .invalidContent { writer?.abort() }
            throw (error as? ImagesError)?.prefixed("layer \(layer.digest)") ?? error
        }
        withExtendedLifetime(writer) {}
        progress?(ProgressEvent(id: id, state: .complete, current: layer.size, total: layer.size))
    }

    /// A blob into the content store only (the copy driver's downloads, a blob whose snapshot exists).
    func fetchOnly(_ ref: Reference, _ layer: Descriptor, label: String = "layer", counters: PullCounters,
                   progress: ProgressHandler?) async throws {
        guard let writer = try await content.writer(for: layer) else { return }
        do {
            try writer.replay { _ in }
            let id = layer.digest.shortID
            var reported: Int64 = 0
            try await registry.fetchBlob(ref.repository, layer, from: writer.written) { chunk in
                try writer.write(chunk)
                if writer.written - reported >= 256 << 10 {
                    reported = writer.written
                    progress?(ProgressEvent(id: id, state: .downloading, current: reported, total: layer.size))
                }
            }
            counters.addBytes(writer.written - writer.resumable)
            try writer.commit()
        } catch {
            if let e = error as? ImagesError, e.code == .invalidContent { writer.abort() }
            throw (error as? ImagesError)?.prefixed("\(label) \(layer.digest)") ?? error
        }
    }

    /// Feeds a stored blob to an unpacker.
    func unpackBlob(_ layer: Descriptor, into unpacker: LayerUnpacker) throws {
        let fd = open(content.path(layer.digest), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImagesError.system("open blob \(layer.digest)", errno: errno) }
        defer { close(fd) }
        try unpacker.feed(fd: fd)
    }

    /// Unpacks every layer of a stored image that has no snapshot yet (after a load or an import).
    func unpack(_ manifest: ImageManifest, _ config: ImageConfig) async throws -> Digest? {
        let diffIDs = config.rootfs.diff_ids
        guard diffIDs.count == manifest.layers.count else {
            throw ImagesError(.invalidContent, "the manifest has \(manifest.layers.count) layers but its config lists \(diffIDs.count) diff IDs")
        }
        let chains = chainIDs(diffIDs)
        for (i, layer) in manifest.layers.enumerated() where !snapshots.hasCommitted(chains[i]) {
            let parent = i > 0 ? chains[i - 1] : nil
            let (dir, mode) = try snapshots.beginLayer(parent: parent)
            var started: LayerUnpacker?
            do {
                let unpacker = try LayerUnpacker(rootPath: dir + "/fs", compression: MediaType.layerCompression(layer.mediaType) ?? .gzip,
                                                 mode: mode, limits: unpackLimits(layer),
                                                 expectedDiffID: diffIDs[i])
                started = unpacker
                try unpackBlob(layer, into: unpacker)
                _ = try unpacker.finish()
                try snapshots.commitLayer(dir, chain: chains[i], parent: parent)
            } catch {
                started?.cancel()
                snapshots.abortLayer(dir)
                throw (error as? ImagesError)?.prefixed("layer \(layer.digest)") ?? error
            }
        }
        return chains.last
    }
}

/// Counters shared by a pull's layer tasks.
final class PullCounters: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var _reused = 0
    private var _bytes: Int64 = 0
    var reused: Int { lock.withLock { _reused } }
    var bytes: Int64 { lock.withLock { _bytes } }
    func addReused() { lock.withLock { _reused += 1 } }
    func addBytes(_ n: Int64) { lock.withLock { _bytes += n } }
}
