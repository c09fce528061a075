import Foundation
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilStorage

let t0 = Timestamp(micros: 1_763_892_000_000_000)

func reading(_ path: String, _ value: Double, _ t: Timestamp, unit: String? = nil) -> Reading {
    Reading(series: SeriesKey(path: path)!, value: value, timestamp: t, unit: unit)
}

func allReadings(_ dir: TemporaryDirectory, _ filter: String? = nil) throws -> [StoredReading] {
    let reader = try BufferReader(options: BufferOptions(directory: dir.path))
    var out: [StoredReading] = []
    try reader.readings(matching: try filter.map { try TopicFilter($0) }) { out.append($0) }
    return out
}

extension Buffer {
    /// Inserts in the open transaction (begun if none is), as the ingest thread does.
    @discardableResult
    func insertReading(_ r: Reading) throws(SQLiteError) -> Bool {
        try readings.insert(r, try transaction()) != nil
    }

    /// A maintenance step in its own commit.
    func maintainNow(now: Timestamp, prunableBefore: Timestamp? = nil, chunk: Int = 5000) throws(SQLiteError) -> MaintenanceReport {
        try write { tx throws(SQLiteError) in try retention.maintain(now: now, prunableBefore: prunableBefore, chunk: chunk, tx) }
    }

    func markDeliveredNow(_ seqs: [Int64], at: Timestamp) throws(SQLiteError) {
        try outbox.markDelivered(seqs, at: at, try transaction())
    }
}

