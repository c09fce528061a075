/// Evaluates rules on each reading as it arrives and on a clock tick (for `for` and
/// `clear_for` deadlines, windows that empty or close, thresholds that change with the
/// local time, and stale series).
///
/// One state per (rule, series): its windows (one sliding window per distinct window
/// length of its levels, or one calendar window), the active level, pending timers.
/// The engine is pure: time comes in as `now`, so the daemon drives it with the wall clock
/// and `vigil test` with a simulated one.
///
/// - Important: not thread safe; the ingest thread owns it.
public final class RuleEngine {
    public let rules: [Rule]

    /// The fields a reading or a wake touches come first, the ones only a transition reads
    /// last: a state is a few cache lines, and most of the hot path's cost is their misses.
    struct State {
        let plan: Int32
        /// Indices into the side tables, -1 for none: the windows of levels with their own,
        /// the calendar window, the thresholds in force of a rule with a schedule, and the
        /// label of the calendar window judged last.
        var extra: Int32 = -1
        var calendar: Int32 = -1
        var inForce: Int32 = -1
        /// When the state next needs a look without a reading: a window slot expiring or a
        /// calendar window closing, a `for` or `clear_for` deadline, thresholds changing, a
        /// stale deadline. .max: never.
        var nextWake: Int64 = .max
        /// What `schedule` gave last, for a state judged at `settledAt` (.min: not judged
        /// since its windows last changed): a wake before it, at or after `settledAt`, finds
        /// nothing to do (see `tick`).
        var settledNext: Int64 = .min
        var settledAt: Int64 = .max
        var level: AlertLevel?
        var dirty = false
        /// Per level (raw value - 1): since when its raise condition holds; .min: not holding.
        var pending = LevelTimes.none
        /// Per level: since when its condition, with hysteresis, has been gone; .min: it holds.
        var absent = LevelTimes.none
        /// The rule's sliding window (empty for stale and calendar rules).
        var window: SlidingWindow
        var lastValue: Double?
        var threshold: Double?
        var since: Timestamp?
        /// The newest reading's time (stale rules).
        var lastSeen: Timestamp?
        var label: Int32 = -1
        let rule: Int
        let series: SeriesKey
        var unit: String?

        init(rule: Int, plan: Int32, series: SeriesKey, window: SlidingWindow) {
            self.rule = rule
            self.plan = plan
            self.series = series
            self.window = window
        }

        var isIdle: Bool { level == nil && pending == .none }
    }

    // The tables a reading or a tick goes through are `@exclusivity(unchecked)`: the engine
    // is used from one thread, calls out to nothing while it holds an element, and a
    // dynamic check per access (a begin and an end in a thread-local set) was an eighth of
    // the cost of a reading. Debug builds check the rest of the module as usual.

    /// Compiled rules, one per (rule, override), shared by their states.
    var plans: [RulePlan] = []
    /// What an evaluation reads of each plan (its `scalars`), by the same index.
    @exclusivity(unchecked) var scalars: [PlanScalars] = []
    private var planIndex: [Int: Int32] = [:]
    @exclusivity(unchecked) var extras: [ExtraWindows] = []
    @exclusivity(unchecked) var calendars: [CalendarWindow] = []
    @exclusivity(unchecked) var inForce: [InForce] = []
    var labels: [String] = []

    @exclusivity(unchecked) var states: [State] = []
    private var bySeries: [SeriesKey: [Int]] = [:]
    /// The same bindings by the buffer's series id, as a range of `bound`: ids below
    /// `denseIDs` (the buffer's are small and dense) index an array, others hash one integer.
    /// A reading costs no string hash, no dictionary probe and no array reference count.
    private var bySeriesID: [Int64: Bound] = [:]
    @exclusivity(unchecked) private var byDenseID: [Bound] = []
    @exclusivity(unchecked) private var bound: [Int32] = []
    static let denseIDs: Int64 = 1 << 18

