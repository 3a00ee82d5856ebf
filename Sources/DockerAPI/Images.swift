import Engine
import Foundation
import Glibc
import Images
import NIOCore
import OCI

extension Router {
    /// /images/... — names may contain slashes, so the verb is the last component.
    func images(_ req: Request, _ res: Responder, _ p: [String]) async throws {
        let m = req.method
        if p.count == 1 {
            switch (m, p[0]) {
            case (.GET, "json"):
                let list = try engine.images.list()
                let cs = await engine.list()
                let f = try Filters(req.q("filters"))
                let rows = list.filter { s in
                    if let r = f["reference"], !r.contains(where: { pat in s.names.contains { Router.refMatch($0, pat) } }) { return false }
                    if let d = f["dangling"], d.contains("true"), !s.names.isEmpty { return false }
                    if let ls = f["label"], !ls.allSatisfy({ Filters.matchLabel(s.config.config?.Labels ?? [:], $0) }) { return false }
                    return true
                }
                await res.json(rows.map { s in Translate.imageSummary(s, containers: cs.filter { $0.imageID == s.id.description }.count) })
                return
            case (.POST, "create"): try await pull(req, res); return
            case (.POST, "load"): try await load(req, res); return
            case (.GET, "get"): try await save(req, res, req.query["names"] ?? []); return
            case (.POST, "prune"):
                let f = try Filters(req.q("filters"))
                let all = f["dangling"]?.contains("false") ?? false
                let used = Set(await engine.list().map(\.imageID))
                var deleted: [[String: String]] = []
                for s in try engine.images.list() where !used.contains(s.id.description) && (all || s.names.isEmpty) {
                    for n in s.names { _ = try? engine.images.remove(n, force: true); deleted.append(["Untagged": n]) }
                    deleted.append(["Deleted": s.id.description])
                }
                let gc = try await engine.images.gc()
                await res.json(["ImagesDeleted": deleted, "SpaceReclaimed": gc.bytesFreed])
                return
            case (.GET, "search"): throw APIError(501, "image search is not supported by berth")
            default: break
            }
        }
        guard let verb = p.last else { throw APIError(404, "page not found") }
        let name = p.dropLast().joined(separator: "/")
        switch (m, verb) {
        case (.GET, "json"):
            await res.json(Translate.imageInspect(try inspectImage(name)))
        case (.GET, "history"):
            let s = try inspectImage(name)
            let h = s.config.history ?? []
            var layer = s.layers.count - 1
            var rows: [[String: Any]] = []
            for (i, e) in h.enumerated().reversed() {
                let empty = e.empty_layer ?? false
                let size = !empty && layer >= 0 && layer < s.layers.count ? s.layers[layer].size : 0
                if !empty { layer -= 1 }
                rows.append([
                    "Id": i == h.count - 1 ? s.id.description : "<missing>",
                    "Created": Int(e.created.flatMap { Timestamp.parse($0) }?.timeIntervalSince1970 ?? 0),
                    "CreatedBy": e.created_by ?? "", "Tags": i == h.count - 1 ? s.names : [String](),
                    "Size": size, "Comment": e.comment ?? "",
                ])
            }
            await res.json(rows)
        case (.POST, "tag"):
            guard let repo = req.q("repo"), !repo.isEmpty else { throw APIError(400, "repository name must have at least one component") }
            let tag = req.q("tag").flatMap { $0.isEmpty ? nil : $0 }
            _ = try inspectImage(name)
            try engine.images.tag(name, tag.map { repo + ":" + $0 } ?? repo)
            engine.events.emit("image", "tag", id: name, ["name": tag.map { repo + ":" + $0 } ?? repo])
            await res.noContent(201)
        case (.POST, "push"):
            let tag = req.q("tag").flatMap { $0.isEmpty ? nil : $0 }
            let ref = tag.map { name + ":" + $0 } ?? name
            _ = try inspectImage(ref)
            await res.startStream(contentType: "application/json")
            let progress = ProgressWriter(res: res)
            do {
                let d = try await engine.images.push(ref, progress: { e in progress.send(e) })
                await progress.drain()
                let size = (try? engine.images.lookup(ref).target.size) ?? 0
                _ = await res.writeJSON(["status": "\(tag ?? "latest"): digest: \(d) size: \(size)"])
                _ = await res.writeJSON(["progressDetail": [String: Any](), "aux": ["Tag": tag ?? "latest", "Digest": d.description, "Size": size]])
            } catch {
                await progress.drain()
                let msg = EngineError.wrap(error).message
                _ = await res.writeJSON(["errorDetail": ["message": msg], "error": msg])
            }
            await res.end()
        case (.GET, "get"): try await save(req, res, [name])
        case (.DELETE, _):
            let target = p.joined(separator: "/")
            let force = req.bool("force")
            let s = try inspectImage(target)
            let users = await engine.containersUsing(imageID: s.id.description)
            let inUse = users.isEmpty ? Set<Digest>() : await engine.imagesInUse()
            if !force && !users.isEmpty && s.names.count <= 1 {
                throw APIError(409, "conflict: unable to remove repository reference \"\(target)\" (must force) - container \(users[0].prefix(12)) is using its referenced image \(s.id.encoded.prefix(12))")
            }
            let untagged = try engine.images.remove(target, force: force, inUse: force ? [] : inUse)
            var out: [[String: String]] = untagged.map { ["Untagged": (try? Reference(parsing: $0))?.familiarString ?? $0] }
            let still = (try? engine.images.list())?.contains { $0.id == s.id } ?? false
            if !still { out.append(["Deleted": s.id.description]); _ = try? await engine.images.gc() }
            for n in untagged { engine.events.emit("image", "untag", id: s.id.description, ["name": n]) }
            if !still { engine.events.emit("image", "delete", id: s.id.description, [:]) }
            await res.json(out)
        default: throw APIError(404, "page not found")
        }
    }

