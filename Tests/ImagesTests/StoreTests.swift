// The content store, the snapshotter and the image store on their own: atomic, verified writes, resumed
// ingests, shared downloads, snapshots' mounts, and what a crash leaves.
import Foundation
import Glibc
@testable import Images
import OCI
import Testing

/// A scratch dir under /tmp, removed (with anything mounted below it) when the test ends.
final class Scratch {
    let path: String
    init(_ name: String = #function) {
        let clean = name.filter { $0.isLetter || $0.isNumber }
        path = "/tmp/berth-images-test-\(clean.prefix(40))-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        mkdir(path, 0o700)
    }
    deinit {
        // Lazily unmount anything a failed test left mounted, deepest first, then remove.
        if let mounts = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) {
            for line in mounts.split(separator: "\n").reversed() {
                let f = line.split(separator: " ")
                if f.count > 4, f[4].hasPrefix(path) { umount2(String(f[4]), Int32(MNT_DETACH)) }
            }
        }
        try? FileManager.default.removeItem(atPath: path)
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func descriptor(_ b: [UInt8], _ media: String = MediaType.ociLayer) -> Descriptor {
    Descriptor(mediaType: media, digest: StreamHasher.digest(b), size: Int64(b.count))
}

@Suite struct ContentStoreTests {
    @Test func writeReadVerify() throws {
        let s = Scratch()
        let store = try ContentStore(root: s.path + "/content")
        let d = try store.write(bytes("hello"))
        #expect(d.description == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        #expect(try store.read(d) == bytes("hello"))
        #expect(store.size(d) == 5)
        #expect(throws: ImagesError.self) { try store.write(bytes("hello"), expected: StreamHasher.digest(bytes("other"))) }
        // A flipped bit on disk is caught when the blob is read.
        try "hellp".write(toFile: store.path(d), atomically: false, encoding: .utf8)
        let e = #expect(throws: ImagesError.self) { try store.read(d) }
        #expect(e?.message.contains("corrupt") == true)
    }

    @Test func ingestVerifiesSizeAndDigest() async throws {
        let s = Scratch()
        let store = try ContentStore(root: s.path + "/content")
        let data = bytes("layer bytes")
        // More bytes than declared: cut off at once.
        let short = Descriptor(mediaType: MediaType.ociLayer, digest: StreamHasher.digest(data), size: 4)
        let w1 = try #require(try await store.writer(for: short))
        let e1 = #expect(throws: ImagesError.self) { try data.withUnsafeBytes { try w1.write($0) } }
        #expect(e1?.message.contains("more than the 4 bytes") == true)
        w1.abort()
        // Right size, wrong bytes: the digest check fails and nothing is listed.
        let d = descriptor(data)
        let w2 = try #require(try await store.writer(for: d))
        try bytes("LAYER BYTES").withUnsafeBytes { try w2.write($0) }
        let e2 = #expect(throws: ImagesError.self) { try w2.commit() }
        #expect(e2?.message.contains("digest mismatch") == true)
        #expect(!store.contains(d.digest))
        #expect(try store.list().isEmpty)
    }