    struct Bound {
        var start: Int32
        var count: Int32
        /// Not looked up yet (a dense slot not filled).
        static let unknown = Bound(start: -1, count: 0)
    }
    private(set) var byKey: [String: Int] = [:]
    private var ruleIndex: [String: Int] = [:]
    /// When each state next needs a look, earliest first: a tick costs what falls due, not
    /// what exists. Entries go stale when a state's `nextWake` moves; those are skipped.
    @exclusivity(unchecked) private var wakes = WakeWheel()
    /// What a tick takes from `wakes` at a time (kept: its buffer is reused).
    @exclusivity(unchecked) private var due: [WakeWheel.Entry] = []
    /// Whether a tick skips the states that were judged since their wake was queued, with
    /// nothing due before the tick (see `tick`); off only in the test that checks it changes nothing.
    var skipsSettledWakes = true
    /// What the calendar windows did, for the pipeline's stats.
    public internal(set) var stats = RuleEngineStats()

    /// Whether a state's windows hold anything.
    func hasData(_ i: Int) -> Bool {
        if states[i].calendar >= 0 { return calendars[Int(states[i].calendar)].isOpen }
        let e = Int(states[i].extra)
        return !states[i].window.isEmpty || (e >= 0 && extras[e].windows.contains { !$0.isEmpty })
    }

    /// Works out when state `i` next needs a look and queues it. (It reads the state's
    /// fields in place: a copy of the state would cost a reference count per array in it.)
    ///
    /// `settledAt`: the time the state was judged at, with nothing changed since (an
    /// ingest, a tick); nil when its windows changed without a judgement (replay, restore).
    func schedule(_ i: Int, settledAt: Int64? = nil) { schedule(i, scalars[Int(states[i].plan)], settledAt: settledAt) }

    /// The same, with the state's plan at hand (one reference count and lookup fewer).
    func schedule(_ i: Int, _ p: PlanScalars, settledAt: Int64?) {
        var next = Int64.max
        let level = states[i].level
        if p.isStale {
            if level == nil, let seen = states[i].lastSeen { next = seen.micros + p.staleAfter }
        } else if states[i].calendar >= 0 {
            let c = Int(states[i].calendar)
            if calendars[c].isOpen { next = calendars[c].end }
        } else {
            if let e = states[i].window.nextExpiry { next = e }
            let e = Int(states[i].extra)
            if e >= 0 {
                for w in extras[e].windows.indices { if let x = extras[e].windows[w].nextExpiry { next = Swift.min(next, x) } }
            }
            let f = Int(states[i].inForce)
            let levels = p.scheduled ? inForce[f].thresholds : p.levels
            let pending = states[i].pending
            let absent = states[i].absent
            let current = level?.rawValue ?? 0  // 0: none, below every level
            for k in 0..<4 where levels.has(k) {
                if pending[k] != .min && k + 1 > current {
                    next = Swift.min(next, pending[k] + p.hold)
                }
                if absent[k] != .min && k + 1 <= current {
                    next = Swift.min(next, absent[k] + p.clear)
                }
            }
            // New thresholds (22:00, a new phase) judge what the windows hold then.
            if p.scheduled, inForce[f].from != .max, level != nil || hasData(i) {
                next = Swift.min(next, inForce[f].until)
            }
        }
        // Only an earlier wake needs a new entry: a queued earlier one fires anyway, and the
        // tick then looks at the state and schedules it again. So the heap holds about one
        // entry per state, not one per reading that moved a window.
        if next < states[i].nextWake {
            states[i].nextWake = next
            wakes.push(next, i)
        }
        if let settledAt {
            states[i].settledNext = next
            states[i].settledAt = settledAt
        } else {
            states[i].settledNext = .min
        }
    }

    public init(rules: [Rule]) {
        self.rules = rules
        for (i, r) in rules.enumerated() { ruleIndex[r.id] = i }
    }

    /// How many (rule, series) states exist.
    public var stateCount: Int { states.count }

    /// How far back any rule's windows reach: how far back to replay the buffer at start.
    public var longestWindow: TimeSpan {
        rules.map(\.window).max() ?? .zero
    }

    /// Whether any rule watches this series (cached).
    public func watches(_ series: SeriesKey) -> Bool { !bindings(for: series).isEmpty }

