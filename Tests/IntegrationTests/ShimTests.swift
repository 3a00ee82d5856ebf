// berth-shim (docs/shim.md) driven as berthd drives it: spawned with a ready fd, then requests on
// STATE/shim.sock, against the runtime under test (BERTH_RUNTIME) and the shim named by BERTH_SHIM.
import Foundation
import Glibc
import Testing

enum ShimEnv {
    /// BERTH_SHIM, or nil (the shim tests are skipped, and say why once).
    static let shim: String? = {
        guard let v = getenv("BERTH_SHIM").map({ String(cString: $0) }), !v.isEmpty else {
            FileHandle.standardError.write(Data("ShimTests: skipped; set BERTH_SHIM to the berth-shim binary (`make test` does)\n".utf8))
            return nil
        }
        return v
    }()
    static var enabled: Bool { shim != nil }
}

/// A connection to shim.sock: the reply line, then (attach/exec) the framed stream.
final class ShimConn {
    let fd: Int32
    private var buf: [UInt8] = []
    private(set) var eof = false

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
            p[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc < 0 {
            let e = errno
            close(fd)
            throw HarnessError("connect \(path): \(String(cString: strerror(e)))")
        }
    }

    deinit { close(fd) }

    func send(_ s: String) { send(Array(s.utf8)) }
    func send(_ b: [UInt8]) {
        var off = 0
        while off < b.count {
            let n = b[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            off += n
        }
    }

    func halfClose() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads more into the buffer; false on timeout or EOF.
    @discardableResult
    private func fill(deadline: Date) -> Bool {
        guard !eof else { return false }
        let ms = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, ms) == 1 else { return false }
        var tmp = [UInt8](repeating: 0, count: 65536)
        let n = Glibc.read(fd, &tmp, tmp.count)
        if n <= 0 {
            eof = true
            return false
        }
        buf += tmp[0..<n]
        return true
    }

    /// The reply line (without its newline), or nil.
    func readLine(timeout: Double = 10) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let nl = buf.firstIndex(of: 0x0A) {
                let line = String(decoding: buf[..<nl], as: UTF8.self)
                buf.removeFirst(nl + 1)
                return line
            }
            if !fill(deadline: deadline) { return nil }
        }
    }

    struct Frame {
        var type: UInt8
        var payload: [UInt8]
        var text: String { String(decoding: payload, as: UTF8.self) }
    }

    private(set) var frames: [Frame] = []

    private func parse() {
        while buf.count >= 8 {
            let n = Int(buf[4]) << 24 | Int(buf[5]) << 16 | Int(buf[6]) << 8 | Int(buf[7])
            guard buf.count >= 8 + n else { return }
            frames.append(Frame(type: buf[0], payload: Array(buf[8..<(8 + n)])))
            buf.removeFirst(8 + n)
        }
    }

    /// Reads frames until `done` holds for what has arrived, EOF, or the timeout. Returns `done`'s verdict.
    @discardableResult
    func read(until done: ([Frame]) -> Bool = { _ in false }, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            parse()
            if done(frames) { return true }
            if !fill(deadline: deadline) {
                parse()
                return done(frames)
            }
        }
    }

    /// stdout (type 1) text so far.
    var stdout: String { String(decoding: frames.filter { $0.type == 1 }.flatMap(\.payload), as: UTF8.self) }
    var stderr: String { String(decoding: frames.filter { $0.type == 2 }.flatMap(\.payload), as: UTF8.self) }
    var exitCode: String? { frames.last(where: { $0.type == 3 })?.text }
}

/// One spawned shim: its ready line, its state dir, and cleanup (the shim is killed if still there).
final class ShimHandle {
    let b: Bundle
    let state: String
    let ready: String
    let spawner: ProcResult
    var sock: String { state + "/shim.sock" }
    var log: String { b.dir + "/ctr.log" }

