import Foundation
import Testing

@testable import VigilCore

/// UTC seconds of a local wall-clock time written as RFC 3339.
private func utc(_ s: String) -> Int64 { Timestamp.parseRFC3339(s)!.micros / 1_000_000 }

private let berlinRule = "CET-1CEST,M3.5.0,M10.5.0/3"

/// The TZif file of a zone, when tzdata is installed (scripts/deps installs it).
private func tzif(_ name: String) -> LocalTimeZone? {
    guard let data = FileManager.default.contents(atPath: "/usr/share/zoneinfo/" + name) else { return nil }
    return try? LocalTimeZone(name: name, tzif: Array(data))
}

@Suite("Local time")
struct LocalTimeZoneTests {
    /// China keeps UTC+8 all year: midnight is 16:00 UTC the day before, in winter and summer.
    @Test func chinaHasOneOffset() {
        let z = LocalTimeZone.shanghai
        for t in [utc("2026-01-15T12:00:00Z"), utc("2026-07-15T12:00:00Z"), utc("2031-01-01T00:00:00Z")] {
            #expect(z.offset(atSeconds: t) == 28_800)
        }
        #expect(z.utcSeconds(forLocal: LocalDate(year: 2031, month: 1, day: 1).localMidnight) == utc("2030-12-31T16:00:00Z"))
        let day = z.calendarWindow(containing: Timestamp(seconds: utc("2030-12-31T23:59:00+08:00")), length: .days(1))
        #expect(day.start == utc("2030-12-31T00:00:00+08:00") * 1_000_000 && day.end == utc("2031-01-01T00:00:00+08:00") * 1_000_000)
        #expect(z.describe(Timestamp(seconds: utc("2030-12-31T22:00:00Z"))) == "2031-01-01 06:00 +08:00")
        #expect(z.nextTransition(afterSeconds: 0) == nil && !z.hasTransitions)
    }

    /// Berlin: CET, CEST from the last Sunday of March (02:00 -> 03:00) to the last Sunday of
    /// October (03:00 -> 02:00). The day of each change has 23 and 25 hours.
    @Test func aZoneWithDaylightSavingTime() throws {
        let z = try #require(LocalTimeZone(name: "Europe/Berlin", posix: berlinRule))
        #expect(z.offset(atSeconds: utc("2026-01-15T12:00:00Z")) == 3600)
        #expect(z.offset(atSeconds: utc("2026-07-15T12:00:00Z")) == 7200)
        // 2026: 29 March 01:00 UTC and 25 October 01:00 UTC.
        #expect(z.offset(atSeconds: utc("2026-03-29T00:59:59Z")) == 3600)
        #expect(z.offset(atSeconds: utc("2026-03-29T01:00:00Z")) == 7200)
        #expect(z.offset(atSeconds: utc("2026-10-25T00:59:59Z")) == 7200)
        #expect(z.offset(atSeconds: utc("2026-10-25T01:00:00Z")) == 3600)
        #expect(z.nextTransition(afterSeconds: utc("2026-01-01T00:00:00Z")) == utc("2026-03-29T01:00:00Z"))
        #expect(z.nextTransition(afterSeconds: utc("2026-03-29T01:00:00Z")) == utc("2026-10-25T01:00:00Z"))
        // 02:30 on 29 March never happens: the first instant past it is the change.
        #expect(z.utcSeconds(forLocal: utc("2026-03-29T02:30:00Z")) == utc("2026-03-29T01:00:00Z"))
        // 02:30 on 25 October happens twice: the first is in summer time.
        #expect(z.utcSeconds(forLocal: utc("2026-10-25T02:30:00Z")) == utc("2026-10-25T02:30:00+02:00"))
        let spring = z.calendarWindow(containing: Timestamp(seconds: utc("2026-03-29T12:00:00+02:00")), length: .days(1))
        #expect(spring.end - spring.start == 23 * 3_600_000_000)
        #expect(spring.start == utc("2026-03-29T00:00:00+01:00") * 1_000_000)
        let autumn = z.calendarWindow(containing: Timestamp(seconds: utc("2026-10-25T12:00:00+01:00")), length: .days(1))
        #expect(autumn.end - autumn.start == 25 * 3_600_000_000)
        // The repeated hour is one window of two hours, whichever occurrence a reading is in.
        let first = z.calendarWindow(containing: Timestamp(seconds: utc("2026-10-25T02:10:00+02:00")), length: .hours(1))
        let second = z.calendarWindow(containing: Timestamp(seconds: utc("2026-10-25T02:10:00+01:00")), length: .hours(1))
        #expect(first == second && first.end - first.start == 2 * 3_600_000_000)
        // An ordinary hour is an hour.
        let hour = z.calendarWindow(containing: Timestamp(seconds: utc("2026-06-01T21:59:00+02:00")), length: .hours(1))
        #expect(hour.start == utc("2026-06-01T21:00:00+02:00") * 1_000_000 && hour.end - hour.start == 3_600_000_000)
    }