    func bindings(for series: SeriesKey) -> [Int] {
        if let b = bySeries[series] { return b }
        var out: [Int] = []
        let levels = series.levels
        for (ri, rule) in rules.enumerated() where rule.match.matches(levels: levels) {
            let o = rule.overrides.firstIndex { $0.match.matches(levels: levels) } ?? -1
            let key = ri * 4096 + o + 1
            let pi: Int32
            if let known = planIndex[key] {
                pi = known
            } else {
                plans.append(RulePlan(kind: rule.resolved(for: series), zone: rule.zone))
                scalars.append(plans[plans.count - 1].scalars)
                pi = Int32(plans.count - 1)
                planIndex[key] = pi
            }
            let p = plans[Int(pi)]
            let extrema = p.stat == .min || p.stat == .max
            var st = State(
                rule: ri, plan: pi, series: series,
                window: SlidingWindow(window: p.calendar ? .zero : p.spec.window, energy: p.stat == .leq, extrema: extrema))
            if !p.isStale {
                if p.calendar {
                    calendars.append(CalendarWindow(length: p.spec.window, stat: p.stat, coverage: p.spec.coverage))
                    st.calendar = Int32(calendars.count - 1)
                } else if !p.extraWindows.isEmpty {
                    extras.append(ExtraWindows(windows: p.extraWindows.map { SlidingWindow(window: $0, energy: p.stat == .leq, extrema: extrema) }))
                    st.extra = Int32(extras.count - 1)
                }
                if p.scheduled {
                    inForce.append(InForce())
                    st.inForce = Int32(inForce.count - 1)
                }
            }
            states.append(st)
            let idx = states.count - 1
            byKey[Self.key(rule.id, series)] = idx
            out.append(idx)
        }
        bySeries[series] = out
        return out
    }

    static func key(_ rule: String, _ series: SeriesKey) -> String { rule + "\u{0}" + series.path }

    // MARK: Input

    /// Evaluates the rules that watch the reading's series.
    public func ingest(_ r: Reading, now: Timestamp, into out: inout [AlertTransition]) {
        ingest(r, bindings: bindings(for: r.series), now: now, into: &out)
    }

    /// The same, with the series named by a stable id (the buffer's), which is cheaper to look up.
    public func ingest(_ r: Reading, seriesID: Int64, now: Timestamp, into out: inout [AlertTransition]) {
        var b = Bound.unknown
        let dense = seriesID >= 0 && seriesID < Self.denseIDs
        if dense {
            if seriesID < byDenseID.count { b = byDenseID[Int(seriesID)] }
        } else if let cached = bySeriesID[seriesID] {
            b = cached
        }
        if b.start < 0 {
            let list = bindings(for: r.series)
            b = Bound(start: Int32(bound.count), count: Int32(list.count))
            bound.append(contentsOf: list.lazy.map { Int32($0) })
            if dense {
                if seriesID >= byDenseID.count { byDenseID.append(contentsOf: repeatElement(.unknown, count: Int(seriesID) + 1 - byDenseID.count)) }
                byDenseID[Int(seriesID)] = b
            } else {
                bySeriesID[seriesID] = b
            }
        }
        var j = Int(b.start)
        let end = j + Int(b.count)
        while j < end {
            ingest(r, state: Int(bound[j]), now: now, into: &out)
            j += 1
        }
    }

    private func ingest(_ r: Reading, bindings: [Int], now: Timestamp, into out: inout [AlertTransition]) {
        for i in bindings { ingest(r, state: i, now: now, into: &out) }
    }

    @inline(__always)
    private func ingest(_ r: Reading, state i: Int, now: Timestamp, into out: inout [AlertTransition]) {
        if let u = r.unit { states[i].unit = u }
        let p = scalars[Int(states[i].plan)]
        if p.isStale {
            if states[i].lastSeen.map({ r.timestamp > $0 }) ?? true { states[i].lastSeen = r.timestamp }
            if let level = states[i].level {
                resolveStale(i, level, now: now, into: &out)
            }
        } else if p.calendar {
            addToCalendar(i, p, r, now: now, into: &out)
        } else {
            let edge = max(now, r.timestamp)
            states[i].window.addUnshared(r.value, at: r.timestamp, expiring: edge)
            let e = Int(states[i].extra)
            if e >= 0 {
                for w in extras[e].windows.indices { extras[e].windows[w].addUnshared(r.value, at: r.timestamp, expiring: edge) }
            }
            evaluate(i, p, now: now, into: &out)
        }
        schedule(i, p, settledAt: now.micros)
    }

