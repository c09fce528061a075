import CSQLite
import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// One stored reading as `vigil export` gives it.
public struct StoredReading: Sendable, Equatable {
    public var series: String
    public var timestamp: Timestamp
    public var value: Double
    public var unit: String?

    public init(series: String, timestamp: Timestamp, value: Double, unit: String?) {
        self.series = series
        self.timestamp = timestamp
        self.value = value
        self.unit = unit
    }
}

/// A series the buffer knows.
public struct SeriesInfo: Sendable, Equatable {
    public var id: Int64
    public var key: SeriesKey
    public var unit: String?
    public var firstSeen: Timestamp
    public var lastSeen: Timestamp
    public var lastValue: Double?
}

/// The reading side of the buffer, for the commands an operator runs beside the daemon.
/// WAL mode lets it read while the daemon writes.
///
/// - Important: not thread safe; one command uses it.
public final class BufferReader {
    let db: SQLiteDatabase
    public let path: String
    /// The hot tier is attached as `hot`: what the daemon has not flushed yet.
    let hasHot: Bool

    /// Opens an existing buffer, with its hot tier at `hotPath` when it exists.
    /// - Throws: when there is no buffer at `path` yet.
    public init(path: String, hotPath: String? = nil) throws(SQLiteError) {
        self.path = path
        guard access(path, F_OK) == 0 else {
            throw SQLiteError(
                code: SQLITE_CANTOPEN, operation: "open \(path)",
                message: "no buffer here yet: has `vigil run` started with this state_dir?")
        }
        db = try SQLiteDatabase(path: path)
        db.setBusyTimeout(milliseconds: 2000)
        if let hotPath, access(hotPath, R_OK) == 0 {
            let stmt = try db.prepare("ATTACH DATABASE ? AS hot")
            stmt.bind(1, hotPath)
            try stmt.run()
            hasHot = true
        } else {
            hasHot = false
        }
        try db.execute("PRAGMA query_only = 1")
    }

    public convenience init(options: BufferOptions) throws(SQLiteError) {
        try self.init(path: options.databasePath, hotPath: options.hotPath)
    }

    /// The readings of both tiers with `condition` (over `ts`), each once, as one SELECT;
    /// for a read transaction the caller has begun, which this starts on the hot tier: its
    /// snapshot is then no newer than flash's, so a flash snapshot from before a flush
    /// never meets a hot tier emptied by it.
    ///
    /// Between a flush's (or a flush step's) flash commit and the deletion from the hot
    /// tier, the hot tier's oldest readings are in flash too; at other times the tiers hold
    /// different readings. So the oldest hot reading, looked up in flash, says whether they
    /// overlap: if so and the newest is there too (a whole flush), the hot tier is left
    /// out; if only a part is (a step), the hot readings that flash holds are. UNION would
    /// do the same at every read, at eight times the cost.
    private func readingsOfBothTiers(where condition: String) throws(SQLiteError) -> String {
        let flash = "SELECT ts, series_id, value FROM main.readings WHERE \(condition)"
        guard hasHot else { return flash }
        guard let oldest = try hotReading(newest: false), try inFlash(oldest) else {
            return flash + " UNION ALL SELECT ts, series_id, value FROM hot.readings WHERE \(condition)"
        }
        if let newest = try hotReading(newest: true), try inFlash(newest) { return flash }
        return flash
            + " UNION ALL SELECT ts, series_id, value FROM hot.readings h WHERE \(condition) AND NOT EXISTS"
            + " (SELECT 1 FROM main.readings m WHERE m.ts = h.ts AND m.series_id = h.series_id AND m.value = h.value)"
    }

    private func hotReading(newest: Bool) throws(SQLiteError) -> (Int64, Int64, Double)? {
        let order = newest ? "ts DESC, series_id DESC, value DESC" : "ts, series_id, value"
        let stmt = try db.prepare("SELECT ts, series_id, value FROM hot.readings ORDER BY \(order) LIMIT 1")
        return try stmt.step() ? (stmt.int(0), stmt.int(1), stmt.double(2)) : nil
    }

