#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point in time as microseconds since the Unix epoch (UTC).
///
/// Readings keep their timestamps at microsecond precision, exactly: seconds with a
/// fraction, integer milliseconds and RFC 3339 strings all convert without rounding
/// beyond the sixth decimal.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var micros: Int64

    @inlinable public init(micros: Int64) { self.micros = micros }

    public init(seconds: Int64) { self.micros = seconds &* 1_000_000 }

    /// From fractional seconds, rounded to the nearest microsecond.
    public init?(secondsValue s: Double) {
        guard s.isFinite, abs(s) < 9.0e12 else { return nil }
        self.micros = Int64((s * 1_000_000).rounded())
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.micros < b.micros }

    public var seconds: Double { Double(micros) / 1_000_000 }

    /// The wall clock, now.
    public static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(micros: Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000)
    }

    public func adding(_ d: TimeSpan) -> Timestamp { Timestamp(micros: micros &+ d.micros) }
    public func subtracting(_ d: TimeSpan) -> Timestamp { Timestamp(micros: micros &- d.micros) }

    public var description: String { rfc3339 }

    /// RFC 3339 in UTC: no fraction when whole seconds, milliseconds when exact, else microseconds.
    public var rfc3339: String {
        var secs = micros / 1_000_000
        var frac = micros % 1_000_000
        if frac < 0 {
            frac += 1_000_000
            secs -= 1
        }
        let days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
        let rem = secs - days * 86400
        let (y, m, d) = Timestamp.civil(fromDays: days)
        var out = ""
        out.reserveCapacity(27)
        Timestamp.pad(&out, y, 4)
        out.append("-")
        Timestamp.pad(&out, m, 2)
        out.append("-")
        Timestamp.pad(&out, d, 2)
        out.append("T")
        Timestamp.pad(&out, rem / 3600, 2)
        out.append(":")
        Timestamp.pad(&out, (rem % 3600) / 60, 2)
        out.append(":")
        Timestamp.pad(&out, rem % 60, 2)
        if frac != 0 {
            out.append(".")
            if frac % 1000 == 0 {
                Timestamp.pad(&out, frac / 1000, 3)
            } else {
                Timestamp.pad(&out, frac, 6)
            }
        }
        out.append("Z")
        return out
    }

    /// Seconds since the epoch as an exact decimal with up to six places (`1763892000.5`).
    public var secondsString: String {
        var secs = micros / 1_000_000
        var frac = micros % 1_000_000
        if frac < 0 {
            frac += 1_000_000
            secs -= 1
        }
        if frac == 0 { return String(secs) }
        var f = String(frac)
        f = String(repeating: "0", count: 6 - f.count) + f
        while f.hasSuffix("0") { f.removeLast() }
        return "\(secs).\(f)"
    }

    private static func pad(_ out: inout String, _ v: Int64, _ width: Int) {
        let s = String(v)
        if s.count < width { out.append(String(repeating: "0", count: width - s.count)) }
        out.append(s)
    }

    /// Days since 1970-01-01 from a proleptic Gregorian date (Howard Hinnant's algorithm).
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// Parses an RFC 3339 date-time (`2026-11-23T10:00:12.120Z`, `...+08:00`).
    public static func parseRFC3339(_ text: String) -> Timestamp? {
        var copy = text
        return copy.withUTF8 { parseRFC3339(UnsafeRawBufferPointer($0)) }
    }

    /// Parses an RFC 3339 date-time from UTF-8 bytes.
    public static func parseRFC3339(_ b: UnsafeRawBufferPointer) -> Timestamp? {
        // yyyy-mm-ddThh:mm:ss[.frac](Z|+hh:mm|-hh:mm)
        guard b.count >= 20 else { return nil }
        func digits(_ at: Int, _ n: Int) -> Int64? {
            var v: Int64 = 0
            for i in at..<(at + n) {
                let c = b[i]
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int64(c - 48)
            }
            return v
        }
        guard let year = digits(0, 4), b[4] == UInt8(ascii: "-"),
            let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
            let day = digits(8, 2),
            b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
            let hour = digits(11, 2), b[13] == UInt8(ascii: ":"),
            let minute = digits(14, 2), b[16] == UInt8(ascii: ":"),
            let second = digits(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            hour <= 23, minute <= 59, second <= 60
        else { return nil }
        var i = 19
        var micros: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var n = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if n < 6 { micros = micros * 10 + Int64(b[i] - 48) }
                n += 1
                i += 1
            }
            guard n > 0 else { return nil }
            if n < 6 { for _ in n..<6 { micros *= 10 } }
        }
        guard i < b.count else { return nil }
        var offset: Int64 = 0
        switch b[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard i + 6 == b.count, let oh = digits(i + 1, 2), b[i + 3] == UInt8(ascii: ":"),
                let om = digits(i + 4, 2), oh <= 23, om <= 59
            else { return nil }
            offset = (oh * 60 + om) * 60
            if b[i] == UInt8(ascii: "-") { offset = -offset }
            i += 6
        default:
            return nil
        }
        guard i == b.count else { return nil }
        let days = Timestamp.days(year: year, month: month, day: day)
        let secs = days * 86400 + hour * 3600 + minute * 60 + second - offset
        return Timestamp(micros: secs * 1_000_000 + micros)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

extension Timestamp {
    /// A time as an operator writes it on the command line: RFC 3339, a date (`2026-11-23`,
    /// midnight UTC), seconds since the epoch, `now`, or a span back from now (`1h`, `-30m`, `7d`).
    public static func parseUserTime(_ text: String, now: Timestamp = .now()) -> Timestamp? {
        let s = text.trimmingASCIIWhitespace()
        if s == "now" { return now }
        if let t = parseRFC3339(s) { return t }
        if s.count == 10, let t = parseRFC3339(s + "T00:00:00Z") { return t }
        if let secs = Double(s), secs > 0, s.first?.isNumber == true, let t = Timestamp(secondsValue: secs) { return t }
        let span = s.hasPrefix("-") ? String(s.dropFirst()) : s
        if let d = TimeSpan(parsing: span) { return now.subtracting(d) }
        return nil
    }
}
