import Foundation
import Logging
import VigilCore

/// Watches the free space of the buffer's filesystem. Below `minFree` ingest pauses, so
/// that no commit fails for want of space (which would lose its batch); it resumes once
/// free space is back above one and a half times `minFree`. A commit that fails with
/// SQLITE_FULL anyway (another process filled the disk) pauses it at once.
struct DiskSpaceGuard {
    let directory: String
    let minFree: Int64
    let logger: Logger
    private(set) var paused = false
    private var nextCheck = 0.0
    private var pausedAt = 0.0

    init(directory: String, minFree: Int64, logger: Logger) {
        self.directory = directory
        self.minFree = minFree
        self.logger = logger
    }

    /// Bytes an unprivileged writer may still use on the filesystem of `directory`.
    static func freeBytes(_ directory: String) -> Int64? {
        var s = statvfs()
        guard statvfs(directory, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }

    /// Whether ingest should wait; looks at the filesystem at most every 250 ms.
    mutating func check(now: Double) -> Bool {
        guard now >= nextCheck else { return paused }
        nextCheck = now + 0.25
        guard let free = Self.freeBytes(directory) else { return paused }
        if !paused && free < minFree {
            pause(now: now, free: free)
        } else if paused && free >= minFree + minFree / 2 {
            paused = false
            logger.notice(
                "disk space is back: ingest resumed",
                metadata: ["free": "\(ByteSize(bytes: free))", "paused_seconds": "\(Int(now - pausedAt))"])
        }
        return paused
    }

    /// A commit failed with SQLITE_FULL.
    mutating func full() {
        let now = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        if !paused { pause(now: now, free: Self.freeBytes(directory) ?? 0) }
        nextCheck = now + 1
    }

    private mutating func pause(now: Double, free: Int64) {
        paused = true
        pausedAt = now
        logger.error(
            "the buffer's disk is nearly full: ingest paused; the broker keeps the messages until space returns",
            metadata: [
                "state_dir": "\(directory)", "free": "\(ByteSize(bytes: free))",
                "min_free": "\(ByteSize(bytes: minFree))",
            ])
    }
}
