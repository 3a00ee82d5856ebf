// The shim's one poll(2) loop (docs/shim.md): the runtime runs, the container's stdio and logs, the
// control socket, reaping. Single-threaded; every fd non-blocking and close-on-exec.
#if canImport(Glibc)
import Glibc
#endif
import CLinux

private let POLLIN_ = Int16(POLLIN)
private let POLLOUT_ = Int16(POLLOUT)
private let POLLHUP_ = Int16(POLLHUP)
private let POLLERR_ = Int16(POLLERR)
private let POLLNVAL_ = Int16(POLLNVAL)

private let clientCap = 4 * 1024 * 1024
private let stdinHighWater = 1024 * 1024
private let drainNanos: Int64 = 2_000_000_000
private let maxRequest = 64 * 1024

final class Shim {
    enum Phase: Equatable {
        case creating
        case created
        case running
        case exited(code: Int32, nanos: Int64)
    }

    private enum Source {
        case signals
        case listener
        case conn(Conn)
        case output(Stdio, UInt8)
        case stdin(Stdio)
        case callErr(Call)
        case consoleListen(Call)
        case consoleConn(Call)
    }

    let opts: Options
    private var readyFD: Int32
    private var phase = Phase.creating
    private var sigFD: Int32 = -1
    private var listenFD: Int32 = -1
    private let sockPath: String
    private let initStdio: Stdio
    private var execs: [String: Stdio] = [:]
    private var conns: [Conn] = []
    private var calls: [Call] = []
    private var waiters: [Conn] = []
    private var orphans: [(pid: pid_t, code: Int32)] = []
    private var log: JSONLog?
    private var deleteStarted = false
    private var deleteDone = false
    private var deleteStartedAt: Int64 = 0
    private let buf: UnsafeMutableRawBufferPointer
    private let runtimePath: String
    /// when the loop has been idle this long, the shim gives back pages it does not need (bl_shim_trim)
    private static let trimAfterNanos: Int64 = 3_000_000_000
    private var trimAt: Int64 = 0

