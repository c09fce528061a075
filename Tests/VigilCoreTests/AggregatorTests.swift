import Testing

@testable import VigilCore

@Suite("Window aggregator")
struct AggregatorTests {
    let t0 = Timestamp(seconds: 1_800_000_000)  // a multiple of 60 s
    let a = SeriesKey(path: "energy/s/m/v")!
    let b = SeriesKey(path: "energy/s/m/i")!

    func at(_ s: Double) -> Timestamp { t0.adding(TimeSpan(micros: Int64(s * 1e6))) }

    @Test func everyStatOfAWindow() {
        var agg = WindowAggregator(window: .minutes(1), allowedLateness: .seconds(10))
        // Out of order in arrival: first and last go by timestamp.
        for (s, v) in [(5.0, 229.0), (1.0, 231.0), (30.0, 236.0), (59.9, 235.1), (20.0, 228.1)] {
            let added = agg.add(seriesID: 1, series: a, unit: "V", value: v, at: at(s))
            #expect(added)
        }
        #expect(agg.close(now: at(69.9)).isEmpty, "closed only once the lateness has passed")
        let closed = agg.close(now: at(70))
        #expect(closed.count == 1)
        let w = closed[0].stats
        #expect(closed[0].start == t0 && closed[0].end == at(60) && closed[0].unit == "V")
        #expect(w.count == 5 && w.min == 228.1 && w.max == 236.0)
        #expect(abs(w.sum - 1159.2) < 1e-9 && abs(w.mean - 231.84) < 1e-9)
        #expect(w.first == 231.0 && w.last == 235.1)
        let values = [229.0, 231.0, 236.0, 235.1, 228.1]
        let mean = values.reduce(0, +) / 5
        let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 5).squareRoot()
        #expect(abs(w.stddev - sd) < 1e-9)
        #expect(agg.watermark == at(60).micros)
    }

    @Test func lateReadingsAreCountedNotMerged() {
        var agg = WindowAggregator(window: .minutes(1), allowedLateness: .seconds(10))
        agg.add(seriesID: 1, series: a, unit: nil, value: 1, at: at(10))
        // Within the lateness: merged.
        let inTime = agg.add(seriesID: 1, series: a, unit: nil, value: 2, at: at(50))
        #expect(inTime)
        #expect(agg.close(now: at(70)).first?.stats.count == 2)
        // After the close: counted as late, not merged into a window that was sent.
        let tooLate = agg.add(seriesID: 1, series: a, unit: nil, value: 3, at: at(59))
        #expect(!tooLate)
        #expect(agg.late == 1)
        #expect(agg.openWindows == 0)
        // The next window takes its own readings.
        let next = agg.add(seriesID: 1, series: a, unit: nil, value: 4, at: at(61))
        #expect(next)
    }

    @Test func closesInOrderOfEndThenSeries() {
        var agg = WindowAggregator(window: .seconds(10), allowedLateness: .zero)
        for (id, s, t) in [(2, b, 15.0), (1, a, 15.0), (1, a, 3.0), (2, b, 4.0), (1, a, 25.0)] {
            agg.add(seriesID: Int64(id), series: s, unit: nil, value: 1, at: at(t))
        }
        let closed = agg.close(now: at(20))
        #expect(closed.map { "\($0.series.metric)@\(Int(($0.start.micros - t0.micros) / 1_000_000))" } == ["i@0", "v@0", "i@10", "v@10"])
        #expect(agg.openWindows == 1)
        #expect(agg.nextClose == at(30).micros)
    }

    /// After a restart the aggregator starts from the stored watermark: the readings from it
    /// on, replayed from the buffer, complete the window that was open at the crash.
    @Test func restartFromTheWatermark() {
        var before = WindowAggregator(window: .minutes(1), allowedLateness: .seconds(10))
        for s in stride(from: 0.0, to: 60, by: 10) { before.add(seriesID: 1, series: a, unit: nil, value: s, at: at(s)) }
        _ = before.close(now: at(70))
        for s in stride(from: 60.0, to: 90, by: 10) { before.add(seriesID: 1, series: a, unit: nil, value: s, at: at(s)) }
        // Crash here: the window 60..120 was open with three readings.
        var after = WindowAggregator(window: .minutes(1), allowedLateness: .seconds(10), watermark: Timestamp(micros: before.watermark!))
        for s in stride(from: 60.0, to: 90, by: 10) { after.add(seriesID: 1, series: a, unit: nil, value: s, at: at(s)) }
        for s in stride(from: 90.0, to: 120, by: 10) { after.add(seriesID: 1, series: a, unit: nil, value: s, at: at(s)) }
        let old = after.add(seriesID: 1, series: a, unit: nil, value: 0, at: at(30))
        #expect(!old, "before the watermark: sent already")
        let closed = after.close(now: at(130))
        #expect(closed.count == 1 && closed[0].stats.count == 6 && closed[0].stats.sum == 60 + 70 + 80 + 90 + 100 + 110)
    }

    @Test func windowsAlignToTheEpoch() {
        let agg = WindowAggregator(window: .minutes(5), allowedLateness: .zero)
        #expect(agg.windowStart(Timestamp.parseRFC3339("2026-11-23T10:07:12Z")!.micros) == Timestamp.parseRFC3339("2026-11-23T10:05:00Z")!.micros)
        #expect(agg.windowStart(-1) == -300_000_000)
    }
}
