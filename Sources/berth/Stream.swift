// Attached streams: the hijacked socket pumped against the local stdio in one poll loop, Docker's stream
// multiplexing, the terminal in raw mode, detach keys, and signals (SIGWINCH → resize, others proxied).
import Glibc

// MARK: - Signals through a self-pipe

enum Signals {
    nonisolated(unsafe) static var pipeWrite: Int32 = -1
    nonisolated(unsafe) static var pipeRead: Int32 = -1

    /// Installs handlers that write the signal number to a pipe; `pipeRead` is polled.
    static func install(_ signals: [Int32]) {
        if pipeRead < 0 {
            var fds: [Int32] = [0, 0]
            pipe(&fds)
            for fd in fds {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
            pipeRead = fds[0]
            pipeWrite = fds[1]
        }
        for s in signals {
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { sig in
                var b = UInt8(truncatingIfNeeded: sig)
                _ = write(Signals.pipeWrite, &b, 1)
            }
            sigemptyset(&sa.sa_mask)
            sa.sa_flags = SA_RESTART
            sigaction(s, &sa, nil)
        }
    }

    static func reset(_ signals: [Int32]) {
        for s in signals { signal(s, SIG_DFL) }
    }

    /// Signals delivered since the last call.
    static func drain() -> [Int32] {
        var out: [Int32] = []
        var buf = [UInt8](repeating: 0, count: 64)
        while true {
            let n = read(pipeRead, &buf, buf.count)
            if n <= 0 { break }
            out += buf[0..<n].map { Int32($0) }
        }
        return out
    }

    /// Docker's sig-proxy forwards everything but these.
    static let proxied: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGTSTP]

    static func name(_ s: Int32) -> String {
        switch s {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGHUP: return "SIGHUP"
        case SIGQUIT: return "SIGQUIT"
        case SIGUSR1: return "SIGUSR1"
        case SIGUSR2: return "SIGUSR2"
        case SIGALRM: return "SIGALRM"
        case SIGCONT: return "SIGCONT"
        case SIGTSTP: return "SIGTSTP"
        case SIGKILL: return "SIGKILL"
        default: return String(s)
        }
    }
}

// MARK: - Terminal

final class RawTerminal {
    private var saved = termios()
    private var active = false
    let fd: Int32

    init(fd: Int32) { self.fd = fd }

    func makeRaw() {
        guard isatty(fd) == 1, tcgetattr(fd, &saved) == 0 else { return }
        var raw = saved
        cfmakeraw(&raw)
        // as moby/term's MakeRaw (OPOST off too: the container's own tty already turned \n into \r\n)
        if tcsetattr(fd, TCSANOW, &raw) == 0 { active = true }
    }

    func restore() {
        guard active else { return }
        tcsetattr(fd, TCSANOW, &saved)
        active = false
    }

    deinit { restore() }

    /// rows, columns of the terminal on `fd`; nil when it isn't one.
    static func size(_ fd: Int32 = 1) -> (Int, Int)? {
        var ws = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_row > 0 || ws.ws_col > 0 else { return nil }
        return (Int(ws.ws_row), Int(ws.ws_col))
    }
}

// MARK: - Detach keys

/// Docker's --detach-keys syntax: "ctrl-p,ctrl-q", "ctrl-@", "a", …
func parseDetachKeys(_ s: String) throws -> [UInt8] {
    var out: [UInt8] = []
    for part in s.split(separator: ",", omittingEmptySubsequences: false) {
        let p = String(part)
        if p.count == 1, let a = p.unicodeScalars.first, a.isASCII {
            out.append(UInt8(a.value))
            continue
        }
        guard p.hasPrefix("ctrl-"), p.count == 6, let c = p.unicodeScalars.last, c.isASCII else {
            throw CLIError("Invalid detach keys (\(s)) provided")
        }
        let v = UInt8(c.value)
        switch v {
        case UInt8(ascii: "a")...UInt8(ascii: "z"): out.append(v - UInt8(ascii: "a") + 1)
        case UInt8(ascii: "@"): out.append(0)
        case UInt8(ascii: "["): out.append(27)
        case UInt8(ascii: "\\"): out.append(28)
        case UInt8(ascii: "]"): out.append(29)
        case UInt8(ascii: "^"): out.append(30)
        case UInt8(ascii: "_"): out.append(31)
        default: throw CLIError("Invalid detach keys (\(s)) provided")
        }
    }
    return out
}

