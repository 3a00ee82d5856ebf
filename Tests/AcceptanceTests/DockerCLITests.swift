// The real docker CLI (28, client only) with DOCKER_HOST at a private berthd (ClientSupport.swift): run/exec/logs,
// -it through a pty, ps/inspect formats and filters, wait/kill codes, pull/push against a local registry, images,
// tag, rmi, save/load, cp, rename, pause, restart, top, stats, events, system df, prune, info and version.
import Foundation
import Glibc
import Testing

extension DockerClients {
    @Suite(.serialized, .enabled(if: ClientTests.dockerCLI, "BERTH_ROOT_TESTS, BERTH_BERTHD or the docker CLI is missing"))
    struct DockerCLI {
        static let daemon = SuiteClientDaemon()
        var d: ClientDaemon { get throws { try Self.daemon.get() } }

        /// A container name of its own for each use.
        static func name(_ s: String) -> String { "acc-\(s)-\(UInt32.random(in: 0 ... .max))" }

        @Test func runRmEcho() throws {
            let d = try d
            let r = try d.docker(["run", "--rm", "busybox", "echo", "hello", "docker"])
            #expect(r.ok, "\(r)")
            #expect(r.stdout == "hello docker\n", "\(r)")
            let ps = try d.docker(["ps", "-aq"])
            #expect(ps.ok && ps.out.isEmpty, "--rm left a container: \(ps)")
        }

        @Test func runExitCodesAndStreams() throws {
            let d = try d
            let three = try d.docker(["run", "--rm", "busybox", "sh", "-c", "exit 3"])
            #expect(three.status == 3, "\(three)")
            let f = try d.docker(["run", "--rm", "busybox", "false"])
            #expect(f.status == 1, "\(f)")
            let streams = try d.docker(["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"])
            #expect(streams.status == 7 && streams.stdout == "out\n" && streams.stderr.contains("err\n"), "\(streams)")
            let missing = try d.docker(["run", "--rm", "busybox", "/no/such/binary"])
            #expect(missing.status == 127, "a missing executable is docker's 127: \(missing)")
            let stdin = try d.docker(["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"], stdin: "piped\nin\n")
            #expect(stdin.ok && stdin.stdout == "piped\nin\ndone\n", "\(stdin)")
        }

