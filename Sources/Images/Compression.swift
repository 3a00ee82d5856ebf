// gzip (zlib) and zstd (libzstd) as push-style stream transforms: feed a chunk, get the output chunks.
// A layer is decompressed as it arrives, never staged uncompressed on disk.
import CImages
import OCI

public final class Decompressor {
    public let kind: LayerCompression
    private let ctx: OpaquePointer?
    private var buffer = [UInt8](repeating: 0, count: 256 * 1024)
    /// true once the last frame seen has ended (more input may start another)
    public private(set) var ended = false

    public init(_ kind: LayerCompression) throws {
        self.kind = kind
        switch kind {
        case .none: ctx = nil
        case .gzip, .zstd:
            guard let c = bi_dec_new(kind == .gzip ? BI_GZIP : BI_ZSTD) else {
                throw ImagesError(.system, "\(kind.rawValue): cannot allocate a decompression context")
            }
            ctx = c
        }
    }

    deinit { if let ctx { bi_dec_free(ctx) } }

    /// Feeds compressed bytes; `sink` gets every decompressed chunk (valid only during the call).
    public func feed(_ input: UnsafeRawBufferPointer, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let ctx else {
            try sink(input)
            return
        }
        var offset = 0
        while true {
            var consumed = 0, produced = 0
            let rc = buffer.withUnsafeMutableBytes { out in
                bi_dec_run(ctx, input.baseAddress.map { $0 + offset }, input.count - offset, &consumed,
                           out.baseAddress, out.count, &produced)
            }
            if rc < 0 {
                throw ImagesError(.invalidContent, String(cString: bi_dec_error(ctx)))
            }
            offset += consumed
            ended = rc == 1
            if produced > 0 {
                try buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
            }
            // Done when all input is taken and the decoder has no more output pending for it.
            if offset >= input.count && produced < buffer.count { return }
            if consumed == 0 && produced == 0 { return }
        }
    }

    /// Call at the end of the input: a compressed stream that did not reach its end is truncated.
    public func finish() throws {
        if ctx != nil && !ended {
            throw ImagesError(.invalidContent, "\(kind.rawValue) stream is truncated")
        }
    }
}

public final class Compressor {
    public let kind: LayerCompression
    private let ctx: OpaquePointer?
    private var buffer = [UInt8](repeating: 0, count: 256 * 1024)

    public init(_ kind: LayerCompression, level: Int = -1) throws {
        self.kind = kind
        switch kind {
        case .none: ctx = nil
        case .gzip, .zstd:
            guard let c = bi_enc_new(kind == .gzip ? BI_GZIP : BI_ZSTD, Int32(level)) else {
                throw ImagesError(.system, "\(kind.rawValue): cannot allocate a compression context")
            }
            ctx = c
        }
    }

    deinit { if let ctx { bi_enc_free(ctx) } }

    public func feed(_ input: UnsafeRawBufferPointer, finish: Bool = false,
                     _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let ctx else {
            if input.count > 0 { try sink(input) }
            return
        }
        var offset = 0
        while true {
            var consumed = 0, produced = 0
            let rc = buffer.withUnsafeMutableBytes { out in
                bi_enc_run(ctx, input.baseAddress.map { $0 + offset }, input.count - offset, &consumed,
                           out.baseAddress, out.count, &produced, finish ? 1 : 0)
            }
            if rc < 0 { throw ImagesError(.system, "\(kind.rawValue): compression failed") }
            offset += consumed
            if produced > 0 {
                try buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
            }
            if rc == 1 { return }
        }
    }
}
