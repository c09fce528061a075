import CSQLite
import VigilCore

/// How hard a commit tries to survive power loss.
public enum Durability: String, Sendable, CaseIterable {
    /// WAL with `synchronous=NORMAL`: a commit survives a crash of vigil; the last commits
    /// before a power cut may be lost (the database stays consistent).
    case normal
    /// WAL with `synchronous=FULL`: every commit is fsynced before it counts.
    case full
}

/// Where the buffer lives and how it is kept.
public struct BufferOptions: Sendable, Hashable {
    public var directory: String
    public var durability: Durability = .normal
    public var retention: TimeSpan = .days(7)
    public var maxSize: ByteSize = ByteSize(bytes: 1 << 30)
    /// Free space the buffer's filesystem must keep: below it ingest pauses (the broker
    /// keeps the messages) until space returns.
    public var minFree: ByteSize = ByteSize(bytes: 16 << 20)
    /// How many rejected messages are kept for `vigil rejects`.
    public var rejectsKept: Int = 1000
    /// How many bytes of a rejected payload are kept.
    public var rejectPayloadPrefix: Int = 256

    public init(directory: String) { self.directory = directory }

    public var databasePath: String { directory + "/vigil.db" }
}

/// Proof that a write transaction is open on the buffer. The stores' writing methods take
/// one, as GRDB's `write { db in }` passes its connection: a write outside a transaction
/// does not compile. Valid until `Buffer.commit()` or `Buffer.rollback()`.
public struct Transaction {
    let db: SQLiteDatabase
}

/// A store that keeps something for the open transaction (a cache, counts written at the
/// commit) and must hear how it ends.
protocol TransactionParticipant: AnyObject {
    /// Something waits to be written at the next commit, even with no transaction open.
    var hasPending: Bool { get }
    /// Writes what was held back for the commit, inside the transaction.
    func willCommit(_ tx: Transaction) throws(SQLiteError)
    func didCommit()
    func didRollBack()
}

extension TransactionParticipant {
    var hasPending: Bool { false }
    func willCommit(_ tx: Transaction) throws(SQLiteError) {}
    func didCommit() {}
}

/// The writing side of the buffer: one connection and its transaction, and a store per
/// table that writes in it.
///
/// Nothing is visible, or durable, before `commit()`. The ingest thread keeps one
/// transaction open across a batch of messages (readings, alert states and history,
/// outbox rows, counters and rejects) and commits it whole, so a crash keeps all of a
/// batch or none of it.
///
/// - Important: not thread safe. Created on one thread and then used only by the ingest
///   thread; `@unchecked Sendable` for that one handover.
public final class Buffer: @unchecked Sendable {
    public private(set) var options: BufferOptions
    let db: SQLiteDatabase
    public let readings: ReadingStore
    public let alerts: AlertStore
    public let outbox: OutboxStore
    public let counters: CounterStore
    public let rejects: RejectStore
    public let meta: MetaStore
    public let retention: Retention
    private let participants: [TransactionParticipant]
    private var open: Transaction?

    /// Opens or creates the buffer in `options.directory`, migrating its schema.
    public init(options: BufferOptions) throws(SQLiteError) {
        self.options = options
        db = try SQLiteDatabase(path: options.databasePath)
        db.setBusyTimeout(milliseconds: 5000)
        try db.execute("PRAGMA journal_mode = WAL")
        try db.execute("PRAGMA synchronous = \(options.durability == .full ? "FULL" : "NORMAL")")
        // Checkpoints run on their own connection (see `Checkpointer`), so a commit never waits for one.
        try db.execute("PRAGMA wal_autocheckpoint = 0")
        try db.execute("PRAGMA journal_size_limit = 67108864")
        try db.execute("PRAGMA temp_store = MEMORY")
        try db.execute("PRAGMA cache_size = -4096")
        try Schema.migrate(db)
        counters = try CounterStore(db)
        rejects = try RejectStore(db, counters: counters, kept: options.rejectsKept)
        meta = try MetaStore(db)
        readings = try ReadingStore(db, counters: counters)
        alerts = try AlertStore(db)
        outbox = try OutboxStore(db, counters: counters, meta: meta)
        retention = Retention(db, counters: counters, outbox: outbox, retention: options.retention, maxSize: options.maxSize)
        participants = [counters, rejects, meta, readings]
    }

    /// Changes retention and size limits (a reload).
    public func setLimits(retention: TimeSpan, maxSize: ByteSize) {
        options.retention = retention
        options.maxSize = maxSize
        self.retention.retention = retention
        self.retention.maxSize = maxSize
    }

    public var inTransaction: Bool { open != nil }

    /// The open transaction, begun (`BEGIN IMMEDIATE`) if there is none.
    public func transaction() throws(SQLiteError) -> Transaction {
        if let open { return open }
        try db.execute("BEGIN IMMEDIATE")
        let tx = Transaction(db: db)
        open = tx
        return tx
    }

    /// Commits the open transaction with what the stores held back for it (counters,
    /// rejects). With none open, commits those alone if there are any.
    public func commit() throws(SQLiteError) {
        if open == nil && !participants.contains(where: \.hasPending) { return }
        let tx = try transaction()
        do {
            for p in participants { try p.willCommit(tx) }
            try db.execute("COMMIT")
        } catch {
            rollback()
            throw error
        }
        open = nil
        for p in participants { p.didCommit() }
    }

    /// Abandons the open transaction; the stores forget what they kept for it.
    public func rollback() {
        if open != nil || db.isInTransaction { try? db.execute("ROLLBACK") }
        open = nil
        for p in participants { p.didRollBack() }
    }

    /// Runs `body` in the open transaction, or in one of its own that it commits.
    public func write<T>(_ body: (Transaction) throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        let own = open == nil
        let value = try body(try transaction())
        if own { try commit() }
        return value
    }

    /// Bytes the buffer's pages hold (free pages not counted).
    public func usedBytes() throws(SQLiteError) -> Int64 {
        try db.usedBytes()
    }

    /// Runs a passive WAL checkpoint on this connection (tests and shutdown; the daemon
    /// normally checkpoints from its own connection).
    public func checkpoint() throws(SQLiteError) {
        try db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    }
}

extension SQLiteDatabase {
    /// Bytes held by the pages, free pages not counted.
    func usedBytes() throws(SQLiteError) -> Int64 {
        let pages = try scalarInt("PRAGMA page_count") ?? 0
        let free = try scalarInt("PRAGMA freelist_count") ?? 0
        let size = try scalarInt("PRAGMA page_size") ?? 4096
        return (pages - free) * size
    }
}
