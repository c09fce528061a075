import Foundation
import VigilCore
import Yams

/// The thresholds of a rule file as written: `levels` (absolute, or relative to a
/// `nominal`, each optionally with a window of its own), `periods` by local hours and
/// `effective` dates, and the window keys that go with them (`align`, `min_coverage`,
/// `min_hour_coverage`). Every mistake goes to the reader with its place.
extension RuleFiles {
    /// How a threshold is written.
    enum Relative: Equatable {
        /// `4.5`: as it stands (also a signed number in a rule without `nominal`).
        case none
        /// `+7%`, `-10%`: of the nominal value, which needs one.
        case percent
        /// `+0.2`, `-0.5` in a rule with `nominal`: away from it, in the series' unit.
        case offset
    }

    struct RawLevel {
        var level: AlertLevel
        var value: Double
        var relative: Relative
        var text: String
        var window: TimeSpan?
        var node: Node
    }

    struct RawThresholds {
        var levels: [RawLevel]
        var node: Node
    }

    struct RawPeriod {
        var name: String
        var from: Int
        var to: Int
        var thresholds: RawThresholds
        var node: Node
    }

    struct RawPhase {
        var from: LocalDate?
        var thresholds: RawThresholds?
        var periods: [RawPeriod]
    }

    /// A rule's (or an override's) whole threshold schedule as written.
    struct RawSchedule {
        var phases: [RawPhase]
        /// Whether it has periods or effective dates (else it is `levels` alone).
        var scheduled: Bool
    }

    static let levelKeys = AlertLevel.allCases.map(\.name)

    /// `levels: { yellow: 4.5, red: +10%, blue: { value: 50, window: 12h } }`.
    static func rawThresholds(_ node: Node, _ what: String, reader r: inout YAMLReader) -> RawThresholds? {
        guard let lm = r.mapping(node, what, allowed: levelKeys) else { return nil }
        var out: [RawLevel] = []
        for level in AlertLevel.allCases {
            guard let pair = lm[level.name] else { continue }
            var valueNode = pair.value
            var window: TimeSpan?
            if case .mapping = pair.value {
                guard let vm = r.mapping(pair.value, "\(what).\(level.name)", allowed: ["value", "window"]) else { continue }
                guard let v = vm["value"] else {
                    r.error(pair.value, "\(what).\(level.name) needs value: the threshold (and window: its own window)")
                    continue
                }
                valueNode = v.value
                if let w = vm["window"], let d = r.duration(w.value, "\(what).\(level.name).window") {
                    if d.micros <= 0 { r.error(w.value, "\(what).\(level.name).window must be longer than 0") } else { window = d }
                }
            }
            guard let text = r.string(valueNode, "\(what).\(level.name)") else { continue }
            let t = text.trimmingCharacters(in: .whitespaces)
            var relative = Relative.none
            var number = Substring(t)
            if t.hasSuffix("%") {
                relative = .percent
                number = number.dropLast()
                guard t.hasPrefix("+") || t.hasPrefix("-") else {
                    r.error(valueNode, "\(what).\(level.name) '\(t)': write a percentage of the nominal value with its sign, +\(number)% or -\(number)%")
                    continue
                }
            } else if t.hasPrefix("+") || t.hasPrefix("-") {
                relative = .offset
            }
            guard let v = Double(number), v.isFinite else {
                r.error(valueNode, "\(what).\(level.name) must be a number (or +7% / -0.2 relative to nominal), not '\(t)'")
                continue
            }
            out.append(RawLevel(level: level, value: v, relative: relative, text: t, window: window, node: valueNode))
        }
        if out.isEmpty && lm.count == 0 {
            r.error(node, "\(what) needs at least one of blue, yellow, orange, red")
            return nil
        }
        return out.isEmpty ? nil : RawThresholds(levels: out, node: node)
    }

