import Testing

@testable import VigilCore

@Suite("Page sparklines")
struct SparklineTests {
    let t0 = Timestamp(micros: 1_763_892_000_000_000)  // a whole minute

    /// Each pass reads only what is new; minutes are means; the hour slides.
    @Test func spansAreReadOnceAndTheHourSlides() {
        var s = Sparklines(bucket: .minutes(1), buckets: 60, lag: .seconds(2))
        var now = t0.adding(.minutes(60))
        var span = s.nextSpan(now: now)
        // The first pass reads the hour up to 2 s ago, from the first minute drawn (the
        // 60th minute, the current one, is drawn as far as it has come).
        #expect(span.from == t0)
        #expect(span.to == now.subtracting(.seconds(2)))
        s.add(series: 1, ts: t0.adding(.minutes(1)).micros, value: 10)
        s.add(series: 1, ts: t0.adding(.minutes(1)).adding(.seconds(30)).micros, value: 20)
        s.add(series: 1, ts: t0.adding(.minutes(59)).micros, value: 5)
        s.read(from: span.from, until: span.to)
        var points = s.points(series: 1, now: now)
        #expect(points.count == 60)
        #expect(points[1] == 15)
        #expect(points[59] == 5)
        #expect(points.compactMap { $0 }.count == 2)
        #expect(s.latest(series: 1)?.value == 5)
        // One second later: from 2 minutes before the last pass ended, down to a whole minute.
        now = now.adding(.seconds(1))
        span = s.nextSpan(now: now)
        #expect(span.from == t0.adding(.minutes(57)))
        #expect(span.to == now.subtracting(.seconds(2)))
        #expect(s.nextSpan(now: now, rewind: .seconds(30)).from == t0.adding(.minutes(59)))
        // Ten minutes later: the oldest minutes are gone.
        now = now.adding(.minutes(10))
        span = s.nextSpan(now: now)
        // The pass reads the minute of 5 again (within its 2 minutes back).
        #expect(span.from <= t0.adding(.minutes(59)))
        s.add(series: 1, ts: t0.adding(.minutes(59)).micros, value: 5)
        s.add(series: 1, ts: span.to.micros - 1, value: 7)
        s.read(from: span.from, until: span.to)
        points = s.points(series: 1, now: now)
        #expect(points.compactMap { $0 } == [5, 7])
        #expect(s.latest(series: 1)?.value == 7)
        #expect(s.points(series: 2, now: now).allSatisfy { $0 == nil })
    }

    /// An older reading does not replace the latest; NaN is not drawn.
    @Test func latestIsTheNewestByTimestamp() {
        var s = Sparklines()
        s.add(series: 1, ts: t0.micros + 5, value: 2)
        s.add(series: 1, ts: t0.micros, value: 1)
        s.add(series: 1, ts: t0.micros + 9, value: .nan)
        s.read(from: t0, until: t0.adding(.seconds(1)))
        #expect(s.latest(series: 1)?.value == 2)
        s.keep(only: [])
        #expect(s.latest(series: 1) == nil)
    }

    /// A reading stored 30 s after its timestamp, after a pass had read past it, is drawn
    /// at the next pass; the minutes read again replace those held (nothing counts twice).
    @Test func lateReadingIsDrawnAndNothingCountsTwice() {
        var s = Sparklines()
        var now = t0.adding(.minutes(30)).adding(.seconds(40))
        var span = s.nextSpan(now: now)
        s.add(series: 1, bucket: t0.adding(.minutes(30)).micros / 60_000_000, sum: 30, count: 3, latestTS: t0.adding(.minutes(30)).adding(.seconds(20)).micros, latestValue: 10)
        s.read(from: span.from, until: span.to)
        #expect(s.points(series: 1, now: now).last == 10)
        // At :30:41 a reading of :30:10 is stored: its minute now holds 4 readings.
        now = now.adding(.seconds(1))
        span = s.nextSpan(now: now)
        #expect(span.from <= t0.adding(.minutes(30)).adding(.seconds(10)))
        s.add(series: 1, bucket: t0.adding(.minutes(30)).micros / 60_000_000, sum: 70, count: 4, latestTS: t0.adding(.minutes(30)).adding(.seconds(20)).micros, latestValue: 10)
        s.read(from: span.from, until: span.to)
        #expect(s.points(series: 1, now: now).last == 17.5)
        #expect(s.latest(series: 1)?.value == 10, "an older reading is not the latest")
        // Another pass with nothing new: the same means, not doubled.
        now = now.adding(.seconds(1))
        span = s.nextSpan(now: now)
        s.add(series: 1, bucket: t0.adding(.minutes(30)).micros / 60_000_000, sum: 70, count: 4, latestTS: t0.adding(.minutes(30)).adding(.seconds(20)).micros, latestValue: 10)
        s.read(from: span.from, until: span.to)
        #expect(s.points(series: 1, now: now).last == 17.5)
        // A minute read again that comes back empty (pruned) is emptied.
        now = now.adding(.seconds(1))
        span = s.nextSpan(now: now)
        s.read(from: span.from, until: span.to)
        #expect(s.points(series: 1, now: now).allSatisfy { $0 == nil })
    }

