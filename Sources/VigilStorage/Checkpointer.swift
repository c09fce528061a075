import CSQLite
import Synchronization

/// Copies WAL pages into the database file from its own connection, so that commits on
/// the writer never wait for a checkpoint.
///
/// - Important: used from one thread at a time (the checkpoint thread); `@unchecked Sendable`
///   for the handover to that thread only.
public final class Checkpointer: @unchecked Sendable {
    let db: SQLiteDatabase
    /// The buffer's page size: a WAL frame holds one page.
    public let pageSize: Int

    public init(options: BufferOptions) throws(SQLiteError) {
        db = try SQLiteDatabase(path: options.databasePath)
        db.setBusyTimeout(milliseconds: 100)
        try db.execute("PRAGMA synchronous = \(options.durability == .full ? "FULL" : "NORMAL")")
        pageSize = Int(try db.scalarInt("PRAGMA page_size") ?? 4096)
    }

    /// A passive checkpoint: copies what it can without blocking the writer.
    /// - Returns: the WAL's size in frames and how many were checkpointed.
    @discardableResult
    public func checkpoint() throws(SQLiteError) -> (walFrames: Int32, checkpointed: Int32) {
        var log: Int32 = 0
        var done: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(db.handle, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &done)
        if rc != SQLITE_OK && rc != SQLITE_BUSY { throw db.error(rc, "wal_checkpoint") }
        return (log, done)
    }
}

/// How many frames the writer's WAL holds, as SQLite reports after each commit: the
/// checkpointer copies them into the database file when there are many, or now and then,
/// rather than every second, so a page changed by many flushes is written there once.
public final class WALFrames: Sendable {
    private let frames = Atomic<Int32>(0)

    public init() {}

    /// Frames written since the last checkpoint (0 after one).
    public var count: Int32 { frames.load(ordering: .relaxed) }

    func set(_ n: Int32) { frames.store(n, ordering: .relaxed) }

    /// After a checkpoint: the next commit starts the WAL over.
    public func reset() { frames.store(0, ordering: .relaxed) }
}

extension SQLiteDatabase {
    /// Reports the WAL's size in frames to `frames` after each commit.
    func watchWAL(_ frames: WALFrames) {
        sqlite3_wal_hook(
            handle,
            { context, _, _, n in
                if let context { Unmanaged<WALFrames>.fromOpaque(context).takeUnretainedValue().set(n) }
                return SQLITE_OK
            }, Unmanaged.passUnretained(frames).toOpaque())
    }
}
