import Runtime

func stateCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: [])
    let j = try ctx.runtime.state(try oneID(a, "state"))
    writeStdout(j.serialized(pretty: true) + "\n")
    return 0
}
