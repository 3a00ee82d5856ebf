// linux.seccomp: every action, argument comparisons, flags, Docker's default profile, SCMP_ACT_NOTIFY with a
// listener (the agent in this file), and a bad profile refused before anything is created.
import Foundation
import Glibc
import Testing

private func rule(_ names: [String], _ action: String, errnoRet: Int? = nil, args: [[String: Any]] = []) -> [String: Any] {
    var r: [String: Any] = ["names": names, "action": action]
    if let errnoRet { r["errnoRet"] = errnoRet }
    if !args.isEmpty { r["args"] = args }
    return r
}

private func arg(_ index: Int, _ op: String, _ value: UInt64, _ valueTwo: UInt64 = 0) -> [String: Any] {
    ["index": index, "op": op, "value": value, "valueTwo": valueTwo]
}

/// Allow everything but `rules`.
private func allowBut(_ rules: [[String: Any]]) -> [String: Any] {
    ["defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules]
}

private let sigsys: Int32 = 31

/// What is under --root besides the runtime's shared program cache ("@seccomp-cache" is not a valid id).
func containerState(in root: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0 != "@seccomp-cache" }
}

/// moby's profiles/seccomp/default.json as dockerd sends it to the runtime for amd64 and Docker's default
/// capabilities (no CAP_SYS_ADMIN): deny with EPERM, allow a list, conditional rules resolved.
private func dockerProfile() -> [String: Any] {
    let allow = """
        accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
        clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
        clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1
        epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
        exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown
        fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
        fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd
        getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer
        getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32
        getrlimit get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid
        getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy
        io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter
        io_uring_register io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
        lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
        madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2
        mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64
        mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep
        newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free
        pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
        pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
        recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
        rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
        rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
        sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
        sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
        semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid
        setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
        setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address
        setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
        socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs
        sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
        timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill
        truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice
        wait4 waitid waitpid write writev
        """.split(whereSeparator: \.isWhitespace).map(String.init)
    let personality: [[String: Any]] = [0, 8, 131072, 131080, 4294967295].map {
        rule(["personality"], "SCMP_ACT_ALLOW", args: [arg(0, "SCMP_CMP_EQ", $0)])
    }
    let syscalls: [[String: Any]] = [
        rule(allow, "SCMP_ACT_ALLOW"),
        rule(["process_vm_readv", "process_vm_writev", "ptrace"], "SCMP_ACT_ALLOW"),
        rule(["socket"], "SCMP_ACT_ALLOW", args: [arg(0, "SCMP_CMP_NE", 40)]),
    ] + personality + [
        rule(["arch_prctl"], "SCMP_ACT_ALLOW"),
        rule(["modify_ldt"], "SCMP_ACT_ALLOW"),
        rule(["chroot"], "SCMP_ACT_ALLOW"),
        rule(["clone"], "SCMP_ACT_ALLOW", args: [arg(0, "SCMP_CMP_MASKED_EQ", 2114060288)]),
        rule(["clone3"], "SCMP_ACT_ERRNO", errnoRet: 38),
    ]
    return ["defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": syscalls]
}

// MARK: - a seccomp agent (the listener at linux.seccomp.listenerPath)

private struct AgentMessage {
    var state: [String: Any]
    var fd: Int32
}