    /// `periods: { day: { hours: "06:00-22:00", levels: {...} }, night: {...} }`.
    static func rawPeriods(_ node: Node, _ what: String, reader r: inout YAMLReader) -> [RawPeriod]? {
        guard case .mapping(let map) = node, !map.isEmpty else {
            r.error(node, "\(what) is a mapping of names to { hours: \"06:00-22:00\", levels: {...} }")
            return nil
        }
        var out: [RawPeriod] = []
        for (k, v) in map {
            guard let name = r.name(k, "\(what): a period's name") else { continue }
            let w = "\(what).\(name)"
            guard let pm = r.mapping(v, w, allowed: ["hours", "levels"]) else { continue }
            guard let h = pm["hours"], let hoursText = r.string(h.value, "\(w).hours") else {
                if pm["hours"] == nil { r.error(v, "\(w) needs hours, such as \"06:00-22:00\" (local time)") }
                continue
            }
            guard let (from, to) = hours(hoursText) else {
                r.error(h.value, "\(w).hours must be HH:MM-HH:MM in local time, such as 06:00-22:00 or 22:00-06:00, not '\(hoursText)'")
                continue
            }
            guard let l = pm["levels"] else {
                r.error(v, "\(w) needs levels, such as { yellow: 55 }")
                continue
            }
            guard let t = rawThresholds(l.value, "\(w).levels", reader: &r) else { continue }
            out.append(RawPeriod(name: name, from: from, to: to, thresholds: t, node: k))
        }
        out.sort { $0.from < $1.from }
        for i in out.indices {
            for j in out.indices where j > i {
                let a = ThresholdSchedule.Period(name: out[i].name, from: out[i].from, to: out[i].to, thresholds: Thresholds([:]))
                let b = ThresholdSchedule.Period(name: out[j].name, from: out[j].from, to: out[j].to, thresholds: Thresholds([:]))
                if a.overlaps(b) {
                    r.error(out[j].node, "\(what): \(out[j].name) (\(b.hours)) overlaps \(out[i].name) (\(a.hours))")
                }
            }
        }
        return out
    }

    /// `06:00-22:00` as minutes after midnight; `24:00` ends a day.
    static func hours(_ text: String) -> (Int, Int)? {
        let parts = text.split(separator: "-").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 else { return nil }
        func minute(_ s: String) -> Int? {
            let hm = s.split(separator: ":")
            guard hm.count == 2, hm[0].count == 2, hm[1].count == 2, let h = Int(hm[0]), let m = Int(hm[1]), m < 60,
                h < 24 || (h == 24 && m == 0)
            else { return nil }
            return h * 60 + m
        }
        guard let a = minute(parts[0]), let b = minute(parts[1]), a < 1440 else { return nil }
        if a == b && !(a == 0 && b == 0) { return nil }
        return (a, b % 1440)
    }

    /// The schedule from `levels`, `periods` and `effective`.
    static func rawSchedule(
        levels: Node?, periods: Node?, effective: Node?, _ what: String, reader r: inout YAMLReader
    ) -> RawSchedule? {
        let errors = r.diagnostics.count
        var base = RawPhase(from: nil, thresholds: nil, periods: [])
        if let l = levels { base.thresholds = rawThresholds(l, "\(what): levels", reader: &r) }
        if let p = periods { base.periods = rawPeriods(p, "\(what): periods", reader: &r) ?? [] }
        var phases = [base]
        if let e = effective, let list = r.sequence(e, "\(what): effective") {
            for (i, item) in list.enumerated() {
                let w = "\(what): effective[\(i)]"
                guard let em = r.mapping(item, w, allowed: ["from", "levels", "periods"]) else { continue }
                guard let f = em["from"], let text = r.string(f.value, "\(w).from") else {
                    if em["from"] == nil { r.error(item, "\(w) needs from: the local date it applies from, such as 2031-01-01") }
                    continue
                }
                guard let date = LocalDate(parsing: text) else {
                    r.error(f.value, "\(w).from must be a date such as 2031-01-01, not '\(text)'")
                    continue
                }
                if let prev = phases.last?.from, date <= prev {
                    r.error(f.value, "\(w).from \(date) must come after \(prev): effective dates go in order")
                }
                var phase = RawPhase(from: date, thresholds: nil, periods: [])
                if let l = em["levels"] { phase.thresholds = rawThresholds(l.value, "\(w).levels", reader: &r) }
                if let p = em["periods"] { phase.periods = rawPeriods(p.value, "\(w).periods", reader: &r) ?? [] }
                if em["levels"] == nil && em["periods"] == nil {
                    r.error(item, "\(w) needs levels or periods: what applies from \(date) on")
                }
                phases.append(phase)
            }
        }
        guard r.diagnostics.count == errors else { return nil }
        return RawSchedule(phases: phases, scheduled: periods != nil || effective != nil)
    }

