import Logging
import VigilCore
import VigilStorage

/// Stage 4a: each stored reading through the rule engine, as it arrives, and the engine's
/// timers each second. A transition goes into the alert history and the outbox in the
/// transaction of the readings that caused it, with the rule states, so a crash loses both
/// or neither and a restart never raises twice.
struct RuleStage {
    private(set) var engine: RuleEngine
    private var transitions: [AlertTransition] = []
    /// With a hot tier, a rule timer that changed without a transition waits for the next
    /// flush (a crash may then restart it); a transition saves every changed state at once.
    private let deferTimers: Bool
    private var transitionsSinceSave = false
    private let alerts: AlertStore
    private let logger: Logger
    /// Calendar windows closed without enough data, as last logged, and when.
    private var shortLogged: UInt64 = 0
    private var shortLoggedAt: Timestamp?

    init(rules: [Rule], buffer: Buffer, logger: Logger) {
        engine = RuleEngine(rules: rules)
        alerts = buffer.alerts
        deferTimers = buffer.options.usesHotTier
        self.logger = logger
    }

    mutating func ingest(_ r: Reading, seriesID: Int64, now: Timestamp) {
        engine.ingest(r, seriesID: seriesID, now: now, into: &transitions)
    }

    /// Rule deadlines, expiring windows and silent series.
    mutating func tick(now: Timestamp, stats: inout IngestSnapshot) {
        engine.tick(now: now, into: &transitions)
        stats.rules = engine.rules.count
        stats.ruleStates = engine.stateCount
        let e = engine.stats
        stats.ruleWindowsJudged = e.calendarWindows
        stats.ruleWindowsShort = e.calendarWindowsShort
        stats.ruleReadingsLate = e.calendarLate
        // A day without enough data gives no value and no alert: say so, at most once a minute.
        if e.calendarWindowsShort > shortLogged, shortLoggedAt.map({ now.micros - $0.micros >= 60_000_000 }) ?? true {
            logger.info(
                "calendar windows closed without enough data (min_coverage): no value, no alert",
                metadata: ["count": "\(e.calendarWindowsShort - shortLogged)", "total": "\(e.calendarWindowsShort)"])
            shortLogged = e.calendarWindowsShort
            shortLoggedAt = now
        }
    }

    /// A transition from outside the engine (vigil's own backlog alert, an orphan resolved).
    mutating func add(_ t: AlertTransition) { transitions.append(t) }

    /// Writes the transitions gathered since the last call, in the open transaction: the
    /// alert history and, through `enqueue`, the outbox. Logs each and keeps the count of
    /// active alerts.
    mutating func record(
        _ buffer: Buffer, enqueue: (AlertTransition, Transaction) throws -> Void, stats: inout IngestSnapshot
    ) throws {
        guard !transitions.isEmpty else { return }
        transitionsSinceSave = true
        let tx = try buffer.transaction()
        for t in transitions {
            try alerts.record(t, tx)
            try enqueue(t, tx)
            stats.transitions += 1
            switch t.state {
            case .raised: stats.activeAlerts[t.level, default: 0] += 1
            case .escalated, .deescalated:
                if let p = t.previousLevel { stats.activeAlerts[p, default: 1] -= 1 }
                stats.activeAlerts[t.level, default: 0] += 1
            case .resolved: stats.activeAlerts[t.level, default: 1] -= 1
            }
            stats.activeAlerts = stats.activeAlerts.filter { $0.value > 0 }
            logger.notice(
                "alert \(t.state.rawValue)",
                metadata: [
                    "rule.id": "\(t.rule)", "series": "\(t.series.path)", "alert.level": "\(t.level)",
                    "value": "\(t.value.map(Rule.formatNumber) ?? "")", "threshold": "\(t.threshold.map(Rule.formatNumber) ?? "")",
                    "message": "\(t.message)",
                ])
        }
        transitions.removeAll(keepingCapacity: true)
    }

    /// Stores the (rule, series) states that changed, in the open transaction: all of
    /// them after a transition, at a flush (`all`), or without a hot tier; else they wait.
    mutating func saveStates(now: Timestamp, _ buffer: Buffer, all: Bool = false) throws(SQLiteError) {
        guard all || transitionsSinceSave || !deferTimers else { return }
        transitionsSinceSave = false
        let dirty = engine.takeDirty()
        guard !dirty.isEmpty else { return }
        let tx = try buffer.transaction()
        for record in dirty { try alerts.save(record, now: now, tx) }
    }

    /// Brings the engine up from stored states (at start) or the running engine's (a
    /// reload): alerts of rules that are gone are resolved, and timers that lie ahead of
    /// the clock (it went back since they were stored) start from now. Then the series the
    /// buffer knows, for the stale rules.
    /// - Returns: how many stored times lay ahead of `now`.
    mutating func restore(
        _ stored: [AlertStateRecord], knownSeries: [(SeriesKey, Timestamp)], now: Timestamp, orphanReason: String,
        _ tx: Transaction
    ) throws(SQLiteError) -> Int {
        var records = stored
        var ahead = 0
        for i in records.indices {
            if let r = records[i].timersNotAfter(now) {
                records[i] = r
                ahead += 1
            }
        }
        for o in engine.restore(records) {
            if let t = RuleEngine.orphanResolved(o, now: now, reason: orphanReason) { transitions.append(t) }
            var idle = o
            idle.level = nil
            idle.pending = [:]
            idle.absent = [:]
            try alerts.save(idle, now: now, tx)
        }
        for (series, seen) in knownSeries {
            if seen > now { ahead += 1 }
            engine.knowSeries(series, lastSeen: min(seen, now))
        }
        return ahead
    }

    /// New rules (a reload): the state of alerts whose rule still watches their series
    /// carries over, the others are resolved by `restore`.
    mutating func reload(_ rules: [Rule]) -> [AlertStateRecord] {
        let previous = engine.activeStates
        engine = RuleEngine(rules: rules)
        shortLogged = 0
        return previous
    }

    /// Raised alerts by level, counted from the engine.
    var activeByLevel: [AlertLevel: Int] {
        var counts: [AlertLevel: Int] = [:]
        for s in engine.activeStates { if let l = s.level { counts[l, default: 0] += 1 } }
        return counts
    }
}
