/// A time zone as a table of UTC offsets: the transitions of the IANA time zone database
/// (from a TZif file, which the daemon reads and hands over as bytes) and, after the last
/// one, the POSIX rule that carries them on. Rule periods, calendar windows and effective
/// dates are read in it; so will HJ 212's `DataTime`.
///
/// Pure: VigilCore reads no files. Times are UTC seconds (or `Timestamp`s), local times are
/// "local seconds": the wall clock's reading counted as if it were UTC, so that a local
/// midnight is a multiple of 86,400.
public struct LocalTimeZone: Sendable, Equatable, CustomStringConvertible {
    /// The name it was loaded by (`Asia/Shanghai`, `Europe/Berlin`, `UTC+8`).
    public let name: String
    /// UTC seconds at which each offset starts, ascending.
    let transitions: [Int64]
    /// Seconds east of UTC from the transition of the same index on.
    let offsets: [Int32]
    /// Before the first transition.
    let initialOffset: Int32
    /// After the last transition; nil: the last offset stays.
    let rule: PosixTZ?

    init(name: String, transitions: [Int64], offsets: [Int32], initialOffset: Int32, rule: PosixTZ?) {
        self.name = name
        self.transitions = transitions
        self.offsets = offsets
        self.initialOffset = initialOffset
        self.rule = rule
    }

    /// A zone that keeps one offset for ever.
    public static func fixed(_ name: String, offsetSeconds: Int32) -> LocalTimeZone {
        LocalTimeZone(name: name, transitions: [], offsets: [], initialOffset: offsetSeconds, rule: nil)
    }

    public static let utc = fixed("UTC", offsetSeconds: 0)

    /// China Standard Time, UTC+8, which has kept no daylight saving time since 1991: the
    /// default zone, built in so that it needs no tzdata.
    public static let shanghai = fixed("Asia/Shanghai", offsetSeconds: 8 * 3600)

    /// A zone from a POSIX TZ string (`CST-8`, `CET-1CEST,M3.5.0,M10.5.0/3`).
    public init?(name: String, posix: String) {
        guard let rule = PosixTZ(parsing: posix) else { return nil }
        self.init(name: name, transitions: [], offsets: [], initialOffset: rule.standardOffset, rule: rule)
    }

    public var description: String { name }

    /// Whether the offset ever changes after `t` (UTC seconds).
    public var hasTransitions: Bool { !transitions.isEmpty || rule?.dst != nil }

    // MARK: UTC to local

