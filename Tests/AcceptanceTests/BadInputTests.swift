// Raw HTTP over berthd's unix socket: Docker-shaped errors for bad bodies, names, images, paths and versions;
// oversized and malformed requests; clients that hang up mid-stream (logs -f, events, attach, exec). After each,
// berthd still answers /_ping and holds no more fds than before.
import Foundation
import Glibc
import Testing

extension DockerClients {
    @Suite(.serialized, .enabled(if: ClientTests.dockerCLI, "BERTH_ROOT_TESTS, BERTH_BERTHD or the docker CLI is missing"))
    struct BadInput {
        static let daemon = SuiteClientDaemon()
        var d: ClientDaemon { get throws { try Self.daemon.get() } }

        /// A Docker error: `status`, JSON content type, {"message": ...} containing `contains`.
        func expectError(_ r: RawResponse, _ status: Int, _ contains: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(r.status == status, "want \(status): \(r)", sourceLocation: sourceLocation)
            #expect(r.headers.lowercased().contains("content-type: application/json"), "\(r)", sourceLocation: sourceLocation)
            let m = r.message ?? ""
            #expect(!m.isEmpty && (contains.isEmpty || m.contains(contains)), "want a message with \"\(contains)\": \(r)", sourceLocation: sourceLocation)
        }

        func expectServing(_ d: ClientDaemon, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(d.isAlive, "berthd died: \(d.logTail())", sourceLocation: sourceLocation)
            #expect(RawHTTP.ping(d.sock), "berthd no longer answers /_ping", sourceLocation: sourceLocation)
        }

        @Test func createErrors() throws {
            let d = try d
            let s = d.sock
            expectError(RawHTTP.request(s, "POST", "/v1.47/containers/create", json: "{\"Image\": "), 400, "")
            expectError(RawHTTP.request(s, "POST", "/v1.47/containers/create", json: "[1,2]"), 400, "")
            expectError(RawHTTP.request(s, "POST", "/v1.47/containers/create", json: "{\"Image\":\"acc/nope:1\"}"), 404, "No such image: acc/nope:1")
            let n = "acc-dup-\(getpid())"
            defer { _ = try? d.docker(["rm", "-f", n]) }
            let first = RawHTTP.request(s, "POST", "/v1.47/containers/create?name=\(n)", json: "{\"Image\":\"busybox\",\"Cmd\":[\"true\"]}")
            #expect(first.status == 201 && first.body.contains("\"Id\""), "\(first)")
            expectError(RawHTTP.request(s, "POST", "/v1.47/containers/create?name=\(n)", json: "{\"Image\":\"busybox\"}"), 409, "is already in use")
            for bad in ["bad%20name", "-x", "a%2Fb", "%C3%A9", "."] {
                expectError(RawHTTP.request(s, "POST", "/v1.47/containers/create?name=\(bad)", json: "{\"Image\":\"busybox\"}"), 400, "Invalid container name")
            }
            expectError(RawHTTP.request(s, "GET", "/v1.47/containers/acc-no-such/json"), 404, "No such container: acc-no-such")
            expectError(RawHTTP.request(s, "POST", "/v1.47/containers/acc-no-such/start"), 404, "No such container")
            expectError(RawHTTP.request(s, "GET", "/v1.47/images/acc/nope:1/json"), 404, "No such image")
            let ps = try d.docker(["ps", "-a", "--format", "{{.Names}}"])
            #expect(ps.lines == [Substring(n)], "a failed create left a container: \(ps)")
            expectServing(d)
        }

        @Test func pathsAndVersions() throws {
            let d = try d
            let s = d.sock
            expectError(RawHTTP.request(s, "GET", "/nope"), 404, "page not found")
            expectError(RawHTTP.request(s, "GET", "/v1.47/containers/x/bogus"), 404, "")
            expectError(RawHTTP.request(s, "GET", "/v9.99/containers/json"), 400, "too new")
            expectError(RawHTTP.request(s, "GET", "/v1.10/containers/json"), 400, "too old")
            let ok = RawHTTP.request(s, "GET", "/v1.47/containers/json")
            #expect(ok.status == 200 && ok.body.hasPrefix("["), "\(ok)")
            let wrongMethod = RawHTTP.request(s, "DELETE", "/v1.47/info")
            #expect(wrongMethod.status == 404 || wrongMethod.status == 405, "\(wrongMethod)")
            expectServing(d)
        }

        @Test func oversizedBodies() throws {
            let d = try d
            let before = d.fds().count
            let big = "{\"Image\":\"busybox\",\"Labels\":{\"a\":\"" + String(repeating: "a", count: 33 << 20) + "\"}}"
            let r = RawHTTP.request(d.sock, "POST", "/v1.47/containers/create", json: big, timeout: 60)
            #expect(r.status == 413 || r.status == 400, "33 MiB create: \(r.status.map(String.init) ?? "no status") \(String(r.text.prefix(300)))")
            // chunked, no length up front
            var chunked = Array("POST /v1.47/containers/create HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".utf8)
            let piece = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
            chunked += Array("\(String(1 << 20, radix: 16))\r\n".utf8)
            chunked += piece + Array("\r\n".utf8)
            for _ in 0..<33 { chunked += Array("\(String(1 << 20, radix: 16))\r\n".utf8) + piece + Array("\r\n".utf8) }
            chunked += Array("0\r\n\r\n".utf8)
            let c = RawHTTP.exchange(d.sock, chunked, timeout: 60)
            #expect(c.status == 413 || c.status == 400, "34 MiB chunked create: \(String(c.text.prefix(300)))")
            expectServing(d)
            let ps = try d.docker(["ps", "-aq"])
            #expect(ps.out.isEmpty, "\(ps)")
            let after = d.fdsSettled(atMost: before)
            #expect(after.count <= before, "fds \(before) → \(after.count): \(after)")
        }

