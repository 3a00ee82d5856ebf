// The `features` document (features.md, features-linux.md). Callers pass what the build actually supports;
// the defaults describe a mount(2)-based runtime with cgroup v1 and v2 drivers and no LSM support.

extension Spec {
    public static let seccompActions = [
        "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
    ]
    public static let seccompOperators = [
        "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
    ]
    public static let seccompArchs = [
        "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_X32",
        "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
    ]
    public static let seccompFlags = [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ]

    /// Features structure. With `seccompEnabled` false the seccomp object is just {"enabled": false}.
    /// `annotations` come after "io.github.berth.version".
    public static func featuresJSON(
        seccompEnabled: Bool,
        seccompActions: [String] = Spec.seccompActions,
        seccompOperators: [String] = Spec.seccompOperators,
        seccompArchs: [String] = Spec.seccompArchs,
        seccompKnownFlags: [String] = Spec.seccompFlags,
        seccompSupportedFlags: [String] = Spec.seccompFlags,
        cgroupV1: Bool = true, cgroupV2: Bool = true, systemd: Bool = false, systemdUser: Bool = false,
        apparmor: Bool = false, selinux: Bool = false, idmapMounts: Bool = true,
        version: String = "0.0.0",
        annotations: [(key: String, value: String)] = []
    ) -> JSON {
        func obj(_ fields: [(String, JSON)]) -> JSON { .object(fields.map { (key: $0.0, value: $0.1) }) }
        let seccomp: JSON = seccompEnabled
            ? obj([
                ("enabled", .bool(true)), ("actions", .strings(seccompActions)),
                ("operators", .strings(seccompOperators)), ("archs", .strings(seccompArchs)),
                ("knownFlags", .strings(seccompKnownFlags)), ("supportedFlags", .strings(seccompSupportedFlags)),
            ])
            : obj([("enabled", .bool(false))])
        let linux = obj([
            ("namespaces", .strings(NamespaceType.allCases.map(\.rawValue))),
            ("capabilities", .strings(Capabilities.allCapabilities)),
            ("cgroup", obj([
                ("v1", .bool(cgroupV1)), ("v2", .bool(cgroupV2)),
                ("systemd", .bool(systemd)), ("systemdUser", .bool(systemdUser)),
            ])),
            ("seccomp", seccomp),
            ("apparmor", obj([("enabled", .bool(apparmor))])),
            ("selinux", obj([("enabled", .bool(selinux))])),
            ("mountExtensions", obj([("idmap", obj([("enabled", .bool(idmapMounts))]))])),
        ])
        return obj([
            ("ociVersionMin", .string("1.0.0")),
            ("ociVersionMax", .string("1.2.0")),
            ("hooks", .strings(["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"])),
            ("mountOptions", .strings(MountFlags.knownOptions)),
            ("linux", linux),
            ("annotations", .stringMap([(key: "io.github.berth.version", value: version)] + annotations)),
        ])
    }
}
