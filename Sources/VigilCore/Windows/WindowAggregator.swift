/// The statistics of one series over one window.
public struct WindowStats: Sendable, Equatable {
    public var count = 0
    public var sum = 0.0
    public var min = Double.infinity
    public var max = -Double.infinity
    /// The value with the earliest timestamp, and the one with the latest.
    public var first = 0.0
    public var last = 0.0
    var firstT = Int64.max
    var lastT = Int64.min
    /// Welford's running mean and sum of squared deviations, for a stable stddev.
    var runningMean = 0.0
    var m2 = 0.0

    public init() {}

    public mutating func add(_ v: Double, at t: Int64) {
        count += 1
        sum += v
        min = Swift.min(min, v)
        max = Swift.max(max, v)
        if t < firstT {
            firstT = t
            first = v
        }
        if t >= lastT {
            lastT = t
            last = v
        }
        let delta = v - runningMean
        runningMean += delta / Double(count)
        m2 += delta * (v - runningMean)
    }

    public var mean: Double { count > 0 ? sum / Double(count) : 0 }
    /// The population standard deviation (0 for a single reading).
    public var stddev: Double { count > 0 ? (Swift.max(0, m2) / Double(count)).squareRoot() : 0 }
}

/// A window that has closed, ready to be sent.
public struct ClosedWindow: Sendable, Equatable {
    public var seriesID: Int64
    public var series: SeriesKey
    public var unit: String?
    public var start: Timestamp
    public var end: Timestamp
    public var stats: WindowStats

    public init(seriesID: Int64, series: SeriesKey, unit: String?, start: Timestamp, end: Timestamp, stats: WindowStats) {
        self.seriesID = seriesID
        self.series = series
        self.unit = unit
        self.start = start
        self.end = end
        self.stats = stats
    }
}

/// Tumbling windows per series, aligned to multiples of the window length since the epoch
/// (a 1-minute window runs from :00 to :00), closed `allowedLateness` after their end.
///
/// The watermark is the end of the last closed window: a reading older than it is late,
/// counted and not merged, so what was sent stays true. Everything the aggregator has
/// not closed is in the buffer, so after a restart the open windows are rebuilt by
/// feeding it the readings from the watermark on.
///
/// - Important: not thread safe; the ingest thread owns it.
public struct WindowAggregator: Sendable {
    public let window: Int64
    public let lateness: Int64
    /// Windows that end at or before this are closed. nil until the first close.
    public private(set) var watermark: Int64?
    public private(set) var late: UInt64 = 0

    struct Key: Hashable {
        var series: Int64
        var start: Int64
    }

    struct Open {
        var series: SeriesKey
        var unit: String?
        var stats = WindowStats()
    }

    private var open: [Key: Open] = [:]

    public init(window: TimeSpan, allowedLateness: TimeSpan, watermark: Timestamp? = nil) {
        self.window = Swift.max(1, window.micros)
        self.lateness = Swift.max(0, allowedLateness.micros)
        self.watermark = watermark?.micros
    }

    public var openWindows: Int { open.count }

    /// The start of the window holding `t`.
    public func windowStart(_ t: Int64) -> Int64 {
        let q = t / window
        return (t % window < 0 ? q - 1 : q) * window
    }

    /// Adds a reading. Returns false when it is late: its window has closed already.
    @discardableResult
    public mutating func add(seriesID: Int64, series: SeriesKey, unit: String?, value: Double, at t: Timestamp) -> Bool {
        let start = windowStart(t.micros)
        if let w = watermark, start + window <= w {
            late += 1
            return false
        }
        let key = Key(series: seriesID, start: start)
        if open[key] == nil { open[key] = Open(series: series, unit: unit) }
        if let u = unit { open[key]!.unit = u }
        open[key]!.stats.add(value, at: t.micros)
        return true
    }

    /// When the next window closes (its end plus the lateness), if any window is open.
    public var nextClose: Int64? {
        open.keys.map { $0.start + window + lateness }.min()
    }

    /// Closes every window whose end plus the lateness has passed at `now`, and moves the
    /// watermark there. Closed windows come in order of end, then series.
    public mutating func close(now: Timestamp) -> [ClosedWindow] {
        let edge = windowStart(now.micros - lateness)
        if let w = watermark, edge <= w { return [] }
        watermark = edge
        var closed: [ClosedWindow] = []
        for (key, o) in open where key.start + window <= edge {
            closed.append(
                ClosedWindow(
                    seriesID: key.series, series: o.series, unit: o.unit, start: Timestamp(micros: key.start),
                    end: Timestamp(micros: key.start + window), stats: o.stats))
        }
        for c in closed { open[Key(series: c.seriesID, start: c.start.micros)] = nil }
        closed.sort { ($0.end.micros, $0.series.path) < ($1.end.micros, $1.series.path) }
        return closed
    }
}
