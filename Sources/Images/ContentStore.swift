// The content store: blobs by digest under <root>/blobs/<algorithm>/<hex>, written only through an ingest
// (<root>/ingest/<algorithm>-<hex>/data) that hashes as it goes, is verified against the expected digest and
// size, fsync'ed and renamed into place. A blob's path exists only when its bytes are whole and verified.
// An ingest survives a crash: the next writer for the same digest resumes after the bytes already there.
// Writers for one digest exclude each other with a flock on the ingest, so concurrent pulls of the same
// blob, in one process or several, download it once.
#if canImport(Glibc)
import Glibc
#endif
import LinuxContainer
import OCI

public final class ContentStore: Sendable {
    public let root: String

    public init(root: String) throws(ImagesError) {
        self.root = root
        for dir in ["blobs/sha256", "blobs/sha512", "ingest"] {
            do { try FS.mkdirAll(root + "/" + dir, mode: 0o700) } catch { throw ImagesError(wrapping: error) }
        }
    }

    public func path(_ digest: Digest) -> String {
        root + "/blobs/" + digest.algorithm.rawValue + "/" + digest.encoded
    }

    /// The blob's size when it is in the store.
    public func size(_ digest: Digest) -> Int64? {
        var st = stat()
        guard stat(path(digest), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    public func contains(_ digest: Digest) -> Bool { size(digest) != nil }

    /// Reads a small blob (manifest, config, index) whole, checking its digest again: these are parsed and
    /// trusted, and a bit flip on disk must not become a wrong image.
    public func read(_ digest: Digest, limit: Int = 8 << 20) throws(ImagesError) -> [UInt8] {
        let bytes: [UInt8]
        do { bytes = try FS.readFile(path(digest), limit: limit) } catch {
            if error.code == .notFound { throw ImagesError(.notFound, "blob \(digest): not in the content store") }
            throw ImagesError(wrapping: error)
        }
        let got = StreamHasher.digest(bytes, digest.algorithm)
        guard got == digest else {
            throw ImagesError(.invalidContent, "blob \(digest) in the content store is corrupt (its bytes hash to \(got)); "
                + "remove the image and pull it again")
        }
        return bytes
    }

    /// Stores bytes held in memory (manifests, configs); returns their digest. Idempotent.
    @discardableResult
    public func write(_ bytes: [UInt8], expected: Digest? = nil) throws(ImagesError) -> Digest {
        let digest = StreamHasher.digest(bytes, expected?.algorithm ?? .sha256)
        if let expected, expected != digest {
            throw ImagesError(.invalidContent, "digest mismatch: expected \(expected), got \(digest)")
        }
        if contains(digest) { return digest }
        do { try FS.writeAtomically(bytes, to: path(digest), mode: 0o600) } catch { throw ImagesError(wrapping: error) }
        return digest
    }

    /// Opens the ingest for `expected` (exclusively: waits, without blocking a thread, while another
    /// writer of the same digest runs). nil when the blob is already in the store, possibly written by the
    /// writer we waited for.
    public func writer(for expected: Descriptor) async throws -> ContentWriter? {
        if contains(expected.digest) { return nil }
        let dir = root + "/ingest/" + expected.digest.algorithm.rawValue + "-" + expected.digest.encoded
        do { try FS.mkdirAll(dir, mode: 0o700) } catch { throw ImagesError(wrapping: error) }
        let lock = try await FileLock.acquire(dir + "/lock", exclusive: true)
        if contains(expected.digest) {
            // Another writer committed it while we waited; what is left of the ingest is an empty lock.
            try? FS.removeTree(dir)
            return nil
        }
        return try ContentWriter(dir: dir, expected: expected, store: self, lock: lock)
    }

    public func delete(_ digest: Digest) throws(ImagesError) {
        if unlink(path(digest)) != 0 && errno != ENOENT {
            throw ImagesError.system("remove blob \(digest)", errno: errno)
        }
    }

    /// Every blob in the store with its size.
    public func list() throws(ImagesError) -> [(digest: Digest, size: Int64)] {
        var out: [(Digest, Int64)] = []
        for alg in [Digest.Algorithm.sha256, .sha512] {
            let names: [String]
            do { names = try FS.list(root + "/blobs/" + alg.rawValue) } catch { throw ImagesError(wrapping: error) }
            for name in names {
                // Anything that is not a well-formed digest name is a temp file of writeAtomically.
                guard let d = try? Digest(algorithm: alg, encoded: name), let s = size(d) else { continue }
                out.append((d, s))
            }
        }
        return out
    }

    /// Ingests that no writer holds (left by a crash or an abandoned pull), removed. Returns the bytes freed.
    @discardableResult
    public func removeStaleIngests() throws(ImagesError) -> Int64 {
        var freed: Int64 = 0
        let names: [String]
        do { names = try FS.list(root + "/ingest") } catch { throw ImagesError(wrapping: error) }
        for name in names {
            let dir = root + "/ingest/" + name
            guard let lock = FileLock.tryAcquire(dir + "/lock", exclusive: true) else { continue }
            var st = stat()
            if stat(dir + "/data", &st) == 0 { freed += Int64(st.st_size) }
            try? FS.removeTree(dir)
            _ = lock
        }
        return freed
    }
}

/// Writes one blob: hashes every byte, checks the size as it goes (a stream longer than the descriptor
/// says is cut off at once), verifies and commits. Resumes a previous attempt's bytes.
public final class ContentWriter {
    public let expected: Descriptor
    let dir: String
    let store: ContentStore
    let lock: FileLock
    let fd: Int32
    let hasher: StreamHasher
    /// bytes in the ingest, verified or not yet
    public private(set) var written: Int64
    /// bytes left by an earlier attempt that `replay` has not yet fed to the hasher
    public let resumable: Int64
    private var replayed = false
    private var done = false

    init(dir: String, expected: Descriptor, store: ContentStore, lock: FileLock) throws(ImagesError) {
        self.dir = dir
        self.expected = expected
        self.store = store
        self.lock = lock
        let f = open(dir + "/data", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if f < 0 { throw ImagesError.system("open ingest for \(expected.digest)", errno: errno) }
        fd = f
        hasher = StreamHasher(expected.digest.algorithm)
        var st = stat()
        fstat(fd, &st)
        var have = Int64(st.st_size)
        if have > expected.size {
            // More than the blob can hold: not a prefix of it. Start over.
            ftruncate(fd, 0)
            have = 0
        }
        resumable = have
        written = have
        lseek(fd, off_t(have), SEEK_SET)
    }

    deinit {
        // What was accepted stays resumable (an abandoned or failed pull); after commit/abort it is empty.
        if !done { _ = flush() }
        close(fd)
    }

    /// Network chunks are small (tens of KiB); they reach the file in writes of up to 1 MiB.
    private var pending: [UInt8] = []
    private static let flushAt = 1 << 20

    private func flush() -> Int32 {
        guard !pending.isEmpty else { return 0 }
        let e = pending.withUnsafeBytes { writeAll(fd, $0) }
        pending.removeAll(keepingCapacity: true)
        return e
    }

    /// Feeds the bytes an earlier attempt left to the hasher and to `sink` (the unpacker needs the whole
    /// stream). Must be called before the first `write` when `resumable > 0`.
    public func replay(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !replayed else { return }
        replayed = true
        guard resumable > 0 else { return }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var off: Int64 = 0
        while off < resumable {
            let want = Int(min(Int64(buf.count), resumable - off))
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(off)) }
            if n < 0 { throw ImagesError.system("read ingest of \(expected.digest)", errno: errno) }
            if n == 0 { break }
            try buf.withUnsafeBytes { raw in
                let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                hasher.update(chunk)
                try sink(chunk)
            }
            off += Int64(n)
        }
    }

    public func write(_ chunk: UnsafeRawBufferPointer) throws(ImagesError) {
        if !replayed && resumable > 0 {
            throw ImagesError(.invalidArgument, "ingest of \(expected.digest): replay the \(resumable) bytes already there first")
        }
        replayed = true
        if written + Int64(chunk.count) > expected.size {
            throw ImagesError(.invalidContent, "blob \(expected.digest): more than the \(expected.size) bytes its descriptor declares")
        }
        hasher.update(chunk)
        if pending.isEmpty { pending.reserveCapacity(ContentWriter.flushAt) }
        pending.append(contentsOf: chunk)
        if pending.count >= ContentWriter.flushAt {
            let e = flush()
            if e != 0 { throw ImagesError.system("write ingest of \(expected.digest)", errno: e) }
        }
        written += Int64(chunk.count)
    }

    /// Verifies size and digest, fsyncs and renames the blob into place. A mismatch removes the ingest
    /// (those bytes can never become this blob) and throws.
    public func commit() throws(ImagesError) {
        guard !done else { return }
        if !replayed && resumable > 0 {
            try? replay { _ in }
        }
        guard written == expected.size else {
            throw ImagesError(.invalidContent, "blob \(expected.digest): got \(written) bytes, its descriptor declares \(expected.size)")
        }
        let got = hasher.finish()
        guard got == expected.digest else {
            abort()
            throw ImagesError(.invalidContent, "blob \(expected.digest): digest mismatch, the bytes received hash to \(got)")
        }
        let e = flush()
        if e != 0 { throw ImagesError.system("write ingest of \(expected.digest)", errno: e) }
        if fsync(fd) != 0 { throw ImagesError.system("fsync ingest of \(expected.digest)", errno: errno) }
        let target = store.path(expected.digest)
        if rename(dir + "/data", target) != 0 {
            throw ImagesError.system("commit blob \(expected.digest)", errno: errno)
        }
        done = true
        FS.fsyncDirectory(FS.split(target).dir)
        try? FS.removeTree(dir)
    }

    /// Drops the ingest's bytes (a digest mismatch, a layer that failed to unpack).
    public func abort() {
        guard !done else { return }
        done = true
        try? FS.removeTree(dir)
    }
}


/// A flock on a file, held for the object's life. Acquired without blocking a thread: the cooperative
/// pool has as many threads as cores, and a blocked one would stall every other pull in the process.
public final class FileLock: @unchecked Sendable {
    // The fd is written once, in init, and only closed in deinit.
    let fd: Int32

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    static func open(_ path: String) throws(ImagesError) -> Int32 {
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw ImagesError.system("open lock \(path)", errno: errno) }
        return fd
    }

