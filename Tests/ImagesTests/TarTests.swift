// TarReader and TarWriter: round trips through every chunking, against archives made by GNU tar and by
// python's tarfile (ustar, pax with global headers and xattrs, GNU long names and base-256 numbers, v7),
// and the edges of a stream: missing end blocks, truncation, bad checksums, unsupported types.
import Foundation
import Testing
@testable import Images
import OCI

/// Helpers shared by the tar and unpack tests (named so as not to clash with other suites of the target).
enum TarTestKit {
    /// A fresh /tmp/berth-images-test-* directory, removed afterwards whatever happens.
    static func withScratch<T>(_ body: (String) throws -> T) throws -> T {
        var template = Array("/tmp/berth-images-test-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { p -> String? in
            guard let r = mkdtemp(p.baseAddress!) else { return nil }
            return String(cString: r)
        }
        guard let dir else { throw ImagesError(.system, "mkdtemp failed") }
        defer { removeTree(dir) }
        return try body(dir)
    }

    static func removeTree(_ path: String) {
        // chattr-free trees only: rm -rf copes with modes a layer may set (0o000 dirs)
        _ = try? run(["/bin/rm", "-rf", "--one-file-system", path])
    }

    @discardableResult
    static func run(_ args: [String], cwd: String? = nil, stdin: [UInt8]? = nil) throws -> (status: Int32, out: [UInt8]) {
        let p = Foundation.Process()
        p.executableURL = URL(fileURLWithPath: args[0].hasPrefix("/") ? args[0] : "/usr/bin/env")
        p.arguments = args[0].hasPrefix("/") ? Array(args.dropFirst()) : args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        // stdin from a file and stdout into a file: no pipe can fill up while the other side waits
        let tmp = "/tmp/berth-images-test-io-\(getpid())-\(UInt64.random(in: 0 ... .max))"
        defer { unlink(tmp + ".in"); unlink(tmp + ".out") }
        if let stdin {
            try Data(stdin).write(to: URL(fileURLWithPath: tmp + ".in"))
            p.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: tmp + ".in"))
        } else {
            p.standardInput = FileHandle.nullDevice
        }
        guard FileManager.default.createFile(atPath: tmp + ".out", contents: nil) else {
            throw ImagesError(.system, "create \(tmp).out")
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp + ".out"))
        p.standardOutput = out
        p.standardError = FileHandle.standardError
        try p.run()
        p.waitUntilExit()
        try out.close()
        return (p.terminationStatus, Array(try Data(contentsOf: URL(fileURLWithPath: tmp + ".out"))))
    }

    static func sh(_ script: String, cwd: String? = nil) throws {
        let r = try run(["/bin/sh", "-c", script], cwd: cwd)
        guard r.status == 0 else { throw ImagesError(.system, "sh -c \(script): exit \(r.status)") }
    }

    static func python(_ script: String, _ args: [String] = []) throws -> [UInt8] {
        let r = try run(["python3", "-c", script] + args)
        guard r.status == 0 else { throw ImagesError(.system, "python3 failed: exit \(r.status)") }
        return r.out
    }

    static func tar(_ build: (TarWriter) throws -> Void) throws -> [UInt8] {
        let out = ByteSink()
        let w = TarWriter { out.bytes.append(contentsOf: $0) }
        try build(w)
        try w.finish()
        return out.bytes
    }

    final class ByteSink { var bytes: [UInt8] = [] }

    static func readFile(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    struct Member: Equatable {
        var entry: TarEntry
        var data: [UInt8]
    }

    /// Reads a whole archive in chunks of `chunk` bytes.
    static func members(_ bytes: [UInt8], chunk: Int = 1 << 20, maxMetadataBytes: Int = 8 << 20) throws -> [Member] {
        let r = TarReader(maxMetadataBytes: maxMetadataBytes)
        var out: [Member] = []
        var open = false
        var ended = false
        try bytes.withUnsafeBytes { raw in
            var i = 0
            while i < raw.count {
                let n = min(chunk, raw.count - i)
                try r.feed(UnsafeRawBufferPointer(rebasing: raw[i..<(i + n)])) { ev in
                    switch ev {
                    case .entry(let e):
                        #expect(!open)
                        out.append(Member(entry: e, data: []))
                        open = true
                    case .data(let d):
                        #expect(open)
                        out[out.count - 1].data.append(contentsOf: d)
                    case .entryEnd:
                        #expect(open)
                        open = false
                    case .end:
                        ended = true
                    }
                }
                i += n
            }
        }
        try r.finish()
        #expect(!open)
        _ = ended
        return out
    }

    static func lstatOf(_ path: String) -> stat? {
        var st = stat()
        return lstat(path, &st) == 0 ? st : nil
    }

    /// An xattr of a path (not following a symlink), through python (the test target has no xattr calls).
    static func xattr(_ path: String, _ name: String) throws -> [UInt8]? {
        let out = try python("""
            import os, sys
            try:
                sys.stdout.write(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).hex())
            except OSError:
                sys.stdout.write("-")
            """, [path, name])
        let hex = String(decoding: out, as: UTF8.self)
        if hex == "-" { return nil }
        var bytes: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() { bytes.append(UInt8(String([a, b]), radix: 16)!) }
        return bytes
    }

    static var isRoot: Bool { geteuid() == 0 }
}

