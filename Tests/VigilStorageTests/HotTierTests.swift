import Foundation
import Synchronization
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilStorage

/// A buffer with its hot tier in `run/` beside `state/`.
private func options(_ dir: TemporaryDirectory, state: String = "state") -> BufferOptions {
    try? FileManager.default.createDirectory(atPath: dir.file(state), withIntermediateDirectories: true)
    try? FileManager.default.createDirectory(atPath: dir.file("run"), withIntermediateDirectories: true)
    var o = BufferOptions(directory: dir.file(state))
    o.runtimeDirectory = dir.file("run")
    return o
}

/// Readings in the flash database alone, as a power cut would leave it.
private func flashCount(_ o: BufferOptions) throws -> Int64 {
    try SQLiteDatabase(path: o.databasePath, readOnly: true).scalarInt("SELECT count(*) FROM readings") ?? 0
}

private func commitReadings(_ b: Buffer, _ values: Range<Int>, at t: Timestamp = t0) throws {
    for i in values { try b.insertReading(reading("energy/s/d/m", Double(i), t.adding(.milliseconds(Int64(i))))) }
    try b.commit()
}

@Suite("Hot tier")
struct HotTierTests {
    /// Batches are committed to the hot tier; flash holds the series (at once) and the
    /// readings only after a flush; the reader sees every reading either way.
    @Test func batchesGoToTheHotTierAndFlashOnlyAtAFlush() throws {
        let dir = TemporaryDirectory()
        let o = options(dir)
        let b = try Buffer(options: o)
        #expect(b.hotInUse && b.hotStart == .empty)
        try commitReadings(b, 0..<100)
        #expect(try flashCount(o) == 0)
        #expect(try SQLiteDatabase(path: o.databasePath, readOnly: true).scalarInt("SELECT count(*) FROM series") == 1)
        let reader = try BufferReader(options: o)
        var seen = 0
        try reader.readings(matching: nil) { _ in seen += 1 }
        #expect(seen == 100)
        #expect(try reader.counters()[CounterName.readingsStored] == 100)
        #expect(try b.flush { _ throws(SQLiteError) in } == 100)
        #expect(try flashCount(o) == 100)
        #expect(try b.tiers.hot!.isEmpty())
        #expect(try BufferReader(options: o).counters()[CounterName.readingsStored] == 100)
        #expect(try b.counters.stored(CounterName.hotFlushes) == 1)
        // Nothing in the hot tier: a flush writes nothing and counts nothing.
        #expect(try b.flush { _ throws(SQLiteError) in } == 0)
        #expect(try b.counters.stored(CounterName.hotFlushes) == 1)
    }

    /// A crash leaves committed readings in the hot tier (tmpfs survives it); the next
    /// start moves them into flash.
    @Test func aStartMovesWhatACrashLeft() throws {
        let dir = TemporaryDirectory()
        let o = options(dir)
        do {
            let b = try Buffer(options: o)
            try commitReadings(b, 0..<50)
            try b.insertReading(reading("energy/s/d/m", 999, t0))  // not committed: lost, as a crash loses it
        }
        let b = try Buffer(options: o)
        #expect(b.hotStart == .moved(readings: 50))
        #expect(try flashCount(o) == 50)
        #expect(try b.counters.stored(CounterName.readingsStored) == 50)
    }