    /// Seconds east of UTC at UTC second `t`.
    public func offset(atSeconds t: Int64) -> Int32 {
        guard let first = transitions.first else { return rule?.offset(atSeconds: t) ?? initialOffset }
        if t < first { return initialOffset }
        if let rule, t >= transitions[transitions.count - 1] { return rule.offset(atSeconds: t) }
        // The last transition at or before t.
        var lo = 0
        var hi = transitions.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if transitions[mid] <= t { lo = mid } else { hi = mid - 1 }
        }
        return offsets[lo]
    }

    public func offset(at t: Timestamp) -> Int32 { offset(atSeconds: Self.floorSeconds(t.micros)) }

    /// The local wall clock at `t`, in local seconds.
    public func localSeconds(_ t: Timestamp) -> Int64 {
        let s = Self.floorSeconds(t.micros)
        return s + Int64(offset(atSeconds: s))
    }

    /// The first UTC second after `t` at which the offset changes, if it ever does.
    public func nextTransition(afterSeconds t: Int64) -> Int64? {
        var lo = 0
        var hi = transitions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if transitions[mid] > t { hi = mid } else { lo = mid + 1 }
        }
        if lo < transitions.count { return transitions[lo] }
        return rule?.nextTransition(afterSeconds: max(t, transitions.last ?? .min))
    }

    // MARK: Local to UTC

    /// The first UTC second at which the wall clock reads `local` (local seconds). A local
    /// time skipped by a change (spring forward) gives the instant of the change; one that
    /// happens twice (fall back) gives its first occurrence.
    public func utcSeconds(forLocal local: Int64) -> Int64 {
        // Offsets stay within a day of UTC: walk the offsets in force from two days before.
        var lo = local - 2 * 86_400
        var off = offset(atSeconds: lo)
        while true {
            let next = nextTransition(afterSeconds: lo) ?? .max
            let u = local - Int64(off)
            if u < lo { return lo }  // in the gap before this offset began
            if u < next || next > local + 2 * 86_400 { return u }
            lo = next
            off = offset(atSeconds: next)
        }
    }

    // MARK: Calendar windows

    /// The calendar window of `length` (which divides a day) that holds `t`: from a local
    /// wall-clock multiple of `length` after local midnight to the next. On the day a
    /// zone's clocks change, a day has 23 or 25 hours and a repeated hour is one window of two.
    /// - Returns: start (inclusive) and end (exclusive) in UTC microseconds.
    public func calendarWindow(containing t: Timestamp, length: TimeSpan) -> (start: Int64, end: Int64) {
        let len = max(1, length.micros / 1_000_000)
        let local = localSeconds(t)
        let localStart = Self.floorDiv(local, len) * len
        var start = utcSeconds(forLocal: localStart) * 1_000_000
        var end = utcSeconds(forLocal: localStart + len) * 1_000_000
        if start > t.micros { start = t.micros }
        if end <= t.micros { end = t.micros + 1 }
        return (start, end)
    }

    /// The local date and time at `t`, for people: `2031-01-01 22:00 +08:00`.
    public func describe(_ t: Timestamp, seconds: Bool = false) -> String {
        let s = Self.floorSeconds(t.micros)
        let off = Int64(offset(atSeconds: s))
        let local = s + off
        let days = Self.floorDiv(local, 86_400)
        let rem = local - days * 86_400
        let date = LocalDate(daysSinceEpoch: days)
        var out = "\(date) \(Self.two(rem / 3600)):\(Self.two(rem % 3600 / 60))"
        if seconds { out += ":\(Self.two(rem % 60))" }
        let a = abs(off)
        out += " \(off < 0 ? "-" : "+")\(Self.two(a / 3600)):\(Self.two(a % 3600 / 60))"
        return out
    }

    /// The local date at `t`.
    public func date(_ t: Timestamp) -> LocalDate { LocalDate(daysSinceEpoch: Self.floorDiv(localSeconds(t), 86_400)) }

    static func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    static func floorSeconds(_ micros: Int64) -> Int64 { floorDiv(micros, 1_000_000) }
}

/// A date on the local calendar (proleptic Gregorian), as `effective` dates are written.
public struct LocalDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var year: Int64
    public var month: Int64
    public var day: Int64

    public init(year: Int64, month: Int64, day: Int64) {
        self.year = year
        self.month = month
        self.day = day
    }

    public init(daysSinceEpoch d: Int64) {
        (year, month, day) = Timestamp.civil(fromDays: d)
    }

    /// `2031-01-01`; nil for anything else or a day that does not exist.
    public init?(parsing text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let y = Int64(parts[0]), let m = Int64(parts[1]), let d = Int64(parts[2]),
            (1...12).contains(m), d >= 1, d <= Timestamp.daysIn(month: m, year: y)
        else { return nil }
        self.init(year: y, month: m, day: d)
    }

    public var daysSinceEpoch: Int64 { Timestamp.days(year: year, month: month, day: day) }

    /// Local midnight that starts the date, in local seconds.
    public var localMidnight: Int64 { daysSinceEpoch * 86_400 }

    public static func < (a: LocalDate, b: LocalDate) -> Bool { a.daysSinceEpoch < b.daysSinceEpoch }

    public var description: String {
        let y = String(year)
        return String(repeating: "0", count: max(0, 4 - y.count)) + y + "-" + LocalTimeZone.two(month) + "-" + LocalTimeZone.two(day)
    }
}
