// save / load / import.
//
// `save` writes an OCI image layout as a tar (oci-layout, index.json, blobs/) that also carries Docker's
// manifest.json, so `docker load`, `skopeo copy oci-archive:`, `podman load` and `berth-image load` all read it
// (Docker 25+ writes the same shape). `load` reads that, any OCI layout tar, and the older `docker save`
// format (<id>/layer.tar, <id>.json, manifest.json, layers possibly as symlinks to other layers).
// `import` makes a one-layer image of a rootfs tarball (plain, gzip or zstd), like `docker import`.
//
// A load stages every file of the archive in <root>/content/load-* while hashing it (one pass over the
// bytes), then moves the blobs into the store and records the names only once every blob of an image is
// there and its layers are unpacked: a failed or interrupted load lists nothing.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LinuxContainer
import OCI

extension ImageService {
    // MARK: save

    public func save(_ names: [String], to path: String) throws(ImagesError) {
        var entries: [(record: ImageRecord, manifest: Descriptor, m: ImageManifest)] = []
        for n in names {
            let r = try lookup(n)
            let (d, m) = try manifest(for: r.target)
            entries.append((r, d, m))
        }
        var blobs: [Digest] = []
        var seen = Set<Digest>()
        func add(_ d: Digest) {
            if seen.insert(d).inserted { blobs.append(d) }
        }
        var index = ImageIndex(manifests: [])
        struct DockerEntry: Encodable {
            var Config: String
            var RepoTags: [String]
            var Layers: [String]
        }
        var docker: [DockerEntry] = []
        for e in entries {
            add(e.manifest.digest)
            add(e.m.config.digest)
            for l in e.m.layers {
                guard content.contains(l.digest) else {
                    throw ImagesError(.notFound, "save \(e.record.name): layer \(l.digest) is not in the content store (pull the image again)")
                }
                add(l.digest)
            }
            var d = e.manifest
            var ann = d.annotations ?? [:]
            if let ref = try? Reference(parsing: e.record.name), ref.digest == nil {
                ann["io.containerd.image.name"] = ref.description
                ann["org.opencontainers.image.ref.name"] = ref.tag ?? "latest"
            }
            d.annotations = ann.isEmpty ? nil : ann
            if d.platform == nil, let (cfg, _) = try? config(of: e.m) { d.platform = cfg.platform }
            index.manifests.append(d)
            let tags = (try? Reference(parsing: e.record.name)).flatMap { $0.digest == nil ? [$0.familiarString] : nil } ?? []
            docker.append(DockerEntry(Config: "blobs/sha256/" + e.m.config.digest.encoded, RepoTags: tags,
                                      Layers: e.m.layers.map { "blobs/\($0.digest.algorithm.rawValue)/\($0.digest.encoded)" }))
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let indexJSON: [UInt8], dockerJSON: [UInt8]
        do {
            indexJSON = Array(try enc.encode(index))
            dockerJSON = Array(try enc.encode(docker))
        } catch { throw ImagesError(.system, "save: encode index: \(error)") }

        let (dir, name) = FS.split(path)
        let tmp = "\(dir)/.\(name).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ImagesError.system("save: create \(path)", errno: errno) }
        do {
            let out = FDSink(fd: fd, what: path)
            let tar = TarWriter { try out.write($0) }
            try tar.append(TarEntry(.regular, path: "oci-layout"), contents: Array("{\"imageLayoutVersion\":\"1.0.0\"}".utf8))
            try tar.append(TarEntry(.regular, path: "index.json"), contents: indexJSON)
            try tar.append(TarEntry(.regular, path: "manifest.json"), contents: dockerJSON)
            try tar.append(TarEntry(.directory, path: "blobs/"))
            for alg in Set(blobs.map(\.algorithm)).sorted(by: { $0.rawValue < $1.rawValue }) {
                try tar.append(TarEntry(.directory, path: "blobs/" + alg.rawValue + "/"))
            }
            for b in blobs {
                let bfd = open(content.path(b), O_RDONLY | O_CLOEXEC)
                guard bfd >= 0 else { throw ImagesError.system("save: open blob \(b)", errno: errno) }
                defer { close(bfd) }
                var st = stat()
                fstat(bfd, &st)
                var entry = TarEntry(.regular, path: "blobs/\(b.algorithm.rawValue)/\(b.encoded)")
                entry.size = Int64(st.st_size)
                try tar.append(entry, fd: bfd)
            }
            try tar.finish()
            if fsync(fd) != 0 { throw ImagesError.system("save: fsync \(path)", errno: errno) }
            close(fd)
            guard rename(tmp, path) == 0 else { throw ImagesError.system("save: rename to \(path)", errno: errno) }
        } catch {
            close(fd)
            unlink(tmp)
            throw (error as? ImagesError) ?? ImagesError(.system, "save: \(error)")
        }
    }

    // MARK: load

    struct StagedFile {
        var path: String
        var digest: Digest
        var size: Int64
    }

    /// Loads every image of an archive; returns the names recorded.
    public func load(from path: String) async throws -> [String] {
        let lock = try await lease()
        defer { withExtendedLifetime(lock) {} }
        let staging = content.root + "/load-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        do { try FS.mkdirAll(staging, mode: 0o700) } catch { throw ImagesError(wrapping: error) }
        defer { try? FS.removeTree(staging) }
        do {
            let (files, links) = try stage(path, into: staging)
            func file(_ name: String) throws(ImagesError) -> StagedFile {
                var n = normalizeArchivePath(name)
                var hops = 0
                while let t = links[n] {
                    n = normalizeArchivePath(t.hasPrefix("/") ? t : (FS.split("/" + n).dir + "/" + t))
                    hops += 1
                    if hops > 16 { throw ImagesError(.invalidContent, "archive: \(name): symlink loop") }
                }
                guard let f = files[n] else { throw ImagesError(.invalidContent, "archive: \(name) is missing") }
                return f
            }
            func bytes(_ name: String, limit: Int = 16 << 20) throws(ImagesError) -> [UInt8] {
                let f = try file(name)
                guard f.size <= limit else { throw ImagesError(.invalidContent, "archive: \(name) is too large (\(f.size) bytes)") }
                do { return try FS.readFile(f.path, limit: limit) } catch { throw ImagesError(wrapping: error) }
            }
            if files["index.json"] != nil {
                return try await loadOCILayout(files: files, index: try bytes("index.json"), fileFor: file)
            }
            if files["manifest.json"] != nil {
                return try await loadDockerArchive(manifest: try bytes("manifest.json"), fileFor: file, bytesFor: { n throws(ImagesError) in try bytes(n) })
            }
            throw ImagesError(.invalidContent, "\(path) is neither an OCI image layout (no index.json) nor a docker save archive (no manifest.json)")
        } catch let e as ImagesError {
            throw e.prefixed("load \(path)")
        }
    }

    func normalizeArchivePath(_ p: String) -> String {
        var parts: [Substring] = []
        for c in p.split(separator: "/") where c != "." && !c.isEmpty {
            if c == ".." { _ = parts.popLast() } else { parts.append(c) }
        }
        return parts.joined(separator: "/")
    }

    /// Every regular file of the tar into `staging`, hashed on the way; symlinks remembered.
    func stage(_ path: String, into staging: String) throws -> ([String: StagedFile], [String: String]) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImagesError.system("open \(path)", errno: errno) }
        defer { close(fd) }
        var files: [String: StagedFile] = [:]
        var links: [String: String] = [:]
        var current: (name: String, fd: Int32, hasher: StreamHasher, path: String, size: Int64)?
        var counter = 0
        func closeCurrent() throws {
            guard let c = current else { return }
            current = nil
            close(c.fd)
            files[c.name] = StagedFile(path: c.path, digest: c.hasher.finish(), size: c.size)
        }
        let reader = TarReader()
        var sawEnd = false
        func handle(_ event: TarEvent) throws {
            switch event {
            case .entry(let h):
                try closeCurrent()
                let name = normalizeArchivePath(h.path)
                switch h.kind {
                case .regular:
                    counter += 1
                    let p = staging + "/\(counter)"
                    let f = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                    guard f >= 0 else { throw ImagesError.system("stage \(name)", errno: errno) }
                    current = (name, f, StreamHasher(), p, 0)
                    if h.size == 0 { try closeCurrent() }
                case .symlink, .hardlink:
                    links[name] = h.kind == .hardlink ? "/" + normalizeArchivePath(h.linkPath) : h.linkPath
                default:
                    break
                }
            case .data(let chunk):
                guard let c = current else { return }
                c.hasher.update(chunk)
                let e = writeAll(c.fd, chunk)
                if e != 0 { throw ImagesError.system("stage \(c.name)", errno: e) }
                current?.size += Int64(chunk.count)
            case .entryEnd:
                try closeCurrent()
            case .end:
                sawEnd = true
            }
        }
        do {
            try forEachChunk(of: fd, what: path) { try reader.feed($0, handle) }
            try reader.finish()
            try closeCurrent()
        } catch {
            if let c = current { close(c.fd) }
            throw error
        }
        _ = sawEnd
        return (files, links)
    }

    /// Moves a staged file into the content store as `expected` (its digest checked).
    func adopt(_ f: StagedFile, as expected: Digest) throws(ImagesError) {
        guard f.digest == expected else {
            throw ImagesError(.invalidContent, "blob \(expected): digest mismatch, the archive's bytes hash to \(f.digest)")
        }
        if content.contains(expected) { return }
        if fsyncFile(f.path) != 0 { throw ImagesError.system("fsync \(f.path)", errno: errno) }
        guard rename(f.path, content.path(expected)) == 0 else {
            throw ImagesError.system("store blob \(expected)", errno: errno)
        }
    }

    func loadOCILayout(files: [String: StagedFile], index indexBytes: [UInt8],
                       fileFor: (String) throws(ImagesError) -> StagedFile) async throws -> [String] {
        let index = try decode(ImageIndex.self, indexBytes, "index.json")
        func blob(_ d: Digest) throws(ImagesError) -> StagedFile { try fileFor("blobs/\(d.algorithm.rawValue)/\(d.encoded)") }
        var pending: [(name: String, target: Descriptor)] = []
        for entry in index.manifests {
            // Everything below the entry, into the store.
            var stack = [entry]
            var unpackTarget: (ImageManifest, ImageConfig)?
            while let d = stack.popLast() {
                let f = try blob(d.digest)
                guard f.size == d.size else {
                    throw ImagesError(.invalidContent, "blob \(d.digest): \(f.size) bytes, its descriptor declares \(d.size)")
                }
                try adopt(f, as: d.digest)
                if MediaType.isIndex(d.mediaType) {
                    let idx = try decode(ImageIndex.self, try content.read(d.digest), "index \(d.digest)")
                    // Children that the layout does not carry (a single-platform save of an index) are skipped.
                    stack.append(contentsOf: idx.manifests.filter { (try? blob($0.digest)) != nil })
                } else if MediaType.isManifest(d.mediaType) {
                    let m = try decode(ImageManifest.self, try content.read(d.digest), "manifest \(d.digest)")
                    try checkManifest(m, d)
                    for b in [m.config] + m.layers {
                        let bf = try blob(b.digest)
                        guard bf.size == b.size else {
                            throw ImagesError(.invalidContent, "blob \(b.digest): \(bf.size) bytes, its descriptor declares \(b.size)")
                        }
                        try adopt(bf, as: b.digest)
                    }
                    let (cfg, _) = try config(of: m)
                    if unpackTarget == nil || Platform.host.matches(cfg.platform) { unpackTarget = (m, cfg) }
                } else {
                    throw ImagesError(.unsupported, "index.json: entry \(d.digest) has media type \(d.mediaType)")
                }
            }
            if let (m, cfg) = unpackTarget { _ = try await unpack(m, cfg) }
            let ann = entry.annotations ?? [:]
            var name = entry.digest.description
            if let n = ann["io.containerd.image.name"], let r = try? Reference(parsing: n) {
                name = r.description
            } else if let n = ann["org.opencontainers.image.ref.name"], let r = try? Reference(parsing: n), n.contains("/") || n.contains(":") {
                name = r.description
            }
            var target = entry
            target.annotations = nil
            pending.append((name, target))
        }
        for p in pending { try images.put(p.name, target: p.target) }
        return pending.map(\.name)
    }

    func loadDockerArchive(manifest bytes: [UInt8], fileFor: (String) throws(ImagesError) -> StagedFile,
                           bytesFor: (String) throws(ImagesError) -> [UInt8]) async throws -> [String] {
        struct Entry: Decodable {
            var Config: String
            var RepoTags: [String]?
            var Layers: [String]
        }
        let entries = try decode([Entry].self, bytes, "manifest.json")
        var loaded: [String] = []
        for e in entries {
            let cfgBytes = try bytesFor(e.Config)
            let cfgDigest = try content.write(cfgBytes)
            let cfg = try decode(ImageConfig.self, cfgBytes, e.Config)
            var layers: [Descriptor] = []
            for l in e.Layers {
                let f = try fileFor(l)
                let media: String
                switch try sniffCompression(f.path) {
                case .gzip: media = MediaType.dockerLayerGzip
                case .zstd: media = MediaType.ociLayerZstd
                case .none: media = "application/vnd.docker.image.rootfs.diff.tar"
                }
                try adopt(f, as: f.digest)
                layers.append(Descriptor(mediaType: media, digest: f.digest, size: f.size))
            }
            let m = ImageManifest(mediaType: MediaType.dockerManifest,
                                  config: Descriptor(mediaType: MediaType.dockerConfig, digest: cfgDigest, size: Int64(cfgBytes.count)),
                                  layers: layers)
            _ = try await unpack(m, cfg)
            let mBytes = try encodeCanonical(m)
            let mDigest = try content.write(mBytes)
            let target = Descriptor(mediaType: MediaType.dockerManifest, digest: mDigest, size: Int64(mBytes.count))
            let tags = (e.RepoTags ?? []).compactMap { try? Reference(parsing: $0) }
            if tags.isEmpty {
                try images.put(mDigest.description, target: target)
                loaded.append(mDigest.description)
            }
            for t in tags {
                try images.put(t.description, target: target)
                loaded.append(t.description)
            }
        }
        return loaded
    }

    func encodeCanonical<T: Encodable>(_ v: T) throws(ImagesError) -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try enc.encode(v)) } catch { throw ImagesError(.system, "encode: \(error)") }
    }

    func sniffCompression(_ path: String) throws(ImagesError) -> LayerCompression {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImagesError.system("open \(path)", errno: errno) }
        defer { close(fd) }
        var magic = [UInt8](repeating: 0, count: 4)
        let n = magic.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4) }
        if n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b { return .gzip }
        if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] { return .zstd }
        return .none
    }

    // MARK: import

    /// `docker import`: a rootfs tarball (plain, gzip or zstd) as a one-layer image named `reference`.
    public func importRootfs(_ path: String, as reference: String, config: ImageConfig.Config? = nil) async throws -> ImageSummary {
        let ref: Reference
        do { ref = try Reference(parsing: reference) } catch { throw ImagesError.wrap(error, "import \(reference)", as: .invalidArgument) }
        let lock = try await lease()
        defer { withExtendedLifetime(lock) {} }
        let staging = content.root + "/import-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        do { try FS.mkdirAll(staging, mode: 0o700) } catch { throw ImagesError(wrapping: error) }
        defer { try? FS.removeTree(staging) }
        do {
            // Copy the input into staging (it may be a pipe) while unpacking it: one pass.
            let src = open(path, O_RDONLY | O_CLOEXEC)
            guard src >= 0 else { throw ImagesError.system("open \(path)", errno: errno) }
            defer { close(src) }
            let blobPath = staging + "/layer"
            let dst = open(blobPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard dst >= 0 else { throw ImagesError.system("create \(blobPath)", errno: errno) }
            let out = FDSink(fd: dst, what: blobPath)
            defer { close(dst) }
            let hasher = StreamHasher()
            var unpacker: LayerUnpacker?
            var compression = LayerCompression.none
            let (dir, mode) = try snapshots.beginLayer(parent: nil)
            var size: Int64 = 0
            do {
                try forEachChunk(of: src, what: path) { chunk in
                    if unpacker == nil {
                        // The first chunk says the compression (magic bytes), as `docker import` sniffs it.
                        let m = Array(chunk.prefix(4))
                        if m.count >= 2 && m[0] == 0x1f && m[1] == 0x8b { compression = .gzip }
                        if m == [0x28, 0xb5, 0x2f, 0xfd] { compression = .zstd }
                        unpacker = try LayerUnpacker(rootPath: dir + "/fs", compression: compression, mode: mode,
                                                     limits: UnpackLimits(maxUncompressedBytes: Int64.max), expectedDiffID: nil)
                    }
                    hasher.update(chunk)
                    try out.write(chunk)
                    try unpacker?.feed(chunk)
                    size += Int64(chunk.count)
                }
                guard let unpacker else { throw ImagesError(.invalidContent, "\(path) is empty") }
                let (diffID, _) = try unpacker.finish()
                try snapshots.commitLayer(dir, chain: diffID, parent: nil)
                let blobDigest = hasher.finish()
                try adopt(StagedFile(path: blobPath, digest: blobDigest, size: size), as: blobDigest)
                let media = compression == .gzip ? MediaType.ociLayerGzip : compression == .zstd ? MediaType.ociLayerZstd : MediaType.ociLayer
                let now = ISO8601DateFormatter().string(from: Date())
                let cfg = ImageConfig(platform: Platform.host, config: config ?? ImageConfig.Config(), diffIDs: [diffID],
                                      history: [ImageConfig.History(created: now, createdBy: "berth-image import", comment: "Imported from \(path)")],
                                      created: now)
                let cfgBytes = try encodeCanonical(cfg)
                let cfgDigest = try content.write(cfgBytes)
                let m = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: cfgDigest, size: Int64(cfgBytes.count)),
                                      layers: [Descriptor(mediaType: media, digest: blobDigest, size: size)])
                let mBytes = try encodeCanonical(m)
                let mDigest = try content.write(mBytes)
                try images.put(ref.description, target: Descriptor(mediaType: MediaType.ociManifest, digest: mDigest, size: Int64(mBytes.count)))
            } catch {
                unpacker?.cancel()
                snapshots.abortLayer(dir)
                throw error
            }
            return try inspect(ref.description)
        } catch let e as ImagesError {
            throw e.prefixed("import \(path)")
        }
    }
}

/// write(2) of whole chunks to an fd, EINTR retried.
struct FDSink {
    let fd: Int32
    let what: String
    func write(_ chunk: UnsafeRawBufferPointer) throws(ImagesError) {
        let e = writeAll(fd, chunk)
        if e != 0 { throw ImagesError.system("write \(what)", errno: e) }
    }
}

func fsyncFile(_ path: String) -> Int32 {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return -1 }
    defer { close(fd) }
    return fsync(fd)
}
