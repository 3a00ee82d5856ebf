// Syscall wrappers: errno read right after the call, EINTR retried, fds owned and CLOEXEC.
#if canImport(Glibc)
import Glibc
#endif
import CLinux

@inline(__always)
@discardableResult
public func sys<T: FixedWidthInteger & SignedInteger>(_ op: @autoclosure () -> String, _ call: () -> T) throws(LinuxError) -> T {
    while true {
        let r = call()
        if r >= 0 { return r }
        let e = errno
        if e != EINTR { throw LinuxError.sys(op(), errno: e) }
    }
}

/// An fd with one owner; closed when the owner goes away.
public struct OwnedFD: ~Copyable {
    public let raw: Int32
    public init(taking raw: Int32) { self.raw = raw }
    deinit { _ = close(raw) }
    public consuming func release() -> Int32 {
        let r = raw
        discard self
        return r
    }

    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(LinuxError) -> OwnedFD {
        OwnedFD(taking: try sys("open \(path)") { Glibc.open(path, flags | O_CLOEXEC, mode) })
    }

    public static func open(in dir: borrowing OwnedFD, _ path: String, _ flags: Int32, mode: mode_t = 0) throws(LinuxError) -> OwnedFD {
        OwnedFD(taking: try sys("open \(path)") { openat(dir.raw, path, flags | O_CLOEXEC, mode) })
    }

    public func writeAll(_ bytes: [UInt8]) throws(LinuxError) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { p in Glibc.write(raw, p.baseAddress! + off, p.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LinuxError.sys("write", errno: errno)
            }
            off += n
        }
    }

    public func readAll(limit: Int = 64 << 20) throws(LinuxError) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { p in Glibc.read(raw, p.baseAddress!, p.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LinuxError.sys("read", errno: errno)
            }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
            if out.count > limit { throw LinuxError(.invalidArgument, "read: more than \(limit) bytes") }
        }
        return out
    }

    public func fsync() throws(LinuxError) { try sys("fsync") { Glibc.fsync(raw) } }
}

public enum FS {
    public static func readFile(_ path: String, limit: Int = 64 << 20) throws(LinuxError) -> [UInt8] {
        let fd = try OwnedFD.open(path, O_RDONLY)
        do { return try fd.readAll(limit: limit) } catch { throw LinuxError(error.code, "read \(path): \(error.message)", errno: error.errno) }
    }

    public static func readString(_ path: String) throws(LinuxError) -> String {
        String(decoding: try readFile(path), as: UTF8.self)
    }

    /// Writes to an existing file (cgroup, proc files): one write call, the kernel's answer kept.
    public static func writeFile(_ path: String, _ text: String) throws(LinuxError) {
        let fd = try OwnedFD.open(path, O_WRONLY)
        var bytes = Array(text.utf8)
        let n = bytes.withUnsafeMutableBytes { p in Glibc.write(fd.raw, p.baseAddress, p.count) }
        if n < 0 { throw LinuxError.sys("write \(path) (\"\(text)\")", errno: errno) }
        if n != bytes.count { throw LinuxError(.system, "write \(path): short write") }
        bytes.removeAll()
    }

    /// Temp file in the same directory (O_EXCL), write, fsync, rename, fsync the directory.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(LinuxError) {
        let (dir, name) = split(path)
        let tmp = "\(dir)/.\(name).\(String(UInt64.random(in: .min ... .max), radix: 16))"
        do {
            let fd = try OwnedFD.open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
            try fd.writeAll(bytes)
            try fd.fsync()
            try sys("rename \(tmp)") { rename(tmp, path) }
        } catch {
            _ = unlink(tmp)
            throw error
        }
        fsyncDirectory(dir)
    }

    /// fsync of a directory, so that a rename or link in it survives a crash. Best effort: a directory that
    /// cannot be opened has nothing of ours to flush.
    public static func fsyncDirectory(_ path: String) {
        if let d = try? OwnedFD.open(path, O_RDONLY | O_DIRECTORY) { _ = Glibc.fsync(d.raw) }
    }

    public static func split(_ path: String) -> (dir: String, name: String) {
        guard let i = path.lastIndex(of: "/") else { return (".", path) }
        let dir = path[..<i]
        return (dir.isEmpty ? "/" : String(dir), String(path[path.index(after: i)...]))
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p; returns the directories it created, outermost first.
    @discardableResult
    public static func mkdirAll(_ path: String, mode: mode_t = 0o755) throws(LinuxError) -> [String] {
        var created: [String] = []
        var cur = ""
        for comp in path.split(separator: "/", omittingEmptySubsequences: true) {
            cur += "/" + comp
            if mkdir(cur, mode) == 0 { created.append(cur); continue }
            let e = errno
            if e == EEXIST { continue }
            throw LinuxError.sys("mkdir \(cur)", errno: e)
        }
        return created
    }

    /// rm -rf without following symlinks out of the tree.
    public static func removeTree(_ path: String) throws(LinuxError) {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT { return }
            throw LinuxError.sys("stat \(path)", errno: errno)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 && errno != ENOENT { throw LinuxError.sys("rmdir \(path)", errno: errno) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw LinuxError.sys("unlink \(path)", errno: errno)
        }
    }

    public static func list(_ path: String) throws(LinuxError) -> [String] {
        guard let d = opendir(path) else { throw LinuxError.sys("open directory \(path)", errno: errno) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public static func readlink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4097)
        let n = Glibc.readlink(path, &buf, 4096)
        if n < 0 { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func realpath(_ path: String) throws(LinuxError) -> String {
        guard let p = Glibc.realpath(path, nil) else { throw LinuxError.sys("resolve \(path)", errno: errno) }
        defer { free(p) }
        return String(cString: p)
    }
}

extension String {
    /// The NUL-terminated text in a C buffer (the whole buffer when it has no NUL).
    public init(cBuffer buf: [CChar]) {
        self = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
