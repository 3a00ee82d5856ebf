// exec and ps, runc's contract, in a running `/probe pause` container.
import Foundation
import Glibc
import Testing

/// A running container whose init is `/probe pause`.
private func withRunning<T>(edit: (inout [String: Any]) throws -> Void = { _ in },
                            _ body: (Bundle) throws -> T) throws -> T {
    try withBundle(args: ["/probe", "pause"], edit: edit) { b in
        let r = try b.run(extraArgs: ["--detach"])
        try #require(r.ok, "run --detach: \(r)")
        return try body(b)
    }
}

extension Integration {
    @Suite(.serialized) struct Exec {
        @Test func execPrintsOutput() throws {
            try withRunning { b in
                let r = try b.rt(["exec", b.id, "/probe", "echo", "hi", "there"])
                #expect(expectOK(r) == "hi there\n")
            }
        }

        @Test(arguments: [0, 7, 255])
        func execReturnsTheExitCode(code: Int) throws {
            try withRunning { b in
                let r = try b.rt(["exec", b.id, "/probe", "exit", String(code)])
                #expect(r.status == Int32(code), "\(r)")
            }
        }

        @Test func execLooksUpPATH() throws {
            try withRunning { b in
                let r = try b.rt(["exec", b.id, "echo", "via", "path"])
                #expect(expectOK(r) == "via path\n")
            }
        }

        @Test func execMissingBinaryFails() throws {
            try withRunning { b in
                let r = try b.rt(["exec", b.id, "/no/such/binary"])
                #expect(!r.ok, "\(r)")
                #expect(!r.errorLines.isEmpty, "\(r)")
                #expect(try b.status() == "running", "the container survives a failed exec")
            }
        }

        @Test func execProcessFile() throws {
            try withRunning { b in
                let process: [String: Any] = [
                    "args": ["/probe", "env", "FROM_FILE"], "cwd": "/", "env": ["FROM_FILE=yes", "PATH=/bin"],
                    "user": ["uid": 0, "gid": 0], "terminal": false,
                ]
                let file = b.dir + "/process.json"
                try JSONSerialization.data(withJSONObject: process).write(to: URL(fileURLWithPath: file))
                let r = try b.rt(["exec", "--process", file, b.id])
                #expect(expectOK(r) == "yes\n")
            }
        }

        @Test func execEnv() throws {
            try withRunning { b in
                let r = try b.rt(["exec", "--env", "FOO=bar", "--env", "EMPTY=", b.id, "/probe", "env"])
                let env = Set(expectOK(r).split(separator: "\n").map(String.init))
                #expect(env.contains("FOO=bar"), "\(r)")
                #expect(env.contains("EMPTY="), "\(r)")
                #expect(env.contains { $0.hasPrefix("PATH=") }, "the container's env is kept: \(r)")
            }
        }

        @Test func execCwd() throws {
            try withRunning { b in
                let r = try b.rt(["exec", "--cwd", "/tmp", b.id, "/probe", "cwd"])
                #expect(expectOK(r) == "/tmp\n")
            }
        }

        @Test func execUser() throws {
            try withRunning { b in
                let r = try b.rt(["exec", "--user", "1000:1000", b.id, "/probe", "ids"])
                #expect(expectOK(r).hasPrefix("uid=1000 gid=1000 euid=1000 egid=1000"), "\(r)")
            }
        }

        @Test func execJoinsTheContainersNamespaces() throws {
            try withRunning { b in
                let pid = try #require(try b.state()?["pid"] as? Int)
                let types = ["pid", "mnt", "net", "ipc", "uts"]
                let r = try b.rt(["exec", b.id, "/probe", "ns"] + types)
                let inside = expectOK(r).split(separator: "\n").map(String.init)
                let initNS = types.map {
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\($0)")) ?? "?"
                }
                #expect(inside == initNS)
            }
        }

        @Test func execSeesTheContainersProcesses() throws {
            try withRunning { b in
                let r = try b.rt(["exec", b.id, "/probe", "cat", "/proc/1/cmdline"])
                #expect(expectOK(r).hasPrefix("/probe\0pause"), "pid 1 is the container's init: \(r)")
            }
        }

        @Test func execDetach() throws {
            try withRunning { b in
                let r = try b.rt(["exec", "--detach", b.id, "/probe", "sleep", "60"])
                #expect(r.ok, "\(r)")
                let ps = try b.rt(["ps", "--format", "json", b.id])
                let pids = try JSONSerialization.jsonObject(with: Data(ps.stdout.utf8)) as? [Int]
                #expect(pids?.count == 2, "\(ps)")
            }
        }