private final class SeccompAgent {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = try listenUnix(path)
    }

    deinit { close(fd) }

    /// One connection: the container process state JSON and the seccomp fd (SCM_RIGHTS).
    func receive(timeout: Double = 10) throws -> AgentMessage {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(timeout * 1000)) == 1 else { throw HarnessError("no connection to the seccomp agent") }
        let conn = accept(fd, nil, nil)
        guard conn >= 0 else { throw HarnessError("accept: \(String(cString: strerror(errno)))") }
        _ = fcntl(conn, F_SETFD, FD_CLOEXEC)
        defer { close(conn) }
        var received: Int32 = -1
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        var control = [UInt8](repeating: 0, count: 256)
        while true {
            var p2 = pollfd(fd: conn, events: Int16(POLLIN), revents: 0)
            guard poll(&p2, 1, Int32(timeout * 1000)) == 1 else { throw HarnessError("seccomp agent: read timed out") }
            let n = chunk.withUnsafeMutableBytes { dataBuf in
                control.withUnsafeMutableBytes { ctlBuf in
                    var iov = iovec(iov_base: dataBuf.baseAddress, iov_len: dataBuf.count)
                    return withUnsafeMutablePointer(to: &iov) { iovp in
                        var msg = msghdr()
                        msg.msg_iov = iovp
                        msg.msg_iovlen = 1
                        msg.msg_control = ctlBuf.baseAddress
                        msg.msg_controllen = ctlBuf.count
                        let n = recvmsg(conn, &msg, Int32(MSG_CMSG_CLOEXEC))
                        if n >= 0, msg.msg_controllen >= MemoryLayout<cmsghdr>.size {
                            let hdr = ctlBuf.load(as: cmsghdr.self)
                            if hdr.cmsg_level == SOL_SOCKET && hdr.cmsg_type == Int32(SCM_RIGHTS) {
                                received = ctlBuf.load(fromByteOffset: MemoryLayout<cmsghdr>.size, as: Int32.self)
                            }
                        }
                        return n
                    }
                }
            }
            if n < 0 { throw HarnessError("recvmsg: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            data += chunk[0..<n]
            // runc 1.1 keeps the connection open until it exits: one whole JSON document is the message
            if (try? JSONSerialization.jsonObject(with: Data(data))) != nil { break }
        }
        let state = try #require(try JSONSerialization.jsonObject(with: Data(data)) as? [String: Any],
                                 "container process state: \(String(decoding: data, as: UTF8.self))")
        return AgentMessage(state: state, fd: received)
    }
}

// struct seccomp_notif / seccomp_notif_resp (linux/seccomp.h) and their ioctls
private let notifSize = 80, notifRespSize = 24
private let SECCOMP_IOCTL_NOTIF_RECV: UInt = 0xC050_2100
private let SECCOMP_IOCTL_NOTIF_SEND: UInt = 0xC018_2101

/// Answers the next notification on `fd` with -`errno`; returns the syscall number it was for.
private func answerNotification(_ fd: Int32, errno err: Int32, timeout: Double = 10) throws -> Int32 {
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&p, 1, Int32(timeout * 1000)) == 1 else { throw HarnessError("no seccomp notification") }
    var notif = [UInt8](repeating: 0, count: notifSize)
    let r = notif.withUnsafeMutableBytes { ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, $0.baseAddress!) }
    if r < 0 { throw HarnessError("SECCOMP_IOCTL_NOTIF_RECV: \(String(cString: strerror(errno)))") }
    let id = notif.withUnsafeBytes { $0.load(as: UInt64.self) }
    let nr = notif.withUnsafeBytes { $0.load(fromByteOffset: 16, as: Int32.self) }
    var resp = [UInt8](repeating: 0, count: notifRespSize)
    resp.withUnsafeMutableBytes { b in
        b.storeBytes(of: id, as: UInt64.self)
        b.storeBytes(of: Int64(0), toByteOffset: 8, as: Int64.self)
        b.storeBytes(of: -err, toByteOffset: 16, as: Int32.self)
    }
    let s = resp.withUnsafeMutableBytes { ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, $0.baseAddress!) }
    if s < 0 { throw HarnessError("SECCOMP_IOCTL_NOTIF_SEND: \(String(cString: strerror(errno)))") }
    return nr
}

extension Integration {
    @Suite(.serialized) struct Seccomp {
        @Test func noProfileMeansNoFilter() throws {
            let r = try runProbe(["status", "Seccomp"])
            #expect(expectOK(r).trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(r)")
        }

        @Test func filterModeInProcStatus() throws {
            let r = try runProbe(["status", "Seccomp"]) { $0[path: "linux.seccomp"] = allowBut([rule(["mkdir"], "SCMP_ACT_ERRNO")]) }
            #expect(expectOK(r).trimmingCharacters(in: .whitespacesAndNewlines) == "2", "\(r)")
        }

