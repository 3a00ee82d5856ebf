import Testing
@testable import OCI

@Suite struct StateTests {
    @Test func roundTrip() throws {
        let s = State(ociVersion: "1.2.0", id: "c1", status: "running", pid: 4242, bundle: "/run/b",
                      annotations: [(key: "k1", value: "v1"), (key: "k2", value: "v2")])
        let back = try State(json: try JSON.parse(s.json().serializedBytes()))
        #expect(back == s)
        #expect(try State.parse(s.json().serializedBytes(pretty: true)) == s)
    }

    @Test func layout() {
        let s = State(ociVersion: "1.0.2", id: "x", status: "stopped", pid: nil, bundle: "/b", annotations: [])
        #expect(s.json().serialized() == #"{"ociVersion":"1.0.2","id":"x","status":"stopped","pid":0,"bundle":"/b"}"#)
        let a = State(ociVersion: "1.0.2", id: "x", status: "created", pid: 7, bundle: "/b", annotations: [(key: "a", value: "b")])
        #expect(a.json().serialized()
                == #"{"ociVersion":"1.0.2","id":"x","status":"created","pid":7,"bundle":"/b","annotations":{"a":"b"}}"#)
    }

    @Test func decodeRuntimeSpecExample() throws {
        let text = #"""
            {
                "ociVersion": "0.2.0",
                "id": "oci-container1",
                "status": "running",
                "pid": 4422,
                "bundle": "/containers/redis",
                "annotations": {
                    "myKey": "myValue"
                }
            }
            """#
        let s = try State.parse(Array(text.utf8))
        #expect(s == State(ociVersion: "0.2.0", id: "oci-container1", status: "running", pid: 4422,
                           bundle: "/containers/redis", annotations: [(key: "myKey", value: "myValue")]))
    }

    @Test func pidIsOptionalOnInput() throws {
        let s = try State.parse(Array(#"{"ociVersion":"1.0.0","id":"a","status":"creating","bundle":"/b","extra":1}"#.utf8))
        #expect(s.pid == nil)
        #expect(s.annotations.isEmpty)
    }

    @Test(arguments: [
        (#"{"id":"a","status":"running","bundle":"/b"}"#, "state: ociVersion: must be set"),
        (#"{"ociVersion":"1","status":"running","bundle":"/b"}"#, "state: id: must be set"),
        (#"{"ociVersion":"1","id":"a","bundle":"/b"}"#, "state: status: must be set"),
        (#"{"ociVersion":"1","id":"a","status":"dead","bundle":"/b"}"#, "state: status: unknown status \"dead\""),
        (#"{"ociVersion":"1","id":"a","status":"running"}"#, "state: bundle: must be set"),
        (#"{"ociVersion":"1","id":"a","status":"running","bundle":"/b","pid":-1}"#, "state: pid: -1 is out of range (0...2147483647)"),
        (#"{"ociVersion":"1","id":"a","status":"running","bundle":"/b","pid":"1"}"#, "state: pid: expected an integer"),
        (#"{"ociVersion":"1","id":7}"#, "state: id: expected a string"),
        (#"{"ociVersion":"1","#, "state: line 1 column 19: expected '\"' to begin an object key"),
    ])
    func errors(input: String, expected: String) {
        do { _ = try State.parse(Array(input.utf8)); Issue.record("accepted") } catch {
            #expect(error.message == expected)
        }
    }
}
