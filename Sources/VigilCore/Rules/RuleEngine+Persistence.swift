/// What the buffer keeps of the engine: the states that changed, restored at start.
extension RuleEngine {
    /// The states changed since the last call; idle ones are to be deleted from the store.
    public func takeDirty() -> [AlertStateRecord] {
        var out: [AlertStateRecord] = []
        for i in states.indices where states[i].dirty {
            states[i].dirty = false
            out.append(record(i))
        }
        return out
    }

    func record(_ i: Int) -> AlertStateRecord {
        let s = states[i]
        var pending: [AlertLevel: Timestamp] = [:]
        var absent: [AlertLevel: Timestamp] = [:]
        for l in AlertLevel.allCases {
            let k = l.rawValue - 1
            if s.pending[k] != .min { pending[l] = Timestamp(micros: s.pending[k]) }
            if s.absent[k] != .min { absent[l] = Timestamp(micros: s.absent[k]) }
        }
        return AlertStateRecord(
            rule: rules[s.rule].id, series: s.series, level: s.level, since: s.since, pending: pending, absent: absent,
            lastValue: s.lastValue, threshold: s.threshold)
    }

    /// Every state that is raised or pending.
    public var activeStates: [AlertStateRecord] {
        states.indices.filter { !states[$0].isIdle }.map(record)
    }

    /// Restores stored states. A record of a rule that no longer exists, or that no longer
    /// watches the series, is returned: its alert should be resolved.
    @discardableResult
    public func restore(_ records: [AlertStateRecord]) -> [AlertStateRecord] {
        var orphans: [AlertStateRecord] = []
        for r in records {
            _ = bindings(for: r.series)
            guard let i = byKey[Self.key(r.rule, r.series)] else {
                orphans.append(r)
                continue
            }
            states[i].level = r.level
            states[i].since = r.since
            for (l, t) in r.pending { states[i].pending[l.rawValue - 1] = t.micros }
            for (l, t) in r.absent { states[i].absent[l.rawValue - 1] = t.micros }
            states[i].lastValue = r.lastValue
            states[i].threshold = r.threshold
            let p = plans[Int(states[i].plan)]
            if !p.isStale, !p.calendar {
                // A window of 0 holds the last reading, which no replay brings back: the stored
                // value stands in for it. (Whatever crosses or holds a level is in the record.)
                if p.spec.window.micros == 0, let v = r.lastValue, states[i].window.isEmpty {
                    states[i].window.add(v, at: Timestamp(micros: 0))
                }
            }
            schedule(i)
        }
        return orphans
    }

    /// The transition that closes an alert whose rule is gone.
    public static func orphanResolved(_ r: AlertStateRecord, now: Timestamp, reason: String) -> AlertTransition? {
        guard let level = r.level else { return nil }
        return AlertTransition(
            rule: r.rule, series: r.series, state: .resolved, level: level, previousLevel: level, value: r.lastValue,
            threshold: r.threshold, at: now, since: r.since ?? now, message: "\(r.rule) on \(r.series.path): \(reason)")
    }
}
