/// How a threshold rule judges its values, and the transitions it gives.
extension RuleEngine {
    /// The levels in force for a state at UTC micros `t`: the rule's own without a schedule;
    /// with one, looked up in the rule's zone and kept until they next change (none: the
    /// rule is off then).
    @inline(__always)
    func levels(_ i: Int, _ p: PlanScalars, at t: Int64) -> LevelSet {
        guard p.scheduled else { return p.levels }
        let c = Int(states[i].inForce)
        if t >= inForce[c].from && t < inForce[c].until { return inForce[c].thresholds }
        return lookUpLevels(i, at: t)
    }

    /// The schedule's thresholds at `t`, looked up and kept in the state's `InForce`.
    func lookUpLevels(_ i: Int, at t: Int64) -> LevelSet {
        let plan = plans[Int(states[i].plan)]
        let zone = plan.zone
        let seconds = LocalTimeZone.floorDiv(t, 1_000_000)
        let f = plan.spec.schedule!.inForce(atLocal: seconds + Int64(zone.offset(atSeconds: seconds)))
        var until = f.until == .max ? Int64.max : zone.utcSeconds(forLocal: f.until) * 1_000_000
        if let change = zone.nextTransition(afterSeconds: seconds) { until = Swift.min(until, change * 1_000_000) }
        let levels = LevelSet(f.thresholds)
        inForce[Int(states[i].inForce)] = InForce(thresholds: levels, period: f.period, from: t, until: Swift.max(until, t + 1))
        return levels
    }

    /// One evaluation of a sliding-window rule, at `now`.
    func evaluate(_ i: Int, _ p: PlanScalars, now: Timestamp, into out: inout [AlertTransition]) {
        let levels = levels(i, p, at: now.micros)
        let primary = states[i].window.value(p.stat)
        var values = SIMD4<Double>(repeating: primary ?? .nan)
        let e = Int(states[i].extra)
        if e >= 0 {
            for k in 0..<4 {
                let w = Int(p.levelWindow[k])
                if w > 0 { values[k] = extras[e].windows[w - 1].value(p.stat) ?? .nan }
            }
        }
        judge(&states[i], p, levels, values, primary: primary, now: now, hold: p.hold, clear: p.clear, into: &out)
    }

    /// A calendar window closes: its value is judged against the thresholds in force at its
    /// start (the night's limit for the hour from 22:00, the 2030 limit for 2030-12-31), at
    /// once (no `for` or `clear_for`). Without enough data it gives no value, and the
    /// alert stays as the last window left it.
    func closeCalendar(_ i: Int, _ p: PlanScalars, now: Timestamp, into out: inout [AlertTransition]) {
        let j = calendars[Int(states[i].calendar)].close()
        stats.calendarWindows += 1
        guard j.enoughData else {
            stats.calendarWindowsShort += 1
            return
        }
        let levels = levels(i, p, at: j.start.micros)
        let plan = plans[Int(states[i].plan)]
        let label = Self.label(start: j.start, end: j.end, length: plan.spec.window, zone: plan.zone)
        if states[i].label < 0 {
            labels.append(label)
            states[i].label = Int32(labels.count - 1)
        } else {
            labels[Int(states[i].label)] = label
        }
        judge(&states[i], p, levels, SIMD4(repeating: j.value ?? .nan), primary: j.value, now: now, hold: 0, clear: 0, into: &out)
    }

    /// `2031-01-01` for a day, `2031-01-01 22:00-23:00` for shorter windows.
    static func label(start: Timestamp, end: Timestamp, length: TimeSpan, zone: LocalTimeZone) -> String {
        let a = zone.describe(start)
        if length == .days(1) { return String(a.prefix(10)) }
        let b = zone.describe(end)
        return String(a.prefix(16)) + "-" + String(b.dropFirst(11).prefix(5))
    }

