import CEngine
import CLinux
import Foundation
import Glibc
import Images
import OCI

/// `docker cp`: a path of a container's rootfs as a tar stream, and a tar stream extracted into a
/// directory of it. Paths are resolved by the kernel inside the rootfs (openat2 RESOLVE_IN_ROOT); below the
/// named path nothing is followed (O_NOFOLLOW walk), so an image's symlinks cannot lead out.
extension Engine {
    public struct PathStat: Sendable {
        public var name: String
        public var size: Int64
        /// Go's os.FileMode bits, as Docker's X-Docker-Container-Path-Stat carries them.
        public var mode: UInt32
        public var mtime: Date
        public var linkTarget: String
    }

    /// Runs `body` with the container's rootfs mounted (mounting it for the call when it is not running).
    func withRootfs<T: Sendable>(_ ref: String, _ body: @escaping @Sendable (String) throws -> T) async throws(EngineError) -> T {
        let r = try resolve(ref)
        let root = rootfs(r.id)
        let mounts = r.mounts
        let temporary = !r.state.running && !starting.contains(r.id)
        do {
            return try await blocking {
                let mounted = Host.isMountpoint(root)
                if !mounted { try Host.mountRootfs(mounts, at: root) }
                defer { if !mounted && temporary { Host.unmount(root) } }
                return try body(root)
            }
        } catch {
            var e = EngineError.wrap(error)
            if case .notFound = e.code, e.message.hasSuffix(" in container") { e.message += " " + ref }
            throw e
        }
    }

    public func archiveStat(_ ref: String, path: String) async throws(EngineError) -> PathStat {
        try await withRootfs(ref) { root in try ArchiveIO.stat(root: root, path: path) }
    }

    /// Writes the tar of `path` to `out` (an open fd); returns the stat of `path`.
    public func archiveGet(_ ref: String, path: String, to out: Int32) async throws(EngineError) -> PathStat {
        try await withRootfs(ref) { root in try ArchiveIO.write(root: root, path: path, to: out) }
    }

    public func archivePut(_ ref: String, path: String, tarFile: String) async throws(EngineError) {
        try await withRootfs(ref) { root in try ArchiveIO.extract(root: root, path: path, tarFile: tarFile) }
    }
}

enum ArchiveIO {
    static let RESOLVE_IN_ROOT: UInt64 = 0x10, RESOLVE_NO_MAGICLINKS: UInt64 = 0x02

