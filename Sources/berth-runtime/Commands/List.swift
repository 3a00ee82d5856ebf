import Runtime

func listCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: [FlagSpec("format", "f", value: true), FlagSpec("quiet", "q")])
    let items = ctx.runtime.list()
    if a.bool("quiet") {
        for j in items { writeStdout((j["id"]?.stringValue ?? "") + "\n") }
        return 0
    }
    switch a.string("format") ?? "table" {
    case "json":
        writeStdout(JSON.array(items).serialized() + "\n")
    case "table":
        let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        let rows = items.map { j in
            [j["id"]?.stringValue ?? "", j["pid"]?.numberText ?? "0", j["status"]?.stringValue ?? "",
             j["bundle"]?.stringValue ?? "", j["created"]?.stringValue ?? "", j["owner"]?.stringValue ?? ""]
        }
        writeStdout(table([header] + rows))
    case let f:
        throw ArgError(message: "invalid format option \"\(f)\"")
    }
    return 0
}

/// Go's tabwriter as runc uses it: columns padded to the widest cell plus 3 spaces.
func table(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = [Int](repeating: 0, count: first.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    var out = ""
    for r in rows {
        for (i, c) in r.enumerated() {
            out += c
            if i < r.count - 1 { out += String(repeating: " ", count: widths[i] - c.count + 3) }
        }
        out += "\n"
    }
    return out
}