        @Test func detachedLogsExecStopRm() throws {
            let d = try d
            let n = Self.name("logs")
            defer { _ = try? d.docker(["rm", "-f", n]) }
            let run = try d.docker(["run", "-d", "--name", n, "busybox", "sh", "-c",
                                    "trap 'exit 0' TERM; for i in 1 2 3 4 5; do echo line $i; done; "
                                    + "while [ ! -e /tmp/more ]; do sleep 0.1; done; echo after; while true; do sleep 0.1; done"])
            #expect(run.ok && isHex64(run.out), "\(run)")
            #expect(try eventually(10) { try d.docker(["logs", n]).stdout.split(separator: "\n").count >= 5 })
            let logs = try d.docker(["logs", n])
            #expect(logs.stdout == "line 1\nline 2\nline 3\nline 4\nline 5\n", "\(logs)")
            let tail = try d.docker(["logs", "--tail", "2", n])
            #expect(tail.stdout == "line 4\nline 5\n", "\(tail)")
            let ts = try d.docker(["logs", "--timestamps", "--tail", "1", n])
            let parts = ts.out.split(separator: " ", maxSplits: 1)
            #expect(parts.count == 2 && parts[1] == "line 5" && parts[0].contains("T") && parts[0].hasSuffix("Z")
                    && ISO8601DateFormatter().date(from: String(parts[0]).replacingOccurrences(of: #"\.\d+"#, with: "", options: .regularExpression)) != nil,
                    "--timestamps: \(ts)")
            // logs -f: the old lines, then a new one, and it ends when the container does
            let follow = try d.dockerSpawn(["logs", "-f", n])
            #expect(try eventually(10) { follow.readStdout().contains("line 5\n") }, "logs -f: \(follow.readStdout())")
            let ex = try d.docker(["exec", n, "touch", "/tmp/more"])
            #expect(ex.ok, "\(ex)")
            #expect(try eventually(10) { follow.readStdout().contains("after\n") }, "logs -f did not follow: \(follow.readStdout())")
            // exec: output and exit codes
            let out = try d.docker(["exec", n, "sh", "-c", "echo in-exec; echo e >&2"])
            #expect(out.ok && out.stdout == "in-exec\n" && out.stderr.contains("e\n"), "\(out)")
            let five = try d.docker(["exec", n, "sh", "-c", "exit 5"])
            #expect(five.status == 5, "exec's exit code: \(five)")
            let env = try d.docker(["exec", "-e", "X=y", "-w", "/etc", n, "sh", "-c", "echo $X $(pwd)"])
            #expect(env.stdout == "y /etc\n", "\(env)")
            let start = Date()
            let stop = try d.docker(["stop", n])
            #expect(stop.ok && stop.out == n, "\(stop)")
            #expect(Date().timeIntervalSince(start) < 8, "stop of a container that exits on TERM took \(Date().timeIntervalSince(start)) s")
            let fr = follow.wait(timeout: 10)
            #expect(!fr.timedOut && fr.status == 0, "logs -f did not end with the container: \(fr)")
            let code = try d.docker(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", n])
            #expect(code.out == "exited 0", "\(code)")
            let rm = try d.docker(["rm", n])
            #expect(rm.ok, "\(rm)")
            let gone = try d.docker(["inspect", n])
            #expect(gone.status == 1 && gone.stderr.lowercased().contains("no such"), "\(gone)")
        }

        @Test func interactiveTTY() throws {
            let d = try d
            guard let docker = ClientTests.docker else { return }
            // stdin stays open (sleep) so script(1) does not send its EOF into the container's terminal
            let r = try d.command(["sh", "-c", "sleep 4 | script -qec \"\(docker) run -it --rm busybox sh -c 'tty; stty size; exit 3'\" /dev/null"],
                                  timeout: 60)
            #expect(r.status == 3, "\(r)")
            #expect(r.stdout.contains("/dev/pts/"), "\(r)")
            let notty = try d.docker(["run", "--rm", "busybox", "sh", "-c", "tty; true"])
            #expect(notty.stdout.contains("not a tty"), "\(notty)")
        }

        @Test func psFormatAndFilters() throws {
            let d = try d
            let up = Self.name("up"), ex = Self.name("exited")
            defer { _ = try? d.docker(["rm", "-f", up, ex]) }
            #expect(try d.docker(["run", "-d", "--name", up, "--label", "acc=up", "busybox", "sleep", "300"]).ok)
            let r = try d.docker(["run", "--name", ex, "--label", "acc=ex", "busybox", "sh", "-c", "exit 4"])
            #expect(r.status == 4, "\(r)")
            let all = try d.docker(["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
            #expect(all.ok, "\(all)")
            let lines = all.lines.map(String.init)
            #expect(lines.contains { $0.hasPrefix(up + " Up ") }, "\(all)")
            #expect(lines.contains { $0.hasPrefix(ex + " Exited (4) ") }, "\(all)")
            let running = try d.docker(["ps", "--format", "{{.Names}}"])
            #expect(running.lines.contains(Substring(up)) && !running.lines.contains(Substring(ex)), "\(running)")
            let exited = try d.docker(["ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"])
            #expect(exited.lines.contains(Substring(ex)) && !exited.lines.contains(Substring(up)), "\(exited)")
            let byName = try d.docker(["ps", "-a", "--filter", "name=" + up, "--format", "{{.Names}}"])
            #expect(byName.lines == [Substring(up)], "\(byName)")
            let byLabel = try d.docker(["ps", "-a", "--filter", "label=acc=ex", "--format", "{{.Names}} {{.Label \"acc\"}}"])
            #expect(byLabel.lines == [Substring(ex + " ex")], "\(byLabel)")
            let exitedCode = try d.docker(["ps", "-a", "--filter", "exited=4", "--format", "{{.Names}}"])
            #expect(exitedCode.lines.contains(Substring(ex)), "\(exitedCode)")
            let q = try d.docker(["ps", "-aq", "--no-trunc", "--filter", "name=" + up])
            #expect(q.lines.count == 1 && isHex64(q.lines[0]), "\(q)")
            let image = try d.docker(["ps", "-a", "--filter", "name=" + ex, "--format", "{{.Image}} {{.Command}}"])
            #expect(image.out.hasPrefix("busybox "), "\(image)")
        }

        @Test func inspectWaitKill() throws {
            let d = try d
            let a = Self.name("wait"), b = Self.name("kill"), c = Self.name("killkill"), t = Self.name("term")
            defer { _ = try? d.docker(["rm", "-f", a, b, c, t]) }
            #expect(try d.docker(["run", "-d", "--name", a, "busybox", "sh", "-c", "sleep 1; exit 9"]).ok)
            let w = try d.docker(["wait", a])
            #expect(w.ok && w.out == "9", "\(w)")
            let ins = try d.docker(["inspect", "--format", "{{.State.ExitCode}} {{.State.Status}} {{.State.Running}}", a])
            #expect(ins.out == "9 exited false", "\(ins)")
            let pidFmt = try d.docker(["inspect", "--format", "{{.Name}} {{.Config.Image}} {{json .Config.Cmd}}", a])
            #expect(pidFmt.out == "/\(a) busybox [\"sh\",\"-c\",\"sleep 1; exit 9\"]", "\(pidFmt)")

            #expect(try d.docker(["run", "-d", "--name", b, "busybox", "sleep", "300"]).ok)
            let k = try d.docker(["kill", b])
            #expect(k.ok && k.out == b, "\(k)")
            let wb = try d.docker(["wait", b])
            #expect(wb.out == "137", "default kill is SIGKILL: \(wb)")

            #expect(try d.docker(["run", "-d", "--name", c, "busybox", "sleep", "300"]).ok)
            #expect(try d.docker(["kill", "-s", "KILL", c]).ok)
            #expect(try d.docker(["wait", c]).out == "137")

            #expect(try d.docker(["run", "-d", "--name", t, "busybox", "sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done"]).ok)
            #expect(try d.waitFor(t, format: "{{.State.Running}}", "true"))
            usleep(300_000)
            #expect(try d.docker(["kill", "-s", "TERM", t]).ok)
            let wt = try d.docker(["wait", t])
            #expect(wt.out == "42", "\(wt)")
            let notRunning = try d.docker(["kill", t])
            #expect(notRunning.status != 0 && notRunning.stderr.contains("is not running"), "\(notRunning)")
        }

        @Test func registryPullTagPushRmi() throws {
            let d = try d
            let reg = try LocalRegistry()
            defer { reg.stop() }
            let h = reg.hostPort
            // a second image whose top layers this daemon lacks, so the pull shows real progress
            let images = (CLIEnv.path("BERTH_FIXTURES") ?? ClientTests.repoRoot + "/fixtures/cache") + "/images"
            let p = try CLIProc([ClientTests.repoRoot + "/scripts/push-fixtures.sh", h, images, "multi"], ioDir: d.io).wait(timeout: 120)
            #expect(p.ok, "\(p)")
            defer { _ = try? d.docker(["rmi", "-f", "\(h)/busybox:latest", "\(h)/multi:latest", "\(h)/acc/pushed:v1"]) }

            let pull = try d.docker(["pull", "\(h)/multi:latest"], timeout: 120)
            #expect(pull.ok, "\(pull)\nberthd: \(d.logTail())")
            #expect(pull.stdout.contains("Pull complete") || pull.stdout.contains("Download complete"), "no layer progress: \(pull)")
            #expect(pull.stdout.contains("Digest: sha256:") && pull.stdout.contains("Downloaded newer image for \(h)/multi:latest"), "\(pull)")
            // Docker prints the repository path ("latest: Pulling from multi"); the name must at least be there
            #expect(pull.lines.contains { $0.hasPrefix("latest: Pulling from ") && $0.hasSuffix("multi") }, "the 'Pulling from' line names the repository: \(pull)")
            let again = try d.docker(["pull", "\(h)/multi:latest"], timeout: 60)
            #expect(again.ok && again.stdout.contains("Image is up to date for \(h)/multi:latest"), "\(again)")
            let runMulti = try d.docker(["run", "--rm", "\(h)/multi:latest", "true"])
            #expect(runMulti.ok, "\(runMulti)")

            let bb = try d.docker(["pull", "\(h)/busybox"], timeout: 60)
            #expect(bb.ok, "\(bb)")
            let imgs = try d.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            #expect(imgs.lines.contains(Substring("\(h)/busybox:latest")) && imgs.lines.contains(Substring("\(h)/multi:latest"))
                    && imgs.lines.contains("busybox:latest"), "\(imgs)")
            #expect(!imgs.lines.contains { $0.hasPrefix("sha256") || $0.contains("<none>") }, "untagged rows: \(imgs)")

            let tag = try d.docker(["tag", "busybox", "\(h)/acc/pushed:v1"])
            #expect(tag.ok, "\(tag)")
            let push = try d.docker(["push", "\(h)/acc/pushed:v1"], timeout: 120)
            #expect(push.ok, "\(push)")
            #expect(push.stdout.contains("v1: digest: sha256:aa6555dc6ed6cb37d93cb28474bc7cd2e4a8b80363eb222aa84beed624921772 size: 349"),
                    "push's summary line (the manifest is 349 bytes): \(push)")
            let tags = try CLIProc(["curl", "-sf", "http://\(h)/v2/acc/pushed/tags/list"], ioDir: d.io).wait()
            #expect(tags.out.contains("\"v1\""), "the registry has no acc/pushed:v1: \(tags)")

            let rmi = try d.docker(["rmi", "\(h)/acc/pushed:v1"])
            #expect(rmi.ok && rmi.stdout.contains("Untagged: \(h)/acc/pushed:v1"), "\(rmi)")
            let repull = try d.docker(["pull", "\(h)/acc/pushed:v1"], timeout: 60)
            #expect(repull.ok && repull.stdout.contains("Downloaded newer image for \(h)/acc/pushed:v1"),
                    "a tag that was not here is 'Downloaded newer image', even when its blobs were: \(repull)")
            let missing = try d.docker(["pull", "\(h)/acc/pushed:nope"], timeout: 60)
            #expect(missing.status != 0 && (missing.stderr.contains("not found") || missing.stderr.contains("manifest unknown")), "\(missing)")
            let rmiMissing = try d.docker(["rmi", "acc/never:1"])
            #expect(rmiMissing.status != 0 && rmiMissing.stderr.contains("No such image"), "\(rmiMissing)")
        }

        @Test func saveLoad() throws {
            let d = try d
            let ref = "acc-save:\(UInt16.random(in: 1 ... .max))"
            defer { _ = try? d.docker(["rmi", "-f", ref]) }
            #expect(try d.docker(["tag", "busybox", ref]).ok)
            let tar = d.dir + "/save-\(getpid()).tar"
            defer { unlink(tar) }
            let save = try d.docker(["save", "-o", tar, ref], timeout: 60)
            #expect(save.ok, "\(save)")
            let list = try CLIProc(["tar", "-tf", tar], ioDir: d.io).wait()
            #expect(list.ok && list.lines.contains("index.json") && list.lines.contains("manifest.json"), "\(list)")
            let rmi = try d.docker(["rmi", ref])
            #expect(rmi.ok, "\(rmi)")
            #expect(try d.docker(["image", "inspect", ref]).status != 0)
            let load = try d.docker(["load", "-i", tar], timeout: 60)
            #expect(load.ok && load.stdout.contains("Loaded image: \(ref)"), "\(load)")
            let run = try d.docker(["run", "--rm", ref, "echo", "from-loaded"])
            #expect(run.stdout == "from-loaded\n", "\(run)")
            let stdinLoad = try d.command(["sh", "-c", "\(ClientTests.docker!) load < \(tar)"], timeout: 60)
            #expect(stdinLoad.ok && stdinLoad.stdout.contains("Loaded image: \(ref)"), "\(stdinLoad)")
        }

        @Test func cpBothWays() throws {
            let d = try d
            let n = Self.name("cp")
            defer { _ = try? d.docker(["rm", "-f", n]) }
            #expect(try d.docker(["run", "-d", "--name", n, "busybox", "sleep", "300"]).ok)
            let host = d.dir + "/cp-\(getpid())"
            try FileManager.default.createDirectory(atPath: host + "/tree/sub", withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: host) }
            try "hello cp\n".write(toFile: host + "/f.txt", atomically: true, encoding: .utf8)
            try "deep\n".write(toFile: host + "/tree/sub/g.txt", atomically: true, encoding: .utf8)
            let in1 = try d.docker(["cp", host + "/f.txt", n + ":/tmp/"])
            #expect(in1.ok, "\(in1)")
            #expect(try d.docker(["exec", n, "cat", "/tmp/f.txt"]).stdout == "hello cp\n")
            let in2 = try d.docker(["cp", host + "/tree", n + ":/tmp/tree"])
            #expect(in2.ok, "\(in2)")
            #expect(try d.docker(["exec", n, "cat", "/tmp/tree/sub/g.txt"]).stdout == "deep\n")
            #expect(try d.docker(["exec", n, "sh", "-c", "echo made inside > /tmp/inside.txt"]).ok)
            let out1 = try d.docker(["cp", n + ":/tmp/inside.txt", host + "/back.txt"])
            #expect(out1.ok, "\(out1)")
            #expect((try? String(contentsOfFile: host + "/back.txt", encoding: .utf8)) == "made inside\n")
            let out2 = try d.docker(["cp", n + ":/tmp/tree", host + "/tree-back"])
            #expect(out2.ok, "\(out2)")
            #expect((try? String(contentsOfFile: host + "/tree-back/sub/g.txt", encoding: .utf8)) == "deep\n")
            let missing = try d.docker(["cp", n + ":/no/such", host + "/x"])
            #expect(missing.status != 0 && missing.stderr.contains("Could not find the file /no/such in container \(n)"), "\(missing)")
            // from a stopped container too
            #expect(try d.docker(["kill", n]).ok)
            _ = try d.docker(["wait", n])
            let out3 = try d.docker(["cp", n + ":/tmp/f.txt", host + "/stopped.txt"])
            #expect(out3.ok && (try? String(contentsOfFile: host + "/stopped.txt", encoding: .utf8)) == "hello cp\n", "\(out3)")
        }

