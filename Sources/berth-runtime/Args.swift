// runc's command line (urfave/cli style): `--flag value`, `--flag=value`, `-flag`, short aliases,
// booleans with an optional `=true|false`.
struct ArgError: Error { let message: String }

struct FlagSpec {
    let names: [String]      // "bundle", "b"
    let takesValue: Bool
    let repeatable: Bool
    init(_ names: String..., value: Bool = false, repeatable: Bool = false) {
        self.names = names
        self.takesValue = value
        self.repeatable = repeatable
    }
}

struct ParsedArgs {
    var values: [String: [String]] = [:]
    var positionals: [String] = []

    func string(_ name: String) -> String? { values[name]?.last }
    func strings(_ name: String) -> [String] { values[name] ?? [] }
    func bool(_ name: String) -> Bool {
        guard let v = values[name]?.last else { return false }
        return v != "false" && v != "0"
    }
    func int(_ name: String) throws(ArgError) -> Int? {
        guard let v = string(name) else { return nil }
        guard let i = Int(v) else { throw ArgError(message: "invalid value \"\(v)\" for flag --\(name)") }
        return i
    }
}

/// Parses `args`. With `stopAtPositional`, everything after the first `stopAfter` positionals is
/// taken verbatim (exec's command).
func parseArgs(_ args: [String], flags: [FlagSpec], stopAfterPositionals: Int? = nil) throws(ArgError) -> ParsedArgs {
    var out = ParsedArgs()
    var i = 0
    while i < args.count {
        let a = args[i]
        if let stop = stopAfterPositionals, out.positionals.count >= stop {
            out.positionals.append(contentsOf: args[i...])
            break
        }
        if a == "--" {
            out.positionals.append(contentsOf: args[(i + 1)...])
            break
        }
        if a.hasPrefix("-") && a.count > 1 {
            var name = String(a.drop(while: { $0 == "-" }))
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let spec = flags.first(where: { $0.names.contains(name) }) else {
                throw ArgError(message: "flag provided but not defined: -\(name)")
            }
            let key = spec.names[0]
            if spec.takesValue {
                let v: String
                if let inl = inline { v = inl } else {
                    i += 1
                    guard i < args.count else { throw ArgError(message: "flag needs an argument: -\(name)") }
                    v = args[i]
                }
                if spec.repeatable { out.values[key, default: []].append(v) } else { out.values[key] = [v] }
            } else {
                out.values[key] = [inline ?? "true"]
            }
        } else {
            out.positionals.append(a)
        }
        i += 1
    }
    return out
}
