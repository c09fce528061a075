import VigilCore

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
    public static let outboxDroppedAggregates = "outbox_dropped_aggregates_total"
    public static let outboxPrunedDelivered = "outbox_pruned_delivered_total"
    public static let aggregatesLate = "aggregate_late_readings_total"
    public static let aggregatesSent = "aggregates_total"
    public static let outboxDelivered = "outbox_delivered_total"
}

/// The `counters` table: totals since the buffer was created. Additions are gathered in
/// memory and written once per commit, in the same transaction as what they count.
public final class CounterStore: TransactionParticipant {
    private let db: SQLiteDatabase
    private let add: SQLiteStatement
    private let stored: SQLiteStatement
    private var deltas: [String: Int64] = [:]

    init(_ db: SQLiteDatabase) throws(SQLiteError) {
        self.db = db
        add = try db.prepare(
            "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value")
        stored = try db.prepare(
            "SELECT coalesce(sum(CASE WHEN name = ? THEN value ELSE -value END), 0) FROM counters WHERE name IN (?, ?, ?)")
    }

    /// Adds to a counter; written with the next commit.
    public func add(_ name: String, _ delta: Int64 = 1) {
        deltas[name, default: 0] += delta
    }

    /// Readings in the buffer: stored less pruned, from the counters (no count(*) scan).
    public func storedRows() throws(SQLiteError) -> Int64 {
        stored.bind(1, CounterName.readingsStored)
        stored.bind(2, CounterName.readingsStored)
        stored.bind(3, CounterName.readingsPrunedRetention)
        stored.bind(4, CounterName.readingsPrunedSize)
        defer { stored.reset() }
        return try stored.step() ? stored.int(0) : 0
    }

    var hasPending: Bool { !deltas.isEmpty }

    func willCommit(_ tx: Transaction) throws(SQLiteError) {
        for (name, delta) in deltas where delta != 0 {
            add.bind(1, name)
            add.bind(2, delta)
            try add.run()
        }
        deltas.removeAll(keepingCapacity: true)
    }

    func didRollBack() { deltas.removeAll() }
}