    init(_ b: Bundle, _ extra: [String], bundlePath: String? = nil) throws {
        self.b = b
        let shim = try #require(ShimEnv.shim)
        state = b.dir + "/state"
        mkdir(state, 0o755)
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw HarnessError("pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        defer { close(fds[0]) }
        let argv = [shim, "--id", b.id, "--bundle", bundlePath ?? b.path, "--state", state, "--runtime", b.runtime,
                    "--runtime-root", b.root, "--ready-fd", "3"] + extra
        let p: Proc
        do {
            p = try Proc(argv, extraFDs: [3: fds[1]], ioDir: b.io)
        } catch {
            close(fds[1])
            throw error
        }
        close(fds[1])
        // the line comes from the grandchild: read until EOF (it closes the fd after the line)
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(15)
        var tmp = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var pf = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            if poll(&pf, 1, 100) <= 0 { continue }
            let n = Glibc.read(fds[0], &tmp, tmp.count)
            if n <= 0 { break }
            out += tmp[0..<n]
        }
        ready = String(decoding: out, as: UTF8.self)
        spawner = p.wait(timeout: 5)
    }

    var pid: pid_t? {
        Host.readFile(state + "/shim.pid").flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// One request, one reply line.
    func request(_ line: String, timeout: Double = 10) throws -> String {
        let c = try ShimConn(path: sock)
        c.send(line + "\n")
        return c.readLine(timeout: timeout) ?? "<no reply>"
    }

    /// A request whose reply is followed by a stream (attach, exec): the connection after the reply line.
    func open(_ line: String) throws -> (reply: String, conn: ShimConn) {
        let c = try ShimConn(path: sock)
        c.send(line + "\n")
        return (c.readLine() ?? "<no reply>", c)
    }

    /// The shims alive whose command line names our state dir.
    func processes() -> [pid_t] {
        Host.pids().filter { Host.isAlive($0) && Host.cmdline($0).contains("--state \(state) ") }
    }

    /// Waits until the shim has exited and removed its socket.
    func waitGone(timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if processes().isEmpty && access(sock, F_OK) != 0 { return true }
            usleep(20_000)
        }
        return false
    }

    func kill() {
        for pid in processes() { Glibc.kill(pid, SIGKILL) }
        let deadline = Date().addingTimeInterval(5)
        while !processes().isEmpty && Date() < deadline { usleep(10_000) }
    }

    func exitFile() -> String? { Host.readFile(state + "/exit") }

    /// The records of the json-file log at `path`.
    static func records(_ path: String) -> [[String: String]] {
        (Host.readFile(path) ?? "").split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: String]
        }
    }
}

/// A bundle running `args` with a shim spawned for it (`extra` flags); the shim is killed at the end,
/// before the bundle's own teardown.
func withShim(args: [String], extra: [String] = [], edit: (inout [String: Any]) throws -> Void = { _ in },
              _ body: (ShimHandle) throws -> Void) throws {
    try withBundle(args: args, edit: edit) { b in
        let h = try ShimHandle(b, extra.map { $0 == "LOG" ? b.dir + "/ctr.log" : $0 })
        defer { h.kill() }
        try #require(h.spawner.ok, "spawner: \(h.spawner)")
        try #require(h.ready.hasPrefix("ok created "), "ready line: \(h.ready)")
        try body(h)
    }
}

func shimExecProcess(_ args: [String], terminal: Bool = false) throws -> String {
    let p: [String: Any] = ["args": args, "cwd": "/", "env": ["PATH=/bin:/usr/bin", "TERM=xterm"],
                            "user": ["uid": 0, "gid": 0], "terminal": terminal]
    return String(decoding: try JSONSerialization.data(withJSONObject: p), as: UTF8.self)
}

