import CSQLite
import VigilCore

#if canImport(Glibc)
import Glibc
#endif

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
    /// The runtime directory (a tmpfs) that holds the hot tier; nil: no hot tier.
    public var runtimeDirectory: String?
    /// How often the hot tier's readings are moved into the flash-backed buffer.
    public var flushInterval: TimeSpan = .seconds(10)
    /// The hot tier is flushed early when it holds this much.
    public var hotMaxSize: ByteSize = ByteSize(bytes: 16 << 20)

    public init(directory: String) { self.directory = directory }

    public var databasePath: String { directory + "/vigil.db" }

    /// Batches go to a hot tier in the runtime directory, unless `durability: full` asks
    /// for every commit on flash, fsynced.
    public var usesHotTier: Bool { runtimeDirectory != nil && durability == .normal }

    /// The hot tier's file, when there is one.
    public var hotPath: String? { usesHotTier ? runtimeDirectory.map { $0 + "/hot.db" } : nil }
}

/// What a start found of the hot tier.
public enum HotTierStart: Sendable, Equatable {
    /// No hot tier: every batch goes to flash.
    case unused
    /// The hot tier was empty, or new after a clean stop.
    case empty
    /// Readings a crash left in the hot tier, now moved to flash.
    case moved(readings: Int)
    /// The hot tier is gone though the last run did not stop cleanly (a reboot or a power
    /// cut): what it held since the last flush, at most `flush_interval`, is lost.
    case lost(lastFlushed: Timestamp?)
    /// A hot tier of another buffer (a state directory replaced), discarded.
    case foreign(readings: Int64)
}

/// Proof that a write transaction is open on the buffer. The stores' writing methods take
/// one, as GRDB's `write { db in }` passes its connection: a write outside a transaction
/// does not compile. Valid until `Buffer.commit()` or `Buffer.rollback()`.
public struct Transaction {
    init() {}
}

/// A store that keeps something for the open transaction (a cache, counts written at the
/// commit) and must hear how it ends.
protocol TransactionParticipant: AnyObject {
    /// Something waits to be written at the next commit, even with no transaction open.
    var hasPending: Bool { get }
    /// Writes what was held back for the commit, inside the transaction. It may be called
    /// twice for one commit (the second time into flash, when the hot tier was full), so
    /// what it writes is forgotten only in `didCommit`.
    func willCommit(_ tx: Transaction) throws(SQLiteError)
    func didCommit()
    func didRollBack()
}

extension TransactionParticipant {
    var hasPending: Bool { false }
    func willCommit(_ tx: Transaction) throws(SQLiteError) {}
    func didCommit() {}
}

extension CounterName {
    /// Flushes of the hot tier into flash: the hot tier's generation counts against it.
    public static let hotFlushes = "hot_flushes_total"
    /// Starts that found the hot tier gone after a run that did not stop cleanly.
    public static let hotTierLost = "hot_tier_lost_total"
}

/// The writing side of the buffer: the flash-backed database (`state_dir/vigil.db`) and,
/// unless `durability: full`, a hot tier in the runtime directory (see `HotTier`); a store
/// per table that writes in the open transaction.
///
/// Nothing is visible, or durable, before `commit()`. The ingest thread keeps one
/// transaction open across a batch of messages and commits it whole. A batch's readings,
/// counters and rejects go to the hot tier; what must not wait for a flush (new series,
/// alert states and transitions, outbox rows) goes to flash, committed first. `flush()`
/// moves the hot tier into flash in one transaction every `flush_interval`.
///
/// - Important: not thread safe. Created on one thread and then used only by the ingest
///   thread; `@unchecked Sendable` for that one handover.
public final class Buffer: @unchecked Sendable {
    public private(set) var options: BufferOptions
    let db: SQLiteDatabase
    let tiers: Tiers
    public let readings: ReadingStore
    public let alerts: AlertStore
    public let outbox: OutboxStore
    public let counters: CounterStore
    public let rejects: RejectStore
    public let meta: MetaStore
    public let retention: Retention
    private let participants: [TransactionParticipant]
    /// A random id, so that a hot tier knows which buffer it belongs to.
    public let bufferID: String
    /// What this start found in the runtime directory.
    public private(set) var hotStart = HotTierStart.unused
    /// The WAL's size, for the checkpointer.
    public let walFrames: WALFrames
    /// The page size of a new buffer.
    public static let pageSize = 1024
    /// Called before and after a flash commit that is fsynced while a hot tier takes the
    /// batches (a flush's last step, an alert's transition, a closed window, a new series):
    /// the ingest side holds the MQTT network thread meanwhile (`Inbox.hold`), because what
    /// libmosquitto acknowledges during an fsync (well over 10 ms on a busy or an SD card)
    /// is what a crash then can lose. Steps of a flush are not fsynced and not held.
    public var flashSyncGate: (hold: @Sendable () -> Void, release: @Sendable () -> Void)?
    /// A step of a flush is committing (with `synchronous = NORMAL`).
    var stepping = false

