import VigilCore

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

/// The `rejects` table: the latest `kept` rejected messages, written with the next commit
/// and trimmed as it grows; every reject is counted by reason.
public final class RejectStore: TransactionParticipant {
    private let db: SQLiteDatabase
    private let counters: CounterStore
    private let kept: Int
    private let insert: SQLiteStatement
    private var pending: [RejectRecord] = []
    private var sinceTrim = 0

    init(_ db: SQLiteDatabase, counters: CounterStore, kept: Int) throws(SQLiteError) {
        self.db = db
        self.counters = counters
        self.kept = kept
        insert = try db.prepare(
            "INSERT INTO rejects(at, topic, reason, detail, payload, payload_size) VALUES (?, ?, ?, ?, ?, ?)")
    }

    /// Counts a rejected message and keeps it (the latest `kept` survive).
    public func add(_ record: RejectRecord) {
        counters.add(CounterName.rejected(record.reason.code))
        pending.append(record)
        if pending.count > kept { pending.removeFirst(pending.count - kept) }
    }

    var hasPending: Bool { !pending.isEmpty }

    func willCommit(_ tx: Transaction) throws(SQLiteError) {
        for r in pending {
            insert.bind(1, r.at.micros)
            insert.bind(2, r.topic)
            insert.bind(3, r.reason.code.rawValue)
            insert.bind(4, r.reason.detail)
            insert.bind(5, blob: r.payloadPrefix)
            insert.bind(6, Int64(r.payloadSize))
            try insert.run()
        }
        sinceTrim += pending.count
        pending.removeAll(keepingCapacity: true)
        if sinceTrim >= max(1, kept / 4) {
            try db.execute("DELETE FROM rejects WHERE id <= (SELECT max(id) FROM rejects) - \(kept)")
            sinceTrim = 0
        }
    }

    /// What was not written yet stays for the next commit.
    func didRollBack() {}
}
