import VigilCore
import VigilStorage

/// The stages that exist when an upstream is configured: aggregate windows and the outbox.
struct UpstreamStages {
    var windows: WindowStage
    var outbox: OutboxStage

    /// Each second: the backlog alert's end, the windows that are due into the outbox, and
    /// what upstream acknowledged.
    /// - Returns: the backlog alert's transition, when it resolves.
    mutating func tick(now: Timestamp, _ buffer: Buffer, stats: inout IngestSnapshot) throws(SQLiteError) -> AlertTransition? {
        let resolved = outbox.backlogTransition(dropped: 0, now: now)
        let (closed, watermark) = windows.close(now: now)
        if let watermark, !closed.isEmpty || watermark != outbox.watermark {
            try outbox.enqueue(closed, watermark: watermark, now: now, try buffer.transaction())
        }
        stats.aggregatesSent += UInt64(closed.count)
        stats.aggregateLate = windows.late
        try outbox.markAcknowledged(now: now, buffer)
        return resolved
    }
}
