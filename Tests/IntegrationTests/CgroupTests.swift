// cgroup limits (linux.resources), update, events and the freezer, checked from the host's cgroup files and
// by what the container can no longer do. Each test's cgroup path is the bundle's own (Harness: unique, and
// removed at teardown even when the test fails).
import Foundation
import Glibc
import Testing

extension Integration {
    @Suite(.serialized) struct CgroupTests {}
}

/// Helpers of this file.
private enum CG {
    static var v2: Bool { Host.cgroupV2Only }

    /// The host file of `controller`'s `file` for the bundle's cgroup.
    static func file(_ b: Bundle, _ controller: String, _ file: String) -> String {
        Host.cgroupDir(controller, b.cgroupsPath) + "/" + file
    }

    static func read(_ b: Bundle, _ controller: String, _ file: String) -> String? {
        Host.readFile(CG.file(b, controller, file))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func json(_ s: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [String: Any]
    }

    /// No directory of the bundle's cgroup is left in any hierarchy.
    static func cgroupGone(_ b: Bundle) -> Bool {
        !Host.cgroupRoots.contains { FileManager.default.fileExists(atPath: $0 + b.cgroupsPath) }
    }

    /// create + start; the container runs `args` until the test ends.
    static func startDetached(_ b: Bundle) throws {
        let c = try b.create()
        #expect(c.ok, "\(c)")
        let s = try b.rt(["start", b.id])
        #expect(s.ok, "\(s)")
    }

    /// memory+swap equal to memory: no swap to escape to, so going beyond the limit is an OOM kill.
    static func memoryLimit(_ bytes: Int) -> [String: Any] { ["limit": bytes, "swap": bytes] }

    static let hog = "dd if=/dev/zero of=/dev/null bs=64M count=1 && echo ALLOCATED"
}

extension Integration.CgroupTests {
    @Test func memoryLimitIsWrittenAndEnforced() throws {
        // control: without a limit the 64 MiB buffer is fine
        let free = try withBundle(args: ["/bin/sh", "-c", CG.hog]) { b in try b.run(timeout: 30) }
        #expect(free.stdout.contains("ALLOCATED"), "\(free)")

        try withBundle(args: ["/bin/sh", "-c", CG.hog]) { b in
            b.config[path: "linux.resources.memory"] = CG.memoryLimit(16 << 20)
            let c = try b.create()
            try #require(c.ok, "\(c)")
            #expect(CG.read(b, "memory", CG.v2 ? "memory.max" : "memory.limit_in_bytes") == String(16 << 20))
            if !CG.v2 { #expect(CG.read(b, "memory", "memory.memsw.limit_in_bytes") == String(16 << 20)) }
            let s = try b.rt(["start", b.id])
            #expect(s.ok, "\(s)")
            #expect(try b.waitFor("stopped", timeout: 30))
            let out = c.rereadStdout()
            #expect(!out.contains("ALLOCATED"), "dd got 64 MiB under a 16 MiB limit: \(out)")
            // and it was the kernel's OOM killer in this cgroup that stopped it
            let counters = CG.read(b, "memory", CG.v2 ? "memory.events" : "memory.oom_control") ?? ""
            let kills = counters.split(separator: "\n").first { $0.hasPrefix("oom_kill ") }.flatMap { Int($0.split(separator: " ")[1]) }
            #expect((kills ?? 0) > 0, "no oom_kill counted: \(counters)")
        }
    }

    @Test func pidsLimitStopsForks() throws {
        let loop = "i=0; while [ $i -lt 30 ]; do sleep 20 & i=$((i+1)); done; echo spawned $i"
        let free = try withBundle(args: ["/bin/sh", "-c", loop]) { b in try b.run(timeout: 30) }
        #expect(free.stdout.contains("spawned 30"), "\(free)")

        try withBundle(args: ["/bin/sh", "-c", loop]) { b in
            b.config[path: "linux.resources.pids"] = ["limit": 10]
            let r = try b.run(timeout: 30)
            #expect(!r.stdout.contains("spawned 30"), "30 forks under pids.limit 10: \(r)")
            #expect(r.stderr.contains("fork") || r.stderr.contains("Resource temporarily unavailable"), "\(r)")
        }
    }

    @Test func cpuSharesQuotaAndPeriodAreWritten() throws {
        try withBundle(args: ["/probe", "sleep", "30"]) { b in
            b.config[path: "linux.resources.cpu"] = ["shares": 512, "quota": 20000, "period": 100000]
            let c = try b.create()
            try #require(c.ok, "\(c)")
            if CG.v2 {
                #expect(CG.read(b, "cpu", "cpu.weight") == "20")  // 1 + (512-2)*9999/262142
                #expect(CG.read(b, "cpu", "cpu.max") == "20000 100000")
            } else {
                #expect(CG.read(b, "cpu", "cpu.shares") == "512")
                #expect(CG.read(b, "cpu", "cpu.cfs_quota_us") == "20000")
                #expect(CG.read(b, "cpu", "cpu.cfs_period_us") == "100000")
            }
        }
    }

    /// Security: the device cgroup keeps a device node the container can see from being opened.
    @Test func deniedDeviceCannotBeOpened() throws {
        try #require(FileManager.default.fileExists(atPath: "/dev/loop-control"), "the host has no /dev/loop-control")
        // a failed redirection ends a shell: open it in a child shell
        let script = "if sh -c 'exec 3< /dev/loop-control'; then echo OPENED; else echo DENIED; fi"
        func run(_ devices: [[String: Any]]) throws -> ProcResult {
            try withBundle(args: ["/bin/sh", "-c", script]) { b in
                b.config.append(["destination": "/dev/loop-control", "type": "bind", "source": "/dev/loop-control",
                                 "options": ["bind"]], to: "mounts")
                b.config[path: "linux.resources.devices"] = devices
                return try b.run()
            }
        }
        // control: allowing every device, the node opens (so the denial below is the cgroup's doing)
        let open = try run([["allow": true, "access": "rwm"]])
        #expect(open.stdout.contains("OPENED"), "\(open)")
        // runc's template: deny all; the defaults (null, zero, tty, ...) are added by the runtime
        let denied = try run([["allow": false, "access": "rwm"]])
        #expect(denied.stdout.contains("DENIED"), "\(denied)")
        #expect(denied.stderr.contains("Operation not permitted"), "\(denied)")
        // deny-all then allow this one device by number (10:237)
        let allowed = try run([["allow": false, "access": "rwm"],
                               ["allow": true, "type": "c", "major": 10, "minor": 237, "access": "rw"]])
        #expect(allowed.stdout.contains("OPENED"), "\(allowed)")
    }

    @Test func updateChangesLimitsOfARunningContainer() throws {
        try withBundle(args: ["/probe", "sleep", "30"]) { b in
            b.config[path: "linux.resources.memory"] = CG.memoryLimit(32 << 20)
            b.config[path: "linux.resources.pids"] = ["limit": 20]
            try CG.startDetached(b)
            let memFile = CG.v2 ? "memory.max" : "memory.limit_in_bytes"
            #expect(CG.read(b, "memory", memFile) == String(32 << 20))

            let u = try b.rt(["update", "--memory", "64m", "--memory-swap", "64m", "--pids-limit", "7", b.id])
            #expect(u.ok, "\(u)")
            #expect(CG.read(b, "memory", memFile) == String(64 << 20))
            #expect(CG.read(b, "pids", "pids.max") == "7")

            let j = try b.rt(["update", "--resources", "-", b.id], stdin: #"{"memory":{"limit":50331648,"swap":50331648},"pids":{"limit":9}}"#)
            #expect(j.ok, "\(j)")
            #expect(CG.read(b, "memory", memFile) == "50331648")
            #expect(CG.read(b, "pids", "pids.max") == "9")

            let bad = try b.rt(["update", "--memory", "lots", b.id])
            #expect(!bad.ok && bad.stderr.contains("--memory"), "\(bad)")
            let badJSON = try b.rt(["update", "--resources", "-", b.id], stdin: #"{"pids":{"limit":"x"}}"#)
            #expect(!badJSON.ok && badJSON.stderr.contains("resources.pids.limit"), "\(badJSON)")
            if !CG.v2 {
                // the kernel refuses a limit below what the container uses; the error says what and where
                let busy = try b.rt(["update", "--memory", "4096", b.id])
                #expect(!busy.ok, "\(busy)")
                #expect(busy.stderr.contains("set memory limit 4096 on ") && busy.stderr.contains("memory.limit_in_bytes: device or resource busy"), "\(busy)")
            }
        }
    }

    @Test func eventsStatsHasRuncsShape() throws {
        try withBundle(args: ["/probe", "sleep", "30"]) { b in
            b.config[path: "linux.resources.memory"] = CG.memoryLimit(32 << 20)
            b.config[path: "linux.resources.pids"] = ["limit": 20]
            try CG.startDetached(b)
            let r = try b.rt(["events", "--stats", b.id])
            #expect(r.ok, "\(r)")
            let e = try #require(CG.json(r.stdout), "not JSON: \(r)")
            #expect(e["type"] as? String == "stats")
            #expect(e["id"] as? String == b.id)
            let data = try #require(e["data"] as? [String: Any])
            let cpu = try #require(data[path: "cpu.usage"] as? [String: Any])
            #expect(cpu["total"] is NSNumber && cpu["kernel"] is NSNumber && cpu["user"] is NSNumber)
            #expect(data[path: "cpu.throttling"] is [String: Any])
            #expect((data[path: "memory.usage.limit"] as? NSNumber)?.intValue == 32 << 20)
            #expect(((data[path: "memory.usage.usage"] as? NSNumber)?.intValue ?? 0) > 0)
            #expect(data[path: "memory.usage.failcnt"] is NSNumber && data[path: "memory.swap"] is [String: Any])
            #expect(data[path: "memory.raw"] is [String: Any])
            #expect((data[path: "pids.current"] as? NSNumber)?.intValue == 1)
            #expect((data[path: "pids.limit"] as? NSNumber)?.intValue == 20)
            #expect(data["blkio"] is [String: Any] && data["hugetlb"] is [String: Any])
        }
    }

    @Test func eventsStreamReportsOOMAndEndsWithTheContainer() throws {
        try withBundle(args: ["/bin/sh", "-c", "sleep 1; " + CG.hog + "; sleep 2"]) { b in
            b.config[path: "linux.resources.memory"] = CG.memoryLimit(16 << 20)
            try CG.startDetached(b)
            let ev = try b.spawn(["events", "--interval", "500ms", b.id])
            let r = ev.wait(timeout: 20)
            #expect(!r.timedOut, "events did not end with the container: \(r)")
            let events = r.lines.compactMap { CG.json(String($0)) }
            #expect(events.contains { $0["type"] as? String == "oom" && $0["id"] as? String == b.id }, "\(r)")
            #expect(events.filter { $0["type"] as? String == "stats" }.count >= 2, "\(r)")
        }
    }

    @Test func unifiedNeedsCgroupV2() throws {
        try #require(!CG.v2, "a v1 check")
        try withBundle(args: ["/probe", "true"]) { b in
            b.config[path: "linux.resources.unified"] = ["memory.high": "1000000"]
            let r = try b.run()
            #expect(!r.ok && r.stderr.contains("linux.resources.unified"), "\(r)")
            #expect(CG.cgroupGone(b))
        }
    }

    @Test func pausedContainerCanBeResumedKilledAndDeleted() throws {
        try withBundle(args: ["/bin/sh", "-c", "sleep 30 & sleep 30"]) { b in
            try CG.startDetached(b)
            #expect(try b.waitFor("running"))
            #expect(try b.rt(["pause", b.id]).ok)
            #expect(try b.status() == "paused")
            if !CG.v2 { #expect(CG.read(b, "freezer", "freezer.state") == "FROZEN") }
            #expect(try b.rt(["resume", b.id]).ok)
            #expect(try b.status() == "running")
            #expect(try b.rt(["pause", b.id]).ok)
            let pids = CG.read(b, "pids", "cgroup.procs")?.split(separator: "\n").compactMap { pid_t($0) } ?? []
            #expect(pids.count >= 2, "the container's processes: \(pids)")
            // a frozen cgroup ignores SIGKILL until thawed: delete --force must thaw first
            let d = try b.rt(["delete", "--force", b.id], timeout: 15)
            #expect(d.ok, "\(d)")
            #expect(!d.timedOut)
            for p in pids { #expect(!Host.isAlive(p), "pid \(p) survived delete --force") }
            #expect(CG.cgroupGone(b), "cgroup dirs left behind")
            #expect(try b.state() == nil, "state left behind")
        }
        // kill --all SIGKILL of a paused container ends it too
        try withBundle(args: ["/bin/sh", "-c", "sleep 30 & sleep 30"]) { b in
            try CG.startDetached(b)
            #expect(try b.rt(["pause", b.id]).ok)
            let k = try b.rt(["kill", "--all", b.id, "KILL"])
            #expect(k.ok, "\(k)")
            #expect(try b.waitFor("stopped", timeout: 10))
            #expect(try b.rt(["delete", b.id]).ok)
            #expect(CG.cgroupGone(b))
        }
    }
}
