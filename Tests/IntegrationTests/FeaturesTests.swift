// What config.json asks for, checked from inside the container with the probe.
import Foundation
import Glibc
import Testing

/// Runs `/bin/sh -c SCRIPT` (busybox) in the container; for checks that need several probe calls.
private func runShell(_ script: String, edit: (inout [String: Any]) throws -> Void = { _ in }) throws -> ProcResult {
    try withBundle(args: ["/bin/sh", "-c", script], edit: edit) { b in try b.run() }
}

private func lines(_ s: String) -> [String] { s.split(separator: "\n").map(String.init) }

/// The mountinfo line (fields split) whose mount point is `mountPoint`, from `probe mounts` output; last wins.
private func mountinfo(_ text: String, at mountPoint: String) -> [String]? {
    lines(text).map { $0.split(separator: " ").map(String.init) }.last { $0.count > 4 && Host.unescape($0[4]) == mountPoint }
}

private func options(_ probeOutput: String) -> Set<String> {
    Set(probeOutput.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").map(String.init))
}

extension Integration {
    @Suite(.serialized) struct Namespaces {
        /// config type → /proc/self/ns name
        static let types: [(String, String)] = [("pid", "pid"), ("network", "net"), ("mount", "mnt"), ("ipc", "ipc"),
                                                ("uts", "uts"), ("cgroup", "cgroup")]

        @Test(arguments: Namespaces.types.map { $0.0 })
        func requestedNamespaceIsNew(type: String) throws {
            let name = Namespaces.types.first { $0.0 == type }!.1
            let r = try runProbe(["ns", name]) { $0.addNamespace(type) }
            let inside = expectOK(r).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(inside.hasPrefix(name + ":["), "\(r)")
            #expect(inside != Host.ns(name), "\(type) namespace differs from the host's")
        }

        @Test(arguments: ["network", "ipc", "uts"])
        func namespaceNotRequestedIsShared(type: String) throws {
            let name = Namespaces.types.first { $0.0 == type }!.1
            let r = try runProbe(["ns", name]) { c in
                c.removeNamespace(type)
                if type == "uts" { c["hostname"] = nil }
            }
            #expect(expectOK(r).trimmingCharacters(in: .whitespacesAndNewlines) == Host.ns(name))
        }

        @Test func joinsNamespaceByPath() throws {
            try withBundle(args: ["/probe", "pause"]) { first in
                expectOK(try first.run(extraArgs: ["--detach"]))
                let pid = try #require(try first.state()?["pid"] as? Int)
                let r = try runProbe(["ns", "net", "ipc"]) { c in
                    c.addNamespace("network", path: "/proc/\(pid)/ns/net")
                    c.addNamespace("ipc", path: "/proc/\(pid)/ns/ipc")
                }
                let want = ["net", "ipc"].map {
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\($0)")) ?? "?"
                }
                #expect(lines(expectOK(r)) == want)
            }
        }

        @Test func userNamespaceWithMappings() throws {
            let r = try runShell("/probe ns user; /probe cat /proc/self/uid_map; /probe cat /proc/self/gid_map; /probe ids") { c in
                c.addNamespace("user")
                c[path: "linux.uidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
                c[path: "linux.gidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
            }
            let out = lines(expectOK(r))
            try #require(out.count == 4, "\(r)")
            #expect(out[0] != Host.ns("user"))
            #expect(out[1].split(separator: " ") == ["0", "100000", "65536"])
            #expect(out[2].split(separator: " ") == ["0", "100000", "65536"])
            #expect(out[3].hasPrefix("uid=0 gid=0"))
        }

        @Test(.enabled(if: RuntimeInfo.supportsNamespace("time"), "the runtime's features list no time namespace"))
        func timeNamespaceWithOffsets() throws {
            let r = try runShell("/probe ns time; /probe cat /proc/self/timens_offsets") { c in
                c.addNamespace("time")
                c[path: "linux.timeOffsets"] = ["monotonic": ["secs": 86400, "nanosecs": 0]]
            }
            let out = lines(expectOK(r))
            try #require(out.count >= 2, "\(r)")
            #expect(out[0] != Host.ns("time"))
            #expect(out.contains { $0.split(separator: " ").map(String.init) == ["monotonic", "86400", "0"] }, "\(r)")
        }

        @Test func hostname() throws {
            let r = try runProbe(["hostname"]) { $0["hostname"] = "it-host" }
            #expect(expectOK(r) == "it-host\n")
        }

        @Test func domainname() throws {
            let r = try runProbe(["domainname"]) { $0["domainname"] = "it.example" }
            withKnownIssue("runc 1.1 ignores domainname (runtime-spec 1.1 field, honoured by berth)") {
                #expect(expectOK(r) == "it.example\n")
            } when: { RuntimeInfo.isRunc11 }
        }
    }

    @Suite(.serialized) struct Process {
        @Test func userAndAdditionalGids() throws {
            let r = try runProbe(["ids"]) { $0[path: "process.user"] = ["uid": 1000, "gid": 1001, "additionalGids": [2000, 3000]] }
            #expect(expectOK(r) == "uid=1000 gid=1001 euid=1000 egid=1001 groups=2000,3000\n")
        }

        @Test func rootUserHasNoExtraGroups() throws {
            let r = try runProbe(["ids"])
            #expect(expectOK(r) == "uid=0 gid=0 euid=0 egid=0 groups=\n")
        }

        @Test func umask() throws {
            let r = try runProbe(["umask"]) { $0[path: "process.user.umask"] = 0o027 }
            #expect(expectOK(r) == "0027\n")
        }

        @Test func defaultUmask() throws {
            #expect(expectOK(try runProbe(["umask"])) == "0022\n")
        }

        @Test func env() throws {
            let r = try runProbe(["env"]) { $0[path: "process.env"] = ["FOO=bar", "PATH=/bin", "WITH_EQUALS=a=b"] }
            let env = lines(expectOK(r))
            #expect(env.contains("FOO=bar"))
            #expect(env.contains("PATH=/bin"))
            #expect(env.contains("WITH_EQUALS=a=b"))
            #expect(!env.contains { $0.hasPrefix("BERTH_") }, "nothing of the runtime's environment leaks: \(env)")
        }

        @Test func cwd() throws {
            let r = try runProbe(["cwd"]) { $0[path: "process.cwd"] = "/tmp" }
            #expect(expectOK(r) == "/tmp\n")
        }

        @Test func missingCwdIsCreated() throws {
            let r = try runProbe(["cwd"]) { $0[path: "process.cwd"] = "/new/dir" }
            #expect(expectOK(r) == "/new/dir\n")
        }

        @Test func argsArePassedVerbatim() throws {
            let r = try runProbe(["echo", "a b", "", "$HOME", "ü"])
            #expect(expectOK(r) == "a b  $HOME ü\n")
        }

        @Test func rlimitNofileLowered() throws {
            let r = try runProbe(["rlimit", "NOFILE"]) {
                $0[path: "process.rlimits"] = [["type": "RLIMIT_NOFILE", "soft": 100, "hard": 200]]
            }
            #expect(expectOK(r) == "100 200\n")
        }

        @Test func rlimitCore() throws {
            let r = try runProbe(["rlimit", "CORE"]) {
                $0[path: "process.rlimits"] = [["type": "RLIMIT_CORE", "soft": 0, "hard": 0]]
            }
            #expect(expectOK(r) == "0 0\n")
        }

        /// Raising a hard limit needs CAP_SYS_RESOURCE (bit 24), which this machine kind's root may lack.
        @Test func rlimitAboveHostHardLimit() throws {
            var host = rlimit()
            getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &host)
            let raised = UInt64(host.rlim_max) + 1000
            try withBundle(args: ["/probe", "rlimit", "NOFILE"], edit: {
                $0[path: "process.rlimits"] = [["type": "RLIMIT_NOFILE", "soft": raised, "hard": raised]]
            }) { b in
                let r = try b.run()
                if Host.hasCapability(24) {
                    #expect(expectOK(r) == "\(raised) \(raised)\n")
                } else {
                    #expect(!r.ok && !r.timedOut, "\(r)")
                    #expect(!r.errorLines.isEmpty, "a message says why: \(r)")
                    #expect(Host.processes(rootedUnder: b.dir).isEmpty, "nothing left running")
                    let left = (try? FileManager.default.contentsOfDirectory(atPath: b.root)) ?? []
                    #expect(!left.contains(b.id), "no state left for the failed run")
                }
            }
        }

        @Test(arguments: [("CapEff", "0000000000000021"), ("CapPrm", "0000000000000021"), ("CapBnd", "0000000000000021"),
                          ("CapInh", "0000000000000000"), ("CapAmb", "0000000000000000")])
        func capabilities(field: String, want: String) throws {
            let r = try runProbe(["status", field]) {
                $0[path: "process.capabilities"] = ["bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_CHOWN", "CAP_KILL"],
                                                    "permitted": ["CAP_CHOWN", "CAP_KILL"]]
            }
            #expect(expectOK(r) == want + "\n")
        }

        @Test func templateCapabilities() throws {
            // CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10); ambient needs inheritable: none
            let r = try runShell("/probe status CapEff; /probe status CapBnd; /probe status CapAmb")
            #expect(lines(expectOK(r)) == ["0000000020000420", "0000000020000420", "0000000000000000"])
        }

        @Test func ambientCapabilitiesForNonRoot() throws {
            let r = try runShell("/probe status CapEff; /probe status CapAmb; /probe status CapInh") { c in
                c[path: "process.user"] = ["uid": 1000, "gid": 1000]
                c[path: "process.capabilities"] = ["bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                                                   "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]]
            }
            #expect(lines(expectOK(r)) == ["0000000000000020", "0000000000000020", "0000000000000020"])
        }

        @Test func nonRootWithoutAmbientHasNoCapabilities() throws {
            let r = try runProbe(["status", "CapEff"]) { c in
                c[path: "process.user"] = ["uid": 1000, "gid": 1000]
                c[path: "process.capabilities"] = ["bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]]
            }
            #expect(expectOK(r) == "0000000000000000\n")
        }

        @Test(arguments: [true, false])
        func noNewPrivileges(on: Bool) throws {
            let r = try runProbe(["status", "NoNewPrivs"]) { $0[path: "process.noNewPrivileges"] = on }
            #expect(expectOK(r) == (on ? "1\n" : "0\n"))
        }

        @Test func oomScoreAdj() throws {
            let r = try runProbe(["oom-score-adj"]) { $0[path: "process.oomScoreAdj"] = 500 }
            #expect(expectOK(r) == "500\n")
        }

        /// A negative value needs CAP_SYS_RESOURCE.
        @Test func negativeOomScoreAdj() throws {
            let r = try runProbe(["oom-score-adj"]) { $0[path: "process.oomScoreAdj"] = -500 }
            if Host.hasCapability(24) {
                #expect(expectOK(r) == "-500\n")
            } else {
                #expect(!r.ok && !r.errorLines.isEmpty, "\(r)")
            }
        }
    }

    @Suite(.serialized) struct Filesystem {
        /// The template's masked files that this kernel has (/proc/kcore is not on every kernel).
        static let maskedFiles = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/latency_stats"]
            .filter { FileManager.default.fileExists(atPath: $0) }

        @Test func maskedFilesAreDevNull() throws {
            let files = Filesystem.maskedFiles
            try #require(!files.isEmpty, "no maskable /proc file on this kernel")
            let r = try runShell(files.map { "/probe stat \($0); /probe cat \($0)" }.joined(separator: "; ") + "; echo end")
            #expect(lines(expectOK(r)) == files.map { _ in "chr 0666 0 0 1:3" } + ["end"])
        }

        @Test func maskedDirectoryIsEmptyAndReadOnly() throws {
            let r = try runShell("/probe ls /sys/firmware; /probe mount-options /sys/firmware")
            let out = lines(expectOK(r))
            try #require(out.count == 1, "empty listing, then the options: \(r)")
            #expect(options(out[0]).contains("ro"), "\(r)")
        }

        @Test func maskedPathsAreConfigurable() throws {
            let r = try runProbe(["stat", "/proc/version"]) { $0[path: "linux.maskedPaths"] = ["/proc/version"] }
            #expect(expectOK(r) == "chr 0666 0 0 1:3\n")
        }

        @Test func readonlyPathRejectsWrites() throws {
            let value = (Host.readFile("/proc/sys/net/ipv4/ip_forward") ?? "0\n").trimmingCharacters(in: .whitespacesAndNewlines)
            // the host's own value: harmless even if a broken runtime wrote it to the host
            let r = try runShell("/probe mount-options /proc/sys; /probe write /proc/sys/net/ipv4/ip_forward \(value)")
            #expect(r.status == 1, "\(r)")
            #expect(r.stderr.contains("EROFS"), "\(r)")
            #expect(options(lines(r.stdout).first ?? "").contains("ro"), "\(r)")
        }

        @Test func withoutReadonlyPathsProcSysIsWritable() throws {
            let value = (Host.readFile("/proc/sys/net/ipv4/ip_forward") ?? "0\n").trimmingCharacters(in: .whitespacesAndNewlines)
            let r = try runProbe(["write", "/proc/sys/net/ipv4/ip_forward", value]) { c in
                c[path: "linux.readonlyPaths"] = [String]()
                for set in ["bounding", "effective", "permitted"] { c.append("CAP_NET_ADMIN", to: "process.capabilities.\(set)") }
            }
            expectOK(r)
        }

        @Test func readonlyRoot() throws {
            let r = try runShell("/probe mount-options /; /probe write /written x") { $0[path: "root.readonly"] = true }
            #expect(r.status == 1, "\(r)")
            #expect(r.stderr.contains("EROFS"), "\(r)")
            #expect(options(lines(r.stdout).first ?? "").contains("ro"))
        }

        @Test func writableRoot() throws {
            try withBundle(args: ["/probe", "write", "/written", "x"], edit: { $0[path: "root.readonly"] = false }) { b in
                expectOK(try b.run())
                #expect(Host.readFile(b.rootfs + "/written") == "x")
            }
        }

        @Test func tmpfsMountWithSizeAndMode() throws {
            let r = try runShell("/probe mount-options /mnt/t; /probe stat /mnt/t") {
                $0.append(["destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "size=1m", "mode=0700"]], to: "mounts")
            }
            let out = lines(expectOK(r))
            try #require(out.count == 2, "\(r)")
            let opts = options(out[0])
            #expect(opts.isSuperset(of: ["nosuid", "nodev", "size=1024k", "mode=700"]), "\(out[0])")
            #expect(out[1] == "dir 0700 0 0")
        }

        @Test func bindMountReadOnly() throws {
            try withBundle(args: ["/bin/sh", "-c", "/probe cat /mnt/b/data; /probe write /mnt/b/new x"]) { b in
                let host = b.dir + "/shared"
                mkdir(host, 0o755)
                try "host-data".write(toFile: host + "/data", atomically: false, encoding: .utf8)
                b.config.append(["destination": "/mnt/b", "type": "bind", "source": host, "options": ["rbind", "ro"]], to: "mounts")
                let r = try b.run()
                #expect(r.stdout == "host-data", "\(r)")
                #expect(r.status == 1 && r.stderr.contains("EROFS"), "\(r)")
                #expect(!FileManager.default.fileExists(atPath: host + "/new"))
            }
        }

        @Test func bindMountReadWrite() throws {
            try withBundle(args: ["/probe", "write", "/mnt/b/new", "from-container"]) { b in
                let host = b.dir + "/shared"
                mkdir(host, 0o755)
                b.config.append(["destination": "/mnt/b", "type": "bind", "source": host, "options": ["rbind", "rw"]], to: "mounts")
                expectOK(try b.run())
                #expect(Host.readFile(host + "/new") == "from-container")
            }
        }

        @Test func bindMountOfAFile() throws {
            try withBundle(args: ["/probe", "cat", "/etc/it-file"]) { b in
                let host = b.dir + "/file"
                try "file-data".write(toFile: host, atomically: false, encoding: .utf8)
                b.config.append(["destination": "/etc/it-file", "type": "bind", "source": host, "options": ["bind", "ro"]],
                                to: "mounts")
                #expect(expectOK(try b.run()) == "file-data")
            }
        }

        /// The source is a shared tmpfs made here; rslave gives the container's copy a master, rprivate none.
        @Test(arguments: [("rslave", "master:"), ("rprivate", nil), ("rshared", "shared:")] as [(String, String?)])
        func bindMountPropagation(option: String, tag: String?) throws {
            try withBundle(args: ["/probe", "mounts"]) { b in
                let host = b.dir + "/prop"
                mkdir(host, 0o755)
                let m = try Proc.run(["/bin/mount", "-t", "tmpfs", "-o", "size=1m", "it-prop", host], ioDir: b.io)
                try #require(m.ok, "\(m)")
                let s = try Proc.run(["/bin/mount", "--make-shared", host], ioDir: b.io)
                try #require(s.ok, "\(s)")
                b.config.append(["destination": "/mnt/p", "type": "bind", "source": host, "options": ["rbind", option]],
                                to: "mounts")
                if option == "rshared" { b.config[path: "linux.rootfsPropagation"] = "shared" }
                let r = try b.run()
                let entry = try #require(mountinfo(expectOK(r), at: "/mnt/p"), "/mnt/p is mounted: \(r)")
                let optional = entry[6...].prefix { $0 != "-" }
                if let tag {
                    #expect(optional.contains { $0.hasPrefix(tag) }, "\(entry)")
                } else {
                    #expect(!optional.contains { $0.hasPrefix("shared:") || $0.hasPrefix("master:") }, "\(entry)")
                }
            }
        }

        @Test func defaultDevices() throws {
            let devices = ["null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "stdin", "stdout", "stderr"]
            let r = try runShell(devices.map { "/probe stat /dev/\($0)" }.joined(separator: "; "))
            let out = lines(expectOK(r))
            let want = ["chr 0666 0 0 1:3", "chr 0666 0 0 1:5", "chr 0666 0 0 1:7", "chr 0666 0 0 1:8", "chr 0666 0 0 1:9",
                        "chr 0666 0 0 5:0", "lnk 0777 0 0 -> pts/ptmx", "lnk 0777 0 0 -> /proc/self/fd",
                        "lnk 0777 0 0 -> /proc/self/fd/0", "lnk 0777 0 0 -> /proc/self/fd/1", "lnk 0777 0 0 -> /proc/self/fd/2"]
            for (i, d) in devices.enumerated() {
                #expect(i < out.count && out[i] == want[i], "/dev/\(d): \(i < out.count ? out[i] : "missing")")
            }
        }

        @Test func devicesAreUsable() throws {
            let r = try runShell("/probe write /dev/null x && /probe cat /dev/zero | head -c 4 | wc -c && /probe write /dev/full x")
            #expect(r.stdout == "4\n", "\(r)")
            #expect(r.status == 1 && r.stderr.contains("ENOSPC"), "/dev/full is full: \(r)")
        }

        @Test func extraDevice() throws {
            let r = try runShell("/probe stat /dev/it-null; /probe write /dev/it-null x && echo written") {
                $0[path: "linux.devices"] = [["path": "/dev/it-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666,
                                             "uid": 1000, "gid": 1001]]
                $0.append(["allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"], to: "linux.resources.devices")
            }
            #expect(lines(expectOK(r)) == ["chr 0666 1000 1001 1:3", "written"])
        }

        @Test func devShmAndPts() throws {
            let r = try runShell("/probe stat /dev/shm; /probe mount-options /dev/shm; /probe stat /dev/pts/ptmx")
            let out = lines(expectOK(r))
            try #require(out.count == 3, "\(r)")
            #expect(out[0] == "dir 1777 0 0")
            #expect(options(out[1]).isSuperset(of: ["nosuid", "nodev", "noexec"]), "\(out[1])")
            #expect(out[2].hasPrefix("chr 0666 0 0 5:2"), "\(out[2])")
        }
    }

    @Suite(.serialized) struct Kernel {
        @Test func sysctlInNewNetworkNamespace() throws {
            let r = try runProbe(["sysctl", "net.ipv4.ip_forward"]) { $0[path: "linux.sysctl"] = ["net.ipv4.ip_forward": "1"] }
            #expect(expectOK(r) == "1\n")
        }

        @Test func sysctlInNewIPCNamespace() throws {
            let r = try runProbe(["sysctl", "kernel.shmmax"]) { $0[path: "linux.sysctl"] = ["kernel.shmmax": "123456789"] }
            #expect(expectOK(r) == "123456789\n")
        }

        /// A net.* sysctl without a network namespace would change the host: refused. (The value is the host's
        /// own, so a runtime that wrongly applies it changes nothing.)
        @Test func sysctlOfHostNamespaceIsRefused() throws {
            let value = (Host.readFile("/proc/sys/net/ipv4/ip_forward") ?? "0\n").trimmingCharacters(in: .whitespacesAndNewlines)
            let r = try runProbe(["true"]) { c in
                c.removeNamespace("network")
                c[path: "linux.sysctl"] = ["net.ipv4.ip_forward": value]
            }
            #expect(!r.ok, "\(r)")
            #expect(!r.errorLines.isEmpty, "\(r)")
        }

        @Test func cgroupsPathPlacement() throws {
            try withBundle(args: ["/probe", "cat", "/proc/self/cgroup"]) { b in
                let created = try b.create()
                #expect(created.ok, "\(created)")
                let pid = try #require(try b.state()?["pid"] as? Int)
                for controller in Host.cgroupControllers {
                    let procs = Host.readFile(Host.cgroupDir(controller, b.cgroupsPath) + "/cgroup.procs") ?? ""
                    #expect(lines(procs).contains(String(pid)), "\(controller): the init process is in \(b.cgroupsPath)")
                }
                expectOK(try b.rt(["start", b.id]))
                #expect(try b.waitFor("stopped"))
                let own = lines(created.rereadStdout())
                for controller in Host.cgroupControllers {
                    let v1 = ":\(controller):\(b.cgroupsPath)", v2 = "0::\(b.cgroupsPath)"
                    #expect(own.contains { Host.cgroupV2Only ? $0 == v2 : $0.hasSuffix(v1) }, "\(controller): \(own)")
                }
                expectOK(try b.rt(["delete", b.id]))
                for controller in Host.cgroupControllers {
                    #expect(!FileManager.default.fileExists(atPath: Host.cgroupDir(controller, b.cgroupsPath)),
                            "delete removes the \(controller) cgroup")
                }
            }
        }

        @Test func cgroupNamespaceHidesThePath() throws {
            let r = try runProbe(["cat", "/proc/self/cgroup"]) { $0.addNamespace("cgroup") }
            let own = lines(expectOK(r))
            #expect(own.contains { $0.hasSuffix(Host.cgroupV2Only ? "0::/" : ":pids:/") }, "\(own)")
        }

        @Test func pidsLimit() throws {
            try withBundle(args: ["/probe", "pause"], edit: { $0[path: "linux.resources.pids"] = ["limit": 42] }) { b in
                expectOK(try b.create())
                let max = Host.readFile(Host.cgroupDir("pids", b.cgroupsPath) + "/pids.max")
                #expect(max == "42\n")
            }
        }

        @Test func memoryLimit() throws {
            try withBundle(args: ["/probe", "pause"], edit: { $0[path: "linux.resources.memory"] = ["limit": 64 << 20] }) { b in
                expectOK(try b.create())
                let limit = Host.readFile(Host.cgroupDir("memory", b.cgroupsPath)
                    + (Host.cgroupV2Only ? "/memory.max" : "/memory.limit_in_bytes"))
                #expect(limit == "\(64 << 20)\n")
            }
        }
    }
}