    init(opts: Options, runtimePath: String) {
        self.opts = opts
        self.runtimePath = runtimePath
        readyFD = opts.readyFD
        sockPath = opts.state + "/shim.sock"
        initStdio = Stdio(execID: nil, tty: opts.tty)
        buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 32 * 1024, alignment: 16)
    }

    // MARK: - Start-up

    func run() -> Never {
        do throws(ShimError) {
            try setUp()
        } catch {
            fail(error.message, deleteContainer: false)
        }
        while true {
            progress()
            loopOnce()
        }
    }

    private func setUp() throws(ShimError) {
        sigFD = bl_shim_signalfd()
        if sigFD < 0 { throw ShimError("signalfd: \(errnoText())") }
        if bl_set_subreaper() != 0 { throw ShimError("PR_SET_CHILD_SUBREAPER: \(errnoText())") }
        var st = stat()
        guard stat(opts.state, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw ShimError("state directory \(opts.state): \(errnoText())")
        }
        // a new run of the container: the last run's files go
        for f in ["exit", "init.pid", "console.sock"] { unlink(opts.state + "/" + f) }
        guard writeFileAtomically(dir: opts.state, name: "shim.pid", "\(getpid())\n") else {
            throw ShimError("write \(opts.state)/shim.pid: \(errnoText())")
        }
        listenFD = bl_shim_listen(sockPath)
        if listenFD < 0 { throw ShimError("listen \(sockPath): \(errnoText())") }
        if let path = opts.log {
            log = try JSONLog(path: path, maxSize: opts.logMaxSize, maxFiles: opts.logMaxFiles)
        }
        let call = Call(.create)
        var args = ["--root", opts.runtimeRoot, "create", "--bundle", opts.bundle, "--pid-file", opts.state + "/init.pid"]
        let stdio = try prepareStdio(initStdio, call: call, stdin: opts.stdin, consolePath: opts.state + "/console.sock")
        if let p = call.consolePath { args += ["--console-socket", p] }
        args.append(opts.id)
        try spawn(call, args, stdio)
        initStdio.call = call
        call.stdio = initStdio
    }

    /// Pipes (or the console socket) for a process the runtime is about to make; returns the runtime's stdio.
    private func prepareStdio(_ s: Stdio, call: Call, stdin: Bool, consolePath: String) throws(ShimError) -> (Int32, Int32, Int32) {
        func pipe() throws(ShimError) -> (r: Int32, w: Int32) {
            var fds: [Int32] = [-1, -1]
            if bl_shim_pipe(&fds) != 0 { throw ShimError("pipe: \(errnoText())") }
            return (fds[0], fds[1])
        }
        if s.tty {
            unlink(consolePath)
            call.consoleListen = bl_shim_listen(consolePath)
            if call.consoleListen < 0 { throw ShimError("listen \(consolePath): \(errnoText())") }
            call.consolePath = consolePath
            let e = try pipe()
            bl_shim_nonblock(e.r)
            call.errFD = e.r
            return (-1, -1, e.w)
        }
        var inR: Int32 = -1
        if stdin {
            let p = try pipe()
            inR = p.r
            s.stdinFD = p.w
            bl_shim_nonblock(p.w)
        }
        let o = try pipe()
        let e = try pipe()
        s.outFD = o.r
        s.errFD = e.r
        bl_shim_nonblock(o.r)
        bl_shim_nonblock(e.r)
        return (inR, o.w, e.w)
    }

    /// Starts `RUNTIME ARGS...` with the given stdio (-1: /dev/null); the child's ends are closed here.
    private func spawn(_ call: Call, _ args: [String], _ stdio: (Int32, Int32, Int32)) throws(ShimError) {
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        var fds = [stdio.0, stdio.1, stdio.2]
        defer {
            for fd in fds where fd >= 0 && fd != null { close(fd) }
            if null >= 0 { close(null) }
        }
        let argv = [runtimePath] + args
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        let pid = bl_shim_spawn(runtimePath, &cargs, fds[0] >= 0 ? fds[0] : null, fds[1] >= 0 ? fds[1] : null,
                                fds[2] >= 0 ? fds[2] : null)
        if pid < 0 { throw ShimError("run \(runtimePath): \(errnoText())") }
        call.pid = pid
        calls.append(call)
        fds = fds.map { $0 }
    }

    /// A runtime run of our own (start, delete): its stderr captured.
    private func spawnSimple(_ call: Call, _ args: [String]) throws(ShimError) {
        var fds: [Int32] = [-1, -1]
        if bl_shim_pipe(&fds) != 0 { throw ShimError("pipe: \(errnoText())") }
        bl_shim_nonblock(fds[0])
        call.errFD = fds[0]
        do {
            try spawn(call, ["--root", opts.runtimeRoot] + args, (-1, -1, fds[1]))
        } catch {
            closeFD(&call.errFD)
            throw error
        }
    }

    private func writeReady(_ line: String) {
        guard readyFD >= 0 else { return }
        writeAll(readyFD, line + "\n")
        close(readyFD)
        readyFD = -1
    }

    /// Create failed: say so on the ready fd, leave nothing behind, exit 1.
    private func fail(_ message: String, deleteContainer: Bool) -> Never {
        writeReady("error " + message.split(separator: "\n").joined(separator: " "))
        if deleteContainer {
            let call = Call(.delete)
            if (try? spawnSimple(call, ["delete", "--force", opts.id])) != nil {
                var st: Int32 = 0
                while waitpid(call.pid, &st, 0) < 0 && errno == EINTR {}
            }
        }
        for c in calls where c.kind != .delete && c.pid > 0 {
            kill(c.pid, SIGKILL)
            var st: Int32 = 0
            while waitpid(c.pid, &st, 0) < 0 && errno == EINTR {}
        }
        if listenFD >= 0 { unlink(sockPath) }
        if let p = initStdio.call?.consolePath { unlink(p) }
        unlink(opts.state + "/shim.pid")
        exit(1)
    }

    // MARK: - The loop

    private func loopOnce() {
        var fds: [pollfd] = []
        var srcs: [Source] = []
        fds.reserveCapacity(16)
        func add(_ fd: Int32, _ ev: Int16, _ s: Source) {
            fds.append(pollfd(fd: fd, events: ev, revents: 0))
            srcs.append(s)
        }
        add(sigFD, POLLIN_, .signals)
        if phase != .creating && listenFD >= 0 { add(listenFD, POLLIN_, .listener) }
        for c in conns where !c.closed {
            var ev: Int16 = 0
            if !c.readEOF && wantsInput(c) { ev |= POLLIN_ }
            if !c.out.isEmpty { ev |= POLLOUT_ }
            add(c.fd, ev, .conn(c))
        }
        for s in [initStdio] + Array(execs.values) {
            if s.outFD >= 0 { add(s.outFD, POLLIN_, .output(s, 1)) }
            if s.errFD >= 0 { add(s.errFD, POLLIN_, .output(s, 2)) }
            if s.stdinFD >= 0 && !s.stdinQueue.isEmpty { add(s.stdinFD, POLLOUT_, .stdin(s)) }
        }
        for call in calls {
            if call.errFD >= 0 { add(call.errFD, POLLIN_, .callErr(call)) }
            if call.consoleListen >= 0 { add(call.consoleListen, POLLIN_, .consoleListen(call)) }
            if call.consoleConn >= 0 { add(call.consoleConn, POLLIN_, .consoleConn(call)) }
        }
        var timeout: Int32 = needsTimer() ? 50 : -1
        if timeout < 0 && trimAt > 0 {
            timeout = Int32(clamping: max(0, (trimAt - monotonicNanos()) / 1_000_000) + 1)
        }
        let n = poll(&fds, nfds_t(fds.count), timeout)
        if n == 0 && trimAt > 0 && monotonicNanos() >= trimAt {
            trimAt = 0
            _ = bl_shim_trim()
        }
        if n <= 0 { return }  // EINTR or the timer
        trimAt = monotonicNanos() + Shim.trimAfterNanos
        for (i, p) in fds.enumerated() where p.revents != 0 {
            handle(srcs[i], p.fd, p.revents)
        }
        conns.removeAll { $0.closed }
    }

    private func handle(_ src: Source, _ fd: Int32, _ rev: Int16) {
        switch src {
        case .signals:
            var pid: Int32 = 0
            while bl_signalfd_read(sigFD, &pid) > 0 {}
            reapAll()
        case .listener:
            for _ in 0..<16 {
                let fd = bl_shim_accept(listenFD)
                if fd < 0 { break }
                conns.append(Conn(fd: fd))
            }
        case .conn(let c):
            guard !c.closed else { return }
            if rev & (POLLIN_ | POLLHUP_ | POLLERR_) != 0 && !c.readEOF && wantsInput(c) { readConn(c) }
            if c.closed { return }
            if rev & POLLOUT_ != 0 { flushConn(c) }
            if c.closed { return }
            if rev & (POLLHUP_ | POLLERR_ | POLLNVAL_) != 0 {
                if !c.readEOF { readConn(c) }  // what it sent before it went away
                if !c.closed { dropConn(c) }
            }
        case .output(let s, let stream):
            guard fd == (stream == 1 ? s.outFD : s.errFD) else { return }
            readOutput(s, stream)
        case .stdin(let s):
            guard fd == s.stdinFD else { return }
            flushStdin(s)
        case .callErr(let call):
            guard fd == call.errFD else { return }
            drainCallErr(call)
        case .consoleListen(let call):
            guard fd == call.consoleListen else { return }
            let c = bl_shim_accept(call.consoleListen)
            if c >= 0 {
                closeFD(&call.consoleConn)
                call.consoleConn = c
                closeFD(&call.consoleListen)
            }
        case .consoleConn(let call):
            guard fd == call.consoleConn else { return }
            receiveMaster(call)
        }
    }

    private func needsTimer() -> Bool {
        if case .exited = phase { return true }
        return execs.values.contains { $0.code != nil }
    }

    // MARK: - Children

    private func reapAll() {
        var code: Int32 = 0
        while true {
            let pid = bl_shim_reap(&code)
            if pid <= 0 { return }
            reaped(pid, code)
        }
    }

    private func reaped(_ pid: pid_t, _ code: Int32) {
        if let i = calls.firstIndex(where: { $0.pid == pid }) {
            let call = calls.remove(at: i)
            finished(call, code)
        } else if pid == initStdio.pid && initStdio.code == nil {
            initExited(code)
        } else if let s = execs.values.first(where: { $0.pid == pid && $0.code == nil }) {
            s.code = code
            s.reapedAt = monotonicNanos()
        } else {
            // not known yet (its pid file is read when the runtime is reaped), or a stray orphan
            orphans.append((pid, code))
            if orphans.count > 64 { orphans.removeFirst() }
        }
    }

    private func takeOrphan(_ pid: pid_t) -> Int32? {
        guard let i = orphans.firstIndex(where: { $0.pid == pid }) else { return nil }
        return orphans.remove(at: i).code
    }

    private func readPid(_ path: String) -> pid_t? {
        guard let text = readSmallFile(path), let pid = pid_t(Substring(text).trimmingCharacters()), pid > 0 else { return nil }
        return pid
    }

    /// A runtime run ended.
    private func finished(_ call: Call, _ status: Int32) {
        drainCallErr(call)
        closeFD(&call.errFD)
        if let s = call.stdio, !s.tty, s.errFD >= 0 { readOutput(s, 2) }  // the runtime's last words
        if call.master < 0 && call.consolePath != nil {
            // it has exited, so the fd is in the socket if it sent one
            if call.consoleConn < 0 && call.consoleListen >= 0 {
                call.consoleConn = bl_shim_accept(call.consoleListen)
            }
            if call.consoleConn >= 0 {
                var p = pollfd(fd: call.consoleConn, events: POLLIN_, revents: 0)
                if poll(&p, 1, 1000) > 0 { receiveMaster(call) }
            }
        }
        closeFD(&call.consoleListen)
        closeFD(&call.consoleConn)
        if let p = call.consolePath { unlink(p) }
        switch call.kind {
        case .create: createFinished(call, status)
        case .start: startFinished(call, status)
        case .exec: execFinished(call, status)
        case .delete: deleteDone = true
        }
    }

    private func receiveMaster(_ call: Call) {
        var name = [CChar](repeating: 0, count: 256)
        let fd = bl_recv_fd(call.consoleConn, &name, name.count)
        closeFD(&call.consoleConn)
        if fd >= 0 {
            bl_shim_nonblock(fd)
            closeFD(&call.master)
            call.master = fd
        }
    }

    private func drainCallErr(_ call: Call) {
        guard call.errFD >= 0 else { return }
        while true {
            let n = read(call.errFD, buf.baseAddress, buf.count)
            if n > 0 {
                call.addErr(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n == 0 || errno != EAGAIN { closeFD(&call.errFD) }
            return
        }
    }

    private func createFinished(_ call: Call, _ status: Int32) {
        let s = initStdio
        s.call = nil
        if status != 0 { fail(call.message(status: status), deleteContainer: false) }
        guard let pid = readPid(opts.state + "/init.pid") else {
            fail("runtime create: no pid in \(opts.state)/init.pid", deleteContainer: true)
        }
        if s.tty {
            guard call.master >= 0 else { fail("runtime create: no pty master on the console socket", deleteContainer: true) }
            s.ttyFD = call.master
            s.outFD = call.master
            if opts.stdin { s.stdinFD = call.master }
            call.master = -1
        }
        s.pid = pid
        phase = .created
        writeReady("ok created \(pid)")
        if let code = takeOrphan(pid) { initExited(code) }
    }

    private func startFinished(_ call: Call, _ status: Int32) {
        guard let c = call.conn else { return }
        if status == 0 {
            if phase == .created { phase = .running }
            reply(c, "ok")
        } else {
            reply(c, "error " + call.message(status: status))
        }
    }

    private func execFinished(_ call: Call, _ status: Int32) {
        guard let s = call.stdio, let id = s.execID else { return }
        s.call = nil
        let conn = call.conn.flatMap { $0.closed ? nil : $0 }
        func failed(_ msg: String) {
            s.closeAll()
            closeFD(&call.master)
            removeExecFiles(id)
            execs[id] = nil
            if let conn {
                conn.stdio = nil
                reply(conn, "error " + msg)
            }
        }
        if status != 0 { return failed(call.message(status: status)) }
        guard let pid = readPid(opts.state + "/exec-\(id).pid") else {
            return failed("runtime exec: no pid in \(opts.state)/exec-\(id).pid")
        }
        if s.tty {
            guard call.master >= 0 else {
                kill(pid, SIGKILL)
                return failed("runtime exec: no pty master on the console socket")
            }
            s.ttyFD = call.master
            s.outFD = call.master
            if conn?.wantIn == true { s.stdinFD = call.master }
            call.master = -1
            flushStdin(s)
        }
        s.pid = pid
        if let code = takeOrphan(pid) {
            s.code = code
            s.reapedAt = monotonicNanos()
        }
        if let conn {
            conn.mode = .stream
            conn.out.append("ok \(pid)\n")
            if let early = s.early { conn.out.append(early) }
            s.clients = [conn]
            flushConn(conn)
        }
        s.early = nil
    }

    private func initExited(_ code: Int32) {
        let s = initStdio
        s.code = code
        s.reapedAt = monotonicNanos()
        let nanos = unixNanos(realtimeNow())
        phase = .exited(code: code, nanos: nanos)
        _ = writeFileAtomically(dir: opts.state, name: "exit", "\(code) \(nanos)\n")
        for w in waiters where !w.closed { reply(w, "ok exited \(code) \(nanos)") }
        waiters = []
        s.closeStdin()
    }

    /// Deadlines and the way out: exit frames once a process is reaped and drained, delete, then exit.
    private func progress() {
        let now = monotonicNanos()
        for s in Array(execs.values) where s.code != nil && !s.exitSent && s.call == nil {
            if !s.drained && now - s.reapedAt >= drainNanos { endOutput(s, 1); endOutput(s, 2) }
            if s.drained {
                sendExit(s)
                s.closeAll()
                if let id = s.execID {
                    removeExecFiles(id)
                    execs[id] = nil
                }
            }
        }
        guard case .exited = phase else { return }
        let s = initStdio
        if !s.exitSent {
            if !s.drained && now - s.reapedAt >= drainNanos { endOutput(s, 1); endOutput(s, 2) }
            if s.drained { sendExit(s) }
        }
        if !deleteStarted && !calls.contains(where: { $0.kind == .start || $0.kind == .exec }) {
            deleteStarted = true
            deleteStartedAt = now
            let call = Call(.delete)
            if (try? spawnSimple(call, ["delete", "--force", opts.id])) == nil { deleteDone = true }
        }
        if deleteStarted && !deleteDone && now - deleteStartedAt > 30 * drainNanos {
            if let c = calls.first(where: { $0.kind == .delete }) { kill(c.pid, SIGKILL) }
        }
        guard s.exitSent, deleteDone else { return }
        let flushed = !conns.contains { !$0.closed && !$0.out.isEmpty && $0.mode != .request }
        let streamsLeft = execs.values.contains { !$0.exitSent }
        if (flushed && !streamsLeft) || now - s.exitSentAt >= drainNanos {
            shutDown()
        }
    }

    private func shutDown() -> Never {
        for c in conns where !c.closed { dropConn(c) }
        for (id, _) in execs { removeExecFiles(id) }
        unlink(sockPath)
        exit(0)
    }

    private func removeExecFiles(_ id: String) {
        for ext in ["json", "pid", "sock"] { unlink(opts.state + "/exec-\(id).\(ext)") }
    }

    // MARK: - Output

    private func readOutput(_ s: Stdio, _ stream: UInt8) {
        for _ in 0..<8 {
            let fd = stream == 1 ? s.outFD : s.errFD
            guard fd >= 0 else { return }
            let n = read(fd, buf.baseAddress, buf.count)
            if n > 0 {
                output(s, stream, UnsafeRawBufferPointer(rebasing: buf[0..<n]))
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return }
            endOutput(s, stream)  // EOF, or EIO from a pty master whose slave side is gone
            return
        }
    }

    private func endOutput(_ s: Stdio, _ stream: UInt8) {
        if stream == 1 {
            guard s.outFD >= 0 else { return }
            if s.tty { s.outFD = -1 } else { closeFD(&s.outFD) }
        } else {
            guard s.errFD >= 0 else { return }
            closeFD(&s.errFD)
        }
        if s.execID == nil { log?.finish(stream: stream) }
    }

    private func output(_ s: Stdio, _ stream: UInt8, _ data: UnsafeRawBufferPointer) {
        if let call = s.call {
            if call.kind == .create {  // the runtime's own words: the container has not started
                call.addErr(data)
                return
            }
            if stream == 2 { call.addErr(data) }
        }
        if s.execID == nil { log?.feed(stream: stream, data, time: realtimeNow()) }
        guard s.early != nil || !s.clients.isEmpty else { return }
        let frame = Shim.frame(stream, data)
        if s.early != nil {
            if s.early!.count < clientCap { s.early!.append(frame) }
        }
        for c in s.clients where !c.closed && (stream == 1 ? c.wantOut : c.wantErr) {
            send(c, frame)
        }
    }

    static func frame(_ type: UInt8, _ data: UnsafeRawBufferPointer) -> [UInt8] {
        let n = UInt32(data.count)
        var f: [UInt8] = [type, 0, 0, 0, UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
        f.append(contentsOf: data)
        return f
    }

    private func sendExit(_ s: Stdio) {
        s.exitSent = true
        s.exitSentAt = monotonicNanos()
        var payload = "\(s.code ?? -1)"
        let frame = payload.withUTF8 { Shim.frame(3, UnsafeRawBufferPointer($0)) }
        for c in s.clients where !c.closed {
            c.closeAfterFlush = true
            send(c, frame)
        }
    }

    // MARK: - Stdin

    private func flushStdin(_ s: Stdio) {
        guard s.stdinFD >= 0 else { return }
        switch s.stdinQueue.flush(to: s.stdinFD) {
        case .done: if s.closeStdinWhenFlushed { s.closeStdin() }
        case .pending: break
        case .failed: s.closeStdin()
        }
    }

    // MARK: - Connections

    private func wantsInput(_ c: Conn) -> Bool {
        if (c.mode == .stream || c.mode == .pending), c.wantIn, let s = c.stdio {
            return s.stdinQueue.count < stdinHighWater
        }
        return true
    }

    private func readConn(_ c: Conn) {
        for _ in 0..<16 {
            guard !c.closed, !c.readEOF, wantsInput(c) else { return }
            let n = read(c.fd, buf.baseAddress, buf.count)
            if n > 0 {
                received(c, UnsafeRawBufferPointer(rebasing: buf[0..<n]))
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return }
            if n < 0 { return dropConn(c) }
            c.readEOF = true
            inputEnded(c)
            return
        }
    }

    private func received(_ c: Conn, _ data: UnsafeRawBufferPointer) {
        switch c.mode {
        case .request:
            c.inBuf.append(contentsOf: data)
            if let nl = c.inBuf.firstIndex(of: 0x0A) {
                var line = String(decoding: c.inBuf[..<nl], as: UTF8.self)
                if line.hasSuffix("\r") { line.removeLast() }
                let rest = Array(c.inBuf[(nl + 1)...])
                c.inBuf = []
                request(c, line)
                if !rest.isEmpty, !c.closed {
                    rest.withUnsafeBytes { received(c, $0) }
                }
            } else if c.inBuf.count > maxRequest {
                c.inBuf = []
                reply(c, "error request line too long")
            }
        case .stream, .pending:
            guard c.wantIn, let s = c.stdio, s.stdinFD >= 0 || s.call != nil, !s.closeStdinWhenFlushed else { return }
            s.stdinQueue.append(data)
            flushStdin(s)
        case .reply, .waiting:
            break
        }
    }

    /// The client half-closed (or went away).
    private func inputEnded(_ c: Conn) {
        switch c.mode {
        case .request: dropConn(c)
        case .stream, .pending:
            guard c.wantIn, let s = c.stdio else { return }
            if s.execID != nil || opts.stdinOnce {
                s.closeStdinWhenFlushed = true
                if s.stdinFD >= 0 { flushStdin(s) }
            }
        case .reply, .waiting: break
        }
    }

    private func send(_ c: Conn, _ bytes: [UInt8]) {
        guard !c.closed else { return }
        c.out.append(bytes)
        if c.mode == .stream && c.out.count > clientCap { return dropConn(c) }  // too slow: dropped
        flushConn(c)
    }

    private func flushConn(_ c: Conn) {
        guard !c.closed else { return }
        switch c.out.flush(to: c.fd) {
        case .done: if c.closeAfterFlush { dropConn(c) }
        case .pending: break
        case .failed: dropConn(c)
        }
    }

    private func dropConn(_ c: Conn) {
        guard !c.closed else { return }
        c.closed = true
        close(c.fd)
        c.out.removeAll()
        if let s = c.stdio {
            s.clients.removeAll { $0 === c }
            c.stdio = nil
        }
    }

    private func reply(_ c: Conn, _ line: String) {
        c.mode = .reply
        c.closeAfterFlush = true
        send(c, Array((line + "\n").utf8))
    }

    // MARK: - Requests

    private func request(_ c: Conn, _ line: String) {
        let f = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        func flag(_ s: String) -> Bool? { s == "1" ? true : s == "0" ? false : nil }
        switch (f[0], f.count) {
        case ("state", 1):
            switch phase {
            case .creating, .created: reply(c, "ok created \(initStdio.pid)")
            case .running: reply(c, "ok running \(initStdio.pid)")
            case .exited(let code, let nanos): reply(c, "ok exited \(code) \(nanos)")
            }
        case ("start", 1):
            guard phase == .created else {
                return reply(c, "error " + (phase == .running ? "container is already running" : "container has exited"))
            }
            guard !calls.contains(where: { $0.kind == .start }) else { return reply(c, "error start in progress") }
            let call = Call(.start)
            call.conn = c
            do throws(ShimError) {
                try spawnSimple(call, ["start", opts.id])
                c.mode = .pending
            } catch {
                reply(c, "error " + error.message)
            }
        case ("wait", 1):
            if case .exited(let code, let nanos) = phase { return reply(c, "ok exited \(code) \(nanos)") }
            c.mode = .waiting
            waiters.append(c)
        case ("kill", 2):
            guard let sig = Int32(f[1]), sig > 0, sig <= 64 else { return reply(c, "error bad signal \(f[1])") }
            if case .exited = phase { return reply(c, "error container has exited") }
            if kill(initStdio.pid, sig) != 0 { return reply(c, "error kill: \(errnoText())") }
            reply(c, "ok")
        case ("resize", 3):
            guard let rows = UInt16(f[1]), let cols = UInt16(f[2]) else { return reply(c, "error bad size") }
            guard opts.tty else { return reply(c, "error not a tty") }
            guard initStdio.ttyFD >= 0 else { return reply(c, "error the terminal is closed") }
            if bl_set_winsize(initStdio.ttyFD, rows, cols) != 0 { return reply(c, "error resize: \(errnoText())") }
            reply(c, "ok")
        case ("attach", 4):
            guard let i = flag(f[1]), let o = flag(f[2]), let e = flag(f[3]) else { return reply(c, "error bad attach flags") }
            c.wantIn = i
            c.wantOut = o
            c.wantErr = e
            c.mode = .stream
            c.stdio = initStdio
            send(c, Array("ok\n".utf8))
            if initStdio.exitSent {
                var payload = "\(initStdio.code ?? -1)"
                c.closeAfterFlush = true
                send(c, payload.withUTF8 { Shim.frame(3, UnsafeRawBufferPointer($0)) })
            } else if !c.closed {
                initStdio.clients.append(c)
            }
        case ("exec", 5):
            exec(c, id: f[1], tty: flag(f[2]), stdin: flag(f[3]), process: f[4])
        case ("resize-exec", 4):
            guard let rows = UInt16(f[2]), let cols = UInt16(f[3]) else { return reply(c, "error bad size") }
            guard let s = execs[f[1]] else { return reply(c, "error no such exec: \(f[1])") }
            guard s.tty else { return reply(c, "error not a tty") }
            guard s.ttyFD >= 0 else { return reply(c, "error the terminal is not ready") }
            if bl_set_winsize(s.ttyFD, rows, cols) != 0 { return reply(c, "error resize: \(errnoText())") }
            reply(c, "ok")
        default:
            reply(c, "error unknown request: \(f[0])")
        }
    }

    private static func validExecID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64 && id.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E
        } && id != "." && id != ".."
    }

    private func exec(_ c: Conn, id: String, tty: Bool?, stdin: Bool?, process: String) {
        guard let tty, let stdin else { return reply(c, "error bad exec flags") }
        guard Shim.validExecID(id) else { return reply(c, "error bad exec id: \(id)") }
        guard execs[id] == nil else { return reply(c, "error exec \(id) exists") }
        guard phase == .running else {
            return reply(c, "error " + (phase == .created ? "container is not running" : "container has exited"))
        }
        let jsonPath = opts.state + "/exec-\(id).json"
        let pidPath = opts.state + "/exec-\(id).pid"
        unlink(pidPath)
        let fd = open(jsonPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0, writeAll(fd, process) else {
            if fd >= 0 { close(fd) }
            return reply(c, "error write \(jsonPath): \(errnoText())")
        }
        close(fd)
        let s = Stdio(execID: id, tty: tty)
        let call = Call(.exec)
        do throws(ShimError) {
            let stdio = try prepareStdio(s, call: call, stdin: stdin, consolePath: opts.state + "/exec-\(id).sock")
            var args = ["--root", opts.runtimeRoot, "exec", "--detach", "--pid-file", pidPath, "--process", jsonPath]
            if let p = call.consolePath { args += ["--console-socket", p] }
            args.append(opts.id)
            try spawn(call, args, stdio)
        } catch {
            s.closeAll()
            closeFD(&call.errFD)
            closeFD(&call.consoleListen)
            removeExecFiles(id)
            return reply(c, "error " + error.message)
        }
        call.stdio = s
        call.conn = c
        s.call = call
        s.early = ByteQueue()
        execs[id] = s
        c.mode = .pending
        c.stdio = s
        c.wantIn = stdin
        c.wantOut = true
        c.wantErr = true
    }
}
