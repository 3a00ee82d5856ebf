// The image store: names (normalised references, "docker.io/library/busybox:latest", or a digest
// reference "docker.io/library/busybox@sha256:…") → the descriptor of the manifest or index they point to.
// One JSON file, <root>/images.json, rewritten atomically under an flock; small (a record per name).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LinuxContainer
import OCI

public struct ImageRecord: Sendable, Codable, Hashable {
    public var name: String
    public var target: Descriptor
    public var created: Date
    public var updated: Date
    public var labels: [String: String]

    public init(name: String, target: Descriptor, created: Date = Date(), labels: [String: String] = [:]) {
        self.name = name
        self.target = target
        self.created = created
        updated = created
        self.labels = labels
    }
}

public final class ImageStore: Sendable {
    public let path: String
    let lockPath: String

    struct File: Codable {
        var version: Int
        var images: [String: ImageRecord]
    }

    public init(root: String) throws(ImagesError) {
        do { try FS.mkdirAll(root, mode: 0o700) } catch { throw ImagesError(wrapping: error) }
        path = root + "/images.json"
        lockPath = root + "/images.lock"
    }

    private func load() throws(ImagesError) -> File {
        guard FS.exists(path) else { return File(version: 1, images: [:]) }
        let bytes: [UInt8]
        do { bytes = try FS.readFile(path) } catch { throw ImagesError(wrapping: error) }
        do {
            let d = JSONDecoder()
            d.dateDecodingStrategy = .iso8601
            return try d.decode(File.self, from: Data(bytes))
        } catch {
            throw ImagesError.wrap(error, "image store \(path) is damaged", as: .system)
        }
    }

    private func save(_ f: File) throws(ImagesError) {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys]
        let data: Data
        do { data = try e.encode(f) } catch { throw ImagesError(.system, "encode image store: \(error)") }
        do { try FS.writeAtomically(Array(data), to: path, mode: 0o600) } catch { throw ImagesError(wrapping: error) }
    }

    /// Runs `body` on the store's records with the lock held; what it leaves is written back.
    @discardableResult
    public func update<T>(_ body: (inout [String: ImageRecord]) throws(ImagesError) -> T) throws(ImagesError) -> T {
        let lock = try FileLock.acquireBlocking(lockPath, exclusive: true)
        defer { _ = lock }
        var f = try load()
        let before = f.images
        let result = try body(&f.images)
        if f.images != before { try save(f) }
        return result
    }

    public func list() throws(ImagesError) -> [ImageRecord] {
        let lock = try FileLock.acquireBlocking(lockPath, exclusive: false)
        defer { _ = lock }
        return try load().images.values.sorted { $0.name < $1.name }
    }

    public func get(_ name: String) throws(ImagesError) -> ImageRecord? {
        try list().first { $0.name == name }
    }

    /// Points `name` at `target` (a pull, a tag, a load). Returns the record it replaced, if any.
    @discardableResult
    public func put(_ name: String, target: Descriptor, labels: [String: String] = [:]) throws(ImagesError) -> ImageRecord? {
        try update { (images: inout [String: ImageRecord]) throws(ImagesError) -> ImageRecord? in
            let old = images[name]
            var r = old ?? ImageRecord(name: name, target: target, labels: labels)
            if old != nil {
                r.target = target
                r.updated = Date()
                r.labels.merge(labels) { $1 }
            }
            images[name] = r
            return old
        }
    }

    /// Removes a name; the content stays until GC finds nothing else references it.
    @discardableResult
    public func delete(_ name: String) throws(ImagesError) -> ImageRecord {
        try update { (images: inout [String: ImageRecord]) throws(ImagesError) -> ImageRecord in
            guard let r = images.removeValue(forKey: name) else {
                throw ImagesError(.notFound, "no such image: \(name)")
            }
            return r
        }
    }
}
