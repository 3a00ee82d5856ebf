// Streaming sha256/sha512 over libcrypto (assembly, SHA-NI where present), for digests checked while the
// bytes go by: nothing is read twice to verify it.
import CImages
import OCI

public final class StreamHasher {
    public let algorithm: Digest.Algorithm
    private let ctx: OpaquePointer
    public private(set) var count: Int64 = 0

    public init(_ algorithm: Digest.Algorithm = .sha256) {
        self.algorithm = algorithm
        // bi_hash_new fails only when libcrypto cannot allocate; that is not an error a caller can handle.
        guard let c = bi_hash_new(algorithm == .sha512 ? BI_SHA512 : BI_SHA256) else {
            preconditionFailure("libcrypto could not allocate a digest context")
        }
        ctx = c
    }

    deinit { bi_hash_free(ctx) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        bi_hash_update(ctx, base, bytes.count)
        count += Int64(bytes.count)
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public func update(_ text: String) {
        var t = text
        t.withUTF8 { update(UnsafeRawBufferPointer($0)) }
    }

    /// The digest of everything fed so far; the hasher starts over afterwards.
    public func finish() -> Digest {
        var out = [UInt8](repeating: 0, count: 64)
        let n = out.withUnsafeMutableBufferPointer { Int(bi_hash_final(ctx, $0.baseAddress)) }
        count = 0
        return Digest(algorithm: algorithm, hashOutputHex: hexString(out.prefix(max(n, 0))))
    }

    public static func digest(_ bytes: [UInt8], _ algorithm: Digest.Algorithm = .sha256) -> Digest {
        let h = StreamHasher(algorithm)
        h.update(bytes)
        return h.finish()
    }

    public static func digest(_ text: String) -> Digest {
        let h = StreamHasher()
        h.update(text)
        return h.finish()
    }
}

func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(128)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// The chain IDs of a list of diff IDs (see OCI.chainIDs).
public func chainIDs(_ diffIDs: [Digest]) -> [Digest] {
    OCI.chainIDs(diffIDs, sha256: { StreamHasher.digest($0) })
}