@Suite("SQLite buffer")
struct BufferTests {
    @Test func roundTrip() throws {
        let dir = TemporaryDirectory()
        let w = try Buffer(options: BufferOptions(directory: dir.path))
        _ = try w.transaction()
        try w.insertReading(reading("energy/s1/m1/voltage", 231.4, t0, unit: "V"))
        try w.insertReading(reading("energy/s1/m1/voltage", 229.95, t0.adding(.milliseconds(1))))
        try w.insertReading(reading("water/st7/g1/water_level", -0.000123, t0.adding(.seconds(1))))
        try w.commit()
        let rows = try allReadings(dir)
        #expect(rows == [
            StoredReading(series: "energy/s1/m1/voltage", timestamp: t0, value: 231.4, unit: "V"),
            StoredReading(series: "energy/s1/m1/voltage", timestamp: t0.adding(.milliseconds(1)), value: 229.95, unit: "V"),
            StoredReading(series: "water/st7/g1/water_level", timestamp: t0.adding(.seconds(1)), value: -0.000123, unit: nil),
        ])
        #expect(try allReadings(dir, "water/#").count == 1)
        let counters = try BufferReader(options: BufferOptions(directory: dir.path)).counters()
        #expect(counters[CounterName.readingsStored] == 3)
    }

    @Test func redeliveryStoredOnce() throws {
        let dir = TemporaryDirectory()
        let w = try Buffer(options: BufferOptions(directory: dir.path))
        _ = try w.transaction()
        #expect(try w.insertReading(reading("energy/s/d/m", 1, t0)))
        #expect(try !w.insertReading(reading("energy/s/d/m", 1, t0)))
        // A different value at the same time is a different reading.
        #expect(try w.insertReading(reading("energy/s/d/m", 2, t0)))
        try w.commit()
        #expect(try allReadings(dir).map(\.value) == [1, 2])
        #expect(try BufferReader(options: BufferOptions(directory: dir.path)).counters()[CounterName.readingsDuplicate] == 1)
    }

    /// A new buffer has 1 KiB pages (what a flush rewrites costs a quarter); a buffer made
    /// with 4 KiB pages keeps them, and goes on working.
    @Test func newBuffersHaveSmallPagesOldOnesKeepTheirs() throws {
        let dir = TemporaryDirectory()
        let w = try Buffer(options: BufferOptions(directory: dir.path))
        _ = try w.transaction()
        try w.insertReading(reading("energy/s/d/m", 1, t0))
        try w.commit()
        #expect(try w.db.scalarInt("PRAGMA page_size") == Int64(Buffer.pageSize) && Buffer.pageSize == 1024)
        let old = TemporaryDirectory()
        do {
            let db = try SQLiteDatabase(path: BufferOptions(directory: old.path).databasePath)
            try db.execute("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t(x)")
        }
        let b = try Buffer(options: BufferOptions(directory: old.path))
        #expect(try b.db.scalarInt("PRAGMA page_size") == 4096)
        _ = try b.transaction()
        try b.insertReading(reading("energy/s/d/m", 2, t0))
        try b.commit()
        #expect(try allReadings(old).map(\.value) == [2])
    }

    /// What is not committed is not there after a crash; what is committed is.
    @Test func uncommittedIsLostCommittedIsKept() throws {
        let dir = TemporaryDirectory()
        do {
            let w = try Buffer(options: BufferOptions(directory: dir.path))
            _ = try w.transaction()
            try w.insertReading(reading("energy/s/d/m", 1, t0))
            try w.commit()
            _ = try w.transaction()
            try w.insertReading(reading("energy/s/d/m", 2, t0.adding(.seconds(1))))
            try w.insertReading(reading("energy/s/d/new", 2, t0.adding(.seconds(1))))
            // Dropped without commit, as a crash would.
        }
        #expect(try allReadings(dir).map(\.value) == [1])
        let w = try Buffer(options: BufferOptions(directory: dir.path))
        #expect(w.readings.knownSeries.map(\.0.path) == ["energy/s/d/m"])
    }

    /// The last close checkpoints and keeps the -wal (truncated to nothing) and -shm files
    /// rather than deleting them: a clean stop writes its commit and checkpoint alone. The
    /// database file holds every reading without them.
    @Test func aCloseKeepsAnEmptyWALAndTheDatabaseHoldsEverything() throws {
        let dir = TemporaryDirectory()
        let options = BufferOptions(directory: dir.path)
        do {
            let w = try Buffer(options: options)
            _ = try w.transaction()
            try w.insertReading(reading("energy/s/d/m", 1, t0))
            try w.insertReading(reading("energy/s/d/m", 2, t0.adding(.seconds(1))))
            try w.commit()
            let reader = try BufferReader(options: options)
            #expect(try reader.counters()[CounterName.readingsStored] == 2)
        }
        let files = FileManager.default
        #expect(files.fileExists(atPath: options.databasePath + "-shm"))
        #expect((try files.attributesOfItem(atPath: options.databasePath + "-wal")[.size] as? Int) == 0)
        let alone = TemporaryDirectory()
        try files.copyItem(atPath: options.databasePath, toPath: BufferOptions(directory: alone.path).databasePath)
        #expect(try allReadings(alone).map(\.value) == [1, 2])
    }

    /// Last-seen times are written every few minutes; a crash before the next write
    /// leaves them behind the readings, and the next start reads them from there.
    @Test func aCrashBeforeLastSeenIsWrittenIsMadeGoodFromTheReadings() throws {
        let dir = TemporaryDirectory()
        do {
            let w = try Buffer(options: BufferOptions(directory: dir.path))
            _ = try w.transaction()
            try w.insertReading(reading("energy/s/d/a", 1, t0))
            try w.insertReading(reading("energy/s/d/b", 1, t0))
            try w.commit()
            for i in 1...3 {
                _ = try w.transaction()
                try w.insertReading(reading("energy/s/d/a", Double(i + 1), t0.adding(.seconds(Int64(60 * i)))))
                try w.commit()
            }
            // Dropped without a flush of the last-seen times, as a crash would.
        }
        let w = try Buffer(options: BufferOptions(directory: dir.path))
        let seen = Dictionary(uniqueKeysWithValues: w.readings.knownSeries.map { ($0.0.path, $0.1) })
        #expect(seen["energy/s/d/a"] == t0.adding(.seconds(180)))
        #expect(seen["energy/s/d/b"] == t0)
        #expect(w.readings.hasUnwrittenSeen)
    }

    @Test func rollbackForgetsNewSeries() throws {
        let dir = TemporaryDirectory()
        let w = try Buffer(options: BufferOptions(directory: dir.path))
        _ = try w.transaction()
        try w.insertReading(reading("energy/s/d/m", 1, t0))
        w.rollback()
        _ = try w.transaction()
        try w.insertReading(reading("energy/s/d/m", 2, t0))
        try w.commit()
        #expect(try allReadings(dir).map(\.value) == [2])
    }

    @Test func rejectsAreBoundedAndCounted() throws {
        let dir = TemporaryDirectory()
        var options = BufferOptions(directory: dir.path)
        options.rejectsKept = 10
        let w = try Buffer(options: options)
        for i in 0..<35 {
            w.rejects.add(RejectRecord(at: t0.adding(.seconds(Int64(i))), topic: "t/\(i)", reason: RejectReason(i % 2 == 0 ? .invalidJSON : .badName, "d\(i)"), payloadPrefix: Array("payload \(i)".utf8), payloadSize: 100))
            if i % 7 == 0 { try w.commit() }
        }
        try w.commit()
        let r = try BufferReader(options: options)
        let kept = try r.rejects(limit: 100)
        #expect(kept.count <= 10 + 10 / 4)
        #expect(kept.first?.topic == "t/34")
        #expect(kept.first?.payloadPrefix == Array("payload 34".utf8))
        let c = try r.counters()
        #expect(c[CounterName.rejected(.invalidJSON)] == 18)
        #expect(c[CounterName.rejected(.badName)] == 17)
    }

    @Test func retentionPrunesOldestAndCounts() throws {
        let dir = TemporaryDirectory()
        var options = BufferOptions(directory: dir.path)
        options.retention = .hours(1)
        let w = try Buffer(options: options)
        _ = try w.transaction()
        for i in 0..<120 { try w.insertReading(reading("energy/s/d/m", Double(i), t0.adding(.minutes(Int64(i))))) }
        try w.commit()
        var report = try w.maintainNow(now: t0.adding(.minutes(120)), chunk: 25)
        var pruned = report.prunedForRetention
        while report.more {
            report = try w.maintainNow(now: t0.adding(.minutes(120)), chunk: 25)
            pruned += report.prunedForRetention
        }
        #expect(pruned == 60)
        let rows = try allReadings(dir)
        #expect(rows.first?.value == 60)
        #expect(rows.count == 60)
        #expect(try BufferReader(options: options).counters()[CounterName.readingsPrunedRetention] == 60)
    }

    @Test func maxSizePrunesOldestSummarised() throws {
        let dir = TemporaryDirectory()
        var options = BufferOptions(directory: dir.path)
        options.maxSize = ByteSize(bytes: 512 * 1024)
        let w = try Buffer(options: options)
        _ = try w.transaction()
        for i in 0..<60_000 { try w.insertReading(reading("energy/s/d/m\(i % 10)", Double(i), t0.adding(.milliseconds(Int64(i))))) }
        try w.commit()
        #expect(try w.usedBytes() > options.maxSize.bytes)
        // Nothing after the summarised mark may go.
        let mark = t0.adding(.milliseconds(50_000))
        var report = MaintenanceReport()
        repeat { report = try w.maintainNow(now: t0.adding(.seconds(60)), prunableBefore: mark, chunk: 5000) } while report.more
        let rows = try allReadings(dir)
        #expect(rows.last?.value == 59_999)
        #expect(rows.first!.timestamp <= mark)
        #expect(try w.usedBytes() <= options.maxSize.bytes || rows.first!.timestamp == mark)
        let pruned = try BufferReader(options: options).counters()[CounterName.readingsPrunedSize] ?? 0
        #expect(pruned == Int64(60_000 - rows.count))
        #expect(pruned > 0)
    }

    @Test func schemaVersionAndNewerFileRefused() throws {
        let dir = TemporaryDirectory()
        _ = try Buffer(options: BufferOptions(directory: dir.path))
        let db = try SQLiteDatabase(path: BufferOptions(directory: dir.path).databasePath)
        #expect(try db.scalarInt("PRAGMA user_version") == Int64(Schema.currentVersion))
        // Reopening migrates nothing and keeps data.
        _ = try Buffer(options: BufferOptions(directory: dir.path))
        try db.execute("PRAGMA user_version = 999")
        #expect(throws: SQLiteError.self) { _ = try Buffer(options: BufferOptions(directory: dir.path)) }
    }

    @Test func readerNeedsAnExistingBuffer() {
        let dir = TemporaryDirectory()
        #expect(throws: SQLiteError.self) { _ = try BufferReader(options: BufferOptions(directory: dir.path)) }
    }
}

