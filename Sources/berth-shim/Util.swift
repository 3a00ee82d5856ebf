// Small system helpers of the shim: errno text, clocks, whole writes, atomic files, a byte queue.
#if canImport(Glibc)
import Glibc
#endif

func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }

/// CLOCK_MONOTONIC in nanoseconds (deadlines).
func monotonicNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// CLOCK_REALTIME (timestamps).
func realtimeNow() -> timespec {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return ts
}

func unixNanos(_ ts: timespec) -> Int64 { Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec) }

/// Writes every byte to a blocking fd (files, the ready fd). false on error.
@discardableResult
func writeAll(_ fd: Int32, _ p: UnsafeRawBufferPointer) -> Bool {
    var off = 0
    while off < p.count {
        let n = write(fd, p.baseAddress! + off, p.count - off)
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        off += n
    }
    return true
}

@discardableResult
func writeAll(_ fd: Int32, _ s: String) -> Bool {
    var s = s
    return s.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
}

func closeFD(_ fd: inout Int32) {
    if fd >= 0 { close(fd) }
    fd = -1
}

/// Writes `dir/name` atomically: a temp name of this process, fsync, rename, fsync of the directory.
func writeFileAtomically(dir: String, name: String, _ text: String) -> Bool {
    let tmp = "\(dir)/.\(name).tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    if fd < 0 { return false }
    let ok = writeAll(fd, text) && fsync(fd) == 0
    close(fd)
    guard ok, rename(tmp, "\(dir)/\(name)") == 0 else {
        unlink(tmp)
        return false
    }
    let d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if d >= 0 {
        fsync(d)
        close(d)
    }
    return true
}

/// A small file's contents (pid files), or nil.
func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 256)
    while out.count < 4096 {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

/// Bytes waiting to be written to a non-blocking fd.
struct ByteQueue {
    private var storage: [UInt8] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { head == storage.count }

    mutating func append(_ p: UnsafeRawBufferPointer) { storage.append(contentsOf: p) }
    mutating func append(_ b: [UInt8]) { storage.append(contentsOf: b) }
    mutating func append(_ s: String) { storage.append(contentsOf: s.utf8) }
    mutating func append(_ q: ByteQueue) { storage.append(contentsOf: q.storage[q.head...]) }

    mutating func removeAll() {
        storage = []
        head = 0
    }

    private mutating func consume(_ n: Int) {
        head += n
        if head == storage.count {
            // give big buffers back: an idle shim stays small
            storage.removeAll(keepingCapacity: storage.capacity <= 65536)
            head = 0
        } else if head >= 65536 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
    }

    enum Flush { case done, pending, failed }

    /// Writes as much as the fd takes now.
    mutating func flush(to fd: Int32) -> Flush {
        while !isEmpty {
            let n = storage.withUnsafeBytes { write(fd, $0.baseAddress! + head, $0.count - head) }
            if n > 0 {
                consume(n)
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .pending }
            return .failed
        }
        return .done
    }
}
