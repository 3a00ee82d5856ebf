import Runtime

func pauseCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: [])
    try ctx.runtime.pause(try oneID(a, "pause"))
    return 0
}

func resumeCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: [])
    try ctx.runtime.resume(try oneID(a, "resume"))
    return 0
}