private typealias K = TarTestKit

@Suite struct TarTests {
    /// Every kind and every extension the writer has, read back at every chunking.
    static func sampleArchive() throws -> [UInt8] {
        try K.tar { w in
            try w.append(TarEntry(.directory, path: "dir", mode: 0o755, uid: 1, gid: 2,
                                  modificationTime: TarTime(seconds: 1_600_000_000)))
            try w.append(TarEntry(.regular, path: "dir/file", mode: 0o4755, uid: 1000, gid: 1000,
                                  modificationTime: TarTime(seconds: 1_700_000_000, nanoseconds: 123_456_789)),
                         contents: Array("hello\n".utf8))
            let long = String(repeating: "d", count: 90) + "/" + String(repeating: "e", count: 90) + "/"
                + String(repeating: "f", count: 150)
            try w.append(TarEntry(.regular, path: long), contents: Array(repeating: 7, count: 1000))
            // fits ustar's prefix/name split (no pax)
            let split = String(repeating: "p", count: 120) + "/" + String(repeating: "n", count: 90)
            try w.append(TarEntry(.regular, path: split), contents: [1, 2, 3])
            try w.append(TarEntry(.symlink, path: "link", linkTarget: String(repeating: "t/", count: 80) + "end"))
            try w.append(TarEntry(.hardlink, path: "hard", linkTarget: "dir/file"))
            try w.append(TarEntry(.fifo, path: "fifo", mode: 0o600))
            try w.append(TarEntry(.characterDevice, path: "null", mode: 0o666, deviceMajor: 1, deviceMinor: 3))
            try w.append(TarEntry(.blockDevice, path: "big", deviceMajor: 259, deviceMinor: 3_000_000))
            try w.append(TarEntry(.regular, path: "ünïcødé", uid: 3_000_000, gid: -0 + 4_000_000,
                                  userName: String(repeating: "u", count: 40), groupName: "g",
                                  modificationTime: TarTime(seconds: -1, nanoseconds: 500_000_000),
                                  xattrs: ["user.a": Array("1".utf8), "security.capability": [1, 0, 0, 2, 0, 32, 0, 0],
                                           "user.empty": []]),
                         contents: Array(repeating: 0xab, count: 512))
            try w.append(TarEntry(.regular, path: "empty"))
        }
    }