    func inspectImage(_ name: String) throws -> ImageSummary {
        do { return try engine.images.inspect(name) } catch {
            if error.code == .notFound { throw APIError(404, "No such image: \(name)") }
            throw error
        }
    }

    static func refMatch(_ name: String, _ pattern: String) -> Bool {
        if name == pattern { return true }
        let short = (try? Reference(parsing: name))?.familiarString ?? name
        if short == pattern || short.split(separator: ":").first.map(String.init) == pattern { return true }
        if pattern.hasSuffix("*") { return short.hasPrefix(String(pattern.dropLast())) }
        return false
    }

    // MARK: pull

    func pull(_ req: Request, _ res: Responder) async throws {
        if req.q("fromSrc") != nil {
            guard req.q("fromSrc") == "-", let file = req.bodyFile else { throw APIError(400, "import from a URL is not supported; use fromSrc=-") }
            let repo = req.q("repo") ?? ""
            let tag = req.q("tag").flatMap { $0.isEmpty ? nil : $0 }
            let s = try await engine.images.importRootfs(file, as: repo.isEmpty ? "" : repo + (tag.map { ":" + $0 } ?? ""))
            await res.startStream(contentType: "application/json")
            _ = await res.writeJSON(["status": s.id.description])
            await res.end()
            return
        }
        guard let image = req.q("fromImage"), !image.isEmpty else { throw APIError(400, "fromImage is required") }
        var ref = image
        if let tag = req.q("tag"), !tag.isEmpty {
            ref += tag.hasPrefix("sha256:") ? "@" + tag : ":" + tag
        }
        var platform: Platform?
        if let p = req.q("platform"), !p.isEmpty {
            do { platform = try Platform(parsing: p) } catch { throw APIError(400, "invalid platform \(p)") }
        }
        let parsed: Reference
        do { parsed = try Reference(parsing: ref) } catch { throw APIError(400, "invalid reference format: \(ref)") }
        // "Status: Image is up to date" only when the name already pointed at what was pulled.
        let before = try? engine.images.lookup(parsed.description).target.digest
        await res.startStream(contentType: "application/json")
        // Docker names the repository path without its registry: "latest: Pulling from library/busybox".
        let progress = ProgressWriter(res: res, repositoryPath: parsed.repository.path)
        do {
            let r = try await engine.images.pull(ref, platform: platform, progress: { e in progress.send(e) })
            await progress.drain()
            let familiar = (try? Reference(parsing: r.name))?.familiarString ?? r.name
            _ = await res.writeJSON(["status": "Digest: \(r.target.digest)"])
            _ = await res.writeJSON(["status": before == r.target.digest ? "Status: Image is up to date for \(familiar)" : "Status: Downloaded newer image for \(familiar)"])
            engine.events.emit("image", "pull", id: r.name, ["name": r.name])
        } catch {
            await progress.drain()
            let msg = EngineError.wrap(error).message
            _ = await res.writeJSON(["errorDetail": ["message": msg], "error": msg])
        }
        await res.end()
    }

