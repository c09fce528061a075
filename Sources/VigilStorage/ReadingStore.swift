import CSQLite
import VigilCore

/// The `readings` and `series` tables: each reading once, and every series with when it
/// was last seen.
///
/// A batch's readings go to the hot tier when there is one (see `HotTier`), else to the
/// flash buffer; series are created in the flash buffer at once (their ids are what the
/// readings refer to). The series are kept in memory (id, unit, last seen and last
/// value), so an insert costs one statement; when each was last seen, and a unit that
/// changed, are written every ten minutes with a flush and at a clean stop, not with
/// every reading (a start finds what a crash left unwritten in the readings).
///
/// - Important: the ingest thread's, like the `Buffer` that owns it.
public final class ReadingStore: TransactionParticipant {
    private let tiers: Tiers
    private let db: SQLiteDatabase
    private let counters: CounterStore
    private let insertReading: SQLiteStatement
    private let exists: SQLiteStatement
    private let insertSeries: SQLiteStatement
    private let updateSeriesSeen: SQLiteStatement
    private let since: SQLiteStatement

    struct SeriesEntry {
        var id: Int64
        var unit: String?
        var lastSeen: Int64
        var lastValue: Double
        var dirty: Bool
    }

    private var series: [SeriesKey: SeriesEntry] = [:]
    private var createdInTransaction: [SeriesKey] = []
    /// Readings put in the hot tier in the open transaction, to go to flash instead should
    /// the hot tier's filesystem fill up before the commit.
    private var pendingHot: [(Int64, Int64, Double)] = []
    /// The newest reading in the flash buffer: a hot reading at or before it may be a
    /// redelivery of one flushed already, and is looked up there.
    private var flashNewest: Int64
    /// Readings inserted in the open transaction.
    public private(set) var pendingRows = 0

    init(tiers: Tiers, counters: CounterStore) throws(SQLiteError) {
        self.tiers = tiers
        db = tiers.cold.db
        self.counters = counters
        insertReading = try db.prepare("INSERT OR IGNORE INTO readings(ts, series_id, value) VALUES (?, ?, ?)")
        exists = try db.prepare("SELECT 1 FROM readings WHERE ts = ? AND series_id = ? AND value = ?")
        insertSeries = try db.prepare(
            "INSERT INTO series(path, network, site, device, metric, unit, first_seen, last_seen, last_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        updateSeriesSeen = try db.prepare(
            "UPDATE series SET last_seen = max(last_seen, ?), last_value = ?, unit = coalesce(?, unit) WHERE id = ?")
        since = try db.prepare("SELECT ts, series_id, value FROM readings WHERE ts >= ? ORDER BY ts")
        flashNewest = try db.scalarInt("SELECT max(ts) FROM readings") ?? .min
        let stmt = try db.prepare("SELECT id, network, site, device, metric, unit, last_seen, last_value FROM series")
        while try stmt.step() {
            let key = SeriesKey(
                network: stmt.text(1) ?? "", site: stmt.text(2) ?? "", device: stmt.text(3) ?? "", metric: stmt.text(4) ?? "")
            series[key] = SeriesEntry(
                id: stmt.int(0), unit: stmt.text(5), lastSeen: stmt.int(6), lastValue: stmt.double(7), dirty: false)
        }
        try recoverSeen()
    }

    /// Last-seen times reach flash every few minutes and at a clean stop; after a crash or
    /// a power cut, the readings flushed since the last write are newer than every stored
    /// time (a reading more than `limits.max_future` ahead is rejected, so the newest stored
    /// time is about when it was written). Those readings set their series' times again. A
    /// reading that came late, older than that newest time, is not looked for.
    private func recoverSeen() throws(SQLiteError) {
        guard let through = series.values.map(\.lastSeen).max() else { return }
        let byID = seriesByID()
        // SQLite takes `value` from the row that holds max(ts).
        let stmt = try db.prepare("SELECT series_id, max(ts), value FROM readings WHERE ts > ? GROUP BY series_id")
        stmt.bind(1, through)
        while try stmt.step() {
            guard let key = byID[stmt.int(0)], var e = series[key], stmt.int(1) > e.lastSeen else { continue }
            e.lastSeen = stmt.int(1)
            e.lastValue = stmt.double(2)
            e.dirty = true
            series[key] = e
        }
    }

    /// Every series the buffer knows, with when it was last seen.
    public var knownSeries: [(SeriesKey, Timestamp)] {
        series.map { ($0.key, Timestamp(micros: $0.value.lastSeen)) }
    }

    /// Inserts one reading.
    /// - Returns: the series' id, or nil when the same reading (series, time and value) is
    ///   already stored: a redelivery.
    public func insert(_ r: Reading, _ tx: Transaction) throws(SQLiteError) -> Int64? {
        let id: Int64
        if var entry = series[r.series] {
            id = entry.id
            // A new unit is written with the last-seen times: a sensor whose formats disagree
            // on it would otherwise write flash at every batch.
            if r.unit != nil, r.unit != entry.unit { entry.unit = r.unit }
            if r.timestamp.micros >= entry.lastSeen {
                entry.lastSeen = r.timestamp.micros
                entry.lastValue = r.value
            }
            entry.dirty = true
            series[r.series] = entry
        } else {
            id = try createSeries(r)
        }
        pendingRows += 1
        let stored = try store(ts: r.timestamp.micros, seriesID: id, value: r.value)
        counters.add(stored ? CounterName.readingsStored : CounterName.readingsDuplicate)
        return stored ? id : nil
    }

