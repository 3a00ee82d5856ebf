import Testing
@testable import OCI

@Suite struct ContainerIDTests {
    @Test(arguments: ["a", "abc123", "my_container", "a.b", "a+b-c", "...", ".a", "A-Z.0_9+",
                      String(repeating: "x", count: 1024)])
    func valid(id: String) throws {
        try Spec.validateContainerID(id)
    }

    @Test(arguments: [
        ("", "container id: must not be empty"),
        (".", "container id \".\": not allowed"),
        ("..", "container id \"..\": not allowed"),
        ("a/b", "container id \"a/b\": may contain only letters, digits, '_', '+', '-' and '.'"),
        ("../x", "container id \"../x\": may contain only letters, digits, '_', '+', '-' and '.'"),
        ("a b", "container id \"a b\": may contain only letters, digits, '_', '+', '-' and '.'"),
        ("é", "container id \"é\": may contain only letters, digits, '_', '+', '-' and '.'"),
        ("a:b", "container id \"a:b\": may contain only letters, digits, '_', '+', '-' and '.'"),
        ("a\u{0}", "container id \"a\u{0}\": may contain only letters, digits, '_', '+', '-' and '.'"),
        (String(repeating: "x", count: 1025), "container id: longer than 1024 bytes"),
    ])
    func invalid(id: String, expected: String) {
        do { try Spec.validateContainerID(id); Issue.record("accepted \(id)") } catch {
            #expect(error.message == expected)
        }
    }
}
