/// What the buffer keeps of the engine: the states that changed, restored at start, and the windows rebuilt from its readings.
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

    /// Feeds a reading from before a restart into the windows, without evaluating: the
    /// windows are rebuilt, the alert states come from the store. A calendar window that
    /// the replay passes is dropped unjudged (it was judged before the restart).
    public func replay(_ r: Reading) {
        for i in bindings(for: r.series) {
            if let u = r.unit { states[i].unit = u }
            let p = plans[Int(states[i].plan)]
            if p.isStale {
                if states[i].lastSeen.map({ r.timestamp > $0 }) ?? true { states[i].lastSeen = r.timestamp }
            } else if p.calendar {
                let c = Int(states[i].calendar)
                let t = r.timestamp.micros
                if calendars[c].isOpen, t >= calendars[c].end { calendars[c].discard() }
                if !calendars[c].isOpen { calendars[c].open(at: r.timestamp, zone: p.zone) }
                if calendars[c].holds(t) { calendars[c].add(r.value, at: t) }
            } else {
                states[i].window.addUnshared(r.value, at: r.timestamp)
                let e = Int(states[i].extra)
                if e >= 0 { for w in extras[e].windows.indices { extras[e].windows[w].addUnshared(r.value, at: r.timestamp) } }
            }
            schedule(i)
        }
    }

    /// Tells the stale rules about a series seen before (and possibly silent since).
    public func knowSeries(_ series: SeriesKey, lastSeen: Timestamp) {
        for i in bindings(for: series) {
            if plans[Int(states[i].plan)].isStale, states[i].lastSeen.map({ lastSeen > $0 }) ?? true {
                states[i].lastSeen = lastSeen
                schedule(i)
            }
        }
    }

    /// The transition that closes an alert whose rule is gone.
    public static func orphanResolved(_ r: AlertStateRecord, now: Timestamp, reason: String) -> AlertTransition? {
        guard let level = r.level else { return nil }
        return AlertTransition(
            rule: r.rule, series: r.series, state: .resolved, level: level, previousLevel: level, value: r.lastValue,
            threshold: r.threshold, at: now, since: r.since ?? now, message: "\(r.rule) on \(r.series.path): \(reason)")
    }
}
