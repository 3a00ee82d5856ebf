// Listing, inspecting, tagging and removing images; containers' rootfs snapshots; garbage collection.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LinuxContainer
import OCI

public struct ImageSummary: Sendable {
    /// the config digest: Docker's image id
    public var id: Digest
    /// every name pointing at this image
    public var names: [String]
    /// repo@digest for the names that came from a registry
    public var repoDigests: [String]
    public var target: Descriptor
    public var manifest: Descriptor
    public var platform: Platform
    public var created: String?
    /// compressed size of config and layers (what a pull moves)
    public var contentSize: Int64
    /// bytes the unpacked layers take on disk
    public var unpackedSize: Int64
    public var chainID: Digest?
    public var config: ImageConfig
    public var rawConfig: [UInt8]
    public var layers: [Descriptor]
}

extension ImageSummary {
    /// A record's name (none for a digest-only name) and its repo@digest, added to this image's.
    mutating func addNames(of r: ImageRecord) {
        if !r.name.contains("@") { names.append(r.name) }
        if let repo = (try? Reference(parsing: r.name))?.name { repoDigests.append("\(repo)@\(r.target.digest)") }
    }
}

extension ImageService {
    /// One summary per image id, names grouped as `docker images` shows them.
    public func list() throws(ImagesError) -> [ImageSummary] {
        // Grouped by id first: a summary walks the unpacked layers for their disk use, once per image.
        var order: [Digest] = []
        var byID: [Digest: [ImageRecord]] = [:]
        for r in try images.list() {
            guard let id = imageID(r) else { continue }
            if byID[id] == nil { order.append(id) }
            byID[id, default: []].append(r)
        }
        var out: [ImageSummary] = []
        for id in order {
            let records = byID[id] ?? []
            guard let first = records.first, var s = try? summary(first) else { continue }
            for other in records.dropFirst() { s.addNames(of: other) }
            out.append(s)
        }
        return out.sorted { ($0.created ?? "") > ($1.created ?? "") }
    }

    public func inspect(_ nameOrID: String, platform: Platform? = nil) throws(ImagesError) -> ImageSummary {
        let r = try lookup(nameOrID)
        var s = try summary(r, platform: platform)
        // Every other name of the same image, as `docker inspect` lists RepoTags.
        for other in try images.list() where other.name != r.name && imageID(other, platform: platform) == s.id {
            s.addNames(of: other)
        }
        return s
    }

    /// Docker's image id of a record (its manifest's config digest), without reading the config.
    func imageID(_ r: ImageRecord, platform: Platform? = nil) -> Digest? {
        (try? manifest(for: r.target, platform: platform))?.1.config.digest
    }

    func summary(_ r: ImageRecord, platform: Platform? = nil) throws(ImagesError) -> ImageSummary {
        let (mdesc, m) = try manifest(for: r.target, platform: platform)
        let (config, raw) = try config(of: m)
        let chains = chainIDs(config.rootfs.diff_ids)
        var unpacked: Int64 = 0
        for c in chains { if let p = snapshots.committedPath(c) { unpacked += snapshots.usage(p + "/fs") } }
        var s = ImageSummary(
            id: m.config.digest, names: [], repoDigests: [],
            target: r.target, manifest: mdesc, platform: config.platform, created: config.created,
            contentSize: m.config.size + m.layers.reduce(0) { $0 + $1.size }, unpackedSize: unpacked,
            chainID: chains.last, config: config, rawConfig: raw, layers: m.layers)
        s.addNames(of: r)
        return s
    }

    /// `docker tag`: `target` names the same manifest/index as `source`.
    public func tag(_ source: String, _ target: String) throws(ImagesError) {
        let r = try lookup(source)
        let ref: Reference
        do { ref = try Reference(parsing: target) } catch { throw ImagesError.wrap(error, "tag \(target)", as: .invalidArgument) }
        guard ref.digest == nil else {
            throw ImagesError(.invalidArgument, "tag \(target): refusing to create a tag with a digest reference")
        }
        try images.put(ref.description, target: r.target, labels: r.labels)
    }

