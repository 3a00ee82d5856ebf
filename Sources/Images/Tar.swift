// Tar.swift: a streaming tar reader (push-style: feed chunks of any size, get events) and a deterministic
// tar writer. The reader handles ustar, pax (`x` per entry and `g` global), GNU long names and links
// (`L`/`K`), base-256 numbers and old v7 headers; the data of an entry is handed on straight from the
// caller's buffer, never copied. The writer emits POSIX ustar, with a pax header only when a value does not
// fit (or is not ASCII), so the same input always gives the same bytes.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A tar timestamp: seconds since the epoch and the fraction pax can carry.
public struct TarTime: Sendable, Hashable, Comparable {
    public var seconds: Int64
    /// 0 ..< 1_000_000_000
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static let zero = TarTime(seconds: 0)

    public static func < (a: TarTime, b: TarTime) -> Bool {
        a.seconds != b.seconds ? a.seconds < b.seconds : a.nanoseconds < b.nanoseconds
    }
}

/// One member of a tar archive, after pax and GNU extension headers have been applied to it.
public struct TarEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// '0', '\0' and '7' (contiguous file)
        case regular
        case hardlink
        case symlink
        case characterDevice
        case blockDevice
        case directory
        case fifo
        /// A type flag berth does not unpack (reported so the caller can name it).
        case other(UInt8)
    }

    public var kind: Kind
    /// The member's name as stored (raw bytes: tar names need not be UTF-8).
    public var name: [UInt8]
    /// The target of a hard or symbolic link.
    public var linkName: [UInt8]
    /// Bytes of data that follow the header (0 for every kind but regular files).
    public var size: Int64
    /// Permission bits including setuid, setgid and sticky (0o7777).
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    public var userName: String
    public var groupName: String
    public var modificationTime: TarTime
    /// Only when a pax header gave one.
    public var accessTime: TarTime?
    public var deviceMajor: UInt32
    public var deviceMinor: UInt32
    /// Extended attributes (SCHILY.xattr.* and LIBARCHIVE.xattr.* pax records).
    public var xattrs: [String: [UInt8]]

    public var path: String { String(decoding: name, as: UTF8.self) }
    public var linkPath: String { String(decoding: linkName, as: UTF8.self) }

    /// An entry to hand to `TarWriter`. The mode defaults to 0o755 for directories and 0o644 otherwise
    /// (0o777 for symlinks); `size` is set by the writer for entries with contents.
    public init(_ kind: Kind, path: String, linkTarget: String = "", mode: UInt32? = nil, uid: Int64 = 0,
                gid: Int64 = 0, userName: String = "", groupName: String = "",
                modificationTime: TarTime = .zero, accessTime: TarTime? = nil,
                deviceMajor: UInt32 = 0, deviceMinor: UInt32 = 0, xattrs: [String: [UInt8]] = [:]) {
        self.kind = kind
        self.name = Array(path.utf8)
        self.linkName = Array(linkTarget.utf8)
        self.size = 0
        switch kind {
        case .directory: self.mode = mode ?? 0o755
        case .symlink: self.mode = mode ?? 0o777
        default: self.mode = mode ?? 0o644
        }
        self.uid = uid
        self.gid = gid
        self.userName = userName
        self.groupName = groupName
        self.modificationTime = modificationTime
        self.accessTime = accessTime
        self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor
        self.xattrs = xattrs
    }
}

/// What `TarReader.feed` reports, in order: for each member `.entry`, then its `.data` chunks (valid only
/// during the call), then `.entryEnd`; `.end` once, at the end-of-archive blocks.
public enum TarEvent {
    case entry(TarEntry)
    case data(UnsafeRawBufferPointer)
    case entryEnd
    case end
}

// MARK: - reader

/// A push-style tar reader. Bytes after the end-of-archive blocks are ignored (the caller still hashes
/// them); a stream that stops on a block boundary without end blocks is accepted, as GNU tar accepts it,
/// but one that stops inside a header, inside an entry's data or its padding is "truncated".
public final class TarReader {
    private enum State {
        /// collecting a 512-byte header (`fill` bytes of it are in `block`)
        case header
        /// the data of the current member; `emit` is false for data berth skips (volume labels, dumpdirs)
        case data(remaining: Int64, padding: Int, emit: Bool)
        /// an extension header's data (pax, GNU long name/link), collected into `meta`
        case meta(type: UInt8, remaining: Int, padding: Int)
        case padding(Int)
        /// one zero block seen: a second one (or the end of the stream) ends the archive
        case afterZero
        case ended
    }

    private var state = State.header
    private var block = [UInt8](repeating: 0, count: 512)
    private var fill = 0
    private var meta: [UInt8] = []
    private var globalPax = PaxRecords()
    private var localPax: PaxRecords?
    private var longName: [UInt8]?
    private var longLink: [UInt8]?
    private var currentName: [UInt8] = []
    private let maxMetadataBytes: Int
    /// bytes taken so far (the offset of the next byte in the archive)
    public private(set) var offset: Int64 = 0

