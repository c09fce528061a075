/// Keys of the `meta` table.
public enum MetaKey {
    public static let nextSeq = "next_seq"
    public static let aggregatedUntil = "aggregated_until"
    public static let status = "status"
    public static let subscriptions = "subscriptions"
    public static let bufferID = "buffer_id"
    /// `in use` while a daemon runs with a hot tier; `empty` after a clean stop.
    public static let hotTier = "hot_tier"
}

/// The `meta` table: one value per key (the next seq, the aggregation watermark, the
/// subscribed filters, the status record).
public final class MetaStore: TransactionParticipant {
    private let cold: WriteConnection
    private let select: SQLiteStatement
    private let upsert: SQLiteStatement
    /// The values written last, so that unchanged ones are not written again.
    private var written: [String: String] = [:]

    init(_ cold: WriteConnection) throws(SQLiteError) {
        self.cold = cold
        let db = cold.db
        select = try db.prepare("SELECT value FROM meta WHERE key = ?")
        upsert = try db.prepare(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
    }

    /// A value as stored (or as written in the open transaction).
    public func get(_ key: String) throws(SQLiteError) -> String? {
        if let v = written[key] { return v }
        select.bind(1, key)
        defer { select.reset() }
        return try select.step() ? select.text(0) : nil
    }

    /// Sets a value in the open transaction.
    public func set(_ key: String, _ value: String, _ tx: Transaction) throws(SQLiteError) {
        try cold.begin()
        upsert.bind(1, key)
        upsert.bind(2, value)
        try upsert.run()
        written[key] = value
    }

    /// Sets a value unless it already has it.
    public func setIfChanged(_ key: String, _ value: String, _ tx: Transaction) throws(SQLiteError) {
        if written[key] == value { return }
        try set(key, value, tx)
    }

    /// After a rollback the values written in it are not known to be stored.
    func didRollBack() { written.removeAll() }
}
