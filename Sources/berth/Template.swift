// The part of Go's text/template that `docker … --format` users write: {{.Field.Sub}}, {{json .}}, pipelines,
// docker's functions (json, join, split, lower, upper, title, truncate, pad, println) and Go's builtins (index,
// len, print(f/ln), eq/ne/lt/le/gt/ge, and/or/not), {{if}}/{{else}}/{{range}}/{{with}}, $variables, {{- -}} trims.

struct TemplateError: Error {
    var message: String
}

final class Template {
    indirect enum Node {
        case text(String)
        case action(Pipeline)
        case ifNode(Pipeline, [Node], [Node])
        case range(Pipeline, [Node], [Node])
        case with(Pipeline, [Node], [Node])
    }

    struct Pipeline {
        var decl: [String] = []
        var cmds: [[Arg]] = []
    }

    indirect enum Arg {
        case dot([String])                  // . or .A.B
        case variable(String, [String])     // $x or $x.A
        case literal(JSON)
        case ident(String)
        case pipe(Pipeline, [String])       // (pipeline).A.B
    }

    let nodes: [Node]

    init(_ source: String) throws(TemplateError) {
        var p = TemplateParser(source)
        nodes = try p.parseList(stopAt: [])
    }

    func execute(_ dot: JSON) throws(TemplateError) -> String {
        var out = ""
        var vars: [(String, JSON)] = [("$", dot)]
        try run(nodes, dot: dot, vars: &vars, out: &out)
        return out
    }

    private func run(_ list: [Node], dot: JSON, vars: inout [(String, JSON)], out: inout String) throws(TemplateError) {
        let mark = vars.count
        defer { vars.removeLast(vars.count - mark) }
        for n in list {
            switch n {
            case .text(let t): out += t
            case .action(let p):
                let v = try eval(p, dot: dot, vars: &vars)
                if p.decl.isEmpty { out += Template.display(v) }
            case .ifNode(let p, let yes, let no):
                let v = try eval(p, dot: dot, vars: &vars)
                try run(Template.truthy(v) ? yes : no, dot: dot, vars: &vars, out: &out)
            case .with(let p, let yes, let no):
                let v = try eval(p, dot: dot, vars: &vars)
                if Template.truthy(v) { try run(yes, dot: v ?? .null, vars: &vars, out: &out) } else {
                    try run(no, dot: dot, vars: &vars, out: &out)
                }
            case .range(let p, let body, let elseBody):
                var q = p
                let decl = q.decl
                q.decl = []
                let v = try eval(q, dot: dot, vars: &vars)
                var items: [(JSON, JSON)] = []
                switch v {
                case .array(let a)?: items = a.enumerated().map { (.int($0.offset), $0.element) }
                case .object(let kv)?: items = kv.sorted { $0.0 < $1.0 }.map { (.string($0.0), $0.1) }
                case .number(let n)?: items = (0..<(Int(n) ?? 0)).map { (.int($0), .int($0)) }
                default: break
                }
                if items.isEmpty { try run(elseBody, dot: dot, vars: &vars, out: &out); continue }
                for (k, e) in items {
                    let m = vars.count
                    if decl.count == 1 { vars.append((decl[0], e)) } else if decl.count == 2 {
                        vars.append((decl[0], k)); vars.append((decl[1], e))
                    }
                    try run(body, dot: e, vars: &vars, out: &out)
                    vars.removeLast(vars.count - m)
                }
            }
        }
    }

    /// nil: no value (a missing key), printed as "<no value>".
    private func eval(_ p: Pipeline, dot: JSON, vars: inout [(String, JSON)]) throws(TemplateError) -> JSON? {
        var last: JSON?? = .none
        for cmd in p.cmds {
            last = .some(try evalCommand(cmd, dot: dot, vars: &vars, piped: last))
        }
        let v = last ?? nil
        if let name = p.decl.first { vars.append((name, v ?? .null)) }
        return v
    }

