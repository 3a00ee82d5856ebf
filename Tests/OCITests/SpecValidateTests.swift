import Testing
@testable import OCI

/// one way to break a valid config, and the error it must give
struct Breakage: Sendable, CustomTestStringConvertible {
    let expected: String
    let change: @Sendable (inout Spec) -> Void
    init(_ expected: String, _ change: @escaping @Sendable (inout Spec) -> Void) {
        self.expected = expected
        self.change = change
    }
    var testDescription: String { expected }
}

/// `runc spec` plus enough to touch every check (a user namespace, a time namespace)
func validBase() -> Spec {
    var s = try! Spec.parse(Array(Fixtures.runcSpec.utf8))
    s.linux!.namespaces += [Namespace(type: .user), Namespace(type: .time)]
    s.linux!.uidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
    s.linux!.gidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
    return s
}

func hook(_ path: String, timeout: Int? = nil) -> Hook { var h = Hook(path: path); h.timeout = timeout; return h }

@Suite struct SpecValidateTests {
    @Test func baseIsValid() throws {
        try validBase().validate()
        try Spec.parse(Array(Fixtures.specExample.utf8)).validate()
    }

    static let breakages: [Breakage] = [
        Breakage("config.json: ociVersion: must be set") { $0.ociVersion = "" },
        Breakage("config.json: ociVersion: unsupported version \"2.0.0\" (major version must be 1)") { $0.ociVersion = "2.0.0" },
        Breakage("config.json: ociVersion: unsupported version \"10.0\" (major version must be 1)") { $0.ociVersion = "10.0" },
        Breakage("config.json: root: must be set") { $0.root = nil },
        Breakage("config.json: root.path: must be set") { $0.root!.path = "" },
        Breakage("config.json: process: must be set") { $0.process = nil },
        Breakage("config.json: process.args: must not be empty") { $0.process!.args = [] },
        Breakage("config.json: process.cwd: \"tmp\" must be an absolute path") { $0.process!.cwd = "tmp" },
        Breakage("config.json: process.cwd: must be set to an absolute path") { $0.process!.cwd = "" },
        Breakage("config.json: process.env[2]: \"FOO\" must be of the form KEY=value") { $0.process!.env.append("FOO") },
        Breakage("config.json: process.env[2]: \"=x\" has an empty name") { $0.process!.env.append("=x") },
        Breakage("config.json: process.rlimits[1].type: unknown rlimit type \"RLIMIT_FOO\"") {
            $0.process!.rlimits.append(Rlimit(type: "RLIMIT_FOO", soft: 1, hard: 1))
        },
        Breakage("config.json: process.rlimits[1].type: duplicate rlimit type \"RLIMIT_NOFILE\"") {
            $0.process!.rlimits.append(Rlimit(type: "RLIMIT_NOFILE", soft: 1, hard: 1))
        },
        Breakage("config.json: process.rlimits[0]: soft limit 1025 exceeds hard limit 1024") {
            $0.process!.rlimits[0].soft = 1025
        },
        Breakage("config.json: process.capabilities.bounding[3]: unknown capability \"CAP_FOO\"") {
            $0.process!.capabilities!.bounding.append("CAP_FOO")
        },
        Breakage("config.json: process.capabilities.ambient[0]: unknown capability \"cap_kill\"") {
            $0.process!.capabilities!.ambient[0] = "cap_kill"
        },
        Breakage("config.json: process.capabilities.inheritable[0]: unknown capability \"CAP_MAC_SUPERPOWER\"") {
            $0.process!.capabilities!.inheritable = ["CAP_MAC_SUPERPOWER"]
        },
        Breakage("config.json: process.ioPriority.class: unknown class \"IOPRIO_CLASS_NONE\" (want IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE)") {
            $0.process!.ioPriority = IOPriority(ioClass: "IOPRIO_CLASS_NONE", priority: 0)
        },
        Breakage("config.json: process.ioPriority.priority: 8 is out of range (0...7)") {
            $0.process!.ioPriority = IOPriority(ioClass: "IOPRIO_CLASS_BE", priority: 8)
        },
        Breakage("config.json: process.ioPriority.priority: -1 is out of range (0...7)") {
            $0.process!.ioPriority = IOPriority(ioClass: "IOPRIO_CLASS_RT", priority: -1)
        },
        Breakage("config.json: process.oomScoreAdj: 1001 is out of range (-1000...1000)") { $0.process!.oomScoreAdj = 1001 },
        Breakage("config.json: process.oomScoreAdj: -1001 is out of range (-1000...1000)") { $0.process!.oomScoreAdj = -1001 },
        Breakage("config.json: hostname: unable to set hostname without a private UTS namespace") {
            $0.linux!.namespaces.removeAll { $0.type == .uts }
        },
        Breakage("config.json: domainname: unable to set domainname without a private UTS namespace") {
            $0.hostname = nil; $0.domainname = "example.com"; $0.linux!.namespaces.removeAll { $0.type == .uts }
        },
        Breakage("config.json: mounts[7].destination: \"data\" must be an absolute path") {
            $0.mounts.append(Mount(destination: "data", type: "tmpfs", source: "tmpfs"))
        },
        Breakage("config.json: mounts[0].destination: \"\" must be an absolute path") { $0.mounts[0].destination = "" },
        Breakage("config.json: hooks.prestart[1].path: \"hook.sh\" must be an absolute path") {
            $0.hooks = Hooks(); $0.hooks!.prestart = [hook("/bin/true"), hook("hook.sh")]
        },
        Breakage("config.json: hooks.poststop[0].timeout: must be greater than 0, got 0") {
            $0.hooks = Hooks(); $0.hooks!.poststop = [hook("/bin/true", timeout: 0)]
        },
        Breakage("config.json: hooks.createContainer[0].timeout: must be greater than 0, got -3") {
            $0.hooks = Hooks(); $0.hooks!.createContainer = [hook("/bin/true", timeout: -3)]
        },
        Breakage("config.json: linux.namespaces[7].type: duplicate namespace type \"pid\"") {
            $0.linux!.namespaces.append(Namespace(type: .pid, path: "/proc/1/ns/pid"))
        },
        Breakage("config.json: linux.namespaces[1].path: \"proc/1/ns/net\" must be an absolute path") {
            $0.linux!.namespaces[1].path = "proc/1/ns/net"
        },
        Breakage("config.json: linux.uidMappings: a new user namespace needs uid mappings") { $0.linux!.uidMappings = [] },
        Breakage("config.json: linux.gidMappings: a new user namespace needs gid mappings") { $0.linux!.gidMappings = [] },
        Breakage("config.json: linux.uidMappings: user namespace mappings given but no user namespace") {
            $0.linux!.namespaces.removeAll { $0.type == .user }
        },
        Breakage("config.json: linux.gidMappings: user namespace mappings given but no user namespace") {
            $0.linux!.namespaces.removeAll { $0.type == .user }; $0.linux!.uidMappings = []
        },
        Breakage("config.json: linux.uidMappings[0].size: must be greater than 0") { $0.linux!.uidMappings[0].size = 0 },
        Breakage("config.json: linux.timeOffsets: time offsets given but no time namespace") {
            $0.linux!.timeOffsets = [(clock: "monotonic", offset: TimeOffset(secs: 1))]
            $0.linux!.namespaces.removeAll { $0.type == .time }
        },
        Breakage("config.json: linux.timeOffsets: unknown clock \"realtime\" (want monotonic or boottime)") {
            $0.linux!.timeOffsets = [(clock: "boottime", offset: TimeOffset()), (clock: "realtime", offset: TimeOffset())]
        },
        Breakage("config.json: linux.timeOffsets.boottime.nanosecs: must be less than 1000000000") {
            $0.linux!.timeOffsets = [(clock: "boottime", offset: TimeOffset(secs: 0, nanosecs: 1_000_000_000))]
        },
        Breakage("config.json: linux.timeOffsets: time offsets cannot be set when joining an existing time namespace") {
            $0.linux!.timeOffsets = [(clock: "monotonic", offset: TimeOffset(secs: 1))]
            $0.linux!.namespaces[6].path = "/proc/1/ns/time"
        },
        Breakage("config.json: linux.devices[0].type: unknown device type \"x\" (want c, b, u or p)") {
            $0.linux!.devices = [Device(type: "x", path: "/dev/x")]
        },
        Breakage("config.json: linux.devices[1].path: \"dev/null\" must be an absolute path") {
            $0.linux!.devices = [Device(type: "c", path: "/dev/zero"), Device(type: "c", path: "dev/null")]
        },
        Breakage("config.json: linux.rootfsPropagation: unknown propagation \"recursive\"") {
            $0.linux!.rootfsPropagation = "recursive"
        },
        Breakage("config.json: linux.sysctl.net.ipv4.ip_forward: sysctl \"net.ipv4.ip_forward\" is not allowed in the host's network namespace") {
            $0.linux!.sysctl = [(key: "net.ipv4.ip_forward", value: "1")]
            $0.linux!.namespaces.removeAll { $0.type == .network }
        },
        Breakage("config.json: linux.sysctl.kernel.shmmax: sysctl \"kernel.shmmax\" is not allowed in the host's ipc namespace") {
            $0.linux!.sysctl = [(key: "kernel.shmmax", value: "1")]; $0.linux!.namespaces.removeAll { $0.type == .ipc }
        },
        Breakage("config.json: linux.sysctl.kernel.msgmax: sysctl \"kernel.msgmax\" is not allowed in the host's ipc namespace") {
            $0.linux!.sysctl = [(key: "kernel.msgmax", value: "1")]; $0.linux!.namespaces.removeAll { $0.type == .ipc }
        },
        Breakage("config.json: linux.sysctl.kernel.sem: sysctl \"kernel.sem\" is not allowed in the host's ipc namespace") {
            $0.linux!.sysctl = [(key: "kernel.sem", value: "1")]; $0.linux!.namespaces.removeAll { $0.type == .ipc }
        },
        Breakage("config.json: linux.sysctl.fs/mqueue/msg_max: sysctl \"fs/mqueue/msg_max\" is not allowed in the host's ipc namespace") {
            $0.linux!.sysctl = [(key: "fs/mqueue/msg_max", value: "1")]; $0.linux!.namespaces.removeAll { $0.type == .ipc }
        },
        Breakage("config.json: linux.sysctl.kernel.domainname: sysctl \"kernel.domainname\" is not allowed in the host's uts namespace") {
            $0.hostname = nil
            $0.linux!.sysctl = [(key: "kernel.domainname", value: "x")]; $0.linux!.namespaces.removeAll { $0.type == .uts }
        },
        Breakage("config.json: linux.sysctl.vm.swappiness: sysctl \"vm.swappiness\" is not in a separate kernel namespace") {
            $0.linux!.sysctl = [(key: "net.core.somaxconn", value: "1"), (key: "vm.swappiness", value: "1")]
        },
    ]

