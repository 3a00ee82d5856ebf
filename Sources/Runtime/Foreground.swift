// A foreground `run` or `exec`: signals forwarded to the process, a pty proxied to our stdio,
// the exit status returned as runc does (128+N when killed by signal N).
#if canImport(Glibc)
import Glibc
#endif
import CLinux
import LinuxContainer

/// A socketpair whose child end is handed to the init as its console socket; the runtime receives
/// the pty master on the other end.
public struct OwnConsole {
    public let parentEnd: Int32
    public let childEnd: Int32

    public static func make() throws(RuntimeError) -> OwnConsole {
        var fds: [Int32] = [-1, -1]
        if socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) != 0 {
            throw RuntimeError(.system, "socketpair: \(errnoString(errno))")
        }
        return OwnConsole(parentEnd: fds[0], childEnd: fds[1])
    }

    public func receiveMaster() throws(RuntimeError) -> Int32 {
        close(childEnd)
        let fd = bl_recv_fd(parentEnd, nil, 0)
        if fd < 0 { throw RuntimeError(.system, "receive pty master: \(errnoString(errno))") }
        close(parentEnd)
        return fd
    }
}

public enum Foreground {
    /// Blocks every signal now, so none is lost before the wait loop reads them.
    public static func blockSignals() -> Int32 { bl_signalfd_all() }

    /// Waits for our child `pid`; returns its exit code.
    public static func wait(pid: Int32, signalFD sfd: Int32, master: Int32?) -> Int32 {
        var saved: UnsafeMutableRawPointer?
        let ttyIn = master != nil && isatty(0) == 1
        if let m = master {
            if ttyIn {
                _ = bl_make_raw(0, &saved)
                var rows: UInt16 = 0, cols: UInt16 = 0
                if bl_get_winsize(0, &rows, &cols) == 0 { _ = bl_set_winsize(m, rows, cols) }
            }
            _ = m
        }
        defer { if ttyIn { bl_restore_termios(0, saved) } }
        var stdinOpen = master != nil
        var exitCode: Int32? = nil
        var buf = [UInt8](repeating: 0, count: 32768)
        func pump(_ from: Int32, _ to: Int32) -> Bool {
            let n = buf.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if n <= 0 { return n < 0 && (errno == EINTR || errno == EAGAIN) }
            var off = 0
            while off < n {
                let w = buf.withUnsafeBytes { write(to, $0.baseAddress! + off, n - off) }
                if w <= 0 { if errno == EINTR { continue }; return false }
                off += w
            }
            return true
        }
        func reapAll() {
            while true {
                var status: Int32 = 0
                let r = bl_waitpid(-1, &status, WNOHANG)
                if r <= 0 { break }
                if r == pid {
                    exitCode = bl_wifsignaled(status) != 0 ? 128 + bl_wtermsig(status) : bl_wexitstatus(status)
                }
            }
        }
        var masterOpen = master != nil
        while exitCode == nil || masterOpen {
            var fds = [pollfd(fd: sfd, events: Int16(POLLIN), revents: 0)]
            if let m = master, masterOpen { fds.append(pollfd(fd: m, events: Int16(POLLIN), revents: 0)) }
            if master != nil && stdinOpen && exitCode == nil { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            // after the process exited, only drain what the pty still holds
            let timeout: Int32 = exitCode == nil ? -1 : 50
            let r = poll(&fds, nfds_t(fds.count), timeout)
            if r < 0 { if errno == EINTR { continue }; break }
            if r == 0 { break }
            for f in fds where f.revents != 0 {
                if f.fd == sfd {
                    var from: Int32 = 0
                    let sig = bl_signalfd_read(sfd, &from)
                    if sig == SIGCHLD { reapAll() }
                    else if sig == SIGWINCH, let m = master {
                        var rows: UInt16 = 0, cols: UInt16 = 0
                        if bl_get_winsize(0, &rows, &cols) == 0 { _ = bl_set_winsize(m, rows, cols) }
                    } else if sig > 0 && exitCode == nil {
                        _ = kill(pid, sig)
                    }
                } else if let m = master, f.fd == m {
                    if !pump(m, 1) { masterOpen = false }
                } else if f.fd == 0 {
                    if let m = master, !pump(0, m) { stdinOpen = false }
                }
            }
            if exitCode == nil { reapAll() }
        }
        return exitCode ?? 255
    }
}