    public var isEnded: Bool { if case .ended = state { return true } else { return false } }

    /// `maxMetadataBytes` bounds a pax header or GNU long name (they are held in memory).
    public init(maxMetadataBytes: Int = 8 << 20) {
        self.maxMetadataBytes = maxMetadataBytes
    }

    public func feed(_ bytes: UnsafeRawBufferPointer, _ handler: (TarEvent) throws -> Void) throws {
        guard let base = bytes.baseAddress else { return }
        var pos = 0
        let count = bytes.count
        while pos < count {
            switch state {
            case .ended:
                offset += Int64(count - pos)
                return
            case .header, .afterZero:
                if fill == 0 && count - pos >= 512 {
                    // the whole header is in the caller's buffer: parse it there
                    let h = UnsafeRawBufferPointer(start: base + pos, count: 512)
                    pos += 512
                    offset += 512
                    try headerBlock(h, handler)
                } else {
                    let n = min(512 - fill, count - pos)
                    block.withUnsafeMutableBytes { b in
                        (b.baseAddress! + fill).copyMemory(from: base + pos, byteCount: n)
                    }
                    fill += n
                    pos += n
                    offset += Int64(n)
                    if fill == 512 {
                        fill = 0
                        try block.withUnsafeBytes { try headerBlock($0, handler) }
                    }
                }
            case .data(let remaining, let padding, let emit):
                let n = Int(min(remaining, Int64(count - pos)))
                if emit && n > 0 { try handler(.data(UnsafeRawBufferPointer(start: base + pos, count: n))) }
                pos += n
                offset += Int64(n)
                if remaining == Int64(n) {
                    if emit { try handler(.entryEnd) }
                    state = padding > 0 ? .padding(padding) : .header
                } else {
                    state = .data(remaining: remaining - Int64(n), padding: padding, emit: emit)
                }
            case .meta(let type, let remaining, let padding):
                let n = min(remaining, count - pos)
                meta.append(contentsOf: UnsafeRawBufferPointer(start: base + pos, count: n))
                pos += n
                offset += Int64(n)
                if remaining == n {
                    state = padding > 0 ? .padding(padding) : .header
                    try metaDone(type)
                } else {
                    state = .meta(type: type, remaining: remaining - n, padding: padding)
                }
            case .padding(let remaining):
                let n = min(remaining, count - pos)
                pos += n
                offset += Int64(n)
                state = remaining == n ? .header : .padding(remaining - n)
            }
        }
    }

    /// Call at the end of the stream.
    public func finish() throws {
        switch state {
        case .ended, .afterZero:
            return
        case .header:
            if fill != 0 {
                throw ImagesError(.invalidContent, "layer is truncated: the stream ends inside a tar header")
            }
            if localPax != nil || longName != nil || longLink != nil {
                throw ImagesError(.invalidContent, "layer is truncated: the stream ends after an extended header")
            }
        case .data, .padding:
            throw ImagesError(.invalidContent,
                              "layer is truncated: the stream ends inside the data of \"\(printableTarName(currentName))\"")
        case .meta:
            throw ImagesError(.invalidContent, "layer is truncated: the stream ends inside an extended header")
        }
    }