    /// Opens or creates the buffer in `options.directory`, migrating its schema, and the
    /// hot tier in `options.runtimeDirectory` (which must exist), moving into flash what a
    /// crash left there.
    public init(options: BufferOptions) throws(SQLiteError) {
        self.options = options
        db = try SQLiteDatabase(path: options.databasePath)
        db.setBusyTimeout(milliseconds: 5000)
        // 1 KiB pages (a new file only; an older buffer keeps its 4 KiB). Each flush writes
        // page 1, the readings' interior page and the last few leaves again, which the
        // B-tree rebalances; at 1 KiB that costs a quarter as much, and the leaves that are
        // new still fill the kernel's 4 KiB pages. At 30 readings/s for 25 minutes: 133
        // bytes written per reading instead of 181 (docs/benchmark.md).
        try db.execute("PRAGMA page_size = \(Self.pageSize)")
        try db.execute("PRAGMA journal_mode = WAL")
        // With a hot tier, flash sees a commit a few times a minute: each is fsynced, so a
        // power cut loses at most what the hot tier held.
        try db.execute("PRAGMA synchronous = \(options.durability == .full || options.usesHotTier ? "FULL" : "NORMAL")")
        // Checkpoints run on their own connection (see `Checkpointer`), so a commit never waits for one.
        try db.execute("PRAGMA wal_autocheckpoint = 0")
        try db.execute("PRAGMA temp_store = MEMORY")
        try db.execute("PRAGMA cache_size = -4096")
        try Schema.migrate(db)
        let frames = WALFrames()
        db.watchWAL(frames)
        walFrames = frames
        let cold = WriteConnection(db)
        var hotExisted = false
        var hot: HotTier?
        if let path = options.hotPath {
            hotExisted = access(path, F_OK) == 0
            hot = try HotTier(path: path)
        }
        tiers = Tiers(cold: cold, hot: hot)
        counters = try CounterStore(tiers: tiers)
        rejects = try RejectStore(tiers: tiers, counters: counters, kept: options.rejectsKept)
        meta = try MetaStore(cold)
        readings = try ReadingStore(tiers: tiers, counters: counters)
        alerts = try AlertStore(cold)
        outbox = try OutboxStore(cold, counters: counters, meta: meta)
        retention = Retention(cold, counters: counters, outbox: outbox, retention: options.retention, maxSize: options.maxSize)
        participants = [counters, rejects, meta, readings]
        if let id = try meta.get(MetaKey.bufferID) {
            bufferID = id
        } else {
            bufferID = (0..<4).map { _ in String(UInt32.random(in: 0...UInt32.max), radix: 16) }.joined()
            try write { tx throws(SQLiteError) in try meta.set(MetaKey.bufferID, bufferID, tx) }
        }
        if let hot { try startHotTier(hot, existed: hotExisted) }
    }

    /// What a start does with the hot tier: moves what a crash left there, or says what a
    /// reboot took; then marks the hot tier in use until a clean stop.
    private func startHotTier(_ hot: HotTier, existed: Bool) throws(SQLiteError) {
        let inUse = try meta.get(MetaKey.hotTier) == "in use"
        if !existed {
            if inUse {
                hotStart = .lost(lastFlushed: try db.scalarInt("SELECT max(ts) FROM readings").map { Timestamp(micros: $0) })
                counters.add(CounterName.hotTierLost)
            } else {
                hotStart = .empty
            }
            try hot.clear(generation: try counters.stored(CounterName.hotFlushes), bufferID: bufferID)
        } else if let id = try hot.bufferID, id != bufferID {
            hotStart = .foreign(readings: try hot.rowCount())
            try hot.clear(generation: try counters.stored(CounterName.hotFlushes), bufferID: bufferID)
        } else {
            let moved = try flush { _ throws(SQLiteError) in }
            hotStart = moved > 0 ? .moved(readings: moved) : .empty
        }
        try write { tx throws(SQLiteError) in try meta.set(MetaKey.hotTier, "in use", tx) }
    }

