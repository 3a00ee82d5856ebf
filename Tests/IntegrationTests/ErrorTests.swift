// Errors in wrong states and runc's --log/--log-format json contract (what containerd reads on failure).
import Foundation
import Glibc
import Testing

/// The last non-empty line of a --log-format json file, decoded.
private func lastLogEntry(_ path: String) -> [String: Any]? {
    guard let text = Host.readFile(path),
          let last = text.split(separator: "\n").last(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty })
    else { return nil }
    return (try? JSONSerialization.jsonObject(with: Data(last.utf8))) as? [String: Any]
}

extension Integration {
    @Suite(.serialized) struct Errors {
        @Test func logJSONOnUnknownContainer() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                let log = b.dir + "/log.json"
                let r = try b.rt(["--log", log, "--log-format", "json", "state", "it-missing"])
                #expect(!r.ok, "\(r)")
                let entry = try #require(lastLogEntry(log), "a JSON line in \(log): \(Host.readFile(log) ?? "<none>")")
                #expect(entry["level"] as? String == "error")
                let msg = entry["msg"] as? String ?? ""
                #expect(msg.contains("does not exist"), "\(entry)")
            }
        }

        @Test func logJSONOnFailedRun() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                b.config[path: "process.cwd"] = "relative"
                try b.writeConfig()
                let log = b.dir + "/log.json"
                let r = try b.rt(["--log", log, "--log-format", "json", "run", "--bundle", b.path, b.id])
                #expect(r.status == 1, "\(r)")
                let entry = try #require(lastLogEntry(log), "a JSON line in \(log): \(Host.readFile(log) ?? "<none>")")
                #expect(entry["level"] as? String == "error")
                #expect(!(entry["msg"] as? String ?? "").isEmpty, "\(entry)")
            }
        }

        @Test func everyLogLineIsJSON() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                let log = b.dir + "/log.json"
                _ = try b.rt(["--log", log, "--log-format", "json", "kill", "it-missing", "KILL"])
                let lines = (Host.readFile(log) ?? "").split(separator: "\n").filter { !$0.isEmpty }
                #expect(!lines.isEmpty)
                for line in lines {
                    let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
                    #expect(obj?["level"] is String && obj?["msg"] is String, "not a log object: \(line)")
                }
            }
        }

        @Test func killOfStoppedContainerFails() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                expectOK(try b.create())
                expectOK(try b.rt(["start", b.id]))
                #expect(try b.waitFor("stopped"))
                let r = try b.rt(["kill", b.id, "KILL"])
                #expect(!r.ok, "\(r)")
                #expect(!r.errorLines.isEmpty)
            }
        }

        @Test func deleteOfCreatedContainer() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.create())
                let pid = try #require(try b.state()?["pid"] as? Int)
                let r = try b.rt(["delete", b.id])
                #expect(r.ok, "runc deletes a created container without --force: \(r)")
                let deadline = Date().addingTimeInterval(5)
                while Host.isAlive(pid_t(pid)) && Date() < deadline { usleep(10_000) }
                #expect(!Host.isAlive(pid_t(pid)))
            }
        }

        @Test func processKilledBehindTheRuntimesBackIsStopped() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.run(extraArgs: ["--detach"]))
                let pid = try #require(try b.state()?["pid"] as? Int)
                kill(pid_t(pid), SIGKILL)
                #expect(try b.waitFor("stopped"), "state notices the exit")
                expectOK(try b.rt(["delete", b.id]))
            }
        }

        @Test func pauseAndResume() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.run(extraArgs: ["--detach"]))
                expectOK(try b.rt(["pause", b.id]))
                #expect(try b.status() == "paused")
                let again = try b.rt(["start", b.id])
                #expect(!again.ok, "start of a paused container: \(again)")
                expectOK(try b.rt(["resume", b.id]))
                #expect(try b.status() == "running")
            }
        }

        @Test func resumeOfRunningContainerFails() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.run(extraArgs: ["--detach"]))
                let r = try b.rt(["resume", b.id])
                #expect(!r.ok, "\(r)")
                #expect(try b.status() == "running")
            }
        }

        @Test func unknownCommandFails() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                let r = try b.rt(["no-such-command"])
                #expect(!r.ok, "\(r)")
            }
        }
    }
}
