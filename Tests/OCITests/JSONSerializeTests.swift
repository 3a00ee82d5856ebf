import Foundation
import Testing
@testable import OCI

@Suite struct JSONSerializeTests {
    @Test func compact() {
        let v: JSON = .object([
            (key: "a", value: .array([.number("1"), .bool(false), .null])),
            (key: "b", value: .object([])),
            (key: "c", value: .array([])),
            (key: "d", value: .string("x/y")),
        ])
        #expect(v.serialized() == #"{"a":[1,false,null],"b":{},"c":[],"d":"x/y"}"#)
    }

    @Test func pretty() {
        let v: JSON = .object([
            (key: "a", value: .array([.number("1"), .object([(key: "k", value: .string("v"))])])),
            (key: "e", value: .array([])),
        ])
        #expect(v.serialized(pretty: true) == "{\n\t\"a\": [\n\t\t1,\n\t\t{\n\t\t\t\"k\": \"v\"\n\t\t}\n\t],\n\t\"e\": []\n}")
    }

    @Test(arguments: [
        ("plain", #""plain""#),
        ("q\"b\\s", #""q\"b\\s""#),
        ("a\nb\tc\rd", #""a\nb\tc\rd""#),
        ("\u{0}\u{1}\u{1F}\u{8}\u{C}", #""\u0000\u0001\u001f\u0008\u000c""#),
        ("/path/to", #""/path/to""#),
        ("é中😀", "\"é中😀\""),
        ("\u{7F}", "\"\u{7F}\""),
    ])
    func escaping(input: String, expected: String) {
        #expect(JSON.string(input).serialized() == expected)
    }

    @Test(arguments: [
        #"{"a":[1,2.5,-3e7,"x\u0001y",true,false,null],"b":{"c":{"d":[]}},"e":"\ud83d\ude00"}"#,
        #"[]"#,
        #""\"\\\/""#,
        Fixtures.specExample,
        Fixtures.runcSpec,
    ])
    func roundTrip(text: String) throws {
        let v = try JSON.parse(Array(text.utf8))
        #expect(try JSON.parse(v.serializedBytes()) == v)
        #expect(try JSON.parse(v.serializedBytes(pretty: true)) == v)
    }

    @Test func runcLayoutIsReproduced() throws {
        let v = try JSON.parse(Array(Fixtures.runcSpec.utf8))
        #expect(v.serialized(pretty: true) == Fixtures.runcSpec)
    }

    /// Foundation's parser agrees with ours on what we write
    @Test func foundationReadsOurOutput() throws {
        let v: JSON = .object([(key: "s", value: .string("a\"b\\c\n\u{1}é😀/")), (key: "n", value: .number("12"))])
        let object = try JSONSerialization.jsonObject(with: Data(v.serializedBytes())) as? [String: Any]
        #expect(object?["s"] as? String == "a\"b\\c\n\u{1}é😀/")
        #expect(object?["n"] as? Int == 12)
    }
}
