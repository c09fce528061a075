import CBuildInfo

/// What `vigil --version` prints and `vigil_build_info` carries.
public enum BuildInfo {
    public static let version = String(cString: vigil_build_version())
    /// A git commit (12 hex digits, `-dirty` with uncommitted changes), or `unknown` for a
    /// build outside a git checkout.
    public static let commit = String(cString: vigil_build_commit())

    /// `vigil 0.9.0 (commit 6516fde1c2a3)`, or says plainly that the commit is not known.
    public static var line: String {
        commit == "unknown"
            ? "vigil \(version) (commit unknown: built outside a git checkout without VIGIL_COMMIT)"
            : "vigil \(version) (commit \(commit))"
    }
}