    /// Into the hot tier, or the flash buffer; false for a redelivery.
    private func store(ts: Int64, seriesID: Int64, value: Double) throws(SQLiteError) -> Bool {
        if tiers.batchIsHot, let hot = tiers.hot {
            if ts <= flashNewest {
                if try inFlash(ts: ts, seriesID: seriesID, value: value) { return false }
            }
            do {
                guard try hot.insert(ts: ts, seriesID: seriesID, value: value) else { return false }
                pendingHot.append((ts, seriesID, value))
                return true
            } catch where error.isFull {
                try hotTierFull()
            }
        }
        return try insertFlash(ts: ts, seriesID: seriesID, value: value)
    }

    private func inFlash(ts: Int64, seriesID: Int64, value: Double) throws(SQLiteError) -> Bool {
        exists.bind(1, ts)
        exists.bind(2, seriesID)
        exists.bind(3, value)
        defer { exists.reset() }
        return try exists.step()
    }

    private func insertFlash(ts: Int64, seriesID: Int64, value: Double) throws(SQLiteError) -> Bool {
        try tiers.cold.begin()
        insertReading.bind(1, ts)
        insertReading.bind(2, seriesID)
        insertReading.bind(3, value)
        try insertReading.run()
        guard db.changes > 0 else { return false }
        flashNewest = max(flashNewest, ts)
        return true
    }

    /// The hot tier's filesystem is full: its open transaction is abandoned, and what it
    /// held of this batch goes to flash, as the batches do until `Buffer` finds room again.
    func hotTierFull() throws(SQLiteError) {
        tiers.hot?.conn.rollback()
        tiers.hotInUse = false
        let rows = pendingHot
        pendingHot.removeAll()
        for (ts, id, v) in rows { _ = try insertFlash(ts: ts, seriesID: id, value: v) }
    }

    private func createSeries(_ r: Reading) throws(SQLiteError) -> Int64 {
        try tiers.cold.begin()
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
        createdInTransaction.append(s)
        return id
    }

    /// Whether some series was seen since `flushSeriesSeen` last wrote it.
    public var hasUnwrittenSeen: Bool { series.values.contains { $0.dirty } }

    /// Writes when each series was last seen, and its last value, to flash.
    public func flushSeriesSeen(_ tx: Transaction) throws(SQLiteError) {
        guard hasUnwrittenSeen else { return }
        try tiers.cold.begin()
        for (key, entry) in series where entry.dirty {
            updateSeriesSeen.bind(1, entry.lastSeen)
            updateSeriesSeen.bind(2, entry.lastValue)
            updateSeriesSeen.bind(3, entry.unit)
            updateSeriesSeen.bind(4, entry.id)
            try updateSeriesSeen.run()
            series[key]?.dirty = false
        }
    }

    /// Copies the hot tier's readings into flash (a flush, or a start that finds them).
    /// - Returns: how many were new to flash.
    func moveFromHot(_ hot: HotTier) throws(SQLiteError) -> Int {
        var moved = 0
        let byID = seriesByID()
        try hot.forEachReading { ts, id, v throws(SQLiteError) in
            if try moveToFlash(ts: ts, seriesID: id, value: v, byID) { moved += 1 }
        }
        return moved
    }

    /// Copies `rows` (from the hot tier) into the open flash transaction.
    /// - Returns: the readings flash did not hold yet.
    func copyToFlash(_ rows: [(ts: Int64, seriesID: Int64, value: Double)]) throws(SQLiteError) -> Int {
        let byID = seriesByID()
        var moved = 0
        for r in rows {
            if try moveToFlash(ts: r.ts, seriesID: r.seriesID, value: r.value, byID) { moved += 1 }
        }
        return moved
    }

    private func seriesByID() -> [Int64: SeriesKey] {
        var byID: [Int64: SeriesKey] = [:]
        for (k, e) in series { byID[e.id] = k }
        return byID
    }

    private func moveToFlash(ts: Int64, seriesID id: Int64, value v: Double, _ byID: [Int64: SeriesKey]) throws(SQLiteError) -> Bool {
        let new = try insertFlash(ts: ts, seriesID: id, value: v)
        // What a crash left is news to the series' last-seen times too (a stale rule reads them).
        if let key = byID[id], var e = series[key], ts >= e.lastSeen {
            e.lastSeen = ts
            e.lastValue = v
            e.dirty = true
            series[key] = e
        }
        return new
    }

    /// Readings from `since` on, in time order, with their series ids: what rebuilds rule
    /// windows and open aggregate windows at start (the hot tier is in flash by then).
    public func forEach(since from: Timestamp, _ body: (Reading, Int64) -> Void) throws(SQLiteError) {
        var keys: [Int64: (SeriesKey, String?)] = [:]
        for (k, e) in series { keys[e.id] = (k, e.unit) }
        since.bind(1, from.micros)
        defer { since.reset() }
        while try since.step() {
            let id = since.int(1)
            guard let (key, unit) = keys[id] else { continue }
            body(Reading(series: key, value: since.double(2), timestamp: Timestamp(micros: since.int(0)), unit: unit), id)
        }
    }

    func didCommit() {
        pendingRows = 0
        pendingHot.removeAll(keepingCapacity: true)
        createdInTransaction.removeAll(keepingCapacity: true)
    }

    /// Series created in the abandoned transaction are forgotten again.
    func didRollBack() {
        pendingRows = 0
        pendingHot.removeAll()
        for s in createdInTransaction { series[s] = nil }
        createdInTransaction.removeAll()
    }
}
