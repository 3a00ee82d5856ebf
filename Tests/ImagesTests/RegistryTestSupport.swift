// Servers for the registry tests: Debian's docker-registry (distribution 2.8) on a free loopback port with its
// own storage, the token server and the misbehaving fake registry of tests/registry/. Each is stopped and its
// directory removed by `stop()`, which the tests call from `defer`.
import Foundation
import Testing
@testable import Images
import OCI

#if canImport(Glibc)
import Glibc
#endif

/// Foundation and OCI both export a `Process`; in this test module it is always Foundation's child process.
typealias Process = Foundation.Process

enum RegistryFixtures {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let scripts = repoRoot + "/tests/registry"
    static let registryBinary = ProcessInfo.processInfo.environment["BERTH_DOCKER_REGISTRY"] ?? "/usr/bin/docker-registry"

    static func tempDir(_ label: String) throws -> String {
        var template = Array((NSTemporaryDirectory() + "/berth-\(label)-XXXXXX").utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ buf in buf.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw ImagesError(.system, "mkdtemp in \(NSTemporaryDirectory()) failed: errno \(errno)")
        }
        return String(cString: p)
    }

    /// A port nobody listens on right now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ImagesError(.system, "socket failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard ok else { throw ImagesError(.system, "bind 127.0.0.1:0 failed") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func run(_ argv: [String]) throws -> String {
        let p = Foundation.Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else {
            throw ImagesError(.system, "\(argv.joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    static let pythonPath = python()

    static func python() -> String {
        for p in ["/usr/bin/python3", "/usr/local/bin/python3"] where access(p, X_OK) == 0 {
            // the token server needs `cryptography`
            if (try? run([p, "-c", "import cryptography"])) != nil { return p }
        }
        let env = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in env.split(separator: ":") {
            let p = String(dir) + "/python3"
            if access(p, X_OK) == 0, (try? run([p, "-c", "import cryptography"])) != nil { return p }
        }
        return "/usr/bin/python3"
    }

    /// A deterministic pseudo-random blob.
    static func blob(_ count: Int, seed: UInt64) -> [UInt8] {
        var x = seed &* 0x9E3779B97F4A7C15 | 1
        var out = [UInt8](repeating: 0, count: count)
        for i in 0..<count {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            out[i] = UInt8(truncatingIfNeeded: x)
        }
        return out
    }

    static func descriptor(_ bytes: [UInt8], _ mediaType: String = MediaType.ociLayerGzip) -> Descriptor {
        Descriptor(mediaType: mediaType, digest: StreamHasher.digest(bytes), size: Int64(bytes.count))
    }
}

/// A child process with a directory of its own.
final class TestServer: @unchecked Sendable {
    let process: Foundation.Process
    let dir: String
    let port: Int
    let log: String

    init(process: Foundation.Process, dir: String, port: Int, log: String) {
        self.process = process
        self.dir = dir
        self.port = port
        self.log = log
    }

    var host: String { "127.0.0.1:\(port)" }
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// SIGKILL: a child of a Swift concurrency thread may start with SIGTERM blocked.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Starts `argv` with output to dir/log; `ready` says when it serves (polled for up to 15 s).
    static func start(_ argv: [String], dir: String, port: Int?, portFile: String?) throws -> TestServer {
        let log = dir + "/server.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let p = Foundation.Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        p.environment = ProcessInfo.processInfo.environment.merging(["REGISTRY_HTTP_SECRET": "berth-test"]) { $1 }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        var found = port
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if !p.isRunning {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                try? FileManager.default.removeItem(atPath: dir)
                throw ImagesError(.system, "\(argv.joined(separator: " ")) exited with \(p.terminationStatus): \(text)")
            }
            if found == nil, let portFile, let text = try? String(contentsOfFile: portFile, encoding: .utf8), let n = Int(text) {
                found = n
            }
            if let f = found, RegistryFixtures.canConnect(f) {
                return TestServer(process: p, dir: dir, port: f, log: log)
            }
            usleep(20_000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: dir)
        throw ImagesError(.system, "\(argv.joined(separator: " ")) did not start listening within 15 s: \(text)")
    }
}

enum RegistryAuthMode {
    case none
    case htpasswd(user: String, password: String)
    case token(realm: String, service: String, issuer: String, certificate: String)
}

extension TestServer {
    /// Debian's docker-registry serving a fresh storage directory on 127.0.0.1.
    static func registry(_ auth: RegistryAuthMode = .none) throws -> TestServer {
        guard access(RegistryFixtures.registryBinary, X_OK) == 0 else {
            throw ImagesError(.system, "\(RegistryFixtures.registryBinary) is missing: the registry tests need Debian's docker-registry (apt-get install -y docker-registry; scripts/install-deps.sh installs it)")
        }
        let dir = try RegistryFixtures.tempDir("registry")
        let port = try RegistryFixtures.freePort()
        var authBlock = ""
        switch auth {
        case .none: break
        case .htpasswd(let user, let password):
            guard access("/usr/bin/htpasswd", X_OK) == 0 else {
                throw ImagesError(.system, "/usr/bin/htpasswd is missing: apt-get install -y apache2-utils")
            }
            let line = try RegistryFixtures.run(["/usr/bin/htpasswd", "-Bbn", user, password])
            try RegistryFixtures.write(line, to: dir + "/htpasswd")
            authBlock = "auth:\n  htpasswd:\n    realm: berth-test\n    path: \(dir)/htpasswd\n"
        case .token(let realm, let service, let issuer, let certificate):
            authBlock = "auth:\n  token:\n    realm: \(realm)\n    service: \(service)\n    issuer: \(issuer)\n    rootcertbundle: \(certificate)\n"
        }
        let config = """
        version: 0.1
        log:
          level: error
          accesslog:
            disabled: true
        storage:
          filesystem:
            rootdirectory: \(dir)/storage
          delete:
            enabled: true
        http:
          addr: 127.0.0.1:\(port)
          secret: berth-test
        \(authBlock)
        """
        try RegistryFixtures.write(config, to: dir + "/config.yml")
        return try start([RegistryFixtures.registryBinary, "serve", dir + "/config.yml"], dir: dir, port: port, portFile: nil)
    }

    /// tests/registry/token-server.py; `certificate` is where it wrote its certificate.
    static func tokenServer(_ extra: [String]) throws -> TestServer {
        let dir = try RegistryFixtures.tempDir("token")
        return try start([RegistryFixtures.pythonPath, RegistryFixtures.scripts + "/token-server.py",
                          "--port-file", dir + "/port", "--cert-out", dir + "/cert.pem"] + extra,
                         dir: dir, port: nil, portFile: dir + "/port")
    }

    var certificate: String { dir + "/cert.pem" }

    /// tests/registry/fake-registry.py serving blobs from dir/blobs.
    static func fakeRegistry() throws -> TestServer {
        let dir = try RegistryFixtures.tempDir("fake")
        try FileManager.default.createDirectory(atPath: dir + "/blobs", withIntermediateDirectories: true)
        return try start([RegistryFixtures.pythonPath, RegistryFixtures.scripts + "/fake-registry.py",
                          "--port-file", dir + "/port", "--blobs", dir + "/blobs"],
                         dir: dir, port: nil, portFile: dir + "/port")
    }

    /// GET baseURL/stats as JSON.
    func stats() throws -> [String: Any] {
        let text = try RegistryFixtures.run(["/usr/bin/curl", "-sf", baseURL + "/stats"])
        return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }
}

/// Credentials from a config.json written for the test.
func dockerConfig(_ json: String, env: [String: String] = [:]) throws -> (DockerCredentials, String) {
    let dir = try RegistryFixtures.tempDir("dockercfg")
    try RegistryFixtures.write(json, to: dir + "/config.json")
    var environment = ProcessInfo.processInfo.environment
    environment.merge(env) { $1 }
    return (DockerCredentials(configPath: dir + "/config.json", environment: environment), dir)
}

func basicAuthConfig(host: String, user: String, password: String) -> String {
    let auth = Data("\(user):\(password)".utf8).base64EncodedString()
    return #"{"auths": {"\#(host)": {"auth": "\#(auth)"}}}"#
}

/// Collects a fetched blob.
final class Collector {
    var bytes: [UInt8] = []
    func sink(_ p: UnsafeRawBufferPointer) { bytes.append(contentsOf: p) }
}

func expectImagesError(_ code: ImagesError.Code, containing text: String? = nil,
                       sourceLocation: SourceLocation = #_sourceLocation,
                       _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected an ImagesError \(code), got success", sourceLocation: sourceLocation)
    } catch let e as ImagesError {
        #expect(e.code == code, "\(e.message)", sourceLocation: sourceLocation)
        if let text {
            #expect(e.message.contains(text), "\(e.message) does not contain \(text)", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected an ImagesError \(code), got \(error)", sourceLocation: sourceLocation)
    }
}
