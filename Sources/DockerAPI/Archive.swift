import Engine
import Foundation
import Glibc

extension Router {
    /// GET/HEAD/PUT /containers/{id}/archive?path=…: docker cp.
    func archive(_ req: Request, _ res: Responder, _ id: String) async throws {
        guard let path = req.q("path"), !path.isEmpty else { throw APIError(400, "path is required") }
        func statHeader(_ s: Engine.PathStat) -> (String, String) {
            let d: [String: Any] = ["name": s.name, "size": s.size, "mode": s.mode, "mtime": Timestamp.rfc3339Nano(s.mtime), "linkTarget": s.linkTarget]
            let data = (try? JSONSerialization.data(withJSONObject: d, options: [.withoutEscapingSlashes])) ?? Data()
            return ("X-Docker-Container-Path-Stat", data.base64EncodedString())
        }
        switch req.method {
        case .HEAD:
            let s = try await engine.archiveStat(id, path: path)
            await res.send(200, contentType: nil, body: [], extra: [statHeader(s)])
        case .GET:
            let tmp = "/var/tmp/berthd-cp-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).tar"
            let fd = open(tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw APIError(500, "create \(tmp): \(String(cString: strerror(errno)))") }
            unlink(tmp)
            defer { close(fd) }
            let s = try await engine.archiveGet(id, path: path, to: fd)
            lseek(fd, 0, SEEK_SET)
            let (k, v) = statHeader(s)
            await res.startStream(contentType: "application/x-tar", extra: [(k, v)])
            if await res.writeFile(fd) { await res.end() }
        case .PUT:
            guard let file = req.bodyFile else { throw APIError(400, "no archive in the request body") }
            let st = try await engine.archiveStat(id, path: path)
            guard st.mode & (1 << 31) != 0 else { throw APIError(400, "extraction point is not a directory") }
            try await engine.archivePut(id, path: path, tarFile: file)
            await res.text(200, "")
        default: throw APIError(404, "page not found")
        }
    }
}
