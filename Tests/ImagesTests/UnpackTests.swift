// LayerUnpacker: metadata (modes with setuid, owners, mtimes, xattrs incl. security.capability, devices,
// fifos, links) compared with what GNU tar extracts from the same layer; gzip, zstd and plain layers;
// whiteouts in both modes; and every hostile layer we know of, each checked against a sentinel directory
// outside the root that must stay as it was.
import Foundation
import Testing
@testable import Images
import OCI

private typealias K = TarTestKit

/// A scratch dir with `root/` (the unpack target) and `sentinel/secret` (what a hostile layer aims at).
private struct UnpackScratch {
    let dir: String
    var root: String { dir + "/root" }
    var sentinel: String { dir + "/sentinel" }

    static func with(_ body: (UnpackScratch) throws -> Void) throws {
        try K.withScratch { dir in
            let s = UnpackScratch(dir: dir)
            try FileManager.default.createDirectory(atPath: s.root, withIntermediateDirectories: false)
            try FileManager.default.createDirectory(atPath: s.sentinel, withIntermediateDirectories: false)
            try K.writeFile(s.sentinel + "/secret", Array("untouched".utf8))
            try body(s)
            try s.expectSentinelUntouched()
        }
    }

    func expectSentinelUntouched() throws {
        #expect(try FileManager.default.contentsOfDirectory(atPath: sentinel) == ["secret"])
        #expect(try K.readFile(sentinel + "/secret") == Array("untouched".utf8))
        let st = try #require(K.lstatOf(sentinel + "/secret"))
        #expect(st.st_nlink == 1 && st.st_mode & 0o7777 == 0o644 && st.st_uid == geteuid())
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)).isSubset(of: ["root", "sentinel", "layer", "ref"]))
    }

    /// fds of this process that point into the scratch dir (the unpacker must leave none).
    func openFDsInside() -> [String] {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.compactMap { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd) else { return nil }
            return target.hasPrefix(dir) ? target : nil
        }
    }
}

private func unpack(_ layer: [UInt8], into root: String, compression: LayerCompression = .none,
                    mode: WhiteoutMode = .apply, limits: UnpackLimits = UnpackLimits(), expected: Digest? = nil,
                    chunk: Int = 100_000) throws -> (diffID: Digest, size: Int64, warnings: [String]) {
    let u = try LayerUnpacker(rootPath: root, compression: compression, mode: mode, limits: limits, expectedDiffID: expected)
    try layer.withUnsafeBytes { raw in
        var i = 0
        while i < raw.count {
            let n = min(chunk, raw.count - i)
            try u.feed(UnsafeRawBufferPointer(rebasing: raw[i..<(i + n)]))
            i += n
        }
    }
    let (d, s) = try u.finish()
    return (d, s, u.warnings)
}

private func compress(_ bytes: [UInt8], _ kind: LayerCompression) throws -> [UInt8] {
    switch kind {
    case .none: return bytes
    case .gzip: return try K.run(["gzip", "-c", "-n"], stdin: bytes).out
    case .zstd: return try K.run(["zstd", "-q", "-c"], stdin: bytes).out
    }
}

/// One line per path under `root`: type, mode, owner, size, mtime (ns), link count, link target or a
/// hash of the contents, device numbers, and every xattr (by python: lstat, listxattr, never following).
private func snapshot(_ root: String, skipRootTimes: Bool = true) throws -> [String] {
    let out = try K.python("""
        import os, sys, stat, hashlib
        root = sys.argv[1]
        lines = []
        for dirpath, dirs, files in os.walk(root):
            for name in sorted(dirs + files) + ([] if dirpath != root else ["."]):
                p = os.path.normpath(os.path.join(dirpath, name))
                st = os.lstat(p)
                rel = os.path.relpath(p, root)
                kind = stat.S_IFMT(st.st_mode)
                extra = ""
                if stat.S_ISLNK(st.st_mode): extra = "-> " + os.readlink(p)
                elif stat.S_ISREG(st.st_mode): extra = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
                elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode): extra = "dev %d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
                xs = []
                try:
                    for x in sorted(os.listxattr(p, follow_symlinks=False)):
                        xs.append(x + "=" + os.getxattr(p, x, follow_symlinks=False).hex())
                except OSError:
                    pass
                mtime = "" if rel == "." and \(skipRootTimes ? "True" : "False") else str(st.st_mtime_ns)
                lines.append("%s %o %o %d:%d size=%d nlink=%d mtime=%s %s %s" % (rel, kind, stat.S_IMODE(st.st_mode),
                    st.st_uid, st.st_gid, st.st_size if not stat.S_ISDIR(kind) else 0, st.st_nlink if not stat.S_ISDIR(kind) else 0,
                    mtime, extra, " ".join(xs)))
        print("\\n".join(sorted(set(lines))))
        """, [root])
    return String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init)
}

