// Last (this file sorts last, and Integration is serialized in source order): nothing the suites made is left.
import Foundation
import Glibc
import Testing

extension Integration {
    @Suite(.serialized) struct ZCleanup {
        @Test func nothingLeftBehind() throws {
            let dirs = Registry.scratchDirs
            for dir in dirs {
                #expect(!FileManager.default.fileExists(atPath: dir), "scratch dir left: \(dir)")
                #expect(Host.mounts(under: dir).isEmpty, "mounts left under \(dir): \(Host.mounts(under: dir).map(\.mountPoint))")
            }
            // processes: container processes (root under a scratch dir) and runtimes (cmdline names one)
            var left: [String] = []
            for pid in Host.pids() where pid != getpid() && Host.isAlive(pid) {
                let root = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/root")) ?? ""
                let cmd = Host.cmdline(pid)
                if dirs.contains(where: { root.hasPrefix($0 + "/") || cmd.contains($0 + "/") }) {
                    left.append("\(pid) \(cmd)")
                }
            }
            #expect(left.isEmpty, "processes left: \(left)")
            var cgroups: [String] = []
            for hierarchy in Host.cgroupRoots {
                for p in Registry.cgroupPaths where FileManager.default.fileExists(atPath: hierarchy + p) {
                    cgroups.append(hierarchy + p)
                }
            }
            #expect(cgroups.isEmpty, "cgroups left: \(cgroups)")
        }

        /// Also leftovers of earlier runs (a crashed test process): reported, and cleaned when nothing holds them.
        @Test func noStaleScratchMounts() throws {
            let stale = Host.mounts().filter { $0.mountPoint.hasPrefix(TestEnv.scratchPrefix) }
            #expect(stale.isEmpty, "mounts under \(TestEnv.scratchPrefix)*: \(stale.map(\.mountPoint))")
        }
    }
}
