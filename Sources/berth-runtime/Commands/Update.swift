#if canImport(Glibc)
import Glibc
#endif
import LinuxContainer
import Runtime

/// runc update ID [--resources FILE|-] [--memory 10m ...]: flags override the JSON's fields.
func updateCommand(_ ctx: Context) throws -> Int32 {
    let valued = ["resources", "r", "memory", "memory-reservation", "memory-swap", "kernel-memory", "kernel-memory-tcp",
                  "cpu-share", "cpu-shares", "cpu-quota", "cpu-period", "cpu-rt-runtime", "cpu-rt-period", "cpuset-cpus",
                  "cpuset-mems", "pids-limit", "blkio-weight", "l3-cache-schema", "mem-bw-schema"]
    var flags = [FlagSpec("resources", "r", value: true)]
    flags += valued.dropFirst(2).map { FlagSpec($0, value: true) }
    let a = try parseArgs(ctx.args, flags: flags)
    guard a.positionals.count == 1 else { throw ArgError(message: "\"update\" requires exactly 1 argument") }
    let id = a.positionals[0]
    if a.string("l3-cache-schema") != nil || a.string("mem-bw-schema") != nil {
        throw ArgError(message: "update: --l3-cache-schema and --mem-bw-schema (Intel RDT) are not supported by berth-runtime")
    }
    var r = Resources()
    if let src = a.string("resources") {
        let bytes: [UInt8]
        do {
            bytes = src == "-" ? try OwnedFD(taking: dup(0)).readAll(limit: 1 << 20) : try FS.readFile(src, limit: 1 << 20)
        } catch { throw ArgError(message: "update: read resources from \(src): \(error.message)") }
        let json: JSON
        do { json = try JSON.parse(bytes) } catch { throw ArgError(message: "update: resources \(src): \(error)") }
        do { r = try Resources(json: json, field: "resources") } catch { throw ArgError(message: "update: \(error.message)") }
    }
    func int(_ name: String) throws -> Int64? {
        guard let v = a.string(name) else { return nil }
        guard let i = Int64(v) else { throw ArgError(message: "invalid value \"\(v)\" for flag --\(name)") }
        return i
    }
    func uint(_ name: String) throws -> UInt64? {
        guard let v = a.string(name) else { return nil }
        guard let i = UInt64(v) else { throw ArgError(message: "invalid value \"\(v)\" for flag --\(name)") }
        return i
    }
    func bytes(_ name: String) throws -> Int64? {
        guard let v = a.string(name) else { return nil }
        guard let b = parseRAMInBytes(v) else { throw ArgError(message: "invalid value \"\(v)\" for flag --\(name): expected a size like 512k, 10m, 1g or -1") }
        return b
    }
    if let v = try bytes("memory") { r.memory.limit = v }
    if let v = try bytes("memory-reservation") { r.memory.reservation = v }
    if let v = try bytes("memory-swap") { r.memory.swap = v }
    if a.string("kernel-memory") != nil { writeStderr("berth-runtime: warning: --kernel-memory is ignored (kernel memory limits are deprecated)\n") }
    if let v = try bytes("kernel-memory-tcp") { r.memory.kernelTCP = v }
    if let v = try uint("cpu-share") ?? uint("cpu-shares") { r.cpu.shares = v }
    if let v = try int("cpu-quota") { r.cpu.quota = v }
    if let v = try uint("cpu-period") { r.cpu.period = v }
    if let v = try int("cpu-rt-runtime") { r.cpu.realtimeRuntime = v }
    if let v = try uint("cpu-rt-period") { r.cpu.realtimePeriod = v }
    if let v = a.string("cpuset-cpus") { r.cpu.cpus = v }
    if let v = a.string("cpuset-mems") { r.cpu.mems = v }
    if let v = try int("pids-limit") { r.pidsLimit = v }
    if let v = try uint("blkio-weight") {
        guard let w = UInt16(exactly: v), w == 0 || (10...1000).contains(w) else {
            throw ArgError(message: "invalid value \"\(v)\" for flag --blkio-weight: the range is 10..1000")
        }
        r.blockIO.weight = w
    }
    try ctx.runtime.update(id, resources: r)
    return 0
}