    private func lookup(_ v: JSON?, _ path: [String]) throws(TemplateError) -> JSON? {
        var cur = v
        for k in path {
            guard let c = cur else { return nil }
            switch c {
            case .object: cur = c[k]
            case .null: return nil
            default: throw TemplateError(message: "can't evaluate field \(k) in type \(Template.typeName(c))")
            }
        }
        return cur
    }

    private func value(_ a: Arg, dot: JSON, vars: inout [(String, JSON)]) throws(TemplateError) -> JSON? {
        switch a {
        case .dot(let path): return try lookup(dot, path)
        case .variable(let name, let path):
            guard let v = vars.last(where: { $0.0 == name })?.1 else {
                throw TemplateError(message: "undefined variable: \(name)")
            }
            return try lookup(v, path)
        case .literal(let j): return j
        case .pipe(let p, let path): return try lookup(try eval(p, dot: dot, vars: &vars), path)
        case .ident(let f): return try call(f, [], dot: dot)
        }
    }

    private func evalCommand(_ cmd: [Arg], dot: JSON, vars: inout [(String, JSON)], piped: JSON??) throws(TemplateError)
        -> JSON? {
        guard let first = cmd.first else { throw TemplateError(message: "empty command") }
        var args: [JSON?] = []
        for a in cmd.dropFirst() { args.append(try value(a, dot: dot, vars: &vars)) }
        if case .some(let p) = piped { args.append(p) }
        switch first {
        case .ident(let f): return try call(f, args, dot: dot)
        case .dot(let path) where !path.isEmpty && !args.isEmpty:
            // a method with arguments: docker's .Label "key"
            let recv = try lookup(dot, Array(path.dropLast()))
            return try method(path.last!, recv, args)
        default:
            if !args.isEmpty { throw TemplateError(message: "can't give argument to non-function") }
            return try value(first, dot: dot, vars: &vars)
        }
    }

    private func method(_ name: String, _ recv: JSON?, _ args: [JSON?]) throws(TemplateError) -> JSON? {
        if name == "Label", let key = args.first??.text {
            if let labels = recv?["__labels"] ?? recv?["Labels"], case .object = labels { return labels[key] ?? .string("") }
            return .string("")
        }
        throw TemplateError(message: "can't call method \(name)")
    }

    private func call(_ f: String, _ args: [JSON?], dot: JSON) throws(TemplateError) -> JSON? {
        func str(_ i: Int) -> String { i < args.count ? Template.display(args[i]) : "" }
        func need(_ n: Int) throws(TemplateError) {
            if args.count < n { throw TemplateError(message: "wrong number of args for \(f): want \(n) got \(args.count)") }
        }
        switch f {
        case "json":
            try need(1)
            var v = args[0] ?? .null
            if case .object(let kv) = v { v = .object(kv.filter { !$0.0.hasPrefix("__") }) }
            return .string(v.serialized())
        case "join":
            try need(2)
            let items = args[0]?.array?.map { Template.display($0) } ?? []
            return .string(items.joined(separator: str(1)))
        case "split":
            try need(2)
            let sep = str(1)
            let s = str(0)
            if sep.isEmpty { return .array(s.map { .string(String($0)) }) }
            return .array(s.components(separatedBy: sep).map { .string($0) })
        case "lower": try need(1); return .string(str(0).lowercased())
        case "upper": try need(1); return .string(str(0).uppercased())
        case "title":
            try need(1)
            var out = ""
            var atStart = true
            for c in str(0) {
                out += atStart ? c.uppercased() : String(c)
                atStart = c == " " || c == "-" || c == "_" || c == "\t"
            }
            return .string(out)
        case "truncate":
            try need(2)
            let n = args[1]?.int ?? 0
            let s = str(0)
            return .string(s.count > n ? String(s.prefix(n)) : s)
        case "pad":
            try need(3)
            return .string(String(repeating: " ", count: max(0, args[1]?.int ?? 0)) + str(0)
                + String(repeating: " ", count: max(0, args[2]?.int ?? 0)))
        case "println": return .string(args.map { Template.display($0) }.joined(separator: " ") + "\n")
        case "print":
            // Go adds spaces between operands when neither is a string
            var out = ""
            for (i, a) in args.enumerated() {
                if i > 0, a?.string == nil, args[i - 1]?.string == nil { out += " " }
                out += Template.display(a)
            }
            return .string(out)
        case "printf":
            try need(1)
            return .string(Template.printf(str(0), Array(args.dropFirst())))
        case "len":
            try need(1)
            switch args[0] {
            case .array(let a)?: return .int(a.count)
            case .object(let o)?: return .int(o.count)
            case .string(let s)?: return .int(s.utf8.count)
            default: throw TemplateError(message: "len of \(Template.display(args[0]))")
            }
        case "index":
            try need(1)
            var cur = args[0]
            for k in args.dropFirst() {
                switch cur {
                case .array(let a)?:
                    guard let i = k?.int, i >= 0, i < a.count else { throw TemplateError(message: "index out of range") }
                    cur = a[i]
                case .object?: cur = cur?[k?.text ?? ""]
                default: cur = nil
                }
            }
            return cur
        case "not": try need(1); return .bool(!Template.truthy(args[0]))
        case "and":
            for a in args where !Template.truthy(a) { return a }
            return args.last ?? nil
        case "or":
            for a in args where Template.truthy(a) { return a }
            return args.last ?? nil
        case "eq":
            try need(2)
            return .bool(args.dropFirst().contains { Template.compare(args[0], $0) == 0 })
        case "ne": try need(2); return .bool(Template.compare(args[0], args[1]) != 0)
        case "lt": try need(2); return .bool(Template.compare(args[0], args[1]) < 0)
        case "le": try need(2); return .bool(Template.compare(args[0], args[1]) <= 0)
        case "gt": try need(2); return .bool(Template.compare(args[0], args[1]) > 0)
        case "ge": try need(2); return .bool(Template.compare(args[0], args[1]) >= 0)
        default: throw TemplateError(message: "function \"\(f)\" not defined")
        }
    }

