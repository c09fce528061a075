import VigilCore

/// Reads the outbox for the upstream sender, on its own connection (WAL: it never blocks
/// the ingest thread's writes).
///
/// - Important: not thread safe; the upstream thread owns it. `@unchecked Sendable` for
///   the handover to that thread.
public final class OutboxReader: @unchecked Sendable {
    let db: SQLiteDatabase
    private let next: SQLiteStatement
    private let backlog: SQLiteStatement

    public init(options: BufferOptions) throws(SQLiteError) {
        db = try SQLiteDatabase(path: options.databasePath)
        db.setBusyTimeout(milliseconds: 2000)
        try db.execute("PRAGMA query_only = 1")
        next = try db.prepare(
            "SELECT seq, topic, payload, created FROM outbox WHERE kind = ? AND delivered IS NULL AND seq > ? ORDER BY seq LIMIT ?")
        backlog = try db.prepare("SELECT kind, count(*), min(created) FROM outbox WHERE delivered IS NULL GROUP BY kind")
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

    /// How many messages of each kind wait, and the oldest.
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
