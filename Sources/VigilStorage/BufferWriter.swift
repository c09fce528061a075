import CSQLite
import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// How hard a commit tries to survive power loss.
public enum Durability: String, Sendable, CaseIterable {
    /// WAL with `synchronous=NORMAL`: a commit survives a crash of vigil; the last commits
    /// before a power cut may be lost (the database stays consistent).
    case normal
    /// WAL with `synchronous=FULL`: every commit is fsynced before it counts.
    case full
}

/// Where the buffer lives and how it is kept.
public struct BufferOptions: Sendable, Hashable {
    public var directory: String
    public var durability: Durability = .normal
    public var retention: TimeSpan = .days(7)
    public var maxSize: ByteSize = ByteSize(bytes: 1 << 30)
    /// Free space the buffer's filesystem must keep: below it ingest pauses (the broker
    /// keeps the messages) until space returns.
    public var minFree: ByteSize = ByteSize(bytes: 16 << 20)
    /// How many rejected messages are kept for `vigil rejects`.
    public var rejectsKept: Int = 1000
    /// How many bytes of a rejected payload are kept.
    public var rejectPayloadPrefix: Int = 256

    public init(directory: String) { self.directory = directory }

    public var databasePath: String { directory + "/vigil.db" }
}

/// Counter names kept in the `counters` table.
public enum CounterName {
    public static let readingsStored = "readings_stored_total"
    public static let readingsDuplicate = "readings_duplicate_total"
    public static let readingsPrunedRetention = "readings_pruned_retention_total"
    public static let readingsPrunedSize = "readings_pruned_size_total"
    public static let senmlSkipped = "senml_records_skipped_total"
    public static let messagesReceived = "messages_received_total"
    public static func rejected(_ code: RejectReason.Code) -> String { "rejected_total:\(code.rawValue)" }
    public static let rejectedPrefix = "rejected_total:"
}

/// A rejected message as kept for `vigil rejects`.
public struct RejectRecord: Sendable, Equatable {
    public var at: Timestamp
    public var topic: String
    public var reason: RejectReason
    public var payloadPrefix: [UInt8]
    public var payloadSize: Int

    public init(at: Timestamp, topic: String, reason: RejectReason, payloadPrefix: [UInt8], payloadSize: Int) {
        self.at = at
        self.topic = topic
        self.reason = reason
        self.payloadPrefix = payloadPrefix
        self.payloadSize = payloadSize
    }
}

/// What a maintenance pass did.
public struct MaintenanceReport: Sendable, Equatable {
    public var prunedForRetention: Int64 = 0
    public var prunedForSize: Int64 = 0
    /// Delivered outbox messages deleted (past the retention, or for size).
    public var prunedDelivered: Int64 = 0
    /// Undelivered aggregates deleted because the buffer is full of backlog.
    public var droppedAggregates: Int64 = 0
    /// More work is left: call again soon.
    public var more = false
    public init() {}
}

/// The writing side of the buffer: one connection, prepared statements, batched commits.
///
/// Readings are inserted inside a transaction that the caller opens with `begin()` and
/// closes with `commit()`; nothing is visible, or durable, before the commit. Counters
/// and the latest rejects are written in the same transaction.
///
/// - Important: not thread safe. It is created on one thread and then used only by the
///   ingest thread, which is why it is `@unchecked Sendable`: the handover is the only crossing.
public final class BufferWriter: @unchecked Sendable {
    public private(set) var options: BufferOptions
    let db: SQLiteDatabase
    private let insertReading: SQLiteStatement
    private let insertSeries: SQLiteStatement
    private let updateSeriesUnit: SQLiteStatement
    private let updateSeriesSeen: SQLiteStatement
    private let addCounter: SQLiteStatement
    private let insertReject: SQLiteStatement
    private let setMeta: SQLiteStatement

    struct SeriesEntry {
        var id: Int64
        var unit: String?
        var lastSeen: Int64
        var lastValue: Double
        var dirty: Bool
    }

    private var series: [SeriesKey: SeriesEntry] = [:]
    private var statements: [String: SQLiteStatement] = [:]
    /// The meta values written last, so unchanged ones are not written again.
    public var lastMeta: [String: String] = [:]

    var seriesEntries: [SeriesKey: SeriesEntry] { series }