/// VFS_CAP_REVISION_2 | effective, permitted = cap_net_raw
private let netRawCapability: [UInt8] = [0x01, 0, 0, 0x02, 0, 0x20, 0, 0] + Array(repeating: 0, count: 12)

@Suite(.serialized) struct UnpackTests {
    // MARK: metadata, against GNU tar

    /// A tree made on disk with every kind of file and metadata, archived by GNU tar (pax, with xattrs);
    /// our unpack and GNU tar's extraction of the same layer must agree on everything.
    @Test(.enabled(if: K.isRoot, "chown, mknod and security.capability need root"),
          arguments: [LayerCompression.none, .gzip, .zstd])
    func matchesGNUTarExtraction(_ compression: LayerCompression) throws {
        try UnpackScratch.with { s in
            let src = s.dir + "/layer"
            let long = String(repeating: "L", count: 120) + "/" + String(repeating: "M", count: 140)
            try K.sh("""
                set -e
                mkdir -p '\(src)/usr/bin' '\(src)/etc' '\(src)/\(long)' '\(src)/tmp' '\(src)/dev' '\(src)/emptydir'
                cd '\(src)'
                printf 'root:x:0:0\\n' > etc/passwd
                head -c 300000 /dev/urandom > usr/bin/tool
                cp usr/bin/tool usr/bin/ping
                head -c 1000 /dev/urandom > '\(long)/deep'
                chmod 4755 usr/bin/tool; chmod 2711 usr/bin/ping; chmod 1777 tmp; chmod 0700 emptydir
                chown 1234:5678 etc/passwd; chown -h 42:43 etc
                ln -s ../etc/passwd usr/bin/passwd-link
                ln -s /absolute/target dangling
                ln usr/bin/tool usr/bin/tool-hard
                mkfifo dev/fifo; chmod 0640 dev/fifo
                mknod dev/null c 1 3; chmod 0666 dev/null
                mknod dev/loop9 b 7 9
                setcap cap_net_raw+ep usr/bin/ping
                python3 -c "import os; os.setxattr('etc/passwd', 'user.note', b'hello'); os.setxattr('usr', 'user.dir', b'\\x00\\x01')"
                touch -h -d '2001-02-03 04:05:06.789' usr/bin/passwd-link
                touch -d '2002-01-01 00:00:00.5' etc/passwd
                touch -d '2003-01-01' usr/bin usr etc '\(long)' dev tmp emptydir
                """)
            try K.sh("tar --format=pax --xattrs --xattrs-include='*' --numeric-owner --sort=name -cf '\(s.dir)/layer.tar' -C '\(src)' .")
            let tarBytes = try K.readFile(s.dir + "/layer.tar")
            K.removeTree(src)
            try FileManager.default.removeItem(atPath: s.dir + "/layer.tar")

            let layer = try compress(tarBytes, compression)
            let r = try unpack(layer, into: s.root, compression: compression, mode: .apply, chunk: 65_536)
            #expect(r.diffID == StreamHasher.digest(tarBytes))
            #expect(r.size == Int64(tarBytes.count))
            #expect(r.warnings.isEmpty, "\(r.warnings)")

            let ref = s.dir + "/ref"
            try FileManager.default.createDirectory(atPath: ref, withIntermediateDirectories: false)
            try K.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", "-", "-C", ref], stdin: tarBytes)
            let ours = try snapshot(s.root), theirs = try snapshot(ref)
            #expect(ours == theirs)
            #expect(ours.count > 15)
            // spot checks that do not depend on GNU tar
            let ping = try #require(K.lstatOf(s.root + "/usr/bin/ping"))
            #expect(ping.st_mode & 0o7777 == 0o2711)
            #expect(try K.xattr(s.root + "/usr/bin/ping", "security.capability") == netRawCapability)
            let tool = try #require(K.lstatOf(s.root + "/usr/bin/tool"))
            #expect(tool.st_mode & 0o7777 == 0o4755 && tool.st_nlink == 2)
            let passwd = try #require(K.lstatOf(s.root + "/etc/passwd"))
            #expect(passwd.st_uid == 1234 && passwd.st_gid == 5678)
            #expect(passwd.st_mtim.tv_sec == 1_009_843_200 && passwd.st_mtim.tv_nsec == 500_000_000)
            #expect(K.lstatOf(s.root + "/dev/null").map { $0.st_mode & 0o170000 == 0o020000 && $0.st_rdev == 0x103 } == true)
            #expect(s.openFDsInside().isEmpty)
        }
    }