    /// The southern hemisphere: daylight time spans the new year.
    @Test func daylightTimeAcrossTheNewYear() throws {
        let z = try #require(LocalTimeZone(name: "Australia/Sydney", posix: "AEST-10AEDT,M10.1.0,M4.1.0/3"))
        #expect(z.offset(atSeconds: utc("2026-01-15T00:00:00Z")) == 11 * 3600)
        #expect(z.offset(atSeconds: utc("2026-07-15T00:00:00Z")) == 10 * 3600)
        #expect(z.offset(atSeconds: utc("2026-12-31T20:00:00Z")) == 11 * 3600)
    }

    @Test func posixRulesThatAreNot() {
        for bad in ["", "C-1", "CET", "CET-1CEST,M3.5", "CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.5.0,M10.5.0/x"] {
            #expect(LocalTimeZone(name: "x", posix: bad) == nil, "\(bad)")
        }
        #expect(LocalTimeZone(name: "x", posix: "<+0530>-5:30")?.offset(atSeconds: 0) == 19_800)
        #expect(LocalTimeZone(name: "x", posix: "EST5EDT,M3.2.0,M11.1.0")?.offset(atSeconds: utc("2026-07-01T00:00:00Z")) == Int32(-4 * 3600))
    }

    /// The TZif files of tzdata decode to the offsets Foundation gives, from 1970 to 2100
    /// (past 2037 the footer's rule carries them on).
    @Test(arguments: ["Asia/Shanghai", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"])
    func tzifAgreesWithFoundation(_ name: String) throws {
        guard let z = tzif(name) else {
            print("skipped: /usr/share/zoneinfo/\(name) is not there (apt-get install tzdata)")
            return
        }
        let f = try #require(TimeZone(identifier: name))
        var t: Int64 = 0
        while t < utc("2100-01-01T00:00:00Z") {
            #expect(Int(z.offset(atSeconds: t)) == f.secondsFromGMT(for: Date(timeIntervalSince1970: Double(t))), "\(name) at \(t)")
            t += 86_400 * 7 + 3_599
        }
        if name == "Europe/Berlin" {
            let posix = try #require(LocalTimeZone(name: name, posix: berlinRule))
            for y in [2040, 2075] {
                let jan = utc("\(y)-01-01T00:00:00Z")
                #expect(z.nextTransition(afterSeconds: jan) == posix.nextTransition(afterSeconds: jan))
            }
        }
    }

    @Test func notTZif() {
        #expect(throws: LocalTimeZone.TZifError.self) { try LocalTimeZone(name: "x", tzif: Array("hello".utf8)) }
        #expect(throws: LocalTimeZone.TZifError.self) { try LocalTimeZone(name: "x", tzif: Array("TZif2".utf8) + [UInt8](repeating: 0, count: 50)) }
    }

    @Test func localDates() {
        #expect(LocalDate(parsing: "2031-01-01")?.daysSinceEpoch == Timestamp.days(year: 2031, month: 1, day: 1))
        #expect(LocalDate(parsing: "2030-02-29") == nil)
        #expect(LocalDate(parsing: "2031-1-1") == nil)
        #expect(LocalDate(parsing: "2028-02-29")?.description == "2028-02-29")
    }
}
