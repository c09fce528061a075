// swift-tools-version:6.2
// The decoder fuzz target, in a package of its own (as swift-protobuf's FuzzTesting): every
// module of its build is instrumented for libFuzzer and AddressSanitizer, and libFuzzer brings
// its own `main`. It depends on vigil by path, for the VigilFuzzCheck product only. Build and
// run it with scripts/fuzz, which has the flags.
import PackageDescription

let package = Package(
    name: "vigil-fuzz",
    platforms: [.macOS(.v15)],
    // Named: a path dependency's identity is otherwise the name of its folder, which a clone or
    // a worktree chooses, and `.product(package:)` below must spell it.
    dependencies: [.package(name: "vigil", path: "..")],
    targets: [
        .executableTarget(
            name: "vigil-fuzz",
            dependencies: [.product(name: "VigilFuzzCheck", package: "vigil")],
            swiftSettings: [.swiftLanguageMode(.v6), .treatAllWarnings(as: .error)]
        ),
    ]
)
