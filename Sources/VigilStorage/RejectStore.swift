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
/// (into the hot tier with the batch, or into flash) and trimmed as it grows; every
/// reject is counted by reason.
public final class RejectStore: TransactionParticipant {
    static let insertSQL = "INSERT INTO rejects(at, topic, reason, detail, payload, payload_size) VALUES (?, ?, ?, ?, ?, ?)"
    private let tiers: Tiers
    private let counters: CounterStore
    private let kept: Int
    private let insertCold: SQLiteStatement
    private let insertHot: SQLiteStatement?
    private var pending: [RejectRecord] = []
    private var sinceTrim = 0

    init(tiers: Tiers, counters: CounterStore, kept: Int) throws(SQLiteError) {
        self.tiers = tiers
        self.counters = counters
        self.kept = kept
        insertCold = try tiers.cold.db.prepare(Self.insertSQL)
        insertHot = try tiers.hot.map { hot throws(SQLiteError) in try hot.db.prepare(Self.insertSQL) }
    }

    /// Counts a rejected message and keeps it (the latest `kept` survive).
    public func add(_ record: RejectRecord) {
        counters.add(CounterName.rejected(record.reason.code))
        pending.append(record)
        if pending.count > kept { pending.removeFirst(pending.count - kept) }
    }

    /// Takes the hot tier's rejects into flash with the next write (a flush).
    func moveFromHot(_ hot: HotTier) throws(SQLiteError) {
        pending = try hot.rejects() + pending
        if pending.count > kept { pending.removeFirst(pending.count - kept) }
    }

    var hasPending: Bool { !pending.isEmpty }

    func willCommit(_ tx: Transaction) throws(SQLiteError) {
        guard !pending.isEmpty else { return }
        let tier = tiers.batch
        try tier.begin()
        let insert = tiers.batchIsHot ? insertHot! : insertCold
        for r in pending {
            insert.bind(1, r.at.micros)
            insert.bind(2, r.topic)
            insert.bind(3, r.reason.code.rawValue)
            insert.bind(4, r.reason.detail)
            insert.bind(5, blob: r.payloadPrefix)
            insert.bind(6, Int64(r.payloadSize))
            try insert.run()
        }
        if sinceTrim + pending.count >= max(1, kept / 4) {
            try tier.db.execute("DELETE FROM rejects WHERE id <= (SELECT max(id) FROM rejects) - \(kept)")
        }
    }

    func didCommit() {
        sinceTrim = sinceTrim + pending.count >= max(1, kept / 4) ? 0 : sinceTrim + pending.count
        pending.removeAll(keepingCapacity: true)
    }

    /// What was not written yet stays for the next commit.
    func didRollBack() {}

    /// A row of `SELECT at, topic, reason, detail, payload, payload_size`.
    static func record(_ stmt: SQLiteStatement) -> RejectRecord {
        RejectRecord(
            at: Timestamp(micros: stmt.int(0)), topic: stmt.text(1) ?? "",
            reason: RejectReason(RejectReason.Code(rawValue: stmt.text(2) ?? ""), stmt.text(3) ?? ""),
            payloadPrefix: stmt.blob(4), payloadSize: Int(stmt.int(5)))
    }
}