        @Test func malformedHTTP() throws {
            let d = try d
            let before = d.fds().count
            let junk: [[UInt8]] = [
                Array("GARBAGE\r\n\r\n".utf8),
                Array("GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".utf8),
                Array("GET /_ping HTTP/9.9\r\n\r\n".utf8),
                [0, 1, 2, 0xff, 0xfe, 13, 10, 13, 10],
                Array(("GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "b", count: 200_000) + "\r\n\r\n").utf8),
                Array("POST /v1.47/containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n".utf8),
                Array("GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".utf8),
            ]
            for j in junk {
                let r = RawHTTP.exchange(d.sock, j, timeout: 5)
                #expect(!r.timedOut, "berthd neither answered nor closed: \(r)")
                if let st = r.status { #expect(st >= 400 && st < 500, "\(r)") }
                expectServing(d)
            }
            // a request cut short: headers promised a body that never comes, then the client leaves
            for _ in 0..<10 {
                let fd = RawHTTP.connect(d.sock)
                RawHTTP.send(fd, Array("POST /v1.47/containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Ima".utf8))
                usleep(20_000)
                close(fd)
                let fd2 = RawHTTP.connect(d.sock)
                RawHTTP.send(fd2, Array("GET /_pi".utf8))
                close(fd2)
            }
            expectServing(d)
            let after = d.fdsSettled(atMost: before)
            #expect(after.count <= before, "fds \(before) → \(after.count): \(after)")
        }

        @Test func hangUpsMidStream() throws {
            let d = try d
            let n = "acc-chatty-\(getpid())"
            defer { _ = try? d.docker(["rm", "-f", n]) }
            let run = try d.docker(["run", "-d", "-i", "--name", n, "busybox", "sh", "-c", "while true; do echo tick; sleep 0.05; done"])
            #expect(run.ok, "\(run)")
            let id = run.out
            // warm up every kind once, then take the baseline
            func logsF() -> [UInt8] { Array("GET /v1.47/containers/\(id)/logs?follow=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: api\r\n\r\n".utf8) }
            func events() -> [UInt8] { Array("GET /v1.47/events HTTP/1.1\r\nHost: api\r\n\r\n".utf8) }
            func attach() -> [UInt8] {
                Array("POST /v1.47/containers/\(id)/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".utf8)
            }
            func statsStream() -> [UInt8] { Array("GET /v1.47/containers/\(id)/stats HTTP/1.1\r\nHost: api\r\n\r\n".utf8) }
            func hangUp(_ req: [UInt8], wait: Double, shutdownFirst: Bool) -> RawResponse {
                let fd = RawHTTP.connect(d.sock)
                RawHTTP.send(fd, req)
                let got = RawHTTP.read(fd, timeout: wait) { b in b.count > 200 }
                if shutdownFirst { shutdown(fd, Int32(SHUT_WR)) }
                close(fd)
                return got
            }
            let kinds: [(String, () -> [UInt8])] = [("logs -f", logsF), ("events", events), ("attach", attach), ("stats", statsStream)]
            for (name, k) in kinds {
                let r = hangUp(k(), wait: 3, shutdownFirst: false)
                #expect(r.status == 200 || r.status == 101, "\(name): \(r)")
            }
            usleep(500_000)
            let baseline = d.fdsSettled(atMost: 0, timeout: 0.1).count
            for round in 0..<10 {
                for (_, k) in kinds { _ = hangUp(k(), wait: 0.3, shutdownFirst: round % 2 == 0) }
            }
            // exec start hijacked, client gone before the process ends
            for _ in 0..<5 {
                let c = RawHTTP.request(d.sock, "POST", "/v1.47/containers/\(id)/exec", json: "{\"Cmd\":[\"sleep\",\"1\"],\"AttachStdout\":true}")
                guard let data = c.body.data(using: .utf8), let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                      let eid = o["Id"] as? String else { Issue.record("exec create: \(c)"); continue }
                _ = hangUp(Array("POST /v1.47/exec/\(eid)/start HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 28\r\n\r\n{\"Detach\":false,\"Tty\":false}".utf8),
                           wait: 0.2, shutdownFirst: false)
            }
            sleep(2)  // the execs' sleeps end
            expectServing(d)
            #expect(try d.docker(["inspect", "-f", "{{.State.Running}}", n]).out == "true", "a hang-up stopped the container")
            let after = d.fdsSettled(atMost: baseline, timeout: 15)
            #expect(after.count <= baseline, "berthd fds \(baseline) → \(after.count) after 45 hang-ups: \(after)")
            // the docker CLI still streams
            let logs = try d.docker(["logs", "--tail", "1", n])
            #expect(logs.stdout == "tick\n", "\(logs)")
        }
    }
}
