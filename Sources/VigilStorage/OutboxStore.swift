import VigilCore

/// What a message in the outbox is. Alerts go ahead of aggregates and are never dropped.
public enum OutboxKind: Int64, Sendable, CaseIterable {
    case alert = 0
    case aggregate = 1

    public var name: String { self == .alert ? "alert" : "aggregate" }
}

/// A message waiting for upstream.
public struct OutboxMessage: Sendable, Equatable {
    public var seq: Int64
    public var kind: OutboxKind
    public var topic: String
    public var payload: [UInt8]
    public var created: Timestamp
}

/// The undelivered messages: how many of each kind and the oldest.
public struct OutboxBacklog: Sendable, Equatable {
    public var alerts: Int64 = 0
    public var aggregates: Int64 = 0
    public var oldest: Timestamp?
    public var delivered: Int64 = 0
    public init() {}
    public var total: Int64 { alerts + aggregates }
}

/// The `outbox` table: messages for upstream with their seq, kept until upstream has
/// acknowledged them (and then until retention or size prunes them). The next seq is in
/// `meta`, written with each message, so a seq is never used twice.
public final class OutboxStore {
    private let cold: WriteConnection
    private var db: SQLiteDatabase { cold.db }
    private let counters: CounterStore
    private let meta: MetaStore
    private let insert: SQLiteStatement
    private let deliver: SQLiteStatement

    init(_ cold: WriteConnection, counters: CounterStore, meta: MetaStore) throws(SQLiteError) {
        self.cold = cold
        let db = cold.db
        self.counters = counters
        self.meta = meta
        insert = try db.prepare("INSERT INTO outbox(seq, kind, topic, payload, created) VALUES (?, ?, ?, ?, ?)")
        deliver = try db.prepare("UPDATE outbox SET delivered = ? WHERE seq = ? AND delivered IS NULL")
    }

    /// The next seq: never below what meta or the outbox has seen.
    public func loadNextSeq() throws(SQLiteError) -> Int64 {
        let stored = try meta.get(MetaKey.nextSeq).flatMap { Int64($0) } ?? 1
        let maxSeq = try db.scalarInt("SELECT max(seq) FROM outbox") ?? 0
        return Swift.max(stored, maxSeq + 1, 1)
    }

    /// The aggregation watermark stored with the last windows sent.
    public func loadWatermark() throws(SQLiteError) -> Timestamp? {
        try meta.get(MetaKey.aggregatedUntil).flatMap { Int64($0) }.map { Timestamp(micros: $0) }
    }

    /// Stores the aggregation watermark, with the windows it closed.
    public func setWatermark(_ micros: Int64, _ tx: Transaction) throws(SQLiteError) {
        try meta.setIfChanged(MetaKey.aggregatedUntil, String(micros), tx)
    }

    /// Adds a message with its seq; the next seq is stored with it.
    public func enqueue(seq: Int64, kind: OutboxKind, topic: String, payload: [UInt8], at: Timestamp, _ tx: Transaction)
        throws(SQLiteError)
    {
        try cold.begin()
        insert.bind(1, seq)
        insert.bind(2, kind.rawValue)
        insert.bind(3, topic)
        insert.bind(4, blob: payload)
        insert.bind(5, at.micros)
        try insert.run()
        try meta.set(MetaKey.nextSeq, String(seq + 1), tx)
    }

    /// Marks messages acknowledged by upstream.
    public func markDelivered(_ seqs: [Int64], at: Timestamp, _ tx: Transaction) throws(SQLiteError) {
        guard !seqs.isEmpty else { return }
        try cold.begin()
        for s in seqs {
            deliver.bind(1, at.micros)
            deliver.bind(2, s)
            try deliver.run()
        }
        counters.add(CounterName.outboxDelivered, Int64(seqs.count))
    }

    /// Deletes up to `chunk` of the oldest delivered messages (older than `before`, if given).
    func pruneDelivered(before: Timestamp?, chunk: Int, _ tx: Transaction) throws(SQLiteError) -> Int64 {
        let limit = before?.micros ?? Int64.max
        try cold.begin()
        try db.execute(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE delivered IS NOT NULL AND delivered < \(limit) ORDER BY delivered LIMIT \(chunk))"
        )
        let n = db.changes
        if n > 0 { counters.add(CounterName.outboxPrunedDelivered, n) }
        return n
    }

    /// Deletes up to `chunk` of the oldest undelivered aggregates: the last resort when the
    /// buffer is full of backlog. Alerts are never dropped.
    func dropUndeliveredAggregates(chunk: Int, _ tx: Transaction) throws(SQLiteError) -> Int64 {
        try cold.begin()
        try db.execute(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE kind = \(OutboxKind.aggregate.rawValue) AND delivered IS NULL ORDER BY seq LIMIT \(chunk))"
        )
        let n = db.changes
        if n > 0 { counters.add(CounterName.outboxDroppedAggregates, n) }
        return n
    }
}

extension BufferReader {
    /// Messages in the outbox, oldest first, with when each was delivered (tests and inspection).
    public func outbox(limit: Int = 1000) throws(SQLiteError) -> [(OutboxMessage, Timestamp?)] {
        let stmt = try db.prepare("SELECT seq, kind, topic, payload, created, delivered FROM outbox ORDER BY seq LIMIT ?")
        stmt.bind(1, Int64(limit))
        var out: [(OutboxMessage, Timestamp?)] = []
        while try stmt.step() {
            out.append(
                (
                    OutboxMessage(
                        seq: stmt.int(0), kind: OutboxKind(rawValue: stmt.int(1)) ?? .aggregate, topic: stmt.text(2) ?? "",
                        payload: stmt.blob(3), created: Timestamp(micros: stmt.int(4))),
                    stmt.isNull(5) ? nil : Timestamp(micros: stmt.int(5))
                ))
        }
        return out
    }
}
