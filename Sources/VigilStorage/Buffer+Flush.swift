/// The flush of the hot tier into flash, whole or in steps, and the clean stop's last one.
extension Buffer {
    /// Moves the hot tier into flash in one flash transaction, with what `body` writes
    /// there (what waits for a flush: when series were last seen, delivered marks, rule
    /// timers, a step of retention); then empties the hot tier. Commits an open batch
    /// first. Without a hot tier, runs `body` in its own commit.
    /// - Parameter counters: move the hot tier's counters and rejects too. A flush of the
    ///   readings alone leaves the counters' page of flash alone (they stay visible, in the
    ///   hot tier); copying readings twice is harmless, so it needs no generation.
    /// - Returns: the readings moved.
    @discardableResult
    public func flush(counters withCounters: Bool = true, _ body: (Transaction) throws(SQLiteError) -> Void) throws(SQLiteError)
        -> Int
    {
        if inTransaction { try commit() }
        guard let hot = tiers.hot else {
            try write(body)
            return 0
        }
        let total = try counters.stored(CounterName.hotFlushes)
        let generation = try hot.generation
        if generation == total - 1 {
            // Moved by the last flush, which stopped before it could empty the hot tier.
            try write(body)
            try hot.clear(generation: total, bufferID: bufferID)
            return 0
        }
        let empty = withCounters ? try hot.isEmpty() : !(try hot.hasReadings())
        guard !empty else {
            try write(body)
            return 0
        }
        tiers.flushing = true
        defer { tiers.flushing = false }
        let tx = Transaction()
        let moved: Int
        do {
            try body(tx)
            moved = try readings.moveFromHot(hot)
            if withCounters {
                try counters.moveFromHot(hot)
                try rejects.moveFromHot(hot)
                counters.add(CounterName.hotFlushes)
            }
            try commit()
        } catch {
            rollback()
            throw error
        }
        if withCounters {
            try hot.clear(generation: total + 1, bufferID: bufferID)
        } else {
            try hot.clearReadings()
        }
        return moved
    }

    /// A step of a flush, for when the hot tier holds more than `limit` readings: moving
    /// them all at once would hold the ingest thread (and what arrives meanwhile waits in
    /// the inbox, acknowledged and not yet committed) for as long as that takes. The first
    /// `limit` readings in key order are copied into flash in a transaction of their own,
    /// then deleted from the hot tier; `flush` moves the rest (and the counters) when at
    /// most `limit` are left. A crash between the two copies them again at the next start,
    /// which stores them once (the readings' primary key); a reader meanwhile finds the
    /// oldest hot reading in flash and counts the overlap once (see `BufferReader`).
    /// Readings that arrive between steps go to the hot tier as always.
    /// - Returns: the readings moved, nil when there were at most `limit` (nothing done:
    ///   call `flush`).
    public func flushStep(limit: Int) throws(SQLiteError) -> Int? {
        guard let hot = tiers.hot, let (moved, last) = try copyStep(limit: limit) else { return nil }
        try hot.deleteReadings(through: last)
        return moved
    }

    /// The first half of a step: the copy into flash, committed. Until the second half,
    /// the hot tier's oldest readings are in both tiers.
    func copyStep(limit: Int) throws(SQLiteError) -> (moved: Int, last: (ts: Int64, seriesID: Int64, value: Double))? {
        guard let hot = tiers.hot else { return nil }
        if inTransaction { try commit() }
        let rows = try hot.firstReadings(limit + 1)
        guard rows.count > limit else { return nil }
        let step = Array(rows.prefix(limit))
        tiers.flushing = true
        // Not fsynced: the flush's last commit fsyncs the WAL with every step's frames in it,
        // so a power cut still loses at most what the hot tier held since the last flush.
        try db.execute("PRAGMA synchronous = NORMAL")
        stepping = true
        defer {
            stepping = false
            tiers.flushing = false
            try? db.execute("PRAGMA synchronous = FULL")
        }
        do {
            let moved = try readings.copyToFlash(step)
            try commit()
            return (moved, step[limit - 1])
        } catch {
            rollback()
            throw error
        }
    }

    /// The clean stop: the last flush with what `body` writes, and a mark that the hot
    /// tier is empty.
    public func close(_ body: (Transaction) throws(SQLiteError) -> Void) throws(SQLiteError) {
        try flush { tx throws(SQLiteError) in
            try body(tx)
            if tiers.hot != nil { try meta.set(MetaKey.hotTier, "empty", tx) }
        }
    }
}