    private func headerBlock(_ h: UnsafeRawBufferPointer, _ handler: (TarEvent) throws -> Void) throws {
        let headerOffset = offset - 512
        if isZero(h) {
            if case .afterZero = state {
                state = .ended
                try handler(.end)
            } else {
                state = .afterZero
            }
            return
        }
        if case .afterZero = state {
            throw ImagesError(.invalidContent, "tar header at offset \(headerOffset): an entry follows a lone end-of-archive block")
        }
        try verifyChecksum(h, at: headerOffset)

        let type = h[156]
        let magic = Magic(h)
        var size = try numeric(h, 124, 12, "size", headerOffset)
        guard size >= 0 else {
            throw ImagesError(.invalidContent, "tar header at offset \(headerOffset): negative size")
        }
        switch type {
        case UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
            guard size <= Int64(maxMetadataBytes) else {
                throw ImagesError(.invalidContent, "tar header at offset \(headerOffset): extended header of \(size) bytes "
                    + "is larger than the \(maxMetadataBytes)-byte limit")
            }
            meta.removeAll(keepingCapacity: true)
            let n = Int(size)
            if n == 0 {
                try metaDone(type)
            } else {
                state = .meta(type: type, remaining: n, padding: Self.padding(Int64(n)))
            }
            return
        default:
            break
        }

        // The entry itself: header fields, then global pax, GNU long name/link, local pax on top.
        var name = field(h, 0, 100)
        if magic == .posix {
            let prefix = field(h, 345, 155)
            if !prefix.isEmpty { name = prefix + [UInt8(ascii: "/")] + name }
        }
        var entry = TarEntry(.regular, path: "")
        entry.linkName = field(h, 157, 100)
        entry.mode = UInt32(truncatingIfNeeded: try numeric(h, 100, 8, "mode", headerOffset)) & 0o7777
        entry.uid = try numeric(h, 108, 8, "uid", headerOffset)
        entry.gid = try numeric(h, 116, 8, "gid", headerOffset)
        entry.modificationTime = TarTime(seconds: try numeric(h, 136, 12, "mtime", headerOffset))
        if magic != .v7 {
            entry.userName = String(decoding: field(h, 265, 32), as: UTF8.self)
            entry.groupName = String(decoding: field(h, 297, 32), as: UTF8.self)
            entry.deviceMajor = UInt32(truncatingIfNeeded: try numeric(h, 329, 8, "devmajor", headerOffset))
            entry.deviceMinor = UInt32(truncatingIfNeeded: try numeric(h, 337, 8, "devminor", headerOffset))
        }
        entry.name = name
        let local = localPax
        localPax = nil
        globalPax.apply(to: &entry, size: &size, skipping: local?.unset ?? [])
        if let longName { entry.name = longName }
        if let longLink { entry.linkName = longLink }
        longName = nil
        longLink = nil
        if let local { local.apply(to: &entry, size: &size, skipping: []) }
        currentName = entry.name
        if globalPax.sparse || (local?.sparse ?? false) {
            throw ImagesError(.unsupported, "layer entry \"\(printableTarName(entry.name))\": GNU sparse files (pax format) are not supported")
        }
        guard size >= 0 else {
            throw ImagesError(.invalidContent, "layer entry \"\(printableTarName(entry.name))\": negative size")
        }

        var emit = true
        switch type {
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
            // v7 and old tars mark directories with a trailing slash on a regular entry
            entry.kind = (type == 0 && entry.name.last == UInt8(ascii: "/")) ? .directory : .regular
        case UInt8(ascii: "1"): entry.kind = .hardlink
        case UInt8(ascii: "2"): entry.kind = .symlink
        case UInt8(ascii: "3"): entry.kind = .characterDevice
        case UInt8(ascii: "4"): entry.kind = .blockDevice
        case UInt8(ascii: "5"): entry.kind = .directory
        case UInt8(ascii: "6"): entry.kind = .fifo
        case UInt8(ascii: "D"):
            // GNU dumpdir: a directory followed by a listing of its contents, which we skip
            entry.kind = .directory
            state = .data(remaining: size, padding: Self.padding(size), emit: false)
            if size == 0 { state = .header }
            entry.size = 0
            try handler(.entry(entry))
            try handler(.entryEnd)
            return
        case UInt8(ascii: "V"):
            // GNU volume label: not a file
            emit = false
        case UInt8(ascii: "S"):
            throw ImagesError(.unsupported, "layer entry \"\(printableTarName(entry.name))\": GNU sparse files are not supported")
        case UInt8(ascii: "M"):
            throw ImagesError(.unsupported, "layer entry \"\(printableTarName(entry.name))\": multi-volume tar archives are not supported")
        case UInt8(ascii: "N"):
            throw ImagesError(.unsupported, "layer entry \"\(printableTarName(entry.name))\": old GNU long-name entries ('N') are not supported")
        default:
            entry.kind = .other(type)
        }
        // Links, devices, directories and fifos carry no data whatever their size field says (as Go reads them).
        switch entry.kind {
        case .hardlink, .symlink, .characterDevice, .blockDevice, .directory, .fifo: size = 0
        default: break
        }
        entry.size = size
        if emit { try handler(.entry(entry)) }
        if size == 0 {
            if emit { try handler(.entryEnd) }
            state = .header
        } else {
            state = .data(remaining: size, padding: Self.padding(size), emit: emit)
        }
    }

    private func metaDone(_ type: UInt8) throws {
        switch type {
        case UInt8(ascii: "x"):
            var p = localPax ?? PaxRecords()
            try p.parse(meta, local: true, at: offset)
            localPax = p
        case UInt8(ascii: "g"):
            try globalPax.parse(meta, local: false, at: offset)
        case UInt8(ascii: "L"):
            longName = cString(meta)
        default: // "K"
            longLink = cString(meta)
        }
        meta.removeAll(keepingCapacity: true)
    }

    static func padding(_ size: Int64) -> Int { Int((512 - size % 512) % 512) }
}

private enum Magic {
    case posix, gnu, v7
    init(_ h: UnsafeRawBufferPointer) {
        // "ustar\0" "00" is POSIX; "ustar " " \0" is old GNU; no magic is v7
        if h[257] == 0x75 && h[258] == 0x73 && h[259] == 0x74 && h[260] == 0x61 && h[261] == 0x72 {
            self = h[262] == 0 ? .posix : .gnu
        } else {
            self = .v7
        }
    }
}

