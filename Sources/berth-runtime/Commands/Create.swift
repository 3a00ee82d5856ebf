import Runtime

let createFlags = [
    FlagSpec("bundle", "b", value: true), FlagSpec("pid-file", value: true), FlagSpec("console-socket", value: true),
    FlagSpec("no-pivot"), FlagSpec("no-new-keyring"), FlagSpec("preserve-fds", value: true),
    FlagSpec("pidfd-socket", value: true),
]

func createOptions(_ a: ParsedArgs) throws -> CreateOptions {
    var o = CreateOptions()
    o.bundle = a.string("bundle") ?? "."
    o.pidFile = a.string("pid-file")
    o.consoleSocket = a.string("console-socket")
    o.noPivot = a.bool("no-pivot")
    o.noNewKeyring = a.bool("no-new-keyring")
    o.preserveFds = try a.int("preserve-fds") ?? 0
    if o.preserveFds < 0 { throw ArgError(message: "--preserve-fds must not be negative") }
    o.preserveFds += listenFds()
    return o
}

/// LISTEN_FDS passed by systemd-style socket activation are preserved too (runc does the same).
func listenFds() -> Int {
    guard let v = getenvString("LISTEN_FDS"), let n = Int(v), n > 0 else { return 0 }
    return n
}

func oneID(_ a: ParsedArgs, _ cmd: String) throws -> String {
    guard a.positionals.count == 1 else {
        throw ArgError(message: "\"\(cmd)\" requires exactly 1 argument(s)")
    }
    return a.positionals[0]
}

func createCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: createFlags)
    let id = try oneID(a, "create")
    try ctx.runtime.create(id: id, options: try createOptions(a))
    return 0
}
