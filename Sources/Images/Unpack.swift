// Unpack.swift: applies a layer (tar, tar+gzip, tar+zstd) to a directory in one pass over the bytes:
// decompress → sha256 of the tar stream (the diff ID) → tar parse → write. Every path of the layer is
// resolved inside the root by the kernel (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS relative to a
// root dir fd); the last component is always created with *at calls relative to its parent's fd, with
// O_NOFOLLOW / O_EXCL / AT_SYMLINK_NOFOLLOW, so no entry can reach outside the root or write through a
// symlink. Whiteouts become overlayfs whiteouts (.overlay) or deletions (.apply).
//
// On error the unpacker closes its fds and the directory holds a partial layer: the caller removes it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinux
import OCI

/// What to do with whiteout entries (`.wh.NAME`, `.wh..wh..opq`).
public enum WhiteoutMode: Sendable, Equatable {
    /// overlayfs form, for a snapshot that will be an overlay layer: `.wh.NAME` becomes a 0/0 character
    /// device NAME, `.wh..wh..opq` becomes `trusted.overlay.opaque=y` on its directory.
    case overlay
    /// Delete what the whiteout names in the target directory (layers extracted onto each other in one
    /// directory). An opaque directory loses what it held before this layer; what this layer puts in it stays.
    case apply
}

public struct UnpackLimits: Sendable, Equatable {
    /// The most bytes the layer may decompress to (the whole tar stream): a decompression-bomb guard.
    public var maxUncompressedBytes: Int64
    /// The largest pax header or GNU long name/link (each is held in memory).
    public var maxMetadataBytes: Int

    public init(maxUncompressedBytes: Int64 = .max, maxMetadataBytes: Int = 8 << 20) {
        self.maxUncompressedBytes = maxUncompressedBytes
        self.maxMetadataBytes = maxMetadataBytes
    }

    /// `ratio` times the layer's compressed size, and never under `minimum` (a small layer of zeros
    /// compresses a thousandfold, and is not a bomb).
    public static func forCompressedSize(_ size: Int64, ratio: Int64 = 100, minimum: Int64 = 1 << 30) -> UnpackLimits {
        let (product, overflow) = size.multipliedReportingOverflow(by: ratio)
        return UnpackLimits(maxUncompressedBytes: overflow ? .max : max(product, minimum))
    }
}

public struct UnpackOptions: Sendable, Equatable {
    /// chown every entry to its uid/gid. As root a failing chown is an error. false leaves everything
    /// owned by the caller (rootless, without an id mapping).
    public var preserveOwners: Bool
    /// Decompress and hash on the caller's thread while a second thread parses the tar and writes the
    /// files (gzip layers only): inflate and the filesystem work then overlap. `feed` still
    /// reports every error, at the latest by `finish`.
    public var pipelined: Bool

    public init(preserveOwners: Bool = true, pipelined: Bool = true) {
        self.preserveOwners = preserveOwners
        self.pipelined = pipelined
    }
}

public struct UnpackResult: Sendable, Equatable {
    public var diffID: Digest
    /// bytes of the uncompressed tar stream
    public var size: Int64
    public var warnings: [String]
}

/// Applies one layer to a directory. Feed it the layer's (compressed) bytes in chunks of any size, then
/// call `finish()`. Not thread-safe: one layer, one caller. Device nodes the kernel refuses with EPERM
/// (user namespaces, rootless) are skipped with a warning, as Docker does; xattrs the filesystem does not
/// support (ENOTSUP) likewise; `trusted.overlay.*` xattrs in a layer are never applied (only whiteout
/// entries may make overlay metadata).
public final class LayerUnpacker {
    public let compression: LayerCompression
    public let mode: WhiteoutMode
    public let limits: UnpackLimits
    public let expectedDiffID: Digest?
    public let options: UnpackOptions
    /// What was skipped, one line each ("layer entry \"dev/kmsg\": character device 1:11 not created: …").
    /// Complete once `finish` returned (a pipelined unpacker adds to it on its writer thread until then).
    public private(set) var warnings: [String] = []

    private var rootFD: Int32
    private let decompressor: Decompressor
    private let hasher = StreamHasher()
    private let reader: TarReader
    private var uncompressed: Int64 = 0
    private enum Phase { case running, failed, finished }
    private var phase = Phase.running

    // the regular file being written
    private var fileFD: Int32 = -1
    private var fileEntry: TarEntry?

    // open directories by normalized path; the current entry's parents are pinned: a cache flush
    // while the entry is handled retires them, and they are closed when the entry is done
    private var dirCache: [[UInt8]: Int32] = [:]
    private var lastDirKey: [UInt8] = []
    private var lastDirFD: Int32 = -1
    private var pinned: [Int32] = []
    private var retired: [Int32] = []
    private let dirCacheLimit = 256

    /// directory times, applied at the end (deepest first), since creating children changes them
    private var dirTimes: [[UInt8]: (atime: TarTime, mtime: TarTime)] = [:]
    /// .apply: every path this layer made (and their parents), which its whiteouts must not remove
    private var layerPaths: Set<[UInt8]> = []

    /// Unpacks into the directory at `rootPath` (which must exist).
    public convenience init(rootPath: String, compression: LayerCompression, mode: WhiteoutMode,
                            limits: UnpackLimits = UnpackLimits(), expectedDiffID: Digest? = nil,
                            options: UnpackOptions = UnpackOptions()) throws {
        let fd = open(rootPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw ImagesError.system("unpack layer: open \(rootPath)", errno: errno) }
        try self.init(owning: fd, compression: compression, mode: mode, limits: limits,
                      expectedDiffID: expectedDiffID, options: options)
    }