extension Integration {
    @Suite(.serialized, .enabled(if: ShimEnv.enabled, "BERTH_SHIM is not set"))
    struct ShimTests {
        @Test func runExitCodeAndExitFile() throws {
            try withShim(args: ["/bin/sh", "-c", "echo hello; echo oops >&2; exit 3"]) { (h: ShimHandle) throws in
                let pid = try #require(Int32(h.ready.dropFirst("ok created ".count).trimmingCharacters(in: .whitespacesAndNewlines)))
                #expect(try h.request("state") == "ok created \(pid)")
                #expect(try h.b.status() == "created")
                #expect(try h.request("resize 10 10") == "error not a tty")
                #expect(try h.request("bogus").hasPrefix("error "))
                let (reply, attach) = try h.open("attach 0 1 1")
                #expect(reply == "ok")
                let waiter = try ShimConn(path: h.sock)
                waiter.send("wait\n")
                #expect(try h.request("start") == "ok")
                attach.read(until: { $0.contains { $0.type == 3 } })
                #expect(attach.stdout == "hello\n")
                #expect(attach.stderr == "oops\n")
                #expect(attach.exitCode == "3")
                #expect(attach.frames.last?.type == 3)
                let w = waiter.readLine() ?? ""
                let f = w.split(separator: " ")
                #expect(f.count == 4 && f[0] == "ok" && f[1] == "exited" && f[2] == "3", "\(w)")
                let exit = try #require(h.exitFile())
                #expect(exit == "3 \(f.count == 4 ? f[3] : "")\n")
                if let nanos = Int64(f.count == 4 ? f[3] : "") {
                    #expect(abs(Double(nanos) / 1e9 - Date().timeIntervalSince1970) < 60)
                }
                #expect(h.waitGone(), "the shim did not exit after the container")
                #expect(try h.b.state() == nil, "runtime delete --force was not run")
                #expect(!FileManager.default.fileExists(atPath: h.state + "/exit.tmp"))
            }
        }

        @Test func logsJSONFile() throws {
            // a 20480-byte line: cut at 16 KiB, the rest in the next record
            let script = "echo out; echo err >&2; s=aaaaaaaaaa; i=0; while [ $i -lt 11 ]; do s=$s$s; i=$((i+1)); done; "
                + "echo $s; printf 'tail \"q\" \\\\ \\t'"
            try withShim(args: ["/bin/sh", "-c", script], extra: ["--log", "LOG"]) { (h: ShimHandle) throws in
                #expect(try h.request("start") == "ok")
                #expect(try h.request("wait").hasPrefix("ok exited 0 "))
                #expect(h.waitGone())
                let recs = ShimHandle.records(h.log)
                // the two streams are separate pipes: only the order within each is given
                let out = recs.filter { $0["stream"] == "stdout" }.map { $0["log"] ?? "" }
                let err = recs.filter { $0["stream"] == "stderr" }.map { $0["log"] ?? "" }
                #expect(recs.count == 5)
                #expect(err == ["err\n"])
                try #require(out.count == 4, "\(out.map { ($0.prefix(20), $0.count) })")
                #expect(out[0] == "out\n")
                #expect(out[1] == String(repeating: "a", count: 16384), "\(out[1].count) bytes")
                #expect(out[2] == String(repeating: "a", count: 20480 - 16384) + "\n", "\(out[2].count) bytes")
                #expect(out[3] == "tail \"q\" \\ \t", "no newline at EOF: as it is")
                let time = try #require(recs[0]["time"])
                #expect(time.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$"#, options: .regularExpression) != nil, "\(time)")
                let f = ISO8601DateFormatter()
                f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                if let d = f.date(from: String(time.prefix(23)) + "Z") {
                    #expect(abs(d.timeIntervalSinceNow) < 60, "\(time)")
                }
            }
        }