@Suite("Durability setting")
struct DurabilityTests {
    @Test(arguments: [(Durability.normal, Int64(1)), (Durability.full, Int64(2))])
    func synchronousPragma(_ durability: Durability, _ expected: Int64) throws {
        let dir = TemporaryDirectory()
        var options = BufferOptions(directory: dir.path)
        options.durability = durability
        let w = try Buffer(options: options)
        #expect(try w.db.scalarInt("PRAGMA synchronous") == expected)
        #expect(try w.db.scalarText("PRAGMA journal_mode") == "wal")
    }
}

@Suite("Outbox")
struct OutboxTests {
    /// seq is strictly increasing and never reused, across restarts and pruning.
    @Test func seqIsNeverReused() throws {
        let dir = TemporaryDirectory()
        let options = BufferOptions(directory: dir.path)
        var w = try Buffer(options: options)
        var seq = try w.outbox.loadNextSeq()
        #expect(seq == 1)
        for _ in 0..<5 {
            try w.outbox.enqueue(seq: seq, kind: .aggregate, topic: "t", payload: [1], at: t0, try w.transaction())
            seq += 1
        }
        try w.commit()
        try w.markDeliveredNow([1, 2, 3, 4, 5], at: t0)
        try w.commit()
        // Every delivered row is pruned: the counter stays ahead of them.
        _ = try w.maintainNow(now: t0.adding(.days(30)))
        #expect(try BufferReader(options: options).outbox().isEmpty)
        w = try Buffer(options: options)
        #expect(try w.outbox.loadNextSeq() == 6)
        // A crash before commit: the seq it would have used is used again, which is fine (it never left).
        try w.outbox.enqueue(seq: 6, kind: .alert, topic: "t", payload: [1], at: t0, try w.transaction())
        w.rollback()
        #expect(try w.outbox.loadNextSeq() == 6)
    }