        /// SCMP_ACT_ERRNO with errnoRet (EPERM when absent), loaded both late (noNewPrivileges) and before the
        /// capabilities are dropped (without it).
        @Test(arguments: [(nil, "EPERM", true), (38, "ENOSYS", true), (nil, "EPERM", false), (13, "EACCES", false)])
        func errnoAction(errnoRet: Int?, expected: String, noNewPrivileges: Bool) throws {
            let r = try runProbe(["hostname"]) {
                $0[path: "process.noNewPrivileges"] = noNewPrivileges
                $0[path: "linux.seccomp"] = allowBut([rule(["uname"], "SCMP_ACT_ERRNO", errnoRet: errnoRet)])
            }
            #expect(r.status == 1 && r.stderr.contains("uname") && r.stderr.contains(expected), "\(r)")
        }

        @Test(arguments: ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"])
        func killedBySIGSYS(action: String) throws {
            let r = try runProbe(["hostname"]) { $0[path: "linux.seccomp"] = allowBut([rule(["uname"], action)]) }
            #expect(r.status == 128 + sigsys, "\(r)")
            #expect(!r.stdout.contains("berth-it"), "\(r)")
        }

        /// No tracer attached: SCMP_ACT_TRACE fails the syscall with ENOSYS. SCMP_ACT_LOG allows it.
        @Test func traceAndLog() throws {
            let traced = try runProbe(["cwd"]) { $0[path: "linux.seccomp"] = allowBut([rule(["getcwd"], "SCMP_ACT_TRACE", errnoRet: 5)]) }
            #expect(traced.status == 1 && traced.stderr.contains("ENOSYS"), "\(traced)")
            let logged = try runProbe(["cwd"]) { $0[path: "linux.seccomp"] = allowBut([rule(["getcwd"], "SCMP_ACT_LOG")]) }
            #expect(expectOK(logged).trimmingCharacters(in: .whitespacesAndNewlines) == "/", "\(logged)")
        }

        /// Names libseccomp does not know are ignored; a rule whose action is the default action is skipped.
        @Test func unknownNamesAndDefaultActionRules() throws {
            let r = try runProbe(["cwd"]) {
                $0[path: "linux.seccomp"] = allowBut([
                    rule(["no_such_syscall_berth", "getcwd"], "SCMP_ACT_ERRNO"),
                    rule(["read", "write"], "SCMP_ACT_ALLOW"),
                ])
            }
            #expect(r.status == 1 && r.stderr.contains("getcwd") && r.stderr.contains("EPERM"), "\(r)")
        }

        /// Default deny with an allowlist (Docker's default profile): a shell works, unshare and mount get EPERM
        /// even with CAP_SYS_ADMIN (which the same container without the profile can use).
        @Test(arguments: [false, true])
        func dockerDefaultProfile(noNewPrivileges: Bool) throws {
            let script = "echo hello; ls / >/dev/null && echo ls=ok; unshare -m true; echo unshare=$?; "
                + "mount -t tmpfs none /tmp; echo mount=$?; cat /proc/self/status | grep ^Seccomp:"
            func run(profile: [String: Any]?) throws -> ProcResult {
                try withBundle(args: ["/bin/sh", "-c", script], edit: { c in
                    c[path: "process.noNewPrivileges"] = noNewPrivileges
                    for set in ["bounding", "effective", "permitted"] { c.append("CAP_SYS_ADMIN", to: "process.capabilities.\(set)") }
                    c[path: "linux.seccomp"] = profile
                }) { b in try b.run() }
            }
            let plain = try run(profile: nil)
            #expect(plain.lines.contains("unshare=0") && plain.lines.contains("mount=0"), "\(plain)")
            let r = try run(profile: dockerProfile())
            let out = expectOK(r)
            #expect(r.lines.contains("hello") && r.lines.contains("ls=ok"), "\(r)")
            #expect(r.lines.contains("unshare=1") && r.lines.contains("mount=1"), "\(r)")
            #expect(r.stderr.contains("Operation not permitted") || r.stderr.contains("permission denied"), "\(r)")
            #expect(out.contains("Seccomp:\t2"), "\(r)")
        }

        /// Comparisons on two arguments AND together; two on the same argument become separate rules (runc), so
        /// either one matching denies.
        @Test func argumentComparisons() throws {
            let oCreat: UInt64 = 0o100, oTrunc: UInt64 = 0o1000
            // probe write: open(O_WRONLY|O_CREAT|O_TRUNC, 0644); busybox touch: open(O_WRONLY|O_CREAT|O_NONBLOCK|O_NOCTTY, 0666)
            let script = "/probe write /dev/shm/a x; echo write=$?; touch /dev/shm/b; echo touch=$?; /probe cat /proc/self/comm"
            let and = try withBundle(args: ["/bin/sh", "-c", script], edit: {
                $0[path: "linux.seccomp"] = allowBut([rule(["openat", "open"], "SCMP_ACT_ERRNO",
                    args: [arg(2, "SCMP_CMP_MASKED_EQ", oCreat, oCreat), arg(3, "SCMP_CMP_EQ", 0o644)])])
            }) { b in try b.run() }
            #expect(and.lines == ["write=1", "touch=0", "probe"], "\(and)")
            let or = try withBundle(args: ["/bin/sh", "-c", script], edit: {
                $0[path: "linux.seccomp"] = allowBut([rule(["openat", "open"], "SCMP_ACT_ERRNO",
                    args: [arg(2, "SCMP_CMP_MASKED_EQ", oTrunc, oTrunc), arg(2, "SCMP_CMP_MASKED_EQ", oCreat, oCreat)])])
            }) { b in try b.run() }
            #expect(or.lines == ["write=1", "touch=1", "probe"], "\(or)")
            // the other operators, each on uname's only argument (a pointer: never 0, below 2^63)
            for (op, denies) in [("SCMP_CMP_NE", true), ("SCMP_CMP_LT", false), ("SCMP_CMP_LE", false), ("SCMP_CMP_EQ", false),
                                 ("SCMP_CMP_GE", true), ("SCMP_CMP_GT", true)] {
                let r = try runProbe(["hostname"]) {
                    $0[path: "linux.seccomp"] = allowBut([rule(["uname"], "SCMP_ACT_ERRNO", args: [arg(0, op, 0)])])
                }
                #expect(r.ok == !denies, "\(op): \(r)")
            }
        }

        @Test(arguments: [["SECCOMP_FILTER_FLAG_TSYNC"], ["SECCOMP_FILTER_FLAG_LOG"], ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                          ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"], []])
        func flags(_ flags: [String]) throws {
            let r = try runProbe(["status", "Seccomp"]) {
                var p = allowBut([rule(["mkdir"], "SCMP_ACT_ERRNO")])
                p["flags"] = flags
                $0[path: "linux.seccomp"] = p
            }
            #expect(expectOK(r).trimmingCharacters(in: .whitespacesAndNewlines) == "2", "\(r)")
        }

        /// SCMP_ACT_NOTIFY: the runtime connects to listenerPath and sends the container process state with the
        /// notify fd; the agent answers the container's mkdir with EXDEV.
        @Test(arguments: [true, false])
        func notifyListener(noNewPrivileges: Bool) throws {
            try withBundle(args: ["/bin/sh", "-c", "mkdir /dev/shm/d; echo mkdir=$?"]) { b in
                let agent = try SeccompAgent(path: b.dir + "/agent.sock")
                b.config[path: "process.noNewPrivileges"] = noNewPrivileges
                b.config[path: "linux.seccomp"] = [
                    "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.path, "listenerMetadata": "berth test",
                    "syscalls": [rule(["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY")],
                ] as [String: Any]
                try b.writeConfig()
                let run = try b.spawn(["run", "--bundle", b.path, b.id])
                let msg = try agent.receive()
                defer { close(msg.fd) }
                #expect(msg.fd >= 0)
                #expect(msg.state["ociVersion"] is String)
                #expect(msg.state["fds"] as? [String] == ["seccompFd"], "\(msg.state)")
                #expect(msg.state["metadata"] as? String == "berth test", "\(msg.state)")
                let state = try #require(msg.state["state"] as? [String: Any], "\(msg.state)")
                #expect(state["id"] as? String == b.id, "\(state)")
                #expect(state["status"] as? String == "creating", "\(state)")
                #expect(state["bundle"] as? String == b.path, "\(state)")
                let pid = try #require(msg.state["pid"] as? Int, "\(msg.state)")
                #expect(state["pid"] as? Int == pid, "\(state)")
                let nr = try answerNotification(msg.fd, errno: EXDEV)
                #expect(nr == 83 || nr == 258, "mkdir or mkdirat, got \(nr)")
                let r = run.wait()
                #expect(r.lines == ["mkdir=1"], "\(r)")
                #expect(r.stderr.contains("cross-device"), "\(r)")
            }
        }

        @Test func notifyWithoutAgentFails() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                b.config[path: "linux.seccomp"] = [
                    "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": b.dir + "/nobody.sock",
                    "syscalls": [rule(["mkdir"], "SCMP_ACT_NOTIFY")],
                ] as [String: Any]
                let r = try b.run()
                #expect(r.status != 0 && r.stderr.contains("nobody.sock"), "\(r)")
                #expect(containerState(in: b.root).isEmpty, "state left in \(b.root)")
            }
        }

        /// A bad profile is refused with the field named, before anything exists (no state dir under --root).
        @Test(arguments: [
            (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}, {"names": ["getcwd"], "action": "SCMP_ACT_BOGUS"}]}"#,
             #"linux.seccomp.syscalls[1].action: unknown action "SCMP_ACT_BOGUS""#),
            (#"{"defaultAction": "SCMP_ACT_NOPE"}"#, #"linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE""#),
            (#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}"#,
             #"linux.seccomp.architectures[0]: unknown architecture "SCMP_ARCH_VAX""#),
            (#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}"#,
             #"linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NOPE""#),
            (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}"#,
             #"linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_ALMOST""#),
            (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}"#,
             "linux.seccomp.syscalls[0].errnoRet"),
            (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
             "linux.seccomp.listenerPath"),
        ])
        func badProfileLeavesNothing(profile: String, message: String) throws {
            try withBundle(args: ["/probe", "true"]) { b in
                b.config[path: "linux.seccomp"] = try JSONSerialization.jsonObject(with: Data(profile.utf8))
                let r = try b.run()
                #expect(r.status == 1, "\(r)")
                #expect(r.stderr.contains(message.replacingOccurrences(of: "\"", with: "\\\"")) || r.stderr.contains(message), "\(r)")
                #expect(containerState(in: b.root).isEmpty, "state left in \(b.root)")
            }
        }

        /// exec gets the container's filter too (runc applies config.Seccomp to every process).
        @Test func execGetsTheContainerFilter() throws {
            try withBundle(args: ["/probe", "pause"], edit: {
                $0[path: "linux.seccomp"] = allowBut([rule(["uname"], "SCMP_ACT_ERRNO")])
            }) { b in
                expectOK(try b.run(extraArgs: ["--detach"]))
                let status = try b.rt(["exec", b.id, "/probe", "status", "Seccomp"])
                #expect(expectOK(status).trimmingCharacters(in: .whitespacesAndNewlines) == "2", "\(status)")
                let denied = try b.rt(["exec", b.id, "/probe", "hostname"])
                #expect(denied.status == 1 && denied.stderr.contains("EPERM"), "\(denied)")
            }
        }

        /// An exec'd process gets its own notify fd, sent with the state of the running container.
        @Test func execNotify() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                let agent = try SeccompAgent(path: b.dir + "/agent.sock")
                b.config[path: "linux.seccomp"] = [
                    "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.path,
                    "syscalls": [rule(["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY")],
                ] as [String: Any]
                try b.writeConfig()
                let create = try b.spawn(["run", "--detach", "--bundle", b.path, b.id])
                let first = try agent.receive()
                close(first.fd)
                expectOK(create.wait())
                let initPid = try #require(first.state["pid"] as? Int, "\(first.state)")
                let exec = try b.spawn(["exec", b.id, "/bin/sh", "-c", "mkdir /dev/shm/d; echo mkdir=$?"])
                let msg = try agent.receive()
                defer { close(msg.fd) }
                let state = try #require(msg.state["state"] as? [String: Any], "\(msg.state)")
                #expect(state["status"] as? String == "running", "\(state)")
                #expect(state["pid"] as? Int == initPid, "\(state)")
                #expect(state["id"] as? String == b.id, "\(state)")
                #expect(msg.state["pid"] as? Int != initPid, "\(msg.state)")
                _ = try answerNotification(msg.fd, errno: EXDEV)
                let r = exec.wait()
                #expect(r.lines == ["mkdir=1"] && r.stderr.contains("cross-device"), "\(r)")
            }
        }
    }
}
