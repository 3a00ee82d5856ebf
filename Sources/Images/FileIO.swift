// The module's two raw I/O loops: every byte of a buffer to an fd, and an fd's bytes in chunks to its end.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// write(2) until all of `bytes` is written (EINTR retried). 0, or the errno of the failed write.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            let e = errno
            if e == EINTR { continue }
            return e
        }
        done += n
    }
    return 0
}

/// read(2)s `fd` to its end in chunks of up to `chunk` bytes, each handed to `body` (valid only during the
/// call). A failed read throws with `what` naming the file.
func forEachChunk(of fd: Int32, chunk: Int = 1 << 20, what: @autoclosure () -> String,
                  _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
    defer { buf.deallocate() }
    while true {
        let n = read(fd, buf.baseAddress!, chunk)
        if n < 0 {
            let e = errno
            if e == EINTR { continue }
            throw ImagesError.system("read \(what())", errno: e)
        }
        if n == 0 { return }
        try body(UnsafeRawBufferPointer(start: buf.baseAddress!, count: n))
    }
}
