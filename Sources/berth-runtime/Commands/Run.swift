import Runtime

func runCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: createFlags + [FlagSpec("detach", "d"), FlagSpec("keep")])
    let id = try oneID(a, "run")
    return try ctx.runtime.run(id, options: try createOptions(a), detach: a.bool("detach"), keep: a.bool("keep"))
}
