import Engine
import Foundation
import Glibc
import NIOCore

extension Router {
    func exec(_ req: Request, _ res: Responder, _ p: [String]) async throws {
        guard p.count == 2 else { throw APIError(404, "page not found") }
        let id = p[0]
        switch (req.method, p[1]) {
        case (.GET, "json"):
            let e = try await engine.execInspect(id)
            await res.json([
                "ID": e.id, "ContainerID": e.containerID, "Running": e.running,
                "ExitCode": e.exitCode.map { Int($0) } as Any? ?? NSNull(), "Pid": Int(e.pid),
                "OpenStdin": e.config.attachStdin, "OpenStdout": e.config.attachStdout, "OpenStderr": e.config.attachStderr,
                "CanRemove": false, "DetachKeys": e.config.detachKeys ?? "",
                "ProcessConfig": [
                    "entrypoint": e.config.cmd.first ?? "", "arguments": Array(e.config.cmd.dropFirst()),
                    "tty": e.config.tty, "privileged": e.config.privileged, "user": e.config.user,
                ] as [String: Any],
            ])
        case (.POST, "resize"):
            guard let h = req.int("h"), let w = req.int("w") else { throw APIError(400, "resize needs h and w") }
            try await engine.execResize(id, height: h, width: w)
            await res.text(200, "")
        case (.POST, "start"):
            let b = try req.json()
            let detach = b["Detach"] as? Bool ?? false
            let info = try await engine.execInspect(id)
            let engine = engine
            let (fd, tty) = try await engine.execStart(id)
            if detach {
                // Nobody reads the output: drain it on a thread and record the exit code.
                Thread.detachNewThread {
                    let code = Router.drainExitCode(fd)
                    Task { await engine.execFinished(id, code: code) }
                }
                await res.noContent(200)
                return
            }
            let keys = info.config.attachStdin ? Bridge.parseDetachKeys(info.config.detachKeys) : []
            let raw = RawClient(detachKeys: keys, onDetach: {})
            let contentType = tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream"
            do {
                try await res.hijack(upgrade: req.wantsUpgrade, contentType: contentType, raw: raw)
                try await Bridge.join(client: res.channel, raw: raw, shimFD: fd, multiplexed: !tty, group: group) { code in
                    Task { await engine.execFinished(id, code: code) }
                }
            } catch {
                close(fd)
                await engine.execFinished(id, code: nil)
                try? await res.channel.close()
            }
        default: throw APIError(404, "page not found")
        }
    }

    /// Reads a shim stream to its end; returns the code of its exit frame.
    static func drainExitCode(_ fd: Int32) -> Int32? {
        defer { close(fd) }
        var buf = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        var code: Int32?
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            buf += chunk[0..<n]
            while buf.count >= 8 {
                let len = Int(buf[4]) << 24 | Int(buf[5]) << 16 | Int(buf[6]) << 8 | Int(buf[7])
                guard buf.count >= 8 + len else { break }
                if buf[0] == 3 { code = Int32(String(decoding: buf[8..<(8 + len)], as: UTF8.self)) }
                buf.removeFirst(8 + len)
            }
        }
        return code
    }
}
