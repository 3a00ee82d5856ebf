// swift-tools-version:6.0
// berth: an OCI runtime, shim, engine and CLI in Swift.
// The runtime chain (CLinux ← OCI ← LinuxContainer ← Runtime ← berth-runtime) imports no Foundation,
// no NIO and no Swift concurrency: berth-runtime is exec'd for every container operation.
import PackageDescription

let package = Package(
    name: "berth",
    products: [
        .executable(name: "berth-runtime", targets: ["berth-runtime"]),
        .executable(name: "berth-image", targets: ["berth-image"]),
        .executable(name: "berth-shim", targets: ["berth-shim"]),
        .executable(name: "berthd", targets: ["berthd"]),
        .executable(name: "berth", targets: ["berth"]),
        .library(name: "Images", targets: ["Images"]),
        .library(name: "Engine", targets: ["Engine"]),
    ],
    dependencies: [
        // Daemon side only: nothing of the runtime chain depends on these.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .target(name: "CLinux", linkerSettings: [.linkedLibrary("seccomp")]),
        .target(name: "OCI"),
        .target(name: "LinuxContainer", dependencies: ["CLinux", "OCI"]),
        .target(name: "Runtime", dependencies: ["LinuxContainer", "OCI", "CLinux"]),
        .executableTarget(name: "berth-runtime", dependencies: ["Runtime"]),
        // The image half of the engine: content store, registry client, unpack, snapshots, image store, GC.
        .target(name: "CImages", linkerSettings: [.linkedLibrary("z"), .linkedLibrary("zstd"), .linkedLibrary("crypto")]),
        .target(name: "Images", dependencies: [
            "OCI", "CImages", "CLinux", "LinuxContainer",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        .executableTarget(name: "berth-image", dependencies: ["Images"]),
        // One per started container (docs/shim.md): static, single-threaded, no Foundation, like the runtime.
        .executableTarget(name: "berth-shim", dependencies: ["CLinux"]),
        // The engine: containers, shims, metadata (SQLite), restart policies, events; DockerAPI serves it.
        .target(name: "CEngine"),
        .target(name: "Engine", dependencies: [
            "Images", "OCI", "LinuxContainer", "CLinux", "CEngine",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "DockerAPI", dependencies: [
            "Engine", "Images", "OCI",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .executableTarget(name: "berthd", dependencies: [
            "DockerAPI", "Engine", "Images",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // The CLI speaks the Docker Engine API over the unix socket; Foundation only, so it starts fast.
        .executableTarget(name: "berth", dependencies: []),
        .testTarget(name: "OCITests", dependencies: ["OCI"]),
        .testTarget(name: "ImagesTests", dependencies: ["Images", "OCI"]),
        .testTarget(name: "IntegrationTests", dependencies: []),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "OCI"]),
        // Drives the binaries only (berthd, berth, berth-shim, docker CLI, docker-py).
        .testTarget(name: "AcceptanceTests", dependencies: []),
    ],
    swiftLanguageModes: [.v6]
)
