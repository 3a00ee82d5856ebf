// swift-tools-version:6.0
// berth: an OCI runtime, shim, engine and CLI in Swift.
// The runtime chain (CLinux ← OCI ← LinuxContainer ← Runtime ← berth-runtime) imports no Foundation,
// no NIO and no Swift concurrency: berth-runtime is exec'd for every container operation.
import PackageDescription

let package = Package(
    name: "berth",
    products: [
        .executable(name: "berth-runtime", targets: ["berth-runtime"]),
    ],
    targets: [
        .target(name: "CLinux", linkerSettings: [.linkedLibrary("seccomp")]),
        .target(name: "OCI"),
        .target(name: "LinuxContainer", dependencies: ["CLinux", "OCI"]),
        .target(name: "Runtime", dependencies: ["LinuxContainer", "OCI", "CLinux"]),
        .executableTarget(name: "berth-runtime", dependencies: ["Runtime"]),
        .testTarget(name: "OCITests", dependencies: ["OCI"]),
        .testTarget(name: "IntegrationTests", dependencies: []),
    ],
    swiftLanguageModes: [.v6]
)
