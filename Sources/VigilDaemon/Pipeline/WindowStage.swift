import VigilCore
import VigilStorage

/// Stage 4b: each stored reading into its tumbling aggregate window; windows close at
/// their end plus `allowed_lateness`, on vigil's time line. The watermark (where closing
/// has reached) is stored with the outbox rows of the windows it closed, so windows open at
/// a crash are rebuilt from the buffer and completed.
struct WindowStage {
    private(set) var aggregator: WindowAggregator
    private let config: AggregateConfig

    init(config: AggregateConfig) {
        self.config = config
        aggregator = WindowAggregator(window: config.window, allowedLateness: config.allowedLateness)
    }

    /// Picks up where the last run stopped closing windows.
    mutating func start(watermark: Timestamp?) {
        aggregator = WindowAggregator(window: config.window, allowedLateness: config.allowedLateness, watermark: watermark)
    }

    /// Where to start replaying the buffer to rebuild the open windows.
    var replayFrom: Timestamp? { aggregator.watermark.map { Timestamp(micros: $0) } }

    /// Windows before the watermark are summarised: their readings may go first when space runs out.
    var summarisedBefore: Timestamp? { replayFrom }

    /// Adds a reading to its window.
    /// - Returns: false when its window has closed already (a late reading).
    mutating func add(_ r: Reading, seriesID: Int64) -> Bool {
        aggregator.add(seriesID: seriesID, series: r.series, unit: r.unit, value: r.value, at: r.timestamp)
    }

    /// The windows due at `now`, and the watermark after them.
    mutating func close(now: Timestamp) -> (windows: [ClosedWindow], watermark: Int64?) {
        let closed = aggregator.close(now: now)
        return (closed, aggregator.watermark)
    }

    /// Readings that came after their window closed, since start.
    var late: UInt64 { aggregator.late }
}
