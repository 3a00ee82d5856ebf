// Registry settings (daemon.json's registry-mirrors and insecure-registries) and credentials as the docker
// CLI reads them from config.json, credential helpers included (a fake docker-credential-test on PATH).
import Foundation
import Testing
@testable import Images

private func withTempDir<T>(_ body: (String) throws -> T) throws -> T {
    let dir = try RegistryFixtures.tempDir("cfg")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try body(dir)
}

@Suite("RegistryConfig: daemon.json")
struct RegistryConfigDaemonTests {
    @Test func defaults() {
        let c = RegistryConfig()
        #expect(c.endpoints(for: "docker.io") == [RegistryEndpoint(scheme: "https", host: "registry-1.docker.io")])
        #expect(c.endpoints(for: "ghcr.io") == [RegistryEndpoint(scheme: "https", host: "ghcr.io")])
        // loopback is insecure by default: HTTPS without verification, then HTTP
        for host in ["localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "localhost"] {
            #expect(c.isInsecure(host), "\(host)")
            #expect(c.endpoints(for: host) == [RegistryEndpoint(scheme: "https", host: host, skipTLSVerify: true),
                                              RegistryEndpoint(scheme: "http", host: host, skipTLSVerify: true)])
        }
        for host in ["docker.io", "registry-1.docker.io", "10.0.0.1:5000", "example.com", "128.0.0.1"] {
            #expect(!c.isInsecure(host), "\(host)")
        }
    }

    @Test func load() throws {
        try withTempDir { dir in
            let path = dir + "/daemon.json"
            try RegistryFixtures.write("""
            {"registry-mirrors": ["https://mirror.example.com/", "http://10.1.1.1:5000"],
             "insecure-registries": ["myreg:5000", "http://other.example", "10.0.0.0/8", "fd00::/8"],
             "log-level": "debug", "storage-driver": "overlay2"}
            """, to: path)
            let c = try RegistryConfig.load(daemonJSON: path)
            #expect(c.mirrors == ["https://mirror.example.com", "http://10.1.1.1:5000"])
            #expect(c.insecureRegistries == ["myreg:5000", "other.example", "10.0.0.0/8", "fd00::/8"])
            #expect(c.endpoints(for: "docker.io") == [
                RegistryEndpoint(scheme: "https", host: "mirror.example.com", isMirror: true),
                RegistryEndpoint(scheme: "http", host: "10.1.1.1:5000", isMirror: true, skipTLSVerify: true),
                RegistryEndpoint(scheme: "https", host: "registry-1.docker.io"),
            ])
            // pushes never go to a mirror, and mirrors are for docker.io only
            #expect(c.endpoints(for: "docker.io", includeMirrors: false) == [RegistryEndpoint(scheme: "https", host: "registry-1.docker.io")])
            #expect(c.endpoints(for: "ghcr.io") == [RegistryEndpoint(scheme: "https", host: "ghcr.io")])
            #expect(c.isInsecure("myreg:5000"))
            #expect(!c.isInsecure("myreg:5001"))
            #expect(c.isInsecure("other.example"))
            #expect(c.isInsecure("10.200.3.4:5000"))
            #expect(!c.isInsecure("11.0.0.1:5000"))
            #expect(c.isInsecure("[fd12::1]:5000"))
            #expect(!c.isInsecure("[fe80::1]:5000"))
            #expect(c.endpoints(for: "10.2.3.4:5000").map(\.scheme) == ["https", "http"])
        }
    }

    @Test func errors() throws {
        try withTempDir { dir in
            let missing = dir + "/nope.json"
            #expect(try RegistryConfig.load(daemonJSON: missing, missingOK: true) == RegistryConfig())
            let e1 = #expect(throws: ImagesError.self) { try RegistryConfig.load(daemonJSON: missing) }
            #expect(e1?.message.contains(missing) == true && e1?.message.contains("no such file") == true, "\(String(describing: e1))")

            let path = dir + "/daemon.json"
            func check(_ text: String, _ expected: String) throws {
                try RegistryFixtures.write(text, to: path)
                let e = #expect(throws: ImagesError.self) { try RegistryConfig.load(daemonJSON: path) }
                #expect(e?.code == .invalidArgument)
                #expect(e?.message.contains(path) == true, "\(String(describing: e))")
                #expect(e?.message.contains(expected) == true, "\(String(describing: e))")
            }
            try check("{", "not valid JSON")
            try check("[]", "expected a JSON object")
            try check(#"{"registry-mirrors": "https://x"}"#, "\"registry-mirrors\" must be a list of strings")
            try check(#"{"registry-mirrors": ["ftp://x"]}"#, "invalid mirror")
            try check(#"{"registry-mirrors": ["https://u:p@x"]}"#, "user-info")
            try check(#"{"registry-mirrors": ["https://x/path"]}"#, "path, query, or fragment")
            try check(#"{"insecure-registries": ["ftp://x"]}"#, "should not contain '://'")
            try check(#"{"insecure-registries": ["bad host"]}"#, "is not valid")
            let unreadable = #expect(throws: ImagesError.self) { try RegistryConfig.load(daemonJSON: dir) }
            #expect(unreadable?.message.contains(dir) == true)
        }
    }
}

@Suite("RegistryConfig: docker credentials")
struct RegistryCredentialTests {
    @Test func auths() throws {
        let auth = Data("alice:pa:ss".utf8).base64EncodedString()
        let json = """
        {"auths": {
          "https://index.docker.io/v1/": {"auth": "\(Data("hub:hubpw".utf8).base64EncodedString())"},
          "localhost:5000": {"auth": "\(auth)"},
          "https://ghcr.io": {"username": "gh", "password": "tok"},
          "http://example.com/v2/": {"Username": "case", "Password": "insensitive"},
          "id.example": {"identitytoken": "refresh"},
          "rt.example": {"registrytoken": "bearer-token"},
          "both.example": {"auth": "\(Data("fromauth:pw".utf8).base64EncodedString())", "username": "ignored"},
          "empty.example": {}
        }, "psFormat": "table", "HttpHeaders": {"X": "y"}}
        """
        let (creds, dir) = try dockerConfig(json)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try creds.credential(forRegistry: "docker.io") == RegistryCredential(username: "hub", password: "hubpw"))
        #expect(try creds.credential(forRegistry: "registry-1.docker.io") == RegistryCredential(username: "hub", password: "hubpw"))
        #expect(try creds.credential(forRegistry: "localhost:5000") == RegistryCredential(username: "alice", password: "pa:ss"))
        #expect(try creds.credential(forRegistry: "ghcr.io") == RegistryCredential(username: "gh", password: "tok"))
        #expect(try creds.credential(forRegistry: "example.com") == RegistryCredential(username: "case", password: "insensitive"))
        #expect(try creds.credential(forRegistry: "id.example")?.identityToken == "refresh")
        #expect(try creds.credential(forRegistry: "rt.example")?.registryToken == "bearer-token")
        #expect(try creds.credential(forRegistry: "both.example")?.username == "fromauth")
        #expect(try creds.credential(forRegistry: "empty.example") == nil)
        #expect(try creds.credential(forRegistry: "unknown.example") == nil)
        #expect(try creds.credential(forRegistry: "localhost:5001") == nil)
    }

    @Test func hubKeys() throws {
        for key in ["index.docker.io", "docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"] {
            let (creds, dir) = try dockerConfig(#"{"auths": {"\#(key)": {"username": "u", "password": "p"}}}"#)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            #expect(try creds.credential(forRegistry: "docker.io")?.username == "u", "\(key)")
        }
        #expect(DockerCredentials.serverAddress(forRegistry: "docker.io") == "https://index.docker.io/v1/")
        #expect(DockerCredentials.serverAddress(forRegistry: "localhost:5000") == "localhost:5000")
    }

    @Test func defaultPath() {
        #expect(DockerCredentials.defaultConfigPath(environment: ["DOCKER_CONFIG": "/etc/dc", "HOME": "/home/x"]) == "/etc/dc/config.json")
        #expect(DockerCredentials.defaultConfigPath(environment: ["HOME": "/home/x"]) == "/home/x/.docker/config.json")
        #expect(DockerCredentials(environment: ["HOME": "/home/y"]).configPath == "/home/y/.docker/config.json")
    }

    @Test func fileErrors() throws {
        try withTempDir { dir in
            // no file: anonymous
            #expect(try DockerCredentials(configPath: dir + "/none.json").credential(forRegistry: "docker.io") == nil)
            // empty file: nothing configured
            try RegistryFixtures.write("\n", to: dir + "/empty.json")
            #expect(try DockerCredentials(configPath: dir + "/empty.json").credential(forRegistry: "docker.io") == nil)
            func check(_ text: String, _ expected: String) throws {
                let path = dir + "/config.json"
                try RegistryFixtures.write(text, to: path)
                let e = #expect(throws: ImagesError.self) { try DockerCredentials(configPath: path).credential(forRegistry: "x.example") }
                #expect(e?.message.contains(path) == true, "\(String(describing: e))")
                #expect(e?.message.contains(expected) == true, "\(String(describing: e))")
            }
            try check("{\"auths\": ", "not valid JSON")
            try check(#"{"auths": []}"#, "\"auths\" must be an object")
            try check(#"{"auths": {"x.example": {"auth": "!!!"}}}"#, "is not base64 of \"user:password\"")
            try check(#"{"auths": {"x.example": {"auth": "\#(Data("nocolon".utf8).base64EncodedString())"}}}"#, "is not base64")
            try check(#"{"auths": {"x.example": {"username": 5}}}"#, "username must be a string")
            try check(#"{"credHelpers": {"x.example": 1}}"#, "credHelpers")
            try check(#"{"credsStore": "nosuchhelper"}"#, "docker-credential-nosuchhelper is not on PATH")
            // a directory where the file should be
            try FileManager.default.createDirectory(atPath: dir + "/isdir", withIntermediateDirectories: true)
            let e = #expect(throws: ImagesError.self) { try DockerCredentials(configPath: dir + "/isdir").credential(forRegistry: "x") }
            #expect(e?.message.contains(dir + "/isdir") == true && e?.message.contains("cannot read") == true, "\(String(describing: e))")
        }
    }

    /// A docker-credential-test helper that knows two servers and logs what it was asked.
    private func helper(_ dir: String) throws -> [String: String] {
        let bin = dir + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let script = """
        #!/bin/sh
        [ "$1" = get ] || { echo "unexpected action $1" >&2; exit 2; }
        read -r server
        echo "$server" >> "\(dir)/asked"
        case "$server" in
          helper.example) printf '{"ServerURL":"helper.example","Username":"hu","Secret":"hs"}\\n' ;;
          https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"<token>","Secret":"idtok"}\\n' "$server" ;;
          broken.example) echo "keychain locked" >&2; exit 1 ;;
          garbage.example) echo "not json" ;;
          *) echo "credentials not found in native keychain"; exit 1 ;;
        esac
        """
        try RegistryFixtures.write(script, to: bin + "/docker-credential-test")
        chmod(bin + "/docker-credential-test", 0o755)
        return ["PATH": bin + ":/usr/bin:/bin"]
    }

    @Test func credentialHelpers() throws {
        try withTempDir { dir in
            let env = try helper(dir)
            let json = """
            {"auths": {"fallback.example": {"username": "file", "password": "pw"}, "helper.example": {"username": "shadowed", "password": "x"}},
             "credHelpers": {"helper.example": "test", "broken.example": "test", "garbage.example": "test", "missing.example": "absent"}}
            """
            let (creds, cdir) = try dockerConfig(json, env: env)
            defer { try? FileManager.default.removeItem(atPath: cdir) }
            #expect(try creds.credential(forRegistry: "helper.example") == RegistryCredential(username: "hu", password: "hs"))
            // no credHelper for it: the auths entry
            #expect(try creds.credential(forRegistry: "fallback.example")?.username == "file")
            let broken = #expect(throws: ImagesError.self) { try creds.credential(forRegistry: "broken.example") }
            #expect(broken?.message.contains("keychain locked") == true, "\(String(describing: broken))")
            let garbage = #expect(throws: ImagesError.self) { try creds.credential(forRegistry: "garbage.example") }
            #expect(garbage?.message.contains("not a JSON object") == true, "\(String(describing: garbage))")
            let missing = #expect(throws: ImagesError.self) { try creds.credential(forRegistry: "missing.example") }
            #expect(missing?.message.contains("docker-credential-absent is not on PATH") == true, "\(String(describing: missing))")
            let asked = (try? String(contentsOfFile: dir + "/asked", encoding: .utf8)) ?? ""
            #expect(asked.split(separator: "\n").contains("helper.example"))
        }
    }

    @Test func credsStore() throws {
        try withTempDir { dir in
            let env = try helper(dir)
            let json = #"{"credsStore": "test", "auths": {"https://index.docker.io/v1/": {}, "filed.example": {"username": "f", "password": "p"}}}"#
            let (creds, cdir) = try dockerConfig(json, env: env)
            defer { try? FileManager.default.removeItem(atPath: cdir) }
            // the hub is asked for under its server URL; "<token>" means an identity token
            #expect(try creds.credential(forRegistry: "docker.io") == RegistryCredential(identityToken: "idtok"))
            // the store has none: the file's entry
            #expect(try creds.credential(forRegistry: "filed.example")?.username == "f")
            #expect(try creds.credential(forRegistry: "nowhere.example") == nil)
            let asked = (try? String(contentsOfFile: dir + "/asked", encoding: .utf8)) ?? ""
            #expect(asked.contains("https://index.docker.io/v1/"))
        }
    }

    @Test func challenges() {
        let c = AuthChallenge.parse(#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#)
        #expect(c == [AuthChallenge(scheme: .bearer, realm: "https://auth.docker.io/token", service: "registry.docker.io",
                                   scopes: ["repository:library/busybox:pull"])])
        let two = AuthChallenge.parse(#"Basic realm="Registry Realm", Bearer realm="https://x/t", scope="a:b:pull b:c:push""#)
        #expect(two.count == 2)
        #expect(two[0] == AuthChallenge(scheme: .basic, realm: "Registry Realm", service: nil, scopes: []))
        #expect(two[1].scopes == ["a:b:pull", "b:c:push"])
        let escaped = AuthChallenge.parse(#"bearer realm="a\"b", error="insufficient_scope""#)
        #expect(escaped.first?.realm == "a\"b")
        #expect(AuthChallenge.parse("Negotiate").isEmpty)
    }

    @Test func errorBodies() {
        #expect(registryErrorMessage(Array(#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#.utf8))
            == "unauthorized: authentication required")
        #expect(registryErrorMessage(Array(#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"},{"code":"DENIED","message":"no"}]}"#.utf8))
            == "manifest unknown: manifest unknown; denied: no")
        #expect(registryErrorMessage(Array(#"{"details":"incorrect username or password"}"#.utf8)) == "incorrect username or password")
        #expect(registryErrorMessage([]) == nil)
        #expect(registryErrorMessage(Array("<html>oops</html>".utf8)) == nil)
    }
}