    @Test(arguments: breakages)
    func rejects(_ breakage: Breakage) {
        var s = validBase()
        breakage.change(&s)
        do {
            try s.validate()
            Issue.record("accepted; wanted \(breakage.expected)")
        } catch {
            #expect(error.message == breakage.expected)
            #expect(error.code == .invalidConfig)
        }
    }

    /// configs that must pass: the edges of each rule
    static let accepted: [Breakage] = [
        Breakage("ociVersion 1.2.0") { $0.ociVersion = "1.2.0" },
        Breakage("ociVersion 1.0.2-dev") { $0.ociVersion = "1.0.2-dev" },
        Breakage("no process when not required") { _ in },
        Breakage("env value with '='") { $0.process!.env.append("A=b=c") },
        Breakage("empty env value") { $0.process!.env.append("A=") },
        Breakage("soft == hard, all rlimit types") {
            $0.process!.rlimits = Rlimit.allTypes.map { Rlimit(type: $0, soft: 7, hard: 7) }
        },
        Breakage("all capabilities") { $0.process!.capabilities!.bounding = Capabilities.allCapabilities },
        Breakage("io priority edges") { $0.process!.ioPriority = IOPriority(ioClass: "IOPRIO_CLASS_IDLE", priority: 7) },
        Breakage("oom edges") { $0.process!.oomScoreAdj = -1000 },
        Breakage("joined user namespace without mappings") {
            $0.linux!.namespaces[5].path = "/proc/1/ns/user"; $0.linux!.uidMappings = []; $0.linux!.gidMappings = []
        },
        Breakage("joined user namespace with mappings") { $0.linux!.namespaces[5].path = "/proc/1/ns/user" },
        Breakage("joined uts namespace with hostname") { $0.linux!.namespaces[3].path = "/proc/1/ns/uts" },
        Breakage("time offsets") {
            $0.linux!.timeOffsets = [(clock: "monotonic", offset: TimeOffset(secs: -5, nanosecs: 999_999_999)),
                                     (clock: "boottime", offset: TimeOffset(secs: 1))]
        },
        Breakage("all device types") {
            $0.linux!.devices = ["c", "b", "u", "p"].map { Device(type: $0, path: "/dev/\($0)") }
        },
        Breakage("all propagations") { $0.linux!.rootfsPropagation = "rslave" },
        Breakage("namespaced sysctls") {
            $0.linux!.sysctl = ["net.ipv4.ip_forward", "net/core/somaxconn", "kernel.shm_rmid_forced", "kernel.msgmnb",
                                "kernel.sem", "fs.mqueue.queues_max", "kernel.domainname", "kernel.hostname"]
                .map { (key: $0, value: "1") }
        },
        Breakage("hooks with timeouts") {
            $0.hooks = Hooks(); $0.hooks!.createRuntime = [hook("/usr/bin/x", timeout: 1)]
        },
        Breakage("no hostname, no uts") { $0.hostname = nil; $0.linux!.namespaces.removeAll { $0.type == .uts } },
        Breakage("empty hostname, no uts") { $0.hostname = ""; $0.linux!.namespaces.removeAll { $0.type == .uts } },
        Breakage("no linux section at all") { $0.linux = nil; $0.hostname = nil },
    ]