// MARK: - Multiplexed stream (stdcopy)

struct Demux {
    private var buf: [UInt8] = []
    var systemError: String?

    /// Writes complete frames to stdout/stderr.
    mutating func feed(_ bytes: ArraySlice<UInt8>) {
        buf.append(contentsOf: bytes)
        var off = 0
        while buf.count - off >= 8 {
            let type = buf[off]
            let len = Int(buf[off + 4]) << 24 | Int(buf[off + 5]) << 16 | Int(buf[off + 6]) << 8 | Int(buf[off + 7])
            guard buf.count - off - 8 >= len else { break }
            let payload = buf[(off + 8)..<(off + 8 + len)]
            switch type {
            case 0, 1: writeAllFD(1, payload)
            case 2: writeAllFD(2, payload)
            case 3: systemError = (systemError ?? "") + String(decoding: payload, as: UTF8.self)
            default: break
            }
            off += 8 + len
        }
        if off > 0 { buf.removeFirst(off) }
    }
}

// MARK: - The pump

struct PumpOptions {
    var stdin = false
    var tty = false
    var multiplexed = false
    var detachKeys: [UInt8] = [16, 17]
    var onResize: (() -> Void)?
    var onSignal: ((Int32) -> Void)?
}

enum PumpEnd { case eof, detached }

/// Copies stdin up and the container's output down until the daemon closes the stream (or detach keys).
func pump(_ s: Socket, initial: ArraySlice<UInt8>, _ o: PumpOptions) throws -> PumpEnd {
    var demux = Demux()
    func deliver(_ b: ArraySlice<UInt8>) {
        if b.isEmpty { return }
        if o.multiplexed { demux.feed(b) } else { writeAllFD(1, b) }
    }
    deliver(initial)
    // what the socket already buffered beyond the head
    if s.hasBuffered { deliver(s.takeBuffered()) }
    var stdinOpen = o.stdin
    var match = 0
    var held: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 32768)
    defer { if let e = demux.systemError { writeErr(e) } }
    while true {
        var fds: [pollfd] = [pollfd(fd: s.fd, events: Int16(POLLIN), revents: 0)]
        if stdinOpen { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
        if Signals.pipeRead >= 0 { fds.append(pollfd(fd: Signals.pipeRead, events: Int16(POLLIN), revents: 0)) }
        let r = poll(&fds, nfds_t(fds.count), -1)
        if r < 0 {
            if errno == EINTR { continue }
            throw CLIError("poll: \(errnoText())")
        }
        for p in fds where p.revents != 0 {
            if p.fd == s.fd {
                let n = buf.withUnsafeMutableBytes { recv(s.fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return .eof }
                deliver(buf[0..<n])
            } else if p.fd == 0 {
                let n = read(0, &buf, buf.count)
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if n <= 0 {
                    stdinOpen = false
                    if !held.isEmpty { try s.writeAll(held); held = [] }
                    s.shutdownWrite()
                    continue
                }
                if o.tty && !o.detachKeys.isEmpty {
                    var outBytes: [UInt8] = []
                    for b in buf[0..<n] {
                        if b == o.detachKeys[match] {
                            held.append(b)
                            match += 1
                            if match == o.detachKeys.count { return .detached }
                        } else {
                            outBytes += held
                            held = []
                            match = 0
                            if b == o.detachKeys[0] { held.append(b); match = 1; if match == o.detachKeys.count { return .detached } } else { outBytes.append(b) }
                        }
                    }
                    if !outBytes.isEmpty { try s.writeAll(outBytes) }
                } else {
                    try buf.withUnsafeBytes { try s.writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                }
            } else {
                for sig in Signals.drain() {
                    if sig == SIGWINCH { o.onResize?() } else { o.onSignal?(sig) }
                }
            }
        }
    }
}