    private func inFlash(_ r: (Int64, Int64, Double)) throws(SQLiteError) -> Bool {
        let stmt = try db.prepare("SELECT 1 FROM main.readings WHERE ts = ? AND series_id = ? AND value = ?")
        stmt.bind(1, r.0)
        stmt.bind(2, r.1)
        stmt.bind(3, r.2)
        return try stmt.step()
    }

    /// `table`, or its union with the hot tier's.
    private func both(_ columns: String, _ table: String) -> String {
        hasHot ? "(SELECT \(columns) FROM main.\(table) UNION ALL SELECT \(columns) FROM hot.\(table))" : "main.\(table)"
    }

    public func series() throws(SQLiteError) -> [SeriesInfo] {
        let stmt = try db.prepare(
            "SELECT id, network, site, device, metric, unit, first_seen, last_seen, last_value FROM series ORDER BY path")
        var out: [SeriesInfo] = []
        while try stmt.step() {
            out.append(
                SeriesInfo(
                    id: stmt.int(0),
                    key: SeriesKey(
                        network: stmt.text(1) ?? "", site: stmt.text(2) ?? "", device: stmt.text(3) ?? "",
                        metric: stmt.text(4) ?? ""),
                    unit: stmt.text(5), firstSeen: Timestamp(micros: stmt.int(6)),
                    lastSeen: Timestamp(micros: stmt.int(7)), lastValue: stmt.isNull(8) ? nil : stmt.double(8)))
        }
        return out
    }

    /// Streams the readings whose series match `filter`, in time order, from `since`
    /// (inclusive) to `until` (exclusive).
    public func readings(
        matching filter: TopicFilter?, since: Timestamp? = nil, until: Timestamp? = nil,
        _ body: (StoredReading) throws -> Void
    ) throws {
        var wanted: [Int64: (String, String?)] = [:]
        for s in try series() where filter?.matches(levels: s.key.levels) ?? true {
            wanted[s.id] = (s.key.path, s.unit)
        }
        guard !wanted.isEmpty else { return }
        try db.execute("BEGIN")
        defer { try? db.execute("COMMIT") }
        let stmt = try db.prepare(
            "SELECT ts, series_id, value FROM (\(try readingsOfBothTiers(where: "ts >= ?1 AND ts < ?2"))) ORDER BY ts, series_id")
        stmt.bind(1, since?.micros ?? Int64.min)
        stmt.bind(2, until?.micros ?? Int64.max)
        while try stmt.step() {
            guard let (path, unit) = wanted[stmt.int(1)] else { continue }
            try body(
                StoredReading(series: path, timestamp: Timestamp(micros: stmt.int(0)), value: stmt.double(2), unit: unit))
        }
    }

    /// The latest rejected messages, newest first.
    /// - Parameter payloads: false leaves the payloads (and their size) unread: the record
    ///   comes with an empty payload and size 0 (the page shows no payload).
    public func rejects(limit: Int = 100, payloads: Bool = true) throws(SQLiteError) -> [RejectRecord] {
        // The hot tier's rejects are the newer ones. `payload_size` comes after the BLOB in
        // the row: reading it could walk the BLOB's overflow pages, so it is left too.
        let columns = payloads ? "at, topic, reason, detail, payload, payload_size" : "at, topic, reason, detail, X'' AS payload, 0 AS payload_size"
        let sql =
            hasHot
            ? "SELECT \(columns) FROM (SELECT \(columns), 1 AS tier, id FROM hot.rejects UNION ALL SELECT \(columns), 0, id FROM main.rejects) ORDER BY tier DESC, id DESC LIMIT ?"
            : "SELECT \(columns) FROM rejects ORDER BY id DESC LIMIT ?"
        let stmt = try db.prepare(sql)
        stmt.bind(1, Int64(limit))
        var out: [RejectRecord] = []
        while try stmt.step() { out.append(RejectStore.record(stmt)) }
        return out
    }

