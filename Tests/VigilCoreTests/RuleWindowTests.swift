import Foundation
import Testing

@testable import VigilCore

/// A rule engine on a manual clock in local time: readings and ticks at RFC 3339 times.
private struct Local {
    let engine: RuleEngine
    let zone: LocalTimeZone
    var out: [AlertTransition] = []
    /// The time up to which the clock has ticked.
    var clock: Timestamp?

    init(_ rules: [Rule], zone: LocalTimeZone = .shanghai) {
        self.zone = zone
        engine = RuleEngine(rules: rules.map { var r = $0; r.zone = zone; return r })
    }

    static func t(_ s: String) -> Timestamp { Timestamp.parseRFC3339(s)! }

    /// Ticks every second up to `t`, then reads.
    mutating func read(_ path: String, _ v: Double, at t: Timestamp) {
        tick(to: t)
        engine.ingest(Reading(series: SeriesKey(path: path)!, value: v, timestamp: t), now: t, into: &out)
    }

    mutating func tick(to t: Timestamp) {
        var c = clock.map { $0.adding(.seconds(1)) } ?? t
        while c <= t {
            engine.tick(now: c, into: &out)
            c = c.adding(.seconds(1))
        }
        clock = t
    }

    /// `values(t)` every `every` from `from` to before `to`, ticking in between.
    mutating func feed(_ path: String, from: String, to: String, every: TimeSpan, _ values: (Timestamp) -> Double?) {
        var t = Self.t(from)
        let end = Self.t(to)
        while t < end {
            if let v = values(t) { read(path, v, at: t) } else { tick(to: t) }
            t = t.adding(every)
        }
        tick(to: end)
    }

    /// The transitions so far as "local time state level value", then cleared.
    mutating func take() -> [String] {
        defer { out.removeAll() }
        return out.map { "\(zone.describe($0.at, seconds: true).prefix(19)) \($0.state.rawValue) \($0.level) \(Rule.formatNumber($0.value ?? .nan))" }
    }
}

private func wrule(
    _ id: String = "r", match: String = "urban/#", stat: RuleStat = .mean, window: TimeSpan = .hours(1),
    op: RuleOp = .gt, levels: [AlertLevel: Double] = [:], schedule: ThresholdSchedule? = nil,
    levelWindows: [AlertLevel: TimeSpan] = [:], align: WindowAlign = .sliding, coverage: Coverage? = nil,
    hysteresis: Double = 0, message: String? = nil
) -> Rule {
    Rule(
        id: id, match: try! TopicFilter(match),
        kind: .threshold(
            ThresholdSpec(
                stat: stat, window: window, op: op, thresholds: Thresholds(levels), hysteresis: hysteresis, schedule: schedule,
                levelWindows: levelWindows, align: align, coverage: coverage)), message: message)
}

private let dayNight = ThresholdSchedule(phases: [
    .init(
        from: nil, thresholds: nil,
        periods: [
            .init(name: "day", from: 6 * 60, to: 22 * 60, thresholds: Thresholds([.yellow: 70, .orange: 75])),
            .init(name: "night", from: 22 * 60, to: 6 * 60, thresholds: Thresholds([.yellow: 55])),
        ])
])

private let pm25Phases = ThresholdSchedule(phases: [
    .init(from: nil, thresholds: Thresholds([.yellow: 75, .orange: 115])),
    .init(from: LocalDate(parsing: "2026-03-01"), thresholds: Thresholds([.yellow: 60, .orange: 115])),
    .init(from: LocalDate(parsing: "2031-01-01"), thresholds: Thresholds([.yellow: 50, .orange: 115])),
])

private let noise = "urban/d/n/noise"
private let pm = "urban/d/aq/pm25"
private let rain = "water/s/r/rainfall"

