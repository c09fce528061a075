/// The stored state of one (rule, series): what survives a restart.
public struct AlertStateRecord: Sendable, Equatable {
    public var rule: String
    public var series: SeriesKey
    /// The active level; nil when no alert is raised.
    public var level: AlertLevel?
    public var since: Timestamp?
    /// Since when each level's condition has held (the pending `for` timers), by level.
    public var pending: [AlertLevel: Timestamp]
    /// Since when each level's condition (with hysteresis) has been gone: the `clear_for` timers.
    public var absent: [AlertLevel: Timestamp]
    public var lastValue: Double?
    public var threshold: Double?

    /// The same state with its `for` and `clear_for` timers started no later than `now`:
    /// timers stored by a run whose clock was ahead (the wall clock went back between two
    /// runs) would otherwise be held back by the difference. Nil when nothing lay ahead.
    public func timersNotAfter(_ now: Timestamp) -> AlertStateRecord? {
        guard pending.values.contains(where: { $0 > now }) || absent.values.contains(where: { $0 > now }) else { return nil }
        var r = self
        r.pending = pending.mapValues { min($0, now) }
        r.absent = absent.mapValues { min($0, now) }
        return r
    }

    public init(
        rule: String, series: SeriesKey, level: AlertLevel?, since: Timestamp?, pending: [AlertLevel: Timestamp],
        absent: [AlertLevel: Timestamp], lastValue: Double?, threshold: Double?
    ) {
        self.rule = rule
        self.series = series
        self.level = level
        self.since = since
        self.pending = pending
        self.absent = absent
        self.lastValue = lastValue
        self.threshold = threshold
    }

    /// Nothing raised and nothing pending: the record can go.
    public var isIdle: Bool { level == nil && pending.isEmpty }
}

/// Evaluates rules on each reading as it arrives and on a clock tick (for `for` and
/// `clear_for` deadlines, windows that empty, and stale series).
///
/// One state per (rule, series): a sliding window, the active level, pending timers.
/// The engine is pure: time comes in as `now`, so the daemon drives it with the wall clock
/// and `vigil test` with a simulated one.
///
/// - Important: not thread safe; the ingest thread owns it.
