import Runtime

func deleteCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: [FlagSpec("force", "f")])
    guard !a.positionals.isEmpty else { throw ArgError(message: "\"delete\" requires a minimum of 1 argument") }
    for id in a.positionals { try ctx.runtime.delete(id, force: a.bool("force")) }
    return 0
}