@Suite("Rule windows: Leq, periods, calendar days, effective dates, levels with windows")
struct RuleWindowTests {
    /// Sound levels average by energy: 60 and 80 dB(A) give 77, not 70.
    @Test func leqAveragesByEnergy() throws {
        var w = SlidingWindow(window: .minutes(10), energy: true)
        w.add(60, at: Local.t("2026-06-01T10:00:00+08:00"))
        w.add(80, at: Local.t("2026-06-01T10:00:30+08:00"))
        let leq = try #require(w.value(.leq))
        #expect(abs(leq - 10 * log10((1e6 + 1e8) / 2)) < 1e-6 && Rule.formatNumber(leq) == "77.0329")
        #expect(w.value(.mean) == 70)
        // The arithmetic mean would stay at the line; the Leq crosses it.
        var h = Local([wrule(stat: .leq, window: .minutes(10), levels: [.yellow: 70])])
        h.read(noise, 60, at: Local.t("2026-06-01T10:00:00+08:00"))
        h.read(noise, 80, at: Local.t("2026-06-01T10:00:30+08:00"))
        #expect(h.take() == ["2026-06-01 10:00:30 raised yellow 77.0329"])
        var mean = Local([wrule(stat: .mean, window: .minutes(10), levels: [.yellow: 70])])
        mean.read(noise, 60, at: Local.t("2026-06-01T10:00:00+08:00"))
        mean.read(noise, 80, at: Local.t("2026-06-01T10:00:30+08:00"))
        #expect(mean.take() == [])
    }

    /// The same 60 dB(A) is within the day limit (70) and over the night one (55): at 22:00
    /// the night's thresholds apply without a new reading, and at 06:00 the day's again.
    @Test func periodsByLocalHours() {
        var h = Local([wrule(stat: .last, window: .zero, schedule: dayNight, message: "{period} {threshold}")])
        h.read(noise, 60, at: Local.t("2026-06-01T21:59:00+08:00"))
        h.tick(to: Local.t("2026-06-01T21:59:59+08:00"))
        #expect(h.take() == [])
        h.tick(to: Local.t("2026-06-01T22:00:00+08:00"))
        #expect(h.out.first?.message == "night 55")
        #expect(h.take() == ["2026-06-01 22:00:00 raised yellow 60"])
        h.tick(to: Local.t("2026-06-02T06:00:00+08:00"))
        #expect(h.take() == ["2026-06-02 06:00:00 resolved yellow 60"])
        // Thresholds follow the clock across the day with readings too.
        h.read(noise, 72, at: Local.t("2026-06-02T12:00:00+08:00"))
        h.read(noise, 60, at: Local.t("2026-06-02T21:00:00+08:00"))
        h.tick(to: Local.t("2026-06-02T22:00:00+08:00"))
        #expect(h.take() == ["2026-06-02 12:00:00 raised yellow 72", "2026-06-02 21:00:00 resolved yellow 60", "2026-06-02 22:00:00 raised yellow 60"])
    }

    /// An orange by day has no orange at night: the alert steps down to the night's yellow
    /// at 22:00, as one alert.
    @Test func aLevelTheNextPeriodHasNotIsLeft() {
        var h = Local([wrule(stat: .last, window: .zero, schedule: dayNight)])
        h.read(noise, 80, at: Local.t("2026-06-01T21:00:00+08:00"))
        h.tick(to: Local.t("2026-06-01T22:00:00+08:00"))
        #expect(h.take() == ["2026-06-01 21:00:00 raised orange 80", "2026-06-01 22:00:00 deescalated yellow 80"])
    }

    /// An hourly Leq judged when the clock hour closes, against the limit of the hour's
    /// start: 21:00-22:00 by day, 22:00-23:00 at night.
    @Test func calendarHoursAreJudgedWhenTheyClose() {
        var h = Local([
            wrule(stat: .leq, window: .hours(1), schedule: dayNight, align: .calendar, coverage: Coverage(minimum: .minutes(45)), message: "{window} {period}")
        ])
        h.feed(noise, from: "2026-06-01T21:00:00+08:00", to: "2026-06-01T23:00:00+08:00", every: .minutes(1)) { _ in 60 }
        #expect(h.out.first?.message == "2026-06-01 22:00-23:00 night")
        #expect(h.take() == ["2026-06-01 23:00:00 raised yellow 60"])
        #expect(h.engine.stats.calendarWindows == 2 && h.engine.stats.calendarWindowsShort == 0)
    }

