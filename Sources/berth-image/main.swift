// berth-image: the Images library from the command line, with Docker's verbs for images (pull, push,
// images, inspect, history, tag, rmi, save, load, import) plus the store's own (gc, df, prepare, mounts,
// remove-snapshot). berthd serves the same library over the Docker API; this tool works without a daemon.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Images
import OCI

let usage = """
usage: berth-image [--root DIR] [--driver overlay|copy] [--config daemon.json] [--insecure-registry HOST]...
                   [--max-concurrent-downloads N] COMMAND

  pull [--platform OS/ARCH[/VARIANT]] [-q] REF    pull and unpack an image
  push [--chunk-size BYTES] REF                   push an image to the registry its name names
  images [-q] [--digests]                         list images
  inspect REF                                     the image's record, manifest and config as JSON
  history REF                                     the config's history
  tag SOURCE TARGET                               another name for an image
  rmi [-f] REF...                                 remove names (content goes at the next gc)
  save -o FILE REF...                             an OCI image-layout tar that `docker load` also reads
  load -i FILE                                    load an OCI layout tar or a `docker save` archive
  import FILE|- REF                               a rootfs tarball as a one-layer image
  gc                                              remove unreferenced blobs and snapshots
  df                                              disk use
  prepare [--read-only] KEY REF                   a container rootfs snapshot; prints its mounts
  mounts KEY                                      the mounts of a snapshot
  remove-snapshot KEY                             remove a container rootfs snapshot

The store is at /var/lib/berth unless --root says otherwise; registries are read from --config
(Docker's daemon.json keys registry-mirrors and insecure-registries), credentials from ~/.docker/config.json.
"""

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data(("berth-image: " + message + "\n").utf8))
    exit(code)
}

var args = Array(CommandLine.arguments.dropFirst())
var options = ImageService.Options()
var configPath: String?
var insecure: [String] = []

@MainActor
func take(_ flag: String) -> String {
    guard !args.isEmpty else { fail("\(flag) needs a value") }
    return args.removeFirst()
}

while let a = args.first, a.hasPrefix("-") {
    args.removeFirst()
    switch a {
    case "--root": options.root = take(a)
    case "--driver":
        let v = take(a)
        guard let d = Snapshotter.Driver(rawValue: v) else { fail("--driver: \(v): expected overlay or copy") }
        options.driver = d
    case "--config": configPath = take(a)
    case "--insecure-registry": insecure.append(take(a))
    case "--max-concurrent-downloads":
        let v = take(a)
        guard let n = Int(v), n >= 1 else { fail("--max-concurrent-downloads: \(v): expected a number ≥ 1") }
        options.maxConcurrentDownloads = n
    case "-h", "--help":
        print(usage)
        exit(0)
    default: fail("unknown option \(a)\n\(usage)", code: 2)
    }
}

guard !args.isEmpty else { fail(usage, code: 2) }
let command = args.removeFirst()

@MainActor
func flag(_ names: String...) -> Bool {
    if let i = args.firstIndex(where: { names.contains($0) }) {
        args.remove(at: i)
        return true
    }
    return false
}

@MainActor
func value(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name) else { return nil }
    guard i + 1 < args.count else { fail("\(name) needs a value") }
    let v = args[i + 1]
    args.removeSubrange(i...(i + 1))
    return v
}

@MainActor
func positional(_ what: String) -> String {
    guard !args.isEmpty else { fail("\(command): missing \(what)", code: 2) }
    return args.removeFirst()
}

func human(_ n: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var v = Double(n)
    var u = 0
    while v >= 1000 && u < units.count - 1 {
        v /= 1000
        u += 1
    }
    return u == 0 ? "\(n)B" : String(format: "%.3g%@", v, units[u])
}

/// Progress as Docker prints it when not on a terminal: one line per layer state change.
final class ProgressPrinter: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var last: [String: ProgressEvent.State] = [:]
    let quiet: Bool
    let tty = isatty(2) != 0
    init(quiet: Bool) { self.quiet = quiet }

    func handle(_ e: ProgressEvent) {
        guard !quiet else { return }
        lock.withLock {
            if e.state == .downloading || e.state == .pushing {
                guard tty else { return }
                let pct = e.total > 0 ? Int(Double(e.current) * 100 / Double(e.total)) : 0
                FileHandle.standardError.write(Data("\r\(e.id): \(e.dockerStatus) \(human(e.current))/\(human(e.total)) \(pct)%\u{1b}[K".utf8))
                return
            }
            if last[e.id] == e.state { return }
            last[e.id] = e.state
            let text: String
            switch e.state {
            case .resolving: text = "\(e.id): Pulling from \(e.message ?? "")"
            case .pushed where e.message == "mounted": text = "\(e.id): Mounted from another repository"
            default: text = "\(e.id): \(e.dockerStatus)"
            }
            FileHandle.standardError.write(Data(((tty ? "\r" : "") + text + (tty ? "\u{1b}[K" : "") + "\n").utf8))
        }
    }
}

func encodeJSON<T: Encodable>(_ v: T) -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    e.dateEncodingStrategy = .iso8601
    return (try? e.encode(v)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
}

@MainActor
func run() async throws {
    let base = try configPath.map { try RegistryConfig.load(daemonJSON: $0) } ?? RegistryConfig()
    options.registry = insecure.isEmpty ? base
        : try RegistryConfig(mirrors: base.mirrors, insecureRegistries: base.insecureRegistries + insecure)
    try await execute(try ImageService(options))
}

