// Security properties a drop-in for runc must keep: fd hygiene, /proc/self/exe, paths resolved inside the
// rootfs, and invalid configs rejected before any side effect.
import Foundation
import Glibc
import Testing

private func fdNumbers(_ probeOutput: String) -> [Int] {
    probeOutput.split(separator: "\n").compactMap { $0.split(separator: " ").first.flatMap { Int($0) } }
}

/// Opens `path` for the harness to hand to the runtime as an inherited (not close-on-exec in the child) fd.
private func openForLeak(_ path: String) throws -> Int32 {
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    if fd < 0 { throw HarnessError("open \(path): \(String(cString: strerror(errno)))") }
    return fd
}

extension Integration {
    @Suite(.serialized) struct Security {
        @Test func runtimeFdsDoNotLeakIntoTheContainer() throws {
            try withBundle(args: ["/probe", "fds"]) { b in
                let leak = try openForLeak(b.dir + "/leaked")
                defer { close(leak) }
                let r = try b.run(extraFDs: [5: leak, 9: leak])
                #expect(fdNumbers(expectOK(r)) == [0, 1, 2], "\(r)")
                #expect(!r.stdout.contains(b.dir + "/leaked"), "\(r)")
            }
        }

        @Test func preserveFds() throws {
            try withBundle(args: ["/probe", "fds"]) { b in
                let kept = try openForLeak(b.dir + "/kept")
                defer { close(kept) }
                let r = try b.run(extraArgs: ["--preserve-fds", "1"], extraFDs: [3: kept, 7: kept])
                let out = expectOK(r)
                #expect(fdNumbers(out) == [0, 1, 2, 3], "\(r)")
                #expect(out.split(separator: "\n").contains { $0.hasPrefix("3 ") && $0.hasSuffix("/kept") }, "\(r)")
            }
        }