    @Test(arguments: accepted)
    func accepts(_ edge: Breakage) throws {
        var s = validBase()
        edge.change(&s)
        if edge.expected == "no process when not required" {
            s.process = nil
            try s.validate(requireProcess: false)
        } else {
            try s.validate()
        }
    }

    @Test func firstErrorWins() {
        var s = validBase()
        s.ociVersion = ""
        s.process!.args = []
        #expect(throws: OCIError.self) { try s.validate() }
        do { try s.validate() } catch { #expect(error.message == "config.json: ociVersion: must be set") }
    }

    @Test func processValidateStandalone() {
        var p = Process()
        p.args = ["sh"]
        p.cwd = "rel"
        do { try p.validate(); Issue.record("accepted") } catch { #expect(error.message == "process.cwd: \"rel\" must be an absolute path") }
    }
}

@Suite struct NamesTests {
    @Test func capabilityNumbers() {
        #expect(Capabilities.allCapabilities.count == 41)
        #expect(Capabilities.number(of: "CAP_CHOWN") == 0)
        #expect(Capabilities.number(of: "CAP_KILL") == 5)
        #expect(Capabilities.number(of: "CAP_NET_BIND_SERVICE") == 10)
        #expect(Capabilities.number(of: "CAP_SYS_ADMIN") == 21)
        #expect(Capabilities.number(of: "CAP_AUDIT_WRITE") == 29)
        #expect(Capabilities.number(of: "CAP_SETFCAP") == 31)
        #expect(Capabilities.number(of: "CAP_BPF") == 39)
        #expect(Capabilities.number(of: "CAP_CHECKPOINT_RESTORE") == 40)
        #expect(Set(Capabilities.allCapabilities).count == 41)
    }

    @Test func rlimitNumbers() {
        #expect(Rlimit(type: "RLIMIT_CPU", soft: 0, hard: 0).resource == 0)
        #expect(Rlimit(type: "RLIMIT_CORE", soft: 0, hard: 0).resource == 4)
        #expect(Rlimit(type: "RLIMIT_NOFILE", soft: 0, hard: 0).resource == 7)
        #expect(Rlimit(type: "RLIMIT_AS", soft: 0, hard: 0).resource == 9)
        #expect(Rlimit(type: "RLIMIT_RTTIME", soft: 0, hard: 0).resource == 15)
        #expect(Rlimit(type: "nofile", soft: 0, hard: 0).resource == nil)
    }

    @Test func ioPriorityValue() {
        let value: Int32 = (2 << 13) | 4
        #expect(IOPriority(ioClass: "IOPRIO_CLASS_BE", priority: 4).ioprioValue == value)
        #expect(IOPriority(ioClass: "IOPRIO_CLASS_RT", priority: 0).classNumber == 1)
        #expect(IOPriority(ioClass: "IOPRIO_CLASS_IDLE", priority: 0).classNumber == 3)
        #expect(IOPriority(ioClass: "IOPRIO_CLASS_NONE", priority: 0).classNumber == nil)
    }
}
