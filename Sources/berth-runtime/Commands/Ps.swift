#if canImport(Glibc)
import Glibc
#endif
import Runtime

func psCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: [FlagSpec("format", "f", value: true)])
    guard let id = a.positionals.first else { throw ArgError(message: "\"ps\" requires a minimum of 1 argument") }
    let pids = try ctx.runtime.pids(id)
    switch a.string("format") ?? "table" {
    case "json":
        writeStdout("[" + pids.map(String.init).joined(separator: ",") + "]\n")
    case "table":
        // like runc: `ps` (default -ef) filtered to the container's pids
        let psArgs = a.positionals.count > 1 ? Array(a.positionals.dropFirst()) : ["-ef"]
        writeStdout(try psTable(psArgs, pids: Set(pids)))
    case let f:
        throw ArgError(message: "invalid format option \"\(f)\"")
    }
    return 0
}

func psTable(_ args: [String], pids: Set<Int32>) throws -> String {
    let out = try captureProcess(["ps"] + args)
    let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
    guard let header = lines.first else { return "" }
    let cols = header.split(separator: " ")
    guard let pidCol = cols.firstIndex(of: "PID") else { throw ArgError(message: "ps: no PID column in its output") }
    var result = String(header) + "\n"
    for line in lines.dropFirst() where !line.isEmpty {
        let f = line.split(separator: " ")
        if pidCol < f.count, let p = Int32(f[pidCol]), pids.contains(p) { result += line + "\n" }
    }
    return result
}
