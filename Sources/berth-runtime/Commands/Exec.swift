import Runtime

let execFlags = [
    FlagSpec("console-socket", value: true), FlagSpec("cwd", value: true), FlagSpec("env", "e", value: true, repeatable: true),
    FlagSpec("tty", "t"), FlagSpec("user", "u", value: true), FlagSpec("additional-gids", "g", value: true, repeatable: true),
    FlagSpec("process", "p", value: true), FlagSpec("detach", "d"), FlagSpec("pid-file", value: true),
    FlagSpec("process-label", value: true), FlagSpec("apparmor", value: true), FlagSpec("no-new-privs"),
    FlagSpec("cap", "c", value: true, repeatable: true), FlagSpec("preserve-fds", value: true),
    FlagSpec("cgroup", value: true, repeatable: true), FlagSpec("ignore-paused"),
]

func execCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: execFlags, stopAfterPositionals: 1)
    guard let id = a.positionals.first else { throw ArgError(message: "\"exec\" requires a minimum of 1 argument") }
    var o = ExecOptions()
    o.processFile = a.string("process")
    o.args = Array(a.positionals.dropFirst())
    if o.processFile == nil && o.args.isEmpty { throw ArgError(message: "\"exec\" requires a minimum of 2 arguments") }
    o.env = a.strings("env")
    o.cwd = a.string("cwd")
    o.user = a.string("user")
    for g in a.strings("additional-gids") {
        guard let v = UInt32(g) else { throw ArgError(message: "invalid --additional-gids value \"\(g)\"") }
        o.additionalGids.append(v)
    }
    o.caps = a.strings("cap")
    if a.values["tty"] != nil { o.tty = a.bool("tty") }
    o.noNewPrivs = a.bool("no-new-privs")
    o.detach = a.bool("detach")
    o.pidFile = a.string("pid-file")
    o.consoleSocket = a.string("console-socket")
    o.preserveFds = (try a.int("preserve-fds") ?? 0) + listenFds()
    if let l = a.string("process-label"), !l.isEmpty { throw ArgError(message: "exec --process-label: SELinux is not enabled on this host") }
    if let l = a.string("apparmor"), !l.isEmpty { throw ArgError(message: "exec --apparmor: AppArmor profiles are not supported by this build") }
    if !a.strings("cgroup").isEmpty { throw ArgError(message: "exec --cgroup: sub-cgroups for exec are not supported yet") }
    return try ctx.runtime.exec(id, o)
}
