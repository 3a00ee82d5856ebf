import Foundation
import Testing
@testable import OCI

@Suite struct TemplateTests {
    /// runc's output, with its "1.0.2-dev" version replaced by ours
    func runc(_ text: String) -> String { text.replacingOccurrences(of: "\"1.0.2-dev\"", with: "\"1.0.2\"") }

    @Test func matchesRuncSpec() throws {
        let ours = Spec.defaultTemplate(rootless: false)
        #expect(ours == (try JSON.parse(Array(runc(Fixtures.runcSpec).utf8))))
        #expect(ours.serialized(pretty: true) == runc(Fixtures.runcSpec))
    }

    @Test func matchesRuncSpecRootless() throws {
        let ours = Spec.defaultTemplate(rootless: true)
        #expect(ours == (try JSON.parse(Array(runc(Fixtures.runcSpecRootless).utf8))))
        #expect(ours.serialized(pretty: true) == runc(Fixtures.runcSpecRootless))
    }

    @Test func rootlessUsesCallerIDs() throws {
        let s = try Spec(json: Spec.defaultTemplate(rootless: true, hostUID: 1000, hostGID: 1001))
        #expect(s.linux?.uidMappings == [IDMapping(containerID: 0, hostID: 1000, size: 1)])
        #expect(s.linux?.gidMappings == [IDMapping(containerID: 0, hostID: 1001, size: 1)])
        try s.validate()
    }

    @Test func templatesValidate() throws {
        try Spec(json: Spec.defaultTemplate(rootless: false)).validate()
        try Spec(json: Spec.defaultTemplate(rootless: true)).validate()
    }
}

@Suite struct FeaturesTests {
    @Test func shape() throws {
        let f = Spec.featuresJSON(seccompEnabled: true, version: "0.1.0")
        #expect(f["ociVersionMin"]?.stringValue == "1.0.0")
        #expect(f["ociVersionMax"]?.stringValue == "1.2.0")
        #expect(f["hooks"]?.arrayValue?.compactMap(\.stringValue)
                == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"])
        #expect(f["mountOptions"]?.arrayValue?.compactMap(\.stringValue) == MountFlags.knownOptions)
        let linux = try #require(f["linux"])
        #expect(linux["namespaces"]?.arrayValue?.compactMap(\.stringValue)
                == ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"])
        #expect(linux["capabilities"]?.arrayValue?.count == 41)
        #expect(linux["cgroup"]?["v1"]?.boolValue == true)
        #expect(linux["cgroup"]?["v2"]?.boolValue == true)
        #expect(linux["cgroup"]?["systemd"]?.boolValue == false)
        #expect(linux["cgroup"]?["systemdUser"]?.boolValue == false)
        #expect(linux["seccomp"]?["enabled"]?.boolValue == true)
        #expect(linux["seccomp"]?["actions"]?.arrayValue?.contains(.string("SCMP_ACT_ERRNO")) == true)
        #expect(linux["seccomp"]?["archs"]?.arrayValue?.contains(.string("SCMP_ARCH_X86_64")) == true)
        #expect(linux["apparmor"]?["enabled"]?.boolValue == false)
        #expect(linux["selinux"]?["enabled"]?.boolValue == false)
        #expect(linux["mountExtensions"]?["idmap"]?["enabled"]?.boolValue == true)
        #expect(f["annotations"]?["io.github.berth.version"]?.stringValue == "0.1.0")
        // what we print parses back
        #expect(try JSON.parse(f.serializedBytes(pretty: true)) == f)
    }

    @Test func parameters() {
        let f = Spec.featuresJSON(seccompEnabled: false, cgroupV1: false, systemd: true, apparmor: true,
                                  annotations: [(key: "io.github.seccomp.libseccomp.version", value: "2.5.4")])
        #expect(f["linux"]?["seccomp"] == .object([(key: "enabled", value: .bool(false))]))
        #expect(f["linux"]?["cgroup"]?["v1"]?.boolValue == false)
        #expect(f["linux"]?["cgroup"]?["systemd"]?.boolValue == true)
        #expect(f["linux"]?["apparmor"]?["enabled"]?.boolValue == true)
        #expect(f["annotations"]?["io.github.seccomp.libseccomp.version"]?.stringValue == "2.5.4")
        #expect(f["annotations"]?.objectValue?.count == 2)
    }
}