    public static func tryAcquire(_ path: String, exclusive: Bool) -> FileLock? {
        guard let fd = try? open(path) else { return nil }
        if flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 { return FileLock(fd: fd) }
        close(fd)
        return nil
    }

    public static func acquire(_ path: String, exclusive: Bool) async throws -> FileLock {
        var delay: UInt64 = 1_000_000
        while true {
            let fd = try open(path)
            while flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0 {
                let e = errno
                guard e == EWOULDBLOCK || e == EINTR else {
                    close(fd)
                    throw ImagesError.system("lock \(path)", errno: e)
                }
                do { try await Task.sleep(nanoseconds: delay) } catch {
                    close(fd)
                    throw ImagesError(.cancelled, "waiting for \(path): cancelled")
                }
                delay = min(delay * 2, 50_000_000)
            }
            // The holder we waited for may have removed the file (a committed ingest): then this lock
            // guards nothing, and the caller must look again at what the path now is.
            if isCurrent(fd, path) { return FileLock(fd: fd) }
            close(fd)
            let dir = FS.split(path).dir
            if !FS.exists(dir) { _ = try? FS.mkdirAll(dir, mode: 0o700) }
        }
    }

    static func isCurrent(_ fd: Int32, _ path: String) -> Bool {
        var a = stat(), b = stat()
        return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev
    }

    /// The blocking form, for synchronous callers (the CLI, GC).
    public static func acquireBlocking(_ path: String, exclusive: Bool) throws(ImagesError) -> FileLock {
        let fd = try open(path)
        while flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            if errno == EINTR { continue }
            let e = errno
            close(fd)
            throw ImagesError.system("lock \(path)", errno: e)
        }
        return FileLock(fd: fd)
    }
}

extension ImagesError {
    init(wrapping e: LinuxError) {
        let code: Code
        switch e.code {
        case .notFound: code = .notFound
        case .alreadyExists: code = .conflict
        case .invalidArgument: code = .invalidArgument
        case .permissionDenied, .unsupported, .system: code = .system
        }
        self.init(code, e.message)
    }
}