    /// Unpacks into the directory open as `rootFD` (duplicated: the caller keeps its fd).
    public convenience init(rootFD: Int32, compression: LayerCompression, mode: WhiteoutMode,
                            limits: UnpackLimits = UnpackLimits(), expectedDiffID: Digest? = nil,
                            options: UnpackOptions = UnpackOptions()) throws {
        let fd = fcntl(rootFD, F_DUPFD_CLOEXEC, 0)
        if fd < 0 { throw ImagesError.system("unpack layer: duplicate the root fd", errno: errno) }
        try self.init(owning: fd, compression: compression, mode: mode, limits: limits,
                      expectedDiffID: expectedDiffID, options: options)
    }

    private init(owning fd: Int32, compression: LayerCompression, mode: WhiteoutMode, limits: UnpackLimits,
                 expectedDiffID: Digest?, options: UnpackOptions) throws {
        rootFD = fd
        do {
            decompressor = try Decompressor(compression)
        } catch {
            _ = close(fd)
            throw error
        }
        self.compression = compression
        self.mode = mode
        self.limits = limits
        self.expectedDiffID = expectedDiffID
        self.options = options
        reader = TarReader(maxMetadataBytes: limits.maxMetadataBytes)
    }

    /// the writer thread, when pipelined (started by the first feed)
    private var pipeline: Pipeline?

    deinit {
        pipeline?.stop()
        closeAll()
    }

    /// Stops now: the writer thread is joined and every fd closed before this returns, so the caller may
    /// remove the directory at once. Call it on every path that abandons an unpack: dropping the unpacker
    /// does the same in deinit, but that may run later, on the writer thread, when it held the last
    /// reference for a moment.
    public func cancel() {
        guard phase == .running else { return }
        fail()
    }

    /// Decompresses, hashes and applies the next bytes of the layer.
    public func feed(_ compressedChunk: UnsafeRawBufferPointer) throws {
        try checkRunning()
        do {
            try decompressor.feed(compressedChunk) { try self.consume($0) }
        } catch {
            fail()
            throw error
        }
    }

    /// Feeds everything `fd` has to read, to its end (the fd is not closed).
    public func feed(fd: Int32) throws {
        try checkRunning()
        do {
            try forEachChunk(of: fd, what: "the layer to unpack") { try feed($0) }
        } catch {
            fail()
            throw error
        }
    }

    /// Checks the stream ended properly (compression and tar), applies the directory times, closes every
    /// fd, and checks the diff ID when one was expected.
    public func finish() throws -> (diffID: Digest, size: Int64) {
        try checkRunning()
        do {
            try decompressor.finish()
            try drainPipeline()
            try reader.finish()
            try applyDirectoryTimes()
        } catch {
            fail()
            throw error
        }
        phase = .finished
        closeAll()
        let diffID = hasher.finish()
        if let expectedDiffID, expectedDiffID != diffID {
            throw ImagesError(.invalidContent, "layer diff ID mismatch: expected \(expectedDiffID), got \(diffID)")
        }
        return (diffID, uncompressed)
    }

