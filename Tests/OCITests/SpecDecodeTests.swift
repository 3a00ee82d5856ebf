import Testing
@testable import OCI

@Suite struct SpecDecodeTests {
    func spec(_ text: String) throws(OCIError) -> Spec { try Spec.parse(Array(text.utf8)) }

    func decodeError(_ text: String) -> String? {
        do { _ = try spec(text); return nil } catch { return error.message }
    }

    @Test func specExample() throws {
        let s = try spec(Fixtures.specExample)
        #expect(s.ociVersion == "1.0.1")
        let p = try #require(s.process)
        #expect(p.terminal)
        #expect(p.user.uid == 1 && p.user.gid == 1)
        #expect(p.user.additionalGids == [5, 6])
        #expect(p.args == ["sh"])
        #expect(p.env == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"])
        #expect(p.cwd == "/")
        #expect(p.capabilities?.bounding == ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
        #expect(p.capabilities?.effective == ["CAP_AUDIT_WRITE", "CAP_KILL"])
        #expect(p.capabilities?.inheritable.count == 3)
        #expect(p.capabilities?.permitted.count == 3)
        #expect(p.capabilities?.ambient == ["CAP_NET_BIND_SERVICE"])
        #expect(p.rlimits == [Rlimit(type: "RLIMIT_CORE", soft: 1024, hard: 1024),
                              Rlimit(type: "RLIMIT_NOFILE", soft: 1024, hard: 1024)])
        #expect(p.apparmorProfile == "acme_secure_profile")
        #expect(p.oomScoreAdj == 100)
        #expect(p.selinuxLabel == "system_u:system_r:svirt_lxc_net_t:s0:c124,c675")
        #expect(p.ioPriority == IOPriority(ioClass: "IOPRIO_CLASS_IDLE", priority: 4))
        #expect(p.noNewPrivileges)
        #expect(s.root == Root(path: "rootfs", readonly: true))
        #expect(s.hostname == "slartibartfast")
        #expect(s.mounts.count == 7)
        #expect(s.mounts[0] == Mount(destination: "/proc", type: "proc", source: "proc"))
        #expect(s.mounts[2].options == ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
        let hooks = try #require(s.hooks)
        #expect(hooks.prestart.count == 2)
        #expect(hooks.prestart[0].path == "/usr/bin/fix-mounts")
        #expect(hooks.prestart[0].args == ["fix-mounts", "arg1", "arg2"])
        #expect(hooks.prestart[0].env == ["key1=value1"])
        #expect(hooks.poststart[0].timeout == 5)
        #expect(hooks.poststop[0].args == ["cleanup.sh", "-f"])
        #expect(hooks.createRuntime.isEmpty)
        let l = try #require(s.linux)
        #expect(l.devices.count == 2)
        var fuse = Device(type: "c", path: "/dev/fuse")
        fuse.major = 10; fuse.minor = 229; fuse.fileMode = 438; fuse.uid = 0; fuse.gid = 0
        #expect(l.devices[0] == fuse)
        #expect(l.uidMappings == [IDMapping(containerID: 0, hostID: 1000, size: 32000)])
        #expect(l.gidMappings == [IDMapping(containerID: 0, hostID: 1000, size: 32000)])
        #expect(l.sysctl.map(\.key) == ["net.ipv4.ip_forward", "net.core.somaxconn"])
        #expect(l.sysctl.map(\.value) == ["1", "256"])
        #expect(l.cgroupsPath == "/myRuntime/myContainer")
        #expect(l.resources?["pids"]?["limit"]?.intValue == 32771)
        #expect(l.resources?["memory"]?["kernel"]?.int64Value == -1)
        #expect(l.rootfsPropagation == "slave")
        #expect(l.seccomp?["defaultAction"]?.stringValue == "SCMP_ACT_ALLOW")
        #expect(l.timeOffsets.map(\.clock) == ["monotonic", "boottime"])
        #expect(l.timeOffsets.map(\.offset) == [TimeOffset(secs: 172800), TimeOffset(secs: 604800)])
        #expect(l.namespaces.map(\.type) == [.pid, .network, .ipc, .uts, .mount, .user, .cgroup, .time])
        #expect(l.namespaces.allSatisfy { $0.path == nil })
        #expect(l.maskedPaths.count == 4)
        #expect(l.readonlyPaths.first == "/proc/asound")
        #expect(l.mountLabel == "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811")
        #expect(s.annotations.map(\.key) == ["com.example.key1", "com.example.key2"])
        #expect(s.annotations.map(\.value) == ["value1", "value2"])
        try s.validate()
    }

    @Test func runcSpecOutput() throws {
        for text in [Fixtures.runcSpec, Fixtures.runcSpecRootless] {
            let s = try spec(text)
            #expect(s.ociVersion == "1.0.2-dev")
            #expect(s.process?.args == ["sh"])
            #expect(s.process?.capabilities?.inheritable == [])
            #expect(s.process?.rlimits == [Rlimit(type: "RLIMIT_NOFILE", soft: 1024, hard: 1024)])
            #expect(s.hostname == "runc")
            #expect(s.mounts.map(\.destination) == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"])
            #expect(s.linux?.maskedPaths.count == 10)
            try s.validate()
        }
        let rootless = try spec(Fixtures.runcSpecRootless)
        #expect(rootless.linux?.namespaces.contains(Namespace(type: .user)) == true)
        #expect(rootless.linux?.resources == nil)
        #expect(try spec(Fixtures.runcSpec).linux?.resources?["devices"]?[0]?["access"]?.stringValue == "rwm")
    }

    @Test func minimalAndNulls() throws {
        let s = try spec(#"{"ociVersion": "1.0.0", "process": null, "mounts": null, "linux": {"namespaces": null}, "unknown": [1, {"x": 2}]}"#)
        #expect(s.process == nil)
        #expect(s.mounts.isEmpty)
        #expect(s.linux?.namespaces == [])
        #expect(s.root == nil)
    }

    @Test func missingFieldsDecodeAsEmpty() throws {
        let s = try spec(#"{"process": {"args": ["x"]}}"#)
        #expect(s.ociVersion == "")
        #expect(s.process?.cwd == "")
    }

    @Test func duplicateKeysLastWins() throws {
        let s = try spec(#"{"hostname": "a", "hostname": "b", "annotations": {"k": "1", "k": "2"}}"#)
        #expect(s.hostname == "b")
        #expect(s.annotations.count == 1)
        #expect(s.annotations.first?.value == "2")
    }

    @Test func namespacePaths() throws {
        let s = try spec(#"{"linux": {"namespaces": [{"type": "network", "path": "/proc/1/ns/net"}, {"type": "time", "path": ""}]}}"#)
        #expect(s.linux?.namespaces == [Namespace(type: .network, path: "/proc/1/ns/net"), Namespace(type: .time)])
    }

    @Test func consoleSizeUmaskAndMountMappings() throws {
        let s = try spec(#"""
            {"process": {"consoleSize": {"height": 24, "width": 80}, "user": {"uid": 4294967295, "umask": 18},
             "args": ["a"]},
             "mounts": [{"destination": "/m", "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}]}
            """#)
        #expect(s.process?.consoleSize == ConsoleSize(height: 24, width: 80))
        #expect(s.process?.user.uid == UInt32.max)
        #expect(s.process?.user.umask == 18)
        #expect(s.mounts.first?.uidMappings == [IDMapping(containerID: 0, hostID: 100000, size: 65536)])
        #expect(s.mounts.first?.type == nil)
    }

    @Test(arguments: [
        (#"{"process": {"user": {"uid": -1}}}"#, "config.json: process.user.uid: -1 is out of range (0...4294967295)"),
        (#"{"process": {"user": {"uid": "0"}}}"#, "config.json: process.user.uid: expected an unsigned integer"),
        (#"{"process": {"user": {"uid": 1.5}}}"#, "config.json: process.user.uid: expected an unsigned integer, got 1.5"),
        (#"{"process": {"user": {"gid": 4294967296}}}"#, "config.json: process.user.gid: 4294967296 is out of range (0...4294967295)"),
        (#"{"process": {"user": {"additionalGids": [1, "x"]}}}"#, "config.json: process.user.additionalGids[1]: expected an unsigned integer"),
        (#"{"process": {"args": "sh"}}"#, "config.json: process.args: expected an array of strings"),
        (#"{"process": {"args": ["sh", 1]}}"#, "config.json: process.args[1]: expected a string"),
        (#"{"process": {"terminal": "yes"}}"#, "config.json: process.terminal: expected a boolean"),
        (#"{"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 18446744073709551616, "hard": 1}]}}"#,
         "config.json: process.rlimits[0].soft: 18446744073709551616 is out of range (0...18446744073709551615)"),
        (#"{"process": {"oomScoreAdj": 1e2}}"#, "config.json: process.oomScoreAdj: expected an integer, got 1e2"),
        (#"{"process": {"ioPriority": {"class": 3}}}"#, "config.json: process.ioPriority.class: expected a string"),
        (#"{"process": {"capabilities": {"bounding": [true]}}}"#, "config.json: process.capabilities.bounding[0]: expected a string"),
        (#"{"process": []}"#, "config.json: process: expected an object"),
        (#"[]"#, "config.json: config: expected an object"),
        (#"{"ociVersion": 1}"#, "config.json: ociVersion: expected a string"),
        (#"{"root": {"readonly": 1}}"#, "config.json: root.readonly: expected a boolean"),
        (#"{"mounts": [{"destination": "/a"}, {"options": "ro"}]}"#, "config.json: mounts[1].options: expected an array of strings"),
        (#"{"hooks": {"prestart": [{"path": "/x", "timeout": "5"}]}}"#, "config.json: hooks.prestart[0].timeout: expected an integer"),
        (#"{"linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "foo"}]}}"#,
         "config.json: linux.namespaces[2].type: unknown namespace type \"foo\""),
        (#"{"linux": {"namespaces": [{"path": "/x"}]}}"#, "config.json: linux.namespaces[0].type: must be set"),
        (#"{"linux": {"uidMappings": [{"containerID": 0, "hostID": -5, "size": 1}]}}"#,
         "config.json: linux.uidMappings[0].hostID: -5 is out of range (0...4294967295)"),
        (#"{"linux": {"timeOffsets": {"monotonic": {"secs": "1"}}}}"#, "config.json: linux.timeOffsets.monotonic.secs: expected an integer"),
        (#"{"linux": {"devices": [{"type": "c", "path": "/dev/x", "major": 9223372036854775808}]}}"#,
         "config.json: linux.devices[0].major: 9223372036854775808 is out of range (-9223372036854775808...9223372036854775807)"),
        (#"{"linux": {"sysctl": {"net.x": 1}}}"#, "config.json: linux.sysctl.net.x: expected a string"),
        (#"{"linux": {"resources": []}}"#, "config.json: linux.resources: expected an object"),
        (#"{"linux": {"seccomp": "x"}}"#, "config.json: linux.seccomp: expected an object"),
        (#"{"annotations": {"a": {}}}"#, "config.json: annotations.a: expected a string"),
        (#"{"annotations": []}"#, "config.json: annotations: expected an object of strings"),
        ("{\n  \"ociVersion\": \"1.0.0\"\n  \"x\": 1}", "config.json: line 3 column 3: expected ',' or '}'"),
    ])
    func typeErrors(input: String, expected: String) {
        #expect(decodeError(input) == expected)
    }

    @Test func errorCodes() {
        #expect(throws: OCIError.self) { try spec("{") }
        #expect(throws: OCIError.self) { try spec(#"{"process": 1}"#) }
        #expect(throws: Never.self) { try spec("{}") }
        do { _ = try spec("{"); Issue.record("no error") } catch { #expect(error.code == .invalidJSON) }
        do { _ = try spec(#"{"process": 1}"#); Issue.record("no error") } catch { #expect(error.code == .invalidConfig) }
    }

    @Test func nestedTypeDecodersWork() throws {
        let json = try JSON.parse(Array(#"{"args": ["ls"], "cwd": "/tmp", "env": ["A=1"]}"#.utf8))
        let p = try Process(json: json)
        #expect(p.args == ["ls"] && p.cwd == "/tmp" && p.env == ["A=1"])
        #expect(throws: OCIError.self) { try Process(json: .array([])) }
        do { _ = try Process(json: .object([(key: "cwd", value: .bool(true))])); Issue.record("no error") } catch {
            #expect(error.message == "process.cwd: expected a string")
        }
    }
}
