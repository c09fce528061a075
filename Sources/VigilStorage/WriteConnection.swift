/// One database file and its write transaction, begun when the first write needs it and
/// ended by the `Buffer`'s commit or rollback.
final class WriteConnection {
    let db: SQLiteDatabase
    private(set) var inTransaction = false

    init(_ db: SQLiteDatabase) { self.db = db }

    /// Begins the write transaction unless it is open.
    func begin() throws(SQLiteError) {
        guard !inTransaction else { return }
        try db.execute("BEGIN IMMEDIATE")
        inTransaction = true
    }

    func commit() throws(SQLiteError) {
        guard inTransaction else { return }
        try db.execute("COMMIT")
        inTransaction = false
    }

    func rollback() {
        if inTransaction || db.isInTransaction { try? db.execute("ROLLBACK") }
        inTransaction = false
    }
}

/// Where writes go: the flash buffer, and the hot tier when there is one and it has room.
final class Tiers {
    let cold: WriteConnection
    let hot: HotTier?
    /// The hot tier takes the batches: false without one, or while its filesystem is full.
    var hotInUse: Bool
    /// A flush is writing: everything goes to flash.
    var flushing = false

    init(cold: WriteConnection, hot: HotTier?) {
        self.cold = cold
        self.hot = hot
        hotInUse = hot != nil
    }

    /// Whether a batch's readings, counters and rejects go to the hot tier now.
    var batchIsHot: Bool { hotInUse && !flushing }

    /// The tier that takes a batch's counters and rejects.
    var batch: WriteConnection { batchIsHot ? hot!.conn : cold }
}
