import Testing
@testable import OCI

@Suite struct JSONParseTests {
    func parse(_ text: String) throws -> JSON { try JSON.parse(Array(text.utf8)) }

    func message(_ text: String) -> String? {
        do { _ = try JSON.parse(Array(text.utf8)); return nil } catch { return error.code == .invalidJSON ? error.message : "wrong code" }
    }

    @Test func scalars() throws {
        #expect(try parse("null") == .null)
        #expect(try parse(" true ") == .bool(true))
        #expect(try parse("\n\tfalse\r\n") == .bool(false))
        #expect(try parse("\"hi\"") == .string("hi"))
        #expect(try parse("0") == .number("0"))
    }

    @Test func nested() throws {
        let v = try parse(#"{"a": [1, {"b": null}, []], "c": {}}"#)
        #expect(v == .object([
            (key: "a", value: .array([.number("1"), .object([(key: "b", value: .null)]), .array([])])),
            (key: "c", value: .object([])),
        ]))
    }

    @Test(arguments: [
        (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{C}\n\r\t"),
        (#""\u0041\u00e9\u4e2d""#, "Aé中"),
        (#""\ud83d\ude00""#, "😀"),
        (#""\uD834\uDD1E x""#, "𝄞 x"),
        (#""\u0000""#, "\u{0}"),
        (#""héllo wörld 中文 😀""#, "héllo wörld 中文 😀"),
        (#""a\nb""#, "a\nb"),
        (#""""#, ""),
    ])
    func strings(input: String, expected: String) throws {
        #expect(try parse(input) == .string(expected))
    }

    @Test(arguments: ["0", "-0", "1", "-1", "123456789012345678901234567890", "1.5", "-0.25", "1e10", "1E+2", "2.5e-3",
                      "9223372036854775807", "18446744073709551615"])
    func validNumbers(text: String) throws {
        #expect(try parse(text) == .number(text))
        #expect(try parse("[\(text)]") == .array([.number(text)]))
    }

    @Test(arguments: ["01", "-", "+1", "1.", ".5", "1e", "1e+", "-a", "0x10", "1.e5", "--1", "NaN", "Infinity"])
    func invalidNumbers(text: String) {
        #expect(message(text) != nil)
    }

    @Test(arguments: [
        ("", "line 1 column 1: unexpected end of input"),
        ("{", "line 1 column 2: expected '\"' or '}'"),
        ("{\"a\" 1}", "line 1 column 6: expected ':'"),
        ("{\n  \"a\": 1,\n  \"b\": 2 \"c\"\n}", "line 3 column 10: expected ',' or '}'"),
        ("[1 2]", "line 1 column 4: expected ',' or ']'"),
        ("[1,]", "line 1 column 4: unexpected ']'"),
        ("{\"a\":1,}", "line 1 column 8: expected '\"' to begin an object key"),
        ("{} {}", "line 1 column 4: unexpected '{' after the JSON value"),
        ("1 x", "line 1 column 3: unexpected 'x' after the JSON value"),
        ("tru", "line 1 column 4: unexpected end of input"),
        ("trux", "line 1 column 1: invalid literal (expected true)"),
        ("nul1", "line 1 column 1: invalid literal (expected null)"),
        ("\"abc", "line 1 column 1: unterminated string"),
        ("\"a\\qb\"", "line 1 column 3: invalid escape sequence"),
        ("\"a\tb\"", "line 1 column 3: control character byte 0x09 in string must be escaped"),
        ("\"\\ud83d\"", "line 1 column 2: unpaired surrogate in \\u escape"),
        ("\"\\ude00\"", "line 1 column 2: unpaired surrogate in \\u escape"),
        ("\"\\ud83d\\u0041\"", "line 1 column 2: unpaired surrogate in \\u escape"),
        ("\"\\u12g4\"", "line 1 column 6: expected a hex digit in \\u escape"),
        ("01", "line 1 column 2: leading zeros are not allowed in numbers"),
        ("'a'", "line 1 column 1: unexpected '''"),
        ("\"é\" x", "line 1 column 5: unexpected 'x' after the JSON value"),
        ("[\n\n   }", "line 3 column 4: unexpected '}'"),
    ])
    func errors(input: String, expected: String) {
        #expect(message(input) == expected)
    }

    @Test func invalidUTF8IsRejected() {
        #expect(throws: OCIError.self) { try JSON.parse([0x22, 0xFF, 0x22]) }
        #expect(throws: OCIError.self) { try JSON.parse([0x22, 0x5C, 0x6E, 0xC3, 0x22]) }  // "\n<truncated é>"
        #expect(throws: OCIError.self) { try JSON.parse([0xEF, 0xBB, 0xBF, 0x31]) }  // BOM
    }

    @Test func depthLimit() throws {
        let ok = String(repeating: "[", count: JSON.maxDepth) + String(repeating: "]", count: JSON.maxDepth)
        _ = try parse(ok)
        let deep = "[" + ok + "]"
        #expect(message(deep) == "line 1 column \(JSON.maxDepth + 1): nesting deeper than 512 levels")
        let objects = String(repeating: "{\"a\":", count: JSON.maxDepth + 1) + "1" + String(repeating: "}", count: JSON.maxDepth + 1)
        #expect(message(objects)?.hasSuffix("nesting deeper than 512 levels") == true)
    }

    @Test func duplicateKeysKeepOrderAndLastWins() throws {
        let v = try parse(#"{"a": 1, "b": 2, "a": 3}"#)
        #expect(v.objectValue?.count == 3)
        #expect(v["a"] == .number("3"))
        #expect(v["b"]?.intValue == 2)
        #expect(v["c"] == nil)
    }

    @Test func accessors() throws {
        let v = try parse(#"""
            {"s": "x", "t": true, "i": -42, "u": 4294967295, "big": 18446744073709551615,
            "f": 1.5, "e": 1e3, "a": [1, 2], "o": {"k": "v"}, "n": null, "min": -9223372036854775808}
            """#)
        #expect(v["s"]?.stringValue == "x")
        #expect(v["t"]?.boolValue == true)
        #expect(v["s"]?.boolValue == nil)
        #expect(v["i"]?.intValue == -42)
        #expect(v["i"]?.int64Value == -42)
        #expect(v["i"]?.uint64Value == nil)
        #expect(v["u"]?.uint32Value == 4294967295)
        #expect(v["big"]?.uint32Value == nil)
        #expect(v["big"]?.uint64Value == UInt64.max)
        #expect(v["big"]?.int64Value == nil)
        #expect(v["min"]?.int64Value == Int64.min)
        #expect(v["f"]?.doubleValue == 1.5)
        #expect(v["f"]?.intValue == nil)
        #expect(v["e"]?.intValue == nil)
        #expect(v["e"]?.doubleValue == 1000)
        #expect(v["a"]?.arrayValue?.count == 2)
        #expect(v["a"]?[1]?.intValue == 2)
        #expect(v["a"]?[2] == nil)
        #expect(v["o"]?["k"]?.stringValue == "v")
        #expect(v["n"]?.isNull == true)
        #expect(v["s"]?["k"] == nil)
    }

    @Test func rawBufferOverload() throws {
        let bytes: [UInt8] = Array(#"{"k":[true]}"#.utf8)
        let v = try bytes.withUnsafeBytes { try JSON.parse($0) }
        #expect(v["k"] == .array([.bool(true)]))
    }
}
