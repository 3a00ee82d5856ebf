// Docker's flag syntax (pflag): `--flag=value`, `--flag value`, combined short flags (`-it`, `-dit`,
// `-eFOO=bar`), repeated flags, `--` to end flags; for run/create/exec flags stop at the first positional.

struct F {
    var short: String
    var long: String
    /// pflag's type word from the help ("string", "list", "int", …); empty for a bool flag.
    var type: String
    var desc: String
    init(_ short: String, _ long: String, _ type: String, _ desc: String) {
        self.short = short
        self.long = long
        self.type = type
        self.desc = desc
    }
    var isBool: Bool { type.isEmpty }
}

struct Help {
    var usage: String
    var summary: String
    var aliases: String
    var flags: [F]

    var text: String {
        var s = "\nUsage:  \(usage)\n\n\(summary)\n"
        if !aliases.isEmpty { s += "\nAliases:\n  \(aliases)\n" }
        if !flags.isEmpty {
            s += "\nOptions:\n"
            let heads = flags.map { f -> String in
                (f.short.isEmpty ? "      " : "  -\(f.short), ") + "--\(f.long)" + (f.type.isEmpty ? "" : " \(f.type)")
            }
            let width = (heads.map(\.count).max() ?? 0) + 3
            for (h, f) in zip(heads, flags) {
                s += h + String(repeating: " ", count: width - h.count) + f.desc + "\n"
            }
        }
        return s
    }
}

struct Parsed {
    var values: [String: [String]] = [:]
    var positionals: [String] = []

    func has(_ name: String) -> Bool { values[name] != nil }
    func bool(_ name: String) -> Bool { values[name]?.last.map { $0 != "false" } ?? false }
    func string(_ name: String) -> String? { values[name]?.last }
    /// A list flag: every occurrence (comma-separated values are not split; Docker's list flags don't).
    func strings(_ name: String) -> [String] { values[name] ?? [] }
    func int(_ name: String) throws -> Int? {
        guard let s = string(name) else { return nil }
        guard let v = Int(s) else { throw UsageError("invalid argument \"\(s)\" for \"--\(name)\" flag: strconv.ParseInt: parsing \"\(s)\": invalid syntax") }
        return v
    }
}

/// A command-line mistake: printed with "See 'berth VERB --help'.", exit 125 as docker does.
struct UsageError: Error {
    var message: String
    init(_ m: String) { message = m }
}

struct HelpRequested: Error {}

func parseFlags(_ verb: String, _ args: [String], interspersed: Bool = true) throws -> Parsed {
    guard let help = helps[verb] else { throw UsageError("unknown command \(verb)") }
    var p = Parsed()
    var byLong: [String: F] = [:]
    var byShort: [Character: F] = [:]
    for f in help.flags {
        byLong[f.long] = f
        if let c = f.short.first { byShort[c] = f }
    }
    let hIsHelp = byShort["h"] == nil
    var i = 0
    var flagsDone = false
    while i < args.count {
        let a = args[i]
        i += 1
        if flagsDone || a == "-" || !a.hasPrefix("-") {
            p.positionals.append(a)
            if !interspersed { flagsDone = true }
            continue
        }
        if a == "--" { flagsDone = true; continue }
        if a.hasPrefix("--") {
            var name = String(a.dropFirst(2))
            var value: String?
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if name == "help" { throw HelpRequested() }
            guard let f = byLong[name] else { throw UsageError("unknown flag: --\(name)") }
            if f.isBool {
                p.values[f.long, default: []].append(value ?? "true")
            } else {
                if value == nil {
                    guard i < args.count else { throw UsageError("flag needs an argument: --\(name)") }
                    value = args[i]
                    i += 1
                }
                p.values[f.long, default: []].append(value!)
            }
            continue
        }
        // short flags, possibly combined
        var chars = Array(a.dropFirst())
        while !chars.isEmpty {
            let c = chars.removeFirst()
            if c == "h" && hIsHelp { throw HelpRequested() }
            guard let f = byShort[c] else { throw UsageError("unknown shorthand flag: '\(c)' in \(a)") }
            if f.isBool {
                if chars.first == "=" {
                    p.values[f.long, default: []].append(String(chars.dropFirst()))
                    chars = []
                } else {
                    p.values[f.long, default: []].append("true")
                }
            } else {
                var value: String
                if !chars.isEmpty {
                    value = String(chars.first == "=" ? chars.dropFirst() : chars[...])
                    chars = []
                } else {
                    guard i < args.count else { throw UsageError("flag needs an argument: '\(c)' in -\(c)") }
                    value = args[i]
                    i += 1
                }
                p.values[f.long, default: []].append(value)
            }
        }
    }
    return p
}

/// Docker's argument-count checks ("'berth rm' requires at least 1 argument"), exit 1.
func requireArgs(_ verb: String, _ p: Parsed, min: Int, max: Int? = nil) throws {
    let n = p.positionals.count
    let usage = helps[verb]?.usage ?? verb
    func plural(_ k: Int) -> String { k == 1 ? "argument" : "arguments" }
    var what: String?
    if let max, max == min, n != min {
        what = "requires \(min == 1 ? "exactly 1 argument" : "\(min) arguments")"
    } else if n < min {
        what = "requires at least \(min) \(plural(min))"
    } else if let max, n > max {
        what = max == 0 ? "accepts no arguments" : "accepts at most \(max) \(plural(max))"
    }
    if let what {
        throw CLIError("berth: 'berth \(verb)' \(what)\n\nUsage:  \(usage)\n\nSee 'berth \(verb) --help' for more information")
    }
}
