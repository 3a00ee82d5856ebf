// containerd 1.6 (`ctr run --runc-binary RUNTIME`, io.containerd.runc.v2 shim) driving the runtime under test:
// run, exec, ps, pause/resume, kill, kill --all, delete, a tty, cgroup limits, the default seccomp profile,
// and a failure that surfaces through containerd with the runtime's own message (the shim reads it from the
// JSON --log). Each test has its own containerd (EngineSupport.swift).
import Foundation
import Glibc
import Testing

private let image = Engines.imageName

extension Containerd {
    /// The STATUS column of `ctr task ls` for `id` (nil when there is no such task).
    func taskStatus(_ id: String) throws -> String? {
        let r = try ctr(["task", "ls"])
        for line in r.lines.dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 3 && f[0] == id { return String(f[2]) }
        }
        return nil
    }

    func waitForTask(_ id: String, status: String, timeout: Double = 10) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try taskStatus(id) == status { return true }
            usleep(20_000)
        }
        return false
    }
}

extension Integration {
    @Suite(.serialized) struct ContainerdEngine {
        @Test func runPrintsOutputAndExitCode() throws {
            try withContainerd { c in
                let r = try c.ctr(c.runArgs() + ["--rm", image, "c-echo", "/probe", "echo", "hello", "containerd"])
                #expect(expectOK(r) == "hello containerd\n")
                let e = try c.ctr(c.runArgs() + ["--rm", image, "c-exit", "sh", "-c", "exit 7"])
                #expect(e.status == 7, "\(e)")
                // --rm removed the container, the runtime's state and the cgroup
                #expect(try c.ctr(["containers", "list", "-q"]).stdout.isEmpty)
                #expect(!FileManager.default.fileExists(atPath: c.runcRoot + "/\(c.namespace)/c-echo"))
                #expect(!FileManager.default.fileExists(atPath: c.cgroupDir("pids", "c-echo")))
            }
        }

        @Test func detachedLifecycle() throws {
            try withContainerd { c in
                let id = "c-life"
                let run = try c.ctr(c.runArgs() + ["-d", image, id, "sleep", "1000"])
                try #require(run.ok, "\(run)")
                #expect(try c.taskStatus(id) == "RUNNING")

                let ex = try c.ctr(["task", "exec", "--exec-id", "e1", id, "sh", "-c", "echo in-container; exit 3"])
                #expect(ex.status == 3, "\(ex)")
                #expect(ex.stdout == "in-container\n")

                // a detached exec shows up in ps next to the init
                let bg = try c.ctr(["task", "exec", "-d", "--exec-id", "e2", id, "sleep", "500"])
                #expect(bg.ok, "\(bg)")
                let ps = try c.ctr(["task", "ps", id])
                #expect(ps.ok && ps.lines.count == 3, "\(ps)")

                #expect(try c.ctr(["task", "pause", id]).ok)
                #expect(try c.taskStatus(id) == "PAUSED")
                #expect(try c.ctr(["task", "resume", id]).ok)
                #expect(try c.taskStatus(id) == "RUNNING")

                #expect(try c.ctr(["task", "kill", "-s", "SIGKILL", id]).ok)
                let stopped = try c.waitForTask(id, status: "STOPPED")
                #expect(stopped, "task did not stop: \((try? c.ctr(["task", "ls"]))?.stdout ?? "")")
                let del = try c.ctr(["task", "delete", id])
                #expect(del.ok, "\(del)")
                #expect(try c.ctr(["containers", "delete", id]).ok)
                #expect(!FileManager.default.fileExists(atPath: c.runcRoot + "/\(c.namespace)/\(id)"))
                #expect(!FileManager.default.fileExists(atPath: c.cgroupDir("pids", id)))
            }
        }

        @Test func killAllReachesEveryProcess() throws {
            try withContainerd { c in
                let id = "c-killall"
                try #require(try c.ctr(c.runArgs() + ["-d", image, id, "sh", "-c", "sleep 300 & sleep 300"]).ok)
                #expect(try c.ctr(["task", "exec", "-d", "--exec-id", "e1", id, "sleep", "300"]).ok)
                let k = try c.ctr(["task", "kill", "--all", "-s", "SIGKILL", id])
                #expect(k.ok, "\(k)")
                #expect(try c.waitForTask(id, status: "STOPPED"))
                let pids = (try? String(contentsOfFile: c.cgroupDir("pids", id) + "/cgroup.procs", encoding: .utf8)) ?? ""
                #expect(pids.isEmpty, "processes left in the cgroup: \(pids)")
                #expect(try c.ctr(["task", "delete", id]).ok)
            }
        }

