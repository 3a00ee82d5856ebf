#if canImport(Glibc)
import Glibc
#endif
import LinuxContainer
import Runtime

func specCommand(_ ctx: Context) throws -> Int32 {
    let a = try parseArgs(ctx.args, flags: [FlagSpec("bundle", "b", value: true), FlagSpec("rootless")])
    let bundle = a.string("bundle") ?? "."
    let path = bundle + "/config.json"
    if access(path, F_OK) == 0 { throw ArgError(message: "File \(path) exists. Remove it first") }
    let j = Spec.defaultTemplate(rootless: a.bool("rootless"), hostUID: geteuid(), hostGID: getegid())
    do { try FS.writeAtomically(j.serializedBytes(pretty: true), to: path, mode: 0o666 & ~currentUmask()) } catch {
        throw RuntimeError(.system, "write \(path): \(error.message)")
    }
    return 0
}

func currentUmask() -> mode_t {
    let m = umask(0)
    umask(m)
    return m
}
