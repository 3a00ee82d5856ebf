#if canImport(Glibc)
import Glibc
#endif
import Runtime

/// runc events ID [--stats] [--interval 5s]: one stats event, or a stream of stats and OOM events.
func eventsCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: [FlagSpec("stats"), FlagSpec("interval", value: true)])
    guard a.positionals.count == 1 else { throw ArgError(message: "\"events\" requires exactly 1 argument") }
    let id = a.positionals[0]
    if a.bool("stats") {
        writeStdout(try ctx.runtime.statsEvent(id).serialized() + "\n")
        return 0
    }
    let text = a.string("interval") ?? "5s"
    guard let ms = parseDurationMs(text), ms > 0 else {
        throw ArgError(message: "invalid value \"\(text)\" for flag --interval: expected a duration like 5s or 500ms")
    }
    try ctx.runtime.events(id, intervalMs: Int32(clamping: ms)) { writeStdout($0.serialized() + "\n") }
    return 0
}

/// Go durations: "5s", "500ms", "1m30s", "1.5s".
func parseDurationMs(_ s: String) -> Int64? {
    var total = 0.0
    var rest = Substring(s)
    if rest.isEmpty { return nil }
    while !rest.isEmpty {
        var num = ""
        while let c = rest.first, c.isNumber || c == "." { num.append(c); rest = rest.dropFirst() }
        var unit = ""
        while let c = rest.first, c.isLetter || c == "µ" { unit.append(c); rest = rest.dropFirst() }
        guard let v = Double(num) else { return nil }
        switch unit {
        case "ns": total += v / 1_000_000
        case "us", "µs": total += v / 1000
        case "ms": total += v
        case "s": total += v * 1000
        case "m": total += v * 60_000
        case "h": total += v * 3_600_000
        default: return nil
        }
    }
    return Int64(total.rounded(.up))
}