        @Test func logRotation() throws {
            let script = "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done"
            try withShim(args: ["/bin/sh", "-c", script],
                         extra: ["--log", "LOG", "--log-max-size", "2000", "--log-max-files", "3"]) { (h: ShimHandle) throws in
                #expect(try h.request("start") == "ok")
                #expect(try h.request("wait").hasPrefix("ok exited 0 "))
                #expect(h.waitGone())
                let fm = FileManager.default
                #expect(fm.fileExists(atPath: h.log + ".1"))
                #expect(fm.fileExists(atPath: h.log + ".2"))
                #expect(!fm.fileExists(atPath: h.log + ".3"), "N=3 counts the current file")
                var all: [String] = []
                for p in [h.log + ".2", h.log + ".1", h.log] {
                    let size = (try? fm.attributesOfItem(atPath: p)[.size] as? Int) ?? 0
                    #expect(size < 2000 + 200, "\(p): \(size) bytes")
                    all += ShimHandle.records(p).map { $0["log"] ?? "" }
                }
                // what is kept is the end of the output, in order, whole
                #expect(all.last == "line299\n")
                let first = Int(all.first?.dropFirst(4).dropLast() ?? "") ?? -1
                #expect(first > 0)
                #expect(all == (max(first, 0)..<300).map { "line\($0)\n" })
            }
        }

        @Test func logOneFileStartsOver() throws {
            let script = "i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); done"
            try withShim(args: ["/bin/sh", "-c", script], extra: ["--log", "LOG", "--log-max-size", "1000"]) { (h: ShimHandle) throws in
                #expect(try h.request("start") == "ok")
                #expect(try h.request("wait").hasPrefix("ok exited 0 "))
                #expect(h.waitGone())
                #expect(!FileManager.default.fileExists(atPath: h.log + ".1"))
                let recs = ShimHandle.records(h.log)
                #expect(recs.last?["log"] == "line99\n")
                #expect(recs.count < 30)
            }
        }

        @Test func stdinThroughAttachWithHalfClose() throws {
            try withShim(args: ["/bin/cat"], extra: ["--stdin", "--stdin-once", "--log", "LOG"]) { (h: ShimHandle) throws in
                let (reply, a) = try h.open("attach 1 1 1")
                #expect(reply == "ok")
                #expect(try h.request("start") == "ok")
                a.send("hello through stdin\n")
                #expect(a.read(until: { _ in a.stdout.contains("hello through stdin\n") }))
                #expect(try h.request("state").hasPrefix("ok running "))
                a.halfClose()  // --stdin-once: cat's stdin closes, cat exits
                a.read(until: { $0.contains { $0.type == 3 } })
                #expect(a.exitCode == "0")
                #expect(a.stdout == "hello through stdin\n")
                #expect(h.waitGone())
                #expect(ShimHandle.records(h.log).first?["log"] == "hello through stdin\n")
            }
        }

        @Test func stdinHalfCloseWithoutStdinOnceKeepsStdinOpen() throws {
            try withShim(args: ["/bin/cat"], extra: ["--stdin"]) { (h: ShimHandle) throws in
                #expect(try h.request("start") == "ok")
                let (r1, a) = try h.open("attach 1 1 1")
                #expect(r1 == "ok")
                a.send("one\n")
                a.halfClose()
                #expect(a.read(until: { _ in a.stdout.contains("one\n") }))
                usleep(200_000)
                #expect(try h.request("state").hasPrefix("ok running "), "stdin closed without --stdin-once")
                let (r2, b) = try h.open("attach 1 1 1")
                #expect(r2 == "ok")
                b.send("two\n")
                #expect(b.read(until: { _ in b.stdout.contains("two\n") }))
                #expect(a.read(until: { _ in a.stdout.contains("two\n") }), "output goes to every client")
                #expect(try h.request("kill 9") == "ok")
                b.read(until: { $0.contains { $0.type == 3 } })
                #expect(b.exitCode == "137")
            }
        }