    /// Absolute thresholds: relative ones counted from `nominal`; each set checked against
    /// `op` (among the levels of one window), each level's window the same everywhere.
    static func materialize(
        _ raw: RawSchedule, nominal: Double?, op: RuleOp, inherited: [AlertLevel: TimeSpan] = [:], _ what: String,
        reader r: inout YAMLReader
    ) -> (thresholds: Thresholds, schedule: ThresholdSchedule?, windows: [AlertLevel: TimeSpan])? {
        let errors = r.diagnostics.count
        var windows = inherited
        var seen: [AlertLevel: RawLevel] = [:]
        for phase in raw.phases {
            for t in [phase.thresholds].compactMap({ $0 }) + phase.periods.map(\.thresholds) {
                for l in t.levels {
                    guard let w = l.window else { continue }
                    if let ow = seen[l.level]?.window ?? inherited[l.level], ow != w {
                        r.error(l.node, "\(what): level \(l.level) has window \(w) here but \(ow) elsewhere; a level keeps one window")
                    } else {
                        seen[l.level] = l
                        windows[l.level] = w
                    }
                }
            }
        }
        func absolute(_ t: RawThresholds) -> Thresholds {
            var dict: [AlertLevel: Double] = [:]
            for l in t.levels {
                switch (l.relative, nominal) {
                case (.none, _), (.offset, nil): dict[l.level] = l.value
                case (.offset, let n?): dict[l.level] = n + l.value
                case (.percent, let n?): dict[l.level] = n * (1 + l.value / 100)
                case (.percent, nil):
                    r.error(l.node, "\(what): \(l.level) '\(l.text)' is relative: give nominal: the series' nominal value or baseline")
                }
            }
            let th = Thresholds(dict)
            if let problem = th.orderProblem(op, windows: windows) {
                r.error(t.node, "\(what): levels must grow more extreme in the direction of op: \(problem)")
            }
            return th
        }
        var phases: [ThresholdSchedule.Phase] = []
        for phase in raw.phases {
            phases.append(
                ThresholdSchedule.Phase(
                    from: phase.from, thresholds: phase.thresholds.map(absolute),
                    periods: phase.periods.map { .init(name: $0.name, from: $0.from, to: $0.to, thresholds: absolute($0.thresholds)) }))
        }
        guard r.diagnostics.count == errors else { return nil }
        let base = phases[0].thresholds ?? Thresholds([:])
        return (base, raw.scheduled ? ThresholdSchedule(phases: phases) : nil, windows)
    }

    /// `align`, `min_coverage` and `min_hour_coverage`, checked against the window.
    static func windowKeys(
        _ m: [String: (key: Node, value: Node)], _ spec: inout ThresholdSpec, _ what: String, reader r: inout YAMLReader
    ) {
        if let a = m["align"], let al = r.choice(a.value, "\(what): align", WindowAlign.self) { spec.align = al }
        let day: Int64 = 86_400_000_000
        if spec.align == .calendar {
            let w = spec.window.micros
            if w < 60_000_000 || w > day || day % w != 0 {
                r.error(
                    m["window"]?.value ?? m["align"]!.value,
                    "\(what): a calendar window divides a local day (1m, 10m, 1h, 1d, ...); not \(spec.window)")
            }
            for key in ["for", "clear_for"] where m[key] != nil {
                r.error(m[key]!.key, "\(what): \(key) does not apply to a calendar window, which is judged once, when it closes")
            }
            if !spec.levelWindows.isEmpty {
                r.error(m["levels"]?.value ?? m["align"]!.value, "\(what): levels with windows of their own need align: sliding")
            }
        }
        guard let c = m["min_coverage"] else {
            if let h = m["min_hour_coverage"] { r.error(h.key, "\(what): min_hour_coverage goes with min_coverage") }
            return
        }
        guard spec.align == .calendar else {
            r.error(c.key, "\(what): min_coverage belongs to align: calendar windows (the local day, the hour)")
            return
        }
        guard let minimum = r.duration(c.value, "\(what): min_coverage") else { return }
        let byHour = spec.window.micros > 3_600_000_000
        let unit: Int64 = byHour ? 3_600_000_000 : 60_000_000
        if minimum.micros <= 0 || minimum.micros % unit != 0 || minimum > spec.window {
            r.error(
                c.value,
                byHour
                    ? "\(what): min_coverage of a \(spec.window) window counts its hours: a whole number of hours up to \(spec.window), not \(minimum)"
                    : "\(what): min_coverage of a \(spec.window) window counts its minutes: a whole number of minutes up to \(spec.window), not \(minimum)")
            return
        }
        var coverage = Coverage(minimum: minimum)
        if let h = m["min_hour_coverage"], let per = r.duration(h.value, "\(what): min_hour_coverage") {
            if !byHour {
                r.error(h.key, "\(what): min_hour_coverage is for windows longer than an hour; this one counts minutes already")
            } else if per.micros <= 0 || per.micros % 60_000_000 != 0 || per > .hours(1) {
                r.error(h.value, "\(what): min_hour_coverage is a whole number of minutes up to 1h, not \(per)")
            } else {
                coverage.perHour = per
            }
        }
        spec.coverage = coverage
    }
}
