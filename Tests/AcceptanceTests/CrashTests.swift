// berthd killed with SIGKILL under 20 containers (long-running, short ones that exit while it is down with
// distinct codes, --restart always ones that die while it is down), then started again on the same root: every
// container is listed in its true state, exit codes and logs are whole, restart-always ones run again, running
// ones are the very same processes and can be stopped.
import Foundation
import Glibc
import Testing

extension DockerClients {
    @Suite(.serialized, .enabled(if: ClientTests.dockerCLI, "BERTH_ROOT_TESTS, BERTH_BERTHD or the docker CLI is missing"))
    struct Crash {
        struct Ctr {
            enum Kind { case long, short, always }
            var name: String
            var kind: Kind
            var k: Int
            var lines: Int { k + 3 }
            var prefix: String { "\(name)-line-" }
            var expectedLog: String { (1...lines).map { "\(prefix)\($0)\n" }.joined() }
        }

        @Test func kill9WithTwentyContainers() throws {
            let d = try ClientDaemon()
            defer { d.tearDown() }
            let trig = d.dir + "/trigger"
            mkdir(trig, 0o755)
            var ctrs: [Ctr] = []
            for k in 0..<8 { ctrs.append(Ctr(name: "long\(k)", kind: .long, k: k)) }
            for k in 0..<8 { ctrs.append(Ctr(name: "short\(k)", kind: .short, k: k)) }
            for k in 0..<4 { ctrs.append(Ctr(name: "always\(k)", kind: .always, k: k)) }
            for c in ctrs {
                let print = "i=1; while [ $i -le \(c.lines) ]; do echo \(c.prefix)$i; i=$((i+1)); done"
                var args = ["run", "-d", "--name", c.name, "-v", trig + ":/trigger"]
                let script: String
                switch c.kind {
                case .long:
                    script = "trap 'exit 0' TERM; \(print); while true; do sleep 0.2; done"
                case .short:
                    script = "\(print); while [ ! -e /trigger/go ]; do sleep 0.1; done; exit \(10 + c.k)"
                case .always:
                    args += ["--restart", "always"]
                    script = "if [ -e /trigger/done\(c.k) ]; then echo second-run; trap 'exit 0' TERM; while true; do sleep 0.2; done; fi; "
                        + "\(print); while [ ! -e /trigger/go ]; do sleep 0.1; done; touch /trigger/done\(c.k); exit 1"
                }
                let r = try d.docker(args + ["busybox", "sh", "-c", script])
                #expect(r.ok, "\(r)")
            }
            // everything printed its lines before the crash
            for c in ctrs {
                #expect(try eventually(15) { try d.docker(["logs", c.name]).stdout == c.expectedLog }, "\(c.name) before the crash: \(d.show(["logs", c.name]))")
            }
            var pids: [String: pid_t] = [:]
            for c in ctrs {
                pids[c.name] = pid_t(try d.docker(["inspect", "-f", "{{.State.Pid}}", c.name]).out) ?? 0
                #expect(pids[c.name]! > 0, "\(c.name) has no pid")
            }

            d.kill9()
            #expect(!RawHTTP.ping(d.sock), "berthd still answers after SIGKILL")
            for (n, p) in pids { #expect(p > 0 && kill(p, 0) == 0, "\(n) (pid \(p)) died with berthd") }
            // the short and restart-always ones exit while berthd is down
            #expect(FileManager.default.createFile(atPath: trig + "/go", contents: Data()))
            let exiting = ctrs.filter { $0.kind != .long }.compactMap { pids[$0.name] }
            #expect(eventually(15) { exiting.allSatisfy { kill($0, 0) != 0 } }, "the short ones did not exit")
            usleep(500_000)  // their shims record the exits

            try d.start()
            let ps = try d.docker(["ps", "-a", "--format", "{{.Names}}"])
            #expect(Set(ps.lines.map(String.init)) == Set(ctrs.map(\.name)), "after the restart: \(ps)\nberthd: \(d.logTail())")
            for c in ctrs {
                let st = try d.docker(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}", c.name]).out
                switch c.kind {
                case .long:
                    #expect(st == "running 0 \(pids[c.name]!)", "\(c.name): \(st) (pid before \(pids[c.name]!))")
                    let logs = try d.docker(["logs", c.name])
                    #expect(logs.stdout == c.expectedLog, "\(c.name) logs: \(logs)")
                case .short:
                    #expect(st.hasPrefix("exited \(10 + c.k) "), "\(c.name): \(st), want exited \(10 + c.k)")
                    let logs = try d.docker(["logs", c.name])
                    #expect(logs.stdout == c.expectedLog, "\(c.name) logs: \(logs)")
                    let w = try d.docker(["wait", c.name], timeout: 10)
                    #expect(w.out == "\(10 + c.k)", "wait on \(c.name): \(w)")
                case .always:
                    let running = try d.waitFor(c.name, format: "{{.State.Status}}", "running", timeout: 20)
                    #expect(running, "restart-always \(c.name) is not running again: \(d.show(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", c.name]))\nberthd: \(d.logTail(1500))")
                    let rc = try d.docker(["inspect", "-f", "{{.RestartCount}}", c.name]).out
                    #expect((Int(rc) ?? 0) >= 1, "\(c.name) RestartCount \(rc)")
                    #expect(try eventually(10) { try d.docker(["logs", c.name]).stdout == c.expectedLog + "second-run\n" },
                            "\(c.name) logs: \(d.show(["logs", c.name]))")
                }
            }
            // the survivors can be stopped, and report it
            let longs = ctrs.filter { $0.kind == .long }.map(\.name)
            let stop = try d.docker(["stop", "-t", "5"] + longs, timeout: 60)
            #expect(stop.ok, "\(stop)")
            for n in longs {
                let st = try d.docker(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", n]).out
                #expect(st == "exited 0", "\(n) after stop: \(st)")
                if let p = pids[n] { #expect(kill(p, 0) != 0, "\(n)'s process \(p) outlived stop") }
            }
            // and the daemon runs new containers
            let fresh = try d.docker(["run", "--rm", "busybox", "echo", "after-crash"])
            #expect(fresh.stdout == "after-crash\n", "\(fresh)")
            let rm = try d.docker(["rm", "-f"] + ctrs.map(\.name), timeout: 60)
            #expect(rm.ok, "\(rm)")
            #expect(try eventually(10) { d.leftoverProcesses().isEmpty }, "left: \(d.leftoverProcesses())")
        }
    }
}
