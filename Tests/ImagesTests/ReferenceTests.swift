// Reference parsing and normalisation, case by case against what Docker (distribution/reference's
// ParseNormalizedNamed + TagNameOnly, FamiliarString) gives for the same input.
import Testing
@testable import Images
import OCI

private let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

@Suite("Reference")
struct ReferenceTests {
    struct Case: Sendable, CustomStringConvertible {
        var input: String
        var full: String
        var familiar: String
        var host: String
        var description: String { input }
    }

    static let normalised: [Case] = [
        Case(input: "busybox", full: "docker.io/library/busybox:latest", familiar: "busybox:latest", host: "registry-1.docker.io"),
        Case(input: "busybox:1.36", full: "docker.io/library/busybox:1.36", familiar: "busybox:1.36", host: "registry-1.docker.io"),
        Case(input: "library/busybox", full: "docker.io/library/busybox:latest", familiar: "busybox:latest", host: "registry-1.docker.io"),
        Case(input: "docker.io/busybox", full: "docker.io/library/busybox:latest", familiar: "busybox:latest", host: "registry-1.docker.io"),
        Case(input: "docker.io/library/busybox:musl", full: "docker.io/library/busybox:musl", familiar: "busybox:musl", host: "registry-1.docker.io"),
        Case(input: "index.docker.io/busybox", full: "docker.io/library/busybox:latest", familiar: "busybox:latest", host: "registry-1.docker.io"),
        Case(input: "index.docker.io/user/app:v2", full: "docker.io/user/app:v2", familiar: "user/app:v2", host: "registry-1.docker.io"),
        Case(input: "user/app", full: "docker.io/user/app:latest", familiar: "user/app:latest", host: "registry-1.docker.io"),
        Case(input: "user/app/sub", full: "docker.io/user/app/sub:latest", familiar: "user/app/sub:latest", host: "registry-1.docker.io"),
        Case(input: "library/a/b", full: "docker.io/library/a/b:latest", familiar: "library/a/b:latest", host: "registry-1.docker.io"),
        Case(input: "localhost/x", full: "localhost/x:latest", familiar: "localhost/x:latest", host: "localhost"),
        Case(input: "localhost:5000/x", full: "localhost:5000/x:latest", familiar: "localhost:5000/x:latest", host: "localhost:5000"),
        Case(input: "localhost:5000/a/b:t", full: "localhost:5000/a/b:t", familiar: "localhost:5000/a/b:t", host: "localhost:5000"),
        Case(input: "127.0.0.1:5000/x", full: "127.0.0.1:5000/x:latest", familiar: "127.0.0.1:5000/x:latest", host: "127.0.0.1:5000"),
        Case(input: "[::1]:5000/x", full: "[::1]:5000/x:latest", familiar: "[::1]:5000/x:latest", host: "[::1]:5000"),
        Case(input: "ghcr.io/owner/img:1.0", full: "ghcr.io/owner/img:1.0", familiar: "ghcr.io/owner/img:1.0", host: "ghcr.io"),
        Case(input: "quay.io/x", full: "quay.io/x:latest", familiar: "quay.io/x:latest", host: "quay.io"),
        Case(input: "myregistry:5000/x", full: "myregistry:5000/x:latest", familiar: "myregistry:5000/x:latest", host: "myregistry:5000"),
        Case(input: "Registry.Example.com/x", full: "Registry.Example.com/x:latest", familiar: "Registry.Example.com/x:latest", host: "Registry.Example.com"),
        Case(input: "Foo/bar", full: "Foo/bar:latest", familiar: "Foo/bar:latest", host: "Foo"),
        Case(input: "host.example/x:tag@sha256:\(hex)", full: "host.example/x:tag@sha256:\(hex)", familiar: "host.example/x:tag@sha256:\(hex)", host: "host.example"),
        Case(input: "busybox@sha256:\(hex)", full: "docker.io/library/busybox@sha256:\(hex)", familiar: "busybox@sha256:\(hex)", host: "registry-1.docker.io"),
        Case(input: "busybox:Latest_1.0-x", full: "docker.io/library/busybox:Latest_1.0-x", familiar: "busybox:Latest_1.0-x", host: "registry-1.docker.io"),
        Case(input: "a_b/c__d/e-f/g--h/i.j", full: "docker.io/a_b/c__d/e-f/g--h/i.j:latest", familiar: "a_b/c__d/e-f/g--h/i.j:latest", host: "registry-1.docker.io"),
        Case(input: "localhost:5000", full: "docker.io/library/localhost:5000", familiar: "localhost:5000", host: "registry-1.docker.io"),
        Case(input: "a-b.c-d.example:443/x", full: "a-b.c-d.example:443/x:latest", familiar: "a-b.c-d.example:443/x:latest", host: "a-b.c-d.example:443"),
        Case(input: "sha256", full: "docker.io/library/sha256:latest", familiar: "sha256:latest", host: "registry-1.docker.io"),
    ]

    @Test(arguments: normalised)
    func normalises(_ c: Case) throws {
        let r = try Reference(parsing: c.input)
        #expect(r.description == c.full)
        #expect(r.familiarString == c.familiar)
        #expect(r.registryHost == c.host)
        // the normalised text parses to the same reference
        #expect(try Reference(parsing: r.description) == r)
    }

