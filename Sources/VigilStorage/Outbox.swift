import CSQLite
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

public enum MetaKey {
    public static let nextSeq = "next_seq"
    public static let aggregatedUntil = "aggregated_until"
    public static let status = "status"
}

extension CounterName {
    public static let outboxDroppedAggregates = "outbox_dropped_aggregates_total"
    public static let outboxPrunedDelivered = "outbox_pruned_delivered_total"
    public static let aggregatesLate = "aggregate_late_readings_total"
    public static let aggregatesSent = "aggregates_total"
    public static let outboxDelivered = "outbox_delivered_total"
}

extension BufferWriter {
    /// The next seq: never below what meta or the outbox has seen.
    public func loadNextSeq() throws(SQLiteError) -> Int64 {
        let meta = try db.scalarText("SELECT value FROM meta WHERE key = '\(MetaKey.nextSeq)'").flatMap { Int64($0) } ?? 1
        let maxSeq = try db.scalarInt("SELECT max(seq) FROM outbox") ?? 0
        return Swift.max(meta, maxSeq + 1, 1)
    }

    /// The aggregation watermark stored with the last windows sent.
    public func loadWatermark() throws(SQLiteError) -> Timestamp? {
        try db.scalarText("SELECT value FROM meta WHERE key = '\(MetaKey.aggregatedUntil)'").flatMap { Int64($0) }.map {
            Timestamp(micros: $0)
        }
    }

    /// Adds a message with its seq, in the open transaction; `nextSeq` is stored with it.
    public func enqueue(seq: Int64, kind: OutboxKind, topic: String, payload: [UInt8], at: Timestamp) throws(SQLiteError) {
        try begin()
        let stmt = try statement("INSERT INTO outbox(seq, kind, topic, payload, created) VALUES (?, ?, ?, ?, ?)")
        stmt.bind(1, seq)
        stmt.bind(2, kind.rawValue)
        stmt.bind(3, topic)
        stmt.bind(4, blob: payload)
        stmt.bind(5, at.micros)
        try stmt.run()
        try setMeta(MetaKey.nextSeq, String(seq + 1))
    }

    /// Marks messages acknowledged by upstream, in the open transaction.
    public func markDelivered(_ seqs: [Int64], at: Timestamp) throws(SQLiteError) {
        guard !seqs.isEmpty else { return }
        try begin()
        let stmt = try statement("UPDATE outbox SET delivered = ? WHERE seq = ? AND delivered IS NULL")
        for s in seqs {
            stmt.bind(1, at.micros)
            stmt.bind(2, s)
            try stmt.run()
        }
        count(CounterName.outboxDelivered, Int64(seqs.count))
    }

    /// Deletes up to `chunk` of the oldest delivered messages (older than `before`, if given).
    func pruneDelivered(before: Timestamp?, chunk: Int) throws(SQLiteError) -> Int64 {
        let limit = before?.micros ?? Int64.max
        try db.execute(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE delivered IS NOT NULL AND delivered < \(limit) ORDER BY delivered LIMIT \(chunk))"
        )
        let n = db.changes
        if n > 0 { count(CounterName.outboxPrunedDelivered, n) }
        return n
    }

    /// Deletes up to `chunk` of the oldest undelivered aggregates: the last resort when the
    /// buffer is full of backlog. Alerts are never dropped.
    func dropUndeliveredAggregates(chunk: Int) throws(SQLiteError) -> Int64 {
        try db.execute(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE kind = \(OutboxKind.aggregate.rawValue) AND delivered IS NULL ORDER BY seq LIMIT \(chunk))"
        )
        let n = db.changes
        if n > 0 { count(CounterName.outboxDroppedAggregates, n) }
        return n
    }
}

/// Reads the outbox for the upstream sender, on its own connection (WAL: it never blocks
/// the ingest thread's writes).
///
/// - Important: not thread safe; the upstream thread owns it.
public final class OutboxReader {
    let db: SQLiteDatabase
    private let next: SQLiteStatement
    private let backlog: SQLiteStatement

    public init(options: BufferOptions) throws(SQLiteError) {
        db = try SQLiteDatabase(path: options.databasePath)
        db.setBusyTimeout(milliseconds: 2000)
        try db.execute("PRAGMA query_only = 1")
        next = try db.prepare(
            "SELECT seq, topic, payload, created FROM outbox WHERE kind = ? AND delivered IS NULL AND seq > ? ORDER BY seq LIMIT ?")
        backlog = try db.prepare(
            "SELECT kind, count(*), min(created) FROM outbox WHERE delivered IS NULL GROUP BY kind")
    }

    /// Undelivered messages of a kind after `seq`, in seq order.
    public func undelivered(_ kind: OutboxKind, after seq: Int64, limit: Int) throws(SQLiteError) -> [OutboxMessage] {
        next.bind(1, kind.rawValue)
        next.bind(2, seq)
        next.bind(3, Int64(limit))
        defer { next.reset() }
        var out: [OutboxMessage] = []
        while try next.step() {
            out.append(
                OutboxMessage(
                    seq: next.int(0), kind: kind, topic: next.text(1) ?? "", payload: next.blob(2),
                    created: Timestamp(micros: next.int(3))))
        }
        return out
    }

    public func backlogNow() throws(SQLiteError) -> OutboxBacklog {
        defer { backlog.reset() }
        var b = OutboxBacklog()
        var oldest = Int64.max
        while try backlog.step() {
            if backlog.int(0) == OutboxKind.alert.rawValue { b.alerts = backlog.int(1) } else { b.aggregates = backlog.int(1) }
            oldest = Swift.min(oldest, backlog.int(2))
        }
        if oldest != Int64.max { b.oldest = Timestamp(micros: oldest) }
        return b
    }
}

extension BufferReader {
    /// Messages in the outbox from `since`, oldest first (for tests and inspection).
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
