// A process is a pid plus its start time (field 22 of /proc/<pid>/stat), never a bare pid.
#if canImport(Glibc)
import Glibc
#endif
import CLinux

public struct ProcessRef: Sendable, Equatable {
    public let pid: Int32
    public let startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// The process as it is now, or nil when there is none with that pid.
    public static func current(_ pid: Int32) -> ProcessRef? {
        guard let s = Stat.read(pid) else { return nil }
        return ProcessRef(pid: pid, startTime: s.startTime)
    }

    public enum Liveness: Sendable { case alive, zombie, gone }

    /// gone when the pid is free or reused by another process
    public var liveness: Liveness {
        guard pid > 0, let s = Stat.read(pid), s.startTime == startTime else { return .gone }
        return s.state == "Z" || s.state == "X" ? .zombie : .alive
    }

    /// A pidfd of this very process, or nil when it has gone (pid reuse checked after opening).
    public func pidfd() -> OwnedFD? {
        let fd = bl_pidfd_open(pid, 0)
        if fd < 0 { return nil }
        let owned = OwnedFD(taking: fd)
        guard let s = Stat.read(pid), s.startTime == startTime else { return nil }
        return owned
    }

    /// Signals through a pidfd so a reused pid is never hit.
    public func signal(_ sig: Int32) throws(LinuxError) {
        guard let fd = pidfd() else { throw LinuxError(.notFound, "signal process \(pid): process already finished", errno: ESRCH) }
        if bl_pidfd_send_signal(fd.raw, sig) < 0 {
            let e = errno
            if e == ESRCH { throw LinuxError(.notFound, "signal process \(pid): process already finished", errno: e) }
            throw LinuxError.sys("signal process \(pid)", errno: e)
        }
    }

    /// Waits until the process has exited (a zombie counts), up to `timeoutMs` (-1: forever).
    public func waitGone(timeoutMs: Int32) -> Bool {
        guard let fd = pidfd() else { return true }
        var pfd = pollfd(fd: fd.raw, events: Int16(POLLIN), revents: 0)
        while true {
            let r = poll(&pfd, 1, timeoutMs)
            if r < 0 && errno == EINTR { continue }
            return r > 0
        }
    }

    struct Stat {
        var state: Character
        var ppid: Int32
        var startTime: UInt64

        static func read(_ pid: Int32) -> Stat? {
            guard let bytes = try? FS.readFile("/proc/\(pid)/stat", limit: 4096) else { return nil }
            guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
            let fields = bytes[(close + 2)...].split(separator: UInt8(ascii: " "))
            // fields[0] is field 3 (state); start time is field 22
            guard fields.count > 19, let st = UInt64(String(decoding: fields[19], as: UTF8.self)),
                  let ppid = Int32(String(decoding: fields[1], as: UTF8.self)) else { return nil }
            return Stat(state: Character(UnicodeScalar(fields[0].first!)), ppid: ppid, startTime: st)
        }
    }
}