    /// `docker rmi`: removes a name (all names of the image when given its id and `force`, or when it
    /// has only one). Refuses while a container's snapshot uses it, unless forced. Returns the untagged
    /// names; content goes at the next GC (run here at once).
    @discardableResult
    public func remove(_ nameOrID: String, force: Bool = false, inUse: Set<Digest> = []) throws(ImagesError) -> [String] {
        let r = try lookup(nameOrID)
        let s = try summary(r)
        let records = try images.list()
        let all = records.filter { imageID($0) == s.id }
        let byID = !records.contains { $0.name == ((try? Reference(parsing: nameOrID))?.description ?? "") }
        var victims = [r]
        if byID {
            if all.count > 1 && !force {
                throw ImagesError(.conflict, "conflict: unable to delete \(s.id.shortID) (must be forced) - image is referenced in multiple repositories")
            }
            victims = all
        }
        if !force, victims.count == all.count, let chain = s.chainID, inUse.contains(chain) {
            throw ImagesError(.conflict, "conflict: unable to remove repository reference \"\(nameOrID)\" (must force) - "
                + "container is using its referenced image \(s.id.shortID)")
        }
        for v in victims { try images.delete(v.name) }
        return victims.map(\.name)
    }

    // MARK: container rootfs

    /// A container's writable rootfs on top of the image: the mounts to give the runtime.
    public func prepareRootfs(key: String, image nameOrID: String, platform: Platform? = nil, readOnly: Bool = false) throws(ImagesError) -> [Mount] {
        let s = try inspect(nameOrID, platform: platform)
        return try snapshots.prepare(key: key, parent: s.chainID, readOnly: readOnly)
    }

    // MARK: garbage collection

    public struct GCResult: Sendable {
        public var blobsRemoved: Int
        public var snapshotsRemoved: Int
        public var bytesFreed: Int64
    }

    /// Removes every blob and committed snapshot that no image name and no active snapshot reaches, and
    /// whatever crashed operations left (ingests, unlinked snapshot dirs). Waits for running pulls.
    public func gc() async throws -> GCResult {
        let lock = try await FileLock.acquire(options.root + "/gc.lock", exclusive: true)
        defer { withExtendedLifetime(lock) {} }
        var blobs = Set<Digest>()
        var chains = Set<Digest>()
        func markManifest(_ d: Descriptor) {
            guard let bytes = try? content.read(d.digest) else { return }
            blobs.insert(d.digest)
            if isIndex(d, bytes) {
                guard let idx = try? JSONDecoder().decode(ImageIndex.self, from: Data(bytes)) else { return }
                for m in idx.manifests { markManifest(m) }
                return
            }
            guard let m = try? JSONDecoder().decode(ImageManifest.self, from: Data(bytes)) else { return }
            blobs.insert(m.config.digest)
            for l in m.layers { blobs.insert(l.digest) }
            if let cfgBytes = try? content.read(m.config.digest, limit: 16 << 20),
               let cfg = try? JSONDecoder().decode(ImageConfig.self, from: Data(cfgBytes)) {
                for c in chainIDs(cfg.rootfs.diff_ids) { chains.insert(c) }
            }
        }
        for r in try images.list() { markManifest(r.target) }
        // Active snapshots keep their whole parent chain.
        let committed = snapshots.committedSnapshots()
        let parents = Dictionary(committed.map { ($0.chain, $0.parent) }, uniquingKeysWith: { a, _ in a })
        var roots = Array(chains) + snapshots.activeSnapshots().compactMap(\.parent)
        while let c = roots.popLast() {
            chains.insert(c)
            if let p = parents[c] ?? nil, !chains.contains(p) { roots.append(p) }
        }
        var result = GCResult(blobsRemoved: 0, snapshotsRemoved: 0, bytesFreed: 0)
        for (d, size) in try content.list() where !blobs.contains(d) {
            try content.delete(d)
            result.blobsRemoved += 1
            result.bytesFreed += size
        }
        for s in committed where !chains.contains(s.chain) {
            result.bytesFreed += snapshots.usage(s.dir)
            try snapshots.removeCommitted(s.chain)
            result.snapshotsRemoved += 1
        }
        result.snapshotsRemoved += snapshots.cleanup()
        result.bytesFreed += try content.removeStaleIngests()
        return result
    }

    /// `docker system df`'s image part.
    public func diskUsage() throws(ImagesError) -> (images: Int, content: Int64, snapshots: Int64) {
        let blobs = try content.list().reduce(Int64(0)) { $0 + $1.size }
        let snaps = snapshots.committedSnapshots().reduce(Int64(0)) { $0 + snapshots.usage($1.dir) }
        return (try list().count, blobs, snaps)
    }
}
