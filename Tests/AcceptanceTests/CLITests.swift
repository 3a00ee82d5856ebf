// The berth CLI against a private berthd (Daemon.swift): run/exec/logs/stop/rm flows, -it through a pty,
// ps/inspect --format, wait and kill exit codes, images/tag/rmi/save/load, cp, and docker's error contract.
import Foundation
import Glibc
import Testing

/// One daemon per suite, started on first use; torn down by the suite's last test and, whatever happens, at exit.
final class SuiteDaemon: @unchecked Sendable {
    private var result: Result<Daemon, Error>?
    private let lock = NSLock()

    /// The suite's daemon; a new one when the last one died (recorded as an issue of the test that asks, with
    /// the dead one's log, so that one crash fails one test and not every test after it).
    func get() throws -> Daemon {
        try lock.withLock {
            if case .success(let d)? = result, !d.isAlive {
                Issue.record("berthd died during an earlier test; its log ends with:\n\(d.logTail())")
                d.tearDown()
                result = nil
            }
            if result == nil { result = Result { try Daemon() } }
            return try result!.get()
        }
    }

    func tearDown() {
        lock.withLock {
            if case .success(let d)? = result { d.tearDown() }
        }
    }
}

/// A full container id.
func isHex64<S: StringProtocol>(_ s: S) -> Bool { s.count == 64 && s.allSatisfy { $0.isHexDigit && !$0.isUppercase } }

/// The parent of the CLI suites: serialized, so one daemon runs at a time.
@Suite(.serialized, .enabled(if: CLIRootTests.runnable, "BERTH_ROOT_TESTS, BERTH_BERTHD or BERTH_CLI is not set"))
struct BerthCLI {
    @Suite(.serialized) struct Containers {
        static let daemon = SuiteDaemon()
        var d: Daemon { get throws { try Self.daemon.get() } }

        @Test func runRmEcho() throws {
            let d = try d
            let r = try d.berth(["run", "--rm", "busybox", "echo", "hello", "berth"])
            #expect(expectSuccess(r) == "hello berth\n")
            #expect(r.stderr.isEmpty, "\(r)")
            let ps = try d.berth(["ps", "-aq"])
            #expect(expectSuccess(ps).isEmpty, "--rm left a container: \(ps)")
        }

        @Test func runExitCodeAndStreams() throws {
            let d = try d
            let r = try d.berth(["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"])
            #expect(r.status == 7, "\(r)")
            #expect(r.stdout == "out\n", "\(r)")
            #expect(r.stderr == "err\n", "\(r)")
        }

        @Test func runStdin() throws {
            let d = try d
            let r = try d.berth(["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"], stdin: "piped in\nline 2\n")
            #expect(expectSuccess(r) == "piped in\nline 2\ndone\n")
        }