    static func compare(_ a: JSON?, _ b: JSON?) -> Int {
        if let x = a?.double, let y = b?.double { return x < y ? -1 : (x > y ? 1 : 0) }
        let x = display(a), y = display(b)
        return x < y ? -1 : (x > y ? 1 : 0)
    }

    static func truthy(_ v: JSON?) -> Bool {
        switch v {
        case nil, .null?: return false
        case .bool(let b)?: return b
        case .string(let s)?: return !s.isEmpty
        case .number(let n)?: return (Double(n) ?? 0) != 0
        case .array(let a)?: return !a.isEmpty
        case .object(let o)?: return !o.isEmpty
        }
    }

    static func typeName(_ v: JSON) -> String {
        switch v {
        case .string: return "string"
        case .number: return "float64"
        case .bool: return "bool"
        case .array: return "[]interface {}"
        default: return "interface {}"
        }
    }

    /// fmt's %v of a value decoded from JSON.
    static func display(_ v: JSON?) -> String {
        switch v {
        case nil, .null?: return "<no value>"
        case .string(let s)?: return s
        case .number(let n)?: return n
        case .bool(let b)?: return b ? "true" : "false"
        case .array(let a)?: return "[" + a.map { display($0) }.joined(separator: " ") + "]"
        case .object(let kv)?:
            return "map[" + kv.filter { !$0.0.hasPrefix("__") }.sorted { $0.0 < $1.0 }
                .map { "\($0.0):\(display($0.1))" }.joined(separator: " ") + "]"
        }
    }

    static func printf(_ format: String, _ args: [JSON?]) -> String {
        var out = ""
        var it = format.makeIterator()
        var ai = 0
        while let c = it.next() {
            guard c == "%" else { out.append(c); continue }
            guard let verb = it.next() else { out += "%!(NOVERB)"; break }
            if verb == "%" { out += "%"; continue }
            let a: JSON? = ai < args.count ? args[ai] : nil
            ai += 1
            switch verb {
            case "q": out += JSON.quoted(display(a))
            case "d": out += a?.int.map(String.init) ?? display(a)
            default: out += display(a)
            }
        }
        return out
    }
}

