import Foundation

/// The status record `vigil status` reads: `status.json` in the runtime directory, written
/// each second by the daemon. The runtime directory is a tmpfs, so the record costs flash
/// nothing; it survives a restart of vigil (`RuntimeDirectoryPreserve=restart`) and is gone
/// after a reboot.
public enum StatusFile {
    public static func path(runtimeDir: String) -> String { runtimeDir + "/status.json" }

    /// Replaces the record (a temporary file renamed over it: a reader never sees half).
    static func write(_ json: String, runtimeDir: String) throws {
        try json.write(toFile: path(runtimeDir: runtimeDir), atomically: true, encoding: .utf8)
    }

    /// The record, if a daemon has written one since the last boot.
    public static func read(runtimeDir: String) -> String? {
        try? String(contentsOfFile: path(runtimeDir: runtimeDir), encoding: .utf8)
    }
}
