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

    struct State {
        let rule: Int
        let series: SeriesKey
        let kind: Rule.Kind
        /// Sliding windows: [0] the rule's, then those of levels with a window of their own.
        var windows: [SlidingWindow] = []
        /// Which of `windows` each level (raw value - 1) reads.
        var levelWindow = SIMD4<Int32>(repeating: 0)
        var calendar: CalendarWindow?
        /// Rules with a schedule: the thresholds in force from `inForceFrom` until
        /// `inForceUntil` (UTC micros), and the period's name. `inForceFrom == .max`: not looked up.
        var inForce: Thresholds?
        var period: String?
        var inForceFrom: Int64 = .max
        var inForceUntil: Int64 = .min
        /// The calendar window judged last, for messages.
        var windowLabel: String?
        var level: AlertLevel?
        var since: Timestamp?
        /// Per level (raw value - 1): since when its raise condition holds; .min: not holding.
        var pending = SIMD4<Int64>(repeating: .min)
        /// Per level: since when its condition, with hysteresis, has been gone; .min: it holds.
        var absent = SIMD4<Int64>(repeating: .min)
        var lastValue: Double?
        var threshold: Double?
        var unit: String?
        /// The newest reading's time (stale rules).
        var lastSeen: Timestamp?
        var dirty = false
        /// When the state next needs a look without a reading: a window slot expiring or a
        /// calendar window closing, a `for` or `clear_for` deadline, thresholds changing, a
        /// stale deadline. .max: never.
        var nextWake: Int64 = .max

        var isIdle: Bool { level == nil && pending == SIMD4(repeating: .min) }
        var hasData: Bool { calendar?.isOpen ?? windows.contains { !$0.isEmpty } }
    }

    var states: [State] = []
    private var bySeries: [SeriesKey: [Int]] = [:]
    /// The same bindings by the buffer's series id: one integer hash per reading, not four strings.
    private var bySeriesID: [Int64: [Int]] = [:]
    private(set) var byKey: [String: Int] = [:]
    private var ruleIndex: [String: Int] = [:]
    /// When each state next needs a look, earliest first: a tick costs what falls due, not
    /// what exists. Entries go stale when a state's `nextWake` moves; those are skipped.
    private var wakes = WakeHeap()
    /// What the calendar windows did, for the pipeline's stats.
    public internal(set) var stats = RuleEngineStats()

    /// Works out when state `i` next needs a look and queues it.
    func schedule(_ i: Int) {
        let s = states[i]
        var next = Int64.max
        switch s.kind {
        case .threshold(let spec):
            if let c = s.calendar {
                if c.isOpen { next = c.end }
                break
            }
            for w in s.windows { if let e = w.nextExpiry { next = Swift.min(next, e) } }
            let levels = spec.schedule == nil ? spec.thresholds.levels : (s.inForce?.levels ?? [])
            for (lvl, _) in levels {
                let k = lvl.rawValue - 1
                if s.pending[k] != .min && (s.level.map { lvl > $0 } ?? true) {
                    next = Swift.min(next, s.pending[k] + spec.holdFor.micros)
                }
                if s.absent[k] != .min, let current = s.level, lvl <= current {
                    next = Swift.min(next, s.absent[k] + spec.clearFor.micros)
                }
            }
            // New thresholds (22:00, a new phase) judge what the windows hold then.
            if spec.schedule != nil, s.inForceFrom != .max, s.level != nil || s.hasData {
                next = Swift.min(next, s.inForceUntil)
            }
        case .stale(let after, _):
            if s.level == nil, let seen = s.lastSeen { next = seen.micros + after.micros }
        }
        // Only an earlier wake needs a new entry: a queued earlier one fires anyway, and the
        // tick then looks at the state and schedules it again. So the heap holds about one
        // entry per state, not one per reading that moved a window.
        if next < s.nextWake {
            states[i].nextWake = next
            wakes.push(next, i)
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
            let kind = rule.resolved(for: series)
            var st = State(rule: ri, series: series, kind: kind)
            if case .threshold(let spec) = kind { Self.makeWindows(&st, spec) }
            states.append(st)
            let idx = states.count - 1
            byKey[Self.key(rule.id, series)] = idx
            out.append(idx)
        }
        bySeries[series] = out
        return out
    }

    /// A calendar window, or one sliding window per distinct length among the levels.
    static func makeWindows(_ st: inout State, _ spec: ThresholdSpec) {
        if spec.align == .calendar {
            st.calendar = CalendarWindow(length: spec.window, stat: spec.stat, coverage: spec.coverage)
            return
        }
        var lengths = [spec.window]
        for lvl in AlertLevel.allCases {
            let w = spec.window(of: lvl)
            if let k = lengths.firstIndex(of: w) {
                st.levelWindow[lvl.rawValue - 1] = Int32(k)
            } else {
                lengths.append(w)
                st.levelWindow[lvl.rawValue - 1] = Int32(lengths.count - 1)
            }
        }
        st.windows = lengths.map { SlidingWindow(window: $0, energy: spec.stat == .leq) }
    }

    static func key(_ rule: String, _ series: SeriesKey) -> String { rule + "\u{0}" + series.path }

    // MARK: Input

    /// Evaluates the rules that watch the reading's series.
    public func ingest(_ r: Reading, now: Timestamp, into out: inout [AlertTransition]) {
        ingest(r, bindings: bindings(for: r.series), now: now, into: &out)
    }

    /// The same, with the series named by a stable id (the buffer's), which is cheaper to look up.
    public func ingest(_ r: Reading, seriesID: Int64, now: Timestamp, into out: inout [AlertTransition]) {
        let b: [Int]
        if let cached = bySeriesID[seriesID] {
            b = cached
        } else {
            b = bindings(for: r.series)
            bySeriesID[seriesID] = b
        }
        guard !b.isEmpty else { return }
        ingest(r, bindings: b, now: now, into: &out)
    }

    private func ingest(_ r: Reading, bindings: [Int], now: Timestamp, into out: inout [AlertTransition]) {
        for i in bindings {
            if let u = r.unit { states[i].unit = u }
            switch states[i].kind {
            case .threshold(let spec):
                if states[i].calendar != nil {
                    addToCalendar(i, spec, r, now: now, into: &out)
                } else {
                    let edge = max(now, r.timestamp)
                    for w in states[i].windows.indices {
                        states[i].windows[w].add(r.value, at: r.timestamp)
                        states[i].windows[w].expire(now: edge)
                    }
                    evaluate(i, spec, now: now, into: &out)
                }
            case .stale:
                if states[i].lastSeen.map({ r.timestamp > $0 }) ?? true { states[i].lastSeen = r.timestamp }
                if let level = states[i].level {
                    resolveStale(i, level, now: now, into: &out)
                }
            }
            schedule(i)
        }
    }

    /// A reading into a calendar window: one past the open window closes it (judged now);
    /// one from a window already judged comes too late and is counted.
    private func addToCalendar(_ i: Int, _ spec: ThresholdSpec, _ r: Reading, now: Timestamp, into out: inout [AlertTransition]) {
        let t = r.timestamp.micros
        if states[i].calendar!.isOpen, t >= states[i].calendar!.end { closeCalendar(i, spec, now: now, into: &out) }
        if t < states[i].calendar!.judgedUntil {
            stats.calendarLate += 1
            return
        }
        if !states[i].calendar!.isOpen { states[i].calendar!.open(at: r.timestamp, zone: rules[states[i].rule].zone) }
        if states[i].calendar!.holds(t) {
            states[i].calendar!.add(r.value, at: t)
        } else {
            stats.calendarLate += 1
        }
    }

    /// Feeds a reading from before a restart into the windows, without evaluating: the
    /// windows are rebuilt, the alert states come from the store. A calendar window that
    /// the replay passes is dropped unjudged (it was judged before the restart).
    public func replay(_ r: Reading) {
        for i in bindings(for: r.series) {
            if let u = r.unit { states[i].unit = u }
            switch states[i].kind {
            case .threshold:
                if states[i].calendar != nil {
                    let t = r.timestamp.micros
                    if states[i].calendar!.isOpen, t >= states[i].calendar!.end { states[i].calendar!.discard() }
                    if !states[i].calendar!.isOpen { states[i].calendar!.open(at: r.timestamp, zone: rules[states[i].rule].zone) }
                    if states[i].calendar!.holds(t) { states[i].calendar!.add(r.value, at: t) }
                } else {
                    for w in states[i].windows.indices { states[i].windows[w].add(r.value, at: r.timestamp) }
                }
            case .stale:
                if states[i].lastSeen.map({ r.timestamp > $0 }) ?? true { states[i].lastSeen = r.timestamp }
            }
            schedule(i)
        }
    }

    /// Tells the stale rules about a series seen before (and possibly silent since).
    public func knowSeries(_ series: SeriesKey, lastSeen: Timestamp) {
        for i in bindings(for: series) {
            if case .stale = states[i].kind, states[i].lastSeen.map({ lastSeen > $0 }) ?? true {
                states[i].lastSeen = lastSeen
                schedule(i)
            }
        }
    }

    /// The clock moved: deadlines, expiring and closing windows, thresholds that change,
    /// silent series. Only the states whose time has come are looked at, in the order of
    /// their times.
    public func tick(now: Timestamp, into out: inout [AlertTransition]) {
        let t = now.micros
        while let (due, i) = wakes.peek, due <= t {
            wakes.pop()
            guard states[i].nextWake == due else { continue }  // moved since it was queued
            states[i].nextWake = .max
            switch states[i].kind {
            case .threshold(let spec):
                if let c = states[i].calendar {
                    if c.isOpen && c.end <= t { closeCalendar(i, spec, now: now, into: &out) }
                } else {
                    for w in states[i].windows.indices { states[i].windows[w].expire(now: now) }
                    evaluate(i, spec, now: now, into: &out)
                }
            case .stale(let after, let level):
                if states[i].level == nil, let seen = states[i].lastSeen, t - seen.micros >= after.micros {
                    raiseStale(i, after: after, level: level, silent: t - seen.micros, now: now, into: &out)
                }
            }
            schedule(i)
            // What falls due now was handled now: never again in this tick.
            if states[i].nextWake <= t {
                states[i].nextWake = t + 1
                wakes.push(t + 1, i)
            }
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