    static func openInRoot(_ root: String, _ path: String, flags: Int32) throws(EngineError) -> Int32 {
        let rfd = be_open_dir_path(root)
        guard rfd >= 0 else { throw EngineError.system("open \(root)") }
        defer { close(rfd) }
        let fd = bl_openat2(rfd, path.isEmpty ? "/" : path, UInt64(flags | O_CLOEXEC), 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw EngineError(.notFound, "Could not find the file \(path) in container") }
            throw EngineError.system("open \(path) in the container")
        }
        return fd
    }

    static func goMode(_ st: stat) -> UInt32 {
        var m = UInt32(st.st_mode) & 0o777
        switch st.st_mode & S_IFMT {
        case S_IFDIR: m |= 1 << 31
        case S_IFLNK: m |= 1 << 27
        case S_IFIFO: m |= 1 << 25
        case S_IFSOCK: m |= 1 << 24
        case S_IFCHR: m |= (1 << 26) | (1 << 21)
        case S_IFBLK: m |= 1 << 26
        default: break
        }
        if st.st_mode & S_ISUID != 0 { m |= 1 << 23 }
        if st.st_mode & S_ISGID != 0 { m |= 1 << 22 }
        if st.st_mode & S_ISVTX != 0 { m |= 1 << 20 }
        return m
    }

    static func baseName(_ path: String) -> String {
        let trimmed = path.split(separator: "/").last.map(String.init) ?? "/"
        return trimmed
    }

    static func stat(root: String, path: String) throws(EngineError) -> Engine.PathStat {
        // The last component is not followed (Docker reports a symlink as such, with its target).
        let fd = try openInRoot(root, path, flags: be_o_path() | O_NOFOLLOW)
        defer { close(fd) }
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw EngineError.system("stat \(path)") }
        var link = ""
        if st.st_mode & S_IFMT == S_IFLNK {
            var buf = [CChar](repeating: 0, count: 4097)
            let n = readlinkat(fd, "", &buf, 4096)
            if n > 0 { link = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        }
        return Engine.PathStat(name: baseName(path), size: Int64(st.st_size), mode: goMode(st),
                               mtime: Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9),
                               linkTarget: link)
    }

    static func write(root: String, path: String, to out: Int32) throws -> Engine.PathStat {
        let st = try stat(root: root, path: path)
        // `cp ctr:/dir/.` copies the directory's contents: Docker names entries relative to it then.
        let contentsOnly = path.hasSuffix("/.")
        let top = try openInRoot(root, path, flags: be_o_path())
        defer { close(top) }
        let w = TarWriter(fd: out)
        var seenInodes: [String: String] = [:]
        try walk(parent: top, name: nil, entryName: contentsOnly ? "" : st.name, w: w, hardlinks: &seenInodes)
        try w.finish()
        return st
    }

    /// Adds `name` below `parent` (or `parent` itself when name is nil) and, for directories, their contents.
    static func walk(parent: Int32, name: String?, entryName: String, w: TarWriter, hardlinks: inout [String: String]) throws {
        var st = Glibc.stat()
        let rc = name.map { fstatat(parent, $0, &st, AT_SYMLINK_NOFOLLOW) } ?? fstatat(parent, "", &st, be_at_empty_path())
        guard rc == 0 else { throw EngineError.system("stat \(entryName)") }
        let mtime = TarTime(seconds: Int64(st.st_mtim.tv_sec), nanoseconds: Int32(st.st_mtim.tv_nsec))
        let mode = UInt32(st.st_mode) & 0o7777
        func entry(_ kind: TarEntry.Kind, link: String = "") -> TarEntry {
            TarEntry(kind, path: entryName, linkTarget: link, mode: mode, uid: Int64(st.st_uid), gid: Int64(st.st_gid),
                     modificationTime: mtime, deviceMajor: UInt32(be_major(UInt64(st.st_rdev))), deviceMinor: UInt32(be_minor(UInt64(st.st_rdev))))
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            let dfd = name.map { openat(parent, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } ?? openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard dfd >= 0 else { throw EngineError.system("open \(entryName)") }
            if !entryName.isEmpty { try w.append(entry(.directory)) }
            guard let dir = fdopendir(fcntl(dfd, F_DUPFD_CLOEXEC, 0)) else { close(dfd); throw EngineError.system("read \(entryName)") }
            var children: [String] = []
            while let e = readdir(dir) {
                let n = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
                if n != "." && n != ".." { children.append(n) }
            }
            closedir(dir)
            defer { close(dfd) }
            for c in children.sorted() {
                try walk(parent: dfd, name: c, entryName: entryName.isEmpty ? c : entryName + "/" + c, w: w, hardlinks: &hardlinks)
            }
        case S_IFREG:
            let key = "\(st.st_dev):\(st.st_ino)"
            if st.st_nlink > 1, let first = hardlinks[key] {
                try w.append(entry(.hardlink, link: first))
                return
            }
            if st.st_nlink > 1 { hardlinks[key] = entryName }
            // The named path itself is an O_PATH fd: reopen it for reading through its /proc link.
            let fd = name.map { openat(parent, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) } ?? open("/proc/self/fd/\(parent)", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw EngineError.system("open \(entryName)") }
            defer { close(fd) }
            var e = entry(.regular)
            e.size = Int64(st.st_size)
            try w.append(e, fd: fd)
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: 4097)
            let n = name.map { readlinkat(parent, $0, &buf, 4096) } ?? readlinkat(parent, "", &buf, 4096)
            let target = n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
            try w.append(entry(.symlink, link: target))
        case S_IFCHR: try w.append(entry(.characterDevice))
        case S_IFBLK: try w.append(entry(.blockDevice))
        case S_IFIFO: try w.append(entry(.fifo))
        default: break // sockets are not archived (as tar does)
        }
    }

    static func extract(root: String, path: String, tarFile: String) throws {
        let dir = try openInRoot(root, path, flags: O_RDONLY | O_DIRECTORY)
        defer { close(dir) }
        let u = try LayerUnpacker(rootFD: dir, compression: .none, mode: .apply)
        let fd = open(tarFile, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EngineError.system("open \(tarFile)") }
        defer { close(fd) }
        do {
            try u.feed(fd: fd)
            _ = try u.finish()
        } catch {
            u.cancel()
            throw EngineError(.invalidArgument, "extract the archive into \(path): \(error)")
        }
    }
}