private struct TemplateParser {
    let s: [Character]
    var i = 0
    /// trim leading whitespace of the next text node (after a `-}}`)
    var trimNext = false

    init(_ source: String) { s = Array(source) }

    func at(_ lit: String, _ pos: Int) -> Bool {
        let l = Array(lit)
        guard pos + l.count <= s.count else { return false }
        return Array(s[pos..<pos + l.count]) == l
    }

    /// Parses nodes until one of the keywords in `stopAt` (returned in `stopped`).
    mutating func parseList(stopAt: Set<String>) throws(TemplateError) -> [Template.Node] {
        let (nodes, _) = try parseUntil(stopAt)
        return nodes
    }

    var lastStop: (String, Template.Pipeline?)?

    mutating func parseUntil(_ stopAt: Set<String>) throws(TemplateError) -> ([Template.Node], String?) {
        var nodes: [Template.Node] = []
        while i < s.count {
            // text up to {{
            var text = ""
            while i < s.count && !at("{{", i) { text.append(s[i]); i += 1 }
            if trimNext { text = String(text.drop { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }); trimNext = false }
            if i >= s.count { if !text.isEmpty { nodes.append(.text(text)) }; break }
            i += 2
            if i < s.count && s[i] == "-" && i + 1 < s.count && (s[i + 1] == " " || s[i + 1] == "\t" || s[i + 1] == "\n") {
                while let l = text.last, l == " " || l == "\t" || l == "\n" || l == "\r" { text.removeLast() }
                i += 1
            }
            if !text.isEmpty { nodes.append(.text(text)) }
            // the action's text up to }} (quotes respected)
            var body = ""
            var quote: Character?
            while i < s.count {
                if quote == nil && at("}}", i) { break }
                if quote == nil && s[i] == "-" && at(" -}}", i - 1) && at("-}}", i) { break }
                let c = s[i]
                if let q = quote {
                    if c == "\\" && q == "\"" && i + 1 < s.count { body.append(c); body.append(s[i + 1]); i += 2; continue }
                    if c == q { quote = nil }
                } else if c == "\"" || c == "`" { quote = c }
                body.append(c)
                i += 1
            }
            if i >= s.count { throw TemplateError(message: "unclosed action") }
            if s[i] == "-" { trimNext = true; i += 3 } else { i += 2 }
            var toks = try tokenize(body)
            if toks.first == "/*" || body.trimmed.hasPrefix("/*") { continue }  // comment
            guard let kw = toks.first else { throw TemplateError(message: "missing value for command") }
            switch kw {
            case "if", "with", "range":
                toks.removeFirst()
                let p = try parsePipeline(toks)
                let (yes, stop) = try parseUntil(["else", "end"])
                var no: [Template.Node] = []
                if stop == "else" {
                    if let (_, elsePipe) = lastStop, let ep = elsePipe {
                        // else if …: parse the rest as a nested if that shares our end
                        let (y2, stop2) = try parseUntil(["else", "end"])
                        var n2: [Template.Node] = []
                        if stop2 == "else" { (n2, _) = try parseUntil(["end"]) }
                        no = [.ifNode(ep, y2, n2)]
                    } else {
                        (no, _) = try parseUntil(["end"])
                    }
                }
                switch kw {
                case "if": nodes.append(.ifNode(p, yes, no))
                case "with": nodes.append(.with(p, yes, no))
                default: nodes.append(.range(p, yes, no))
                }
            case "else", "end":
                guard stopAt.contains(kw) else { throw TemplateError(message: "unexpected {{\(kw)}}") }
                lastStop = (kw, nil)
                if kw == "else" && toks.count > 1 && toks[1] == "if" {
                    lastStop = (kw, try parsePipeline(Array(toks.dropFirst(2))))
                }
                return (nodes, kw)
            default:
                nodes.append(.action(try parsePipeline(toks)))
            }
        }
        return (nodes, nil)
    }

