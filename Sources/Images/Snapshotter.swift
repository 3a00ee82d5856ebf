// Snapshots: the unpacked layers and the containers' writable layers, under <root>/snapshots.
//
//   <root>/snapshots/<id>/fs       the layer's files (committed) or the container's upper dir (active)
//   <root>/snapshots/<id>/work     overlay's work dir (active, overlay driver)
//   <root>/snapshots/<id>/info     "committed <chainID> <parent chainID|->" or "active <key> <parent|-> rw|ro"
//   <root>/snapshots/by-chain/<alg>-<hex> → ../<id>    a committed layer stack, by chain ID
//   <root>/snapshots/by-key/<key>         → ../<id>    an active snapshot or a view, by the caller's key
//
// Ids are small numbers so that an overlay mount's lowerdir list of a deep image stays far below the page
// size the kernel allows for mount options. A snapshot is visible only through its link, which is made
// last (symlink + rename); an id dir without a link is an interrupted unpack, removed by `cleanup`.
//
// Two drivers: overlay (each layer unpacked on its own with whiteouts in overlay form, so layers unpack in
// parallel; mounts are overlay) and copy (where overlayfs is not available: each layer is a full copy of
// its parent with the layer applied, whiteouts deleting; mounts are binds).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LinuxContainer
import OCI

/// A mount, in the shape of an OCI config's mount (the runtime or `mount(8)` can use it as is).
public struct Mount: Sendable, Codable, Hashable, CustomStringConvertible {
    public var type: String
    public var source: String
    public var options: [String]

    public var description: String { "\(type) \(source) \(options.joined(separator: ","))" }
}

public final class Snapshotter: Sendable {
    public enum Driver: String, Sendable, Codable { case overlay, copy }

    public let root: String
    public let driver: Driver

