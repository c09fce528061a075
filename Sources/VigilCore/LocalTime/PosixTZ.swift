/// A POSIX TZ rule, as the footer of a TZif file gives it (RFC 8536 3.3): a standard
/// offset and, for zones with daylight saving time, when it starts and ends each year.
/// `CST-8` (China), `CET-1CEST,M3.5.0,M10.5.0/3` (Berlin), `<-03>3` (no names).
struct PosixTZ: Sendable, Equatable {
    /// A day of the year as a rule names it.
    enum Day: Sendable, Equatable {
        /// `Jn`: day n of 1...365, February 29 never counted.
        case julian(Int64)
        /// `n`: day n of 0...365, February 29 counted.
        case zeroBased(Int64)
        /// `Mm.w.d`: weekday d (0 Sunday) of week w (1...5, 5 the last) of month m.
        case month(Int64, Int64, Int64)

        /// Days since 1970-01-01 of this day in `year`.
        func days(in year: Int64) -> Int64 {
            let jan1 = Timestamp.days(year: year, month: 1, day: 1)
            switch self {
            case .julian(let n):
                let leap = Timestamp.daysIn(month: 2, year: year) == 29
                return jan1 + n - 1 + (leap && n >= 60 ? 1 : 0)
            case .zeroBased(let n):
                return jan1 + n
            case .month(let m, let w, let d):
                let first = Timestamp.days(year: year, month: m, day: 1)
                let weekday = ((first + 4) % 7 + 7) % 7  // 1970-01-01 was a Thursday
                var day = (d - weekday + 7) % 7 + (w - 1) * 7
                let length = Timestamp.daysIn(month: m, year: year)
                while day >= length { day -= 7 }
                return first + day
            }
        }
    }

    struct DST: Sendable, Equatable {
        var offset: Int32
        var start: Day
        /// Seconds after local midnight (standard time) that it starts.
        var startTime: Int64
        var end: Day
        /// Seconds after local midnight (daylight time) that it ends.
        var endTime: Int64
    }

    /// Seconds east of UTC.
    var standardOffset: Int32
    var dst: DST?

    /// Parses a TZ string; nil if it is not one.
    init?(parsing text: String) {
        var p = Parser(Array(text.utf8))
        guard p.name(), let std = p.offset() else { return nil }
        standardOffset = Int32(-std)  // POSIX counts west of UTC
        if p.atEnd {
            dst = nil
            return
        }
        guard p.name() else { return nil }
        var dstOffset = Int32(-std + 3600)
        if let o = p.offset() { dstOffset = Int32(-o) }
        // A daylight name without rules: no rule to follow; keep standard time.
        if p.atEnd {
            dst = nil
            return
        }
        guard p.take(","), let start = p.day() else { return nil }
        var startTime: Int64 = 7200
        if p.take("/") {
            guard let t = p.time() else { return nil }
            startTime = t
        }
        guard p.take(","), let end = p.day() else { return nil }
        var endTime: Int64 = 7200
        if p.take("/") {
            guard let t = p.time() else { return nil }
            endTime = t
        }
        guard p.atEnd else { return nil }
        dst = DST(offset: dstOffset, start: start, startTime: startTime, end: end, endTime: endTime)
    }

    /// UTC seconds of the start and end of daylight time in `year`.
    func changes(in year: Int64) -> (start: Int64, end: Int64)? {
        guard let d = dst else { return nil }
        let start = d.start.days(in: year) * 86_400 + d.startTime - Int64(standardOffset)
        let end = d.end.days(in: year) * 86_400 + d.endTime - Int64(d.offset)
        return (start, end)
    }

    func offset(atSeconds t: Int64) -> Int32 {
        guard let d = dst else { return standardOffset }
        let year = LocalDate(daysSinceEpoch: LocalTimeZone.floorDiv(t + Int64(standardOffset), 86_400)).year
        guard let (s, e) = changes(in: year) else { return standardOffset }
        let inDST = s < e ? (t >= s && t < e) : !(t >= e && t < s)
        return inDST ? d.offset : standardOffset
    }

    func nextTransition(afterSeconds t: Int64) -> Int64? {
        guard dst != nil else { return nil }
        let year = LocalDate(daysSinceEpoch: LocalTimeZone.floorDiv(t, 86_400)).year
        var best: Int64?
        for y in (year - 1)...(year + 1) {
            guard let (s, e) = changes(in: y) else { continue }
            for c in [s, e] where c > t && (best.map { c < $0 } ?? true) { best = c }
        }
        return best
    }

    /// A cursor over the TZ string's bytes.
    struct Parser {
        let b: [UInt8]
        var i = 0
        init(_ b: [UInt8]) { self.b = b }

        var atEnd: Bool { i == b.count }

        mutating func take(_ c: Character) -> Bool {
            guard i < b.count, b[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }

        /// `CET` (three or more letters) or `<+08>`.
        mutating func name() -> Bool {
            if take("<") {
                while i < b.count, b[i] != UInt8(ascii: ">") { i += 1 }
                return take(">")
            }
            let from = i
            while i < b.count, (b[i] >= 65 && b[i] <= 90) || (b[i] >= 97 && b[i] <= 122) { i += 1 }
            return i - from >= 3
        }

        mutating func number() -> Int64? {
            let from = i
            var v: Int64 = 0
            while i < b.count, b[i] >= 48, b[i] <= 57, i - from < 4 {
                v = v * 10 + Int64(b[i] - 48)
                i += 1
            }
            return i > from ? v : nil
        }

        /// `[+-]hh[:mm[:ss]]` in seconds (west of UTC, as POSIX counts).
        mutating func offset() -> Int64? {
            guard i < b.count else { return nil }
            let c = b[i]
            guard c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || (c >= 48 && c <= 57) else { return nil }
            return time()
        }

        /// `[+-]hh[:mm[:ss]]` in seconds; hours up to 167 (RFC 8536's extension).
        mutating func time() -> Int64? {
            var sign: Int64 = 1
            if take("-") { sign = -1 } else { _ = take("+") }
            guard let h = number(), h <= 167 else { return nil }
            var s = h * 3600
            if take(":") {
                guard let m = number(), m < 60 else { return nil }
                s += m * 60
                if take(":") {
                    guard let sec = number(), sec < 60 else { return nil }
                    s += sec
                }
            }
            return sign * s
        }

        mutating func day() -> Day? {
            if take("J") {
                guard let n = number(), (1...365).contains(n) else { return nil }
                return .julian(n)
            }
            if take("M") {
                guard let m = number(), (1...12).contains(m), take("."), let w = number(), (1...5).contains(w), take("."),
                    let d = number(), d <= 6
                else { return nil }
                return .month(m, w, d)
            }
            guard let n = number(), n <= 365 else { return nil }
            return .zeroBased(n)
        }
    }
}