private func isZero(_ h: UnsafeRawBufferPointer) -> Bool {
    // word-wise: the header may sit at any alignment in the caller's buffer, so load unaligned
    let p = h.baseAddress!
    var acc: UInt64 = 0
    for i in stride(from: 0, to: 512, by: 8) { acc |= p.loadUnaligned(fromByteOffset: i, as: UInt64.self) }
    return acc == 0
}

private func verifyChecksum(_ h: UnsafeRawBufferPointer, at offset: Int64) throws {
    var unsigned = 0
    var signed = 0
    for i in 0..<512 {
        let b = (i >= 148 && i < 156) ? UInt8(ascii: " ") : h[i]
        unsigned += Int(b)
        signed += Int(Int8(bitPattern: b))
    }
    guard let stored = parseOctal(h, 148, 8), stored == unsigned || stored == signed else {
        throw ImagesError(.invalidContent, "tar header at offset \(offset): bad checksum (not a tar archive, or a corrupt one)")
    }
}

/// A NUL-terminated header field.
private func field(_ h: UnsafeRawBufferPointer, _ start: Int, _ length: Int) -> [UInt8] {
    var end = start
    while end < start + length && h[end] != 0 { end += 1 }
    return Array(h[start..<end])
}

private func cString(_ bytes: [UInt8]) -> [UInt8] {
    if let nul = bytes.firstIndex(of: 0) { return Array(bytes[..<nul]) }
    return bytes
}

private func parseOctal(_ h: UnsafeRawBufferPointer, _ start: Int, _ length: Int) -> Int? {
    var i = start
    let end = start + length
    while i < end && (h[i] == 0x20 || h[i] == 0) { i += 1 }
    var value = 0
    var digits = 0
    while i < end {
        let c = h[i]
        if c >= 0x30 && c <= 0x37 {
            value = value << 3 | Int(c - 0x30)
            digits += 1
            if digits > 21 { return nil }
        } else if c == 0x20 || c == 0 {
            break
        } else {
            return nil
        }
        i += 1
    }
    // only spaces and NULs may follow
    while i < end {
        if h[i] != 0x20 && h[i] != 0 { return nil }
        i += 1
    }
    return value
}

/// An octal or base-256 (GNU: high bit of the first byte set; 0xff first byte for negative) number.
private func numeric(_ h: UnsafeRawBufferPointer, _ start: Int, _ length: Int, _ name: String,
                     _ offset: Int64) throws -> Int64 {
    let first = h[start]
    if first & 0x80 != 0 {
        let inv: UInt8 = first & 0x40 != 0 ? 0xff : 0
        var x: UInt64 = 0
        for i in start..<(start + length) {
            var c = h[i] ^ inv
            if i == start { c &= 0x7f }
            if x >> 56 > 0 {
                throw ImagesError(.invalidContent, "tar header at offset \(offset): \(name) field overflows")
            }
            x = x << 8 | UInt64(c)
        }
        if x >> 63 > 0 {
            throw ImagesError(.invalidContent, "tar header at offset \(offset): \(name) field overflows")
        }
        return inv == 0xff ? ~Int64(x) : Int64(x)
    }
    guard let v = parseOctal(h, start, length) else {
        throw ImagesError(.invalidContent, "tar header at offset \(offset): \(name) field is not an octal number")
    }
    return Int64(v)
}

func printableTarName(_ name: [UInt8]) -> String {
    let s = String(decoding: name.prefix(4096), as: UTF8.self)
    return name.count > 4096 ? s + "…" : s
}

// MARK: - pax records

private struct PaxRecords {
    var path: [UInt8]?
    var linkPath: [UInt8]?
    var size: Int64?
    var uid: Int64?
    var gid: Int64?
    var userName: String?
    var groupName: String?
    var mtime: TarTime?
    var atime: TarTime?
    var xattrs: [String: [UInt8]] = [:]
    var sparse = false
    /// keys a local header set to "" (which undoes the global value)
    var unset: Set<String> = []

