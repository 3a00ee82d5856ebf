// linux.seccomp: the spec's raw JSON checked field by field and built into a libseccomp filter before the
// fork (CLinux bl_seccomp.h), with runc's semantics; and the parent's half of SCMP_ACT_NOTIFY (the listener
// fd handed to the agent at listenerPath with the container process state).
#if canImport(Glibc)
import Glibc
#endif
import CLinux
import OCI

public enum Seccomp {
    static let actions: [String: bl_seccomp_action] = [
        "SCMP_ACT_KILL": BL_SECCOMP_ACT_KILL_THREAD, "SCMP_ACT_KILL_THREAD": BL_SECCOMP_ACT_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": BL_SECCOMP_ACT_KILL_PROCESS, "SCMP_ACT_TRAP": BL_SECCOMP_ACT_TRAP,
        "SCMP_ACT_ERRNO": BL_SECCOMP_ACT_ERRNO, "SCMP_ACT_TRACE": BL_SECCOMP_ACT_TRACE,
        "SCMP_ACT_LOG": BL_SECCOMP_ACT_LOG, "SCMP_ACT_ALLOW": BL_SECCOMP_ACT_ALLOW,
        "SCMP_ACT_NOTIFY": BL_SECCOMP_ACT_NOTIFY,
    ]
    static let operators: [String: bl_seccomp_op] = [
        "SCMP_CMP_NE": BL_SECCOMP_CMP_NE, "SCMP_CMP_LT": BL_SECCOMP_CMP_LT, "SCMP_CMP_LE": BL_SECCOMP_CMP_LE,
        "SCMP_CMP_EQ": BL_SECCOMP_CMP_EQ, "SCMP_CMP_GE": BL_SECCOMP_CMP_GE, "SCMP_CMP_GT": BL_SECCOMP_CMP_GT,
        "SCMP_CMP_MASKED_EQ": BL_SECCOMP_CMP_MASKED_EQ,
    ]
    static let flags: [(name: String, flag: bl_seccomp_flag)] = [
        ("SECCOMP_FILTER_FLAG_TSYNC", BL_SECCOMP_FLAG_TSYNC), ("SECCOMP_FILTER_FLAG_LOG", BL_SECCOMP_FLAG_LOG),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", BL_SECCOMP_FLAG_SPEC_ALLOW),
        ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", BL_SECCOMP_FLAG_WAIT_KILLABLE_RECV),
    ]

    /// The flags this libseccomp and kernel can set (features' supportedFlags).
    public static var supportedFlags: [String] {
        let s = bl_seccomp_supported_flags()
        return flags.filter { s & $0.flag.rawValue != 0 }.map(\.name)
    }

    /// libseccomp's version ("2.5.4").
    public static var libseccompVersion: String {
        var buf = [CChar](repeating: 0, count: 32)
        bl_seccomp_version(&buf, buf.count)
        return String(cBuffer: buf)
    }