    /// Unpacks the layer file at `path` into `rootPath`.
    public static func unpack(layerAt path: String, into rootPath: String, compression: LayerCompression,
                              mode: WhiteoutMode, limits: UnpackLimits = UnpackLimits(),
                              expectedDiffID: Digest? = nil,
                              options: UnpackOptions = UnpackOptions()) throws -> UnpackResult {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ImagesError.system("unpack layer: open \(path)", errno: errno) }
        defer { _ = close(fd) }
        let u = try LayerUnpacker(rootPath: rootPath, compression: compression, mode: mode, limits: limits,
                                  expectedDiffID: expectedDiffID, options: options)
        try u.feed(fd: fd)
        let (diffID, size) = try u.finish()
        return UnpackResult(diffID: diffID, size: size, warnings: u.warnings)
    }

    // MARK: - the stream

    private func checkRunning() throws {
        switch phase {
        case .running: return
        case .failed: throw ImagesError(.invalidArgument, "unpack layer: the unpacker already failed")
        case .finished: throw ImagesError(.invalidArgument, "unpack layer: the unpacker is already finished")
        }
    }

    private func consume(_ bytes: UnsafeRawBufferPointer) throws {
        uncompressed += Int64(bytes.count)
        if uncompressed > limits.maxUncompressedBytes {
            throw ImagesError(.invalidContent, "layer decompresses to more than \(limits.maxUncompressedBytes) bytes, "
                + "the limit for it: refusing it as a decompression bomb")
        }
        hasher.update(bytes)
        // zstd inflates several times faster than gzip: handing its output over costs more than it saves
        if options.pipelined && compression == .gzip {
            if pipeline == nil { pipeline = try Pipeline(self) }
            try pipeline!.put(bytes)
            return
        }
        try writeTar(bytes)
    }

    /// The tar stream into files (on the writer thread when pipelined).
    fileprivate func writeTar(_ bytes: UnsafeRawBufferPointer) throws {
        if reader.isEnded { return }  // what follows the end blocks is hashed, not unpacked
        try reader.feed(bytes) { try self.handle($0) }
    }

    /// Waits for the writer thread to write all it was given and rethrows its error.
    private func drainPipeline() throws {
        guard let p = pipeline else { return }
        pipeline = nil
        try p.finish()
    }

    private func handle(_ event: TarEvent) throws {
        switch event {
        case .data(let d):
            if fileFD >= 0 { try writeFileData(d) }
        case .entryEnd:
            if fileFD >= 0 { try finishFile() }
        case .entry(let e):
            defer { entryDone() }
            try apply(e)
        case .end:
            break
        }
    }

    private func fail() {
        // the writer thread uses the fds: it stops before they are closed
        pipeline?.stop()
        pipeline = nil
        phase = .failed
        closeAll()
    }

    private func closeAll() {
        if fileFD >= 0 { _ = close(fileFD); fileFD = -1 }
        for fd in dirCache.values { _ = close(fd) }
        dirCache.removeAll()
        lastDirFD = -1
        for fd in retired { _ = close(fd) }
        retired.removeAll()
        pinned.removeAll()
        if rootFD >= 0 { _ = close(rootFD); rootFD = -1 }
    }

    private func entryDone() {
        pinned.removeAll(keepingCapacity: true)
        for fd in retired { _ = close(fd) }
        retired.removeAll(keepingCapacity: true)
    }

    // MARK: - entries

    private func apply(_ e: TarEntry) throws {
        let p = try EntryPath(e.name, what: "layer entry")
        if p.full.isEmpty { return }  // the root itself ("./"): its directory is the caller's (as containerd)
        let base = p.base
        if base.starts(with: whiteoutPrefix) {
            try whiteout(e, p)
            return
        }
        if p.full.starts(with: aufsMetaPrefix) {
            warnings.append("layer entry \"\(printableTarName(e.name))\": aufs metadata, skipped")
            return
        }
        if mode == .apply { recordLayerPath(p.full) }
        switch e.kind {
        case .directory: try makeDirectory(e, p)
        case .regular: try createFile(e, p)
        case .hardlink: try makeHardlink(e, p)
        case .symlink: try makeSymlink(e, p)
        case .characterDevice, .blockDevice, .fifo: try makeNode(e, p)
        case .other(let t):
            let flag = t >= 0x20 && t < 0x7f ? "'\(Character(Unicode.Scalar(t)))'" : "\(t)"
            throw ImagesError(.unsupported, "layer entry \"\(printableTarName(e.name))\": tar entry type \(flag) is not supported")
        }
    }

    private func makeDirectory(_ e: TarEntry, _ p: EntryPath) throws {
        let parent = try parentDir(p, create: true, e)!
        var fd = p.withBase { openat(parent, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        if fd.result < 0 {
            switch fd.errno {
            case ENOENT:
                break
            case ENOTDIR, ELOOP:
                try removeExisting(parent, p, e)  // a non-directory is in the way: replace it
            default:
                throw entryError(e, "open directory", fd.errno)
            }
            let r = p.withBase { mkdirat(parent, $0, 0o700) }
            if r.result < 0 { throw entryError(e, "mkdir", r.errno) }
            fd = p.withBase { openat(parent, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if fd.result < 0 { throw entryError(e, "open directory", fd.errno) }
        }
        cacheDir(p.full, fd.result)
        try applyOwnerAndMode(e, fd: fd.result)
        try applyXattrs(e) { name, value in
            sys { fsetxattr(fd.result, name, value.baseAddress, value.count, 0) }
        }
        dirTimes[p.full] = (e.accessTime ?? e.modificationTime, e.modificationTime)
    }

    private func createFile(_ e: TarEntry, _ p: EntryPath) throws {
        let parent = try parentDir(p, create: true, e)!
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        var fd = p.withBase { openat(parent, $0, flags, 0o600) }
        if fd.result < 0 && fd.errno == EEXIST {
            try removeExisting(parent, p, e)  // never write through what is there (a symlink, a hard link)
            fd = p.withBase { openat(parent, $0, flags, 0o600) }
        }
        if fd.result < 0 { throw entryError(e, "create file", fd.errno) }
        fileFD = fd.result
        fileEntry = e
        if e.size == 0 { return }  // .entryEnd follows at once
    }

    private func writeFileData(_ d: UnsafeRawBufferPointer) throws {
        let err = writeAll(fileFD, d)
        if err != 0 { throw entryError(fileEntry!, "write", err) }
    }

    private func finishFile() throws {
        let fd = fileFD
        let e = fileEntry!
        defer {
            _ = close(fd)
            fileFD = -1
            fileEntry = nil
        }
        // owner first (chown clears setuid/setgid and file capabilities), then mode, then xattrs, then times
        try applyOwnerAndMode(e, fd: fd)
        try applyXattrs(e) { name, value in
            sys { fsetxattr(fd, name, value.baseAddress, value.count, 0) }
        }
        var ts = (timespec(e.accessTime ?? e.modificationTime), timespec(e.modificationTime))
        let r = withUnsafePointer(to: &ts) { p in
            p.withMemoryRebound(to: timespec.self, capacity: 2) { t in sys { futimens(fd, t) } }
        }
        if r.result < 0 { throw entryError(e, "set times", r.errno) }
    }

    private func makeHardlink(_ e: TarEntry, _ p: EntryPath) throws {
        let target = try EntryPath(e.linkName, what: "layer entry \"\(printableTarName(e.name))\": hard link target")
        guard !target.full.isEmpty else {
            throw ImagesError(.invalidContent, "layer entry \"\(printableTarName(e.name))\": hard link to the root directory")
        }
        let parent = try parentDir(p, create: true, e)!
        guard let targetParent = try parentDir(target, create: false, e) else {
            throw ImagesError(.invalidContent, "layer entry \"\(printableTarName(e.name))\": hard link target "
                + "\"\(printableTarName(e.linkName))\" does not exist")
        }
        func link() -> (result: Int32, errno: Int32) {
            withCPath(target.base) { t in p.withBase { n in linkat(targetParent, t, parent, n, 0) } }
        }
        var r = link()
        if r.result < 0 && r.errno == EEXIST {
            if sameFile(targetParent, target, parent, p) { return }
            try removeExisting(parent, p, e)
            r = link()
        }
        if r.result < 0 {
            if r.errno == ENOENT {
                throw ImagesError(.invalidContent, "layer entry \"\(printableTarName(e.name))\": hard link target "
                    + "\"\(printableTarName(e.linkName))\" does not exist")
            }
            throw entryError(e, "hard link to \"\(printableTarName(e.linkName))\"", r.errno)
        }
    }

    private func makeSymlink(_ e: TarEntry, _ p: EntryPath) throws {
        let parent = try parentDir(p, create: true, e)!
        guard !e.linkName.contains(0) else {
            throw ImagesError(.invalidContent, "layer entry \"\(printableTarName(e.name))\": NUL byte in the link target")
        }
        func symlink() -> (result: Int32, errno: Int32) {
            withCPath(e.linkName[...]) { t in p.withBase { n in symlinkat(t, parent, n) } }
        }
        var r = symlink()
        if r.result < 0 && r.errno == EEXIST {
            try removeExisting(parent, p, e)
            r = symlink()
        }
        if r.result < 0 { throw entryError(e, "symlink to \"\(printableTarName(e.linkName))\"", r.errno) }
        try applyPathMetadata(e, parent, p, chmod: false)
    }

    private func makeNode(_ e: TarEntry, _ p: EntryPath) throws {
        let parent = try parentDir(p, create: true, e)!
        let type: mode_t
        switch e.kind {
        case .characterDevice: type = 0o020000
        case .blockDevice: type = 0o060000
        default: type = 0o010000  // fifo
        }
        let dev = makeDevice(e.deviceMajor, e.deviceMinor)
        func mknod() -> (result: Int32, errno: Int32) {
            p.withBase { mknodat(parent, $0, type | 0o600, e.kind == .fifo ? 0 : dev) }
        }
        var r = mknod()
        if r.result < 0 && r.errno == EEXIST {
            try removeExisting(parent, p, e)
            r = mknod()
        }
        if r.result < 0 {
            if r.errno == EPERM && e.kind != .fifo {
                let what = e.kind == .characterDevice ? "character" : "block"
                warnings.append("layer entry \"\(printableTarName(e.name))\": \(what) device \(e.deviceMajor):\(e.deviceMinor) "
                    + "not created: mknod is not permitted here (user namespace or rootless)")
                return
            }
            throw entryError(e, "mknod", r.errno)
        }
        try applyPathMetadata(e, parent, p, chmod: true)
    }

    // MARK: - whiteouts

    private func whiteout(_ e: TarEntry, _ p: EntryPath) throws {
        let base = p.base
        if base.elementsEqual(opaqueName) {
            try opaque(e, p)
            return
        }
        if base.starts(with: aufsMetaPrefix) {
            warnings.append("layer entry \"\(printableTarName(e.name))\": aufs metadata, skipped")
            return
        }
        let name = Array(base.dropFirst(whiteoutPrefix.count))
        guard !name.isEmpty, name != [0x2e], name != [0x2e, 0x2e] else {
            throw ImagesError(.invalidContent, "layer entry \"\(printableTarName(e.name))\": a whiteout must name what it removes")
        }
        let victim = EntryPath(joining: p.parent, name)
        switch mode {
        case .overlay:
            let parent = try parentDir(p, create: true, e)!
            let r = victim.withBase { mknodat(parent, $0, 0o020000, 0) }
            if r.result < 0 {
                // the same layer has that path: a whiteout hides only what is below it
                if r.errno == EEXIST { return }
                if r.errno == EPERM {
                    throw ImagesError(.system, "layer entry \"\(printableTarName(e.name))\": cannot create the overlay whiteout "
                        + "(a 0/0 character device): mknod is not permitted here; unpack with the apply whiteout mode instead")
                }
                throw entryError(e, "create overlay whiteout", r.errno)
            }
            if options.preserveOwners {
                let (uid, gid) = try ids(e)
                let c = victim.withBase { fchownat(parent, $0, uid, gid, AT_SYMLINK_NOFOLLOW) }
                if c.result < 0 { throw entryError(e, "chown overlay whiteout", c.errno) }
            }
        case .apply:
            guard let parent = try parentDir(p, create: false, e) else { return }  // nothing there to remove
            if layerPaths.contains(victim.full) { return }
            try removeTree(parent, victim.base, e)
            flushDirCache()
            forgetDirTimes(under: victim.full)
        }
    }

    private func opaque(_ e: TarEntry, _ p: EntryPath) throws {
        switch mode {
        case .overlay:
            let dir = try parentDir(p, create: true, e)!
            let r = withCPath(overlayOpaque[...]) { n in sys { fsetxattr(dir, n, "y", 1, 0) } }
            if r.result < 0 {
                throw entryError(e, "set trusted.overlay.opaque on its directory"
                    + (r.errno == EPERM ? " (needs CAP_SYS_ADMIN)" : ""), r.errno)
            }
        case .apply:
            guard let dir = try parentDir(p, create: false, e) else { return }
            try removeUntouched(in: dir, path: Array(p.parent), e)
            flushDirCache()
        }
    }

    /// Removes what this layer did not make from the directory open as `dir` (at `path`), recursing into
    /// directories that hold something this layer made.
    private func removeUntouched(in dir: Int32, path: [UInt8], _ e: TarEntry) throws {
        let own = sys { openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        if own.result < 0 { throw entryError(e, "open the opaque directory", own.errno) }
        let names = try listDirectory(taking: own.result, e)
        let fd = names.fd
        defer { _ = close(fd) }
        for child in names.names {
            let childPath = path.isEmpty ? child : path + [0x2f] + child
            if !layerPaths.contains(childPath) {
                try removeTree(fd, child[...], e)
                forgetDirTimes(under: childPath)
                continue
            }
            let sub = withCPath(child[...]) { n in sys { openat(fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } }
            if sub.result >= 0 {
                defer { _ = close(sub.result) }
                try removeUntouched(in: sub.result, path: childPath, e)
            } else if sub.errno != ENOTDIR && sub.errno != ELOOP {
                throw entryError(e, "open \"\(printableTarName(childPath))\" in the opaque directory", sub.errno)
            }
        }
    }

    private func recordLayerPath(_ path: [UInt8]) {
        guard layerPaths.insert(path).inserted else { return }
        var end = path.count
        while let slash = path[..<end].lastIndex(of: 0x2f) {
            if !layerPaths.insert(Array(path[..<slash])).inserted { return }
            end = slash
        }
    }

    // MARK: - metadata

    private func ids(_ e: TarEntry) throws -> (uid_t, gid_t) {
        // (uid_t)-1 means "leave unchanged" to chown: not a value a layer may ask for
        guard e.uid >= 0, e.uid < Int64(UInt32.max), e.gid >= 0, e.gid < Int64(UInt32.max) else {
            throw ImagesError(.invalidContent, "layer entry \"\(printableTarName(e.name))\": uid \(e.uid) / gid \(e.gid) out of range")
        }
        return (uid_t(e.uid), gid_t(e.gid))
    }

    private func applyOwnerAndMode(_ e: TarEntry, fd: Int32) throws {
        if options.preserveOwners {
            let (uid, gid) = try ids(e)
            let r = sys { fchown(fd, uid, gid) }
            if r.result < 0 { throw entryError(e, "chown to \(uid):\(gid)", r.errno) }
        }
        let r = sys { fchmod(fd, mode_t(e.mode & 0o7777)) }
        if r.result < 0 { throw entryError(e, "chmod", r.errno) }
    }

    /// Owner, mode, xattrs and times of a symlink, device or fifo, by name in its parent.
    private func applyPathMetadata(_ e: TarEntry, _ parent: Int32, _ p: EntryPath, chmod: Bool) throws {
        if options.preserveOwners {
            let (uid, gid) = try ids(e)
            let r = p.withBase { fchownat(parent, $0, uid, gid, AT_SYMLINK_NOFOLLOW) }
            if r.result < 0 { throw entryError(e, "chown to \(uid):\(gid)", r.errno) }
        }
        if chmod {
            // the name was just made by mknod: not a symlink
            let r = p.withBase { fchmodat(parent, $0, mode_t(e.mode & 0o7777), 0) }
            if r.result < 0 { throw entryError(e, "chmod", r.errno) }
        }
        if !e.xattrs.isEmpty {
            // l*xattr through the parent's fd (/proc/self/fd/N/NAME): the last component is not followed
            let procPath = Array("/proc/self/fd/\(parent)/".utf8) + p.base
            try applyXattrs(e) { name, value in
                withCPath(procPath[...]) { path in sys { lsetxattr(path, name, value.baseAddress, value.count, 0) } }
            }
        }
        var ts = (timespec(e.accessTime ?? e.modificationTime), timespec(e.modificationTime))
        let r = withUnsafePointer(to: &ts) { tp in
            tp.withMemoryRebound(to: timespec.self, capacity: 2) { t in
                p.withBase { utimensat(parent, $0, t, AT_SYMLINK_NOFOLLOW) }
            }
        }
        if r.result < 0 { throw entryError(e, "set times", r.errno) }
    }

    private func applyXattrs(_ e: TarEntry,
                             _ set: (UnsafePointer<CChar>, UnsafeRawBufferPointer) -> (result: Int32, errno: Int32)) throws {
        guard !e.xattrs.isEmpty else { return }
        for name in e.xattrs.keys.sorted() {
            if name.hasPrefix("trusted.overlay.") {
                warnings.append("layer entry \"\(printableTarName(e.name))\": xattr \(name) not applied (overlay metadata "
                    + "comes only from whiteout entries)")
                continue
            }
            let value = e.xattrs[name]!
            let r = name.withCString { n in value.withUnsafeBytes { v in set(n, v) } }
            if r.result < 0 {
                if r.errno == EOPNOTSUPP {
                    warnings.append("layer entry \"\(printableTarName(e.name))\": xattr \(name) not supported by the filesystem, skipped")
                    continue
                }
                throw entryError(e, "set xattr \(name)", r.errno)
            }
        }
    }

    private func applyDirectoryTimes() throws {
        guard !dirTimes.isEmpty else { return }
        let order = dirTimes.keys.sorted { a, b in
            let da = a.reduce(0) { $0 + ($1 == 0x2f ? 1 : 0) }, db = b.reduce(0) { $0 + ($1 == 0x2f ? 1 : 0) }
            return da != db ? da > db : a.lexicographicallyPrecedes(b)
        }
        for path in order {
            let times = dirTimes[path]!
            let p = EntryPath(normalized: path)
            var e = TarEntry(.directory, path: "")
            e.name = path
            defer { entryDone() }
            guard let parent = try parentDir(p, create: false, e, missingIsNil: true) else { continue }
            var ts = (timespec(times.atime), timespec(times.mtime))
            let r = withUnsafePointer(to: &ts) { tp in
                tp.withMemoryRebound(to: timespec.self, capacity: 2) { t in
                    p.withBase { utimensat(parent, $0, t, AT_SYMLINK_NOFOLLOW) }
                }
            }
            if r.result < 0 && r.errno != ENOENT { throw entryError(e, "set times", r.errno) }
        }
        dirTimes.removeAll()
    }

    private func forgetDirTimes(under path: [UInt8]) {
        guard !dirTimes.isEmpty else { return }
        for key in dirTimes.keys where key == path || (key.count > path.count && key.starts(with: path)
                                                        && key[path.count] == 0x2f) {
            dirTimes.removeValue(forKey: key)
        }
    }

    // MARK: - directories of the root

    /// The fd of the entry's parent directory, resolved inside the root (missing directories are created
    /// with mode 0755 when `create`); nil when it does not exist and `create` is false. The fd belongs to
    /// the cache and stays open until the entry is done.
    private func parentDir(_ p: EntryPath, create: Bool, _ e: TarEntry, missingIsNil: Bool = false) throws -> Int32? {
        if p.baseStart == 0 { return rootFD }
        let key = p.parent
        if lastDirFD >= 0 && lastDirKey.count == key.count && lastDirKey.elementsEqual(key) {
            pinned.append(lastDirFD)
            return lastDirFD
        }
        let k = Array(key)
        if let fd = dirCache[k] {
            lastDirKey = k
            lastDirFD = fd
            pinned.append(fd)
            return fd
        }
        let fd = try resolveDirectory(k, create: create, e, missingIsNil: missingIsNil)
        if fd < 0 { return nil }
        cacheDir(k, fd)
        pinned.append(fd)
        return fd
    }

    private func cacheDir(_ key: [UInt8], _ fd: Int32) {
        if let old = dirCache[key] {
            if pinned.contains(old) { retired.append(old) } else { _ = close(old) }
        } else if dirCache.count >= dirCacheLimit {
            flushDirCache()
        }
        dirCache[key] = fd
        lastDirKey = key
        lastDirFD = fd
    }

    /// Forgets every cached directory: called whenever a directory or symlink is removed, since a cached
    /// path may have been resolved through it.
    private func flushDirCache() {
        for fd in dirCache.values {
            if pinned.contains(fd) { retired.append(fd) } else { _ = close(fd) }
        }
        dirCache.removeAll(keepingCapacity: true)
        lastDirKey = []
        lastDirFD = -1
    }

    private func openInRoot(_ path: ArraySlice<UInt8>) -> (result: Int32, errno: Int32) {
        let resolve = UInt64(BL_RESOLVE_IN_ROOT | BL_RESOLVE_NO_MAGICLINKS)
        let flags = UInt64(UInt32(bitPattern: O_RDONLY | O_DIRECTORY | O_CLOEXEC))
        while true {
            let r = withCPath(path) { p in sys { bl_openat2(rootFD, p, flags, 0, resolve) } }
            // EAGAIN: a rename raced the lookup (RESOLVE_IN_ROOT retries are the caller's)
            if r.result < 0 && r.errno == EAGAIN { continue }
            return r
        }
    }

    private func resolveError(_ e: TarEntry, _ dir: ArraySlice<UInt8>, _ err: Int32) -> ImagesError {
        switch err {
        case ENOTDIR:
            return ImagesError(.invalidContent, "layer entry \"\(printableTarName(e.name))\": \"\(printableTarName(Array(dir)))\" is not a directory")
        case ELOOP:
            return ImagesError(.invalidContent, "layer entry \"\(printableTarName(e.name))\": too many symbolic links in \"\(printableTarName(Array(dir)))\"")
        case ENOSYS:
            return ImagesError(.unsupported, "unpack layer: openat2(2) is missing: berth needs Linux 5.6 or later")
        default:
            return entryError(e, "open directory \"\(printableTarName(Array(dir)))\"", err)
        }
    }

    private func resolveDirectory(_ key: [UInt8], create: Bool, _ e: TarEntry, missingIsNil: Bool) throws -> Int32 {
        let r = openInRoot(key[...])
        if r.result >= 0 { return r.result }
        if missingIsNil && (r.errno == ENOENT || r.errno == ENOTDIR) { return -1 }
        if r.errno != ENOENT { throw resolveError(e, key[...], r.errno) }
        if !create { return -1 }

        // Walk down, creating what is missing. Every prefix is resolved inside the root; a missing
        // component is made with mkdirat in its (resolved) parent.
        var current = rootFD
        defer { if current != rootFD { _ = close(current) } }
        var start = 0
        var creating = false
        while start < key.count {
            let end = key[start...].firstIndex(of: 0x2f) ?? key.count
            if !creating {
                let o = openInRoot(key[..<end])
                if o.result >= 0 {
                    if current != rootFD { _ = close(current) }
                    current = o.result
                    start = end + 1
                    continue
                }
                if o.errno != ENOENT { throw resolveError(e, key[..<end], o.errno) }
                creating = true
            }
            let comp = key[start..<end]
            let m = withCPath(comp) { c in sys { mkdirat(current, c, 0o755) } }
            if m.result < 0 {
                if m.errno == EEXIST {
                    throw ImagesError(.invalidContent, "layer entry \"\(printableTarName(e.name))\": \"\(printableTarName(Array(key[..<end])))\" "
                        + "is a symbolic link to a directory that does not exist")
                }
                throw entryError(e, "mkdir \"\(printableTarName(Array(key[..<end])))\"", m.errno)
            }
            let o = withCPath(comp) { c in sys { openat(current, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } }
            if o.result < 0 { throw entryError(e, "open directory \"\(printableTarName(Array(key[..<end])))\"", o.errno) }
            if current != rootFD { _ = close(current) }
            current = o.result
            let c = sys { fchmod(current, 0o755) }  // not what the umask left
            if c.result < 0 { throw entryError(e, "chmod \"\(printableTarName(Array(key[..<end])))\"", c.errno) }
            start = end + 1
        }
        let fd = current
        current = rootFD  // handed to the caller
        return fd
    }

    // MARK: - removal

    /// Removes what is at the entry's path (in `parent`) so the entry can take its place.
    private func removeExisting(_ parent: Int32, _ p: EntryPath, _ e: TarEntry) throws {
        var st = stat()
        let s = p.withBase { fstatat(parent, $0, &st, AT_SYMLINK_NOFOLLOW) }
        if s.result < 0 {
            if s.errno == ENOENT { return }
            throw entryError(e, "stat what is in the way", s.errno)
        }
        let type = st.st_mode & 0o170000
        if type == 0o040000 {
            try removeTree(parent, p.base, e)
            forgetDirTimes(under: p.full)
            flushDirCache()
        } else {
            let r = p.withBase { unlinkat(parent, $0, 0) }
            if r.result < 0 && r.errno != ENOENT { throw entryError(e, "remove what is in the way", r.errno) }
            if type == 0o120000 { flushDirCache() }
        }
    }

    /// rm -r of `name` in `dir`, never following a symlink.
    private func removeTree(_ dir: Int32, _ name: ArraySlice<UInt8>, _ e: TarEntry) throws {
        let r = withCPath(name) { n in sys { unlinkat(dir, n, 0) } }
        if r.result == 0 || r.errno == ENOENT { return }
        guard r.errno == EISDIR || r.errno == EPERM else {
            throw entryError(e, "remove \"\(printableTarName(Array(name)))\"", r.errno)
        }
        let o = withCPath(name) { n in sys { openat(dir, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } }
        if o.result < 0 {
            throw entryError(e, "remove \"\(printableTarName(Array(name)))\"", o.errno == ENOTDIR ? r.errno : o.errno)
        }
        let listing = try listDirectory(taking: o.result, e)
        do {
            defer { _ = close(listing.fd) }
            for child in listing.names { try removeTree(listing.fd, child[...], e) }
        }
        let d = withCPath(name) { n in sys { unlinkat(dir, n, AT_REMOVEDIR) } }
        if d.result < 0 && d.errno != ENOENT { throw entryError(e, "remove directory \"\(printableTarName(Array(name)))\"", d.errno) }
    }

    /// The names in the directory open as `fd` (taken over); returns an fd of the same directory to use.
    private func listDirectory(taking fd: Int32, _ e: TarEntry) throws -> (fd: Int32, names: [[UInt8]]) {
        let keep = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        if keep < 0 {
            let err = errno
            _ = close(fd)
            throw entryError(e, "list a directory", err)
        }
        guard let d = fdopendir(fd) else {
            let err = errno
            _ = close(fd)
            _ = close(keep)
            throw entryError(e, "list a directory", err)
        }
        defer { closedir(d) }
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let ent = readdir(d) else {
                if errno != 0 {
                    let err = errno
                    _ = close(keep)
                    throw entryError(e, "list a directory", err)
                }
                break
            }
            let name: [UInt8] = withUnsafeBytes(of: &ent.pointee.d_name) { raw in
                let n = raw.firstIndex(of: 0) ?? raw.count
                return Array(raw[..<n])
            }
            if name == [0x2e] || name == [0x2e, 0x2e] { continue }
            names.append(name)
        }
        return (keep, names)
    }

    private func sameFile(_ aDir: Int32, _ a: EntryPath, _ bDir: Int32, _ b: EntryPath) -> Bool {
        var sa = stat(), sb = stat()
        let ra = a.withBase { fstatat(aDir, $0, &sa, AT_SYMLINK_NOFOLLOW) }
        let rb = b.withBase { fstatat(bDir, $0, &sb, AT_SYMLINK_NOFOLLOW) }
        return ra.result == 0 && rb.result == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    private func entryError(_ e: TarEntry, _ what: String, _ err: Int32) -> ImagesError {
        ImagesError(.system, "layer entry \"\(printableTarName(e.name))\": \(what): \(errnoString(err))")
    }
}

// MARK: - paths

private let whiteoutPrefix: [UInt8] = Array(".wh.".utf8)
private let aufsMetaPrefix: [UInt8] = Array(".wh..wh.".utf8)
private let opaqueName: [UInt8] = Array(".wh..wh..opq".utf8)
private let overlayOpaque: [UInt8] = Array("trusted.overlay.opaque".utf8)

/// A layer path made relative to the root: "/a/./b//c/" → "a/b/c"; ".." goes up one component and may
/// not climb above the root.
private struct EntryPath {
    var full: [UInt8]
    /// where the last component starts in `full`
    var baseStart: Int

    var parent: ArraySlice<UInt8> { baseStart == 0 ? full[0..<0] : full[0..<(baseStart - 1)] }
    var base: ArraySlice<UInt8> { full[baseStart...] }

    init(_ name: [UInt8], what: @autoclosure () -> String) throws {
        if name.contains(0) {
            throw ImagesError(.invalidContent, "\(what()) \"\(printableTarName(name))\": NUL byte in the name")
        }
        var out: [UInt8] = []
        out.reserveCapacity(name.count)
        var i = 0
        let n = name.count
        while i < n {
            if name[i] == 0x2f { i += 1; continue }
            var j = i
            while j < n && name[j] != 0x2f { j += 1 }
            let len = j - i
            if len == 1 && name[i] == 0x2e {
                // "."
            } else if len == 2 && name[i] == 0x2e && name[i + 1] == 0x2e {
                guard !out.isEmpty else {
                    throw ImagesError(.invalidContent, "\(what()) \"\(printableTarName(name))\": the path climbs out of the root with \"..\"")
                }
                out.removeSubrange((out.lastIndex(of: 0x2f) ?? 0)...)
            } else {
                if !out.isEmpty { out.append(0x2f) }
                out.append(contentsOf: name[i..<j])
            }
            i = j
        }
        full = out
        baseStart = out.lastIndex(of: 0x2f).map { $0 + 1 } ?? 0
    }

    init(normalized: [UInt8]) {
        full = normalized
        baseStart = normalized.lastIndex(of: 0x2f).map { $0 + 1 } ?? 0
    }

    init(joining parent: ArraySlice<UInt8>, _ name: [UInt8]) {
        self.init(normalized: parent.isEmpty ? name : Array(parent) + [0x2f] + name)
    }

    func withBase(_ body: (UnsafePointer<CChar>) -> Int32) -> (result: Int32, errno: Int32) {
        withCPath(base) { p in sys { body(p) } }
    }
}

/// Runs `call` with a NUL-terminated copy of `bytes` (on the stack when small).
@inline(__always)
private func withCPath<R>(_ bytes: ArraySlice<UInt8>, _ body: (UnsafePointer<CChar>) -> R) -> R {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: bytes.count + 1) { buf in
        bytes.withUnsafeBytes { src in
            if let s = src.baseAddress, src.count > 0 {
                UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: s, byteCount: src.count)
            }
        }
        buf[bytes.count] = 0
        return body(UnsafePointer(buf.baseAddress!))
    }
}

/// A syscall and its errno, read at once, retried on EINTR.
@inline(__always)
private func sys(_ call: () -> Int32) -> (result: Int32, errno: Int32) {
    while true {
        let r = call()
        if r >= 0 { return (r, 0) }
        let e = errno
        if e != EINTR { return (r, e) }
    }
}

private func makeDevice(_ major: UInt32, _ minor: UInt32) -> dev_t {
    // glibc's makedev
    let ma = UInt64(major), mi = UInt64(minor)
    return dev_t((mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & ~0xff) << 12) | ((ma & ~0xfff) << 32))
}

extension timespec {
    fileprivate init(_ t: TarTime) {
        self.init(tv_sec: Int(t.seconds), tv_nsec: Int(t.nanoseconds))
    }
}

// MARK: - the writer thread

/// Hands decompressed bytes from the caller's thread to a writer thread through a few 1 MiB buffers.
/// The writer owns the tar reader and every fd while it runs; the caller touches them again only after
/// `finish` or `stop` joined it. An error of the writer is kept and thrown by the next `put`.
private final class Pipeline: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var free: [UnsafeMutableRawBufferPointer] = []
    private var queued: [(UnsafeMutableRawBufferPointer, Int)] = []
    private var all: [UnsafeMutableRawBufferPointer] = []
    private var current: UnsafeMutableRawBufferPointer?
    private var fill = 0
    private var closed = false
    private var cancelled = false
    private var failure: (any Error)?
    private var thread = pthread_t()
    private var joined = false
    /// unowned: the unpacker joins the thread before it goes away
    private unowned(unsafe) let unpacker: LayerUnpacker
    private static let bufferSize = 1 << 20

    init(_ unpacker: LayerUnpacker) throws {
        self.unpacker = unpacker
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
        for _ in 0..<4 {
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 64)
            all.append(b)
            free.append(b)
        }
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let p = Unmanaged<Pipeline>.fromOpaque(arg!).takeRetainedValue()
            p.run()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Pipeline>.fromOpaque(box).release()
            joined = true
            throw ImagesError.system("unpack layer: start the writer thread", errno: rc)
        }
    }

    deinit {
        for b in all { b.deallocate() }
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    /// Copies `bytes` into the buffers, handing each full one to the writer.
    func put(_ bytes: UnsafeRawBufferPointer) throws {
        pthread_mutex_lock(&mutex)
        let failed = failure
        pthread_mutex_unlock(&mutex)
        if let failed { throw failed }
        var offset = 0
        while offset < bytes.count {
            if current == nil { current = try take() }
            let n = min(Self.bufferSize - fill, bytes.count - offset)
            (current!.baseAddress! + fill).copyMemory(from: bytes.baseAddress! + offset, byteCount: n)
            fill += n
            offset += n
            if fill == Self.bufferSize { hand() }
        }
    }

    /// Hands on the last buffer, waits for the writer to finish and rethrows its error.
    func finish() throws {
        if current != nil && fill > 0 { hand() }
        pthread_mutex_lock(&mutex)
        closed = true
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
        join()
        if let failure { throw failure }
    }

    /// Abandons what is queued and joins the writer.
    func stop() {
        pthread_mutex_lock(&mutex)
        cancelled = true
        closed = true
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
        join()
    }

    private func join() {
        if joined { return }
        joined = true
        pthread_join(thread, nil)
    }

    private func take() throws -> UnsafeMutableRawBufferPointer {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while free.isEmpty && failure == nil { pthread_cond_wait(&cond, &mutex) }
        if let failure { throw failure }
        return free.removeLast()
    }

    private func hand() {
        pthread_mutex_lock(&mutex)
        queued.append((current!, fill))
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
        current = nil
        fill = 0
    }

    private func run() {
        while true {
            pthread_mutex_lock(&mutex)
            while queued.isEmpty && !closed { pthread_cond_wait(&cond, &mutex) }
            if cancelled || queued.isEmpty {
                pthread_mutex_unlock(&mutex)
                return
            }
            let (buffer, count) = queued.removeFirst()
            let failed = failure != nil
            pthread_mutex_unlock(&mutex)
            var error: (any Error)?
            if !failed {
                do { try unpacker.writeTar(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) } catch let e { error = e }
            }
            pthread_mutex_lock(&mutex)
            if let error, failure == nil { failure = error }
            free.append(buffer)
            pthread_cond_broadcast(&cond)
            pthread_mutex_unlock(&mutex)
        }
    }
}
