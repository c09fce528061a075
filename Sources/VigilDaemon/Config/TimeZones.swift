import Foundation
import VigilCore

/// Time zones by name, for the config's `timezone` (and whatever else reads local time): the
/// IANA database's TZif files from tzdata, decoded by `VigilCore.LocalTimeZone`, or a fixed
/// offset. The one place that turns a zone's name into its table.
public enum TimeZones {
    /// Where the TZif files are: `$TZDIR`, else Debian's /usr/share/zoneinfo.
    public static func directory(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        environment["TZDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/share/zoneinfo"
    }

    /// A zone by name: an IANA name (`Asia/Shanghai`, `Europe/Berlin`) from `directory`, or a
    /// fixed offset (`UTC`, `UTC+8`, `UTC+05:30`, `UTC-3`). Asia/Shanghai is built in for
    /// when tzdata is not installed (China has kept UTC+8 all year since 1991).
    /// - Returns: the zone, or why there is none.
    public static func load(_ name: String, directory: String = directory()) -> Result<LocalTimeZone, TimeZoneError> {
        if let fixed = fixedOffset(name) { return .success(fixed) }
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-/")
        guard !name.isEmpty, name.count <= 128, name.allSatisfy({ allowed.contains($0) }), !name.hasPrefix("/"),
            !name.split(separator: "/").contains(where: { $0 == ".." || $0 == "." || $0.isEmpty })
        else {
            return .failure(TimeZoneError("'\(name)' is not a time zone name; write an IANA name such as Asia/Shanghai, or an offset such as UTC+8"))
        }
        let path = directory + "/" + name
        guard let data = FileManager.default.contents(atPath: path) else {
            if name == "Asia/Shanghai" || name == "PRC" { return .success(.shanghai) }
            return .failure(
                TimeZoneError("time zone '\(name)' is not in \(directory) (is tzdata installed? apt-get install tzdata); or write an offset such as UTC+8"))
        }
        do {
            return .success(try LocalTimeZone(name: name, tzif: Array(data)))
        } catch {
            return .failure(TimeZoneError("time zone '\(name)': \(path) is \(error)"))
        }
    }

    /// Why a name gives no zone.
    public struct TimeZoneError: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// `UTC`, `UTC+8`, `UTC+08:00`, `UTC-5:30`, `GMT+1`.
    static func fixedOffset(_ name: String) -> LocalTimeZone? {
        let upper = name.uppercased()
        guard upper.hasPrefix("UTC") || upper.hasPrefix("GMT") else { return nil }
        let rest = upper.dropFirst(3)
        if rest.isEmpty { return .fixed(name, offsetSeconds: 0) }
        guard let sign = rest.first, sign == "+" || sign == "-" else { return nil }
        let parts = rest.dropFirst().split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let h = Int32(parts[0]), parts[0].count <= 2, h <= 14 else { return nil }
        var m: Int32 = 0
        if parts.count == 2 {
            guard parts[1].count == 2, let mm = Int32(parts[1]), mm < 60 else { return nil }
            m = mm
        }
        let seconds = (h * 3600 + m * 60) * (sign == "-" ? -1 : 1)
        return .fixed(name, offsetSeconds: seconds)
    }
}
