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
        s.read(until: span.to)
        var points = s.points(series: 1, now: now)
        #expect(points.count == 60)
        #expect(points[1] == 15)
        #expect(points[59] == 5)
        #expect(points.compactMap { $0 }.count == 2)
        #expect(s.latest(series: 1)?.value == 5)
        // One second later, one second is read.
        now = now.adding(.seconds(1))
        span = s.nextSpan(now: now)
        #expect(span.from == t0.adding(.minutes(60)).subtracting(.seconds(2)))
        #expect(span.to.micros - span.from.micros == 1_000_000)
        // Ten minutes later: the oldest minutes are gone.
        now = now.adding(.minutes(10))
        span = s.nextSpan(now: now)
        s.add(series: 1, ts: span.to.micros - 1, value: 7)
        s.read(until: span.to)
        points = s.points(series: 1, now: now)
        #expect(points.compactMap { $0 } == [5, 7])
        #expect(s.latest(series: 1)?.value == 7)
        // Nothing new: an empty span.
        span = s.nextSpan(now: now)
        #expect(span.from == span.to)
        #expect(s.points(series: 2, now: now).allSatisfy { $0 == nil })
    }

    /// An older reading does not replace the latest; NaN is not drawn.
    @Test func latestIsTheNewestByTimestamp() {
        var s = Sparklines()
        s.add(series: 1, ts: t0.micros + 5, value: 2)
        s.add(series: 1, ts: t0.micros, value: 1)
        s.add(series: 1, ts: t0.micros + 9, value: .nan)
        #expect(s.latest(series: 1)?.value == 2)
        s.keep(only: [])
        #expect(s.latest(series: 1) == nil)
    }
}
