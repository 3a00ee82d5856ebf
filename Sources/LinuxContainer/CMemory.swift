// C copies of plan data for the code that runs after fork. Allocated once per runtime process and
// never freed: berth-runtime exits right after the container is started.
#if canImport(Glibc)
import Glibc
#endif

enum CMemory {
    static func string(_ s: String) -> UnsafePointer<CChar> { UnsafePointer(strdup(s)!) }

    static func optionalString(_ s: String?) -> UnsafePointer<CChar>? { s.map(string) }

    /// NULL-terminated char*[]
    static func stringArray(_ items: [String]) -> UnsafePointer<UnsafeMutablePointer<CChar>?> {
        let p = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: items.count + 1)
        for (i, s) in items.enumerated() { p[i] = strdup(s) }
        p[items.count] = nil
        return UnsafePointer(p)
    }

    /// const char *const * (not NULL-terminated; the count travels beside it)
    static func constStrings(_ items: [String]) -> UnsafePointer<UnsafePointer<CChar>?>? {
        if items.isEmpty { return nil }
        let p = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: items.count)
        for (i, s) in items.enumerated() { p[i] = string(s) }
        return UnsafePointer(p)
    }

    static func array<T>(_ items: [T]) -> UnsafePointer<T>? {
        if items.isEmpty { return nil }
        let p = UnsafeMutablePointer<T>.allocate(capacity: items.count)
        p.initialize(from: items, count: items.count)
        return UnsafePointer(p)
    }
}
