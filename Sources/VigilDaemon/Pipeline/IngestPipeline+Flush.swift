import VigilCore
import VigilStorage

/// The hot tier into flash, on the ingest thread between batches.
extension IngestPipeline {
    /// Moves the hot tier into flash, with what waits for a flush: the rule timers that
    /// changed without a transition; once a minute the counters, and every ten minutes when
    /// each series was last seen (pages which every flush would write again: at 100 series
    /// the last-seen times were 10 of a flush's 23 pages, once a minute).
    ///
    /// While the hot tier holds more than `flushStepReadings`, each call moves that many
    /// in a flash transaction of their own and returns: the loop takes the inbox in between,
    /// so what arrives during a flush is committed as usual, and a kill -9 during one loses
    /// no more than one batch and one step. The last call moves the rest with the counters.
    func flush() {
        commit()
        let mono = Monotonic.seconds()
        do {
            if let moved = try buffer.flushStep(limit: Self.flushStepReadings) {
                flushing = true
                stats.flushedReadings += UInt64(moved)
                flushTook(Monotonic.seconds() - mono)
                return
            }
        } catch {
            flushing = false
            logger.warning("flushing the hot tier failed; it is tried again", metadata: ["error": "\(error)"])
            return
        }
        flushing = false
        let now = clock.now()
        let counters = mono >= nextCountersWrite
        if counters { nextCountersWrite = mono + Self.countersWriteSeconds }
        let seen = mono >= nextSeenWrite
        if seen { nextSeenWrite = mono + Self.seenWriteSeconds }
        do {
            let moved = try buffer.flush(counters: counters) { tx throws(SQLiteError) in
                if seen { try buffer.readings.flushSeriesSeen(tx) }
                try rules.saveStates(now: now, buffer, all: true)
            }
            stats.flushes += 1
            stats.flushedReadings += UInt64(moved)
            flushTook(Monotonic.seconds() - mono)
        } catch {
            logger.warning("flushing the hot tier failed; it is tried again", metadata: ["error": "\(error)"])
        }
    }

    /// `flush_seconds` sums the steps; `flush_max_seconds` is the longest the ingest thread
    /// spent in one call (the pause a flush makes).
    private func flushTook(_ seconds: Double) {
        stats.flushSeconds += seconds
        stats.flushMaxSeconds = max(stats.flushMaxSeconds, seconds)
    }
}
