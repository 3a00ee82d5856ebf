// cgroup placement: one interface over the v1 (per-controller hierarchies, as on this hybrid host)
// and v2 (unified) drivers. Limits come with the cgroup-limits work; this places and removes.
#if canImport(Glibc)
import Glibc
#endif
import CLinux

public struct Cgroup: Sendable, Equatable {
    public enum Mode: String, Sendable { case v1, v2 }
    public var mode: Mode
    /// hierarchy name ("memory", "cpu", "name=systemd", "unified" or "" on v2) → absolute directory
    public var paths: [(name: String, dir: String)]

    public init(mode: Mode, paths: [(name: String, dir: String)]) {
        self.mode = mode
        self.paths = paths
    }

    public static func == (a: Cgroup, b: Cgroup) -> Bool {
        a.mode == b.mode && a.paths.map(\.name) == b.paths.map(\.name) && a.paths.map(\.dir) == b.paths.map(\.dir)
    }

    /// The hierarchies mounted in this mount namespace.
    public struct Hierarchy: Sendable {
        public var name: String          // "memory", "cpu,cpuacct", "name=systemd", "unified"
        public var controllers: [String]
        public var mountPoint: String
        public var root: String          // the mount's root inside the hierarchy
        public var isV2: Bool
    }

    /// The parse of /proc/self/mountinfo, read once: a create asks for it up to four times (the primer,
    /// resolve, the cgroup mount, v2 controllers) and the runtime itself never mounts in its own namespace.
    nonisolated(unsafe) static var parsedHierarchies: [Hierarchy]?

    public static func hierarchies() throws(LinuxError) -> [Hierarchy] {
        if let hs = parsedHierarchies { return hs }
        let hs = try readHierarchies()
        parsedHierarchies = hs
        return hs
    }

    static func readHierarchies() throws(LinuxError) -> [Hierarchy] {
        let text = try FS.readString("/proc/self/mountinfo")
        var out: [Hierarchy] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard let dash = parts.firstIndex(of: "-"), parts.count > dash + 3 else { continue }
            let fstype = parts[dash + 1]
            guard fstype == "cgroup" || fstype == "cgroup2" else { continue }
            let root = unescape(String(parts[3]))
            let mp = unescape(String(parts[4]))
            if fstype == "cgroup2" {
                out.append(Hierarchy(name: "unified", controllers: [], mountPoint: mp, root: root, isV2: true))
                continue
            }
            let opts = parts[dash + 3].split(separator: ",").map(String.init)
            var ctrls = opts.filter { !["rw", "ro", "nosuid", "nodev", "noexec", "relatime", "noatime", "clone_children", "xattr"].contains($0) && !$0.hasPrefix("release_agent") }
            ctrls = ctrls.map { $0 }
            let name = ctrls.joined(separator: ",")
            if name.isEmpty { continue }
            // a hierarchy mounted twice (bind mounts): keep the first
            if out.contains(where: { $0.name == name }) { continue }
            out.append(Hierarchy(name: name, controllers: ctrls, mountPoint: mp, root: root, isV2: false))
        }
        return out
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count,
               let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether the host runs the unified hierarchy alone (/sys/fs/cgroup is cgroup2).
    public static func isUnifiedOnly() -> Bool {
        bl_fs_type("/sys/fs/cgroup") == 0x6367_7270
    }

