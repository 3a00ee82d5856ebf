// The daemon connection: which socket (-H, BERTH_HOST, else the default, which is autostarted), the
// versioned path prefix, and requests that turn daemon errors into `DaemonError`.
import Glibc

let defaultHost = "unix:///run/berth/berth.sock"

final class Client {
    let host: String
    let socketPath: String
    let isDefault: Bool
    /// The newest version in the Engine API spec we follow; lowered once if the daemon says it is older.
    var apiVersion = "1.56"
    private var started = false

    init(host: String?) throws {
        let env = getenv("BERTH_HOST").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        let h = host ?? env ?? defaultHost
        self.host = h
        isDefault = host == nil && env == nil
        if h.hasPrefix("unix://") {
            socketPath = String(h.dropFirst("unix://".count))
        } else if h.hasPrefix("/") {
            socketPath = h
        } else {
            throw CLIError("unsupported host \(h): berth speaks to unix sockets only (unix:///path)")
        }
    }

    var cannotConnect: String { "Cannot connect to the berth daemon at \(host): is berthd running?" }

    func connect() throws -> Socket {
        do {
            return try Socket.connect(path: socketPath)
        } catch {
            if isDefault && !started && (error.errno == ENOENT || error.errno == ECONNREFUSED) {
                started = true
                try Autostart.startDaemon(socketPath: socketPath)
                if let s = try? Socket.connect(path: socketPath) { return s }
            }
            throw CLIError(cannotConnect)
        }
    }

    /// Sends a request and reads the response head; the body is left to read.
    func send(_ method: String, _ path: String, body: RequestBody = .none, headers: [(String, String)] = [],
              upgrade: Bool = false) throws -> Response {
        while true {
            let s = try write(method, path, body: body, headers: headers, upgrade: upgrade)
            var r = try readHead(s, method: method)
            if r.status == 400 {
                // "client version 1.56 is too new. Maximum supported API version is 1.50": use theirs, once
                let e = r.error()
                if let max = e.message.find("Maximum supported API version is ") {
                    let v = e.message[max.upperBound...].prefix { $0.isNumber || $0 == "." }
                    var replayable = true
                    if case .fd = body { replayable = false }
                    if !v.isEmpty, String(v) != apiVersion, replayable {
                        apiVersion = String(v)
                        continue
                    }
                }
                throw e
            }
            return r
        }
    }

    /// Sends a request without reading anything back (a wait whose answer comes at exit).
    func write(_ method: String, _ path: String, body: RequestBody = .none, headers: [(String, String)] = [],
               upgrade: Bool = false) throws -> Socket {
        let s = try connect()
        var head = "\(method) /v\(apiVersion)\(path) HTTP/1.1\r\nHost: api\r\nUser-Agent: berth/\(berthVersion)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if upgrade { head += "Connection: Upgrade\r\nUpgrade: tcp\r\n" }
        var chunked = false
        switch body {
        case .none:
            if method == "POST" || method == "PUT" { head += "Content-Length: 0\r\n" }
        case .bytes(let b, let ct):
            head += "Content-Type: \(ct)\r\nContent-Length: \(b.count)\r\n"
        case .fd(_, let ct, let length):
            head += "Content-Type: \(ct)\r\n"
            if let length { head += "Content-Length: \(length)\r\n" } else {
                head += "Transfer-Encoding: chunked\r\n"
                chunked = true
            }
        }
        head += "\r\n"
        if case .bytes(let b, _) = body {
            try s.writeAll(Array(head.utf8) + b)
        } else {
            try s.writeAll(Array(head.utf8))
        }
        if case .fd(let fd, _, _) = body { try streamBody(from: fd, to: s, chunked: chunked) }
        return s
    }