        @Test func ttyThroughConsoleSocket() throws {
            let script = "read x; echo got $x; /probe tty-size; read y; /probe tty-size; exit 4"
            try withShim(args: ["/bin/sh", "-c", script], extra: ["--tty", "--stdin", "--log", "LOG"],
                         edit: { $0[path: "process.terminal"] = true }) { (h: ShimHandle) throws in
                #expect(try h.request("resize 30 100") == "ok")
                #expect(try h.request("start") == "ok")
                let (reply, a) = try h.open("attach 1 1 1")
                #expect(reply == "ok")
                a.send("hi\n")
                #expect(a.read(until: { _ in a.stdout.contains("30 100") }), "\(a.stdout)")
                #expect(a.stdout.contains("got hi\r\n"))
                #expect(try h.request("resize 40 120") == "ok")
                a.send("again\n")
                #expect(a.read(until: { _ in a.stdout.contains("40 120") }), "\(a.stdout)")
                a.read(until: { $0.contains { $0.type == 3 } })
                #expect(a.exitCode == "4")
                #expect(a.frames.allSatisfy { $0.type == 1 || $0.type == 3 }, "a tty's output is type 1")
                #expect(h.waitGone())
                let recs = ShimHandle.records(h.log)
                #expect(recs.allSatisfy { $0["stream"] == "stdout" })
                #expect(recs.contains { $0["log"] == "40 120\r\n" })
            }
        }

        @Test func execKillAndWait() throws {
            try withShim(args: ["/probe", "sleep", "60"], extra: ["--log", "LOG"]) { (h: ShimHandle) throws in
                let early = try h.request("exec e0 0 0 " + shimExecProcess(["/bin/true"]))
                #expect(early.hasPrefix("error "), "exec before start: \(early)")
                #expect(try h.request("start") == "ok")
                #expect(try h.request("state").hasPrefix("ok running "))
                #expect(try h.b.status() == "running")

                let (r1, e1) = try h.open("exec e1 0 0 " + shimExecProcess(["/bin/sh", "-c", "echo from exec; echo ee >&2; exit 5"]))
                #expect(r1.hasPrefix("ok "), "\(r1)")
                #expect(Int32(r1.dropFirst(3)) ?? 0 > 0)
                e1.read(until: { $0.contains { $0.type == 3 } })
                #expect(e1.stdout == "from exec\n")
                #expect(e1.stderr == "ee\n")
                #expect(e1.exitCode == "5")
                #expect(e1.read(timeout: 2) == false && e1.eof, "closed after the exit frame")

                // exec with stdin: half-close always closes the exec's stdin
                let (r2, e2) = try h.open("exec e2 0 1 " + shimExecProcess(["/bin/cat"]))
                #expect(r2.hasPrefix("ok "), "\(r2)")
                e2.send("exec stdin\n")
                e2.halfClose()
                e2.read(until: { $0.contains { $0.type == 3 } })
                #expect(e2.stdout == "exec stdin\n")
                #expect(e2.exitCode == "0")

                // exec with a tty, resized
                let (r3, e3) = try h.open("exec e3 1 1 " + shimExecProcess(["/bin/sh", "-c", "read x; /probe tty-size"], terminal: true))
                #expect(r3.hasPrefix("ok "), "\(r3)")
                #expect(try h.request("resize-exec e3 12 34") == "ok")
                #expect(try h.request("resize-exec nope 12 34").hasPrefix("error "))
                e3.send("go\n")
                e3.read(until: { $0.contains { $0.type == 3 } })
                #expect(e3.stdout.contains("12 34"), "\(e3.stdout)")
                #expect(e3.exitCode == "0")

                let bad = try h.request("exec e4 0 0 {not json")
                #expect(bad.hasPrefix("error "), "\(bad)")
                #expect(!FileManager.default.fileExists(atPath: h.state + "/exec-e1.json"))

                #expect(!ShimHandle.records(h.log).contains { ($0["log"] ?? "").contains("from exec") }, "exec output is not logged")

                let waiter = try ShimConn(path: h.sock)
                waiter.send("wait\n")
                #expect(try h.request("kill 9") == "ok")
                let w = waiter.readLine() ?? ""
                #expect(w.hasPrefix("ok exited 137 "), "\(w)")
                #expect(try h.request("kill 9").hasPrefix("error ") || !FileManager.default.fileExists(atPath: h.sock))
                #expect(h.exitFile()?.hasPrefix("137 ") == true)
                #expect(h.waitGone())
            }
        }