    /// This process's own cgroup in each hierarchy (from /proc/self/cgroup).
    static func ownCgroups() -> [String: String] {
        guard let text = try? FS.readString("/proc/self/cgroup") else { return [:] }
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3 else { continue }
            out[f[1].isEmpty ? "unified" : String(f[1])] = String(f[2])
        }
        return out
    }

    /// Where a container with `cgroupsPath` lives. An absolute path is below each hierarchy's root;
    /// a relative one below this process's own cgroup (as runc does).
    public static func resolve(cgroupsPath: String) throws(LinuxError) -> Cgroup {
        let unifiedOnly = isUnifiedOnly()
        let hs = try hierarchies()
        let own = cgroupsPath.hasPrefix("/") ? [:] : ownCgroups()
        func join(_ h: Hierarchy) -> String {
            var rel = cgroupsPath
            if !rel.hasPrefix("/") { rel = (own[h.name] ?? "/") + "/" + rel }
            // the path is within the hierarchy; the mount shows it from `root`
            if h.root != "/" && rel.hasPrefix(h.root) { rel = String(rel.dropFirst(h.root.count)) }
            return normalize(h.mountPoint + "/" + rel)
        }
        if unifiedOnly {
            guard let h = hs.first(where: { $0.isV2 && $0.mountPoint == "/sys/fs/cgroup" }) ?? hs.first(where: { $0.isV2 }) else {
                throw LinuxError(.notFound, "cgroup: no cgroup2 hierarchy mounted")
            }
            return Cgroup(mode: .v2, paths: [(name: "", dir: join(h))])
        }
        let paths = hs.map { (name: $0.name, dir: join($0)) }
        if paths.isEmpty { throw LinuxError(.notFound, "cgroup: no cgroup hierarchy mounted") }
        return Cgroup(mode: .v1, paths: paths)
    }

    static func normalize(_ p: String) -> String {
        var comps: [Substring] = []
        for c in p.split(separator: "/") {
            if c == "." { continue }
            if c == ".." { _ = comps.popLast(); continue }
            comps.append(c)
        }
        return "/" + comps.joined(separator: "/")
    }

    /// Starts a no-op cgroup migration in a child process (see bl_prime_cgroup_attach); nil when there is
    /// no hierarchy to use. The caller reaps the returned pid.
    public static func primeAttach() -> Int32? {
        guard let hs = try? hierarchies() else { return nil }
        let own = ownCgroups()
        guard let h = hs.first(where: { $0.name == "pids" }) ?? hs.first(where: { !$0.isV2 }) ?? hs.first else { return nil }
        var rel = own[h.name] ?? "/"
        if h.root != "/" && rel.hasPrefix(h.root) { rel = String(rel.dropFirst(h.root.count)) }
        let pid = bl_prime_cgroup_attach(normalize(h.mountPoint + "/" + rel) + "/cgroup.procs")
        return pid > 0 ? pid : nil
    }

    /// Creates the directories (cpuset: copying cpus/mems down so that tasks may join).
    public func create() throws(LinuxError) {
        for p in paths {
            let created: [String]
            do { created = try FS.mkdirAll(p.dir) } catch {
                throw LinuxError(error.code, "create cgroup \(p.dir): \(error.message.split(separator: ":").last.map { $0.trimmingCharacters() } ?? "")", errno: error.errno)
            }
            if p.name.split(separator: ",").contains("cpuset") {
                for dir in created {
                    let parent = FS.split(dir).dir
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        let mine = (try? FS.readString(dir + "/" + file))?.trimmingCharacters() ?? ""
                        if !mine.isEmpty { continue }
                        let value = (try? FS.readString(parent + "/" + file))?.trimmingCharacters() ?? ""
                        if !value.isEmpty { try FS.writeFile(dir + "/" + file, value) }
                    }
                }
            }
        }
    }

    public func add(pid: Int32) throws(LinuxError) {
        for p in paths { try FS.writeFile(p.dir + "/cgroup.procs", String(pid)) }
    }

    /// All pids in the container's cgroup (first hierarchy that lists tasks: pids, freezer, or any).
    public func pids() -> [Int32] {
        let preferred = paths.first(where: { $0.name == "pids" }) ?? paths.first(where: { $0.name == "freezer" })
            ?? paths.first(where: { $0.name == "memory" }) ?? paths.first
        guard let p = preferred, let text = try? FS.readString(p.dir + "/cgroup.procs") else { return [] }
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// Removes the leaf directories; retries briefly while the kernel still counts exiting tasks.
    public func remove() throws(LinuxError) {
        var firstError: LinuxError?
        for p in paths {
            var tries = 0
            while rmdir(p.dir) != 0 {
                let e = errno
                if e == ENOENT { break }
                if e == EBUSY && tries < 100 {
                    tries += 1
                    usleep(2000)
                    continue
                }
                if firstError == nil { firstError = LinuxError.sys("remove cgroup \(p.dir)", errno: e) }
                break
            }
        }
        if let e = firstError { throw e }
    }

    public var exists: Bool { paths.contains { FS.isDirectory($0.dir) } }
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\n" || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