    public init(root: String, driver: Driver? = nil) throws(ImagesError) {
        self.root = root
        for d in ["", "/by-chain", "/by-key"] {
            do { try FS.mkdirAll(root + d, mode: 0o700) } catch { throw ImagesError(wrapping: error) }
        }
        // Layers unpacked for one driver are not usable by the other (whiteouts as devices vs deleted
        // files): the first use of a store fixes its driver.
        let recorded = (try? FS.readString(root + "/driver")).flatMap {
            Driver(rawValue: $0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if let recorded {
            if let driver, driver != recorded {
                throw ImagesError(.conflict, "snapshots in \(root) were made by the \(recorded.rawValue) driver, not \(driver.rawValue); "
                    + "use --driver \(recorded.rawValue) or another root")
            }
            self.driver = recorded
        } else {
            let chosen = driver ?? (Snapshotter.overlaySupported(in: root) ? .overlay : .copy)
            do { try FS.writeAtomically(Array((chosen.rawValue + "\n").utf8), to: root + "/driver", mode: 0o600) } catch {
                throw ImagesError(wrapping: error)
            }
            self.driver = chosen
        }
    }

    /// Can this filesystem hold overlay layers (and the kernel mount them)? Tried for real, once.
    public static func overlaySupported(in dir: String) -> Bool {
        let base = dir + "/.probe-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        defer { try? FS.removeTree(base) }
        guard mkdir(base, 0o700) == 0 else { return false }
        for d in ["l1", "l2", "u", "w", "m"] {
            guard mkdir(base + "/" + d, 0o700) == 0 else { return false }
        }
        let opts = "lowerdir=\(base)/l2:\(base)/l1,upperdir=\(base)/u,workdir=\(base)/w"
        guard mount("overlay", base + "/m", "overlay", 0, opts) == 0 else { return false }
        umount2(base + "/m", Int32(MNT_DETACH))
        return true
    }

    // MARK: committed layers

    func chainLink(_ chain: Digest) -> String { root + "/by-chain/" + chain.algorithm.rawValue + "-" + chain.encoded }

    /// The directory of a committed layer stack, when it exists.
    public func committedPath(_ chain: Digest) -> String? {
        guard let target = FS.readlink(chainLink(chain)), let id = Int(target.dropFirst(3)) else { return nil }
        let p = root + "/\(id)"
        return FS.isDirectory(p + "/fs") ? p : nil
    }

    public func hasCommitted(_ chain: Digest) -> Bool { committedPath(chain) != nil }

    /// A fresh id dir for a layer being unpacked: for overlay an empty fs/, for copy a copy of the
    /// parent's fs/. Returns the dir and how whiteouts must be written in it.
    public func beginLayer(parent: Digest?) throws(ImagesError) -> (dir: String, whiteouts: WhiteoutMode) {
        let dir = try newID()
        switch driver {
        case .overlay:
            try mkdirOrThrow(dir + "/fs")
            return (dir, .overlay)
        case .copy:
            if let parent {
                guard let p = committedPath(parent) else {
                    try? FS.removeTree(dir)
                    throw ImagesError(.notFound, "snapshot \(parent): parent layer is not unpacked")
                }
                try copyTree(p + "/fs", to: dir + "/fs")
            } else {
                try mkdirOrThrow(dir + "/fs")
            }
            return (dir, .apply)
        }
    }

    /// Makes an unpacked layer visible under its chain ID. When another writer committed the same chain
    /// meanwhile, this one is dropped (same content by construction).
    public func commitLayer(_ dir: String, chain: Digest, parent: Digest?) throws(ImagesError) {
        let info = "committed \(chain) \(parent?.description ?? "-")\n"
        do { try FS.writeAtomically(Array(info.utf8), to: dir + "/info", mode: 0o600) } catch { throw ImagesError(wrapping: error) }
        FS.fsyncDirectory(dir)
        if hasCommitted(chain) {
            try? FS.removeTree(dir)
            return
        }
        try link(chainLink(chain), to: dir)
    }

    public func abortLayer(_ dir: String) { try? removeSnapshotDir(dir) }

    // MARK: active snapshots and views

    /// A writable snapshot on top of a committed stack (a container's rootfs). Returns its mounts.
    public func prepare(key: String, parent: Digest?, readOnly: Bool = false) throws(ImagesError) -> [Mount] {
        try validateKey(key)
        if FS.readlink(root + "/by-key/" + key) != nil {
            throw ImagesError(.conflict, "snapshot \(key): already exists")
        }
        if let parent, !hasCommitted(parent) {
            throw ImagesError(.notFound, "snapshot \(key): parent \(parent) is not unpacked")
        }
        let dir = try newID()
        do throws(ImagesError) {
            switch driver {
            case .overlay:
                try mkdirOrThrow(dir + "/fs")
                try mkdirOrThrow(dir + "/work")
            case .copy:
                if let parent, let p = committedPath(parent) {
                    try copyTree(p + "/fs", to: dir + "/fs")
                } else {
                    try mkdirOrThrow(dir + "/fs")
                }
            }
            let info = "active \(key) \(parent?.description ?? "-") \(readOnly ? "ro" : "rw")\n"
            do { try FS.writeAtomically(Array(info.utf8), to: dir + "/info", mode: 0o600) } catch { throw ImagesError(wrapping: error) }
            try link(root + "/by-key/" + key, to: dir)
        } catch {
            try? removeSnapshotDir(dir)
            throw error
        }
        return try mounts(key: key)
    }

    /// A read-only view of a committed stack (inspecting an image's files, `cp` out of an image).
    public func view(key: String, parent: Digest) throws(ImagesError) -> [Mount] {
        try prepare(key: key, parent: parent, readOnly: true)
    }

    struct Info {
        var kind: String
        var name: String
        var parent: Digest?
        var readOnly: Bool
    }

    func readInfo(_ dir: String) -> Info? {
        guard let text = try? FS.readString(dir + "/info") else { return nil }
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        guard f.count >= 3 else { return nil }
        let parent = f[2] == "-" ? nil : try? Digest(parsing: f[2])
        return Info(kind: f[0], name: f[1], parent: parent, readOnly: f.count > 3 && f[3] == "ro")
    }

    /// The committed stack under a chain ID, bottom layer first.
    func stack(_ chain: Digest) throws(ImagesError) -> [String] {
        var dirs: [String] = []
        var cur: Digest? = chain
        while let c = cur {
            guard let p = committedPath(c), let info = readInfo(p) else {
                throw ImagesError(.notFound, "snapshot \(c): not unpacked")
            }
            dirs.append(p + "/fs")
            cur = info.parent
            if dirs.count > 500 { throw ImagesError(.invalidContent, "snapshot \(chain): parent chain loops") }
        }
        return dirs.reversed()
    }

    public func mounts(key: String) throws(ImagesError) -> [Mount] {
        guard let dir = keyPath(key), let info = readInfo(dir) else {
            throw ImagesError(.notFound, "snapshot \(key): no such snapshot")
        }
        let lowers = try info.parent.map { (c: Digest) throws(ImagesError) in try stack(c) } ?? []
        switch driver {
        case .copy:
            return [Mount(type: "bind", source: dir + "/fs", options: ["rbind", info.readOnly ? "ro" : "rw"])]
        case .overlay:
            if info.readOnly {
                if lowers.count == 1 { return [Mount(type: "bind", source: lowers[0], options: ["rbind", "ro"])] }
                if lowers.isEmpty { return [Mount(type: "bind", source: dir + "/fs", options: ["rbind", "ro"])] }
                return [Mount(type: "overlay", source: "overlay", options: ["lowerdir=" + lowers.reversed().joined(separator: ":")])]
            }
            if lowers.isEmpty {
                return [Mount(type: "bind", source: dir + "/fs", options: ["rbind", "rw"])]
            }
            return [Mount(type: "overlay", source: "overlay", options: [
                "workdir=\(dir)/work", "upperdir=\(dir)/fs", "lowerdir=" + lowers.reversed().joined(separator: ":"),
            ])]
        }
    }

    public func keyPath(_ key: String) -> String? {
        guard let target = FS.readlink(root + "/by-key/" + key), let id = Int(target.dropFirst(3)) else { return nil }
        return root + "/\(id)"
    }

    public func remove(key: String) throws(ImagesError) {
        try validateKey(key)
        guard let dir = keyPath(key) else { throw ImagesError(.notFound, "snapshot \(key): no such snapshot") }
        if unlink(root + "/by-key/" + key) != 0 && errno != ENOENT {
            throw ImagesError.system("remove snapshot \(key)", errno: errno)
        }
        try removeSnapshotDir(dir)
    }

    /// Active snapshots and views: key → parent chain.
    public func activeSnapshots() -> [(key: String, parent: Digest?)] {
        ((try? FS.list(root + "/by-key")) ?? []).compactMap { key in
            guard let dir = keyPath(key), let info = readInfo(dir) else { return nil }
            return (key, info.parent)
        }
    }

    /// Committed stacks: chain → (dir, parent).
    public func committedSnapshots() -> [(chain: Digest, dir: String, parent: Digest?)] {
        ((try? FS.list(root + "/by-chain")) ?? []).compactMap { name in
            guard let dash = name.firstIndex(of: "-"),
                  let chain = try? Digest(parsing: name.replacingCharacters(in: dash...dash, with: ":")),
                  let dir = committedPath(chain), let info = readInfo(dir) else { return nil }
            return (chain, dir, info.parent)
        }
    }

    /// Removes a committed stack (GC). The caller checks nothing references it.
    public func removeCommitted(_ chain: Digest) throws(ImagesError) {
        guard let dir = committedPath(chain) else { return }
        if unlink(chainLink(chain)) != 0 && errno != ENOENT {
            throw ImagesError.system("remove snapshot \(chain)", errno: errno)
        }
        try removeSnapshotDir(dir)
    }

    /// Id dirs no link points to: unpacks a crash interrupted. Only safe under the GC lock held exclusively.
    @discardableResult
    public func cleanup() -> Int {
        var linked = Set<String>()
        for d in ["/by-chain", "/by-key"] {
            for name in (try? FS.list(root + d)) ?? [] {
                if let t = FS.readlink(root + d + "/" + name) { linked.insert(String(t.dropFirst(3))) }
            }
        }
        var removed = 0
        for name in (try? FS.list(root)) ?? [] where Int(name) != nil && !linked.contains(name) {
            if (try? removeSnapshotDir(root + "/" + name)) != nil { removed += 1 }
        }
        for name in (try? FS.list(root)) ?? [] where name.hasPrefix(".probe-") { try? FS.removeTree(root + "/" + name) }
        return removed
    }

    /// Disk use of a snapshot dir, in bytes (blocks actually allocated).
    public func usage(_ dir: String) -> Int64 { diskUsage(dir) }

    // MARK: helpers

    private func validateKey(_ key: String) throws(ImagesError) {
        guard !key.isEmpty, key.utf8.count <= 200, key != ".", key != "..",
              key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != 0x2f })
        else { throw ImagesError(.invalidArgument, "snapshot key \"\(key)\": 1 to 200 printable characters, no \"/\"") }
    }

