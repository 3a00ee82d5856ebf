// docker-py 7.1 against a private berthd: one Python script per flow under tests/acceptance/ (see common.py there),
// each printing "OK <flow>" last and exiting 1 with a traceback when an assertion fails.
import Foundation
import Glibc
import Testing

extension DockerClients {
    @Suite(.serialized, .enabled(if: ClientTests.dockerPy, "BERTH_ROOT_TESTS, BERTH_BERTHD, python3 or docker-py is missing"))
    struct DockerPy {
        static let daemon = SuiteClientDaemon()
        var d: ClientDaemon { get throws { try Self.daemon.get() } }

        func flow(_ script: String, _ args: [String] = [], timeout: Double = 120, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let d = try d
            let r = try d.python(script + ".py", args, timeout: timeout)
            #expect(r.ok && r.lines.last == Substring("OK " + script), "\(r)\nberthd: \(d.logTail(1500))", sourceLocation: sourceLocation)
            // the flow cleans up after itself, pass or fail
            let left = try d.docker(["ps", "-a", "--filter", "name=py-", "--format", "{{.Names}}"])
            #expect(left.out.isEmpty, "containers left by \(script): \(left)", sourceLocation: sourceLocation)
            d.removeAllContainers()
        }

        @Test func runRemove() throws { try flow("run_remove") }
        @Test func detachLogsExec() throws { try flow("detach_logs_exec") }
        @Test func waitKill() throws { try flow("wait_kill") }
        @Test func archive() throws { try flow("archive") }
        @Test func attach() throws { try flow("attach") }
        @Test func inspect() throws { try flow("inspect") }

        @Test func images() throws {
            let d = try d
            let reg = try LocalRegistry()
            defer { reg.stop() }
            let images = (CLIEnv.path("BERTH_FIXTURES") ?? ClientTests.repoRoot + "/fixtures/cache") + "/images"
            let p = try CLIProc([ClientTests.repoRoot + "/scripts/push-fixtures.sh", reg.hostPort, images, "multi"], ioDir: d.io).wait(timeout: 120)
            #expect(p.ok, "\(p)")
            try flow("images", [reg.hostPort], timeout: 300)
        }
    }
}
