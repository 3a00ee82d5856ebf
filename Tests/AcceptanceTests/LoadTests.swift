// 50 parallel `docker run --rm busybox true` (and `berth run --rm` when BERTH_CLI is set): all exit 0; afterwards
// nothing of them is left: no shims or container processes of the daemon, no mounts under its dir, no cgroups,
// no netns files, no db rows (`docker ps -a` empty), and berthd's fd count is back to its baseline.
import Foundation
import Glibc
import Testing

extension DockerClients {
    @Suite(.serialized, .enabled(if: ClientTests.dockerCLI, "BERTH_ROOT_TESTS, BERTH_BERTHD or the docker CLI is missing"))
    struct Load {
        static let parallel = 50

        func fiftyRuns(_ argv: (ClientDaemon) -> [String]) throws {
            let d = try ClientDaemon()
            defer { d.tearDown() }
            // warm up with a first burst (event loops, threads and lazily made timerfds the daemon keeps), then the baseline
            let warm = try (0..<Self.parallel).map { _ in try CLIProc(argv(d) + ["run", "--rm", "busybox", "true"], ioDir: d.io, env: d.dockerEnv) }
            for w in warm { let r = w.wait(timeout: 120); #expect(r.ok, "warm-up: \(r)") }
            // and the queries made afterwards (an events window runs a timer; libdispatch makes its timerfd on first use)
            let warmNow = Int(Date().timeIntervalSince1970)
            _ = try d.docker(["events", "--since", "\(warmNow - 5)", "--until", "\(warmNow + 1)", "--filter", "type=container"], timeout: 30)
            _ = try d.docker(["ps", "-aq"])
            sleep(2)
            let baseline = d.fdsSettled(atMost: 0, timeout: 0)
            let since = Int(Date().timeIntervalSince1970)
            let start = Date()
            var procs: [CLIProc] = []
            for _ in 0..<Self.parallel {
                procs.append(try CLIProc(argv(d) + ["run", "--rm", "busybox", "true"], ioDir: d.io, env: d.dockerEnv))
            }
            var failed: [CLIResult] = []
            for p in procs {
                let r = p.wait(timeout: 240)
                if !r.ok { failed.append(r) }
            }
            let took = Date().timeIntervalSince(start)
            #expect(failed.isEmpty, "\(failed.count) of \(Self.parallel) failed (\(took) s): \(failed.map { "\($0.status): \($0.stderr)" })\nberthd: \(d.logTail(3000))")
            let until = Int(Date().timeIntervalSince1970) + 1
            let ev = try d.docker(["events", "--since", "\(since)", "--until", "\(until)", "--filter", "type=container",
                                   "--filter", "event=create", "--format", "{{.Actor.ID}}"], timeout: 30)
            let ids = Set(ev.lines.map(String.init))
            #expect(ids.count == Self.parallel, "create events: \(ids.count): \(ev)")

            #expect(try eventually(20) { try d.docker(["ps", "-aq"]).out.isEmpty }, "rows left: \(d.show(["ps", "-a"]))")
            #expect(eventually(20) { d.leftoverProcesses().isEmpty }, "processes left: \(d.leftoverProcesses())")
            #expect(eventually(10) { d.mounts().isEmpty }, "mounts left: \(d.mounts())")
            let cg = ids.flatMap(leftoverCgroups)
            #expect(cg.isEmpty, "cgroups left: \(cg.prefix(20))")
            let netns = (try? FileManager.default.contentsOfDirectory(atPath: d.execRoot + "/netns")) ?? []
            #expect(netns.isEmpty, "netns files left: \(netns)")
            let runtimeState = (try? FileManager.default.contentsOfDirectory(atPath: d.execRoot + "/runtime")) ?? []
            #expect(runtimeState.isEmpty, "runtime state left: \(runtimeState)")
            let containerDirs = (try? FileManager.default.contentsOfDirectory(atPath: d.root + "/containers")) ?? []
            #expect(containerDirs.isEmpty, "container dirs left: \(containerDirs.prefix(10))")
            let fds = d.fdsSettled(atMost: baseline.count, timeout: 15)
            #expect(fds.count <= baseline.count, "berthd fds \(baseline.count) → \(fds.count); new: \(Set(fds).subtracting(baseline).sorted())")
            #expect(d.isAlive, "berthd died: \(d.logTail())")
        }

        @Test func fiftyParallelDockerRuns() throws {
            try fiftyRuns { _ in [ClientTests.docker!] }
        }

        @Test(.enabled(if: CLIEnv.cli != nil, "BERTH_CLI not set"))
        func fiftyParallelBerthRuns() throws {
            try fiftyRuns { d in [CLIEnv.cli!, "-H", d.host] }
        }
    }
}
