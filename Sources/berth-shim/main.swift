// berth-shim: one per started container (docs/shim.md). Detaches, runs `RUNTIME create`, holds the
// container's stdio and logs, serves STATE/shim.sock, reaps, records the exit, cleans up, exits.
#if canImport(Glibc)
import Glibc
#endif
import CLinux

var readyFD: Int32 = -1
let opts: Options
do throws(ShimError) {
    opts = try Options.parse(Array(CommandLine.arguments.dropFirst()), readyFD: &readyFD)
} catch {
    writeAll(2, "berth-shim: \(error.message)\n")
    if readyFD >= 0 { writeAll(readyFD, "error " + error.message.split(separator: "\n").joined(separator: " ") + "\n") }
    exit(2)
}
guard fcntl(opts.readyFD, F_GETFD) >= 0 else {
    writeAll(2, "berth-shim: --ready-fd \(opts.readyFD) is not open\n")
    exit(2)
}
guard let runtime = lookPath(opts.runtime) else {
    writeAll(opts.readyFD, "error runtime \(opts.runtime) not found\n")
    exit(2)
}
if bl_shim_daemonize(opts.readyFD) != 0 {
    writeAll(opts.readyFD, "error detach: \(errnoText())\n")
    exit(1)
}
_ = chdir("/")
Shim(opts: opts, runtimePath: runtime).run()