    /// A pass that read only the newest readings of its span replaces only the minutes it
    /// read whole; of its oldest minute it keeps whichever holds more readings.
    @Test func boundedPassKeepsMinutesItDidNotReadWhole() {
        var s = Sparklines()
        let now = t0.adding(.minutes(60))
        var span = s.nextSpan(now: now)
        for m in 55...59 { s.add(series: 1, bucket: t0.adding(.minutes(Int64(m))).micros / 60_000_000, sum: Double(m) * 10, count: 10, latestTS: 0, latestValue: 0) }
        s.read(from: span.from, until: span.to)
        span = s.nextSpan(now: now.adding(.seconds(1)))
        // The bound let it read minute 58's last 2 readings and minute 59's.
        s.add(series: 1, bucket: t0.adding(.minutes(58)).micros / 60_000_000, sum: 2, count: 2, latestTS: 0, latestValue: 0)
        s.add(series: 1, bucket: t0.adding(.minutes(59)).micros / 60_000_000, sum: 66, count: 11, latestTS: 0, latestValue: 0)
        s.read(from: span.from, until: span.to, complete: false)
        let points = s.points(series: 1, now: now.adding(.seconds(1)))
        #expect(Array(points.suffix(5)) == [55, 56, 57, 58, 6])
    }

    /// The clock going back starts the hour over: nothing drawn ahead of the new now.
    @Test func clockGoingBackStartsOver() {
        var s = Sparklines()
        var now = t0.adding(.minutes(60))
        var span = s.nextSpan(now: now)
        s.add(series: 1, ts: now.subtracting(.seconds(10)).micros, value: 5)
        s.read(from: span.from, until: span.to)
        now = now.subtracting(.minutes(10))
        span = s.nextSpan(now: now)
        #expect(span.from == t0.subtracting(.minutes(10)), "the hour before the new now")
        s.add(series: 1, ts: now.subtracting(.minutes(5)).micros, value: 3)
        s.read(from: span.from, until: span.to)
        #expect(s.points(series: 1, now: now).compactMap { $0 } == [3])
        #expect(s.latest(series: 1)?.value == 3, "the reading ahead of now is no longer the latest")
        #expect(s.points(series: 1, now: now.adding(.minutes(10))).compactMap { $0 } == [3])
    }

    /// Sums that overflow (1e308 twice) are left out: every minute stays finite.
    @Test func hugeValuesKeepMinutesFinite() {
        var s = Sparklines()
        let now = t0.adding(.minutes(60))
        for pass in 0..<3 {
            let span = s.nextSpan(now: now.adding(.seconds(Int64(pass))))
            s.add(series: 1, bucket: t0.adding(.minutes(59)).micros / 60_000_000, sum: .infinity, count: 2, latestTS: now.micros - 3_000_000, latestValue: 1e308)
            s.add(series: 1, bucket: t0.adding(.minutes(59)).micros / 60_000_000, sum: 1e308, count: 1, latestTS: 0, latestValue: 0)
            s.add(series: 1, bucket: t0.adding(.minutes(59)).micros / 60_000_000, sum: 1e308, count: 1, latestTS: 0, latestValue: 0)
            s.read(from: span.from, until: span.to)
        }
        #expect(s.points(series: 1, now: now).allSatisfy { $0?.isFinite ?? true })
        #expect(s.latest(series: 1)?.value == 1e308)
    }
}
