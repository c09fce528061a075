import Foundation

/// The test corpora from outside the project, in `../shared/corpus` beside the checkout
/// (or `$VIGIL_CORPUS`). Tests that need them are skipped, visibly, where they are absent.
public enum Corpus {
    public static var directory: URL? {
        if let env = ProcessInfo.processInfo.environment["VIGIL_CORPUS"], !env.isEmpty {
            let url = URL(fileURLWithPath: env)
            return FileManager.default.fileExists(atPath: url.path) ? url : nil
        }
        let url = Repository.root.deletingLastPathComponent().appendingPathComponent("shared/corpus")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    public static var isAvailable: Bool { directory != nil }

    /// The files of a corpus folder, sorted by name.
    public static func files(_ folder: String, suffix: String = ".json") -> [URL] {
        guard let dir = directory?.appendingPathComponent(folder),
            let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path)
        else { return [] }
        return names.filter { $0.hasSuffix(suffix) }.sorted().map { dir.appendingPathComponent($0) }
    }
}

/// Where the repository is, found from this file's path.
public enum Repository {
    public static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}
