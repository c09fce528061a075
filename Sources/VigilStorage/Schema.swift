/// The buffer's schema, versioned by `PRAGMA user_version` and migrated forward in steps.
///
/// Readings sit in a table clustered by `(ts, series_id, value)`: inserts land at the end in
/// time order, ranges by time (export, recovery, retention) are index scans, and a reading
/// identical in series, time and value to a stored one (a redelivered QoS 1 message) is
/// stored once. Different values at the same time are all kept: a sensor that stamps whole
/// seconds may publish twice within one.
enum Schema {
    /// Each entry migrates from version `index` to `index + 1`.
    static let migrations: [String] = [
        // 0 -> 1: readings, series, rejects, counters, meta.
        """
        CREATE TABLE series(
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            network TEXT NOT NULL,
            site TEXT NOT NULL,
            device TEXT NOT NULL,
            metric TEXT NOT NULL,
            unit TEXT,
            first_seen INTEGER NOT NULL,
            last_seen INTEGER NOT NULL,
            last_value REAL
        );
        CREATE TABLE readings(
            ts INTEGER NOT NULL,
            series_id INTEGER NOT NULL,
            value REAL NOT NULL,
            PRIMARY KEY (ts, series_id, value)
        ) WITHOUT ROWID;
        CREATE TABLE rejects(
            id INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            topic TEXT NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            payload BLOB NOT NULL,
            payload_size INTEGER NOT NULL
        );
        CREATE TABLE counters(
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE meta(
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        """,
        // 1 -> 2: alert state (one row per raised or pending (rule, series)) and alert history.
        """
        CREATE TABLE alert_states(
            rule TEXT NOT NULL,
            series TEXT NOT NULL,
            level TEXT,
            since INTEGER,
            pending TEXT NOT NULL,
            absent TEXT NOT NULL,
            last_value REAL,
            threshold REAL,
            updated INTEGER NOT NULL,
            PRIMARY KEY (rule, series)
        ) WITHOUT ROWID;
        CREATE TABLE alert_events(
            id INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            rule TEXT NOT NULL,
            series TEXT NOT NULL,
            state TEXT NOT NULL,
            level TEXT NOT NULL,
            previous_level TEXT,
            value REAL,
            threshold REAL,
            since INTEGER NOT NULL,
            message TEXT NOT NULL
        );
        CREATE INDEX alert_events_at ON alert_events(at);
        """,
        // 2 -> 3: the outbox of messages for upstream. seq comes from meta 'next_seq', so it
        // is never reused even after rows are pruned.
        """
        CREATE TABLE outbox(
            seq INTEGER PRIMARY KEY,
            kind INTEGER NOT NULL,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            created INTEGER NOT NULL,
            delivered INTEGER
        );
        CREATE INDEX outbox_pending ON outbox(kind, seq) WHERE delivered IS NULL;
        CREATE INDEX outbox_delivered ON outbox(delivered) WHERE delivered IS NOT NULL;
        """,
        // 3 -> 4: the latest event of one (rule, series) is an index lookup, for the page's
        // active alerts (however long the history).
        """
        CREATE INDEX alert_events_rule_series ON alert_events(rule, series, id);
        """,
    ]

    static var currentVersion: Int { migrations.count }

    /// Brings the database to the current version, each step in its own transaction.
    /// - Throws: if the file is from a newer vigil, or a step fails (the file is then left at the last good version).
    static func migrate(_ db: SQLiteDatabase) throws(SQLiteError) {
        let version = Int(try db.scalarInt("PRAGMA user_version") ?? 0)
        if version > currentVersion {
            throw SQLiteError(
                code: 0, operation: "open buffer",
                message: "schema version \(version) is newer than this vigil's \(currentVersion); use a newer vigil")
        }
        for v in version..<currentVersion {
            try db.execute("BEGIN IMMEDIATE")
            do {
                try db.execute(migrations[v])
                try db.execute("PRAGMA user_version = \(v + 1)")
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw error
            }
        }
    }
}