    mutating func parse(_ data: [UInt8], local: Bool, at offset: Int64) throws {
        func bad(_ why: String) -> ImagesError {
            ImagesError(.invalidContent, "pax header before offset \(offset): \(why)")
        }
        var i = 0
        let n = data.count
        while i < n {
            if data[i] == 0 {
                // some writers pad the header with NULs
                if data[i...].allSatisfy({ $0 == 0 }) { return }
                throw bad("malformed record")
            }
            var length = 0
            var j = i
            while j < n && data[j] >= 0x30 && data[j] <= 0x39 {
                length = length * 10 + Int(data[j] - 0x30)
                if length > n { throw bad("record length past the end") }
                j += 1
            }
            guard j < n, data[j] == 0x20, length > j - i + 1, i + length <= n, data[i + length - 1] == 0x0a else {
                throw bad("malformed record")
            }
            let recordEnd = i + length - 1
            let keyStart = j + 1
            guard let eq = data[keyStart..<recordEnd].firstIndex(of: UInt8(ascii: "=")) else {
                throw bad("record without '='")
            }
            let key = String(decoding: data[keyStart..<eq], as: UTF8.self)
            let value = Array(data[(eq + 1)..<recordEnd])
            try set(key, value, local: local, bad)
            i += length
        }
    }

    private mutating func set(_ key: String, _ value: [UInt8], local: Bool,
                              _ bad: (String) -> ImagesError) throws {
        if value.isEmpty && !key.hasPrefix("SCHILY.xattr.") && !key.hasPrefix("LIBARCHIVE.xattr.") {
            // an empty value removes the key (for a local header: also the global one)
            switch key {
            case "path": path = nil
            case "linkpath": linkPath = nil
            case "size": size = nil
            case "uid": uid = nil
            case "gid": gid = nil
            case "uname": userName = nil
            case "gname": groupName = nil
            case "mtime": mtime = nil
            case "atime": atime = nil
            default: break
            }
            if local { unset.insert(key) }
            return
        }
        switch key {
        case "path": path = value
        case "linkpath": linkPath = value
        case "size":
            guard let v = decimal(value), v >= 0 else { throw bad("size \"\(printableTarName(value))\" is not a number") }
            size = v
        case "uid":
            guard let v = decimal(value) else { throw bad("uid \"\(printableTarName(value))\" is not a number") }
            uid = v
        case "gid":
            guard let v = decimal(value) else { throw bad("gid \"\(printableTarName(value))\" is not a number") }
            gid = v
        case "uname": userName = String(decoding: value, as: UTF8.self)
        case "gname": groupName = String(decoding: value, as: UTF8.self)
        case "mtime":
            guard let t = paxTime(value) else { throw bad("mtime \"\(printableTarName(value))\" is not a time") }
            mtime = t
        case "atime":
            guard let t = paxTime(value) else { throw bad("atime \"\(printableTarName(value))\" is not a time") }
            atime = t
        default:
            if key.hasPrefix("SCHILY.xattr.") {
                let name = String(key.dropFirst("SCHILY.xattr.".count))
                guard !name.isEmpty else { throw bad("xattr record without a name") }
                xattrs[name] = value
            } else if key.hasPrefix("LIBARCHIVE.xattr.") {
                guard let name = percentDecoded(String(key.dropFirst("LIBARCHIVE.xattr.".count))), !name.isEmpty,
                      let v = base64Decoded(value) else {
                    throw bad("malformed LIBARCHIVE.xattr record \"\(key)\"")
                }
                xattrs[name] = v
            } else if key.hasPrefix("GNU.sparse.") {
                sparse = true
            }
            // other keys (atime/ctime of star, comment, hdrcharset, SCHILY.dev/ino/nlink, …) carry nothing we apply
        }
    }

    func apply(to e: inout TarEntry, size s: inout Int64, skipping: Set<String>) {
        if let path, !skipping.contains("path") { e.name = path }
        if let linkPath, !skipping.contains("linkpath") { e.linkName = linkPath }
        if let size, !skipping.contains("size") { s = size }
        if let uid, !skipping.contains("uid") { e.uid = uid }
        if let gid, !skipping.contains("gid") { e.gid = gid }
        if let userName, !skipping.contains("uname") { e.userName = userName }
        if let groupName, !skipping.contains("gname") { e.groupName = groupName }
        if let mtime, !skipping.contains("mtime") { e.modificationTime = mtime }
        if let atime, !skipping.contains("atime") { e.accessTime = atime }
        for (k, v) in xattrs { e.xattrs[k] = v }
    }
}

private func decimal(_ v: [UInt8]) -> Int64? {
    var i = 0
    var negative = false
    if v.first == UInt8(ascii: "-") { negative = true; i = 1 }
    guard i < v.count, v.count - i <= 19 else { return nil }
    var x: Int64 = 0
    while i < v.count {
        let c = v[i]
        guard c >= 0x30 && c <= 0x39 else { return nil }
        let (m, o1) = x.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(Int64(c - 0x30))
        if o1 || o2 { return nil }
        x = a
        i += 1
    }
    return negative ? -x : x
}