    func tokenize(_ body: String) throws(TemplateError) -> [String] {
        var toks: [String] = []
        let c = Array(body)
        var j = 0
        while j < c.count {
            let ch = c[j]
            if ch == " " || ch == "\t" || ch == "\n" || ch == "\r" { j += 1; continue }
            if ch == "(" || ch == ")" || ch == "|" || ch == "," { toks.append(String(ch)); j += 1; continue }
            if ch == ":" && j + 1 < c.count && c[j + 1] == "=" { toks.append(":="); j += 2; continue }
            if ch == "=" { toks.append("="); j += 1; continue }
            if ch == "\"" || ch == "`" {
                var t = String(ch)
                j += 1
                while j < c.count && c[j] != ch {
                    if ch == "\"" && c[j] == "\\" && j + 1 < c.count { t.append(c[j]); j += 1 }
                    t.append(c[j]); j += 1
                }
                if j >= c.count { throw TemplateError(message: "unterminated quoted string") }
                t.append(ch)
                j += 1
                toks.append(t)
                continue
            }
            var t = ""
            while j < c.count, !" \t\n\r()|,\"`".contains(c[j]), !(c[j] == ":" && j + 1 < c.count && c[j + 1] == "=") {
                t.append(c[j]); j += 1
            }
            toks.append(t)
        }
        return toks
    }

    func parsePipeline(_ toks0: [String]) throws(TemplateError) -> Template.Pipeline {
        var toks = toks0
        var p = Template.Pipeline()
        // $x := … or $k, $v := …
        if let d = toks.firstIndex(where: { $0 == ":=" || $0 == "=" }), toks[..<d].allSatisfy({ $0.hasPrefix("$") || $0 == "," }) {
            p.decl = toks[..<d].filter { $0 != "," }
            toks = Array(toks[(d + 1)...])
        }
        var k = 0
        p.cmds = try parseCommands(toks, &k, closing: false)
        return p
    }

    func parseCommands(_ toks: [String], _ k: inout Int, closing: Bool) throws(TemplateError) -> [[Template.Arg]] {
        var cmds: [[Template.Arg]] = []
        var cur: [Template.Arg] = []
        while k < toks.count {
            let t = toks[k]
            k += 1
            if t == "|" {
                if cur.isEmpty { throw TemplateError(message: "missing command before |") }
                cmds.append(cur); cur = []
                continue
            }
            if t == ")" {
                if !closing { throw TemplateError(message: "unexpected )") }
                break
            }
            if t == "(" {
                let inner = try parseCommands(toks, &k, closing: true)
                var path: [String] = []
                // (…).Field
                if k < toks.count, toks[k].hasPrefix(".") {
                    path = toks[k].split(separator: ".").map(String.init)
                    k += 1
                }
                cur.append(.pipe(Template.Pipeline(decl: [], cmds: inner), path))
                continue
            }
            cur.append(try arg(t))
        }
        if !cur.isEmpty { cmds.append(cur) }
        if cmds.isEmpty { throw TemplateError(message: "missing value for command") }
        return cmds
    }

    func arg(_ t: String) throws(TemplateError) -> Template.Arg {
        if t == "." { return .dot([]) }
        if t.hasPrefix(".") { return .dot(t.split(separator: ".").map(String.init)) }
        if t.hasPrefix("$") {
            let parts = t.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            return .variable(parts[0], Array(parts.dropFirst()))
        }
        if t.hasPrefix("\"") {
            var out = ""
            var it = t.dropFirst().dropLast().makeIterator()
            while let c = it.next() {
                if c == "\\", let e = it.next() {
                    switch e {
                    case "n": out += "\n"
                    case "t": out += "\t"
                    case "\\": out += "\\"
                    case "\"": out += "\""
                    default: out.append("\\"); out.append(e)
                    }
                } else { out.append(c) }
            }
            return .literal(.string(out))
        }
        if t.hasPrefix("`") { return .literal(.string(String(t.dropFirst().dropLast()))) }
        if t == "true" { return .literal(.bool(true)) }
        if t == "false" { return .literal(.bool(false)) }
        if t == "nil" { return .literal(.null) }
        if let f = t.first, f.isNumber || f == "-" { return .literal(.number(t)) }
        return .ident(t)
    }
}
