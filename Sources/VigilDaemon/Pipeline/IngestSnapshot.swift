import VigilCore
import VigilStorage

/// What ingest has done since the daemon started, for status and metrics. The ingest
/// thread keeps its own copy and publishes it at each commit and each second.
public struct IngestSnapshot: Sendable {
    public var messagesReceived: UInt64 = 0
    public var readingsStored: UInt64 = 0
    public var readingsDuplicate: UInt64 = 0
    public var rejected: [RejectReason.Code: UInt64] = [:]
    public var commits: UInt64 = 0
    public var lastCommit: Timestamp?
    /// Reading timestamp (from the payload) to commit: publish-to-stored.
    public var publishToStored = LatencyHistogram()
    /// Receipt by the network thread to commit: the gateway's own share.
    public var receiveToStored = LatencyHistogram()
    public var commitDuration = LatencyHistogram()
    public var prunedRetention: UInt64 = 0
    public var prunedSize: UInt64 = 0
    public var senmlSkipped: UInt64 = 0
    /// HJ 212 frames decoded, and their values flagged other than N (no readings), by flag.
    public var hj212Frames: UInt64 = 0
    public var hj212Flagged: [HJ212Flag: UInt64] = [:]
    /// HJ 212 interval values (minute, hourly, daily data): stored and judged, not aggregated.
    public var hj212IntervalReadings: UInt64 = 0
    /// Values of codes the table does not know (stored under the code), by code (256 at most, then `other`).
    public var hj212UnknownCodes: [String: UInt64] = [:]
    public var rules = 0
    public var ruleStates = 0
    /// Calendar windows the rules judged, those without enough data (`min_coverage`: no
    /// value, no alert), and readings that came after their window was judged; since the
    /// rules were last loaded.
    public var ruleWindowsJudged: UInt64 = 0
    public var ruleWindowsShort: UInt64 = 0
    public var ruleReadingsLate: UInt64 = 0
    /// Raised alerts by level.
    public var activeAlerts: [AlertLevel: Int] = [:]
    public var transitions: UInt64 = 0
    /// Readings that came after their aggregate window had closed.
    public var aggregateLate: UInt64 = 0
    public var aggregatesSent: UInt64 = 0
    public var outboxDroppedAggregates: UInt64 = 0
    /// The buffer as of the last maintenance pass (every 2 s).
    public var bufferRows: Int64 = 0
    public var bufferBytes: Int64 = 0
    /// Monotonic seconds of the last time the pipeline finished a loop turn (for the watchdog).
    public var lastProgress: Double = 0
    /// Ingest waits because the buffer's filesystem has less than `buffer.min_free` left.
    public var diskPaused = false
    public var diskPauses: UInt64 = 0
    /// The wall clock minus vigil's time line (`DaemonClock`), and how often it was stepped away.
    public var clockOffset: TimeSpan = .zero
    public var clockStepped = false
    public var clockSteps: UInt64 = 0
    /// Readings whose own timestamp followed the stepped wall clock, moved onto the time line.
    public var readingsShifted: UInt64 = 0
    /// The hot tier: bytes it holds (as of the last maintenance pass), whether it takes
    /// the batches now (false without one, or while the runtime directory is full).
    public var hotBytes: Int64 = 0
    public var hotInUse = false
    /// Flushes of the hot tier into flash, and the readings they moved.
    public var flushes: UInt64 = 0
    public var flushedReadings: UInt64 = 0
    /// Seconds the flushes took, in all, and the longest the ingest thread spent in one
    /// step (what arrives meanwhile waits in the inbox, acknowledged, not yet committed).
    public var flushSeconds = 0.0
    public var flushMaxSeconds = 0.0
    /// What this start found in the runtime directory.
    public var hotStart = HotTierStart.unused
    /// The pipeline has finished: everything received is committed.
    public var stopped = false
    public var rejectedTotal: UInt64 { rejected.values.reduce(0, +) }
}
