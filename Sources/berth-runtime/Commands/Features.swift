import Runtime

func featuresCommand(_ ctx: Context) throws -> Int32 {
    _ = try parseArgs(ctx.args, flags: [])
    writeStdout(Spec.featuresJSON(seccompEnabled: false).serialized(pretty: true) + "\n")
    return 0
}