        @Test func survivesItsSpawner() throws {
            try withShim(args: ["/probe", "sleep", "60"]) { (h: ShimHandle) throws in
                let pid = try #require(h.pid)
                // the spawner has exited (the Proc was reaped) and the shim is in its own session
                #expect(h.spawner.ok)
                #expect(Host.isAlive(pid))
                let status = Host.readFile("/proc/\(pid)/status") ?? ""
                let ppid = status.split(separator: "\n").first { $0.hasPrefix("PPid:") }.map {
                    $0.dropFirst(5).trimmingCharacters(in: .whitespaces)
                }
                #expect(ppid != String(getpid()), "reparented away from the test")
                #expect(getsid(pid) != getsid(0))
                #expect(try h.request("start") == "ok")
                #expect(try h.request("state").hasPrefix("ok running "))
                // init is the shim's child (subreaper)
                let initPid = try #require(Int32(h.ready.dropFirst("ok created ".count).trimmingCharacters(in: .whitespacesAndNewlines)))
                let initStatus = Host.readFile("/proc/\(initPid)/status") ?? ""
                #expect(initStatus.contains("PPid:\t\(pid)\n"), "init's parent is the shim")
                #expect(try h.request("kill 9") == "ok")
                #expect(h.waitGone())
            }
        }

        @Test func slowClientIsDropped() throws {
            // ~8 MiB of output; a client that never reads is dropped, the log is whole, the container never blocks
            let script = "dd if=/dev/zero bs=65536 count=96 2>/dev/null | base64"
            try withShim(args: ["/bin/sh", "-c", script], extra: ["--log", "LOG"]) { (h: ShimHandle) throws in
                let (reply, slow) = try h.open("attach 0 1 1")
                #expect(reply == "ok")
                #expect(try h.request("start") == "ok")
                let c = try ShimConn(path: h.sock)
                c.send("wait\n")
                #expect(c.readLine(timeout: 60)?.hasPrefix("ok exited 0 ") == true)
                slow.read(timeout: 20)
                #expect(slow.eof)
                #expect(slow.exitCode == nil, "dropped before the exit")
                #expect(h.waitGone())
                let recs = ShimHandle.records(h.log)
                #expect(recs.count == (65536 * 96 * 4 / 3 + 75) / 76)
                #expect(recs.allSatisfy { $0["log"]?.hasSuffix("\n") == true })
            }
        }

        @Test func failingCreateLeavesNothing() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                let missing = b.dir + "/no-such-bundle"
                let h = try ShimHandle(b, [], bundlePath: missing)
                defer { h.kill() }
                #expect(h.spawner.ok, "\(h.spawner)")
                #expect(h.ready.hasPrefix("error ") && h.ready.hasSuffix("\n"), "\(h.ready)")
                #expect(h.ready.contains("no-such-bundle"), "the runtime's message: \(h.ready)")
                #expect(h.waitGone(timeout: 5), "a shim or its socket is left")
                #expect(!FileManager.default.fileExists(atPath: h.state + "/shim.sock"))
                #expect(try b.state() == nil)
            }
            // a bundle the runtime refuses (config.json without args)
            try withBundle(args: ["/probe", "true"], edit: { $0[path: "process.args"] = [String]() }) { b in
                let h = try ShimHandle(b, ["--log", b.dir + "/ctr.log"])
                defer { h.kill() }
                #expect(h.ready.hasPrefix("error "), "\(h.ready)")
                #expect(h.waitGone(timeout: 5))
                #expect(Host.processes(rootedUnder: b.dir).isEmpty)
            }
        }
    }
}