    public func counters() throws(SQLiteError) -> [String: Int64] {
        let stmt = try db.prepare("SELECT name, sum(value) FROM \(both("name, value", "counters")) GROUP BY name")
        var out: [String: Int64] = [:]
        while try stmt.step() { out[stmt.text(0) ?? ""] = stmt.int(1) }
        return out
    }

    public func meta(_ key: String) throws(SQLiteError) -> String? {
        let stmt = try db.prepare("SELECT value FROM meta WHERE key = ?")
        stmt.bind(1, key)
        return try stmt.step() ? stmt.text(0) : nil
    }

    /// Bytes held by the buffer's pages, free pages not counted.
    public func usedBytes() throws(SQLiteError) -> Int64 {
        try db.usedBytes()
    }

    /// Bytes on disk: the database file and its WAL.
    public func fileBytes() -> Int64 {
        var total: Int64 = 0
        for p in [path, path + "-wal"] {
            var st = stat()
            if stat(p, &st) == 0 { total += Int64(st.st_size) }
        }
        return total
    }

    /// The oldest and newest reading timestamps.
    public func timeRange() throws(SQLiteError) -> (Timestamp, Timestamp)? {
        let readings = both("ts", "readings")
        guard let lo = try db.scalarInt("SELECT min(ts) FROM \(readings)"),
            let hi = try db.scalarInt("SELECT max(ts) FROM \(readings)")
        else { return nil }
        return (Timestamp(micros: lo), Timestamp(micros: hi))
    }
}

extension BufferReader {
    /// One series' readings in one bucket of time, as `bucketed` sums them.
    public struct Bucket: Sendable, Equatable {
        public var seriesID: Int64
        /// `ts / bucket` (microseconds).
        public var index: Int64
        public var sum: Double
        public var count: Int
        /// The newest reading of the bucket.
        public var latestTS: Int64
        public var latestValue: Double
    }

    /// The readings with `since <= ts < until`, flash and hot tier, summed by series and
    /// bucket of `bucket` microseconds in SQLite (a row per series and bucket comes out,
    /// not a row per reading): the page's sparklines read the new span since their last pass.
    /// - Parameter limit: read at most the newest `limit` readings of the span (the work
    ///   of one pass is bounded, whatever the ingest rate).
    /// - Returns: the readings read; `limit` when the span held more.
    @discardableResult
    public func bucketed(since: Timestamp, until: Timestamp, bucket: Int64, limit: Int = .max, _ body: (Bucket) -> Void)
        throws(SQLiteError) -> Int
    {
        try db.execute("BEGIN")
        defer { try? db.execute("COMMIT") }
        // Newest first along the key (a merge of the two tiers' key order, no sort), at most `limit`.
        let newest =
            try readingsOfBothTiers(where: "ts >= ?2 AND ts < ?3")
            + " ORDER BY ts DESC LIMIT ?4"
        // A bare column beside max() takes the values of the row with the max (SQLite's rule).
        let stmt = try db.prepare(
            "SELECT series_id, ts / ?1 AS b, sum(value), count(*), max(ts), value FROM (\(newest)) GROUP BY series_id, b")
        stmt.bind(1, bucket)
        stmt.bind(2, since.micros)
        stmt.bind(3, until.micros)
        stmt.bind(4, Int64(min(limit, Int(Int64.max))))
        var read = 0
        while try stmt.step() {
            read += Int(stmt.int(3))
            body(
                Bucket(
                    seriesID: stmt.int(0), index: stmt.int(1), sum: stmt.double(2), count: Int(stmt.int(3)), latestTS: stmt.int(4),
                    latestValue: stmt.double(5)))
        }
        return read
    }
}
