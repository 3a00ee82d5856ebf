import CEngine
import CLinux
import Foundation
import Glibc
import Images

/// Host-side plumbing for a container: its rootfs mount, its network namespace, the files it bind-mounts.
enum Host {
    static func isMountpoint(_ path: String) -> Bool {
        var a = stat(), b = stat()
        guard stat(path, &a) == 0, stat(path + "/..", &b) == 0 else { return false }
        if a.st_dev != b.st_dev { return true }
        // Same device (bind of the same fs): look in mountinfo.
        guard let info = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
        return info.split(separator: "\n").contains { $0.split(separator: " ").dropFirst(4).first.map(String.init) == path }
    }

    static func mountRootfs(_ mounts: [Images.Mount], at target: String) throws(EngineError) {
        if isMountpoint(target) { return }
        guard let m = mounts.first else { throw EngineError(.system, "no rootfs mount for \(target)") }
        if m.type == "bind" {
            guard mount(m.source, target, nil, UInt(MS_BIND | MS_REC), nil) == 0 else {
                throw EngineError.system("bind-mount \(m.source) on \(target)")
            }
            if m.options.contains("ro") {
                mount(nil, target, nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY), nil)
            }
        } else {
            let data = m.options.joined(separator: ",")
            guard mount(m.source, target, m.type, 0, data) == 0 else {
                throw EngineError.system("mount the rootfs (\(m.type)) on \(target)")
            }
        }
    }

    static func unmount(_ target: String) {
        while umount2(target, Int32(MNT_DETACH)) == 0 {}
    }

    /// A network namespace with only loopback, up; bind-mounted at `path`. Done on a thread of its own that
    /// ends afterwards, so no pooled thread is left in the new namespace.
    static func makeNetns(at path: String) throws(EngineError) {
        let fd = open(path, O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, 0o444)
        if fd < 0 && errno != EEXIST { throw EngineError.system("create \(path)") }
        if fd >= 0 { close(fd) }
        let result = NetnsThread(path: path)
        let t = Thread { result.run() }
        t.start()
        result.done.wait()
        if let e = result.error { unlink(path); throw e }
    }

    static func removeNetns(at path: String) {
        umount2(path, Int32(MNT_DETACH))
        unlink(path)
    }

    final class NetnsThread: @unchecked Sendable {
        let path: String
        var error: EngineError?
        let done = DispatchSemaphore(value: 0)
        init(path: String) { self.path = path }
        func run() {
            defer { done.signal() }
            guard be_unshare_net() == 0 else { error = .system("unshare(CLONE_NEWNET)"); return }
            guard mount("/proc/thread-self/ns/net", path, nil, UInt(MS_BIND), nil) == 0 else {
                error = .system("bind the network namespace to \(path)"); return
            }
            guard be_loopback_up() == 0 else { error = .system("bring loopback up"); return }
        }
    }

    /// Temp name + rename; `durable` adds the fsync (files rebuilt at every start need none).
    static func writeFile(_ path: String, _ text: String, durable: Bool = true) throws(EngineError) {
        let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EngineError.system("create \(tmp)") }
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { let e = errno; close(fd); unlink(tmp); throw EngineError.system("write \(tmp)", errno: e) }
            off += n
        }
        guard !durable || fsync(fd) == 0, close(fd) == 0 else { unlink(tmp); throw EngineError.system("write \(tmp)") }
        guard rename(tmp, path) == 0 else { let e = errno; unlink(tmp); throw EngineError.system("rename \(tmp)", errno: e) }
    }

    static func removeTree(_ path: String) {
        _ = try? FileManager.default.removeItem(atPath: path)
    }
}