    @Test func writerOutputReadsBackAtEveryChunking() throws {
        let bytes = try Self.sampleArchive()
        #expect(bytes.count % 512 == 0)
        let whole = try K.members(bytes)
        #expect(whole.count == 11)
        for chunk in [1, 3, 100, 511, 512, 513, 4096, 65536] {
            #expect(try K.members(bytes, chunk: chunk) == whole, "chunk \(chunk)")
        }
        let byPath = Dictionary(whole.map { ($0.entry.path, $0) }, uniquingKeysWith: { a, _ in a })
        let f = try #require(byPath["dir/file"])
        #expect(f.entry.kind == .regular && f.data == Array("hello\n".utf8))
        #expect(f.entry.mode == 0o4755 && f.entry.uid == 1000 && f.entry.gid == 1000)
        #expect(f.entry.modificationTime == TarTime(seconds: 1_700_000_000, nanoseconds: 123_456_789))
        #expect(byPath["dir/"]?.entry.kind == .directory)
        let long = String(repeating: "d", count: 90) + "/" + String(repeating: "e", count: 90) + "/"
            + String(repeating: "f", count: 150)
        #expect(byPath[long]?.data == Array(repeating: 7, count: 1000))
        let split = String(repeating: "p", count: 120) + "/" + String(repeating: "n", count: 90)
        #expect(byPath[split]?.data == [1, 2, 3])
        #expect(byPath["link"]?.entry.linkPath == String(repeating: "t/", count: 80) + "end")
        #expect(byPath["hard"]?.entry.kind == .hardlink && byPath["hard"]?.entry.linkPath == "dir/file")
        #expect(byPath["fifo"]?.entry.kind == .fifo)
        #expect(byPath["null"]?.entry.kind == .characterDevice && byPath["null"]?.entry.deviceMinor == 3)
        #expect(byPath["big"]?.entry.deviceMinor == 3_000_000 && byPath["big"]?.entry.deviceMajor == 259)
        let u = try #require(byPath["ünïcødé"])
        #expect(u.entry.uid == 3_000_000 && u.entry.gid == 4_000_000)
        #expect(u.entry.userName == String(repeating: "u", count: 40))
        #expect(u.entry.modificationTime == TarTime(seconds: -1, nanoseconds: 500_000_000))
        #expect(u.entry.xattrs == ["user.a": Array("1".utf8), "security.capability": [1, 0, 0, 2, 0, 32, 0, 0], "user.empty": []])
        #expect(byPath["empty"]?.entry.size == 0)
    }

    @Test func writerIsDeterministic() throws {
        #expect(try Self.sampleArchive() == Self.sampleArchive())
    }

    @Test func gnuTarReadsTheWriterOutput() throws {
        try K.withScratch { dir in
            try K.writeFile(dir + "/a.tar", try Self.sampleArchive())
            let listed = try K.run(["tar", "-tf", dir + "/a.tar"])
            #expect(listed.status == 0)
            let names = String(decoding: listed.out, as: UTF8.self).split(separator: "\n").map(String.init)
            let ours = try K.members(try Self.sampleArchive()).map(\.entry.path)
            #expect(names == ours)
            // and extracts the pax long name with its contents
            try FileManager.default.createDirectory(atPath: dir + "/x", withIntermediateDirectories: true)
            try K.sh("tar --no-same-owner -xf ../a.tar --exclude=null --exclude=big", cwd: dir + "/x")
            let long = String(repeating: "d", count: 90) + "/" + String(repeating: "e", count: 90) + "/"
                + String(repeating: "f", count: 150)
            #expect(try K.readFile(dir + "/x/" + long) == Array(repeating: 7, count: 1000))
        }
    }