    /// GB 3095's daily value: at least 20 hours a day, an hour counting with 45 minutes of
    /// data. A day of 19 such hours gives no value (and no alert), and is counted; 20 raise
    /// at midnight. An hour of 44 minutes does not count.
    @Test(arguments: [(19, 45, false), (20, 45, true), (20, 44, false), (24, 60, true)])
    func calendarDaysNeedTheirCoverage(hours: Int, minutes: Int, raises: Bool) {
        let r = wrule(stat: .mean, window: .days(1), levels: [.yellow: 60], align: .calendar, coverage: Coverage(minimum: .hours(20), perHour: .minutes(45)))
        var h = Local([r])
        let day = Local.t("2026-06-01T00:00:00+08:00")
        h.feed(pm, from: "2026-06-01T00:00:00+08:00", to: "2026-06-02T00:30:00+08:00", every: .minutes(1)) { t in
            let m = (t.micros - day.micros) / 60_000_000
            return m < Int64(hours) * 60 && m % 60 < Int64(minutes) ? 65 : nil
        }
        #expect(h.take() == (raises ? ["2026-06-02 00:00:00 raised yellow 65"] : []))
        #expect(h.engine.stats.calendarWindows == 1 && h.engine.stats.calendarWindowsShort == (raises ? 0 : 1))
    }

    /// The daily mean is the mean of the hours' means: an hour of many readings weighs as
    /// much as an hour of few.
    @Test func aDailyMeanIsTheMeanOfItsHours() {
        var h = Local([wrule(stat: .mean, window: .days(1), levels: [.yellow: 1000], align: .calendar)])
        // Hour 0: 60 readings of 10; hour 1: one reading of 40.
        h.feed(pm, from: "2026-06-01T00:00:00+08:00", to: "2026-06-01T01:00:00+08:00", every: .minutes(1)) { _ in 10 }
        h.read(pm, 40, at: Local.t("2026-06-01T01:30:00+08:00"))
        h.tick(to: Local.t("2026-06-02T00:00:00+08:00"))
        let j = h.engine.states[0]
        #expect(j.lastValue == 25)
        #expect(h.engine.stats.calendarWindows == 1)
    }

    /// A phased standard: a daily mean of 55 is within 60 on 2030-12-31 and over 50 on
    /// 2031-01-01, with no edit; each day is judged by the limit of its own date.
    @Test func effectiveDates() {
        var h = Local([wrule(stat: .mean, window: .days(1), schedule: pm25Phases, align: .calendar)])
        h.feed(pm, from: "2030-12-31T00:00:00+08:00", to: "2031-01-02T00:00:10+08:00", every: .minutes(10)) { _ in 55 }
        #expect(h.take() == ["2031-01-02 00:00:00 raised yellow 55"])
        // Before the first date, the first phase: 75.
        var early = Local([wrule(stat: .mean, window: .days(1), schedule: pm25Phases, align: .calendar)])
        early.feed(pm, from: "2026-02-28T00:00:00+08:00", to: "2026-03-02T00:00:10+08:00", every: .minutes(10)) { _ in 70 }
        #expect(early.take() == ["2026-03-02 00:00:00 raised yellow 70"])
    }

    /// A sliding rule's thresholds change at local midnight of the effective date.
    @Test func effectiveDatesOnASlidingWindow() {
        var h = Local([wrule(stat: .last, window: .zero, schedule: pm25Phases)])
        h.read(pm, 55, at: Local.t("2030-12-31T23:59:00+08:00"))
        h.tick(to: Local.t("2031-01-01T00:00:00+08:00"))
        #expect(h.take() == ["2031-01-01 00:00:00 raised yellow 55"])
    }

