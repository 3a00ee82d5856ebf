// Units of the engine that need no daemon: Docker's formats and rules as the engine applies them.
import Foundation
import Testing
@testable import Engine

@Suite struct TimestampTests {
    @Test func formatsLikeDocker() {
        #expect(Timestamp.format(secs: 0, nanos: 0) == "1970-01-01T00:00:00Z")
        #expect(Timestamp.format(secs: 1_764_633_599, nanos: 123_456_789) == "2025-12-01T23:59:59.123456789Z")
        #expect(Timestamp.format(secs: 1_764_633_599, nanos: 500_000_000) == "2025-12-01T23:59:59.5Z")
        #expect(Timestamp.rfc3339Nano(nil) == "0001-01-01T00:00:00Z")
    }

    @Test func parsesWhatItWritesAndOffsets() throws {
        let d = try #require(Timestamp.parse("2025-12-01T23:59:59.25Z"))
        #expect(abs(d.timeIntervalSince1970 - 1_764_633_599.25) < 1e-6)
        let o = try #require(Timestamp.parse("2025-12-02T01:59:59+02:00"))
        #expect(abs(o.timeIntervalSince1970 - 1_764_633_599) < 1e-6)
        #expect(Timestamp.parse("1764633599.5")?.timeIntervalSince1970 == 1_764_633_599.5)
        #expect(Timestamp.parse("yesterday") == nil)
    }
}

@Suite struct RestartPolicyTests {
    @Test func parsesDockerSyntax() throws {
        #expect(try RestartPolicy(parsing: "").name == .no)
        #expect(try RestartPolicy(parsing: "always").name == .always)
        #expect(try RestartPolicy(parsing: "unless-stopped").name == .unlessStopped)
        let f = try RestartPolicy(parsing: "on-failure:3")
        #expect(f.name == .onFailure && f.maximumRetryCount == 3)
    }

    @Test func rejectsWhatDockerRejects() {
        #expect(throws: EngineError.self) { try RestartPolicy(parsing: "sometimes") }
        #expect(throws: EngineError.self) { try RestartPolicy(parsing: "always:2") }
        #expect(throws: EngineError.self) { try RestartPolicy(parsing: "on-failure:-1") }
        #expect(throws: EngineError.self) { try RestartPolicy(parsing: "always", maximumRetryCount: 2) }
    }
}

@Suite struct SpecRuleTests {
    @Test func capabilitiesFollowDockerDefaults() throws {
        let d = try SpecBuilder.capabilities(add: [], drop: [], privileged: false)
        #expect(d.contains("CAP_CHOWN") && !d.contains("CAP_SYS_ADMIN") && d.count == 14)
        let a = try SpecBuilder.capabilities(add: ["sys_admin"], drop: ["CAP_CHOWN"], privileged: false)
        #expect(a.contains("CAP_SYS_ADMIN") && !a.contains("CAP_CHOWN"))
        #expect(try SpecBuilder.capabilities(add: ["NET_ADMIN"], drop: ["ALL"], privileged: false) == ["CAP_NET_ADMIN"])
        #expect(try SpecBuilder.capabilities(add: [], drop: [], privileged: true).contains("CAP_SYS_ADMIN"))
        #expect(throws: EngineError.self) { try SpecBuilder.capabilities(add: ["CAP_FLY"], drop: [], privileged: false) }
    }

    @Test func bindsAreHostPaths() throws {
        let b = try SpecBuilder.parseBind("/srv/data:/data:ro")
        #expect(b.source == "/srv/data" && b.destination == "/data" && b.readOnly)
        #expect(throws: EngineError.self) { try SpecBuilder.parseBind("namedvolume:/data") }
        #expect(throws: EngineError.self) { try SpecBuilder.parseBind("/a:/b:bogus") }
        #expect(throws: EngineError.self) { try SpecBuilder.parseBind("/a") }
    }

    @Test func signalNames() {
        #expect(SpecBuilder.signalNumber("SIGTERM") == 15)
        #expect(SpecBuilder.signalNumber("kill") == 9)
        #expect(SpecBuilder.signalNumber("10") == 10)
        #expect(SpecBuilder.signalNumber("RTMIN+2") == 36)
        #expect(SpecBuilder.signalNumber("SIGNOPE") == nil)
        #expect(SpecBuilder.signalNumber("0") == nil)
    }

    @Test func containerNames() {
        #expect(Engine.namePattern("web_1"))
        #expect(Engine.namePattern("a.b-c"))
        #expect(!Engine.namePattern("x"))
        #expect(!Engine.namePattern("_x"))
        #expect(!Engine.namePattern("a/b"))
        #expect(!Engine.namePattern("a b"))
    }

    @Test func usersResolveInsideTheRootfs() throws {
        let root = NSTemporaryDirectory() + "berth-engine-user-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34:www:/var/www:/bin/false\n".write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nstaff:x:50:www\nweb:x:34:\n".write(toFile: root + "/etc/group", atomically: true, encoding: .utf8)
        let u = try SpecBuilder.resolveUser("www", rootfs: root)
        #expect(u.uid == 33 && u.gid == 34 && u.home == "/var/www" && u.additional == [50])
        let n = try SpecBuilder.resolveUser("1000:staff", rootfs: root)
        #expect(n.uid == 1000 && n.gid == 50)
        #expect(try SpecBuilder.resolveUser("", rootfs: root).home == "/root")
        #expect(throws: EngineError.self) { try SpecBuilder.resolveUser("nobody", rootfs: root) }
        // A symlinked /etc/passwd that points out of the rootfs is read inside it (RESOLVE_IN_ROOT).
        try FileManager.default.removeItem(atPath: root + "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/passwd", withDestinationPath: "/etc/passwd")
        #expect(throws: EngineError.self) { try SpecBuilder.resolveUser("www", rootfs: root) }
    }
}

@Suite struct LogFormatTests {
    @Test func jsonFileLines() throws {
        let line = Array(#"{"log":"hello\n","stream":"stderr","time":"2026-12-01T00:00:00.5Z"}"#.utf8)
        let l = try #require(LogReader.parse(line[...]))
        #expect(l.stream == 2 && l.text == Array("hello\n".utf8) && l.time == "2026-12-01T00:00:00.5Z")
        #expect(LogReader.parse(Array("not json".utf8)[...]) == nil)
    }
}