    /// The same layer, written by our TarWriter, at several chunkings: every kind and metadata field.
    @Test(.enabled(if: K.isRoot, "chown, mknod and security.capability need root"), arguments: [1, 511, 4096, 1 << 20])
    func writerLayerAtEveryChunking(_ chunk: Int) throws {
        try UnpackScratch.with { s in
            let t = TarTime(seconds: 1_500_000_000, nanoseconds: 42)
            let layer = try K.tar { w in
                try w.append(TarEntry(.directory, path: "d", mode: 0o750, uid: 7, gid: 8, modificationTime: t))
                try w.append(TarEntry(.regular, path: "d/suid", mode: 0o6755, uid: 1000, gid: 1001, modificationTime: t,
                                      xattrs: ["security.capability": netRawCapability, "user.x": [1, 2, 3]]),
                             contents: Array(repeating: 0x41, count: 5000))
                try w.append(TarEntry(.regular, path: "d/" + String(repeating: "n", count: 200), mode: 0o600),
                             contents: Array("long".utf8))
                try w.append(TarEntry(.symlink, path: "d/sym", linkTarget: "suid", uid: 5, gid: 6, modificationTime: t))
                try w.append(TarEntry(.hardlink, path: "d/hard", linkTarget: "d/suid"))
                try w.append(TarEntry(.fifo, path: "d/fifo", mode: 0o620, modificationTime: t))
                try w.append(TarEntry(.characterDevice, path: "d/zero", mode: 0o666, deviceMajor: 1, deviceMinor: 5))
                try w.append(TarEntry(.blockDevice, path: "d/blk", mode: 0o600, deviceMajor: 259, deviceMinor: 70_000))
                try w.append(TarEntry(.regular, path: "sticky/f", mode: 0o1644))
                try w.append(TarEntry(.regular, path: "empty", mode: 0o400))
            }
            let r = try unpack(layer, into: s.root, chunk: chunk)
            #expect(r.diffID == StreamHasher.digest(layer))
            let d = try #require(K.lstatOf(s.root + "/d"))
            #expect(d.st_mode & 0o7777 == 0o750 && d.st_uid == 7 && d.st_gid == 8)
            #expect(d.st_mtim.tv_sec == 1_500_000_000 && d.st_mtim.tv_nsec == 42)  // after its children were made
            let f = try #require(K.lstatOf(s.root + "/d/suid"))
            #expect(f.st_mode & 0o7777 == 0o6755 && f.st_uid == 1000 && f.st_gid == 1001 && f.st_size == 5000)
            #expect(f.st_mtim.tv_sec == 1_500_000_000 && f.st_mtim.tv_nsec == 42)
            #expect(f.st_nlink == 2)
            #expect(try K.xattr(s.root + "/d/suid", "security.capability") == netRawCapability)
            #expect(try K.xattr(s.root + "/d/suid", "user.x") == [1, 2, 3])
            #expect(try K.readFile(s.root + "/d/" + String(repeating: "n", count: 200)) == Array("long".utf8))
            let sym = try #require(K.lstatOf(s.root + "/d/sym"))
            #expect(sym.st_mode & 0o170000 == 0o120000 && sym.st_uid == 5 && sym.st_gid == 6)
            #expect(sym.st_mtim.tv_sec == 1_500_000_000)
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: s.root + "/d/sym") == "suid")
            let fifo = try #require(K.lstatOf(s.root + "/d/fifo"))
            #expect(fifo.st_mode == 0o010620)
            let zero = try #require(K.lstatOf(s.root + "/d/zero"))
            #expect(zero.st_mode == 0o020666 && zero.st_rdev == 0x105)
            let blk = try #require(K.lstatOf(s.root + "/d/blk"))
            // glibc makedev(259, 70000)
            #expect(blk.st_mode & 0o170000 == 0o060000 && blk.st_rdev == UInt64(70000 & 0xff) | (259 << 8) | (UInt64(70000 & ~0xff) << 12))
            #expect(K.lstatOf(s.root + "/sticky/f")?.st_mode == 0o101644)
            #expect(K.lstatOf(s.root + "/sticky")?.st_mode == 0o040755)  // made implicitly, 0755 whatever the umask
            #expect(K.lstatOf(s.root + "/empty")?.st_size == 0)
            #expect(s.openFDsInside().isEmpty)
        }
    }

    @Test func unprivilegedOwnersOptionLeavesOwnership() throws {
        try UnpackScratch.with { s in
            let layer = try K.tar { w in try w.append(TarEntry(.regular, path: "f", uid: 4321, gid: 4321), contents: [1]) }
            let u = try LayerUnpacker(rootPath: s.root, compression: .none, mode: .apply,
                                      options: UnpackOptions(preserveOwners: false))
            try layer.withUnsafeBytes { try u.feed($0) }
            _ = try u.finish()
            #expect(K.lstatOf(s.root + "/f")?.st_uid == geteuid())
        }
    }

    @Test func trustedOverlayXattrsFromALayerAreNotApplied() throws {
        try UnpackScratch.with { s in
            let layer = try K.tar { w in
                try w.append(TarEntry(.directory, path: "d", xattrs: ["trusted.overlay.opaque": Array("y".utf8),
                                                                      "trusted.overlay.redirect": Array("/x".utf8)]))
            }
            let r = try unpack(layer, into: s.root, mode: .overlay)
            #expect(try K.xattr(s.root + "/d", "trusted.overlay.opaque") == nil)
            #expect(r.warnings.count == 2)
        }
    }

    // MARK: existing content

    @Test func replacesWhatIsInTheWay() throws {
        try UnpackScratch.with { s in
            let lower = try K.tar { w in
                try w.append(TarEntry(.directory, path: "keep", mode: 0o755))
                try w.append(TarEntry(.regular, path: "keep/old"), contents: [1])
                try w.append(TarEntry(.regular, path: "was-file"), contents: [1])
                try w.append(TarEntry(.directory, path: "was-dir"))
                try w.append(TarEntry(.regular, path: "was-dir/child"), contents: [1])
                try w.append(TarEntry(.symlink, path: "was-link", linkTarget: s.sentinel + "/secret"))
                try w.append(TarEntry(.symlink, path: "was-dirlink", linkTarget: s.sentinel))
                try w.append(TarEntry(.regular, path: "shared"), contents: [9])
                try w.append(TarEntry(.hardlink, path: "shared-link", linkTarget: "shared"))
            }
            _ = try unpack(lower, into: s.root)
            let upper = try K.tar { w in
                try w.append(TarEntry(.directory, path: "keep", mode: 0o700))         // kept, mode updated
                try w.append(TarEntry(.directory, path: "was-file"))                   // file → dir
                try w.append(TarEntry(.regular, path: "was-dir"), contents: [2])       // dir tree → file
                try w.append(TarEntry(.regular, path: "was-link"), contents: [3])      // replaces the symlink
                try w.append(TarEntry(.directory, path: "was-dirlink"))                // symlink → real dir
                try w.append(TarEntry(.regular, path: "was-dirlink/new"), contents: [4])
                try w.append(TarEntry(.regular, path: "shared-link"), contents: [5])   // does not write through
            }
            _ = try unpack(upper, into: s.root)
            #expect(try K.readFile(s.root + "/keep/old") == [1])
            #expect(K.lstatOf(s.root + "/keep")?.st_mode == 0o040700)
            #expect(K.lstatOf(s.root + "/was-file")?.st_mode == 0o040755)
            #expect(try K.readFile(s.root + "/was-dir") == [2])
            #expect(K.lstatOf(s.root + "/was-link")?.st_mode == 0o100644)
            #expect(try K.readFile(s.root + "/was-link") == [3])
            #expect(K.lstatOf(s.root + "/was-dirlink")?.st_mode == 0o040755)
            #expect(try K.readFile(s.root + "/was-dirlink/new") == [4])
            #expect(try K.readFile(s.root + "/shared") == [9])
            #expect(try K.readFile(s.root + "/shared-link") == [5])
        }
    }

    // MARK: whiteouts

    @Test(.enabled(if: K.isRoot, "overlay whiteouts are 0/0 devices and trusted.* xattrs")) func overlayWhiteouts() throws {
        try UnpackScratch.with { s in
            let layer = try K.tar { w in
                try w.append(TarEntry(.regular, path: ".wh.gone"))
                try w.append(TarEntry(.directory, path: "d"))
                try w.append(TarEntry(.regular, path: "d/.wh..wh..opq"))
                try w.append(TarEntry(.regular, path: "d/new"), contents: [1])
                try w.append(TarEntry(.regular, path: "sub/dir/.wh.x"))  // parents made as needed
                try w.append(TarEntry(.regular, path: ".wh..wh..opq"))   // the root itself may be opaque
                try w.append(TarEntry(.regular, path: "same"), contents: [7])
                try w.append(TarEntry(.regular, path: ".wh.same"))       // hides lower layers only
            }
            _ = try unpack(layer, into: s.root, mode: .overlay)
            let gone = try #require(K.lstatOf(s.root + "/gone"))
            #expect(gone.st_mode & 0o170000 == 0o020000 && gone.st_rdev == 0)
            #expect(K.lstatOf(s.root + "/.wh.gone") == nil)
            #expect(try K.xattr(s.root + "/d", "trusted.overlay.opaque") == Array("y".utf8))
            #expect(try K.xattr(s.root, "trusted.overlay.opaque") == Array("y".utf8))
            #expect(K.lstatOf(s.root + "/d/.wh..wh..opq") == nil)
            #expect(try K.readFile(s.root + "/d/new") == [1])
            #expect(K.lstatOf(s.root + "/sub/dir/x")?.st_rdev == 0)
            #expect(try K.readFile(s.root + "/same") == [7])
        }
    }

    @Test func applyWhiteoutsAndOpaqueDirectories() throws {
        try UnpackScratch.with { s in
            let lower = try K.tar { w in
                for d in ["a", "b", "c", "bin", "bin/tools", "o1", "o1/b", "o1/b/c", "o2", "o2/b", "o2/b/c"] {
                    try w.append(TarEntry(.directory, path: d))
                }
                for f in ["file1", "a/file2", "a/keep", "b/x", "c/file3", "bin/my-app-binary", "bin/tools/tool-one",
                          "o1/b/c/bar", "o2/b/c/bar", "o2/other"] {
                    try w.append(TarEntry(.regular, path: f), contents: [1])
                }
            }
            _ = try unpack(lower, into: s.root)
            let upper = try K.tar { w in
                try w.append(TarEntry(.regular, path: ".wh.file1"))
                try w.append(TarEntry(.regular, path: "a/.wh.file2"))
                try w.append(TarEntry(.regular, path: ".wh.b"))
                try w.append(TarEntry(.regular, path: "file4"), contents: [4])
                try w.append(TarEntry(.regular, path: "bin/before"), contents: [5])  // this layer's: stays
                try w.append(TarEntry(.regular, path: "bin/.wh..wh..opq"))
                try w.append(TarEntry(.regular, path: "bin/after"), contents: [6])
                // the spec's example, with the opaque marker first and last
                try w.append(TarEntry(.directory, path: "o1"))
                try w.append(TarEntry(.regular, path: "o1/.wh..wh..opq"))
                try w.append(TarEntry(.directory, path: "o1/b"))
                try w.append(TarEntry(.directory, path: "o1/b/c"))
                try w.append(TarEntry(.regular, path: "o1/b/c/foo"), contents: [7])
                try w.append(TarEntry(.directory, path: "o2"))
                try w.append(TarEntry(.directory, path: "o2/b"))
                try w.append(TarEntry(.directory, path: "o2/b/c"))
                try w.append(TarEntry(.regular, path: "o2/b/c/foo"), contents: [8])
                try w.append(TarEntry(.regular, path: "o2/.wh..wh..opq"))
                try w.append(TarEntry(.regular, path: "new"), contents: [9])
                try w.append(TarEntry(.regular, path: ".wh.new"))        // same layer: not removed
                try w.append(TarEntry(.regular, path: "nothere/.wh.x"))  // nothing to remove: nothing made
            }
            _ = try unpack(upper, into: s.root)
            let listing = try FileManager.default.subpathsOfDirectory(atPath: s.root).sorted()
            #expect(listing == ["a", "a/keep", "bin", "bin/after", "bin/before", "c", "c/file3", "file4", "new",
                                "o1", "o1/b", "o1/b/c", "o1/b/c/foo", "o2", "o2/b", "o2/b/c", "o2/b/c/foo"])
        }
    }

    @Test func whiteoutWithoutANameIsRejected() throws {
        try UnpackScratch.with { s in
            for name in [".wh.", "d/.wh..", "d/.wh..."] {
                let layer = try K.tar { w in try w.append(TarEntry(.regular, path: name)) }
                let e = #expect(throws: ImagesError.self) { try unpack(layer, into: s.root) }
                #expect(e?.code == .invalidContent, "\(name)")
            }
        }
    }

    // MARK: hostile layers

    @Test func dotDotThatClimbsOutIsRejected() throws {
        try UnpackScratch.with { s in
            for name in ["../sentinel/secret", "a/../../sentinel/secret", "./../x", "a/b/../../../x"] {
                let layer = try K.tar { w in try w.append(TarEntry(.regular, path: name), contents: Array("pwned".utf8)) }
                let e = #expect(throws: ImagesError.self) { try unpack(layer, into: s.root) }
                #expect(e?.code == .invalidContent && e?.message.contains(name) == true, "\(e?.message ?? "")")
            }
            // a hard link target that climbs out
            let link = try K.tar { w in try w.append(TarEntry(.hardlink, path: "h", linkTarget: "../sentinel/secret")) }
            let e = #expect(throws: ImagesError.self) { try unpack(link, into: s.root) }
            #expect(e?.code == .invalidContent)
            // ".." that stays inside is only a path
            let inside = try K.tar { w in try w.append(TarEntry(.regular, path: "a/b/../c"), contents: [1]) }
            _ = try unpack(inside, into: s.root)
            #expect(try K.readFile(s.root + "/a/c") == [1])
            #expect(s.openFDsInside().isEmpty)
        }
    }

    @Test func absolutePathsAreInsideTheRoot() throws {
        try UnpackScratch.with { s in
            let layer = try K.tar { w in
                try w.append(TarEntry(.regular, path: s.sentinel + "/secret"), contents: Array("pwned".utf8))
                try w.append(TarEntry(.regular, path: "//etc///x"), contents: [1])
            }
            _ = try unpack(layer, into: s.root)
            #expect(try K.readFile(s.root + s.sentinel + "/secret") == Array("pwned".utf8))
            #expect(try K.readFile(s.root + "/etc/x") == [1])
        }
    }

    @Test func symlinkThenWriteThroughItStaysInside() throws {
        try UnpackScratch.with { s in
            // evil -> / : "evil/<sentinel>/secret" is <root>/<sentinel>/secret
            let viaRoot = try K.tar { w in
                try w.append(TarEntry(.symlink, path: "evil", linkTarget: "/"))
                try w.append(TarEntry(.regular, path: "evil" + s.sentinel + "/secret"), contents: Array("pwned".utf8))
                try w.append(TarEntry(.symlink, path: "up", linkTarget: "../../../../.."))
                try w.append(TarEntry(.regular, path: "up/pwned-up"), contents: [1])
                try w.append(TarEntry(.symlink, path: "abs", linkTarget: s.dir))
                try w.append(TarEntry(.directory, path: "real" + s.dir))
                try w.append(TarEntry(.symlink, path: "abs2", linkTarget: "/real" + s.dir))
                try w.append(TarEntry(.regular, path: "abs2/pwned-abs"), contents: [2])
            }
            _ = try unpack(viaRoot, into: s.root)
            #expect(try K.readFile(s.root + s.sentinel + "/secret") == Array("pwned".utf8))
            #expect(try K.readFile(s.root + "/pwned-up") == [1])
            #expect(try K.readFile(s.root + "/real" + s.dir + "/pwned-abs") == [2])
            // evil2 -> <sentinel dir> (absent inside the root): refused, not followed to the host
            let dangling = try K.tar { w in
                try w.append(TarEntry(.symlink, path: "evil2", linkTarget: s.sentinel))
                try w.append(TarEntry(.regular, path: "evil2/secret"), contents: Array("pwned".utf8))
            }
            let fresh = s.root + "/fresh"  // a root without <sentinel> inside (the layer above made one in s.root)
            try FileManager.default.createDirectory(atPath: fresh, withIntermediateDirectories: false)
            let e = #expect(throws: ImagesError.self) { try unpack(dangling, into: fresh) }
            #expect(e?.code == .invalidContent)
            // a symlink entry itself may point anywhere: it is only a name
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: fresh + "/evil2") == s.sentinel)
            #expect(s.openFDsInside().isEmpty)
        }
    }

    @Test func hardlinksOutsideTheRootAreRejected() throws {
        try UnpackScratch.with { s in
            let cases: [[TarEntry]] = [
                [TarEntry(.hardlink, path: "h1", linkTarget: s.sentinel + "/secret")],  // absolute: inside, absent
                [TarEntry(.symlink, path: "evil", linkTarget: s.sentinel),
                 TarEntry(.hardlink, path: "h2", linkTarget: "evil/secret")],           // through a symlink out
                [TarEntry(.symlink, path: "evil3", linkTarget: "../sentinel"),
                 TarEntry(.hardlink, path: "h3", linkTarget: "evil3/secret")],
            ]
            for entries in cases {
                let layer = try K.tar { w in for e in entries { try w.append(e) } }
                let e = #expect(throws: ImagesError.self) { try unpack(layer, into: s.root) }
                #expect(e?.code == .invalidContent, "\(e?.message ?? "")")
            }
            // a hard link to a symlink that points out links the symlink, not its target
            let toLink = try K.tar { w in
                try w.append(TarEntry(.symlink, path: "out", linkTarget: s.sentinel + "/secret"))
                try w.append(TarEntry(.hardlink, path: "out-hard", linkTarget: "out"))
            }
            _ = try unpack(toLink, into: s.root)
            #expect((K.lstatOf(s.root + "/out-hard")?.st_mode ?? 0) & 0o170000 == 0o120000)
        }
    }

    @Test func fileOverASymlinkReplacesTheSymlink() throws {
        try UnpackScratch.with { s in
            let layer = try K.tar { w in
                try w.append(TarEntry(.symlink, path: "secret", linkTarget: s.sentinel + "/secret"))
                try w.append(TarEntry(.regular, path: "secret", mode: 0o600), contents: Array("pwned".utf8))
                try w.append(TarEntry(.symlink, path: "rel", linkTarget: "../sentinel/secret"))
                try w.append(TarEntry(.regular, path: "rel"), contents: Array("pwned".utf8))
                try w.append(TarEntry(.symlink, path: "dirlink", linkTarget: s.sentinel))
                try w.append(TarEntry(.directory, path: "dirlink"))
                try w.append(TarEntry(.regular, path: "dirlink/secret"), contents: Array("pwned".utf8))
            }
            _ = try unpack(layer, into: s.root)
            #expect(K.lstatOf(s.root + "/secret")?.st_mode == 0o100600)
            #expect(K.lstatOf(s.root + "/rel")?.st_mode == 0o100644)
            #expect(K.lstatOf(s.root + "/dirlink")?.st_mode == 0o040755)
            #expect(try K.readFile(s.root + "/dirlink/secret") == Array("pwned".utf8))
        }
    }

    @Test func decompressionBombStopsAtTheLimit() throws {
        try UnpackScratch.with { s in
            let tarBytes = try K.tar { w in
                try w.append(TarEntry(.regular, path: "zeros"), contents: Array(repeating: 0, count: 32 << 20))
            }
            let gz = try compress(tarBytes, .gzip)
            #expect(gz.count < 100_000)
            let limits = UnpackLimits.forCompressedSize(Int64(gz.count), ratio: 10, minimum: 1 << 20)
            #expect(limits.maxUncompressedBytes == 1 << 20)
            let e = #expect(throws: ImagesError.self) { try unpack(gz, into: s.root, compression: .gzip, limits: limits) }
            #expect(e?.code == .invalidContent && e?.message.contains("decompression bomb") == true)
            let written = K.lstatOf(s.root + "/zeros")?.st_size ?? 0
            #expect(written <= 1 << 20)
            #expect(s.openFDsInside().isEmpty)
        }
    }

    @Test func diffIDMismatchNamesBothDigests() throws {
        try UnpackScratch.with { s in
            let layer = try K.tar { w in try w.append(TarEntry(.regular, path: "f"), contents: [1]) }
            let wrong = StreamHasher.digest(Array("something else".utf8))
            let e = #expect(throws: ImagesError.self) { try unpack(layer, into: s.root, expected: wrong) }
            #expect(e?.code == .invalidContent)
            #expect(e?.message.contains(wrong.description) == true)
            #expect(e?.message.contains(StreamHasher.digest(layer).description) == true)
            let ok = try unpack(layer, into: s.dir + "/root", expected: StreamHasher.digest(layer))
            #expect(ok.diffID == StreamHasher.digest(layer))
        }
    }

    @Test(arguments: [LayerCompression.none, .gzip, .zstd])
    func truncatedLayersAreErrors(_ compression: LayerCompression) throws {
        try UnpackScratch.with { s in
            let tarBytes = try K.tar { w in
                try w.append(TarEntry(.regular, path: "a"), contents: (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
                try w.append(TarEntry(.regular, path: "b"), contents: [1])
            }
            let full = try compress(tarBytes, compression)
            // (for a plain tar, the last cut is inside the padding of "b", before the end blocks)
            for cut in [full.count / 3, full.count / 2, full.count - (compression == .none ? 1024 + 30 : 30)] {
                let e = #expect(throws: ImagesError.self) {
                    try unpack(Array(full[..<cut]), into: s.root, compression: compression)
                }
                #expect(e?.code == .invalidContent, "\(compression) cut at \(cut): \(e?.message ?? "")")
                if compression == .none { #expect(e?.message.contains("truncated") == true) }
            }
            #expect(s.openFDsInside().isEmpty)
            // a plain tar that ends on a block boundary without its end blocks is accepted
            if compression == .none {
                let noEnd = Array(tarBytes[..<(tarBytes.count - 1024)])
                _ = try unpack(noEnd, into: s.root)
                #expect(try K.readFile(s.root + "/b") == [1])
            }
        }
    }

    @Test func badChecksumAndUnsupportedTypes() throws {
        try UnpackScratch.with { s in
            var bad = try K.tar { w in try w.append(TarEntry(.regular, path: "f"), contents: [1]) }
            bad[10] ^= 0x40
            let e1 = #expect(throws: ImagesError.self) { try unpack(bad, into: s.root) }
            #expect(e1?.code == .invalidContent && e1?.message.contains("checksum") == true)
            let sparse = try K.tar { w in try w.append(TarEntry(.other(UInt8(ascii: "S")), path: "sp")) }
            let e2 = #expect(throws: ImagesError.self) { try unpack(sparse, into: s.root) }
            #expect(e2?.code == .unsupported)
            let odd = try K.tar { w in try w.append(TarEntry(.other(UInt8(ascii: "Z")), path: "z")) }
            let e3 = #expect(throws: ImagesError.self) { try unpack(odd, into: s.root) }
            #expect(e3?.code == .unsupported && e3?.message.contains("'Z'") == true)
            #expect(try FileManager.default.contentsOfDirectory(atPath: s.root).isEmpty)
        }
    }

    @Test func aFailedUnpackerRefusesMoreInput() throws {
        try UnpackScratch.with { s in
            let layer = try K.tar { w in try w.append(TarEntry(.regular, path: "../x"), contents: [1]) }
            let u = try LayerUnpacker(rootPath: s.root, compression: .none, mode: .apply)
            #expect(throws: ImagesError.self) { try layer.withUnsafeBytes { try u.feed($0) } }
            #expect(throws: ImagesError.self) { try u.finish() }
            #expect(s.openFDsInside().isEmpty)
        }
    }

    @Test func unpackFromAFileAndFromARootFD() throws {
        try UnpackScratch.with { s in
            let tarBytes = try K.tar { w in try w.append(TarEntry(.regular, path: "f"), contents: [1, 2]) }
            let gz = try compress(tarBytes, .gzip)
            try K.writeFile(s.dir + "/layer", gz)
            let r = try LayerUnpacker.unpack(layerAt: s.dir + "/layer", into: s.root, compression: .gzip, mode: .overlay,
                                             expectedDiffID: StreamHasher.digest(tarBytes))
            #expect(r.size == Int64(tarBytes.count) && r.warnings.isEmpty)
            #expect(try K.readFile(s.root + "/f") == [1, 2])
            try FileManager.default.removeItem(atPath: s.dir + "/layer")
            let fd = open(s.root, O_RDONLY | O_DIRECTORY)
            #expect(fd >= 0)
            defer { close(fd) }
            let u = try LayerUnpacker(rootFD: fd, compression: .none, mode: .apply)
            let more = try K.tar { w in try w.append(TarEntry(.regular, path: "g"), contents: [3]) }
            try more.withUnsafeBytes { try u.feed($0) }
            _ = try u.finish()
            #expect(try K.readFile(s.root + "/g") == [3])
            #expect(fcntl(fd, F_GETFD) >= 0)  // the caller's fd stays open
        }
    }

    // MARK: the writer thread

    @Test func pipelinedAndSerialUnpackAgree() throws {
        try UnpackScratch.with { s in
            let tarBytes = try K.tar { w in
                for i in 0..<300 {
                    try w.append(TarEntry(.regular, path: "d\(i % 7)/f\(i)", mode: 0o640, uid: Int64(i), gid: 3,
                                          modificationTime: TarTime(seconds: Int64(1_000_000 + i))),
                                 contents: (0..<(i * 997 % 50_000)).map { UInt8(truncatingIfNeeded: $0 &+ i) })
                }
                try w.append(TarEntry(.regular, path: "big"), contents: Array(repeating: 5, count: 5 << 20))
            }
            let gz = try compress(tarBytes, .gzip)
            var trees: [[String]] = []
            for pipelined in [true, false] {
                let root = s.root + (pipelined ? "/p" : "/s")
                try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
                let u = try LayerUnpacker(rootPath: root, compression: .gzip, mode: .apply,
                                          options: UnpackOptions(pipelined: pipelined))
                try gz.withUnsafeBytes { raw in
                    var i = 0
                    while i < raw.count {
                        let n = min(10_000, raw.count - i)
                        try u.feed(UnsafeRawBufferPointer(rebasing: raw[i..<(i + n)]))
                        i += n
                    }
                }
                let (d, size) = try u.finish()
                #expect(d == StreamHasher.digest(tarBytes) && size == Int64(tarBytes.count))
                trees.append(try snapshot(root))
            }
            // the d* directories have no entries of their own: their mtimes are when they were made
            let stripped = trees.map { $0.map { $0.hasPrefix("d") && !$0.contains("/") ? String($0.prefix(while: { $0 != " " })) : $0 } }
            #expect(stripped[0] == stripped[1])
            #expect(trees[0].count > 300)
        }
    }

    @Test func writerThreadErrorsReachTheCaller() throws {
        try UnpackScratch.with { s in
            let tarBytes = try K.tar { w in
                try w.append(TarEntry(.regular, path: "ok"), contents: Array(repeating: 1, count: 3 << 20))
                try w.append(TarEntry(.regular, path: "../escape"), contents: [1])
                try w.append(TarEntry(.regular, path: "after"), contents: Array(repeating: 2, count: 3 << 20))
            }
            let gz = try compress(tarBytes, .gzip)
            let e = #expect(throws: ImagesError.self) { try unpack(gz, into: s.root, compression: .gzip, chunk: 4096) }
            #expect(e?.code == .invalidContent && e?.message.contains("../escape") == true)
            #expect(K.lstatOf(s.root + "/after") == nil)
            #expect(s.openFDsInside().isEmpty)
        }
    }

    @Test func anAbandonedUnpackerStopsItsThreadAndClosesItsFDs() throws {
        try UnpackScratch.with { s in
            let tarBytes = try K.tar { w in
                for i in 0..<50 { try w.append(TarEntry(.regular, path: "f\(i)"), contents: Array(repeating: 1, count: 200_000)) }
            }
            let gz = try compress(tarBytes, .gzip)
            // cancel(): thread joined and fds closed when it returns.
            let u = try LayerUnpacker(rootPath: s.root, compression: .gzip, mode: .apply)
            try gz.withUnsafeBytes { try u.feed(UnsafeRawBufferPointer(rebasing: $0[0..<($0.count / 2)])) }
            u.cancel()
            #expect(s.openFDsInside().isEmpty)
            #expect(throws: ImagesError.self) { try u.finish() }
            // Dropped without cancel: deinit does it, possibly a moment later on the writer thread (when that
            // thread held the last reference), but it does it.
            do {
                let v = try LayerUnpacker(rootPath: s.root, compression: .gzip, mode: .apply)
                try gz.withUnsafeBytes { try v.feed(UnsafeRawBufferPointer(rebasing: $0[0..<($0.count / 2)])) }
            }
            var left = s.openFDsInside()
            for _ in 0..<200 where !left.isEmpty {
                usleep(10_000)
                left = s.openFDsInside()
            }
            #expect(left.isEmpty)
        }
    }
}
