import CEngine
import Foundation
import Glibc
import Synchronization

/// The events bus: subscribers get every event from the time they subscribe; the last 1,024 events are kept
/// for `since`.
public final class EventBus: Sendable {
    private struct State {
        var subscribers: [Int: AsyncStream<EngineEvent>.Continuation] = [:]
        var next = 0
        var recent: [EngineEvent] = []
    }
    private let state = Mutex(State())

    public func emit(_ type: String, _ action: String, id: String, _ attributes: [String: String] = [:]) {
        let e = EngineEvent(type: type, action: action, id: id, attributes: attributes, time: Date())
        let subs = state.withLock { s -> [AsyncStream<EngineEvent>.Continuation] in
            s.recent.append(e)
            if s.recent.count > 1024 { s.recent.removeFirst(s.recent.count - 1024) }
            return Array(s.subscribers.values)
        }
        for c in subs { c.yield(e) }
    }

    /// Past events since `since` (if given), then live ones until the stream is dropped.
    public func subscribe(since: Date?) -> AsyncStream<EngineEvent> {
        let (stream, cont) = AsyncStream<EngineEvent>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        let key = state.withLock { s -> Int in
            if let since { for e in s.recent where e.time >= since { cont.yield(e) } }
            s.next += 1
            s.subscribers[s.next] = cont
            return s.next
        }
        cont.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.subscribers.removeValue(forKey: key) } }
        return stream
    }
}

/// One thread with an epoll set over the shims' `wait` connections: the reply line (or the connection
/// closing) is the container's exit. Scales to thousands of containers without a thread each.
final class ExitMonitor: @unchecked Sendable {
    private let epfd: Int32
    private let lock = Mutex<[Int32: @Sendable (String?) -> Void]>([:])

    init() throws(EngineError) {
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epfd >= 0 else { throw EngineError.system("epoll_create1") }
        let t = Thread { [self] in self.loop() }
        t.name = "berth-exit-monitor"
        t.start()
    }

    /// Watches a connected fd (already sent `wait`); `handler` gets the reply line, or nil if it closed first.
    func watch(fd: Int32, handler: @escaping @Sendable (String?) -> Void) {
        lock.withLock { $0[fd] = handler }
        if be_epoll_add(epfd, fd) != 0 {
            let h = lock.withLock { $0.removeValue(forKey: fd) }
            close(fd)
            h?(nil)
        }
    }

    private func loop() {
        var evs = [Int32](repeating: 0, count: 64)
        while true {
            let n = evs.withUnsafeMutableBufferPointer { be_epoll_wait(epfd, $0.baseAddress, 64) }
            if n < 0 { if errno == EINTR { continue }; return }
            for i in 0..<Int(n) {
                let fd = evs[i]
                var buf = [UInt8](repeating: 0, count: 512)
                let r = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if r < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                epoll_ctl(epfd, Int32(EPOLL_CTL_DEL), fd, nil)
                close(fd)
                let line: String? = r > 0 ? String(decoding: buf[0..<r], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : nil
                let h = lock.withLock { $0.removeValue(forKey: fd) }
                h?(line)
            }
        }
    }
}
