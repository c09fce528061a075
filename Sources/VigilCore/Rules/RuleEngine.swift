public final class RuleEngine {
    public let rules: [Rule]

    struct State {
        let rule: Int
        let series: SeriesKey
        let kind: Rule.Kind
        var window: SlidingWindow?
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
        /// When the state next needs a look without a reading: a window slot expiring, a
        /// `for` or `clear_for` deadline, a stale deadline. .max: never.
        var nextWake: Int64 = .max

        var isIdle: Bool { level == nil && pending == SIMD4(repeating: .min) }
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

    /// Works out when state `i` next needs a look and queues it.
    func schedule(_ i: Int) {
        let s = states[i]
        var next = Int64.max
        switch s.kind {
        case .threshold(let spec):
            if let e = s.window?.nextExpiry { next = e }
            for (lvl, _) in spec.thresholds.levels {
                let k = lvl.rawValue - 1
                if s.pending[k] != .min && (s.level.map { lvl > $0 } ?? true) {
                    next = Swift.min(next, s.pending[k] + spec.holdFor.micros)
                }
                if s.absent[k] != .min, let current = s.level, lvl <= current {
                    next = Swift.min(next, s.absent[k] + spec.clearFor.micros)
                }
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

    /// The longest window of any rule: how far back to replay the buffer at start.
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
            if case .threshold(let spec) = kind { st.window = SlidingWindow(window: spec.window) }
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
                states[i].window!.add(r.value, at: r.timestamp)
                states[i].window!.expire(now: max(now, r.timestamp))
                evaluate(i, spec, now: now, into: &out)
            case .stale:
                if states[i].lastSeen.map({ r.timestamp > $0 }) ?? true { states[i].lastSeen = r.timestamp }
                if let level = states[i].level {
                    resolveStale(i, level, now: now, into: &out)
                }
            }
            schedule(i)
        }
    }

    /// Feeds a reading from before a restart into the windows, without evaluating: the
    /// windows are rebuilt, the alert states come from the store.
    public func replay(_ r: Reading) {
        for i in bindings(for: r.series) {
            if let u = r.unit { states[i].unit = u }
            switch states[i].kind {
            case .threshold:
                states[i].window!.add(r.value, at: r.timestamp)
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

    /// The clock moved: deadlines, expiring windows, silent series. Only the states whose
    /// time has come are looked at, in the order of their times.
    public func tick(now: Timestamp, into out: inout [AlertTransition]) {
        let t = now.micros
        while let (due, i) = wakes.peek, due <= t {
            wakes.pop()
            guard states[i].nextWake == due else { continue }  // moved since it was queued
            states[i].nextWake = .max
            switch states[i].kind {
            case .threshold(let spec):
                states[i].window!.expire(now: now)
                evaluate(i, spec, now: now, into: &out)
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

    // MARK: Threshold rules

    /// One evaluation of a threshold rule.
    ///
    /// Up: a level above the active one is reached once its raise condition has held for
    /// `for` (the most severe such level wins). Down: a level stays while its condition,
    /// loosened by the hysteresis, has been gone for less than `clear_for`; the alert moves
    /// to the most severe level that stays, or resolves when none does.
    private func evaluate(_ i: Int, _ spec: ThresholdSpec, now: Timestamp, into out: inout [AlertTransition]) {
        evaluate(&states[i], spec, now: now, into: &out)
    }

    private func evaluate(_ s: inout State, _ spec: ThresholdSpec, now: Timestamp, into out: inout [AlertTransition]) {
        guard let v = s.window!.value(spec.stat) else {
            // No value (an empty window): no raise condition holds, so nothing is pending.
            if s.pending != SIMD4(repeating: .min) {
                s.pending = SIMD4(repeating: .min)
                s.dirty = true
            }
            return
        }
        let before = (s.level, s.pending, s.absent)
        s.lastValue = v
        let levels = spec.thresholds.levels
        let t = now.micros
        for (lvl, thr) in levels {
            let k = lvl.rawValue - 1
            if spec.op.crosses(v, thr) {
                if s.pending[k] == .min { s.pending[k] = t }
            } else {
                s.pending[k] = .min
            }
            if spec.op.holds(v, thr, hysteresis: spec.hysteresis) {
                s.absent[k] = .min
            } else if s.absent[k] == .min {
                s.absent[k] = t
            }
        }
        let current = s.level
        var up: AlertLevel?
        for (lvl, _) in levels where current.map({ lvl > $0 }) ?? true {
            let p = s.pending[lvl.rawValue - 1]
            if p != .min && t - p >= spec.holdFor.micros { up = lvl }
        }
        if let up {
            let threshold = spec.thresholds.threshold(up)
            if current == nil { s.since = now }
            s.level = up
            s.threshold = threshold
            out.append(
                transition(s, current == nil ? .raised : .escalated, level: up, previous: current, value: v, threshold: threshold, now: now))
        } else if let c = current {
            var stays: AlertLevel?
            for (lvl, _) in levels where lvl <= c {
                let a = s.absent[lvl.rawValue - 1]
                if a == .min || t - a < spec.clearFor.micros { stays = lvl }
            }
            if stays != c {
                if let nl = stays {
                    s.level = nl
                    s.threshold = spec.thresholds.threshold(nl)
                    out.append(transition(s, .deescalated, level: nl, previous: c, value: v, threshold: s.threshold, now: now))
                } else {
                    out.append(
                        transition(s, .resolved, level: c, previous: c, value: v, threshold: spec.thresholds.threshold(c), now: now))
                    s.level = nil
                    s.since = nil
                    s.threshold = nil
                }
            }
        }
        if s.level == nil { s.absent = SIMD4(repeating: .min) }
        if before.0 != s.level || before.1 != s.pending || (s.level != nil && before.2 != s.absent) {
            s.dirty = true
        }
    }

    // MARK: Stale rules

    private func raiseStale(
        _ i: Int, after: TimeSpan, level: AlertLevel, silent: Int64, now: Timestamp, into out: inout [AlertTransition]
    ) {
        var s = states[i]
        s.level = level
        s.since = now
        s.lastValue = Double(silent) / 1e6
        s.threshold = after.seconds
        s.dirty = true
        out.append(transition(s, .raised, level: level, previous: nil, value: s.lastValue, threshold: s.threshold, now: now))
        states[i] = s
    }

    private func resolveStale(_ i: Int, _ level: AlertLevel, now: Timestamp, into out: inout [AlertTransition]) {
        var s = states[i]
        out.append(transition(s, .resolved, level: level, previous: level, value: 0, threshold: s.threshold, now: now))
        s.level = nil
        s.since = nil
        s.dirty = true
        states[i] = s
    }

    private func transition(
        _ s: State, _ state: AlertTransition.State, level: AlertLevel, previous: AlertLevel?, value: Double?,
        threshold: Double?, now: Timestamp
    ) -> AlertTransition {
        let rule = rules[s.rule]
        let template =
            state == .resolved
            ? rule.resolvedMessage ?? Self.defaultResolvedMessage(rule, unit: s.unit) : rule.message ?? Self.defaultMessage(rule)
        let message = Rule.render(
            template, series: s.series, rule: rule.id, value: value, unit: s.unit, level: level, threshold: threshold)
        return AlertTransition(
            rule: rule.id, series: s.series, state: state, level: level, previousLevel: previous, value: value,
            threshold: threshold, at: now, since: s.since ?? now, message: message)
    }

    static func defaultMessage(_ rule: Rule) -> String {
        switch rule.kind {
        case .threshold(let spec):
            let stat = spec.stat == .last ? "" : "\(spec.stat.rawValue) "
            return "{series} \(stat){value}{unit} \(spec.op.rawValue) {level} threshold {threshold}"
        case .stale:
            return "{series} silent for {value} s (limit {threshold} s)"
        }
    }

    /// A resolved transition's message when the rule gives none: op-neutral, since the
    /// value that ends an alert is on the other side of the line the message names.
    static func defaultResolvedMessage(_ rule: Rule, unit: String?) -> String {
        switch rule.kind {
        case .threshold(let spec):
            let stat = spec.stat == .last ? "" : "\(spec.stat.rawValue) "
            let u = unit.map { " \($0)" } ?? ""
            return "{series} resolved: \(stat){value}\(u) back within the {level} threshold {threshold}\(u)"
        case .stale:
            return "{series} resolved: reporting again"
        }
    }
}
