// The runtime-spec state (runtime.md "State") as JSON: what `state` prints and hooks read on stdin.

extension State {
    /// the status values runtime.md defines
    public static let statuses = ["creating", "created", "running", "stopped", "paused"]

    /// ociVersion, id, status, pid (always, 0 when there is none, as runc prints it), bundle, annotations (when any)
    public func json() -> JSON {
        var fields: [(key: String, value: JSON)] = [
            (key: "ociVersion", value: .string(ociVersion)),
            (key: "id", value: .string(id)),
            (key: "status", value: .string(status)),
            (key: "pid", value: .number(pid ?? 0)),
            (key: "bundle", value: .string(bundle)),
        ]
        if !annotations.isEmpty { fields.append((key: "annotations", value: .stringMap(annotations))) }
        return .object(fields)
    }

    /// reads a state document; ociVersion, id, status and bundle are required, pid is optional
    public init(json: JSON) throws(OCIError) {
        var ociVersion: String?
        var id: String?
        var status: String?
        var pid: Int32?
        var bundle: String?
        var annotations: [(key: String, value: String)] = []
        for (key, value) in try Decode.object(json, "state") {
            switch key {
            case "ociVersion": ociVersion = try Decode.optionalString(value, key)
            case "id": id = try Decode.optionalString(value, key)
            case "status": status = try Decode.optionalString(value, key)
            case "pid": pid = value.isNull ? nil : Int32(try Decode.signed(value, min: 0, max: Int64(Int32.max), key))
            case "bundle": bundle = try Decode.optionalString(value, key)
            case "annotations": annotations = try Decode.stringMap(value, key)
            default: break
            }
        }
        guard let ociVersion else { throw Decode.fail("ociVersion", "must be set") }
        guard let id else { throw Decode.fail("id", "must be set") }
        guard let status else { throw Decode.fail("status", "must be set") }
        guard State.statuses.contains(status) else { throw Decode.fail("status", "unknown status \"\(status)\"") }
        guard let bundle else { throw Decode.fail("bundle", "must be set") }
        self.init(ociVersion: ociVersion, id: id, status: status, pid: pid, bundle: bundle, annotations: annotations)
    }

    public static func parse(_ bytes: [UInt8]) throws(OCIError) -> State {
        let json: JSON
        do { json = try JSON.parse(bytes) } catch { throw error.prefixed("state") }
        do { return try State(json: json) } catch { throw error.prefixed("state") }
    }
}