    /// The CMA scale as one rule: each level with its own window. A storm raises blue,
    /// escalates to red and comes back down as one alert.
    @Test func levelsWithWindowsOfTheirOwn() {
        let r = wrule(
            match: "water/+/+/rainfall", stat: .sum, window: .hours(3), op: .ge, levels: [.blue: 50, .yellow: 50, .orange: 50, .red: 100],
            levelWindows: [.blue: .hours(12), .yellow: .hours(6)])
        var h = Local([r])
        // 10 mm every 10 minutes for 100 minutes (60 mm/h), then dry.
        let start = Local.t("2026-07-01T14:00:00+08:00")
        h.feed(rain, from: "2026-07-01T14:00:00+08:00", to: "2026-07-02T04:00:00+08:00", every: .minutes(10)) { t in
            t.micros - start.micros < 100 * 60_000_000 ? 10 : 0
        }
        // Up: orange (50 in 3 h) at the fifth reading, red (100 in 3 h) at the tenth. Down:
        // each level leaves when its own window's sum drops under its line: red and orange
        // with the 3-hour sum (17:00, 17:50), yellow with the 6-hour one, blue with the
        // 12-hour one. Each transition carries the value of its level's window.
        let got = h.take()
        #expect(got == [
            "2026-07-01 14:40:00 raised orange 50", "2026-07-01 15:30:00 escalated red 100",
            "2026-07-01 17:00:00 deescalated orange 90", "2026-07-01 17:50:00 deescalated yellow 100",
            "2026-07-01 20:50:00 deescalated blue 100", "2026-07-02 02:50:00 resolved blue 40",
        ])
        #expect(got.filter { $0.contains("raised") }.count == 1)
    }

    /// Calendar windows and levels with windows come back right after a restart: the
    /// stored states plus the buffer replayed give what an engine that never stopped gives.
    @Test(arguments: ["calendar", "levels"])
    func restartRebuildsTheNewWindows(_ kind: String) {
        let r: Rule
        let series: String
        let values: (Timestamp) -> Double?
        let from = "2026-07-01T00:00:00+08:00"
        let to = "2026-07-03T00:00:30+08:00"
        let cut = Local.t("2026-07-02T09:30:00+08:00")
        if kind == "calendar" {
            r = wrule(stat: .mean, window: .days(1), levels: [.yellow: 60, .orange: 80], align: .calendar, coverage: Coverage(minimum: .hours(20)))
            series = pm
            values = { t in t < Local.t("2026-07-02T00:00:00+08:00") ? 65 : 85 }
        } else {
            r = wrule(
                match: "water/+/+/rainfall", stat: .sum, window: .hours(3), op: .ge, levels: [.blue: 50, .orange: 50, .red: 100],
                levelWindows: [.blue: .hours(12)])
            series = rain
            let storm = Local.t("2026-07-02T08:00:00+08:00")
            values = { t in t >= storm && t.micros - storm.micros < 150 * 60_000_000 ? 8 : 0 }
        }
        var whole = Local([r])
        whole.feed(series, from: from, to: to, every: .minutes(5), values)
        let expected = whole.take()
        #expect(!expected.isEmpty)

        var before = Local([r])
        before.feed(series, from: from, to: "2026-07-02T09:30:00+08:00", every: .minutes(5), values)
        var got = before.take()
        let saved = before.engine.takeDirty()
        var after = Local([r])
        #expect(after.engine.restore(saved).isEmpty)
        // Replay what the buffer holds from `longestWindow` back.
        var t = Local.t(from)
        while t < cut {
            if t >= cut.subtracting(after.engine.longestWindow), let v = values(t) {
                after.engine.replay(Reading(series: SeriesKey(path: series)!, value: v, timestamp: t))
            }
            t = t.adding(.minutes(5))
        }
        after.clock = cut.subtracting(.seconds(1))
        after.feed(series, from: "2026-07-02T09:30:00+08:00", to: to, every: .minutes(5), values)
        got += after.take()
        #expect(got == expected)
    }

    /// A reading for a day already judged is left out and counted.
    @Test func lateReadingsForAClosedWindow() {
        var h = Local([wrule(stat: .mean, window: .days(1), levels: [.yellow: 60], align: .calendar)])
        h.read(pm, 50, at: Local.t("2026-06-01T12:00:00+08:00"))
        h.tick(to: Local.t("2026-06-02T00:00:05+08:00"))
        h.engine.ingest(Reading(series: SeriesKey(path: pm)!, value: 500, timestamp: Local.t("2026-06-01T23:59:59+08:00")), now: Local.t("2026-06-02T00:00:06+08:00"), into: &h.out)
        #expect(h.engine.stats.calendarLate == 1 && h.take() == [])
    }

    /// In a zone with daylight saving time the day of the change has 23 hours: 20 of them
    /// are still enough; its midnight is local midnight.
    @Test func calendarDaysInADaylightSavingZone() throws {
        let berlin = try #require(LocalTimeZone(name: "Europe/Berlin", posix: "CET-1CEST,M3.5.0,M10.5.0/3"))
        var h = Local([wrule(stat: .mean, window: .days(1), levels: [.yellow: 60], align: .calendar, coverage: Coverage(minimum: .hours(23)))], zone: berlin)
        h.feed(pm, from: "2026-03-29T00:00:00+01:00", to: "2026-03-30T00:00:10+02:00", every: .minutes(10)) { _ in 65 }
        #expect(h.take() == ["2026-03-30 00:00:00 raised yellow 65"])
        #expect(h.engine.stats.calendarWindowsShort == 0)
    }
}