/// "1700000000.123456789", "-1.5", "12"
private func paxTime(_ v: [UInt8]) -> TarTime? {
    let dot = v.firstIndex(of: UInt8(ascii: "."))
    guard let secs = decimal(Array(v[..<(dot ?? v.count)])) else { return nil }
    var nanos: Int64 = 0
    if let dot {
        let frac = v[(dot + 1)...]
        guard !frac.isEmpty, frac.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        var digits = 0
        for c in frac.prefix(9) { nanos = nanos * 10 + Int64(c - 0x30); digits += 1 }
        while digits < 9 { nanos *= 10; digits += 1 }
    }
    if v.first == UInt8(ascii: "-") && nanos > 0 {
        // -1.5 is 1.5 seconds before the epoch: -2 s + 0.5 s
        return TarTime(seconds: secs - 1, nanoseconds: Int32(1_000_000_000 - nanos))
    }
    return TarTime(seconds: secs, nanoseconds: Int32(nanos))
}

private func percentDecoded(_ s: String) -> String? {
    var out: [UInt8] = []
    var it = Array(s.utf8)[...]
    while let c = it.popFirst() {
        if c == UInt8(ascii: "%") {
            guard let h = it.popFirst(), let l = it.popFirst(), let hv = hexValue(h), let lv = hexValue(l) else { return nil }
            out.append(hv << 4 | lv)
        } else {
            out.append(c)
        }
    }
    return String(decoding: out, as: UTF8.self)
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case 0x30...0x39: return c - 0x30
    case 0x61...0x66: return c - 0x61 + 10
    case 0x41...0x46: return c - 0x41 + 10
    default: return nil
    }
}

private func base64Decoded(_ v: [UInt8]) -> [UInt8]? {
    var out: [UInt8] = []
    out.reserveCapacity(v.count * 3 / 4)
    var acc: UInt32 = 0
    var bits = 0
    var sawPad = false
    for c in v {
        let d: UInt32
        switch c {
        case 0x41...0x5a: d = UInt32(c - 0x41)
        case 0x61...0x7a: d = UInt32(c - 0x61 + 26)
        case 0x30...0x39: d = UInt32(c - 0x30 + 52)
        case UInt8(ascii: "+"): d = 62
        case UInt8(ascii: "/"): d = 63
        case UInt8(ascii: "="): sawPad = true; continue
        case 0x0a, 0x0d, 0x20: continue
        default: return nil
        }
        if sawPad { return nil }
        acc = acc << 6 | d
        bits += 6
        if bits >= 8 {
            bits -= 8
            out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
        }
    }
    return bits >= 6 ? nil : out
}

// MARK: - writer

/// Writes a tar stream to a sink: POSIX ustar headers, with a pax header before an entry whose name, link,
/// owner names or numbers do not fit (or are not ASCII), whose mtime has a fraction, or that has xattrs.
/// Output is deterministic: pax headers have fixed names and zero times, records are in a fixed order and
/// xattrs sorted by name. `finish()` writes the two end blocks (no padding to a 10 KiB record).
public final class TarWriter {
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var buffer: [UInt8] = []
    private let flushAt = 64 * 1024
    public private(set) var bytesWritten: Int64 = 0
    private var finished = false

    public init(_ sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.sink = sink
        buffer.reserveCapacity(flushAt + 1024)
    }

    /// Writes to `fd` (not closed by the writer).
    public convenience init(fd: Int32) {
        self.init { bytes in
            let e = writeAll(fd, bytes)
            if e != 0 { throw ImagesError.system("write tar stream", errno: e) }
        }
    }

    /// An entry without data: a directory, link, device, fifo or an empty file.
    public func append(_ entry: TarEntry) throws {
        try append(entry, contents: UnsafeRawBufferPointer(start: nil, count: 0))
    }

    public func append(_ entry: TarEntry, contents: [UInt8]) throws {
        try contents.withUnsafeBytes { try append(entry, contents: $0) }
    }

    /// A regular file with these bytes as its data (`entry.size` is set from them).
    public func append(_ entry: TarEntry, contents: UnsafeRawBufferPointer) throws {
        var e = entry
        e.size = entry.kind == .regular ? Int64(contents.count) : 0
        if entry.kind != .regular && contents.count > 0 {
            throw ImagesError(.invalidArgument, "tar entry \"\(entry.path)\": only regular files have contents")
        }
        try header(e)
        if contents.count > 0 {
            try put(contents)
            try pad(Int64(contents.count))
        }
    }

