// The container lifecycle (runtime.md): legality of each verb is a function of the status.
public enum Status: String, Sendable {
    case creating, created, running, paused, stopped
}

public enum Verb: Sendable { case start, kill, pause, resume, delete, exec }

extension Status {
    public func allows(_ v: Verb) -> Bool {
        switch (self, v) {
        case (.created, .start), (.running, .pause), (.paused, .resume), (.stopped, .delete),
             (.created, .kill), (.running, .kill), (.paused, .kill), (.running, .exec), (.created, .exec):
            return true
        default:
            return false
        }
    }
}
