#if canImport(Glibc)
import Glibc
#endif
@_exported import OCI

func getenvString(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

/// Runs a program (PATH lookup) and returns its stdout.
func captureProcess(_ argv: [String]) throws -> String {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { throw ArgError(message: "pipe: \(String(cString: strerror(errno)))") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for p in cargs { free(p) } }
    var pid: pid_t = 0
    let r = posix_spawnp(&pid, argv[0], &actions, nil, &cargs, environ)
    close(fds[1])
    if r != 0 {
        close(fds[0])
        throw ArgError(message: "run \(argv[0]): \(String(cString: strerror(r)))")
    }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    close(fds[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return String(decoding: out, as: UTF8.self)
}
