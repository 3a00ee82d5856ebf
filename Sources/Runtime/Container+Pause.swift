// pause/resume through the freezer (v1 freezer.state, v2 cgroup.freeze).
#if canImport(Glibc)
import Glibc
#endif
import LinuxContainer

extension Runtime {
    public func pause(_ id: String) throws(RuntimeError) {
        let r = try root.load(id)
        let st = status(of: r)
        guard st.allows(.pause) else { throw RuntimeError(.failedPrecondition, "container not running") }
        guard let cg = r.cgroup else { throw RuntimeError(.failedPrecondition, "pause: the container has no cgroup") }
        try freeze(cg, true)
    }

    public func resume(_ id: String) throws(RuntimeError) {
        let r = try root.load(id)
        let st = status(of: r)
        guard st.allows(.resume) else { throw RuntimeError(.failedPrecondition, "container not paused") }
        guard let cg = r.cgroup else { throw RuntimeError(.failedPrecondition, "resume: the container has no cgroup") }
        try freeze(cg, false)
    }

    func freeze(_ cg: Cgroup, _ on: Bool) throws(RuntimeError) {
        switch cg.mode {
        case .v1:
            guard let f = cg.paths.first(where: { $0.name == "freezer" }) else {
                throw RuntimeError(.failedPrecondition, "freezer cgroup controller is not mounted")
            }
            let want = on ? "FROZEN" : "THAWED"
            for _ in 0..<1000 {
                try linux { () throws(LinuxError) in try FS.writeFile(f.dir + "/freezer.state", want) }
                let now = (try? FS.readString(f.dir + "/freezer.state")) ?? ""
                if now.hasPrefix(want) { return }
                usleep(1000)
            }
            throw RuntimeError(.system, "freezer: \(f.dir) did not reach \(want)")
        case .v2:
            guard let d = cg.paths.first else { return }
            try linux { () throws(LinuxError) in try FS.writeFile(d.dir + "/cgroup.freeze", on ? "1" : "0") }
            // the write only asks; cgroup.events says when every task has actually stopped (or resumed)
            let want = on ? "frozen 1" : "frozen 0"
            for _ in 0..<1000 {
                let events = (try? FS.readString(d.dir + "/cgroup.events")) ?? ""
                if events.split(separator: "\n").contains(where: { $0 == want }) { return }
                usleep(1000)
            }
            throw RuntimeError(.system, "freeze: \(d.dir) did not report \"\(want)\" in cgroup.events")
        }
    }
}
