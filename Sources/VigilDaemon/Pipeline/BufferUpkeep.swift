import Logging
import VigilCore
import VigilStorage

/// The buffer's upkeep between batches: the status record each second, when each series
/// was last seen every ten, and a bounded step of retention and `max_size` every two
/// (or at once again while there is more to do).
struct BufferUpkeep {
    let buffer: Buffer
    let logger: Logger
    private(set) var nextStatusWrite = 0.0
    private var nextSeriesFlush = 0.0
    private var nextMaintenance = 0.0

    init(buffer: Buffer, logger: Logger) {
        self.buffer = buffer
        self.logger = logger
    }

    /// Whether the status record is due (each second); if so, the next one is a second away.
    mutating func statusDue(at now: Double) -> Bool {
        guard now >= nextStatusWrite else { return false }
        nextStatusWrite = now + 1
        return true
    }

    /// Writes the status record `vigil status` reads: in the open batch if there is one,
    /// else in its own commit. A failed write is retried a second later.
    func writeStatus(_ json: String) {
        do {
            try buffer.write { tx throws(SQLiteError) in try buffer.meta.set(MetaKey.status, json, tx) }
        } catch {
            logger.debug("status write failed: \(error)")
        }
    }

    /// Every ten seconds: when each series was last seen.
    mutating func flushSeriesSeen(at now: Double) {
        guard now >= nextSeriesFlush else { return }
        nextSeriesFlush = now + 10
        guard buffer.readings.hasUnwrittenSeen else { return }
        do {
            try buffer.write { tx throws(SQLiteError) in try buffer.readings.flushSeriesSeen(tx) }
        } catch {
            logger.debug("series flush failed: \(error)")
        }
    }

    /// A step of retention and size enforcement when one is due, committed.
    /// - Returns: the undelivered aggregates it had to drop, when it ran.
    mutating func maintain(at now: Double, clock: any VigilClock, prunableBefore: Timestamp?, stats: inout IngestSnapshot)
        -> Int64?
    {
        guard now >= nextMaintenance else { return nil }
        do {
            let report = try buffer.write { tx throws(SQLiteError) in
                try buffer.retention.maintain(now: clock.now(), prunableBefore: prunableBefore, tx)
            }
            stats.bufferBytes = (try? buffer.usedBytes()) ?? stats.bufferBytes
            stats.bufferRows = (try? buffer.counters.storedRows()) ?? stats.bufferRows
            stats.prunedRetention += UInt64(report.prunedForRetention)
            stats.prunedSize += UInt64(report.prunedForSize)
            stats.outboxDroppedAggregates += UInt64(report.droppedAggregates)
            if report.prunedForRetention > 0 || report.prunedForSize > 0 || report.prunedDelivered > 0 {
                logger.info(
                    "pruned the buffer",
                    metadata: [
                        "readings.retention": "\(report.prunedForRetention)", "readings.max_size": "\(report.prunedForSize)",
                        "delivered_messages": "\(report.prunedDelivered)",
                    ])
            }
            if report.droppedAggregates > 0 {
                logger.error(
                    "the buffer is at max_size with undelivered messages: dropped the oldest aggregates (alerts are kept)",
                    metadata: ["dropped": "\(report.droppedAggregates)"])
            }
            nextMaintenance = now + (report.more ? 0.05 : 2)
            return report.droppedAggregates
        } catch {
            logger.warning("retention pass failed: \(error)")
            nextMaintenance = now + 2
            return nil
        }
    }
}
