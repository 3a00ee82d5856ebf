// push: an image's blobs, then its manifest(s), then the index, to the registry its name says.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OCI

extension ImageService {
    /// Pushes the image `name` (or `name` tagged as `destination` first, as `docker push` after `docker tag`
    /// would). Blobs the registry has are skipped (HEAD); blobs of an image pulled from another repository
    /// of the same registry are mounted from it; the rest is uploaded (`chunkSize` nil: one PUT).
    /// Returns the digest the registry now serves the reference under.
    @discardableResult
    public func push(_ name: String, chunkSize: Int? = nil, progress: ProgressHandler? = nil) async throws -> Digest {
        let r = try lookup(name)
        let ref: Reference
        do { ref = try Reference(parsing: r.name) } catch { throw ImagesError.wrap(error, "push \(name)", as: .invalidArgument) }
        do {
            let lock = try await lease()
            defer { withExtendedLifetime(lock) {} }
            let mountFrom = r.labels["berth.source"].flatMap { src -> String? in
                guard let s = try? Reference(parsing: src), s.domain == ref.domain, s.path != ref.path else { return nil }
                return s.path
            }
            try await pushTree(r.target, ref, mountFrom: mountFrom, chunkSize: chunkSize, progress: progress)
            let bytes = try content.read(r.target.digest)
            return try await registry.pushManifest(ref.repository, reference: ref.digest?.description ?? ref.tag ?? "latest",
                                                   mediaType: r.target.mediaType, bytes: bytes)
        } catch let e as ImagesError {
            throw e.prefixed("push \(ref)")
        }
    }

    /// Everything below a manifest or index, children before parents (a registry refuses a manifest
    /// whose blobs it lacks).
    func pushTree(_ d: Descriptor, _ ref: Reference, mountFrom: String?, chunkSize: Int?, progress: ProgressHandler?) async throws {
        let bytes = try content.read(d.digest)
        if MediaType.isIndex(d.mediaType) {
            let index = try decode(ImageIndex.self, bytes, "index \(d.digest)")
            let missing = index.manifests.filter { !content.contains($0.digest) }
            if !missing.isEmpty {
                throw ImagesError(.notFound, "the index \(d.digest) lists \(missing.count) manifest(s) that are not here "
                    + "(\(missing.compactMap { $0.platform?.description }.joined(separator: ", "))): pull them with --platform, or push one platform's image")
            }
            for m in index.manifests {
                try await pushTree(m, ref, mountFrom: mountFrom, chunkSize: chunkSize, progress: progress)
                try await registry.pushManifest(ref.repository, reference: m.digest.description, mediaType: m.mediaType,
                                                bytes: try content.read(m.digest))
            }
            return
        }
        let m = try decode(ImageManifest.self, bytes, "manifest \(d.digest)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for blob in m.layers + [m.config] {
                guard content.contains(blob.digest) else {
                    throw ImagesError(.notFound, "blob \(blob.digest) is not in the content store; pull the image again")
                }
                group.addTask {
                    let id = blob.digest.shortID
                    progress?(ProgressEvent(id: id, state: .pushing, total: blob.size))
                    let outcome = try await self.registry.pushBlob(ref.repository, blob, from: .file(self.content.path(blob.digest)),
                                                                   mountFrom: mountFrom, chunkSize: chunkSize)
                    let how: String
                    switch outcome {
                    case .exists: how = "exists"
                    case .mounted: how = "mounted"
                    case .uploaded: how = "uploaded"
                    }
                    progress?(ProgressEvent(id: id, state: .pushed, current: blob.size, total: blob.size, message: how))
                }
            }
            try await group.waitForAll()
        }
    }
}
