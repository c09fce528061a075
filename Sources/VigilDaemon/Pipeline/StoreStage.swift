import Logging
import VigilCore
import VigilStorage

/// Stage 3: readings into the buffer. One transaction stays open for a batch and is
/// committed every `commit.interval` or `commit.rows`, whichever comes first; what the
/// later stages write for those readings (alerts, rule states, outbox rows) goes into the
/// same transaction.
///
/// Crash window: a message the network thread has acknowledged is safe once the commit
/// that holds it returns. Before that it sits in the inbox or the open transaction: in
/// steady state the readings of the last `commit.interval`, at most those of
/// `CommitPolicy.window` (the inbox holds the network thread beyond it; see `Inbox`).
struct StoreStage {
    let buffer: Buffer
    var policy: CommitPolicy
    /// Monotonic nanoseconds when the open batch took its first message.
    private(set) var batchStartedAt: UInt64?
    private var payloadTimes: [Int64] = []
    private var receiveTimes: [Int64] = []
    private var failing = false
    /// Failed writes since start: what was pending when this changes is rolled back.
    private(set) var failures: UInt64 = 0
    /// Readings of the open batch, counted into the snapshot when it commits: a counter
    /// that only goes up (a failed commit counts nothing rather than taking back).
    private var pendingStored: UInt64 = 0
    private var pendingDuplicate: UInt64 = 0
    private(set) var disk: DiskSpaceGuard
    private let logger: Logger

    init(buffer: Buffer, policy: CommitPolicy, logger: Logger) {
        self.buffer = buffer
        self.policy = policy
        self.logger = logger
        disk = DiskSpaceGuard(directory: buffer.options.directory, minFree: buffer.options.minFree.bytes, logger: logger)
    }

    /// The transaction of the open batch; the batch's clock starts with its first message.
    mutating func batch() throws(SQLiteError) -> Transaction {
        if batchStartedAt == nil { batchStartedAt = Monotonic.nanos() }
        return try buffer.transaction()
    }

    /// Stores one reading of the open batch.
    /// - Returns: the series' id, or nil when it is stored already (a QoS 1 redelivery).
    mutating func insert(_ r: Reading, receivedAt: Timestamp, _ tx: Transaction, stats: inout IngestSnapshot)
        throws(SQLiteError) -> Int64?
    {
        let id = try buffer.readings.insert(r, tx)
        if id != nil {
            pendingStored += 1
            if r.timestampFromPayload { payloadTimes.append(r.timestamp.micros) }
        } else {
            pendingDuplicate += 1
        }
        receiveTimes.append(receivedAt.micros)
        return id
    }

    /// The open batch holds `commit.rows` readings.
    var isFull: Bool { buffer.readings.pendingRows >= policy.rows }

    /// Readings the open batch may still take before it is full.
    var room: Int { policy.rows - buffer.readings.pendingRows }

    /// Monotonic seconds when the open batch is due, if one is open.
    var due: Double? { batchStartedAt.map { Double($0) / 1e9 + policy.interval.seconds } }

    /// Something waits for a commit.
    var hasPending: Bool { buffer.inTransaction || batchStartedAt != nil }

    /// Commits the open transaction and records how long its readings waited.
    /// - Returns: whether the commit went through.
    mutating func commit(now clock: any VigilClock, stats: inout IngestSnapshot) -> Bool {
        let start = Monotonic.nanos()
        let rows = buffer.readings.pendingRows
        do {
            try buffer.commit()
        } catch {
            failed(error, rows: rows, stats: &stats)
            return false
        }
        let end = Monotonic.nanos()
        let now = clock.now().micros
        stats.commits += 1
        stats.readingsStored += pendingStored
        stats.readingsDuplicate += pendingDuplicate
        pendingStored = 0
        pendingDuplicate = 0
        stats.lastCommit = Timestamp(micros: now)
        stats.commitDuration.add(micros: Int64((end - start) / 1000))
        for t in payloadTimes { stats.publishToStored.add(micros: now - t) }
        for t in receiveTimes { stats.receiveToStored.add(micros: now - t) }
        payloadTimes.removeAll(keepingCapacity: true)
        receiveTimes.removeAll(keepingCapacity: true)
        batchStartedAt = nil
        if failing {
            failing = false
            logger.notice("buffer writes work again")
        }
        return true
    }

    /// A failed write or commit: the open transaction is rolled back and what it held is
    /// counted as lost; ingest goes on with the next message. A full disk pauses ingest.
    mutating func failed(_ error: Error, rows: Int? = nil, stats: inout IngestSnapshot) {
        let lost = rows ?? buffer.readings.pendingRows
        failures += 1
        buffer.rollback()
        if let e = error as? SQLiteError, e.isFull { disk.full() }
        payloadTimes.removeAll(keepingCapacity: true)
        receiveTimes.removeAll(keepingCapacity: true)
        batchStartedAt = nil
        pendingStored = 0
        pendingDuplicate = 0
        if !failing {
            logger.error(
                "buffer write failed; the readings of this batch are lost", metadata: ["error": "\(error)", "lost": "\(lost)"])
        }
        failing = true
    }

    /// Whether ingest must wait for disk space (see `DiskSpaceGuard`).
    mutating func diskPaused(now: Double) -> Bool { disk.check(now: now) }
}
