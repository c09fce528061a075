/// A span of time at microsecond precision, written as people write it: `30s`, `5m`, `7d`, `1h30m`, `250ms`.
public struct TimeSpan: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var micros: Int64

    public init(micros: Int64) { self.micros = micros }
    public static func seconds(_ s: Int64) -> TimeSpan { TimeSpan(micros: s * 1_000_000) }
    public static func milliseconds(_ ms: Int64) -> TimeSpan { TimeSpan(micros: ms * 1000) }
    public static func minutes(_ m: Int64) -> TimeSpan { .seconds(m * 60) }
    public static func hours(_ h: Int64) -> TimeSpan { .seconds(h * 3600) }
    public static func days(_ d: Int64) -> TimeSpan { .seconds(d * 86400) }
    public static let zero = TimeSpan(micros: 0)

    public static func < (a: TimeSpan, b: TimeSpan) -> Bool { a.micros < b.micros }
    public var seconds: Double { Double(micros) / 1_000_000 }

    /// Parses `30s`, `5m`, `2h`, `7d`, `1w`, `250ms`, `100us`, combinations such as `1h30m`, and `0`.
    public init?(parsing text: String) {
        let s = text.trimmingASCIIWhitespace()
        if s == "0" {
            self.micros = 0
            return
        }
        var total: Double = 0
        var rest = Substring(s)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            var numEnd = rest.startIndex
            while numEnd < rest.endIndex, rest[numEnd].isASCII, rest[numEnd].isNumber || rest[numEnd] == "." {
                numEnd = rest.index(after: numEnd)
            }
            guard numEnd > rest.startIndex, let n = Double(rest[rest.startIndex..<numEnd]) else { return nil }
            rest = rest[numEnd...]
            var unitEnd = rest.startIndex
            while unitEnd < rest.endIndex, rest[unitEnd].isLetter { unitEnd = rest.index(after: unitEnd) }
            let unit = rest[rest.startIndex..<unitEnd]
            rest = rest[unitEnd...]
            let scale: Double
            switch unit {
            case "us", "µs": scale = 1
            case "ms": scale = 1000
            case "s": scale = 1_000_000
            case "m": scale = 60_000_000
            case "h": scale = 3_600_000_000
            case "d": scale = 86_400_000_000
            case "w": scale = 604_800_000_000
            default: return nil
            }
            total += n * scale
        }
        guard total.isFinite, total < 9.0e18 else { return nil }
        self.micros = Int64(total.rounded())
    }

    public var description: String {
        if micros == 0 { return "0s" }
        var rest = micros
        var out = ""
        if rest < 0 {
            out = "-"
            rest = -rest
        }
        let units: [(Int64, String)] = [
            (86_400_000_000, "d"), (3_600_000_000, "h"), (60_000_000, "m"), (1_000_000, "s"), (1000, "ms"), (1, "us"),
        ]
        for (scale, name) in units where rest >= scale {
            out += "\(rest / scale)\(name)"
            rest %= scale
        }
        return out
    }
}

/// A size in bytes, written as people write it: `512MiB`, `1GiB`, `64KiB`, `10MB`, `4096`.
public struct ByteSize: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var bytes: Int64
    public init(bytes: Int64) { self.bytes = bytes }
    public static func < (a: ByteSize, b: ByteSize) -> Bool { a.bytes < b.bytes }

    public init?(parsing text: String) {
        let s = text.trimmingASCIIWhitespace()
        var numEnd = s.startIndex
        while numEnd < s.endIndex, s[numEnd].isASCII, s[numEnd].isNumber || s[numEnd] == "." {
            numEnd = s.index(after: numEnd)
        }
        guard numEnd > s.startIndex, let n = Double(s[s.startIndex..<numEnd]) else { return nil }
        let unit = s[numEnd...].trimmingASCIIWhitespace()
        let scale: Double
        switch unit {
        case "", "B": scale = 1
        case "KiB", "K", "k": scale = 1024
        case "MiB", "M": scale = 1024 * 1024
        case "GiB", "G": scale = 1024 * 1024 * 1024
        case "TiB", "T": scale = 1024 * 1024 * 1024 * 1024
        case "kB", "KB": scale = 1000
        case "MB": scale = 1_000_000
        case "GB": scale = 1_000_000_000
        case "TB": scale = 1_000_000_000_000
        default: return nil
        }
        let total = n * scale
        guard total.isFinite, total < 9.0e18 else { return nil }
        self.bytes = Int64(total.rounded())
    }

    public var description: String {
        let units: [(Int64, String)] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (scale, name) in units where bytes >= scale && bytes % scale == 0 {
            return "\(bytes / scale)\(name)"
        }
        for (scale, name) in units where bytes >= scale {
            let v = Double(bytes) / Double(scale)
            return "\((v * 10).rounded() / 10)\(name)"
        }
        return "\(bytes)B"
    }
}

extension StringProtocol {
    /// The string without leading and trailing spaces, tabs and line breaks.
    public func trimmingASCIIWhitespace() -> String {
        var start = startIndex
        var end = endIndex
        while start < end, self[start] == " " || self[start] == "\t" || self[start] == "\n" || self[start] == "\r" {
            start = index(after: start)
        }
        while end > start {
            let prev = index(before: end)
            guard self[prev] == " " || self[prev] == "\t" || self[prev] == "\n" || self[prev] == "\r" else { break }
            end = prev
        }
        return String(self[start..<end])
    }
}