        @Test func execPidFile() throws {
            try withRunning { b in
                let file = b.dir + "/exec.pid"
                expectOK(try b.rt(["exec", "--detach", "--pid-file", file, b.id, "/probe", "sleep", "60"]))
                let text = Host.readFile(file) ?? ""
                let pid = try #require(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), "pid file: \(text)")
                #expect(Host.cmdline(pid_t(pid)).hasPrefix("/probe sleep 60"))
            }
        }

        @Test func createPidFile() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                let file = b.dir + "/init.pid"
                expectOK(try b.create(extraArgs: ["--pid-file", file]))
                let pid = Int((Host.readFile(file) ?? "").trimmingCharacters(in: .whitespacesAndNewlines))
                let statePid = try b.state()?["pid"] as? Int
                #expect(pid != nil && pid == statePid)
            }
        }

        @Test func execIntoStoppedContainerFails() throws {
            try withBundle(args: ["/probe", "true"]) { b in
                expectOK(try b.create())
                expectOK(try b.rt(["start", b.id]))
                #expect(try b.waitFor("stopped"))
                let r = try b.rt(["exec", b.id, "/probe", "true"])
                #expect(!r.ok, "\(r)")
                #expect(r.stderr.contains("stopped"), "\(r)")
            }
        }

        @Test func execTerminalThroughConsoleSocket() throws {
            try withRunning { b in
                let socket = try ConsoleSocket(path: b.dir + "/console.sock")
                let process: [String: Any] = [
                    "args": ["/bin/sh", "-c", "/probe isatty 0; /probe isatty 1; /probe tty-size"], "cwd": "/",
                    "env": ["PATH=/bin"], "user": ["uid": 0, "gid": 0], "terminal": true,
                    "consoleSize": ["height": 33, "width": 77],
                ]
                let file = b.dir + "/process.json"
                try JSONSerialization.data(withJSONObject: process).write(to: URL(fileURLWithPath: file))
                let exec = try b.spawn(["exec", "--detach", "--console-socket", socket.path, "--process", file, b.id])
                let master = try #require(socket.receiveFD(), "the runtime sends the pty master")
                defer { close(master) }
                let r = exec.wait()
                #expect(r.ok, "\(r)")
                let out = readTerminal(master).replacingOccurrences(of: "\r", with: "")
                #expect(out == "yes\nyes\n33 77\n")
            }
        }

        @Test func runTerminalThroughConsoleSocket() throws {
            try withBundle(args: ["/probe", "stat", "/dev/console"], edit: { $0[path: "process.terminal"] = true }) { b in
                let socket = try ConsoleSocket(path: b.dir + "/console.sock")
                try b.writeConfig()
                let run = try b.spawn(["run", "--detach", "--console-socket", socket.path, "--bundle", b.path, b.id])
                let master = try #require(socket.receiveFD(), "the runtime sends the pty master")
                defer { close(master) }
                let r = run.wait()
                #expect(r.ok, "\(r)")
                let out = readTerminal(master)
                #expect(out.hasPrefix("chr "), "/dev/console is the pty: \(out)")
                #expect(out.contains(" 136:"), "a /dev/pts device: \(out)")
            }
        }

        @Test func psTable() throws {
            try withRunning { b in
                let pid = try #require(try b.state()?["pid"] as? Int)
                let r = try b.rt(["ps", b.id])
                let out = expectOK(r)
                let header = out.split(separator: "\n").first.map(String.init) ?? ""
                let pidColumn = header.split(separator: " ").firstIndex(of: "PID")
                #expect(pidColumn != nil, "\(r)")
                let pids = out.split(separator: "\n").dropFirst().compactMap { line -> Int? in
                    let f = line.split(separator: " ")
                    guard let c = pidColumn, c < f.count else { return nil }
                    return Int(f[c])
                }
                #expect(pids == [pid], "\(r)")
            }
        }

        @Test func psJSON() throws {
            try withRunning { b in
                let pid = try #require(try b.state()?["pid"] as? Int)
                let r = try b.rt(["ps", "--format", "json", b.id])
                let pids = try JSONSerialization.jsonObject(with: Data(expectOK(r).utf8)) as? [Int]
                #expect(pids == [pid], "\(r)")
            }
        }
    }
}
