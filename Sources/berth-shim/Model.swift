// What the shim's loop keeps track of: processes whose stdio it holds, control connections, runtime runs.
#if canImport(Glibc)
import Glibc
#endif

/// The container's init (execID nil) or an exec'd process: its pid, its stdio ends in the shim, its exit.
final class Stdio {
    let execID: String?
    let tty: Bool
    var pid: pid_t = 0
    /// the pty master (tty): output is read from it and stdin written to it
    var ttyFD: Int32 = -1
    /// write end of the process's stdin (the pty master with a tty), -1 when closed or none
    var stdinFD: Int32 = -1
    var outFD: Int32 = -1
    var errFD: Int32 = -1
    var stdinQueue = ByteQueue()
    var closeStdinWhenFlushed = false
    /// exit code (or 128+signal) once reaped
    var code: Int32?
    var reapedAt: Int64 = 0
    var clients: [Conn] = []
    /// exec: frames read before its `ok PID` went out
    var early: ByteQueue?
    var exitSent = false
    var exitSentAt: Int64 = 0
    /// the runtime create/exec that is still making it
    var call: Call?

    init(execID: String?, tty: Bool) {
        self.execID = execID
        self.tty = tty
    }

    var drained: Bool { outFD < 0 && errFD < 0 }

    func closeStdin() {
        if tty { stdinFD = -1 } else { closeFD(&stdinFD) }
        stdinQueue.removeAll()
        closeStdinWhenFlushed = false
    }

    func closeAll() {
        closeStdin()
        if tty { outFD = -1 } else { closeFD(&outFD) }
        closeFD(&errFD)
        closeFD(&ttyFD)
    }
}

/// One connection to shim.sock.
final class Conn {
    enum Mode {
        case request   // reading the request line
        case reply     // a one-line answer is going out, then close
        case waiting   // `wait` before the exit
        case pending   // `start` or `exec` while the runtime runs
        case stream    // attach / exec stream
    }

    let fd: Int32
    var mode = Mode.request
    var inBuf: [UInt8] = []
    var out = ByteQueue()
    var stdio: Stdio?
    var wantIn = false
    var wantOut = false
    var wantErr = false
    var readEOF = false
    var closeAfterFlush = false
    var closed = false

    init(fd: Int32) { self.fd = fd }
}

/// One run of the runtime (create, start, exec, delete) until it is reaped.
final class Call {
    enum Kind { case create, start, exec, delete }
    let kind: Kind
    var pid: pid_t = 0
    /// its own stderr (a pipe), or -1 when its stderr is the process's stderr pipe (create/exec without tty)
    var errFD: Int32 = -1
    var errText: [UInt8] = []
    var conn: Conn?
    var stdio: Stdio?
    var consoleListen: Int32 = -1
    var consoleConn: Int32 = -1
    var consolePath: String?
    var master: Int32 = -1

    init(_ kind: Kind) { self.kind = kind }

    func addErr(_ p: UnsafeRawBufferPointer) {
        errText.append(contentsOf: p)
        if errText.count > 65536 { errText.removeFirst(errText.count - 65536) }
    }

    /// The runtime's last message: the last `level=error` line's msg (runc's logfmt), else its last line.
    func message(status: Int32) -> String {
        let lines = String(decoding: errText, as: UTF8.self).split(separator: "\n").map {
            $0.trimmingCharacters()
        }.filter { !$0.isEmpty }
        guard let line = lines.last(where: { $0.contains("level=error") }) ?? lines.last else {
            return "runtime exited with status \(status)"
        }
        return Call.logfmtMessage(line) ?? line
    }

    /// The value of msg="..." in a logfmt line.
    static func logfmtMessage(_ line: String) -> String? {
        let b = Array(line.utf8)
        let key = Array("msg=\"".utf8)
        guard b.count > key.count else { return nil }
        var i = 0
        while i + key.count <= b.count {
            if Array(b[i..<(i + key.count)]) == key && (i == 0 || b[i - 1] == 0x20) { break }
            i += 1
        }
        guard i + key.count <= b.count else { return nil }
        var out: [UInt8] = []
        var j = i + key.count
        while j < b.count && b[j] != 0x22 {
            if b[j] == 0x5C && j + 1 < b.count {
                j += 1
                out.append(b[j] == UInt8(ascii: "n") ? 0x20 : b[j])
            } else {
                out.append(b[j])
            }
            j += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while let f = s.first, f == " " || f == "\r" || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\r" || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
