import Logging
import VigilCore
import VigilStorage

/// The buffer's upkeep between batches: when the status record is due (each second; see
/// `StatusWriter`), a flush of the hot tier into flash every `flush_interval`, and a bounded
/// step of retention and `max_size` every two seconds (or at once again while there is
/// more to do), which writes flash only when there is something to delete.
struct BufferUpkeep {
    let buffer: Buffer
    let runtimeDir: String
    let logger: Logger
    private(set) var nextStatusWrite = 0.0
    private var nextFlush: Double
    private var nextMaintenance = 0.0
    private var nextRoomCheck = 0.0

    init(buffer: Buffer, runtimeDir: String, logger: Logger) {
        self.buffer = buffer
        self.runtimeDir = runtimeDir
        self.logger = logger
        nextFlush = Monotonic.seconds() + buffer.options.flushInterval.seconds
    }

    /// Whether the status record is due (each second); if so, the next one is a second away.
    mutating func statusDue(at now: Double) -> Bool {
        guard now >= nextStatusWrite else { return false }
        nextStatusWrite = now + 1
        return true
    }

    /// Whether the hot tier is due for a flush: `flush_interval` since the last, or it
    /// holds `hot_max_size`. If so, the next is `flush_interval` away.
    mutating func flushDue(at now: Double) -> Bool {
        var due = now >= nextFlush
        if !due && buffer.hotInUse, let bytes = try? buffer.hotBytes(), bytes >= buffer.options.hotMaxSize.bytes {
            due = true
        }
        if due { nextFlush = now + buffer.options.flushInterval.seconds }
        return due
    }

    /// Each second: whether the runtime directory still has room for the hot tier.
    mutating func checkHotRoom(at now: Double) {
        guard now >= nextRoomCheck else { return }
        nextRoomCheck = now + 1
        switch buffer.checkHotRoom() {
        case false?:
            logger.error(
                "the runtime directory is nearly full: batches go to flash directly until it has room",
                metadata: ["runtime_dir": "\(runtimeDir)"])
        case true?:
            logger.notice("the runtime directory has room again: batches go to the hot tier", metadata: ["runtime_dir": "\(runtimeDir)"])
        case nil:
            break
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
            stats.hotBytes = (try? buffer.hotBytes()) ?? stats.hotBytes
            stats.hotInUse = buffer.hotInUse
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