    /// Checks linux.seccomp and builds its filter (nothing is loaded). nil when the profile is empty (no
    /// defaultAction and no syscalls), which runc reads as no seccomp.
    public static func filter(_ json: JSON) throws(LinuxError) -> UnsafePointer<bl_seccomp>? {
        let p = "linux.seccomp"
        guard json.objectValue != nil else { throw invalid(p, "expected an object") }
        let defaultName = try string(json["defaultAction"], "\(p).defaultAction")
        let entries = try array(json["syscalls"], "\(p).syscalls")
        if (defaultName ?? "").isEmpty && entries.isEmpty { return nil }
        guard let defaultName, !defaultName.isEmpty else { throw invalid("\(p).defaultAction", "required") }
        guard let defaultAction = actions[defaultName] else {
            throw invalid("\(p).defaultAction", "unknown action \"\(defaultName)\"")
        }
        if defaultAction == BL_SECCOMP_ACT_NOTIFY {
            throw invalid("\(p).defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
        }
        let defaultErrno = try errnoRet(json["defaultErrnoRet"], "\(p).defaultErrnoRet", action: defaultName)

        var archs: [String] = []
        for (i, a) in try array(json["architectures"], "\(p).architectures").enumerated() {
            guard let name = a.stringValue else { throw invalid("\(p).architectures[\(i)]", "expected a string") }
            archs.append(name)
        }

        var flagBits: UInt32 = 0
        let flagsGiven = json["flags"].map { !$0.isNull } ?? false
        for (i, f) in try array(json["flags"], "\(p).flags").enumerated() {
            guard let name = f.stringValue else { throw invalid("\(p).flags[\(i)]", "expected a string") }
            guard let flag = flags.first(where: { $0.name == name }) else {
                throw invalid("\(p).flags[\(i)]", "unknown flag \"\(name)\"")
            }
            flagBits |= flag.flag.rawValue
        }

        let listenerPath = try string(json["listenerPath"], "\(p).listenerPath").flatMap { $0.isEmpty ? nil : $0 }
        let listenerMetadata = try string(json["listenerMetadata"], "\(p).listenerMetadata").flatMap { $0.isEmpty ? nil : $0 }
        if let lp = listenerPath, !lp.hasPrefix("/") { throw invalid("\(p).listenerPath", "\"\(lp)\" is not an absolute path") }
        if listenerMetadata != nil && listenerPath == nil {
            throw invalid("\(p).listenerMetadata", "set without linux.seccomp.listenerPath")
        }

        var rules: [bl_seccomp_rule] = []
        var usesNotify = false
        for (i, e) in entries.enumerated() {
            let q = "\(p).syscalls[\(i)]"
            guard e.objectValue != nil else { throw invalid(q, "expected an object") }
            guard let actionName = try string(e["action"], "\(q).action") else { throw invalid("\(q).action", "required") }
            guard let action = actions[actionName] else { throw invalid("\(q).action", "unknown action \"\(actionName)\"") }
            let errno = try errnoRet(e["errnoRet"], "\(q).errnoRet", action: actionName)
            let names = try array(e["names"], "\(q).names")
            if names.isEmpty { throw invalid("\(q).names", "must name at least one syscall") }
            var args: [bl_seccomp_arg] = []
            for (j, a) in try array(e["args"], "\(q).args").enumerated() {
                let r = "\(q).args[\(j)]"
                guard a.objectValue != nil else { throw invalid(r, "expected an object") }
                guard let index = try uint(a["index"], "\(r).index") else { throw invalid("\(r).index", "required") }
                if index > 5 { throw invalid("\(r).index", "\(index) is not a syscall argument (0 to 5)") }
                guard let value = try uint(a["value"], "\(r).value") else { throw invalid("\(r).value", "required") }
                let valueTwo = try uint(a["valueTwo"], "\(r).valueTwo") ?? 0
                guard let opName = try string(a["op"], "\(r).op") else { throw invalid("\(r).op", "required") }
                guard let op = operators[opName] else { throw invalid("\(r).op", "unknown operator \"\(opName)\"") }
                args.append(bl_seccomp_arg(index: UInt32(index), op: op.rawValue, value: value, value_two: valueTwo))
            }
            let cArgs = CMemory.array(args)
            for (j, n) in names.enumerated() {
                guard let name = n.stringValue, !name.isEmpty else { throw invalid("\(q).names[\(j)]", "expected a syscall name") }
                if action == BL_SECCOMP_ACT_NOTIFY {
                    // the runtime hands the notify fd over with sendmsg: the agent could never answer it
                    if name == "sendmsg" { throw invalid(q, "SCMP_ACT_NOTIFY cannot be used for sendmsg") }
                    usesNotify = true
                }
                rules.append(bl_seccomp_rule(name: CMemory.string(name), action: action.rawValue, errno_ret: errno,
                                             args: cArgs, nargs: Int32(args.count), entry: Int32(i)))
            }
        }
        if usesNotify && listenerPath == nil {
            throw invalid("\(p).listenerPath", "required when a rule uses SCMP_ACT_NOTIFY")
        }

        // the generated program is cached by profile: libseccomp's rule building and BPF generation
        // cost ~20 ms for Docker's default profile, on every create and exec
        let key = cacheKey(json)
        if let hit = cachedProgram(key) {
            guard let f = bl_seccomp_from_bpf(hit.bpf, hit.count, hit.flags, hit.notify ? 1 : 0,
                                              CMemory.optionalString(listenerPath), CMemory.optionalString(listenerMetadata)) else {
                throw LinuxError(.system, "\(p): out of memory")
            }
            return UnsafePointer(f)
        }

        var cfg = bl_seccomp_config()
        cfg.default_action = defaultAction.rawValue
        cfg.default_errno_ret = defaultErrno
        cfg.archs = CMemory.constStrings(archs)
        cfg.narchs = Int32(archs.count)
        cfg.flags = flagBits
        cfg.flags_given = flagsGiven ? 1 : 0
        cfg.rules = CMemory.array(rules)
        cfg.nrules = Int32(rules.count)
        cfg.listener_path = CMemory.optionalString(listenerPath)
        cfg.listener_metadata = CMemory.optionalString(listenerMetadata)
        var err = [CChar](repeating: 0, count: 1024)
        guard let f = bl_seccomp_build(&cfg, &err, err.count) else {
            let text = String(cBuffer: err)
            throw LinuxError(.invalidArgument, text)
        }
        if bl_seccomp_export(f, &err, err.count) != 0 {
            let text = String(cBuffer: err)
            throw LinuxError(.system, text)
        }
        storeProgram(key, f)
        return UnsafePointer(f)
    }

    // MARK: field readers (null reads as absent)

    static func invalid(_ field: String, _ why: String) -> LinuxError { LinuxError(.invalidArgument, "\(field): \(why)") }

    static func string(_ v: JSON?, _ field: String) throws(LinuxError) -> String? {
        guard let v, !v.isNull else { return nil }
        guard let s = v.stringValue else { throw invalid(field, "expected a string") }
        return s
    }

    static func array(_ v: JSON?, _ field: String) throws(LinuxError) -> [JSON] {
        guard let v, !v.isNull else { return [] }
        guard let a = v.arrayValue else { throw invalid(field, "expected an array") }
        return a
    }

    static func uint(_ v: JSON?, _ field: String) throws(LinuxError) -> UInt64? {
        guard let v, !v.isNull else { return nil }
        guard let n = v.uint64Value else { throw invalid(field, "expected an unsigned 64-bit integer") }
        return n
    }

    /// errnoRet of an action: EPERM unless given; only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one.
    static func errnoRet(_ v: JSON?, _ field: String, action: String) throws(LinuxError) -> UInt32 {
        guard let n = try uint(v, field) else { return UInt32(EPERM) }
        guard action == "SCMP_ACT_ERRNO" || action == "SCMP_ACT_TRACE" else {
            throw invalid(field, "\(action) takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")
        }
        guard n <= 0xffff else { throw invalid(field, "\(n) is out of range (0 to 65535)") }
        return UInt32(n)
    }
}

// MARK: SCMP_ACT_NOTIFY, the parent's half

extension SyncChannel {
    /// When the process's filter has NOTIFY rules: receives the notify fd the child sends right after
    /// loading it, hands it to the agent at listenerPath with the container process state
    /// (config-linux.md, as runc: one connection, the JSON and the fd in one sendmsg), then lets the child go on.
    /// - pid: the process the filter is loaded in; state: the container's state JSON.
    func handOffSeccompFD(_ filter: UnsafePointer<bl_seccomp>?, pid: Int32, state: String) throws(LinuxError) {
        guard let f = filter, f.pointee.notify != 0 else { return }
        var m = bl_msg()
        var fd: Int32 = -1
        if bl_msg_recv_fd(self.fd.raw, &m, &fd) < 0 {
            let e = errno
            if e == 0 { throw LinuxError(.system, "load seccomp filter: container process exited unexpectedly") }
            throw LinuxError.sys("load seccomp filter: receive from container process", errno: e)
        }
        let notifyFD = OwnedFD(taking: fd)
        if let e = m.childError { throw e }
        guard m.type == Int32(BL_MSG_SECCOMP_FD.rawValue), notifyFD.raw >= 0 else {
            throw LinuxError(.system, "load seccomp filter: expected the seccomp notify fd, got message \(m.type)")
        }
        let path = String(cString: f.pointee.listener_path)
        var fields: [(key: String, value: JSON)] = [
            ("ociVersion", .string("1.0.2")), ("fds", .strings(["seccompFd"])), ("pid", .number(pid)),
        ]
        if let md = f.pointee.listener_metadata { fields.append(("metadata", .string(String(cString: md)))) }
        fields.append(("state", (try? JSON.parse(state)) ?? .object([])))
        let text = JSON.object(fields).serialized()
        let conn = bl_connect_unix(path)
        if conn < 0 {
            let e = errno
            throw LinuxError.sys("connect to the seccomp agent at \(path) (linux.seccomp.listenerPath)", errno: e)
        }
        let connFD = OwnedFD(taking: conn)
        if bl_send_fd(connFD.raw, notifyFD.raw, text) < 0 {
            let e = errno
            throw LinuxError.sys("send the seccomp notify fd to \(path)", errno: e)
        }
        try send(BL_MSG_GO)
    }
}
