// Docker's json-file log driver: one JSON object per line, lines cut at 16 KiB, size rotation.
#if canImport(Glibc)
import Glibc
#endif

/// Bytes of one stream waiting for their newline (or for 16 KiB).
struct LineSplitter {
    static let maxLine = 16 * 1024
    private(set) var pending: [UInt8] = []

    /// Calls `emit` for every complete line (newline included) and every 16 KiB piece of a longer one.
    mutating func feed(_ data: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        let n = data.count
        while start < n {
            let room = LineSplitter.maxLine - pending.count
            let limit = min(n, start + room)
            var end = start
            while end < limit && data[end] != 0x0A { end += 1 }
            if end < limit {  // a newline
                let piece = UnsafeRawBufferPointer(rebasing: data[start...end])
                if pending.isEmpty {
                    emit(piece)
                } else {
                    pending.append(contentsOf: piece)
                    pending.withUnsafeBytes { emit($0) }
                    pending.removeAll(keepingCapacity: false)
                }
                start = end + 1
            } else if limit - start == room {  // filled 16 KiB without a newline
                let piece = UnsafeRawBufferPointer(rebasing: data[start..<limit])
                if pending.isEmpty {
                    emit(piece)
                } else {
                    pending.append(contentsOf: piece)
                    pending.withUnsafeBytes { emit($0) }
                    pending.removeAll(keepingCapacity: false)
                }
                start = limit
            } else {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: data[start..<n]))
                start = n
            }
        }
    }

    /// EOF: what is left, as it is.
    mutating func finish(_ emit: (UnsafeRawBufferPointer) -> Void) {
        guard !pending.isEmpty else { return }
        pending.withUnsafeBytes { emit($0) }
        pending = []
    }
}

final class JSONLog {
    let path: String
    let maxSize: Int64
    let maxFiles: Int
    private var fd: Int32
    private var size: Int64
    private var record: [UInt8] = []
    private(set) var lastError: String?
    var stdout = LineSplitter()
    var stderr = LineSplitter()

    init(path: String, maxSize: Int64, maxFiles: Int) throws(ShimError) {
        self.path = path
        self.maxSize = maxSize
        self.maxFiles = max(1, maxFiles)
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        if fd < 0 { throw ShimError("open log \(path): \(errnoText())") }
        var st = stat()
        size = fstat(fd, &st) == 0 ? Int64(st.st_size) : 0
    }

    /// Output of the container: split into lines and written.
    func feed(stream: UInt8, _ data: UnsafeRawBufferPointer, time: timespec) {
        if stream == 2 {
            stderr.feed(data) { write(stream: 2, $0, time: time) }
        } else {
            stdout.feed(data) { write(stream: 1, $0, time: time) }
        }
    }

    /// The stream ended: its unfinished line as it is.
    func finish(stream: UInt8) {
        let t = realtimeNow()
        if stream == 2 {
            stderr.finish { write(stream: 2, $0, time: t) }
        } else {
            stdout.finish { write(stream: 1, $0, time: t) }
        }
    }

    private func write(stream: UInt8, _ text: UnsafeRawBufferPointer, time: timespec) {
        record.removeAll(keepingCapacity: true)
        record.append(contentsOf: #"{"log":""#.utf8)
        JSONLog.escape(text, into: &record)
        record.append(contentsOf: (stream == 2 ? #"","stream":"stderr","time":""# : #"","stream":"stdout","time":""#).utf8)
        JSONLog.appendTimestamp(time, to: &record)
        record.append(contentsOf: "\"}\n".utf8)
        if fd >= 0 {
            let ok = record.withUnsafeBytes { writeAll(fd, $0) }
            if ok {
                size += Int64(record.count)
            } else {
                lastError = "write \(path): \(errnoText())"
            }
        }
        if record.capacity > 64 * 1024 { record = [] }
        if maxSize > 0 && size >= maxSize { rotate() }
    }

    /// FILE → FILE.1 → … → FILE.(N-1) (the oldest removed), a new FILE; with N = 1 the file starts over.
    private func rotate() {
        if maxFiles <= 1 {
            if ftruncate(fd, 0) == 0 { size = 0 }
            return
        }
        unlink("\(path).\(maxFiles - 1)")
        var i = maxFiles - 2
        while i >= 1 {
            rename("\(path).\(i)", "\(path).\(i + 1)")
            i -= 1
        }
        rename(path, "\(path).1")
        close(fd)
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        if fd < 0 { lastError = "open log \(path): \(errnoText())" }
        size = 0
    }

    // MARK: - Encoding

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// A JSON string's contents; invalid UTF-8 becomes U+FFFD (as Go's encoder does).
    static func escape(_ p: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        var i = 0
        let n = p.count
        while i < n {
            let b = p[i]
            if b < 0x80 {
                switch b {
                case 0x22: out.append(0x5C); out.append(0x22)
                case 0x5C: out.append(0x5C); out.append(0x5C)
                case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
                case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
                case 0..<0x20, 0x7F:
                    out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]])
                default: out.append(b)
                }
                i += 1
                continue
            }
            let len = sequenceLength(p, i)
            if len == 0 {
                out.append(contentsOf: [0xEF, 0xBF, 0xBD])
                i += 1
            } else {
                for k in 0..<len { out.append(p[i + k]) }
                i += len
            }
        }
    }

    /// The length of the valid UTF-8 sequence at i, or 0.
    private static func sequenceLength(_ p: UnsafeRawBufferPointer, _ i: Int) -> Int {
        let b = p[i]
        let n = p.count
        func cont(_ k: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> Bool {
            i + k < n && p[i + k] >= lo && p[i + k] <= hi
        }
        switch b {
        case 0xC2...0xDF: return cont(1) ? 2 : 0
        case 0xE0: return cont(1, 0xA0) && cont(2) ? 3 : 0
        case 0xED: return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0
        case 0xE1...0xEF: return cont(1) && cont(2) ? 3 : 0
        case 0xF0: return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0
        case 0xF1...0xF3: return cont(1) && cont(2) && cont(3) ? 4 : 0
        case 0xF4: return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0
        default: return 0
        }
    }

    /// RFC 3339 with nanoseconds, UTC: 2026-12-01T23:59:59.123456789Z.
    static func appendTimestamp(_ ts: timespec, to out: inout [UInt8]) {
        var t = ts.tv_sec
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func digits(_ v: Int, _ width: Int) {
            var buf = [UInt8](repeating: 0x30, count: width)
            var v = v
            var k = width - 1
            while k >= 0 {
                buf[k] = 0x30 + UInt8(v % 10)
                v /= 10
                k -= 1
            }
            out.append(contentsOf: buf)
        }
        digits(Int(tm.tm_year) + 1900, 4); out.append(0x2D)
        digits(Int(tm.tm_mon) + 1, 2); out.append(0x2D)
        digits(Int(tm.tm_mday), 2); out.append(UInt8(ascii: "T"))
        digits(Int(tm.tm_hour), 2); out.append(0x3A)
        digits(Int(tm.tm_min), 2); out.append(0x3A)
        digits(Int(tm.tm_sec), 2); out.append(0x2E)
        digits(Int(ts.tv_nsec), 9); out.append(UInt8(ascii: "Z"))
    }
}
