// Lifecycle: create/start/state/run/kill/delete/list, runc's contract.
import Foundation
import Glibc
import Testing

extension Integration {
    @Suite(.serialized) struct Lifecycle {
        @Test func createBlocksUntilStartThenStops() throws {
            try withBundle(args: ["/probe", "echo", "started"]) { b in
                let created = try b.create()
                #expect(created.ok, "\(created)")
                let state = try #require(try b.state(), "state after create")
                #expect(state["status"] as? String == "created")
                #expect(state["id"] as? String == b.id)
                let pid = try #require(state["pid"] as? Int, "state has a pid")
                #expect(pid > 0)
                #expect(Host.isAlive(pid_t(pid)), "the created process exists")
                usleep(100_000)
                #expect(created.rereadStdout() == "", "the process must not run before start")

                let started = try b.rt(["start", b.id])
                #expect(started.ok, "\(started)")
                #expect(b.waitForOutput(created, containing: "started"))
                #expect(try b.waitFor("stopped"), "stopped after the process exits")
                #expect(created.rereadStdout() == "started\n")

                let deleted = try b.rt(["delete", b.id])
                #expect(deleted.ok, "\(deleted)")
                let gone = try b.rt(["state", b.id])
                #expect(!gone.ok)
                #expect(gone.stderr.contains("does not exist"), "\(gone)")
                #expect(!FileManager.default.fileExists(atPath: b.root + "/" + b.id), "state dir removed")
            }
        }