    // MARK: save / load

    func save(_ req: Request, _ res: Responder, _ names: [String]) async throws {
        guard !names.isEmpty else { throw APIError(400, "no image names given") }
        for n in names { _ = try inspectImage(n) }
        let tmp = "/var/tmp/berthd-save-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).tar"
        defer { unlink(tmp) }
        try engine.images.save(names, to: tmp)
        let fd = open(tmp, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw APIError(500, "open \(tmp): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        await res.startStream(contentType: "application/x-tar")
        if await res.writeFile(fd) { await res.end() }
    }

    func load(_ req: Request, _ res: Responder) async throws {
        guard let file = req.bodyFile else { throw APIError(400, "no image archive in the request body") }
        let quiet = req.bool("quiet")
        do {
            let names = try await engine.images.load(from: file)
            await res.startStream(contentType: "application/json")
            for n in names {
                let familiar = (try? Reference(parsing: n))?.familiarString ?? n
                _ = await res.writeJSON(["stream": "Loaded image: \(familiar)\n"])
                engine.events.emit("image", "load", id: n, ["name": n])
            }
            _ = quiet
            await res.end()
        } catch {
            throw APIError(400, EngineError.wrap(error).message)
        }
    }
}

/// Turns the image service's progress callbacks (any thread) into Docker's JSON progress lines, in order.
final class ProgressWriter: @unchecked Sendable {
    let res: Responder
    let (stream, cont) = AsyncStream<ProgressEvent>.makeStream()
    var task: Task<Void, Never>?

    init(res: Responder, repositoryPath: String? = nil) {
        self.res = res
        let s = stream
        task = Task {
            for await e in s {
                var status = e.dockerStatus
                if e.state == .resolving, let m = repositoryPath ?? e.message { status += " " + m }
                var line: [String: Any] = ["status": status, "id": e.id.hasPrefix("sha256:") ? String(e.id.dropFirst(7).prefix(12)) : e.id]
                if e.total > 0 && (e.state == .downloading || e.state == .pushing) {
                    line["progressDetail"] = ["current": e.current, "total": e.total]
                    line["progress"] = ProgressWriter.bar(e.current, e.total)
                } else {
                    line["progressDetail"] = [String: Any]()
                }
                if e.id.isEmpty { line["id"] = nil }
                _ = await res.writeJSON(line)
            }
        }
    }

    func send(_ e: ProgressEvent) { cont.yield(e) }
    func drain() async { cont.finish(); await task?.value }

    static func bar(_ cur: Int64, _ total: Int64) -> String {
        let w = 50
        let filled = total > 0 ? Int(Double(cur) / Double(total) * Double(w)) : 0
        let b = String(repeating: "=", count: max(0, filled - 1)) + (filled > 0 ? ">" : "") + String(repeating: " ", count: max(0, w - filled))
        func h(_ v: Int64) -> String {
            let d = Double(v)
            if d >= 1e9 { return String(format: "%.2fGB", d / 1e9) }
            if d >= 1e6 { return String(format: "%.2fMB", d / 1e6) }
            if d >= 1e3 { return String(format: "%.2fkB", d / 1e3) }
            return "\(v)B"
        }
        return "[\(b)] \(h(cur))/\(h(total))"
    }
}