    @Test func parts() throws {
        let r = try Reference(parsing: "localhost:5000/team/app:v1@sha256:\(hex)")
        #expect(r.domain == "localhost:5000")
        #expect(r.path == "team/app")
        #expect(r.tag == "v1")
        #expect(r.digest?.description == "sha256:\(hex)")
        #expect(r.name == "localhost:5000/team/app")
        #expect(r.familiarName == "localhost:5000/team/app")
        #expect(r.manifestReference == "sha256:\(hex)")
        #expect(r.repository == (try Repository(domain: "localhost:5000", path: "team/app")))

        let hub = try Reference(parsing: "busybox")
        #expect(hub.domain == "docker.io" && hub.path == "library/busybox" && hub.tag == "latest" && hub.digest == nil)
        #expect(hub.familiarName == "busybox")
        #expect(hub.manifestReference == "latest")
        #expect(hub.repository.registryHost == "registry-1.docker.io")

        let bare = try Reference(parsing: "user/app", defaultTag: false)
        #expect(bare.tag == nil && bare.description == "docker.io/user/app" && bare.familiarString == "user/app")
        // a digest alone gets no default tag
        #expect(try Reference(parsing: "busybox@sha256:\(hex)").tag == nil)
        // sha512
        let long = String(repeating: "ab", count: 64)
        #expect(try Reference(parsing: "x@sha512:\(long)").digest?.algorithm == .sha512)

        #expect(try hub.with(tag: "1.0").description == "docker.io/library/busybox:1.0")
        #expect(throws: ImagesError.self) { try hub.with(tag: ".bad") }
        #expect(try Reference(domain: "index.docker.io", path: "library/x").domain == "docker.io")
    }

    @Test func lengths() throws {
        // 255 characters of name in all (domain, "/", path)
        let name255 = "docker.io/u/" + String(repeating: "a", count: 255 - "docker.io/u/".count)
        #expect(try Reference(parsing: name255).name.count == 255)
        let error = #expect(throws: ImagesError.self) { try Reference(parsing: name255 + "a") }
        #expect(error?.message == "repository name must not be more than 255 characters")
        // tags up to 128 characters
        _ = try Reference(parsing: "x:" + String(repeating: "t", count: 128))
        let tag = #expect(throws: ImagesError.self) { try Reference(parsing: "x:" + String(repeating: "t", count: 129)) }
        #expect(tag?.message == "invalid reference format")
    }

    struct Bad: Sendable, CustomStringConvertible {
        var input: String
        var message: String
        var description: String { input }
    }

    static let invalid: [Bad] = [
        Bad(input: "", message: "invalid reference format"),
        Bad(input: "Busybox", message: "invalid reference format: repository name (library/Busybox) must be lowercase"),
        Bad(input: "user/App", message: "invalid reference format: repository name (user/App) must be lowercase"),
        Bad(input: "localhost:5000/Team/app", message: "invalid reference format: repository name (Team/app) must be lowercase"),
        Bad(input: hex, message: "invalid repository name (\(hex)), cannot specify 64-byte hexadecimal strings"),
        Bad(input: "busybox:", message: "invalid reference format"),
        Bad(input: "busybox::tag", message: "invalid reference format"),
        Bad(input: "busybox:.tag", message: "invalid reference format"),
        Bad(input: "busybox:-tag", message: "invalid reference format"),
        Bad(input: "busybox:ta/g", message: "invalid reference format"),
        Bad(input: "-busybox", message: "invalid reference format"),
        Bad(input: "busybox-", message: "invalid reference format"),
        Bad(input: "bu..sybox", message: "invalid reference format"),
        Bad(input: "bu___sybox", message: "invalid reference format"),
        Bad(input: "bu._sybox", message: "invalid reference format"),
        Bad(input: "a//b", message: "invalid reference format"),
        Bad(input: "user/app/", message: "invalid reference format"),
        Bad(input: "/app", message: "invalid reference format"),
        Bad(input: "host:port/x", message: "invalid reference format"),
        Bad(input: "-host.example/x", message: "invalid reference format"),
        Bad(input: "host..example/x", message: "invalid reference format"),
        Bad(input: "localhost:/x", message: "invalid reference format"),
        Bad(input: "[zz::1]:5000/x", message: "invalid reference format"),
        Bad(input: "busybox@sha256:abc", message: "invalid reference format"),
        Bad(input: "busybox@sha256", message: "invalid reference format"),
        Bad(input: "busybox@@sha256:\(hex)", message: "invalid reference format"),
        Bad(input: "busy box", message: "invalid reference format"),
        Bad(input: "busybox:tag@sha256:\(hex)@x", message: "invalid reference format"),
        Bad(input: "busybox@sha384:" + String(repeating: "a", count: 96), message: "unsupported digest algorithm: sha384 (berth handles sha256 and sha512)"),
        Bad(input: "busybox@sha256:" + hex + "00", message: "invalid checksum digest length: sha256 takes 64 hex characters, got 66"),
        Bad(input: "busybox@sha256:" + hex.uppercased(), message: "invalid checksum digest format: sha256:\(hex.uppercased()) (the hex must be lowercase)"),
        Bad(input: "x.example/A_B:tag", message: "invalid reference format: repository name (A_B) must be lowercase"),
    ]

    @Test(arguments: invalid)
    func rejects(_ c: Bad) {
        let error = #expect(throws: ImagesError.self) { try Reference(parsing: c.input) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message == c.message)
    }

    @Test func fromParts() throws {
        #expect(throws: ImagesError.self) { try Reference(domain: "bad host", path: "x") }
        #expect(throws: ImagesError.self) { try Reference(domain: "docker.io", path: "X") }
        #expect(throws: ImagesError.self) { try Reference(domain: "docker.io", path: "x", tag: "") }
        #expect(throws: ImagesError.self) { try Repository(domain: "docker.io", path: "a//b") }
        #expect(try Repository(domain: "docker.io", path: "library/x").familiarName == "x")
        #expect(try Repository(domain: "docker.io", path: "library/x/y").familiarName == "library/x/y")
    }
}