    /// Archives of a real tree made by GNU tar in each format list the same names and sizes for us.
    @Test(arguments: ["pax", "gnu", "ustar", "v7", "oldgnu"])
    func readsGNUTarFormats(_ format: String) throws {
        try K.withScratch { dir in
            let deep = format == "ustar" || format == "v7" ? "short/n" : String(repeating: "x", count: 120) + "/"
                + String(repeating: "y", count: 130)
            try K.sh("""
                mkdir -p src/\(deep) src/d && cd src && printf abc > f && head -c 100000 /dev/urandom > \(deep)/file && \
                ln -s f sym && ln f hard && \(format == "v7" ? "true" : "mkfifo fifo") && chmod 4755 f && touch -d @1234567890 f
                """, cwd: dir)
            try K.sh("tar --format=\(format) -cf ../t.tar --sort=name .", cwd: dir + "/src")
            let listed = try K.run(["tar", "-tvf", dir + "/t.tar", "--numeric-owner", "--full-time"])
            #expect(listed.status == 0)
            let expected = String(decoding: try K.run(["tar", "-tf", dir + "/t.tar"]).out, as: UTF8.self)
                .split(separator: "\n").map(String.init)
            let ms = try K.members(try K.readFile(dir + "/t.tar"), chunk: 1000)
            #expect(ms.map(\.entry.path) == expected)
            let byPath = Dictionary(ms.map { ($0.entry.path, $0) }, uniquingKeysWith: { a, _ in a })
            #expect(byPath["./f"]?.data == Array("abc".utf8))
            #expect(byPath["./f"]?.entry.mode == 0o4755)
            #expect(byPath["./f"]?.entry.modificationTime.seconds == 1_234_567_890)
            #expect(byPath["./sym"]?.entry.kind == .symlink && byPath["./sym"]?.entry.linkPath == "f")
            #expect(byPath["./hard"]?.entry.kind == .hardlink || byPath["./f"]?.entry.kind == .hardlink)
            if format != "v7" { #expect(byPath["./fifo"]?.entry.kind == .fifo) }
            #expect(byPath["./d/"]?.entry.kind == .directory)
            #expect(byPath["./\(deep)/file"]?.data.count == 100000)
        }
    }

    @Test func readsPythonPaxGlobalHeadersAndXattrs() throws {
        let bytes = try K.python("""
            import tarfile, io, sys, base64
            buf = io.BytesIO()
            t = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"uname": "globaluser", "comment": "x"})
            def add(name, data=b"", **pax):
                ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 1700000000; ti.pax_headers = pax
                t.addfile(ti, io.BytesIO(data))
            add("plain", b"p")
            add("x" * 300, b"long")
            add("caps", b"c", **{"SCHILY.xattr.security.capability": "\\x01\\x00\\x00\\x02", "SCHILY.xattr.user.k": "v",
                                 "mtime": "1700000000.25", "uname": "local"})
            add("lib", b"l", **{"LIBARCHIVE.xattr.user.b%3Dc": base64.b64encode(b"\\x00\\xffbin").decode()})
            add("big", b"b", **{"uid": "5000000000", "gid": "6"})
            t.close()
            sys.stdout.buffer.write(buf.getvalue())
            """)
        let ms = try K.members(bytes, chunk: 777)
        let byPath = Dictionary(ms.map { ($0.entry.path, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byPath["plain"]?.entry.userName == "globaluser")
        #expect(byPath[String(repeating: "x", count: 300)]?.data == Array("long".utf8))
        let caps = try #require(byPath["caps"])
        #expect(caps.entry.userName == "local")
        #expect(caps.entry.modificationTime == TarTime(seconds: 1_700_000_000, nanoseconds: 250_000_000))
        // python encodes the str value as UTF-8
        #expect(caps.entry.xattrs["security.capability"] == [1, 0, 0, 2])
        #expect(caps.entry.xattrs["user.k"] == Array("v".utf8))
        #expect(byPath["lib"]?.entry.xattrs["user.b=c"] == [0, 0xff] + Array("bin".utf8))
        #expect(byPath["big"]?.entry.uid == 5_000_000_000 && byPath["big"]?.entry.gid == 6)
    }

    @Test func readsPythonGNULongNamesAndBase256() throws {
        let bytes = try K.python("""
            import tarfile, io, sys
            buf = io.BytesIO()
            t = tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT)
            ti = tarfile.TarInfo("n" * 200); ti.size = 3; ti.uid = 1 << 40; ti.gid = 9; ti.mtime = 1 << 36
            t.addfile(ti, io.BytesIO(b"abc"))
            li = tarfile.TarInfo("l"); li.type = tarfile.SYMTYPE; li.linkname = "t" * 300
            t.addfile(li)
            t.close()
            sys.stdout.buffer.write(buf.getvalue())
            """)
        let ms = try K.members(bytes, chunk: 100)
        #expect(ms.count == 2)
        #expect(ms[0].entry.path == String(repeating: "n", count: 200))
        #expect(ms[0].entry.uid == 1 << 40 && ms[0].entry.gid == 9)
        #expect(ms[0].entry.modificationTime.seconds == 1 << 36)
        #expect(ms[0].data == Array("abc".utf8))
        #expect(ms[1].entry.kind == .symlink && ms[1].entry.linkPath == String(repeating: "t", count: 300))
    }

    @Test func v7DirectoryWithTrailingSlash() throws {
        var bytes = try K.tar { w in try w.append(TarEntry(.regular, path: "olddir/")) }
        // make it a v7 header: type '\0', no magic, recomputed checksum
        bytes[156] = 0
        for i in 257..<265 { bytes[i] = 0 }
        K.fixChecksum(&bytes, at: 0)
        let ms = try K.members(bytes)
        #expect(ms.count == 1 && ms[0].entry.kind == .directory && ms[0].entry.path == "olddir/")
    }

    @Test func endOfArchiveLeniency() throws {
        let full = try K.tar { w in try w.append(TarEntry(.regular, path: "a"), contents: Array(repeating: 1, count: 700)) }
        // header + 2 data blocks + 2 end blocks
        #expect(full.count == 512 * 5)
        let noEnd = Array(full[..<(512 * 3)])
        #expect(try K.members(noEnd).count == 1)               // no end blocks at all: accepted (GNU tar does)
        #expect(try K.members(Array(full[..<(512 * 4)])).count == 1)  // one end block
        #expect(try K.members(full + Array(repeating: 0x55, count: 3000)).count == 1)  // after the end: ignored
        #expect(try K.members([]).isEmpty)
        // a zero block and then more entries: refused (different tools would see different files)
        let hidden = Array(full[..<(512 * 4)]) + full
        #expect(throws: ImagesError.self) { try K.members(hidden) }
    }

    @Test func truncatedStreamsAreErrors() throws {
        let full = try K.tar { w in try w.append(TarEntry(.regular, path: "a"), contents: Array(repeating: 1, count: 700)) }
        for cut in [100, 512 + 100, 512 + 700, 512 + 1000] {
            let e = #expect(throws: ImagesError.self) { try K.members(Array(full[..<cut])) }
            #expect(e?.code == .invalidContent)
            #expect(e?.message.contains("truncated") == true, "\(e?.message ?? "")")
        }
        // a pax header with no entry after it
        let pax = try K.tar { w in try w.append(TarEntry(.regular, path: String(repeating: "z", count: 300))) }
        #expect(throws: ImagesError.self) { try K.members(Array(pax[..<1024])) }
    }

    @Test func badChecksumIsInvalidContent() throws {
        var bytes = try K.tar { w in try w.append(TarEntry(.regular, path: "a"), contents: [1]) }
        bytes[0] = UInt8(ascii: "b")
        let e = #expect(throws: ImagesError.self) { try K.members(bytes) }
        #expect(e?.code == .invalidContent && e?.message.contains("checksum") == true)
        // random bytes are not a tar archive
        let junk = (0..<2048).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        #expect(throws: ImagesError.self) { try K.members(junk) }
    }

    @Test func gnuSparseIsUnsupported() throws {
        let bytes = try K.tar { w in try w.append(TarEntry(.other(UInt8(ascii: "S")), path: "sparse")) }
        let e = #expect(throws: ImagesError.self) { try K.members(bytes) }
        #expect(e?.code == .unsupported && e?.message.contains("sparse") == true)
        let pax = try K.python("""
            import tarfile, io, sys
            buf = io.BytesIO(); t = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
            ti = tarfile.TarInfo("s"); ti.size = 0; ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
            t.addfile(ti); t.close(); sys.stdout.buffer.write(buf.getvalue())
            """)
        #expect(throws: ImagesError.self) { try K.members(pax) }
    }

    @Test func extendedHeadersAreBounded() throws {
        let bytes = try K.tar { w in try w.append(TarEntry(.regular, path: String(repeating: "q", count: 5000))) }
        let e = #expect(throws: ImagesError.self) { try K.members(bytes, maxMetadataBytes: 1024) }
        #expect(e?.code == .invalidContent)
    }

    @Test func writerReadsContentsFromAnFd() throws {
        try K.withScratch { dir in
            let data = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try K.writeFile(dir + "/src", data)
            let fd = open(dir + "/src", O_RDONLY)
            #expect(fd >= 0)
            defer { close(fd) }
            let bytes = try K.tar { w in
                var e = TarEntry(.regular, path: "big")
                e.size = Int64(data.count)
                try w.append(e, fd: fd)
            }
            let ms = try K.members(bytes, chunk: 65536)
            #expect(ms.count == 1 && ms[0].data == data)
            // a file shorter than the size given is an error, not a short entry
            #expect(lseek(fd, 0, SEEK_SET) == 0)
            #expect(throws: ImagesError.self) {
                _ = try K.tar { w in
                    var e = TarEntry(.regular, path: "big")
                    e.size = Int64(data.count + 1)
                    try w.append(e, fd: fd)
                }
            }
        }
    }
}

extension TarTestKit {
static func fixChecksum(_ bytes: inout [UInt8], at header: Int) {
    for i in 148..<156 { bytes[header + i] = 0x20 }
    let sum = bytes[header..<(header + 512)].reduce(0) { $0 + Int($1) }
    let s = Array(String(sum, radix: 8).utf8)
    let padded = Array(repeating: UInt8(ascii: "0"), count: 6 - s.count) + s
    for i in 0..<6 { bytes[header + 148 + i] = padded[i] }
    bytes[header + 154] = 0
    bytes[header + 155] = 0x20
}
}