    /// A regular file whose `entry.size` bytes are read from `fd` (from its current offset; not closed).
    public func append(_ entry: TarEntry, fd: Int32) throws {
        guard entry.kind == .regular else {
            throw ImagesError(.invalidArgument, "tar entry \"\(entry.path)\": only regular files have contents")
        }
        try header(entry)
        var left = entry.size
        let chunk = 1 << 20
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buf.deallocate() }
        while left > 0 {
            let want = Int(min(Int64(chunk), left))
            let n = read(fd, buf.baseAddress!, want)
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw ImagesError.system("read \"\(entry.path)\" for the tar stream", errno: e)
            }
            if n == 0 {
                throw ImagesError(.system, "read \"\(entry.path)\" for the tar stream: the file is shorter than its "
                    + "\(entry.size) bytes (did it change while it was archived?)")
            }
            try put(UnsafeRawBufferPointer(start: buf.baseAddress!, count: n))
            left -= Int64(n)
        }
        try pad(entry.size)
    }

    /// Writes the end-of-archive blocks and hands on what is buffered.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        buffer.append(contentsOf: repeatElement(0, count: 1024))
        try flush()
    }

    private func pad(_ size: Int64) throws {
        let p = TarReader.padding(size)
        if p > 0 { buffer.append(contentsOf: repeatElement(0, count: p)) }
        if buffer.count >= flushAt { try flush() }
    }

    private func put(_ bytes: UnsafeRawBufferPointer) throws {
        if bytes.count >= flushAt {
            try flush()
            try sink(bytes)
            bytesWritten += Int64(bytes.count)
        } else {
            buffer.append(contentsOf: bytes)
            if buffer.count >= flushAt { try flush() }
        }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try sink($0) }
        bytesWritten += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    private static let maxOctal7: Int64 = 0o7777777
    private static let maxOctal11: Int64 = 0o77777777777

    private func header(_ entry: TarEntry) throws {
        guard !finished else {
            throw ImagesError(.invalidArgument, "tar entry \"\(entry.path)\": the archive is already finished")
        }
        var name = entry.name
        if entry.kind == .directory && name.last != UInt8(ascii: "/") { name.append(UInt8(ascii: "/")) }
        guard !name.isEmpty, !name.contains(0), !entry.linkName.contains(0) else {
            throw ImagesError(.invalidArgument, "tar entry \"\(entry.path)\": empty name or a NUL in a name")
        }
        let type: UInt8
        switch entry.kind {
        case .regular: type = UInt8(ascii: "0")
        case .hardlink: type = UInt8(ascii: "1")
        case .symlink: type = UInt8(ascii: "2")
        case .characterDevice: type = UInt8(ascii: "3")
        case .blockDevice: type = UInt8(ascii: "4")
        case .directory: type = UInt8(ascii: "5")
        case .fifo: type = UInt8(ascii: "6")
        case .other(let t): type = t
        }

        // What the ustar header can hold, and the pax records for the rest.
        var records: [(String, [UInt8])] = []
        var ustarName = name
        var prefix: [UInt8] = []
        if !isASCII(name) || name.count > 100 {
            if isASCII(name), let split = splitUSTAR(name) {
                prefix = Array(name[..<split])
                ustarName = Array(name[(split + 1)...])
            } else {
                records.append(("path", name))
                ustarName = Array(name.prefix(100))
            }
        }
        var ustarLink = entry.linkName
        if !isASCII(entry.linkName) || entry.linkName.count > 100 {
            records.append(("linkpath", entry.linkName))
            ustarLink = Array(entry.linkName.prefix(100))
        }
        if entry.size > Self.maxOctal11 { records.append(("size", Array(String(entry.size).utf8))) }
        if entry.uid < 0 || entry.uid > Self.maxOctal7 { records.append(("uid", Array(String(entry.uid).utf8))) }
        if entry.gid < 0 || entry.gid > Self.maxOctal7 { records.append(("gid", Array(String(entry.gid).utf8))) }
        let uname = Array(entry.userName.utf8), gname = Array(entry.groupName.utf8)
        if uname.count > 32 || !isASCII(uname) { records.append(("uname", uname)) }
        if gname.count > 32 || !isASCII(gname) { records.append(("gname", gname)) }
        let mt = entry.modificationTime
        if mt.seconds < 0 || mt.seconds > Self.maxOctal11 || mt.nanoseconds != 0 {
            records.append(("mtime", Array(formatPaxTime(mt).utf8)))
        }
        if let at = entry.accessTime { records.append(("atime", Array(formatPaxTime(at).utf8))) }
        for key in entry.xattrs.keys.sorted() {
            records.append(("SCHILY.xattr." + key, entry.xattrs[key]!))
        }

        if !records.isEmpty {
            var body: [UInt8] = []
            for (k, v) in records { body += paxRecord(k, v) }
            let base = name.split(separator: UInt8(ascii: "/")).last.map(Array.init) ?? []
            let paxName = Array(("PaxHeaders/" + String(decoding: base, as: UTF8.self)).utf8.prefix(100))
            var ph = [UInt8](repeating: 0, count: 512)
            putString(&ph, 0, 100, paxName)
            putNumber(&ph, 100, 8, 0o644)
            putNumber(&ph, 108, 8, 0)
            putNumber(&ph, 116, 8, 0)
            putNumber(&ph, 124, 12, Int64(body.count))
            putNumber(&ph, 136, 12, 0)
            ph[156] = UInt8(ascii: "x")
            finishHeader(&ph)
            buffer.append(contentsOf: ph)
            buffer.append(contentsOf: body)
            let p = TarReader.padding(Int64(body.count))
            if p > 0 { buffer.append(contentsOf: repeatElement(0, count: p)) }
        }

        var h = [UInt8](repeating: 0, count: 512)
        putString(&h, 0, 100, ustarName)
        putNumber(&h, 100, 8, Int64(entry.mode & 0o7777))
        putNumber(&h, 108, 8, entry.uid)
        putNumber(&h, 116, 8, entry.gid)
        putNumber(&h, 124, 12, entry.size)
        putNumber(&h, 136, 12, mt.seconds)
        h[156] = type
        putString(&h, 157, 100, ustarLink)
        putString(&h, 265, 32, Array(uname.prefix(32)))
        putString(&h, 297, 32, Array(gname.prefix(32)))
        if entry.kind == .characterDevice || entry.kind == .blockDevice {
            putNumber(&h, 329, 8, Int64(entry.deviceMajor))
            putNumber(&h, 337, 8, Int64(entry.deviceMinor))
        } else {
            putNumber(&h, 329, 8, 0)
            putNumber(&h, 337, 8, 0)
        }
        putString(&h, 345, 155, prefix)
        finishHeader(&h)
        buffer.append(contentsOf: h)
        if buffer.count >= flushAt { try flush() }
    }
}