    @Test func ingestResumesAfterCrash() async throws {
        let s = Scratch()
        let store = try ContentStore(root: s.path + "/content")
        let data = [UInt8]((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let d = descriptor(data)
        do {
            // First attempt: 40 000 bytes, then the "process dies" (the writer goes away uncommitted).
            let w = try #require(try await store.writer(for: d))
            try data[0..<40_000].withUnsafeBytes { try w.write($0) }
        }
        #expect(!store.contains(d.digest))
        let w = try #require(try await store.writer(for: d))
        #expect(w.resumable == 40_000)
        var replayed: [UInt8] = []
        try w.replay { replayed.append(contentsOf: $0) }
        #expect(replayed == Array(data[0..<40_000]))
        try data[40_000...].withUnsafeBytes { try w.write($0) }
        try w.commit()
        #expect(try store.read(d.digest, limit: 1 << 20) == data)
    }

    @Test func oneWriterPerDigest() async throws {
        let s = Scratch()
        let store = try ContentStore(root: s.path + "/content")
        let data = bytes(String(repeating: "x", count: 5000))
        let d = descriptor(data)
        let first = try #require(try await store.writer(for: d))
        // A second writer waits for the first; once it committed, there is nothing to write.
        let second = Task { try await store.writer(for: d) == nil }
        try await Task.sleep(nanoseconds: 50_000_000)
        try data.withUnsafeBytes { try first.write($0) }
        try first.commit()
        _ = consume first
        #expect(try await second.value)
    }

    @Test func staleIngestsAreRemovedLiveOnesKept() async throws {
        let s = Scratch()
        let store = try ContentStore(root: s.path + "/content")
        let a = descriptor(bytes("aaaa")), b = descriptor(bytes("bbbb"))
        do {
            let w = try #require(try await store.writer(for: a))
            try bytes("aa").withUnsafeBytes { try w.write($0) }
        }
        let live = try #require(try await store.writer(for: b))
        try bytes("bb").withUnsafeBytes { try live.write($0) }
        #expect(try store.removeStaleIngests() == 2)
        #expect(FileManager.default.fileExists(atPath: live.dir + "/data"))
        #expect(!FileManager.default.fileExists(atPath: s.path + "/content/ingest/sha256-" + a.digest.encoded))
    }
}

@Suite struct SnapshotterTests {
    func commit(_ snap: Snapshotter, _ files: [String: String], parent: Digest?, chain: String) throws -> Digest {
        let (dir, _) = try snap.beginLayer(parent: parent)
        for (name, text) in files { try text.write(toFile: dir + "/fs/" + name, atomically: false, encoding: .utf8) }
        let c = StreamHasher.digest(chain)
        try snap.commitLayer(dir, chain: c, parent: parent)
        return c
    }

    @Test(arguments: [Snapshotter.Driver.overlay, .copy])
    func layersAndActiveSnapshot(driver: Snapshotter.Driver) throws {
        let s = Scratch()
        let snap = try Snapshotter(root: s.path + "/snapshots", driver: driver)
        let l1 = try commit(snap, ["a": "1", "b": "1"], parent: nil, chain: "one")
        let l2 = try commit(snap, ["b": "2"], parent: l1, chain: "two")
        #expect(snap.hasCommitted(l1) && snap.hasCommitted(l2))
        let mounts = try snap.prepare(key: "ctr1", parent: l2)
        #expect(mounts.count == 1)
        let m = mounts[0]
        let target = s.path + "/rootfs"
        mkdir(target, 0o755)
        if m.type == "overlay" {
            let lower = try #require(m.options.first { $0.hasPrefix("lowerdir=") })
            // Topmost layer first, as overlayfs wants it.
            #expect(lower.split(separator: ":").count == 2)
            #expect(lower.contains(snap.committedPath(l2)! + "/fs:"))
            #expect(mount("overlay", target, "overlay", 0, m.options.joined(separator: ",")) == 0)
        } else {
            #expect(mount(m.source, target, nil, UInt(MS_BIND), nil) == 0)
        }
        defer { umount2(target, Int32(MNT_DETACH)) }
        #expect(try String(contentsOfFile: target + "/a", encoding: .utf8) == "1")
        #expect(try String(contentsOfFile: target + "/b", encoding: .utf8) == "2")
        try "rw".write(toFile: target + "/c", atomically: false, encoding: .utf8)
        umount2(target, Int32(MNT_DETACH))
        // The writes went to the container's layer, not the image's.
        #expect(!FileManager.default.fileExists(atPath: snap.committedPath(l2)! + "/fs/c"))
        #expect(throws: ImagesError.self) { try snap.prepare(key: "ctr1", parent: l2) }
        try snap.remove(key: "ctr1")
        #expect(snap.activeSnapshots().isEmpty)
    }

    @Test func interruptedUnpackIsInvisibleAndCleanedUp() throws {
        let s = Scratch()
        let snap = try Snapshotter(root: s.path + "/snapshots", driver: .overlay)
        let (dir, _) = try snap.beginLayer(parent: nil)
        try "half".write(toFile: dir + "/fs/x", atomically: false, encoding: .utf8)
        // "crash": never committed
        #expect(snap.committedSnapshots().isEmpty)
        #expect(snap.cleanup() == 1)
        #expect(!FileManager.default.fileExists(atPath: dir))
    }

    @Test func aStoreKeepsItsDriver() throws {
        let s = Scratch()
        _ = try Snapshotter(root: s.path + "/snapshots", driver: .copy)
        #expect(try Snapshotter(root: s.path + "/snapshots").driver == .copy)
        let e = #expect(throws: ImagesError.self) { try Snapshotter(root: s.path + "/snapshots", driver: .overlay) }
        #expect(e?.code == .conflict)
    }

    @Test func badKeysAreRefused() throws {
        let s = Scratch()
        let snap = try Snapshotter(root: s.path + "/snapshots", driver: .overlay)
        for key in ["", "..", "a/b", "../x", String(repeating: "k", count: 201)] {
            #expect(throws: ImagesError.self) { try snap.prepare(key: key, parent: nil) }
        }
        #expect(throws: ImagesError.self) { try snap.prepare(key: "ok", parent: StreamHasher.digest("nothing")) }
    }
}

@Suite struct ImageStoreTests {
    @Test func putTagDelete() throws {
        let s = Scratch()
        let store = try ImageStore(root: s.path)
        let d = descriptor(bytes("{}"), MediaType.ociManifest)
        #expect(try store.put("docker.io/library/busybox:latest", target: d) == nil)
        #expect(try store.put("docker.io/library/busybox:1", target: d) == nil)
        #expect(try store.list().map(\.name) == ["docker.io/library/busybox:1", "docker.io/library/busybox:latest"])
        try store.delete("docker.io/library/busybox:1")
        #expect(throws: ImagesError.self) { try store.delete("docker.io/library/busybox:1") }
        // A damaged file is an error that names it, not an empty store.
        try "{not json".write(toFile: store.path, atomically: false, encoding: .utf8)
        let e = #expect(throws: ImagesError.self) { try store.list() }
        #expect(e?.message.contains(store.path) == true)
    }
}
