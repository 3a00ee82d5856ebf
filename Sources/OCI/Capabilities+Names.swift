// Linux names the runtime recognises: capabilities, rlimits and I/O priority classes, with their kernel numbers.

extension Capabilities {
    /// every Linux capability up to CAP_CHECKPOINT_RESTORE (Linux 5.9); the index is the capability's number
    public static let allCapabilities: [String] = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// the kernel number of a capability name ("CAP_KILL" → 5), nil when unknown
    public static func number(of name: String) -> Int? { allCapabilities.firstIndex(of: name) }
}

extension Rlimit {
    /// RLIMIT_* names; the index is the resource number on Linux (generic and x86 numbering)
    public static let allTypes: [String] = [
        "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC",
        "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
    ]

    /// the resource number for setrlimit/prlimit, nil when the type is unknown
    public var resource: Int32? { Rlimit.allTypes.firstIndex(of: type).map { Int32($0) } }
}

extension IOPriority {
    /// IOPRIO_CLASS_* names; the index is the class number (0 is IOPRIO_CLASS_NONE, not allowed in config.json)
    public static let allClasses: [String] = ["IOPRIO_CLASS_NONE", "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"]

    /// the class number (1 RT, 2 BE, 3 IDLE), nil when unknown
    public var classNumber: Int32? {
        guard let k = IOPriority.allClasses.firstIndex(of: ioClass), k > 0 else { return nil }
        return Int32(k)
    }

    /// the value for ioprio_set(2): class << 13 | priority
    public var ioprioValue: Int32? { classNumber.map { $0 << 13 | Int32(truncatingIfNeeded: priority) } }
}