        @Test func renamePauseRestartTopStats() throws {
            let d = try d
            let n = Self.name("misc"), m = Self.name("renamed")
            defer { _ = try? d.docker(["rm", "-f", n, m]) }
            #expect(try d.docker(["run", "-d", "--name", n, "busybox", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]).ok)
            let ren = try d.docker(["rename", n, m])
            #expect(ren.ok, "\(ren)")
            #expect(try d.docker(["inspect", "-f", "{{.Name}}", m]).out == "/" + m)
            #expect(try d.docker(["inspect", n]).status != 0, "the old name still resolves")

            let pause = try d.docker(["pause", m])
            #expect(pause.ok, "\(pause)")
            let paused = try d.docker(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", m])
            #expect(paused.out == "paused true", "\(paused)")
            let psPaused = try d.docker(["ps", "--filter", "name=" + m, "--format", "{{.Status}}"])
            #expect(psPaused.out.contains("(Paused)"), "\(psPaused)")
            let unpause = try d.docker(["unpause", m])
            #expect(unpause.ok, "\(unpause)")
            #expect(try d.docker(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", m]).out == "running false")

            let pid1 = try d.docker(["inspect", "-f", "{{.State.Pid}}", m]).out
            let restart = try d.docker(["restart", "-t", "5", m], timeout: 30)
            #expect(restart.ok, "\(restart)")
            let after = try d.docker(["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", m]).out.split(separator: " ")
            #expect(after.first == "running" && after.last.map(String.init) != pid1 && after.last != "0", "restart: \(after) (before pid \(pid1))")

            let top = try d.docker(["top", m])
            #expect(top.ok && top.lines.first?.contains("PID") == true && top.stdout.contains("sh -c"), "\(top)")
            let stats = try d.docker(["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}}", m], timeout: 30)
            #expect(stats.ok, "\(stats)")
            let f = stats.out.split(separator: " ")
            #expect(f.first.map(String.init) == m && f.count >= 2 && (Int(f[1]) ?? 0) >= 1, "\(stats)")
        }

        @Test func eventsWindow() throws {
            let d = try d
            let n = Self.name("events")
            defer { _ = try? d.docker(["rm", "-f", n]) }
            let since = Int(Date().timeIntervalSince1970) - 1
            let live = try d.dockerSpawn(["events", "--filter", "container=" + n, "--format", "{{.Action}}"])
            defer { live.signal(SIGKILL); live.wait(timeout: 5) }
            usleep(500_000)
            let r = try d.docker(["run", "--name", n, "busybox", "sh", "-c", "exit 2"])
            #expect(r.status == 2, "\(r)")
            sleep(1)
            let until = Int(Date().timeIntervalSince1970) + 1
            let ev = try d.docker(["events", "--since", "\(since)", "--until", "\(until)", "--filter", "container=" + n,
                                   "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}"], timeout: 20)
            #expect(ev.ok && !ev.timedOut, "events with --until must end: \(ev)")
            let actions = ev.lines.map { $0.split(separator: " ").dropFirst().first.map(String.init) ?? "" }
            let want = ["create", "start", "die"]
            #expect(want.allSatisfy(actions.contains), "\(ev)")
            if let c = actions.firstIndex(of: "create"), let s = actions.firstIndex(of: "start"), let e = actions.firstIndex(of: "die") {
                #expect(c < s && s < e, "order: \(ev)")
            }
            #expect(ev.lines.contains { $0.hasPrefix("container die \(n) 2") }, "die carries exitCode 2: \(ev)")
            #expect(ev.lines.allSatisfy { $0.hasPrefix("container ") && $0.contains(n) }, "the filter let others through: \(ev)")
            #expect(try eventually(5) { ["create", "start", "die"].allSatisfy(live.readStdout().split(separator: "\n").map(String.init).contains) },
                    "the live stream: \(live.readStdout())")
            // a window in the past has nothing of it
            let old = try d.docker(["events", "--since", "\(since - 100)", "--until", "\(since - 50)", "--filter", "container=" + n], timeout: 20)
            #expect(old.ok && old.out.isEmpty, "\(old)")
        }

