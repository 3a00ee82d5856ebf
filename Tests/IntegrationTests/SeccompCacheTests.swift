// The cache of generated seccomp programs under --root/@seccomp-cache: a hit is really used, and a file
// that others could have written (group/other-writable) is never trusted — a poisoned cache would be a
// bypassed filter. The poisoned file here allows everything; a runtime that trusted it would let mkdir
// through.
import Foundation
import Glibc
import Testing

extension Integration {
    @Suite(.serialized) struct SeccompCacheTests {
        /// BPF: one instruction, `ret SECCOMP_RET_ALLOW`.
        static let allowAll: [UInt8] = [0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x7f]

        func denyMkdir(_ b: Bundle) {
            b.config[path: "linux.seccomp"] = [
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1]],
            ] as [String: Any]
        }

        /// Rewrites the one cached program with `bpf`, keeping its header and key.
        func poison(_ root: String, bpf: [UInt8], mode: mode_t) throws {
            let dir = root + "/@seccomp-cache"
            let files = try FileManager.default.contentsOfDirectory(atPath: dir)
            try #require(files.count == 1, "one cached program in \(dir): \(files)")
            let path = dir + "/" + files[0]
            var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            try #require(b.count > 20 && Array(b[0..<4]) == Array("BSC1".utf8), "cache file format")
            let keyLen = Int(b[4]) | Int(b[5]) << 8 | Int(b[6]) << 16 | Int(b[7]) << 24
            b = Array(b[0..<(20 + keyLen)]) + bpf
            b[16] = UInt8(bpf.count & 0xff); b[17] = UInt8(bpf.count >> 8 & 0xff); b[18] = 0; b[19] = 0
            try Data(b).write(to: URL(fileURLWithPath: path))
            chmod(path, mode)
        }

        func mkdirResult(_ b: Bundle) throws -> ProcResult {
            try b.run(id: b.newID())
        }

        @Test func cachedProgramIsUsedAndPoisonedOneIsNot() throws {
            try withBundle(args: ["/bin/sh", "-c", "mkdir /dev/shm/d 2>/dev/null; echo mkdir=$?"]) { b in
                denyMkdir(b)
                let first = try mkdirResult(b)
                #expect(first.lines == ["mkdir=1"], "filter from libseccomp: \(first)")
                let second = try mkdirResult(b)
                #expect(second.lines == ["mkdir=1"], "filter from the cache: \(second)")
                // a group-writable file is ignored: the filter is built anew and still denies
                try poison(b.root, bpf: Self.allowAll, mode: 0o660)
                let ignored = try mkdirResult(b)
                #expect(ignored.lines == ["mkdir=1"], "a writable cache file must not be trusted: \(ignored)")
                // control: the same file, private to root, is used — so this test would catch a runtime
                // that trusted the writable one
                try poison(b.root, bpf: Self.allowAll, mode: 0o600)
                let used = try mkdirResult(b)
                #expect(used.lines == ["mkdir=0"], "the private cache file is used: \(used)")
            }
        }
    }
}
