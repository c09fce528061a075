import VigilCore

/// What a maintenance pass did.
public struct MaintenanceReport: Sendable, Equatable {
    public var prunedForRetention: Int64 = 0
    public var prunedForSize: Int64 = 0
    /// Delivered outbox messages deleted (past the retention, or for size).
    public var prunedDelivered: Int64 = 0
    /// Undelivered aggregates deleted because the buffer is full of backlog.
    public var droppedAggregates: Int64 = 0
    /// More work is left: call again soon.
    public var more = false
    public init() {}
}

/// Keeps the buffer within `retention` and `max_size`, in bounded steps between commits.
public final class Retention {
    private let cold: WriteConnection
    private var db: SQLiteDatabase { cold.db }
    private let counters: CounterStore
    private let outbox: OutboxStore
    var retention: TimeSpan
    var maxSize: ByteSize

    init(_ cold: WriteConnection, counters: CounterStore, outbox: OutboxStore, retention: TimeSpan, maxSize: ByteSize) {
        self.cold = cold
        self.counters = counters
        self.outbox = outbox
        self.retention = retention
        self.maxSize = maxSize
    }

    /// One bounded step of retention and size enforcement.
    ///
    /// Readings and delivered messages older than the retention go first. Then, while the
    /// buffer is over `maxSize`: the oldest readings already summarised (before
    /// `prunableBefore`), then the oldest delivered messages, then, as a last resort, the
    /// oldest undelivered aggregates. Alerts are never dropped. `chunk` rows at a time.
    public func maintain(now: Timestamp, prunableBefore: Timestamp? = nil, chunk: Int = 5000, _ tx: Transaction)
        throws(SQLiteError) -> MaintenanceReport
    {
        var report = MaintenanceReport()
        let cutoff = now.subtracting(retention).micros
        report.prunedForRetention = try deleteReadings(before: cutoff, chunk: chunk)
        if report.prunedForRetention > 0 { counters.add(CounterName.readingsPrunedRetention, report.prunedForRetention) }
        report.prunedDelivered = try outbox.pruneDelivered(before: Timestamp(micros: cutoff), chunk: chunk, tx)
        if try db.usedBytes() > maxSize.bytes {
            report.prunedForSize = try deleteReadings(before: prunableBefore?.micros ?? Int64.max, chunk: chunk)
            if report.prunedForSize > 0 { counters.add(CounterName.readingsPrunedSize, report.prunedForSize) }
            if report.prunedForSize == 0 {
                report.prunedDelivered += try outbox.pruneDelivered(before: nil, chunk: chunk, tx)
            }
            if report.prunedForSize == 0 && report.prunedDelivered == 0 {
                // The last resort goes in small steps, checking the size between them.
                report.droppedAggregates = try outbox.dropUndeliveredAggregates(chunk: min(chunk, 500), tx)
            }
            let stillOver = try db.usedBytes() > maxSize.bytes
            report.more = (report.prunedForSize + report.prunedDelivered + report.droppedAggregates) > 0 && stillOver
        }
        report.more = report.more || report.prunedForRetention >= Int64(chunk) || report.prunedDelivered >= Int64(chunk)
        return report
    }

    /// Deletes up to `chunk` of the oldest readings before `limit` (micros).
    private func deleteReadings(before limit: Int64, chunk: Int) throws(SQLiteError) -> Int64 {
        try cold.begin()
        try db.execute(
            "DELETE FROM readings WHERE ts < min(\(limit), coalesce((SELECT ts FROM readings ORDER BY ts LIMIT 1 OFFSET \(chunk)), \(limit)))"
        )
        return db.changes
    }
}
