/// The hot tier: a small SQLite database in the runtime directory (tmpfs: it survives a
/// crash of vigil, not a power cut) that takes each batch's readings, counters and rejects
/// at every commit, so the flash-backed buffer is written once per `flush_interval` in one
/// transaction instead of every few milliseconds.
///
/// A flush copies the hot rows into the flash buffer and adds one to its
/// `hot_flushes_total` counter in the same flash transaction; then the hot tier is emptied
/// and takes that total as its generation. A crash between the two leaves a hot tier
/// whose generation is one behind the flash total: its rows are in flash already, and the
/// next start only empties it. Readings are stored once however often they are copied
/// (the readings' primary key).
final class HotTier {
    let path: String
    let conn: WriteConnection
    private let insert: SQLiteStatement
    private let getMeta: SQLiteStatement
    private let setMeta: SQLiteStatement

    static let schema = """
        CREATE TABLE IF NOT EXISTS readings(
            ts INTEGER NOT NULL, series_id INTEGER NOT NULL, value REAL NOT NULL,
            PRIMARY KEY (ts, series_id, value)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS rejects(
            id INTEGER PRIMARY KEY, at INTEGER NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL,
            detail TEXT NOT NULL, payload BLOB NOT NULL, payload_size INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        """

    /// Opens or creates the hot tier at `path`.
    init(path: String) throws(SQLiteError) {
        self.path = path
        let db = try SQLiteDatabase(path: path)
        db.setBusyTimeout(milliseconds: 5000)
        // The tmpfs is RAM: after each flush the file gives its pages back (set before the
        // tables exist, so it holds for a new file), and the WAL stays small.
        try db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        try db.execute("PRAGMA journal_mode = WAL")
        // tmpfs: an fsync would keep nothing that the page cache does not.
        try db.execute("PRAGMA synchronous = OFF")
        try db.execute("PRAGMA cache_size = -1024")
        try db.execute("PRAGMA wal_autocheckpoint = 256")
        try db.execute("PRAGMA journal_size_limit = 1048576")
        try db.execute(Self.schema)
        conn = WriteConnection(db)
        insert = try db.prepare("INSERT OR IGNORE INTO readings(ts, series_id, value) VALUES (?, ?, ?)")
        getMeta = try db.prepare("SELECT value FROM meta WHERE key = ?")
        setMeta = try db.prepare(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
    }

    var db: SQLiteDatabase { conn.db }

    /// Inserts a reading in the open hot transaction.
    /// - Returns: false when it is there already.
    func insert(ts: Int64, seriesID: Int64, value: Double) throws(SQLiteError) -> Bool {
        try conn.begin()
        insert.bind(1, ts)
        insert.bind(2, seriesID)
        insert.bind(3, value)
        try insert.run()
        return db.changes > 0
    }

    func meta(_ key: String) throws(SQLiteError) -> String? {
        getMeta.bind(1, key)
        defer { getMeta.reset() }
        return try getMeta.step() ? getMeta.text(0) : nil
    }

    private func set(_ key: String, _ value: String) throws(SQLiteError) {
        setMeta.bind(1, key)
        setMeta.bind(2, value)
        try setMeta.run()
    }

    /// The flash buffer's flush count when this tier was last emptied.
    var generation: Int64 { get throws(SQLiteError) { try meta("generation").flatMap { Int64($0) } ?? 0 } }

    /// Which flash buffer this tier belongs to.
    var bufferID: String? { get throws(SQLiteError) { try meta("buffer_id") } }

    /// Empties the tier and records the generation and buffer it now belongs to, in a
    /// transaction of its own.
    func clear(generation: Int64, bufferID: String) throws(SQLiteError) {
        try conn.begin()
        do {
            try db.execute("DELETE FROM readings; DELETE FROM counters; DELETE FROM rejects;")
            try set("generation", String(generation))
            try set("buffer_id", bufferID)
            try conn.commit()
        } catch {
            conn.rollback()
            throw error
        }
        giveBack()
    }

    /// Nothing to flush: no reading, counter or reject.
    func isEmpty() throws(SQLiteError) -> Bool {
        try db.scalarInt(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM readings LIMIT 1)) + (SELECT count(*) FROM counters) + (SELECT count(*) FROM rejects)"
        ) == 0
    }

    /// Whether it holds a reading.
    func hasReadings() throws(SQLiteError) -> Bool {
        try db.scalarInt("SELECT count(*) FROM (SELECT 1 FROM readings LIMIT 1)") == 1
    }

    /// Empties the readings alone (they are in flash; the counters wait for a full flush).
    func clearReadings() throws(SQLiteError) {
        try conn.begin()
        do {
            try db.execute("DELETE FROM readings")
            try conn.commit()
        } catch {
            conn.rollback()
            throw error
        }
        giveBack()
    }

    /// Gives the freed pages and the WAL back to the tmpfs. A TRUNCATE checkpoint waits in
    /// the busy handler until every reader has left the WAL, and this runs on the ingest
    /// thread: without a busy timeout, a reader (`vigil export`, a page build) only makes it
    /// SQLITE_BUSY, and the next flush tries again.
    private func giveBack() {
        try? db.execute("PRAGMA incremental_vacuum")
        db.setBusyTimeout(milliseconds: 0)
        defer { db.setBusyTimeout(milliseconds: 5000) }
        try? db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// Readings the tier holds.
    func rowCount() throws(SQLiteError) -> Int64 { try db.scalarInt("SELECT count(*) FROM readings") ?? 0 }

    /// Bytes of the tier's file in use.
    func usedBytes() throws(SQLiteError) -> Int64 { try db.usedBytes() }

    /// The first `limit` readings in key order.
    func firstReadings(_ limit: Int) throws(SQLiteError) -> [(ts: Int64, seriesID: Int64, value: Double)] {
        let stmt = try db.prepare("SELECT ts, series_id, value FROM readings ORDER BY ts, series_id, value LIMIT ?")
        stmt.bind(1, Int64(limit))
        var out: [(ts: Int64, seriesID: Int64, value: Double)] = []
        out.reserveCapacity(limit)
        while try stmt.step() { out.append((stmt.int(0), stmt.int(1), stmt.double(2))) }
        return out
    }

    /// Deletes the readings up to and with the key `(ts, seriesID, value)`, in a
    /// transaction of its own: the part of the tier that a step of a flush has moved.
    func deleteReadings(through last: (ts: Int64, seriesID: Int64, value: Double)) throws(SQLiteError) {
        try conn.begin()
        do {
            let stmt = try db.prepare("DELETE FROM readings WHERE (ts, series_id, value) <= (?, ?, ?)")
            stmt.bind(1, last.ts)
            stmt.bind(2, last.seriesID)
            stmt.bind(3, last.value)
            try stmt.run()
            try conn.commit()
        } catch {
            conn.rollback()
            throw error
        }
    }

    /// Every reading, in key order.
    func forEachReading(_ body: (Int64, Int64, Double) throws(SQLiteError) -> Void) throws(SQLiteError) {
        let stmt = try db.prepare("SELECT ts, series_id, value FROM readings ORDER BY ts, series_id, value")
        while try stmt.step() { try body(stmt.int(0), stmt.int(1), stmt.double(2)) }
    }

    /// The counters' totals since the tier was emptied.
    func counters() throws(SQLiteError) -> [(String, Int64)] {
        let stmt = try db.prepare("SELECT name, value FROM counters")
        var out: [(String, Int64)] = []
        while try stmt.step() { out.append((stmt.text(0) ?? "", stmt.int(1))) }
        return out
    }

    /// The rejects kept since the tier was emptied, oldest first.
    func rejects() throws(SQLiteError) -> [RejectRecord] {
        let stmt = try db.prepare("SELECT at, topic, reason, detail, payload, payload_size FROM rejects ORDER BY id")
        var out: [RejectRecord] = []
        while try stmt.step() { out.append(RejectStore.record(stmt)) }
        return out
    }
}