    /// A prepared statement, kept for reuse.
    func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let s = statements[sql] { return s }
        let s = try db.prepare(sql)
        statements[sql] = s
        return s
    }
    private var seriesCreatedInTransaction: [SeriesKey] = []
    private var counterDeltas: [String: Int64] = [:]
    private var pendingRejects: [RejectRecord] = []
    private var rejectsSinceTrim = 0
    public private(set) var inTransaction = false
    /// Readings inserted in the open transaction.
    public private(set) var pendingRows = 0

    /// Opens or creates the buffer in `options.directory`, migrating its schema.
    public init(options: BufferOptions) throws(SQLiteError) {
        self.options = options
        db = try SQLiteDatabase(path: options.databasePath)
        db.setBusyTimeout(milliseconds: 5000)
        try db.execute("PRAGMA journal_mode = WAL")
        try db.execute("PRAGMA synchronous = \(options.durability == .full ? "FULL" : "NORMAL")")
        // Checkpoints run on their own connection (see `Checkpointer`), so a commit never waits for one.
        try db.execute("PRAGMA wal_autocheckpoint = 0")
        try db.execute("PRAGMA journal_size_limit = 67108864")
        try db.execute("PRAGMA temp_store = MEMORY")
        try db.execute("PRAGMA cache_size = -4096")
        try Schema.migrate(db)
        insertReading = try db.prepare("INSERT OR IGNORE INTO readings(ts, series_id, value) VALUES (?, ?, ?)")
        insertSeries = try db.prepare(
            "INSERT INTO series(path, network, site, device, metric, unit, first_seen, last_seen, last_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        updateSeriesUnit = try db.prepare("UPDATE series SET unit = ? WHERE id = ?")
        updateSeriesSeen = try db.prepare(
            "UPDATE series SET last_seen = max(last_seen, ?), last_value = ? WHERE id = ?")
        addCounter = try db.prepare(
            "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value"
        )
        insertReject = try db.prepare(
            "INSERT INTO rejects(at, topic, reason, detail, payload, payload_size) VALUES (?, ?, ?, ?, ?, ?)")
        setMeta = try db.prepare(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        try loadSeries()
    }

    private func loadSeries() throws(SQLiteError) {
        let stmt = try db.prepare("SELECT id, network, site, device, metric, unit, last_seen, last_value FROM series")
        while try stmt.step() {
            let key = SeriesKey(
                network: stmt.text(1) ?? "", site: stmt.text(2) ?? "", device: stmt.text(3) ?? "",
                metric: stmt.text(4) ?? "")
            series[key] = SeriesEntry(
                id: stmt.int(0), unit: stmt.text(5), lastSeen: stmt.int(6), lastValue: stmt.double(7), dirty: false)
        }
    }

    /// Changes retention and size limits (a reload).
    public func setLimits(retention: TimeSpan, maxSize: ByteSize) {
        options.retention = retention
        options.maxSize = maxSize
    }

    /// Every series the buffer knows, with when it was last seen.
    public var knownSeries: [(SeriesKey, Timestamp)] {
        series.map { ($0.key, Timestamp(micros: $0.value.lastSeen)) }
    }

    public func begin() throws(SQLiteError) {
        guard !inTransaction else { return }
        try db.execute("BEGIN IMMEDIATE")
        inTransaction = true
        pendingRows = 0
    }

    /// Inserts one reading in the open transaction.
    /// - Returns: false when the same reading (series, timestamp and value) is already stored: a redelivery.
    @discardableResult
    public func insert(_ r: Reading) throws(SQLiteError) -> Bool {
        try insertReturningSeries(r) != nil
    }

    /// Inserts one reading in the open transaction.
    /// - Returns: the series' id, or nil when the same reading is already stored (a redelivery).
    public func insertReturningSeries(_ r: Reading) throws(SQLiteError) -> Int64? {
        let id: Int64
        if var entry = series[r.series] {
            id = entry.id
            if r.unit != nil, r.unit != entry.unit {
                updateSeriesUnit.bind(1, r.unit)
                updateSeriesUnit.bind(2, id)
                try updateSeriesUnit.run()
                entry.unit = r.unit
            }
            if r.timestamp.micros >= entry.lastSeen {
                entry.lastSeen = r.timestamp.micros
                entry.lastValue = r.value
            }
            entry.dirty = true
            series[r.series] = entry
        } else {
            id = try createSeries(r)
        }
        insertReading.bind(1, r.timestamp.micros)
        insertReading.bind(2, id)
        insertReading.bind(3, r.value)
        try insertReading.run()
        pendingRows += 1
        if db.changes == 0 {
            counterDeltas[CounterName.readingsDuplicate, default: 0] += 1
            return nil
        }
        counterDeltas[CounterName.readingsStored, default: 0] += 1
        return id
    }

    private func createSeries(_ r: Reading) throws(SQLiteError) -> Int64 {
        let s = r.series
        insertSeries.bind(1, s.path)
        insertSeries.bind(2, s.network)
        insertSeries.bind(3, s.site)
        insertSeries.bind(4, s.device)
        insertSeries.bind(5, s.metric)
        insertSeries.bind(6, r.unit)
        insertSeries.bind(7, r.timestamp.micros)
        insertSeries.bind(8, r.timestamp.micros)
        insertSeries.bind(9, r.value)
        try insertSeries.run()
        let id = db.lastInsertRowID
        series[s] = SeriesEntry(id: id, unit: r.unit, lastSeen: r.timestamp.micros, lastValue: r.value, dirty: false)
        seriesCreatedInTransaction.append(s)
        return id
    }

    /// Counts a rejected message and keeps it (the latest `rejectsKept` survive).
    public func reject(_ record: RejectRecord) {
        counterDeltas[CounterName.rejected(record.reason.code), default: 0] += 1
        pendingRejects.append(record)
        if pendingRejects.count > options.rejectsKept {
            pendingRejects.removeFirst(pendingRejects.count - options.rejectsKept)
        }
    }

    /// Adds to a counter; written with the next commit.
    public func count(_ name: String, _ delta: Int64 = 1) {
        counterDeltas[name, default: 0] += delta
    }

    /// A meta value as stored.
    public func meta(_ key: String) throws(SQLiteError) -> String? {
        let stmt = try statement("SELECT value FROM meta WHERE key = ?")
        stmt.bind(1, key)
        defer { stmt.reset() }
        return try stmt.step() ? stmt.text(0) : nil
    }

    /// Sets a meta value; written with the next commit.
    public func setMeta(_ key: String, _ value: String) throws(SQLiteError) {
        setMeta.bind(1, key)
        setMeta.bind(2, value)
        try setMeta.run()
    }

    /// Commits the open transaction, with the counters and rejects gathered since the last one.
    public func commit() throws(SQLiteError) {
        if !inTransaction {
            guard !counterDeltas.isEmpty || !pendingRejects.isEmpty else { return }
            try begin()
        }
        do {
            try flushSideTables()
            try db.execute("COMMIT")
        } catch {
            rollback()
            throw error
        }
        inTransaction = false
        pendingRows = 0
        seriesCreatedInTransaction.removeAll(keepingCapacity: true)
    }

    private func flushSideTables() throws(SQLiteError) {
        for (name, delta) in counterDeltas where delta != 0 {
            addCounter.bind(1, name)
            addCounter.bind(2, delta)
            try addCounter.run()
        }
        counterDeltas.removeAll(keepingCapacity: true)
        for r in pendingRejects {
            insertReject.bind(1, r.at.micros)
            insertReject.bind(2, r.topic)
            insertReject.bind(3, r.reason.code.rawValue)
            insertReject.bind(4, r.reason.detail)
            insertReject.bind(5, blob: r.payloadPrefix)
            insertReject.bind(6, Int64(r.payloadSize))
            try insertReject.run()
        }
        rejectsSinceTrim += pendingRejects.count
        pendingRejects.removeAll(keepingCapacity: true)
        if rejectsSinceTrim >= max(1, options.rejectsKept / 4) {
            try db.execute(
                "DELETE FROM rejects WHERE id <= (SELECT max(id) FROM rejects) - \(options.rejectsKept)")
            rejectsSinceTrim = 0
        }
    }

    /// Abandons the open transaction. Series created in it are forgotten again.
    public func rollback() {
        lastMeta.removeAll()
        if inTransaction || db.isInTransaction { try? db.execute("ROLLBACK") }
        inTransaction = false
        pendingRows = 0
        for s in seriesCreatedInTransaction { series[s] = nil }
        seriesCreatedInTransaction.removeAll()
        counterDeltas.removeAll()
    }

    /// Writes when each series was last seen (kept in memory between calls).
    public func flushSeriesSeen() throws(SQLiteError) {
        let dirty = series.filter { $0.value.dirty }
        guard !dirty.isEmpty else { return }
        let own = !inTransaction
        if own { try begin() }
        for (key, entry) in dirty {
            updateSeriesSeen.bind(1, entry.lastSeen)
            updateSeriesSeen.bind(2, entry.lastValue)
            updateSeriesSeen.bind(3, entry.id)
            try updateSeriesSeen.run()
            series[key]?.dirty = false
        }
        if own { try commit() }
    }

    /// Readings in the buffer: stored less pruned, from the counters (no count(*) scan).
    public func storedRows() throws(SQLiteError) -> Int64 {
        let stmt = try statement("SELECT coalesce(sum(CASE WHEN name = ? THEN value ELSE -value END), 0) FROM counters WHERE name IN (?, ?, ?)")
        stmt.bind(1, CounterName.readingsStored)
        stmt.bind(2, CounterName.readingsStored)
        stmt.bind(3, CounterName.readingsPrunedRetention)
        stmt.bind(4, CounterName.readingsPrunedSize)
        defer { stmt.reset() }
        return try stmt.step() ? stmt.int(0) : 0
    }

    /// Bytes the buffer's pages hold (free pages not counted).
    public func usedBytes() throws(SQLiteError) -> Int64 {
        let pages = try db.scalarInt("PRAGMA page_count") ?? 0
        let free = try db.scalarInt("PRAGMA freelist_count") ?? 0
        let size = try db.scalarInt("PRAGMA page_size") ?? 4096
        return (pages - free) * size
    }

    /// One bounded step of retention and size enforcement; call it between commits.
    ///
    /// Readings and delivered messages older than the retention go first. Then, while the
    /// buffer is over `maxSize`: the oldest readings already summarised (before
    /// `prunableBefore`), then the oldest delivered messages, then, as a last resort, the
    /// oldest undelivered aggregates. Alerts are never dropped. `chunk` rows at a time.
    public func maintain(now: Timestamp, prunableBefore: Timestamp? = nil, chunk: Int = 5000) throws(SQLiteError)
        -> MaintenanceReport
    {
        var report = MaintenanceReport()
        let cutoff = now.subtracting(options.retention).micros
        try begin()
        do {
            try db.execute(
                "DELETE FROM readings WHERE ts < min(\(cutoff), coalesce((SELECT ts FROM readings ORDER BY ts LIMIT 1 OFFSET \(chunk)), \(cutoff)))"
            )
            report.prunedForRetention = db.changes
            if report.prunedForRetention > 0 {
                counterDeltas[CounterName.readingsPrunedRetention, default: 0] += report.prunedForRetention
            }
            report.prunedDelivered = try pruneDelivered(before: Timestamp(micros: cutoff), chunk: chunk)
            if try usedBytes() > options.maxSize.bytes {
                let limit = prunableBefore?.micros ?? Int64.max
                try db.execute(
                    "DELETE FROM readings WHERE ts < min(\(limit), coalesce((SELECT ts FROM readings ORDER BY ts LIMIT 1 OFFSET \(chunk)), \(limit)))"
                )
                report.prunedForSize = db.changes
                if report.prunedForSize > 0 {
                    counterDeltas[CounterName.readingsPrunedSize, default: 0] += report.prunedForSize
                }
                if report.prunedForSize == 0 {
                    report.prunedDelivered += try pruneDelivered(before: nil, chunk: chunk)
                }
                if report.prunedForSize == 0 && report.prunedDelivered == 0 {
                    // The last resort goes in small steps, checking the size between them.
                    report.droppedAggregates = try dropUndeliveredAggregates(chunk: min(chunk, 500))
                }
                let stillOver = try usedBytes() > options.maxSize.bytes
                report.more = (report.prunedForSize + report.prunedDelivered + report.droppedAggregates) > 0 && stillOver
            }
            report.more = report.more || report.prunedForRetention >= Int64(chunk) || report.prunedDelivered >= Int64(chunk)
            try commit()
        } catch {
            rollback()
            throw error
        }
        return report
    }

    /// Runs a passive WAL checkpoint on this connection (tests and shutdown; the daemon
    /// normally checkpoints from its own connection).
    public func checkpoint() throws(SQLiteError) {
        try db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    }
}

/// Copies WAL pages into the database file from its own connection, so that commits on
/// the writer never wait for a checkpoint.
///
/// - Important: used from one thread at a time (the checkpoint thread); `@unchecked Sendable`
///   for the handover to that thread only.
public final class Checkpointer: @unchecked Sendable {
    let db: SQLiteDatabase

    public init(options: BufferOptions) throws(SQLiteError) {
        db = try SQLiteDatabase(path: options.databasePath)
        db.setBusyTimeout(milliseconds: 100)
        try db.execute("PRAGMA synchronous = \(options.durability == .full ? "FULL" : "NORMAL")")
    }

    /// A passive checkpoint: copies what it can without blocking the writer.
    /// - Returns: the WAL's size in frames and how many were checkpointed.
    @discardableResult
    public func checkpoint() throws(SQLiteError) -> (walFrames: Int32, checkpointed: Int32) {
        var log: Int32 = 0
        var done: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(db.handle, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &done)
        if rc != SQLITE_OK && rc != SQLITE_BUSY { throw db.error(rc, "wal_checkpoint") }
        return (log, done)
    }
}