    private func newID() throws(ImagesError) -> String {
        var highest = 0
        for name in (try? FS.list(root)) ?? [] { if let n = Int(name), n > highest { highest = n } }
        for n in (highest + 1)...(highest + 10_000) {
            let dir = root + "/\(n)"
            if mkdir(dir, 0o700) == 0 { return dir }
            if errno != EEXIST { throw ImagesError.system("create snapshot dir \(dir)", errno: errno) }
        }
        throw ImagesError(.system, "create snapshot dir under \(root): no free id")
    }

    private func link(_ linkPath: String, to dir: String) throws(ImagesError) {
        let id = FS.split(dir).name
        let tmp = linkPath + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        guard symlink("../" + id, tmp) == 0 else { throw ImagesError.system("link snapshot \(linkPath)", errno: errno) }
        guard rename(tmp, linkPath) == 0 else {
            let e = errno
            unlink(tmp)
            throw ImagesError.system("link snapshot \(linkPath)", errno: e)
        }
        FS.fsyncDirectory(FS.split(linkPath).dir)
    }

    private func removeSnapshotDir(_ dir: String) throws(ImagesError) {
        // An active overlay's rootfs may still be mounted by a caller that forgot; never rm -rf through it.
        umount2(dir + "/fs", Int32(MNT_DETACH))
        do { try FS.removeTree(dir) } catch { throw ImagesError(wrapping: error) }
    }

