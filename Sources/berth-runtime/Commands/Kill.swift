import CLinux
import Runtime

func killCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: [FlagSpec("all", "a")])
    guard (1...2).contains(a.positionals.count) else {
        throw ArgError(message: "\"kill\" requires a minimum of 1 and a maximum of 2 arguments")
    }
    let name = a.positionals.count == 2 ? a.positionals[1] : "SIGTERM"
    let sig = bl_signal_number(name)
    if sig <= 0 { throw ArgError(message: "unknown signal \"\(name)\"") }
    try ctx.runtime.kill(a.positionals[0], signal: sig, all: a.bool("all"))
    return 0
}