        @Test func runFlags() throws {
            let d = try d
            // combined short flags, --flag=value, repeated -e, -w, -u, -h, --entrypoint, flags end at the image
            let r = try d.berth(["run", "--rm", "-e", "A=1", "--env=B=two", "-w", "/tmp", "-u", "65534", "-h", "acc-host",
                                 "--entrypoint", "sh", "busybox", "-c", "echo $A $B $(pwd) $(id -u) $(hostname)"])
            #expect(expectSuccess(r) == "1 two /tmp 65534 acc-host\n")
            let ro = try d.berth(["run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /x 2>/dev/null; echo $?"])
            #expect(expectSuccess(ro) == "1\n", "--read-only rootfs was writable")
            let tmpfs = try d.berth(["run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c",
                                     "touch /scratch/x && echo ok"])
            #expect(expectSuccess(tmpfs) == "ok\n")
            let host = FileManager.default.temporaryDirectory.path + "/berth-acc-bind-\(getpid())"
            try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: host) }
            try "from host\n".write(toFile: host + "/f", atomically: true, encoding: .utf8)
            let bind = try d.berth(["run", "--rm", "-v", "\(host):/mnt:ro", "busybox", "cat", "/mnt/f"])
            #expect(expectSuccess(bind) == "from host\n")
        }

        @Test func detachedLifecycle() throws {
            let d = try d
            let run = try d.berth(["run", "-d", "--name", "acc-life", "busybox", "sh", "-c",
                                   "echo started; while true; do sleep 0.1; done"])
            let id = expectSuccess(run).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(isHex64(id), "run -d printed \(run)")
            defer { _ = try? d.berth(["rm", "-f", "acc-life"]) }
            #expect(try d.waitFor("acc-life", format: "{{.State.Status}}", "running"))

            // logs -f keeps streaming until interrupted
            let follow = try d.spawn(["logs", "-f", "acc-life"])
            var sawStarted = false
            for _ in 0..<200 where !sawStarted {
                sawStarted = follow.readStdout().contains("started")
                usleep(25_000)
            }
            #expect(sawStarted, "logs -f printed \(follow.readStdout())")
            #expect(!follow.isReaped)
            follow.signal(SIGINT)
            follow.wait(timeout: 5)

            let ex = try d.berth(["exec", "acc-life", "sh", "-c", "echo in exec; exit 4"])
            #expect(ex.status == 4, "\(ex)")
            #expect(ex.stdout == "in exec\n", "\(ex)")
            let exi = try d.berth(["exec", "-i", "acc-life", "cat"], stdin: "exec stdin\n")
            #expect(expectSuccess(exi) == "exec stdin\n")
            let env = try d.berth(["exec", "-e", "X=y", "-w", "/tmp", "acc-life", "sh", "-c", "echo $X $(pwd)"])
            #expect(expectSuccess(env) == "y /tmp\n")

            let top = try d.berth(["top", "acc-life"])
            #expect(expectSuccess(top).contains("PID"), "\(top)")

            let stop = try d.berth(["stop", "-t", "1", "acc-life"])
            #expect(expectSuccess(stop) == "acc-life\n")
            #expect(try d.waitFor("acc-life", format: "{{.State.Status}}", "exited"))
            let logs = try d.berth(["logs", "acc-life"])
            #expect(expectSuccess(logs).hasPrefix("started\n"))
            let rm = try d.berth(["rm", "acc-life"])
            #expect(expectSuccess(rm) == "acc-life\n")
            let gone = try d.berth(["inspect", "acc-life"])
            #expect(gone.status == 1, "\(gone)")
            #expect(gone.stderr.contains("No such object: acc-life"), "\(gone)")
        }

        @Test func interactiveTTY() throws {
            let d = try d
            // script(1) gives berth a pty as its terminal
            let cmd = "\(d.cli) -H \(d.host) run -it --rm busybox sh -c 'tty; echo $((6*7)); exit 3'"
            let r = try CLIProc(["script", "-qec", cmd, "/dev/null"], ioDir: d.io).wait(timeout: 30)
            #expect(r.status == 3, "\(r)")
            #expect(r.stdout.contains("/dev/pts/"), "\(r)")
            #expect(r.stdout.contains("42\r\n"), "a tty turns \\n into \\r\\n: \(r)")
            let notty = try d.berth(["run", "-it", "--rm", "busybox", "true"])
            #expect(notty.status == 1 && notty.stderr.contains("the input device is not a TTY"), "\(notty)")
        }

        @Test func psFormat() throws {
            let d = try d
            _ = try d.berth(["rm", "-f", "acc-ps1", "acc-ps2"])
            expectSuccess(try d.berth(["run", "--name", "acc-ps1", "--label", "tier=one", "busybox", "true"]))
            let created = try d.berth(["create", "--name", "acc-ps2", "busybox", "sleep", "5"])
            #expect(isHex64(expectSuccess(created).trimmingCharacters(in: .whitespacesAndNewlines)))
            defer { _ = try? d.berth(["rm", "-f", "acc-ps1", "acc-ps2"]) }

            let table = try d.berth(["ps", "-a"])
            let header = expectSuccess(table).split(separator: "\n").first.map(String.init) ?? ""
            #expect(header.hasPrefix("CONTAINER ID   IMAGE"), "\(table)")
            for col in ["COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"] { #expect(header.contains(col), "\(table)") }
            let row1 = table.lines.first { $0.hasSuffix("acc-ps1") }.map(String.init) ?? ""
            #expect(row1.contains("Exited (0) "), "\(table)")
            #expect(row1.contains(" ago"), "\(table)")
            #expect(row1.contains("\"true\""), "\(table)")

            let names = try d.berth(["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Label \"tier\"}}"])
            #expect(Set(expectSuccess(names).split(separator: "\n")) == ["acc-ps1 exited one", "acc-ps2 created "])

            let t = try d.berth(["ps", "-a", "--filter", "name=acc-ps1", "--format", "table {{.Names}}\\t{{.Status}}"])
            #expect(expectSuccess(t).split(separator: "\n").first?.hasPrefix("NAMES     STATUS") == true, "\(t)")

            let json = try d.berth(["ps", "-a", "--filter", "name=acc-ps2", "--format", "json"])
            let obj = try JSONSerialization.jsonObject(with: Data(expectSuccess(json).utf8)) as? [String: Any]
            #expect(obj?["Names"] as? String == "acc-ps2", "\(json)")
            #expect(obj?["State"] as? String == "created", "\(json)")

            let q = try d.berth(["ps", "-q"])
            #expect(!expectSuccess(q).contains(String((obj?["ID"] as? String ?? "x").prefix(12))), "ps -q lists only running")
            let qa = try d.berth(["ps", "-aq", "--no-trunc"])
            #expect(expectSuccess(qa).split(separator: "\n").allSatisfy { isHex64($0) }, "\(qa)")
        }

        @Test func inspectFormat() throws {
            let d = try d
            _ = try d.berth(["rm", "-f", "acc-insp"])
            let run = try d.berth(["run", "--name", "acc-insp", "-e", "K=v", "busybox", "sh", "-c", "exit 5"])
            #expect(run.status == 5, "\(run)")
            defer { _ = try? d.berth(["rm", "-f", "acc-insp"]) }
            let f = try d.berth(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{json .Config.Cmd}} {{.Name}}",
                                 "acc-insp"])
            #expect(expectSuccess(f) == "exited 5 [\"sh\",\"-c\",\"exit 5\"] /acc-insp\n")
            let env = try d.berth(["inspect", "-f", "{{range .Config.Env}}{{if eq . \"K=v\"}}found{{end}}{{end}}", "acc-insp"])
            #expect(expectSuccess(env) == "found\n")
            let raw = try d.berth(["inspect", "acc-insp"])
            let arr = try JSONSerialization.jsonObject(with: Data(expectSuccess(raw).utf8)) as? [[String: Any]]
            #expect(arr?.count == 1)
            #expect(isHex64(arr?.first?["Id"] as? String ?? ""), "\(raw)")
            #expect(raw.stdout.hasPrefix("[\n    {\n        \""), "docker's 4-space indent: \(raw)")
            let img = try d.berth(["inspect", "--type", "image", "-f", "{{.Os}}", "busybox"])
            #expect(expectSuccess(img) == "linux\n")
        }

        @Test func waitExitCodes() throws {
            let d = try d
            _ = try d.berth(["rm", "-f", "acc-wait"])
            expectSuccess(try d.berth(["run", "-d", "--name", "acc-wait", "busybox", "sh", "-c", "sleep 0.5; exit 42"]))
            defer { _ = try? d.berth(["rm", "-f", "acc-wait"]) }
            let w = try d.berth(["wait", "acc-wait"])
            #expect(expectSuccess(w) == "42\n")
            let again = try d.berth(["wait", "acc-wait"])
            #expect(expectSuccess(again) == "42\n", "wait on an exited container answers at once")
        }

        @Test func killSignals() throws {
            let d = try d
            _ = try d.berth(["rm", "-f", "acc-trap", "acc-kill"])
            expectSuccess(try d.berth(["run", "-d", "--name", "acc-trap", "busybox", "sh", "-c",
                                       "trap 'echo got USR1; exit 10' USR1; echo ready; while true; do sleep 0.1; done"]))
            expectSuccess(try d.berth(["run", "-d", "--name", "acc-kill", "busybox", "sleep", "1000"]))
            defer { _ = try? d.berth(["rm", "-f", "acc-trap", "acc-kill"]) }
            var ready = false
            for _ in 0..<100 where !ready {
                ready = try d.berth(["logs", "acc-trap"]).stdout.contains("ready")
                usleep(50_000)
            }
            #expect(ready)
            #expect(expectSuccess(try d.berth(["kill", "-s", "USR1", "acc-trap"])) == "acc-trap\n")
            #expect(expectSuccess(try d.berth(["wait", "acc-trap"])) == "10\n")
            #expect(try d.berth(["logs", "acc-trap"]).stdout.contains("got USR1"))
            #expect(expectSuccess(try d.berth(["kill", "acc-kill"])) == "acc-kill\n")
            #expect(expectSuccess(try d.berth(["wait", "acc-kill"])) == "137\n")
            let notRunning = try d.berth(["kill", "acc-kill"])
            #expect(notRunning.status == 1 && notRunning.stderr.hasPrefix("Error response from daemon: "), "\(notRunning)")
        }

        @Test func restartPauseRename() throws {
            let d = try d
            _ = try d.berth(["rm", "-f", "acc-ren", "acc-ren2"])
            expectSuccess(try d.berth(["run", "-d", "--name", "acc-ren", "busybox", "sleep", "1000"]))
            defer { _ = try? d.berth(["rm", "-f", "acc-ren", "acc-ren2"]) }
            #expect(expectSuccess(try d.berth(["pause", "acc-ren"])) == "acc-ren\n")
            #expect(try d.waitFor("acc-ren", format: "{{.State.Status}}", "paused"))
            #expect(expectSuccess(try d.berth(["unpause", "acc-ren"])) == "acc-ren\n")
            #expect(try d.waitFor("acc-ren", format: "{{.State.Status}}", "running"))
            expectSuccess(try d.berth(["rename", "acc-ren", "acc-ren2"]))
            #expect(expectSuccess(try d.berth(["restart", "-t", "1", "acc-ren2"])) == "acc-ren2\n")
            #expect(try d.waitFor("acc-ren2", format: "{{.State.Status}} {{.Name}}", "running /acc-ren2"))
        }

        @Test func cp() throws {
            let d = try d
            _ = try d.berth(["rm", "-f", "acc-cp"])
            expectSuccess(try d.berth(["run", "-d", "--name", "acc-cp", "busybox", "sleep", "1000"]))
            defer { _ = try? d.berth(["rm", "-f", "acc-cp"]) }
            let local = d.dir + "/cp"
            try FileManager.default.createDirectory(atPath: local + "/tree/sub", withIntermediateDirectories: true)
            try "file one\n".write(toFile: local + "/one.txt", atomically: true, encoding: .utf8)
            try "deep\n".write(toFile: local + "/tree/sub/deep.txt", atomically: true, encoding: .utf8)
            // host → container: to a new name, into a directory, a whole tree
            expectSuccess(try d.berth(["cp", local + "/one.txt", "acc-cp:/tmp/renamed.txt"]))
            expectSuccess(try d.berth(["cp", local + "/one.txt", "acc-cp:/tmp"]))
            expectSuccess(try d.berth(["cp", local + "/tree", "acc-cp:/tmp/"]))
            let ls = try d.berth(["exec", "acc-cp", "sh", "-c", "cat /tmp/renamed.txt /tmp/one.txt /tmp/tree/sub/deep.txt"])
            #expect(expectSuccess(ls) == "file one\nfile one\ndeep\n")
            // container → host
            expectSuccess(try d.berth(["exec", "acc-cp", "sh", "-c", "mkdir -p /out/d && echo inside > /out/d/f"]))
            expectSuccess(try d.berth(["cp", "acc-cp:/out/d/f", local + "/back.txt"]))
            #expect((try? String(contentsOfFile: local + "/back.txt", encoding: .utf8)) == "inside\n")
            expectSuccess(try d.berth(["cp", "acc-cp:/out", local]))
            #expect((try? String(contentsOfFile: local + "/out/d/f", encoding: .utf8)) == "inside\n")
            let tarOut = try d.berth(["cp", "acc-cp:/out/d/f", "-"])
            #expect(expectSuccess(tarOut).contains("inside"), "cp to - writes a tar")
        }

        @Test func errors() throws {
            let d = try d
            let missing = try d.berth(["run", "--rm", "--pull", "never", "acc-no-such-image:1", "true"])
            #expect(missing.status == 125, "\(missing)")
            #expect(missing.stderr.contains("Error response from daemon"), "\(missing)")
            let notFound = try d.berth(["run", "--rm", "busybox", "/no/such/binary"])
            #expect(notFound.status == 127, "\(notFound)")
            let rm = try d.berth(["rm", "acc-no-such-container"])
            #expect(rm.status == 1, "\(rm)")
            #expect(rm.stderr.hasPrefix("Error response from daemon: "), "\(rm)")
            let flag = try d.berth(["run", "--no-such-flag", "busybox"])
            #expect(flag.status == 125 && flag.stderr.hasPrefix("unknown flag: --no-such-flag"), "\(flag)")
            let unreachable = try CLIProc([d.cli, "-H", "unix:///tmp/berth-acc-nowhere.sock", "ps"], ioDir: d.io).wait()
            #expect(unreachable.status == 1, "\(unreachable)")
            #expect(unreachable.stderr.contains(
                "Cannot connect to the berth daemon at unix:///tmp/berth-acc-nowhere.sock: is berthd running?"), "\(unreachable)")
        }

        @Test func zzTearDown() { Self.daemon.tearDown() }
    }

    @Suite(.serialized) struct Images {
        static let daemon = SuiteDaemon()
        var d: Daemon { get throws { try Self.daemon.get() } }

        @Test func imagesTagRmi() throws {
            let d = try d
            let list = try d.berth(["images"])
            let header = expectSuccess(list).split(separator: "\n").first.map(String.init) ?? ""
            #expect(header.hasPrefix("REPOSITORY"), "\(list)")
            for col in ["TAG", "IMAGE ID", "CREATED", "SIZE"] { #expect(header.contains(col), "\(list)") }
            let names = try d.berth(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            #expect(expectSuccess(names).split(separator: "\n").contains { $0 == "busybox:latest" }, "\(names)")

            expectSuccess(try d.berth(["tag", "busybox", "acc/box:v1"]))
            let tagged = try d.berth(["images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"])
            let line = tagged.lines.first { $0.hasPrefix("acc/box v1 ") }
            #expect(line != nil, "\(tagged)")
            #expect(line.map { String($0.split(separator: " ")[2]).count == 12 } == true, "short ids: \(tagged)")
            let ran = try d.berth(["run", "--rm", "acc/box:v1", "echo", "tagged"])
            #expect(expectSuccess(ran) == "tagged\n")
            let rmi = try d.berth(["rmi", "acc/box:v1"])
            #expect(expectSuccess(rmi).contains("Untagged: "), "\(rmi)")
            #expect(!(try d.berth(["images", "--format", "{{.Repository}}"]).stdout.contains("acc/box")))
            let again = try d.berth(["rmi", "acc/box:v1"])
            #expect(again.status == 1 && again.stderr.hasPrefix("Error response from daemon: "), "\(again)")
            let hist = try d.berth(["history", "busybox"])
            #expect(expectSuccess(hist).hasPrefix("IMAGE "), "\(hist)")
        }

        @Test func saveLoad() throws {
            let d = try d
            expectSuccess(try d.berth(["tag", "busybox", "acc/saved:1"]))
            let out = d.dir + "/saved.tar"
            expectSuccess(try d.berth(["save", "-o", out, "acc/saved:1"]))
            let list = try CLIProc(["tar", "-tf", out], ioDir: d.io).wait()
            #expect(expectSuccess(list).split(separator: "\n").contains { $0.hasSuffix("manifest.json") || $0.hasSuffix("index.json") },
                    "\(list)")
            expectSuccess(try d.berth(["rmi", "acc/saved:1"]))
            let load = try d.berth(["load", "-i", out])
            #expect(expectSuccess(load).contains("Loaded image"), "\(load)")
            let names = try d.berth(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            #expect(expectSuccess(names).contains("acc/saved:1"), "\(names)")
            let ran = try d.berth(["run", "--rm", "acc/saved:1", "echo", "loaded"])
            #expect(expectSuccess(ran) == "loaded\n")
            // stdout not a terminal: the tar goes there
            let toStdout = try CLIProc(["sh", "-c", "\"$0\" -H \"$1\" save busybox | tar -t | grep -c json", d.cli, d.host],
                                       ioDir: d.io).wait()
            #expect(Int(toStdout.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 1, "\(toStdout)")
        }

        @Test func systemVerbs() throws {
            let d = try d
            let v = try d.berth(["version", "--format", "{{.Server.ApiVersion}}"])
            #expect(!expectSuccess(v).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(v)")
            let info = try d.berth(["info", "--format", "{{.Images}}"])
            #expect(Int(expectSuccess(info).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 1, "\(info)")
            let df = try d.berth(["system", "df"])
            #expect(expectSuccess(df).hasPrefix("TYPE "), "\(df)")
            _ = try d.berth(["run", "--name", "acc-prune", "busybox", "true"])
            let prune = try d.berth(["container", "prune", "-f"])
            #expect(expectSuccess(prune).contains("Total reclaimed space:"), "\(prune)")
            #expect(try d.berth(["ps", "-aq", "--filter", "name=acc-prune"]).stdout.isEmpty)
        }

        @Test func zzTearDown() { Self.daemon.tearDown() }
    }
}