    /// A crash after a flush's flash commit and before the hot tier was emptied: the next
    /// start finds the rows in flash already and neither stores nor counts them twice.
    @Test func aFlushCutShortIsNotDoneTwice() throws {
        let dir = TemporaryDirectory()
        let o = options(dir)
        let saved = dir.file("saved")
        do {
            let b = try Buffer(options: o)
            try commitReadings(b, 0..<30)
            // The hot tier as the crash would leave it: full, one generation behind.
            try FileManager.default.createDirectory(atPath: saved, withIntermediateDirectories: true)
            try b.tiers.hot!.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            try FileManager.default.copyItem(atPath: o.hotPath!, toPath: saved + "/hot.db")
            try b.flush { _ throws(SQLiteError) in }
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: o.hotPath! + suffix) }
        try FileManager.default.copyItem(atPath: saved + "/hot.db", toPath: o.hotPath!)
        let b = try Buffer(options: o)
        #expect(b.hotStart == .empty)
        #expect(try flashCount(o) == 30)
        #expect(try b.counters.stored(CounterName.readingsStored) == 30)
        #expect(try b.tiers.hot!.isEmpty())
    }

    /// The hot tier gone after a run that did not stop cleanly (a reboot): said and
    /// counted. Gone after a clean stop: nothing was lost.
    @Test func aHotTierGoneIsLostUnlessTheStopWasClean() throws {
        let dir = TemporaryDirectory()
        let o = options(dir)
        do {
            let b = try Buffer(options: o)
            try commitReadings(b, 0..<10)
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: o.hotPath! + suffix) }
        do {
            let b = try Buffer(options: o)
            guard case .lost = b.hotStart else {
                Issue.record("expected lost, got \(b.hotStart)")
                return
            }
            try b.commit()
            #expect(try b.counters.stored(CounterName.hotTierLost) == 1)
            try commitReadings(b, 10..<20)
            try b.close { _ throws(SQLiteError) in }
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: o.hotPath! + suffix) }
        let b = try Buffer(options: o)
        #expect(b.hotStart == .empty)
        #expect(try flashCount(o) == 10)
    }

    /// A runtime directory that holds another buffer's hot tier (the state directory was
    /// replaced): its readings refer to series of that buffer and are discarded.
    @Test func anotherBuffersHotTierIsDiscarded() throws {
        let dir = TemporaryDirectory()
        do {
            let b = try Buffer(options: options(dir, state: "old"))
            try commitReadings(b, 0..<5)
        }
        let o = options(dir, state: "new")
        let b = try Buffer(options: o)
        #expect(b.hotStart == .foreign(readings: 5))
        #expect(try flashCount(o) == 0)
    }

    /// A redelivered reading is stored once, whether the first copy is still in the hot
    /// tier or was flushed already.
    @Test func aRedeliveryIsStoredOnceAcrossAFlush() throws {
        let dir = TemporaryDirectory()
        let o = options(dir)
        let b = try Buffer(options: o)
        let r = reading("energy/s/d/m", 1, t0)
        #expect(try b.insertReading(r))
        #expect(try !b.insertReading(r))
        try b.commit()
        try b.flush { _ throws(SQLiteError) in }
        #expect(try !b.insertReading(r))
        #expect(try b.insertReading(reading("energy/s/d/m", 2, t0)))
        try b.commit()
        try b.flush { _ throws(SQLiteError) in }
        #expect(try flashCount(o) == 2)
        #expect(try b.counters.stored(CounterName.readingsDuplicate) == 2)
    }

    /// A flush of the readings alone leaves the counters in the hot tier (still counted by
    /// a reader) and the flash counters' page unwritten; a full flush moves them.
    @Test func aReadingsFlushLeavesTheCounters() throws {
        let dir = TemporaryDirectory()
        let o = options(dir)
        let b = try Buffer(options: o)
        try commitReadings(b, 0..<40)
        try b.flush(counters: false) { _ throws(SQLiteError) in }
        #expect(try flashCount(o) == 40)
        let flash = try SQLiteDatabase(path: o.databasePath, readOnly: true)
        #expect(try flash.scalarInt("SELECT value FROM counters WHERE name = 'readings_stored_total'") == nil)
        #expect(try BufferReader(options: o).counters()[CounterName.readingsStored] == 40)
        try commitReadings(b, 40..<50)
        try b.flush { _ throws(SQLiteError) in }
        #expect(try flashCount(o) == 50)
        #expect(try flash.scalarInt("SELECT value FROM counters WHERE name = 'readings_stored_total'") == 50)
        #expect(try b.tiers.hot!.isEmpty())
    }

    /// A flush of a large hot tier goes in steps of a bounded number of readings, each a
    /// flash commit and then a deletion from the hot tier; a reading that arrives between
    /// steps (a late one, older than what was moved) waits for the next. Between a step's
    /// commit and its deletion the oldest hot readings are in both tiers: the reader's
    /// export and its buckets count each reading once all the same.
    @Test func aFlushInStepsMovesEachReadingOnceAndReadersCountItOnce() throws {
        let dir = TemporaryDirectory()
        let o = options(dir)
        let b = try Buffer(options: o)
        try commitReadings(b, 0..<5000)
        let reader = try BufferReader(options: o)
        func seenOnce(_ expected: Int, _ when: String) throws {
            var values: [Double: Int] = [:]
            try reader.readings(matching: nil) { values[$0.value, default: 0] += 1 }
            #expect(values.count == expected && values.values.allSatisfy { $0 == 1 }, "export \(when)")
            var counted = 0
            try reader.bucketed(since: t0.adding(.seconds(-10)), until: t0.adding(.seconds(10)), bucket: 1_000_000) { counted += $0.count }
            #expect(counted == expected, "buckets \(when)")
        }
        let (moved, last) = try #require(try b.copyStep(limit: 2048))
        #expect(moved == 2048 && last.ts == t0.adding(.milliseconds(2047)).micros)
        #expect(try flashCount(o) == 2048 && b.tiers.hot!.rowCount() == 5000)
        try seenOnce(5000, "between a step's commit and its deletion")
        try b.tiers.hot!.deleteReadings(through: last)
        #expect(try b.tiers.hot!.rowCount() == 5000 - 2048)
        try seenOnce(5000, "after a step")
        // A late reading, older than all that moved: the next step takes it first.
        try b.insertReading(reading("energy/s/d/m", -1, t0.adding(.seconds(-1))))
        try b.commit()
        #expect(try b.flushStep(limit: 2048) == 2048)
        try seenOnce(5001, "after the second step")
        #expect(try b.flushStep(limit: 2048) == nil)
        #expect(try b.counters.stored(CounterName.hotFlushes) == 0)
        #expect(try b.flush { _ throws(SQLiteError) in } == 5001 - 4096)
        #expect(try flashCount(o) == 5001 && b.tiers.hot!.isEmpty())
        #expect(try b.counters.stored(CounterName.hotFlushes) == 1)
        #expect(try b.counters.stored(CounterName.readingsStored) == 5001)
        try seenOnce(5001, "after the flush")
    }

    /// A flash commit that is fsynced (a new series, the last part of a flush) is held
    /// by the gate; a batch into the hot tier and an unsynced step of a flush are not.
    @Test func theGateHoldsFsyncedFlashCommitsOnly() throws {
        let dir = TemporaryDirectory()
        let b = try Buffer(options: options(dir))
        let holds = Mutex<[String]>([])
        b.flashSyncGate = (hold: { holds.withLock { $0.append("hold") } }, release: { holds.withLock { $0.append("release") } })
        try commitReadings(b, 0..<10)
        #expect(holds.withLock { $0 } == ["hold", "release"], "a new series is a flash commit")
        holds.withLock { $0.removeAll() }
        try commitReadings(b, 10..<3000)
        #expect(holds.withLock { $0 }.isEmpty, "batches go to the hot tier")
        #expect(try b.flushStep(limit: 1024) == 1024)
        #expect(holds.withLock { $0 }.isEmpty, "a step is not fsynced")
        #expect(try b.flush { _ throws(SQLiteError) in } == 3000 - 1024)
        #expect(holds.withLock { $0 } == ["hold", "release"])
    }

    /// A reader in the middle of a read on the hot tier (an export, a page build) does not
    /// hold up a flush, which runs on the ingest thread: the WAL is given back at a later
    /// flush instead. (The checkpoint used to wait up to the 5 s busy timeout.)
    @Test func aReaderOnTheHotTierDoesNotHoldUpAFlush() throws {
        let dir = TemporaryDirectory()
        let o = options(dir)
        let b = try Buffer(options: o)
        try commitReadings(b, 0..<100)
        let reader = try SQLiteDatabase(path: o.hotPath!, readOnly: true)
        try reader.execute("BEGIN")
        #expect(try reader.scalarInt("SELECT count(*) FROM readings") == 100)
        let started = Date()
        #expect(try b.flush { _ throws(SQLiteError) in } == 100)
        #expect(Date().timeIntervalSince(started) < 1.0)
        try reader.execute("COMMIT")
        // With the reader gone, the next flush gives the WAL back.
        try commitReadings(b, 100..<150)
        #expect(try b.flush { _ throws(SQLiteError) in } == 50)
        #expect(try flashCount(o) == 150)
        let wal = (try? FileManager.default.attributesOfItem(atPath: o.hotPath! + "-wal")[.size] as? Int) ?? 0
        #expect(wal == 0)
    }

    /// `durability: full` has no hot tier: every commit is on flash.
    @Test func durabilityFullWritesFlashAtEveryCommit() throws {
        let dir = TemporaryDirectory()
        var o = options(dir)
        o.durability = .full
        let b = try Buffer(options: o)
        #expect(!b.hotInUse && b.hotStart == .unused)
        try commitReadings(b, 0..<10)
        #expect(try flashCount(o) == 10)
        #expect(!FileManager.default.fileExists(atPath: dir.file("run/hot.db")))
    }
}