    private func mkdirOrThrow(_ p: String) throws(ImagesError) {
        if mkdir(p, 0o755) != 0 { throw ImagesError.system("mkdir \(p)", errno: errno) }
    }

    /// `cp -a` of a tree (reflinks where the filesystem has them); the copy driver only.
    private func copyTree(_ src: String, to dst: String) throws(ImagesError) {
        let p = Foundation.Process()
        p.executableURL = URL(fileURLWithPath: "/bin/cp")
        p.arguments = ["-a", "--reflink=auto", "--", src, dst]
        let err = Pipe()
        p.standardError = err
        do { try p.run() } catch { throw ImagesError(.system, "copy \(src): cannot run cp: \(error)") }
        let msg = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ImagesError(.system, "copy \(src) to \(dst): " + String(decoding: msg, as: UTF8.self))
        }
    }
}

/// Bytes allocated under a directory, not following symlinks and not crossing mounts.
func diskUsage(_ path: String) -> Int64 {
    var st = stat()
    guard lstat(path, &st) == 0 else { return 0 }
    var total = Int64(st.st_blocks) * 512
    if (st.st_mode & S_IFMT) == S_IFDIR {
        let dev = st.st_dev
        for name in (try? FS.list(path)) ?? [] {
            let child = path + "/" + name
            var cs = stat()
            if lstat(child, &cs) == 0, cs.st_dev == dev { total += diskUsage(child) }
        }
    }
    return total
}