    /// Over max_size: summarised readings go first, then delivered messages, then
    /// undelivered aggregates; undelivered alerts stay.
    @Test func pruningOrder() throws {
        let dir = TemporaryDirectory()
        var options = BufferOptions(directory: dir.path)
        options.maxSize = ByteSize(bytes: 1 << 20)
        let w = try Buffer(options: options)
        let big = [UInt8](repeating: 65, count: 400)
        var seq: Int64 = 1
        _ = try w.transaction()
        for i in 0..<3000 {
            try w.outbox.enqueue(seq: seq, kind: i % 10 == 0 ? .alert : .aggregate, topic: "t", payload: big, at: t0, try w.transaction())
            seq += 1
        }
        for i in 0..<10_000 { try w.insertReading(reading("energy/s/d/m", Double(i), t0.adding(.milliseconds(Int64(i))))) }
        try w.commit()
        try w.markDeliveredNow(Array(1...500), at: t0)
        try w.commit()
        var total = MaintenanceReport()
        var report = MaintenanceReport()
        repeat {
            report = try w.maintainNow(now: t0.adding(.seconds(20)), prunableBefore: t0.adding(.seconds(20)), chunk: 2000)
            total.prunedForSize += report.prunedForSize
            total.prunedDelivered += report.prunedDelivered
            total.droppedAggregates += report.droppedAggregates
        } while report.more
        #expect(total.prunedForSize == 10_000, "readings first")
        #expect(total.prunedDelivered == 500, "then delivered messages")
        #expect(total.droppedAggregates > 0, "then undelivered aggregates")
        let left = try BufferReader(options: options).outbox(limit: 10_000)
        #expect(left.filter { $0.0.kind == .alert && $0.1 == nil }.count == 250, "undelivered alerts are never dropped")
        #expect(try w.usedBytes() <= options.maxSize.bytes)
    }
}
