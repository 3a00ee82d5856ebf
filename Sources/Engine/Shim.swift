import CEngine
import CLinux
import Dispatch
import Foundation
import Glibc

/// Runs blocking work (fork/exec, blocking socket I/O) on Dispatch's threads, never on the 2-thread
/// cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        DispatchQueue.global().async {
            do { c.resume(returning: try body()) } catch { c.resume(throwing: error) }
        }
    }
}

/// The daemon's side of docs/shim.md: spawning a shim and talking to its control socket.
struct ShimClient: Sendable {
    let stateDir: String
    var socketPath: String { stateDir + "/shim.sock" }

    struct Spawn: Sendable {
        var shim: String
        var runtime: String
        var runtimeRoot: String
        var id: String
        var bundle: String
        var tty: Bool
        var stdin: Bool
        var stdinOnce: Bool
        var logPath: String
        var logMaxSize: Int64
        var logMaxFiles: Int
    }

    /// Spawns the shim, waits for its ready line; returns the container's init pid (created, not started).
    func spawn(_ s: Spawn) throws(EngineError) -> Int32 {
        var p: [Int32] = [-1, -1]
        guard be_pipe_cloexec(&p) == 0 else { throw EngineError.system("pipe") }
        defer { if p[0] >= 0 { close(p[0]) } }
        var argv = [s.shim, "--id", s.id, "--bundle", s.bundle, "--state", stateDir, "--runtime", s.runtime,
                    "--runtime-root", s.runtimeRoot, "--ready-fd", "3", "--log", s.logPath,
                    "--log-max-size", String(s.logMaxSize), "--log-max-files", String(s.logMaxFiles)]
        if s.tty { argv.append("--tty") }
        if s.stdin { argv.append("--stdin") }
        if s.stdinOnce { argv.append("--stdin-once") }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&fa, p[1], 3)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attr, &mask)
        var def = sigset_t()
        sigfillset(&def)
        posix_spawnattr_setsigdefault(&attr, &def)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let cargs = argv.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        let env: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), nil]
        defer { env.forEach { free($0) } }
        let rc = posix_spawn(&pid, s.shim, &fa, &attr, cargs, env)
        close(p[1])
        guard rc == 0 else { throw EngineError.system("start \(s.shim)", errno: rc) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // The shim (grandchild) holds the write end until it is ready.
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while out.count < 65536 {
            let n = buf.withUnsafeMutableBytes { read(p[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        let line = String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("ok created ") || line.hasPrefix("ok running "), let pid = Int32(line.split(separator: " ").last ?? "") {
            return pid
        }
        if line.hasPrefix("error ") { throw EngineError.runtimeFailure(String(line.dropFirst(6))) }
        throw EngineError(.system, "berth-shim for \(s.id) exited without a ready line (status \(status))"
            + (line.isEmpty ? "" : ": \(line)"))
    }

    /// Connects and sends one request line; the reply is left to the caller (for `wait`).
    func send(_ line: String) throws(EngineError) -> Int32 {
        let fd = bl_connect_unix(socketPath)
        guard fd >= 0 else { throw EngineError(.unavailable, "connect to the shim at \(socketPath): \(String(cString: strerror(errno)))") }
        let bytes = Array((line + "\n").utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { let e = errno; close(fd); throw EngineError.system("write to the shim", errno: e) }
            off += n
        }
        return fd
    }

    /// Connects and sends one request line; returns the fd (blocking) and the reply line.
    func request(_ line: String) throws(EngineError) -> (fd: Int32, reply: String) {
        let fd = try send(line)
        // The reply is one line; read byte-wise so that nothing after it (stream frames) is consumed.
        var reply = [UInt8]()
        var b: UInt8 = 0
        while reply.count < 8192 {
            let n = read(fd, &b, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if b == UInt8(ascii: "\n") { return (fd, String(decoding: reply, as: UTF8.self)) }
            reply.append(b)
        }
        close(fd)
        throw EngineError(.unavailable, "the shim at \(socketPath) closed the connection")
    }

    /// A request whose whole answer is one line; errors from the shim become EngineErrors.
    func call(_ line: String) throws(EngineError) -> [String] {
        let (fd, reply) = try request(line)
        close(fd)
        return try Self.check(reply)
    }

    static func check(_ reply: String) throws(EngineError) -> [String] {
        if reply == "ok" { return [] }
        if reply.hasPrefix("ok ") { return reply.dropFirst(3).split(separator: " ").map(String.init) }
        if reply.hasPrefix("error ") { throw EngineError.runtimeFailure(String(reply.dropFirst(6))) }
        throw EngineError(.system, "unexpected reply from the shim: \(reply)")
    }

    /// The exit file: `CODE NANOS`.
    func exitRecord() -> (code: Int32, finished: Date)? {
        guard let s = try? String(contentsOfFile: stateDir + "/exit", encoding: .utf8) else { return nil }
        let f = s.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")
        guard f.count == 2, let code = Int32(f[0]), let ns = Double(f[1]) else { return nil }
        return (code, Date(timeIntervalSince1970: ns / 1e9))
    }
}

extension EngineError {
    /// A runtime's failure to start the process, mapped as Docker maps it (126/127 for exec failures).
    static func runtimeFailure(_ text: String) -> EngineError {
        // Go's wording (lower case), which the docker CLI matches to pick 126/127.
        let msg = text.replacingOccurrences(of: "No such file or directory", with: "no such file or directory")
            .replacingOccurrences(of: "Permission denied", with: "permission denied")
        let lower = msg.lowercased()
        if lower.contains("no such file") || lower.contains("not found") && (lower.contains("exec") || lower.contains("executable")) {
            return EngineError(.cannotExec(127), msg)
        }
        if lower.contains("permission denied") || lower.contains("is a directory") {
            return EngineError(.cannotExec(126), msg)
        }
        return EngineError(.system, msg)
    }
}