        @Test func startedContainerIsRunning() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.create())
                expectOK(try b.rt(["start", b.id]))
                #expect(try b.waitFor("running"))
                let pid = try #require(try b.state()?["pid"] as? Int)
                #expect(Host.cmdline(pid_t(pid)).hasPrefix("/probe pause"), "the container's process is the probe")
                expectOK(try b.rt(["kill", b.id, "KILL"]))
                #expect(try b.waitFor("stopped"))
                expectOK(try b.rt(["delete", b.id]))
                #expect(!Host.isAlive(pid_t(pid)))
            }
        }

        @Test(arguments: [0, 3, 42])
        func runReturnsTheExitCode(code: Int) throws {
            let r = try runProbe(["exit", String(code)])
            #expect(r.status == Int32(code), "\(r)")
            #expect(!r.timedOut)
        }

        @Test func runPassesStdoutThrough() throws {
            let r = try runProbe(["echo", "hello", "from", "berth"])
            #expect(expectOK(r) == "hello from berth\n")
        }

        @Test func runDeletesTheContainerAfterwards() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                expectOK(try b.run())
                let r = try b.rt(["state", b.id])
                #expect(!r.ok && r.stderr.contains("does not exist"), "\(r)")
            }
        }

        @Test func runKilledBySignalReturns128PlusSignal() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                try b.writeConfig()
                let run = try b.spawn(["run", "--bundle", b.path, b.id])
                #expect(try b.waitFor("running"), "container runs")
                expectOK(try b.rt(["kill", b.id, "KILL"]))
                let r = run.wait()
                #expect(r.status == 128 + SIGKILL, "\(r)")
            }
        }

        /// Without a pid namespace the probe is not an init, so SIGTERM's default action applies.
        @Test func runTerminatedWithoutPidNamespace() throws {
            try withBundle(args: ["/probe", "sleep", "30"], edit: { $0.removeNamespace("pid") }) { b in
                try b.writeConfig()
                let run = try b.spawn(["run", "--bundle", b.path, b.id])
                #expect(try b.waitFor("running"))
                expectOK(try b.rt(["kill", b.id, "TERM"]))
                let r = run.wait()
                #expect(r.status == 128 + SIGTERM, "\(r)")
            }
        }

        @Test func runDetach() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                let r = try b.run(extraArgs: ["--detach"])
                #expect(r.ok, "\(r)")
                #expect(try b.status() == "running")
                expectOK(try b.rt(["delete", "--force", b.id]))
            }
        }

        /// runc's spellings of a signal; no signal means SIGTERM.
        @Test(arguments: [["TERM"], ["SIGTERM"], ["15"], []])
        func killSignalForms(signal: [String]) throws {
            try withBundle(args: ["/probe", "signal-wait", "1"]) { b in
                let created = try b.create()
                #expect(created.ok, "\(created)")
                expectOK(try b.rt(["start", b.id]))
                #expect(b.waitForOutput(created, containing: "ready"), "probe ready: \(created.rereadStdout())")
                let k = try b.rt(["kill", b.id] + signal)
                #expect(k.ok, "\(k)")
                #expect(try b.waitFor("stopped"))
                #expect(created.rereadStdout() == "ready\nSIGTERM\n")
            }
        }

        @Test func killUSR1IsDelivered() throws {
            try withBundle(args: ["/probe", "signal-wait", "1"]) { b in
                let created = try b.create()
                expectOK(try b.rt(["start", b.id]))
                #expect(b.waitForOutput(created, containing: "ready"))
                expectOK(try b.rt(["kill", b.id, "USR1"]))
                #expect(try b.waitFor("stopped"))
                #expect(created.rereadStdout() == "ready\nSIGUSR1\n")
            }
        }

        @Test func killUnknownSignalFails() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.create())
                let r = try b.rt(["kill", b.id, "NOTASIGNAL"])
                #expect(!r.ok, "\(r)")
                #expect(try b.status() == "created", "the container is untouched")
            }
        }

        /// --all signals every process of the container (here without a pid namespace, so killing init alone
        /// would not take the exec'd process with it).
        @Test func killAll() throws {
            try withBundle(args: ["/probe", "pause"], edit: { $0.removeNamespace("pid") }) { b in
                expectOK(try b.run(extraArgs: ["--detach"]))
                expectOK(try b.rt(["exec", "--detach", b.id, "/probe", "sleep", "60"]))
                let ps = try b.rt(["ps", "--format", "json", b.id])
                let pids = try #require(try JSONSerialization.jsonObject(with: Data(ps.stdout.utf8)) as? [Int], "\(ps)")
                #expect(pids.count == 2, "\(ps)")
                let k = try b.rt(["kill", "--all", b.id, "KILL"])
                #expect(k.ok, "\(k)")
                #expect(try b.waitFor("stopped"))
                let deadline = Date().addingTimeInterval(5)
                while pids.contains(where: { Host.isAlive(pid_t($0)) }) && Date() < deadline { usleep(10_000) }
                for pid in pids { #expect(!Host.isAlive(pid_t(pid)), "pid \(pid) survived kill --all") }
            }
        }

        @Test func deleteOfRunningContainerFails() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.run(extraArgs: ["--detach"]))
                let r = try b.rt(["delete", b.id])
                #expect(!r.ok, "\(r)")
                #expect(r.stderr.contains("cannot delete container") || r.stderr.contains("running"), "\(r)")
                #expect(try b.status() == "running", "still running after the refused delete")
            }
        }

        @Test func deleteForceOfRunningContainer() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.run(extraArgs: ["--detach"]))
                let pid = try #require(try b.state()?["pid"] as? Int)
                let r = try b.rt(["delete", "--force", b.id])
                #expect(r.ok, "\(r)")
                let gone = try b.rt(["state", b.id])
                #expect(gone.stderr.contains("does not exist"), "\(gone)")
                let deadline = Date().addingTimeInterval(5)
                while Host.isAlive(pid_t(pid)) && Date() < deadline { usleep(10_000) }
                #expect(!Host.isAlive(pid_t(pid)), "the process is gone")
            }
        }

        @Test func deleteForceOfCreatedContainer() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.create())
                let pid = try #require(try b.state()?["pid"] as? Int)
                expectOK(try b.rt(["delete", "--force", b.id]))
                let deadline = Date().addingTimeInterval(5)
                while Host.isAlive(pid_t(pid)) && Date() < deadline { usleep(10_000) }
                #expect(!Host.isAlive(pid_t(pid)))
                #expect(!FileManager.default.fileExists(atPath: b.root + "/" + b.id))
            }
        }

        @Test func startTwiceFails() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.create())
                expectOK(try b.rt(["start", b.id]))
                let again = try b.rt(["start", b.id])
                #expect(!again.ok, "\(again)")
                #expect(try b.status() == "running")
            }
        }

        @Test func startOfStoppedContainerFails() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                expectOK(try b.create())
                expectOK(try b.rt(["start", b.id]))
                #expect(try b.waitFor("stopped"))
                let again = try b.rt(["start", b.id])
                #expect(!again.ok, "\(again)")
                #expect(again.stderr.contains("stopped"), "\(again)")
            }
        }

        @Test(arguments: [["state"], ["kill"], ["kill", "KILL"], ["delete"], ["start"], ["ps"], ["exec"]])
        func unknownIDDoesNotExist(verb: [String]) throws {
            try withBundle(args: ["/probe", "true"]) { b in
                let missing = "it-missing-" + randomHex()
                var args = [verb[0], missing] + verb.dropFirst()
                if verb == ["exec"] { args += ["/probe", "true"] }
                let r = try b.rt(args)
                #expect(!r.ok, "\(r)")
                #expect(r.stderr.contains("does not exist"), "\(r)")
            }
        }

        @Test func listShowsTheContainer() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.create())
                let table = try b.rt(["list"])
                #expect(table.ok, "\(table)")
                let row = table.lines.first { $0.split(separator: " ").first.map(String.init) == b.id }
                #expect(row?.contains("created") == true, "\(table)")

                let quiet = try b.rt(["list", "-q"])
                #expect(quiet.lines.map(String.init) == [b.id], "\(quiet)")

                let json = try b.rt(["list", "--format", "json"])
                let list = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]],
                                        "\(json)")
                let mine = try #require(list.first { $0["id"] as? String == b.id }, "\(json)")
                #expect(mine["status"] as? String == "created")
                #expect((mine["pid"] as? Int ?? 0) > 0)
                #expect(mine["bundle"] as? String == b.path)
            }
        }

        @Test func listOfEmptyRoot() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                let q = try b.rt(["list", "-q"])
                #expect(q.ok, "\(q)")
                #expect(q.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(q)")
            }
        }

        @Test func createWithExistingIDFails() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.create())
                let pid = try b.state()?["pid"] as? Int
                let again = try b.create()
                #expect(!again.ok, "\(again)")
                #expect(again.stderr.contains("exist"), "\(again)")
                let state = try b.state()
                #expect(state?["status"] as? String == "created", "the first container is untouched")
                #expect(state?["pid"] as? Int == pid)
            }
        }

        @Test(arguments: ["bad/id", "..", "with space", "../escape"])
        func invalidIDFails(id: String) throws {
            try withBundle(args: ["/probe", "true"]) { b in
                let r = try b.create(id: id)
                #expect(!r.ok, "\(r)")
                #expect(r.errorLines.count >= 1, "an error message: \(r)")
                let entries = (try? FileManager.default.contentsOfDirectory(atPath: b.root)) ?? []
                #expect(entries.isEmpty, "no state written: \(entries)")
                #expect(!FileManager.default.fileExists(atPath: b.dir + "/escape"))
            }
        }
    }
}
