import Foundation
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilStorage

@Suite("What the page reads")
struct PageReadTests {
    func event(_ rule: String, _ series: String, _ state: AlertTransition.State, _ level: AlertLevel, at: Int64, _ message: String)
        -> AlertTransition
    {
        AlertTransition(
            rule: rule, series: SeriesKey(path: series)!, state: state, level: level, previousLevel: nil, value: Double(at),
            threshold: 1, at: t0.adding(.seconds(at)), since: t0, message: message)
    }

    /// The message of each active alert is its own latest event's, however many events of
    /// other alerts came after it: a "latest N events" scan would miss the quiet one.
    @Test func latestEventOfEachActiveAlert() throws {
        let dir = TemporaryDirectory()
        let w = try Buffer(options: BufferOptions(directory: dir.path))
        try w.write { tx throws(SQLiteError) in
            try w.alerts.record(event("quiet", "n/s/d/a", .raised, .yellow, at: 0, "quiet raised"), tx)
            try w.alerts.record(event("quiet", "n/s/d/a", .escalated, .red, at: 1, "quiet is red now"), tx)
            try w.alerts.record(event("quiet", "n/s/d/b", .raised, .blue, at: 2, "quiet on b"), tx)
            for i in 0..<5000 {
                let up = i % 2 == 0
                try w.alerts.record(
                    event("noisy", "n/s/d/c", up ? .escalated : .deescalated, up ? .orange : .yellow, at: Int64(10 + i), "noisy \(i)"), tx)
            }
        }
        let reader = try BufferReader(options: BufferOptions(directory: dir.path))
        let latest = try reader.latestEvents(of: [("quiet", "n/s/d/a"), ("quiet", "n/s/d/b"), ("noisy", "n/s/d/c"), ("gone", "n/s/d/a")])
        #expect(latest.map(\.transition.message) == ["quiet is red now", "quiet on b", "noisy 4999"])
        #expect(latest.map(\.transition.level) == [.red, .blue, .yellow])
        // It is an index lookup, not a scan of the history.
        let explain = try reader.db.prepare(
            "EXPLAIN QUERY PLAN SELECT id FROM alert_events WHERE rule = 'a' AND series = 'b' ORDER BY id DESC LIMIT 1")
        var plan = ""
        while try explain.step() { plan += (explain.text(3) ?? "") + "; " }
        #expect(plan.contains("alert_events_rule_series") && !plan.contains("TEMP B-TREE"), "\(plan)")
    }

    /// The page reads spans of the buffer and the hot tier, summed by series and minute
    /// in SQLite: both tiers are read, each span once, and each bucket carries its newest reading.
    @Test func bucketsSumFlashAndHotTier() throws {
        let dir = TemporaryDirectory()
        var options = BufferOptions(directory: dir.path)
        options.runtimeDirectory = dir.file("run")
        try FileManager.default.createDirectory(atPath: dir.file("run"), withIntermediateDirectories: true)
        let w = try Buffer(options: options)
        try w.insertReading(reading("n/s/d/t", 1, t0))
        try w.insertReading(reading("n/s/d/u", 10, t0))
        try w.commit()
        #expect(try w.flush { _ throws(SQLiteError) in } == 2)
        try w.insertReading(reading("n/s/d/t", 2, t0.adding(.seconds(1))))
        try w.insertReading(reading("n/s/d/t", 3, t0.adding(.seconds(61))))
        try w.commit()
        let reader = try BufferReader(options: options)
        let ids = Dictionary(uniqueKeysWithValues: try reader.series().map { ($0.key.path, $0.id) })
        var got: [BufferReader.Bucket] = []
        let minute = TimeSpan.minutes(1).micros
        try reader.bucketed(since: t0, until: t0.adding(.seconds(61)), bucket: minute) { got.append($0) }
        got.sort { ($0.seriesID, $0.index) < ($1.seriesID, $1.index) }
        #expect(
            got == [
                .init(seriesID: ids["n/s/d/t"]!, index: t0.micros / minute, sum: 3, count: 2, latestTS: t0.adding(.seconds(1)).micros, latestValue: 2),
                .init(seriesID: ids["n/s/d/u"]!, index: t0.micros / minute, sum: 10, count: 1, latestTS: t0.micros, latestValue: 10),
            ].sorted { ($0.seriesID, $0.index) < ($1.seriesID, $1.index) })
        got = []
        try reader.bucketed(since: t0.adding(.seconds(61)), until: t0.adding(.seconds(62)), bucket: minute) { got.append($0) }
        #expect(got.map(\.sum) == [3] && got.map(\.index) == [t0.micros / minute + 1])
        // As between a flush's flash commit and the emptying of the hot tier: every hot
        // reading in flash too. Each counts once.
        let flash = try SQLiteDatabase(path: options.databasePath)
        try flash.execute("ATTACH DATABASE '\(options.hotPath!)' AS hot; INSERT INTO main.readings SELECT * FROM hot.readings; DETACH DATABASE hot")
        #expect(try SQLiteDatabase(path: options.hotPath!).scalarInt("SELECT count(*) FROM readings") == 2)
        var again: [BufferReader.Bucket] = []
        try reader.bucketed(since: t0, until: t0.adding(.seconds(62)), bucket: minute) { again.append($0) }
        #expect(again.map(\.count).reduce(0, +) == 4, "\(again)")
        #expect(again.map(\.sum).reduce(0, +) == 16)
        // At most `limit` readings, the newest: the work of a pass is bounded.
        var newest: [BufferReader.Bucket] = []
        let read = try reader.bucketed(since: t0, until: t0.adding(.seconds(62)), bucket: minute, limit: 2) { newest.append($0) }
        #expect(read == 2)
        #expect(newest.map(\.latestValue).sorted() == [2, 3] && newest.map(\.count).reduce(0, +) == 2, "\(newest)")
    }
}