    /// Judges values against thresholds.
    ///
    /// Up: a level above the active one is reached once its raise condition has held for
    /// `hold` (the most severe such level wins). Down: a level stays while its condition,
    /// loosened by the hysteresis, has been gone for less than `clear`; the alert moves to
    /// the most severe level that stays, or resolves when none does. A level the thresholds
    /// in force do not have (another period's) is left at once. Each level reads its own
    /// window's value (`values`, NaN: none).
    func judge(
        _ s: inout State, _ p: PlanScalars, _ levels: LevelSet, _ values: SIMD4<Double>, primary: Double?,
        now: Timestamp, hold: Int64, clear: Int64, into out: inout [AlertTransition]
    ) {
        guard let primary else {
            // No value (an empty window): no raise condition holds, so nothing is pending.
            if s.pending != .none {
                s.pending = .none
                s.dirty = true
            }
            return
        }
        let before = (s.level, s.pending, s.absent)
        let t = now.micros
        for k in 0..<4 where levels.has(k) {
            let threshold = levels.values[k]
            let v = values[k]
            if v.isNaN {
                s.pending[k] = .min
                continue
            }
            if p.op.crosses(v, threshold) {
                if s.pending[k] == .min { s.pending[k] = t }
            } else {
                s.pending[k] = .min
            }
            if p.op.holds(v, threshold, hysteresis: p.hysteresis) {
                s.absent[k] = .min
            } else if s.absent[k] == .min {
                s.absent[k] = t
            }
        }
        if levels.mask != LevelSet.all {
            for k in 0..<4 where !levels.has(k) { s.pending[k] = .min }
        }
        func value(_ l: AlertLevel) -> Double {
            let v = values[l.rawValue - 1]
            return v.isNaN ? primary : v
        }
        let current = s.level
        let raw = current?.rawValue ?? 0  // 0: none, below every level
        var up: AlertLevel?
        for k in 0..<4 where levels.has(k) && k + 1 > raw {
            let p = s.pending[k]
            if p != .min && t - p >= hold { up = AlertLevel(rawValue: k + 1) }
        }
        if let up {
            let threshold = levels.threshold(up)
            if current == nil { s.since = now }
            s.level = up
            s.threshold = threshold
            out.append(
                transition(
                    s, current == nil ? .raised : .escalated, level: up, previous: current, value: value(up), threshold: threshold,
                    now: now))
        } else if let c = current {
            var stays: AlertLevel?
            for k in 0..<4 where levels.has(k) && k + 1 <= c.rawValue {
                let a = s.absent[k]
                if a == .min || t - a < clear { stays = AlertLevel(rawValue: k + 1) }
            }
            if stays != c {
                if let nl = stays {
                    s.level = nl
                    s.threshold = levels.threshold(nl)
                    out.append(transition(s, .deescalated, level: nl, previous: c, value: value(nl), threshold: s.threshold, now: now))
                } else {
                    out.append(transition(s, .resolved, level: c, previous: c, value: value(c), threshold: s.threshold, now: now))
                    s.level = nil
                    s.since = nil
                    s.threshold = nil
                }
            }
        }
        s.lastValue = s.level.map(value) ?? primary
        if s.level == nil { s.absent = .none }
        if before.0 != s.level || before.1 != s.pending || (s.level != nil && before.2 != s.absent) {
            s.dirty = true
        }
    }

    // MARK: Stale rules

    func raiseStale(
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

    func resolveStale(_ i: Int, _ level: AlertLevel, now: Timestamp, into out: inout [AlertTransition]) {
        var s = states[i]
        out.append(transition(s, .resolved, level: level, previous: level, value: 0, threshold: s.threshold, now: now))
        s.level = nil
        s.since = nil
        s.dirty = true
        states[i] = s
    }

    // MARK: Transitions

    func transition(
        _ s: State, _ state: AlertTransition.State, level: AlertLevel, previous: AlertLevel?, value: Double?,
        threshold: Double?, now: Timestamp
    ) -> AlertTransition {
        let rule = rules[s.rule]
        let template =
            state == .resolved
            ? rule.resolvedMessage ?? Self.defaultResolvedMessage(rule, unit: s.unit) : rule.message ?? Self.defaultMessage(rule)
        var nominal: Double?
        var window: String?
        var period: String?
        let p = plans[Int(s.plan)]
        if !p.isStale {
            nominal = p.spec.nominal
            window = p.calendar ? (s.label >= 0 ? labels[Int(s.label)] : nil) : p.spec.window(of: level).description
            if s.inForce >= 0 { period = inForce[Int(s.inForce)].period }
        }
        let message = Rule.render(
            template, series: s.series, rule: rule.id, value: value, unit: s.unit, level: level, threshold: threshold,
            nominal: nominal, period: period, window: window)
        return AlertTransition(
            rule: rule.id, series: s.series, state: state, level: level, previousLevel: previous, value: value,
            threshold: threshold, at: now, since: s.since ?? now, message: message)
    }

    static func defaultMessage(_ rule: Rule) -> String {
        switch rule.kind {
        case .threshold(let spec):
            let stat = spec.stat == .last ? "" : "\(spec.stat.rawValue) "
            let window = spec.align == .calendar ? " ({window})" : ""
            return "{series} \(stat){value}{unit} \(spec.op.rawValue) {level} threshold {threshold}\(window)"
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
            let window = spec.align == .calendar ? " ({window})" : ""
            return "{series} resolved: \(stat){value}\(u) back within the {level} threshold {threshold}\(u)\(window)"
        case .stale:
            return "{series} resolved: reporting again"
        }
    }
}
