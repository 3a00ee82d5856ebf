import Runtime

func startCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: [])
    try ctx.runtime.start(try oneID(a, "start"))
    return 0
}
