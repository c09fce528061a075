import Foundation

/// A fresh directory under the system's temporary folder (or `base`), removed when the
/// value is released.
public final class TemporaryDirectory: Sendable {
    public let path: String
    public let keep: Bool

    public init(_ prefix: String = "vigil-test", in folder: String? = nil) {
        var base = folder ?? NSTemporaryDirectory()
        while base.hasSuffix("/") { base.removeLast() }
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        path = String(cString: p!)
        keep = ProcessInfo.processInfo.environment["VIGIL_KEEP_TEST_DIRS"] != nil
    }

    public func file(_ name: String) -> String { path + "/" + name }

    deinit {
        if !keep { try? FileManager.default.removeItem(atPath: path) }
    }
}