    private func streamBody(from fd: Int32, to s: Socket, chunked: Bool) throws {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError("read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            if chunked {
                try s.writeAll(Array((String(n, radix: 16) + "\r\n").utf8) + buf[0..<n] + [0x0d, 0x0a])
            } else {
                try buf.withUnsafeBytes { try s.writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
        }
        if chunked { try s.writeAll(Array("0\r\n\r\n".utf8)) }
    }

    func readHead(_ s: Socket, method: String) throws -> Response {
        guard let statusLine = try s.readLine() else {
            throw CLIError("the daemon closed the connection without answering")
        }
        // HTTP/1.1 200 OK
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            throw CLIError("bad response from daemon: \(statusLine)")
        }
        var headers: [(String, String)] = []
        while let line = try s.readLine(), !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((line[..<colon].lowercased(), String(line[line.index(after: colon)...]).trimmed))
        }
        return Response(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, socket: s,
                        method: method)
    }

    /// A request whose error statuses throw `DaemonError`.
    func call(_ method: String, _ path: String, body: RequestBody = .none, headers: [(String, String)] = []) throws
        -> Response {
        var r = try send(method, path, body: body, headers: headers)
        if r.status >= 400 { throw r.error() }
        return r
    }

    /// A request whose answer body is dropped.
    func perform(_ method: String, _ path: String, body: RequestBody = .none) throws {
        var r = try call(method, path, body: body)
        r.discard()
    }

    func getJSON(_ path: String) throws -> JSON {
        var r = try call("GET", path)
        return try r.json()
    }

    @discardableResult
    func postJSON(_ path: String, _ body: JSON? = nil) throws -> JSON {
        var r = try call("POST", path, body: body.map { RequestBody.json($0) } ?? .none)
        return try r.json()
    }

    /// The second half of a hijack whose request went out with `write(..., upgrade: true)`.
    func finishHijack(_ s: Socket) throws -> (Socket, ArraySlice<UInt8>, Response) {
        var r = try readHead(s, method: "POST")
        if r.status >= 400 { throw r.error() }
        return (r.socket, r.socket.takeBuffered(), r)
    }

    /// A hijacked stream (attach, exec start): the response head is read; what follows is raw.
    func hijack(_ path: String, body: JSON? = nil) throws -> (Socket, ArraySlice<UInt8>, Response) {
        var r = try send("POST", path, body: body.map { RequestBody.json($0) } ?? .none, upgrade: true)
        if r.status >= 400 { throw r.error() }
        return (r.socket, r.socket.takeBuffered(), r)
    }
}

// MARK: - Autostart

enum Autostart {
    /// berthd next to this executable (via /proc/self/exe), else in PATH.
    static func daemonPath() -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 {
            let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let slash = exe.lastIndex(of: "/") {
                let candidate = String(exe[..<slash]) + "/berthd"
                if access(candidate, X_OK) == 0 { return String(candidate) }
            }
        }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = String(dir) + "/berthd"
            if access(candidate, X_OK) == 0 { return String(candidate) }
        }
        return nil
    }

    static func startDaemon(socketPath: String) throws {
        guard let berthd = daemonPath() else {
            throw CLIError("Cannot connect to the berth daemon at unix://\(socketPath), and no berthd was found next to berth or in PATH to start one")
        }
        mkdir("/var/log/berth", 0o755)
        var logFD = open("/var/log/berth/berthd.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        if logFD < 0 { logFD = open("/dev/null", O_WRONLY | O_CLOEXEC) }
        let nullFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(logFD); close(nullFD) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, nullFD, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        if let addChdir = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addchdir_np") {
            typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
            _ = unsafeBitCast(addChdir, to: AddChdir.self)(&actions, "/")
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(0x80 /* POSIX_SPAWN_SETSID */ | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(berthd), nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, berthd, &actions, &attr, argv, environ)
        if rc != 0 { throw CLIError("start \(berthd): \(String(cString: strerror(rc)))") }

        // Poll /_ping every 10 ms for up to 2 s; stop early if berthd died.
        for _ in 0..<200 {
            if ping(socketPath) { return }
            var st: Int32 = 0
            if waitpid(pid, &st, WNOHANG) == pid {
                throw CLIError("berthd exited during startup (status \(st >> 8)); see /var/log/berth/berthd.log")
            }
            usleep(10_000)
        }
        throw CLIError("berthd did not answer on unix://\(socketPath) within 2s; see /var/log/berth/berthd.log")
    }

    static func ping(_ path: String) -> Bool {
        guard let s = try? Socket.connect(path: path) else { return false }
        guard (try? s.writeAll(Array("GET /_ping HTTP/1.1\r\nHost: api\r\n\r\n".utf8))) != nil,
              let line = try? s.readLine() else { return false }
        return line.contains(" 200")
    }
}