        @Test func resourcesReachTheCgroup() throws {
            try withContainerd { c in
                let id = "c-res"
                let run = try c.ctr(c.runArgs() + ["-d", "--memory-limit", "67108864", "--cpu-shares", "256", image, id,
                                                   "sleep", "1000"])
                try #require(run.ok, "\(run)")
                if !Host.cgroupV2Only {
                    #expect(Host.readFile(c.cgroupDir("memory", id) + "/memory.limit_in_bytes") == "67108864\n")
                    #expect(Host.readFile(Host.cgroupDir("cpu", "/\(c.namespace)/\(id)") + "/cpu.shares") == "256\n")
                } else {
                    #expect(Host.readFile(c.cgroupDir("memory", id) + "/memory.max") == "67108864\n")
                }
                let m = try c.ctr(["task", "metrics", id])
                #expect(m.ok, "\(m)")
            }
        }

        @Test func defaultSeccompProfileApplies() throws {
            try withContainerd { c in
                let r = try c.ctr(c.runArgs() + ["--rm", "--seccomp", image, "c-sec", "grep", "^Seccomp:", "/proc/self/status"])
                #expect(expectOK(r).contains("Seccomp:\t2"), "\(r)")
                // an exec into it is filtered too
                try #require(try c.ctr(c.runArgs() + ["-d", "--seccomp", image, "c-sec2", "sleep", "1000"]).ok)
                let e = try c.ctr(["task", "exec", "--exec-id", "e1", "c-sec2", "grep", "^Seccomp:", "/proc/self/status"])
                #expect(expectOK(e).contains("Seccomp:\t2"), "\(e)")
            }
        }

        @Test func terminalThroughTheShim() throws {
            try withContainerd { c in
                let r = try underPTY(["/usr/bin/ctr", "--address", c.socket, "-n", c.namespace] + c.runArgs()
                                     + ["-t", "--rm", image, "c-tty", "sh", "-c", "tty; echo tty-done"], ioDir: c.dir + "/io")
                #expect(r.ok, "\(r)")
                #expect(r.stdout.contains("/dev/pts/0"), "\(r)")
                #expect(r.stdout.contains("tty-done"), "\(r)")
                // exec -t into a detached container: the runtime sends the pty over the shim's console socket
                try #require(try c.ctr(c.runArgs() + ["-d", image, "c-tty2", "sleep", "1000"]).ok)
                let e = try underPTY(["/usr/bin/ctr", "--address", c.socket, "-n", c.namespace, "task", "exec", "-t",
                                      "--exec-id", "t1", "c-tty2", "sh", "-c", "tty; echo exec-tty-done"], ioDir: c.dir + "/io")
                #expect(e.stdout.contains("/dev/pts/"), "\(e)")
                #expect(e.stdout.contains("exec-tty-done"), "\(e)")
            }
        }

        @Test func failuresSurfaceWithTheRuntimesMessage() throws {
            try withContainerd { c in
                let r = try c.ctr(c.runArgs() + ["--rm", image, "c-fail", "/nonexistent-binary"])
                #expect(!r.ok)
                // containerd quotes the last error line of the runtime's JSON log
                #expect(r.stderr.contains("OCI runtime create failed"), "\(r)")
                #expect(r.stderr.contains("/nonexistent-binary"), "\(r)")
                #expect(r.stderr.lowercased().contains("no such file or directory"), "\(r)")
                #expect(!r.stderr.contains("level=error"), "the runtime's log line leaked unparsed: \(r)")
                _ = try c.ctr(["containers", "delete", "c-fail"])

                try #require(try c.ctr(c.runArgs() + ["-d", image, "c-fail2", "sleep", "1000"]).ok)
                let e = try c.ctr(["task", "exec", "--exec-id", "e1", "c-fail2", "/nonexistent-binary"])
                #expect(!e.ok)
                #expect(e.stderr.contains("OCI runtime exec failed") && e.stderr.contains("/nonexistent-binary"), "\(e)")
            }
        }
    }
}
