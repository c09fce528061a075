import Foundation
import Logging

/// Hands back to the kernel the pages of vigil's own binary that only the start touched.
///
/// Most of an idle vigil's resident memory is not its own data (about 3 MB) but pages of
/// its executable that the start read once: the dynamic linker's relocations, argument and
/// YAML parsing, the runtime's first metadata lookups, each page fault mapping its 64 KiB
/// neighbourhood too. They are clean file pages, which the kernel would reclaim under
/// pressure anyway; `MADV_PAGEOUT` (Linux 5.4) reclaims them now, once the daemon is ready,
/// and the code ingest runs comes back on its first use. What stays resident is the working
/// set, so the gateway's memory figures show what vigil needs.
enum StartupPages {
    /// Pages out the executable's read-only mappings (code, constants, relocations).
    /// - Returns: the bytes of the mappings advised, or nil where the kernel refused.
    @discardableResult
    static func release(logger: Logger) -> Int? {
        #if os(Linux)
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
            let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)
        else { return nil }
        var advised = 0
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // address perms offset dev inode path: only this binary's pages that are never written.
            guard fields.count >= 6, fields[5...].joined(separator: " ") == exe, !fields[1].contains("w") else { continue }
            let range = fields[0].split(separator: "-").compactMap { UInt(String($0), radix: 16) }
            guard range.count == 2, let start = UnsafeMutableRawPointer(bitPattern: range[0]) else { continue }
            let length = Int(range[1] - range[0])
            if madvise(start, length, 21 /* MADV_PAGEOUT */) != 0 {
                logger.debug("madvise(MADV_PAGEOUT) refused", metadata: ["errno": "\(errno)"])
                return nil
            }
            advised += length
        }
        return advised
        #else
        return nil
        #endif
    }
}
