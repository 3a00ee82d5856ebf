import LinuxContainer
import Runtime

func featuresCommand(_ ctx: Context) throws -> Int32 {
    _ = try parseArgs(ctx.args, flags: [])
    let features = Spec.featuresJSON(
        seccompEnabled: true, seccompSupportedFlags: Seccomp.supportedFlags,
        annotations: [(key: "io.github.seccomp.libseccomp.version", value: Seccomp.libseccompVersion)])
    writeStdout(features.serialized(pretty: true) + "\n")
    return 0
}