    /// A reading into a calendar window: one past the open window closes it (judged now);
    /// one from a window already judged comes too late and is counted.
    private func addToCalendar(_ i: Int, _ p: PlanScalars, _ r: Reading, now: Timestamp, into out: inout [AlertTransition]) {
        let c = Int(states[i].calendar)
        let t = r.timestamp.micros
        if calendars[c].isOpen, t >= calendars[c].end { closeCalendar(i, p, now: now, into: &out) }
        if t < calendars[c].judgedUntil {
            stats.calendarLate += 1
            return
        }
        if !calendars[c].isOpen { calendars[c].open(at: r.timestamp, zone: plans[Int(states[i].plan)].zone) }
        if calendars[c].holds(t) {
            calendars[c].add(r.value, at: t)
        } else {
            stats.calendarLate += 1
        }
    }

    /// The clock moved: deadlines, expiring and closing windows, thresholds that change,
    /// silent series. Only the states whose time has come are looked at, in the order of
    /// their times.
    public func tick(now: Timestamp, into out: inout [AlertTransition]) {
        let t = now.micros
        while wakes.takeDue(upTo: t, into: &due) {
            for e in due { wake(e.index, queuedFor: e.time, now: now, into: &out) }
        }
    }

    /// A wake of state `i`, queued for `due`, at `now`.
    @inline(__always)
    private func wake(_ i: Int, queuedFor due: Int64, now: Timestamp, into out: inout [AlertTransition]) {
        let t = now.micros
        guard states[i].nextWake == due else { return }  // moved since it was queued
        // Judged at or before `t` and nothing changed since, with nothing due until
        // after `t` (no slot leaves, no deadline passes, no calendar window closes, the
        // thresholds in force stay): looking would change nothing and schedule the same
        // wake again. So an ingest that already took the window past `due` costs this
        // tick a queued entry, not a second evaluation.
        let settled = states[i].settledNext
        if t < settled && t >= states[i].settledAt && skipsSettledWakes {
            states[i].nextWake = settled
            if settled < .max { wakes.push(settled, i) }
            return
        }
        states[i].nextWake = .max
        let p = scalars[Int(states[i].plan)]
        if p.isStale {
            if states[i].level == nil, let seen = states[i].lastSeen, t - seen.micros >= p.staleAfter {
                raiseStale(i, after: TimeSpan(micros: p.staleAfter), level: p.staleLevel, silent: t - seen.micros, now: now, into: &out)
            }
        } else if states[i].calendar >= 0 {
            let c = Int(states[i].calendar)
            if calendars[c].isOpen && calendars[c].end <= t { closeCalendar(i, p, now: now, into: &out) }
        } else {
            states[i].window.expireUnshared(now: now)
            let e = Int(states[i].extra)
            if e >= 0 { for w in extras[e].windows.indices { extras[e].windows[w].expireUnshared(now: now) } }
            evaluate(i, p, now: now, into: &out)
        }
        schedule(i, p, settledAt: t)
        // What falls due now was handled now: never again in this tick.
        if states[i].nextWake <= t {
            states[i].nextWake = t + 1
            wakes.push(t + 1, i)
        }
    }
}

/// What the calendar windows did since the engine started.
public struct RuleEngineStats: Sendable, Equatable {
    /// Calendar windows closed and judged.
    public var calendarWindows: UInt64 = 0
    /// Of those, windows without enough data (`min_coverage`): no value, no alert.
    public var calendarWindowsShort: UInt64 = 0
    /// Readings for a calendar window already judged, left out.
    public var calendarLate: UInt64 = 0

    public init() {}
}