    /// Changes retention and size limits (a reload).
    public func setLimits(retention: TimeSpan, maxSize: ByteSize) {
        options.retention = retention
        options.maxSize = maxSize
        self.retention.retention = retention
        self.retention.maxSize = maxSize
    }

    /// Something is written and waits for `commit()`.
    public var inTransaction: Bool { tiers.cold.inTransaction || (tiers.hot?.conn.inTransaction ?? false) }

    /// The open transaction (begun in each database when a store first writes to it).
    public func transaction() throws(SQLiteError) -> Transaction {
        Transaction()
    }

    /// Commits the open transaction with what the stores held back for it (counters,
    /// rejects): flash first, then the hot tier. With nothing written, commits those alone
    /// if there are any. A hot tier whose filesystem is full hands its part to flash.
    public func commit() throws(SQLiteError) {
        if !inTransaction && !participants.contains(where: \.hasPending) { return }
        let tx = Transaction()
        do {
            try writeAndCommit(tx)
        } catch where error.isFull && tiers.batchIsHot && hotFilesystemFull {
            do {
                try readings.hotTierFull()
                try writeAndCommit(tx)
            } catch {
                rollback()
                throw error
            }
        } catch {
            rollback()
            throw error
        }
        for p in participants { p.didCommit() }
    }

    private func writeAndCommit(_ tx: Transaction) throws(SQLiteError) {
        for p in participants { try p.willCommit(tx) }
        let gate = options.usesHotTier && tiers.cold.inTransaction && !stepping ? flashSyncGate : nil
        gate?.hold()
        defer { gate?.release() }
        try tiers.cold.commit()
        try tiers.hot?.conn.commit()
    }

    /// Abandons the open transaction; the stores forget what they kept for it.
    public func rollback() {
        tiers.cold.rollback()
        tiers.hot?.conn.rollback()
        for p in participants { p.didRollBack() }
    }

    /// Runs `body` in the open transaction, or in one of its own that it commits.
    public func write<T>(_ body: (Transaction) throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        let own = !inTransaction
        let value = try body(Transaction())
        if own { try commit() }
        return value
    }

    /// Bytes the hot tier holds (0 without one).
    public func hotBytes() throws(SQLiteError) -> Int64 { try tiers.hot?.usedBytes() ?? 0 }

    /// Batches go to the hot tier now (false without one, or while its filesystem is full).
    public var hotInUse: Bool { tiers.hotInUse }

    /// Free bytes on the runtime directory's filesystem this low: the hot tier gives way to
    /// flash (and takes the batches again once four times this is free).
    public static let hotReserve: Int64 = 1 << 20
    /// Whether the hot tier was in use when `checkHotRoom` last said.
    private var reportedHotInUse = true

    private var hotFilesystemFull: Bool {
        guard let dir = options.runtimeDirectory, let free = FileSystem.freeBytes(dir) else { return false }
        return free < Self.hotReserve
    }

    /// Looks at the runtime directory's free space: the hot tier gives way to flash when
    /// it is nearly full, and takes the batches again when there is room.
    /// - Returns: the change, if any (true: the hot tier is back in use).
    /// (A commit that found the hot tier's filesystem full gave way already; this says so.)
    public func checkHotRoom() -> Bool? {
        guard tiers.hot != nil, let dir = options.runtimeDirectory, let free = FileSystem.freeBytes(dir) else { return nil }
        if tiers.hotInUse && free < Self.hotReserve {
            if inTransaction { try? commit() }
            tiers.hotInUse = false
        } else if !tiers.hotInUse && free >= 4 * Self.hotReserve {
            tiers.hotInUse = true
        }
        guard tiers.hotInUse != reportedHotInUse else { return nil }
        reportedHotInUse = tiers.hotInUse
        return tiers.hotInUse
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

/// Free space on a filesystem.
public enum FileSystem {
    /// Bytes an unprivileged writer may still use on the filesystem of `directory`.
    public static func freeBytes(_ directory: String) -> Int64? {
        var s = statvfs()
        guard statvfs(directory, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
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
