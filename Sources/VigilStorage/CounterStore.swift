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
    /// HJ 212 values whose flag is not N, by flag letter (or `other`).
    public static func hj212Flagged(_ flag: String) -> String { "hj212_flagged_total:\(flag)" }
    public static let outboxDroppedAggregates = "outbox_dropped_aggregates_total"
    public static let outboxPrunedDelivered = "outbox_pruned_delivered_total"
    public static let aggregatesLate = "aggregate_late_readings_total"
    public static let aggregatesSent = "aggregates_total"
    public static let outboxDelivered = "outbox_delivered_total"
}

/// The `counters` table: totals since the buffer was created. Additions are gathered in
/// memory and written once per commit, with what they count: into the hot tier with the
/// batch's readings (a flush adds them to flash), or into flash.
public final class CounterStore: TransactionParticipant {
    static let upsertSQL =
        "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value"
    private let tiers: Tiers
    private let addCold: SQLiteStatement
    private let addHot: SQLiteStatement?
    private var deltas: [String: Int64] = [:]

    init(tiers: Tiers) throws(SQLiteError) {
        self.tiers = tiers
        addCold = try tiers.cold.db.prepare(Self.upsertSQL)
        addHot = try tiers.hot.map { hot throws(SQLiteError) in try hot.db.prepare(Self.upsertSQL) }
    }

    /// Adds to a counter; written with the next commit.
    public func add(_ name: String, _ delta: Int64 = 1) {
        deltas[name, default: 0] += delta
    }

    /// A counter's total as stored, in flash and the hot tier.
    func stored(_ name: String) throws(SQLiteError) -> Int64 {
        func value(_ db: SQLiteDatabase) throws(SQLiteError) -> Int64 {
            let stmt = try db.prepare("SELECT value FROM counters WHERE name = ?")
            stmt.bind(1, name)
            return try stmt.step() ? stmt.int(0) : 0
        }
        return try value(tiers.cold.db) + (try tiers.hot.map { hot throws(SQLiteError) in try value(hot.db) } ?? 0)
    }

    /// Readings in the buffer: stored less pruned, from the counters (no count(*) scan).
    public func storedRows() throws(SQLiteError) -> Int64 {
        try stored(CounterName.readingsStored) - stored(CounterName.readingsPrunedRetention)
            - stored(CounterName.readingsPrunedSize)
    }

    /// Adds the hot tier's counters to flash (a flush).
    func moveFromHot(_ hot: HotTier) throws(SQLiteError) {
        for (name, value) in try hot.counters() { deltas[name, default: 0] += value }
    }

    var hasPending: Bool { !deltas.isEmpty }

    func willCommit(_ tx: Transaction) throws(SQLiteError) {
        let hot = tiers.batchIsHot
        let stmt = hot ? addHot! : addCold
        if !deltas.isEmpty { try tiers.batch.begin() }
        for (name, delta) in deltas where delta != 0 {
            stmt.bind(1, name)
            stmt.bind(2, delta)
            try stmt.run()
        }
    }

    func didCommit() { deltas.removeAll(keepingCapacity: true) }

    func didRollBack() { deltas.removeAll() }
}