@MainActor
func execute(_ service: ImageService) async throws {

    switch command {
    case "pull":
        let platform = try value("--platform").map { try Platform(parsing: $0) }
        let quiet = flag("-q", "--quiet")
        let ref = positional("REF")
        let printer = ProgressPrinter(quiet: quiet)
        let r = try await service.pull(ref, platform: platform, progress: { printer.handle($0) })
        if !quiet {
            FileHandle.standardError.write(Data("Digest: \(r.target.digest)\nStatus: Downloaded \(r.name) (\(r.reused) layer(s) already here, \(human(r.bytesDownloaded)) downloaded)\n".utf8))
        }
        print(r.name)
    case "push":
        let chunk = value("--chunk-size").map { Int($0) ?? -1 }
        if let chunk, chunk <= 0 { fail("--chunk-size: expected a positive number of bytes") }
        let ref = positional("REF")
        let printer = ProgressPrinter(quiet: flag("-q", "--quiet"))
        let d = try await service.push(ref, chunkSize: chunk, progress: { printer.handle($0) })
        print("\(ref): digest: \(d)")
    case "images", "ls", "list":
        let quiet = flag("-q", "--quiet")
        let digests = flag("--digests")
        let list = try service.list()
        if quiet {
            for s in list { print(s.id.shortID) }
            return
        }
        print("REPOSITORY".padding(toLength: 40, withPad: " ", startingAt: 0) + "TAG".padding(toLength: 16, withPad: " ", startingAt: 0)
            + (digests ? "DIGEST".padding(toLength: 73, withPad: " ", startingAt: 0) : "") + "IMAGE ID      SIZE")
        for s in list {
            let names = s.names.isEmpty ? ["<none>:<none>"] : s.names
            for n in names {
                let ref = try? Reference(parsing: n)
                let repo = ref?.familiarName ?? n
                let tag = ref?.tag ?? "<none>"
                let dg = s.repoDigests.first.map { String($0.split(separator: "@").last ?? "") } ?? "<none>"
                print(repo.padding(toLength: 40, withPad: " ", startingAt: 0) + tag.padding(toLength: 16, withPad: " ", startingAt: 0)
                    + (digests ? dg.padding(toLength: 73, withPad: " ", startingAt: 0) : "") + s.id.shortID + "  " + human(s.unpackedSize))
            }
        }
    case "inspect":
        let s = try service.inspect(positional("REF"))
        struct Out: Encodable {
            var Id: String
            var RepoTags: [String]
            var RepoDigests: [String]
            var Target: Descriptor
            var Manifest: Descriptor
            var Platform: String
            var Created: String?
            var ContentSize: Int64
            var Size: Int64
            var ChainID: String?
            var Config: ImageConfig
            var Layers: [Descriptor]
        }
        print(encodeJSON(Out(Id: s.id.description, RepoTags: s.names.map { (try? Reference(parsing: $0))?.familiarString ?? $0 },
                             RepoDigests: s.repoDigests, Target: s.target, Manifest: s.manifest, Platform: s.platform.description,
                             Created: s.created, ContentSize: s.contentSize, Size: s.unpackedSize,
                             ChainID: s.chainID?.description, Config: s.config, Layers: s.layers)))
    case "history":
        let s = try service.inspect(positional("REF"))
        print("CREATED".padding(toLength: 28, withPad: " ", startingAt: 0) + "CREATED BY")
        for h in (s.config.history ?? []).reversed() {
            print((h.created ?? "").padding(toLength: 28, withPad: " ", startingAt: 0) + (h.created_by ?? "") + (h.empty_layer == true ? "" : ""))
        }
    case "tag":
        let src = positional("SOURCE"), dst = positional("TARGET")
        try service.tag(src, dst)
    case "rmi":
        let force = flag("-f", "--force")
        guard !args.isEmpty else { fail("rmi: missing REF", code: 2) }
        for ref in args {
            for n in try service.remove(ref, force: force) { print("Untagged: \((try? Reference(parsing: n))?.familiarString ?? n)") }
        }
        let g = try await service.gc()
        if g.blobsRemoved + g.snapshotsRemoved > 0 { print("Deleted: \(g.blobsRemoved) blob(s), \(g.snapshotsRemoved) snapshot(s), \(human(g.bytesFreed))") }
    case "save":
        guard let out = value("-o") ?? value("--output") else { fail("save: -o FILE is required (berth-image does not write archives to a terminal)") }
        guard !args.isEmpty else { fail("save: missing REF", code: 2) }
        try service.save(args, to: out)
    case "load":
        guard let input = value("-i") ?? value("--input") else { fail("load: -i FILE is required") }
        for n in try await service.load(from: input) { print("Loaded image: \((try? Reference(parsing: n))?.familiarString ?? n)") }
    case "import":
        let file = positional("FILE"), ref = positional("REF")
        let r = try await service.importRootfs(file == "-" ? "/dev/stdin" : file, as: ref)
        print(r.id)
    case "gc":
        let g = try await service.gc()
        print("removed \(g.blobsRemoved) blob(s) and \(g.snapshotsRemoved) snapshot(s), freed \(human(g.bytesFreed))")
    case "df":
        let d = try service.diskUsage()
        print("images: \(d.images)\ncontent: \(human(d.content))\nsnapshots: \(human(d.snapshots))")
    case "prepare":
        let ro = flag("--read-only")
        let key = positional("KEY"), ref = positional("REF")
        print(encodeJSON(try service.prepareRootfs(key: key, image: ref, readOnly: ro)))
    case "mounts":
        print(encodeJSON(try service.snapshots.mounts(key: positional("KEY"))))
    case "remove-snapshot":
        try service.snapshots.remove(key: positional("KEY"))
    default:
        fail("unknown command \(command)\n\(usage)", code: 2)
    }
    if !args.isEmpty { fail("\(command): unexpected arguments: \(args.joined(separator: " "))", code: 2) }
}

do {
    try await run()
} catch {
    FileHandle.standardError.write(Data("berth-image: \(error)\n".utf8))
    exit(1)
}
exit(0)