        @Test func systemDfPruneInfoVersion() throws {
            let d = try d
            let dead = Self.name("dead"), alive = Self.name("alive")
            defer { _ = try? d.docker(["rm", "-f", dead, alive]) }
            #expect(try d.docker(["run", "--name", dead, "busybox", "true"]).ok)
            #expect(try d.docker(["run", "-d", "--name", alive, "busybox", "sleep", "300"]).ok)
            let df = try d.docker(["system", "df"])
            #expect(df.ok && df.stdout.contains("Images") && df.stdout.contains("Containers"), "\(df)")
            let dfFmt = try d.docker(["system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"])
            #expect(dfFmt.lines.contains { $0.hasPrefix("Containers ") && $0.split(separator: " ").count == 3 }, "\(dfFmt)")
            let deadID = try d.docker(["inspect", "-f", "{{.Id}}", dead]).out
            let prune = try d.docker(["container", "prune", "-f"])
            #expect(prune.ok && prune.stdout.contains(deadID), "\(prune)")
            #expect(try d.docker(["inspect", dead]).status != 0, "prune left the exited container")
            #expect(try d.docker(["inspect", "-f", "{{.State.Running}}", alive]).out == "true", "prune touched a running container")
            let info = try d.docker(["info", "--format", "{{.ServerVersion}}|{{.OSType}}|{{.ContainersRunning}}|{{.Images}}"])
            #expect(info.ok, "\(info)")
            let f = info.out.split(separator: "|", omittingEmptySubsequences: false)
            #expect(f.count == 4 && !f[0].isEmpty && f[1] == "linux" && Int(f[2]) ?? 0 >= 1 && Int(f[3]) ?? 0 >= 1, "\(info)")
            let full = try d.docker(["info"])
            #expect(full.ok && full.stdout.contains("Server Version:"), "\(full)")
            let version = try d.docker(["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}"])
            #expect(version.ok, "\(version)")
            let v = version.out.split(separator: " ")
            #expect(v.count == 3 && v[2] == "linux" && Double(v[1]) != nil, "\(version)")
        }
    }
}
