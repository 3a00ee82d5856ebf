// Progress of a pull or a push, per layer: what a CLI draws as bars and what the Docker API sends as its
// JSON progress messages ({"status": "Downloading", "progressDetail": {"current": …, "total": …}, "id": …}).

public struct ProgressEvent: Sendable, Hashable {
    public enum State: String, Sendable {
        /// finding the manifest for the reference
        case resolving
        /// queued behind other layers (the download limit)
        case waiting
        /// bytes arriving (and, for pulls, being unpacked as they arrive)
        case downloading
        /// the layer is already here (blob and snapshot)
        case exists
        /// downloaded, verified and unpacked
        case complete
        /// bytes leaving (push)
        case pushing
        /// the registry already had it, or mounted it from another repository
        case pushed
        case failed
    }

    /// The short id Docker shows: the first 12 hex digits of the layer's digest, or the reference.
    public var id: String
    public var state: State
    public var current: Int64
    public var total: Int64
    public var message: String?

    public init(id: String, state: State, current: Int64 = 0, total: Int64 = 0, message: String? = nil) {
        self.id = id
        self.state = state
        self.current = current
        self.total = total
        self.message = message
    }

    /// Docker's status words for this state.
    public var dockerStatus: String {
        switch state {
        case .resolving: return "Pulling from"
        case .waiting: return "Waiting"
        case .downloading: return "Downloading"
        case .exists: return "Already exists"
        case .complete: return "Pull complete"
        case .pushing: return "Pushing"
        case .pushed: return message == "mounted" ? "Mounted from" : "Layer already exists"
        case .failed: return "Failed"
        }
    }
}

public typealias ProgressHandler = @Sendable (ProgressEvent) -> Void

extension Digest {
    /// Docker's short id of a layer or image: 12 hex digits.
    public var shortID: String { String(encoded.prefix(12)) }
}

import OCI
