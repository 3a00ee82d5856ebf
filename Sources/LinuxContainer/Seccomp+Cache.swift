// A cache of generated seccomp programs, keyed by the profile's JSON text (plus libseccomp's version
// and the kernel's flags), under the runtime's root. A poisoned cache would be a bypassed filter, so a
// file is used only when it is ours, not group/other-writable, and its stored key equals ours byte for
// byte (the file name is only a hash).
#if canImport(Glibc)
import Glibc
#endif
import CLinux
import OCI

extension Seccomp {
    /// Set by the runtime (`<root>/seccomp-cache`); nil disables the cache.
    nonisolated(unsafe) public static var cacheDirectory: String?

    static let magic: [UInt8] = Array("BSC1".utf8)

    static func cacheKey(_ json: JSON) -> [UInt8] {
        Array((json.serialized() + "\n" + libseccompVersion + "\n" + supportedFlags.joined(separator: ",")).utf8)
    }

    static func fileName(_ key: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    static func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }

    static func cachedProgram(_ key: [UInt8]) -> (bpf: UnsafeRawPointer, count: Int, flags: UInt32, notify: Bool)? {
        guard let dir = cacheDirectory else { return nil }
        let fd = open(dir + "/" + fileName(key), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { return nil }
        let owned = OwnedFD(taking: fd)
        var st = stat()
        guard fstat(owned.raw, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == geteuid(),
              st.st_mode & 0o022 == 0, st.st_size < 1 << 20 else { return nil }
        guard let b = try? owned.readAll(limit: 1 << 20), b.count >= 20, Array(b[0..<4]) == magic else { return nil }
        let keyLen = Int(u32(b, 4)), flags = u32(b, 8), notify = u32(b, 12), bpfLen = Int(u32(b, 16))
        guard b.count == 20 + keyLen + bpfLen, bpfLen > 0, bpfLen % 8 == 0, Array(b[20..<(20 + keyLen)]) == key else { return nil }
        let p = UnsafeMutableRawPointer.allocate(byteCount: bpfLen, alignment: 8)
        b[(20 + keyLen)...].withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: bpfLen) }
        return (UnsafeRawPointer(p), bpfLen, flags, notify != 0)
    }

    /// Best effort: a cache that cannot be written only costs time.
    static func storeProgram(_ key: [UInt8], _ f: UnsafeMutablePointer<bl_seccomp>) {
        guard let dir = cacheDirectory, let bpf = f.pointee.bpf, f.pointee.bpf_len > 0 else { return }
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { return }
        var st = stat()
        guard lstat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == geteuid(), st.st_mode & 0o022 == 0 else { return }
        var out = magic + le(UInt32(key.count)) + le(f.pointee.load_flags) + le(UInt32(f.pointee.notify)) + le(UInt32(f.pointee.bpf_len))
        out += key
        out += Array(UnsafeRawBufferPointer(start: bpf, count: f.pointee.bpf_len))
        try? FS.writeAtomically(out, to: dir + "/" + fileName(key), mode: 0o600)
    }
}
