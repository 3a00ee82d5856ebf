// update: new limits for a live container's cgroup (runc update); only the fields given are written.
#if canImport(Glibc)
import Glibc
#endif
import LinuxContainer
import OCI

extension Runtime {
    /// Writes `resources` into the cgroup of container `id` (created, running or paused).
    public func update(_ id: String, resources: Resources) throws(RuntimeError) {
        let lock = try root.lock(id)
        _ = lock
        let r = try root.load(id)
        let st = status(of: r)
        switch st {
        case .created, .running, .paused: break
        case .stopped: throw RuntimeError(.failedPrecondition, "container \(id) is stopped: cannot update its resources")
        case .creating: throw RuntimeError(.failedPrecondition, "container \(id) is still being created")
        }
        guard let cg = r.cgroup else { throw RuntimeError(.failedPrecondition, "update \(id): the container has no cgroup") }
        if resources.isEmpty { return }
        try linux { () throws(LinuxError) in try cg.apply(resources, field: "resources") }
    }
}

/// Memory sizes as runc reads them (go-units RAMInBytes): "1024", "10m", "1.5g", "512KiB", "2 GB";
/// binary multiples. "-1" is unlimited.
public func parseRAMInBytes(_ text: String) -> Int64? {
    if text == "-1" { return -1 }
    var s = Substring(text)
    var number = ""
    while let c = s.first, c.isNumber || c == "." { number.append(c); s = s.dropFirst() }
    guard !number.isEmpty, number.first != ".", !number.hasSuffix("."), let value = Double(number) else { return nil }
    if s.first == " " { s = s.dropFirst() }
    var unit = s.lowercased()
    if unit.hasSuffix("b") { unit.removeLast() }
    if unit.hasSuffix("i") { unit.removeLast() }
    let mult: Double
    switch unit {
    case "": mult = 1
    case "k": mult = 1024
    case "m": mult = 1024 * 1024
    case "g": mult = 1024 * 1024 * 1024
    case "t": mult = 1024 * 1024 * 1024 * 1024
    case "p": mult = 1024 * 1024 * 1024 * 1024 * 1024
    default: return nil
    }
    let bytes = value * mult
    guard bytes < 9.2e18 else { return nil }
    return Int64(bytes)
}
