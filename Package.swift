// swift-tools-version:6.2
import Foundation
import PackageDescription

/// `vigil --version` and `vigil_build_info`: the version from VERSION, the commit from git
/// (a build outside a checkout, from a source tarball, can name it in VIGIL_COMMIT; without
/// either it says "unknown").
let version =
    (try? String(contentsOfFile: Context.packageDirectory + "/VERSION", encoding: .utf8))?
    .trimmingCharacters(in: .whitespacesAndNewlines) ?? "0.0.0"
let commit: String = {
    if let c = Context.environment["VIGIL_COMMIT"], !c.isEmpty { return c }
    guard let git = Context.gitInformation else { return "unknown" }
    return String(git.currentCommit.prefix(12)) + (git.hasUncommittedChanges ? "-dirty" : "")
}()

/// One list of settings for every target: Swift 6 mode, strict concurrency, no warnings.
let settings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "vigil",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vigil", targets: ["vigil"]),
        .executable(name: "vigil-bench", targets: ["vigil-bench"]),
        .executable(name: "vigil-faults", targets: ["vigil-faults"]),
        // The fault suite preloads it into the daemon to step its wall clock.
        .library(name: "vigil-stepped-clock", type: .dynamic, targets: ["CSteppedClock"]),
        // For the fuzz target's own package in Fuzz/ (which depends on this one by path).
        .library(name: "VigilFuzzCheck", targets: ["VigilFuzzCheck"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(name: "VigilCore", swiftSettings: settings),
        .target(name: "CSteppedClock", linkerSettings: [.linkedLibrary("dl")]),
        .target(
            name: "CBuildInfo",
            cSettings: [.define("VIGIL_VERSION", to: "\"\(version)\""), .define("VIGIL_COMMIT", to: "\"\(commit)\"")]
        ),
        .target(
            name: "VigilMQTT",
            dependencies: ["CMosquitto", "VigilCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings
        ),
        .target(
            name: "VigilStorage",
            dependencies: ["CSQLite", "VigilCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: settings
        ),
        .target(name: "VigilSimulator", dependencies: ["VigilCore"], swiftSettings: settings),
        .target(
            name: "VigilDaemon",
            dependencies: [
                "VigilCore", "VigilMQTT", "VigilStorage", "VigilSimulator", "CBuildInfo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "FlyingSocks", package: "FlyingFox"),
            ],
            // Test hooks (a wedged ingest thread for the watchdog tests) exist in debug builds
            // only: the release binary a gateway runs has none.
            swiftSettings: settings + [.define("VIGIL_TEST_HOOKS", .when(configuration: .debug))]
        ),
        .executableTarget(name: "vigil", dependencies: ["VigilDaemon"], swiftSettings: settings),
        .target(
            name: "VigilTestSupport",
            dependencies: ["VigilCore", "VigilMQTT", "VigilStorage"],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "vigil-bench",
            dependencies: ["VigilTestSupport", "VigilMQTT", "VigilStorage"],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "vigil-faults",
            dependencies: ["VigilTestSupport", "VigilStorage", "VigilCore"],
            swiftSettings: settings
        ),
        // The decoder fuzz target's invariant checker, outside VigilCore so that vigil never links
        // it: the fuzz package in Fuzz/ uses it through its product, FuzzRegressionTests directly.
        .target(name: "VigilFuzzCheck", dependencies: ["VigilCore"], path: "Fuzz/Check", swiftSettings: settings),
        .testTarget(name: "VigilCoreTests", dependencies: ["VigilCore", "VigilTestSupport"], swiftSettings: settings),
        .testTarget(name: "VigilFuzzCheckTests", dependencies: ["VigilFuzzCheck", "VigilCore"], swiftSettings: settings),
        .testTarget(
            name: "VigilStorageTests",
            dependencies: ["VigilStorage", "VigilTestSupport"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "VigilMQTTTests",
            dependencies: ["VigilMQTT", "VigilTestSupport"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "VigilDaemonTests",
            dependencies: ["VigilDaemon", "VigilStorage", "VigilTestSupport"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "VigilSimulatorTests",
            dependencies: ["VigilSimulator", "VigilDaemon", "VigilTestSupport"],
            swiftSettings: settings
        ),
        .testTarget(name: "VigilTestSupportTests", dependencies: ["VigilTestSupport"], swiftSettings: settings),
        // What needs a real broker or the vigil binary.
        .testTarget(
            name: "VigilIntegrationTests",
            dependencies: ["VigilDaemon", "VigilSimulator", "VigilTestSupport", "vigil"],
            swiftSettings: settings
        ),
    ]
)