        @Test func execFdsDoNotLeak() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.run(extraArgs: ["--detach"]))
                let leak = try openForLeak(b.dir + "/leaked")
                defer { close(leak) }
                let r = try b.rt(["exec", b.id, "/probe", "fds"], extraFDs: [4: leak, 8: leak])
                #expect(fdNumbers(expectOK(r)) == [0, 1, 2], "\(r)")
            }
        }

        /// CVE-2019-5736 class: the container must not be able to open an executable it runs from for writing.
        @Test func exeIsNotWritableFromRun() throws {
            let r = try runProbe(["exe-write"]) { $0[path: "root.readonly"] = false }
            let out = expectOK(r)
            #expect(out.split(separator: "\n").count == 2, "\(r)")
            #expect(!out.contains("opened"), "\(r)")
        }

        @Test func exeIsNotWritableFromExec() throws {
            try withBundle(args: ["/probe", "pause"], edit: { $0[path: "root.readonly"] = false }) { b in
                expectOK(try b.run(extraArgs: ["--detach"]))
                let r = try b.rt(["exec", b.id, "/probe", "exe-write"])
                let out = expectOK(r)
                #expect(out.split(separator: "\n").count == 2, "\(r)")
                #expect(!out.contains("opened"), "\(r)")
            }
        }

        /// CVE-2019-5736 as it is attacked: a process in the container catches the runtime's exec child through
        /// /proc/<pid>/exe while that child is in the container, then reopens the binary for writing once the
        /// runtime is gone. The runtime runs from a read-only mount of itself, so the reopen must fail.
        @Test func runtimeBinaryCannotBeReopenedForWriting() throws {
            try withBundle(args: ["/probe", "exe-catch", "3", "/tmp/catch"], edit: { $0[path: "root.readonly"] = false }) { b in
                expectOK(try b.run(extraArgs: ["--detach"]))
                let until = Date().addingTimeInterval(2.5)
                for _ in 0..<40 where Date() < until { _ = try b.rt(["exec", b.id, "/probe", "true"]) }
                #expect(try b.waitFor("stopped", timeout: 15), "the catcher ends by itself")
                let out = (try? String(contentsOfFile: b.rootfs + "/tmp/catch", encoding: .utf8)) ?? ""
                let lines = out.split(separator: "\n")
                #expect(lines.first.map { $0.hasPrefix("caught ") && $0 != "caught 0" } ?? false,
                        "the attack must catch a runtime process for this test to mean anything: \(out)")
                #expect(!lines.contains("writable"), "the runtime binary was reopened for writing: \(out)")
            }
        }

        /// A mount destination that is a symlink in the rootfs (absolute, or climbing with ../) is resolved inside
        /// the rootfs: the mount lands in the container's tree (or the runtime refuses), never on the host path.
        @Test(arguments: ["absolute", "relative"])
        func mountOntoSymlinkStaysInsideRootfs(kind: String) throws {
            try withBundle(args: ["/probe", "mount-options", "/evil"]) { b in
                let target = b.dir + "/host-target"
                mkdir(target, 0o755)
                try "marker".write(toFile: target + "/marker", atomically: false, encoding: .utf8)
                let link = kind == "absolute" ? target : String(repeating: "../", count: 12) + target.dropFirst()
                try #require(symlink(link, b.rootfs + "/evil") == 0)
                b.config.append(["destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1236k"]],
                                to: "mounts")
                try b.writeConfig()
                let created = try b.create()
                if created.ok {
                    #expect(Host.mounts(under: target).isEmpty, "nothing mounted on the host path")
                    expectOK(try b.rt(["start", b.id]))
                    #expect(try b.waitFor("stopped"))
                    let out = created.rereadStdout()
                    #expect(out.contains("size=1236k"), "the tmpfs is reachable through the link inside: \(created) \(out)")
                } else {
                    #expect(!created.errorLines.isEmpty, "refused with a message: \(created)")
                }
                #expect(Host.mounts(under: target).isEmpty)
                #expect(Host.readFile(target + "/marker") == "marker", "the host directory is untouched")
                let entries = (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []
                #expect(entries == ["marker"], "nothing written into the host path: \(entries)")
            }
        }

        /// A bind mount whose destination climbs out of the rootfs with "..".
        @Test func mountDestinationWithDotDotStaysInside() throws {
            try withBundle(args: ["/probe", "mount-options", "/escaped"]) { b in
                let source = b.dir + "/src"
                mkdir(source, 0o755)
                let outside = b.dir + "/escaped"
                b.config.append(["destination": "/../../../../../../escaped", "type": "tmpfs", "source": "tmpfs",
                                 "options": ["size=1240k"]], to: "mounts")
                let r = try b.run()
                if r.ok {
                    #expect(r.stdout.contains("size=1240k"), "mounted at /escaped inside: \(r)")
                } else {
                    #expect(!r.errorLines.isEmpty, "\(r)")
                }
                #expect(!FileManager.default.fileExists(atPath: outside), "nothing made next to the rootfs")
                #expect(!FileManager.default.fileExists(atPath: "/escaped"), "nothing made on the host root")
            }
        }

        @Test func cwdClimbingOutStaysInside() throws {
            let r = try runProbe(["cwd"]) { $0[path: "process.cwd"] = "/../../../../../.." }
            #expect(expectOK(r) == "/\n")
        }

        /// CVE-2024-21626 class: a cwd through /proc/self/fd/N must not leave the process outside the rootfs.
        @Test(arguments: [3, 4, 5, 6, 7, 8, 9])
        func cwdThroughProcSelfFd(n: Int) throws {
            // the runtime itself holds a host directory at fd n (as runc leaked /sys/fs/cgroup)
            let hostDir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            try #require(hostDir >= 0)
            defer { close(hostDir) }
            let r = try withBundle(args: ["/probe", "cwd"], edit: { $0[path: "process.cwd"] = "/proc/self/fd/\(n)" }) { b in
                try b.run(extraFDs: [Int32(n): hostDir])
            }
            #expect(!r.stderr.contains("probe: cwd:"), "the process ran with an unreachable cwd: \(r)")
            if r.ok {
                #expect(r.stdout.hasPrefix("/") && !r.stdout.contains("unreachable"), "\(r)")
            } else {
                #expect(!r.errorLines.isEmpty, "\(r)")
            }
        }

        static let invalidConfigs: [String] = ["malformed JSON", "no process.args", "empty process.args", "relative cwd",
                                               "no root", "unknown namespace"]

        /// Invalid config: exit 1, one error line, and no side effect left (state, processes, mounts, cgroups).
        @Test(arguments: Security.invalidConfigs)
        func invalidConfigIsRejectedCleanly(kind: String) throws {
            try withBundle(args: ["/probe", "true"]) { b in
                switch kind {
                case "no process.args": b.config[path: "process.args"] = nil
                case "empty process.args": b.config[path: "process.args"] = [String]()
                case "relative cwd": b.config[path: "process.cwd"] = "tmp"
                case "no root": b.config["root"] = nil
                case "unknown namespace": b.config.addNamespace("nosuchns")
                default: break
                }
                try b.writeConfig()
                if kind == "malformed JSON" {
                    try "{\"ociVersion\": \"1.0.2\", \"process\": {bad".write(toFile: b.path + "/config.json", atomically: false,
                                                                           encoding: .utf8)
                }
                for verb in ["run", "create"] {
                    let r = try b.rt([verb, "--bundle", b.path, b.id])
                    #expect(r.status == 1, "\(verb): \(r)")
                    #expect(r.errorLines.count == 1, "\(verb): one error line: \(r)")
                    let entries = (try? FileManager.default.contentsOfDirectory(atPath: b.root)) ?? []
                    #expect(!entries.contains(b.id), "\(verb): no state dir under --root: \(entries)")
                    #expect(Host.processes(rootedUnder: b.dir).isEmpty, "\(verb): no process left")
                    #expect(Host.mounts(under: b.dir).isEmpty, "\(verb): no mount left")
                    for c in Host.cgroupControllers {
                        #expect(!FileManager.default.fileExists(atPath: Host.cgroupDir(c, b.cgroupsPath)), "\(verb): no cgroup left")
                    }
                    let state = try b.rt(["state", b.id])
                    #expect(state.stderr.contains("does not exist"), "\(verb): \(state)")
                }
            }
        }

        @Test func missingBundleIsRejected() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                let r = try b.rt(["run", "--bundle", b.dir + "/no-such-bundle", b.id])
                #expect(r.status == 1, "\(r)")
                #expect(!r.errorLines.isEmpty)
                let entries = (try? FileManager.default.contentsOfDirectory(atPath: b.root)) ?? []
                #expect(!entries.contains(b.id))
            }
        }

        @Test func missingExecutableFailsTheRun() throws {
            try withBundle(args: ["/no/such/binary"]) { b in
                let r = try b.run()
                #expect(!r.ok && !r.timedOut, "\(r)")
                #expect(!r.errorLines.isEmpty, "\(r)")
                #expect(Host.processes(rootedUnder: b.dir).isEmpty)
            }
        }
    }
}