private func isASCII(_ b: [UInt8]) -> Bool { b.allSatisfy { $0 < 0x80 } }

/// The index of a '/' that splits `name` into a ustar prefix (≤ 155) and name (1…100), if there is one.
private func splitUSTAR(_ name: [UInt8]) -> Int? {
    let n = name.count
    guard n <= 256 else { return nil }
    var i = min(n - 1, 155)
    while i > 0 {
        if name[i] == UInt8(ascii: "/") && n - i - 1 <= 100 && n - i - 1 > 0 { return i }
        i -= 1
    }
    return nil
}

private func putString(_ h: inout [UInt8], _ start: Int, _ length: Int, _ value: [UInt8]) {
    for (i, b) in value.prefix(length).enumerated() { h[start + i] = b }
}

/// Octal with a NUL terminator when it fits, else base-256 (GNU), else 0 (a pax record carries the value).
private func putNumber(_ h: inout [UInt8], _ start: Int, _ length: Int, _ value: Int64) {
    let digits = length - 1
    let maxOctal: Int64 = (1 << (3 * Int64(digits))) - 1
    if value >= 0 && value <= maxOctal {
        var v = value
        for i in stride(from: start + digits - 1, through: start, by: -1) {
            h[i] = UInt8(ascii: "0") + UInt8(v & 7)
            v >>= 3
        }
        h[start + digits] = 0
    } else if value >= 0 {
        var v = UInt64(value)
        for i in stride(from: start + length - 1, to: start, by: -1) {
            h[i] = UInt8(truncatingIfNeeded: v)
            v >>= 8
        }
        h[start] = 0x80
    } else {
        putNumber(&h, start, length, 0)
    }
}

private func finishHeader(_ h: inout [UInt8]) {
    // POSIX ustar magic and version
    let magic: [UInt8] = Array("ustar".utf8) + [0, UInt8(ascii: "0"), UInt8(ascii: "0")]
    for (i, b) in magic.enumerated() { h[257 + i] = b }
    for i in 148..<156 { h[i] = UInt8(ascii: " ") }
    let sum = h.reduce(0) { $0 + Int($1) }
    var v = sum
    for i in stride(from: 153, through: 148, by: -1) {
        h[i] = UInt8(ascii: "0") + UInt8(v & 7)
        v >>= 3
    }
    h[154] = 0
    h[155] = UInt8(ascii: " ")
}

private func formatPaxTime(_ t: TarTime) -> String {
    var secs = t.seconds
    var nanos = Int64(t.nanoseconds)
    var sign = ""
    if secs < 0 {
        sign = "-"
        if nanos > 0 { secs += 1; nanos = 1_000_000_000 - nanos }
        secs = -secs
    }
    if nanos == 0 { return sign + String(secs) }
    var frac = String(nanos)
    frac = String(repeating: "0", count: 9 - frac.count) + frac
    while frac.hasSuffix("0") { frac.removeLast() }
    return sign + String(secs) + "." + frac
}

/// "%d %s=%s\n" where the length counts itself.
private func paxRecord(_ key: String, _ value: [UInt8]) -> [UInt8] {
    let rest = 1 + key.utf8.count + 1 + value.count + 1
    var length = rest + 1
    while String(length).count + rest != length { length = String(length).count + rest }
    return Array(String(length).utf8) + [0x20] + Array(key.utf8) + [UInt8(ascii: "=")] + value + [0x0a]
}
