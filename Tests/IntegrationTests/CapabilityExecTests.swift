// CVE-2022-29162 class: `exec --cap` grants the capability (bounding, effective, permitted) but never puts
// it, or anything, into the inheritable set, from which an exec'd setuid/file-capability binary could
// carry it further.
import Foundation
import Glibc
import Testing

extension Integration {
    @Suite(.serialized) struct CapabilityExecTests {
        @Test func execCapDoesNotTouchInheritable() throws {
            try withBundle(args: ["/probe", "pause"]) { b in
                expectOK(try b.run(extraArgs: ["--detach"]))
                let r = try b.rt(["exec", "--cap", "CAP_SYS_ADMIN", b.id, "/bin/sh", "-c",
                                  "/probe status CapEff; /probe status CapInh; /probe status CapAmb"])
                let out = expectOK(r).split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" }
                try #require(out.count == 3, "\(r)")
                let eff = UInt64(out[0], radix: 16) ?? 0
                #expect(eff & (1 << 21) != 0, "CAP_SYS_ADMIN granted: \(r)")
                #expect(out[1] == "0000000000000000", "inheritable stays empty: \(r)")
                #expect(out[2] == "0000000000000000", "ambient stays empty: \(r)")
            }
        }
    }
}
