/// The four-tier early-warning scale: blue < yellow < orange < red (level IV to I).
public enum AlertLevel: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case blue = 1, yellow, orange, red

    public static func < (a: AlertLevel, b: AlertLevel) -> Bool { a.rawValue < b.rawValue }

    public var name: String {
        switch self {
        case .blue: return "blue"
        case .yellow: return "yellow"
        case .orange: return "orange"
        case .red: return "red"
        }
    }

    public var description: String { name }

    public init?(name: String) {
        guard let l = AlertLevel.allCases.first(where: { $0.name == name }) else { return nil }
        self = l
    }
}

/// The statistic a rule compares with its thresholds, over its window.
public enum RuleStat: String, Sendable, CaseIterable {
    case last, mean, min, max, sum, count
    /// Change per hour between the first and last reading in the window.
    case rate
    /// Counter growth in the window; a drop is a counter reset, counted from zero.
    case increase
    /// The equivalent continuous sound level of levels in dB: 10 log10(mean(10^(L/10))),
    /// so 60 and 80 dB(A) give 77.
    case leq

    public var needsWindow: Bool { self == .rate || self == .increase || self == .leq }
}

/// How a rule's window runs.
public enum WindowAlign: String, Sendable, CaseIterable {
    /// The last `window` before now, judged on every reading and tick.
    case sliding
    /// Local calendar windows (the day from local midnight, the hour), judged when they close.
    case calendar
}

/// How much data a calendar window needs to give a value (GB 3095: 20 hours a day, each
/// with 45 minutes of data).
public struct Coverage: Sendable, Equatable {
    /// Windows longer than an hour: how many of its hours must count; an hour or shorter:
    /// how many of its minutes must hold a reading.
    public var minimum: TimeSpan
    /// Windows longer than an hour: how many minutes of an hour must hold a reading for the
    /// hour to count (nil: one reading is enough).
    public var perHour: TimeSpan?

    public init(minimum: TimeSpan, perHour: TimeSpan? = nil) {
        self.minimum = minimum
        self.perHour = perHour
    }
}

/// A comparison.
public enum RuleOp: String, Sendable, CaseIterable {
    case gt = ">"
    case ge = ">="
    case lt = "<"
    case le = "<="

    /// Higher thresholds are more extreme for `>` and `>=`.
    public var upward: Bool { self == .gt || self == .ge }

    /// Whether `value` is past `threshold`: the condition that raises.
    @inline(__always)
    public func crosses(_ value: Double, _ threshold: Double) -> Bool {
        switch self {
        case .gt: return value > threshold
        case .ge: return value >= threshold
        case .lt: return value < threshold
        case .le: return value <= threshold
        }
    }

    /// Whether an alert at `threshold` still holds: it clears only once the value is back
    /// past the threshold by `hysteresis`.
    @inline(__always)
    public func holds(_ value: Double, _ threshold: Double, hysteresis: Double) -> Bool {
        switch self {
        case .gt: return value > threshold - hysteresis
        case .ge: return value >= threshold - hysteresis
        case .lt: return value < threshold + hysteresis
        case .le: return value <= threshold + hysteresis
        }
    }
}

/// Thresholds by level, in the order of severity.
public struct Thresholds: Sendable, Equatable {
    /// (level, threshold), least severe first.
    public var levels: [(AlertLevel, Double)]

    public init(_ dict: [AlertLevel: Double]) {
        levels = dict.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    public var isEmpty: Bool { levels.isEmpty }

    public static func == (a: Thresholds, b: Thresholds) -> Bool {
        a.levels.count == b.levels.count && zip(a.levels, b.levels).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    public func threshold(_ level: AlertLevel) -> Double? { levels.first { $0.0 == level }?.1 }

    /// Why these thresholds do not grow more extreme in the direction of `op`, if they do
    /// not. Only levels of the same window are compared (50 mm in 3 h is more than 50 mm in 12 h).
    public func orderProblem(_ op: RuleOp, windows: [AlertLevel: TimeSpan] = [:]) -> String? {
        for i in levels.indices.dropFirst() {
            let (l, v) = levels[i]
            guard let (pl, pv) = levels[..<i].last(where: { windows[$0.0] == windows[l] }) else { continue }
            if op.upward ? !(v > pv) : !(v < pv) {
                return "\(l) (\(v)) must be \(op.upward ? "above" : "below") \(pl) (\(pv)) for op \(op.rawValue)"
            }
        }
        return nil
    }
}

/// What a threshold rule computes and when it acts.
public struct ThresholdSpec: Sendable, Equatable {
    public var stat: RuleStat
    public var window: TimeSpan
    public var op: RuleOp
    /// The levels when there is no schedule (a rule's `levels:`).
    public var thresholds: Thresholds
    public var hysteresis: Double
    /// How long a level's condition must hold before raising or escalating to it.
    public var holdFor: TimeSpan
    /// How long the condition must be gone before de-escalating or resolving.
    public var clearFor: TimeSpan
    /// Thresholds by local hours and dates (`periods`, `effective`); nil: `thresholds` always.
    public var schedule: ThresholdSchedule?
    /// Levels with a window of their own (sliding windows only); the others use `window`.
    public var levelWindows: [AlertLevel: TimeSpan]
    public var align: WindowAlign
    /// Calendar windows: the data they need to give a value.
    public var coverage: Coverage?
    /// The series' nominal value or baseline that relative thresholds were counted from.
    public var nominal: Double?

    public init(
        stat: RuleStat, window: TimeSpan, op: RuleOp, thresholds: Thresholds, hysteresis: Double = 0,
        holdFor: TimeSpan = .zero, clearFor: TimeSpan = .zero, schedule: ThresholdSchedule? = nil,
        levelWindows: [AlertLevel: TimeSpan] = [:], align: WindowAlign = .sliding, coverage: Coverage? = nil,
        nominal: Double? = nil
    ) {
        self.stat = stat
        self.window = window
        self.op = op
        self.thresholds = thresholds
        self.hysteresis = hysteresis
        self.holdFor = holdFor
        self.clearFor = clearFor
        self.schedule = schedule
        self.levelWindows = levelWindows
        self.align = align
        self.coverage = coverage
        self.nominal = nominal
    }

    /// The window of a level.
    public func window(of level: AlertLevel) -> TimeSpan { levelWindows[level] ?? window }

    /// The thresholds in force at a time, in a zone.
    public func inForce(at t: Timestamp, zone: LocalTimeZone) -> ThresholdSchedule.InForce {
        guard let schedule else { return ThresholdSchedule.InForce(thresholds: thresholds, period: nil, phaseFrom: nil, until: .max) }
        return schedule.inForce(atLocal: zone.localSeconds(t))
    }

    /// How far back the windows reach: a calendar window may have begun up to its length
    /// (and an hour, on a day of 25 hours) ago.
    public var reach: TimeSpan {
        let longest = max(window, levelWindows.values.max() ?? .zero)
        return align == .calendar ? TimeSpan(micros: longest.micros + 3_600_000_000) : longest
    }
}

/// A rule's per-series variant: any field left nil keeps the rule's. Thresholds (levels,
/// periods, effective dates) are replaced together: an override that gives any of them
/// gives the series' whole schedule.
public struct RuleOverride: Sendable, Equatable {
    public var match: TopicFilter
    public var thresholds: Thresholds?
    public var schedule: ThresholdSchedule?
    public var nominal: Double?
    public var hysteresis: Double?
    public var holdFor: TimeSpan?
    public var clearFor: TimeSpan?
    public var stale: TimeSpan?
    public var level: AlertLevel?

    public init(match: TopicFilter) { self.match = match }
}

/// An early-warning rule (SPEC section 4).
public struct Rule: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case threshold(ThresholdSpec)
        /// No reading for this long raises at this level; the next reading resolves.
        case stale(TimeSpan, AlertLevel)
    }

    public var id: String
    public var description: String
    public var match: TopicFilter
    public var kind: Kind
    public var message: String?
    /// The message of a resolved transition (the raise wording would read wrong there).
    public var resolvedMessage: String?
    /// Overrides in file order; the first that matches a series applies.
    public var overrides: [RuleOverride]
    /// Where the rule was written, for `vigil check --series`.
    public var file: String
    public var line: Int
    /// The local time its periods, calendar windows and effective dates are read in (the
    /// config's `timezone`).
    public var zone: LocalTimeZone

    public init(
        id: String, description: String = "", match: TopicFilter, kind: Kind, message: String? = nil,
        resolvedMessage: String? = nil, overrides: [RuleOverride] = [], file: String = "", line: Int = 0,
        zone: LocalTimeZone = .shanghai
    ) {
        self.zone = zone
        self.id = id
        self.description = description
        self.match = match
        self.kind = kind
        self.message = message
        self.resolvedMessage = resolvedMessage
        self.overrides = overrides
        self.file = file
        self.line = line
    }

    /// The rule as it applies to one series, overrides folded in.
    public func resolved(for series: SeriesKey) -> Kind {
        guard let o = overrides.first(where: { $0.match.matches(levels: series.levels) }) else { return kind }
        switch kind {
        case .threshold(var spec):
            if o.thresholds != nil || o.schedule != nil {
                spec.thresholds = o.thresholds ?? Thresholds([:])
                spec.schedule = o.schedule
            }
            if let n = o.nominal { spec.nominal = n }
            if let h = o.hysteresis { spec.hysteresis = h }
            if let f = o.holdFor { spec.holdFor = f }
            if let c = o.clearFor { spec.clearFor = c }
            return .threshold(spec)
        case .stale(let after, let level):
            return .stale(o.stale ?? after, o.level ?? level)
        }
    }

    /// The override that applies to a series, if any.
    public func override(for series: SeriesKey) -> RuleOverride? {
        overrides.first { $0.match.matches(levels: series.levels) }
    }

    /// How far back its windows reach (for rebuilding them at start).
    public var window: TimeSpan {
        if case .threshold(let s) = kind { return s.reach }
        return .zero
    }

    /// Placeholders a message may use.
    public static let placeholders: Set<String> = [
        "site", "device", "metric", "network", "series", "rule", "value", "unit", "level", "threshold", "nominal",
        "period", "window",
    ]

    /// The message for a transition, `{placeholder}`s filled in. `period` is the name of the
    /// period in force, `window` the calendar window judged (or the sliding window's length).
    public static func render(
        _ template: String, series: SeriesKey, rule: String, value: Double?, unit: String?, level: AlertLevel?,
        threshold: Double?, nominal: Double? = nil, period: String? = nil, window: String? = nil
    ) -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else {
                out += rest[open...]
                return out
            }
            let name = rest[rest.index(after: open)..<close]
            switch name {
            case "site": out += series.site
            case "device": out += series.device
            case "metric": out += series.metric
            case "network": out += series.network
            case "series": out += series.path
            case "rule": out += rule
            case "value": out += value.map(formatNumber) ?? ""
            case "unit": out += unit ?? ""
            case "level": out += level?.name ?? "none"
            case "threshold": out += threshold.map(formatNumber) ?? ""
            case "nominal": out += nominal.map(formatNumber) ?? ""
            case "period": out += period ?? ""
            case "window": out += window ?? ""
            default: out += rest[open...close]
            }
            rest = rest[rest.index(after: close)...]
        }
        out += rest
        return out
    }

    /// A number for people: at most four decimals, no trailing zeros.
    public static func formatNumber(_ v: Double) -> String {
        guard v.isFinite else { return "\(v)" }
        let r = (v * 10_000).rounded() / 10_000
        if r == r.rounded(), abs(r) < 1e15 { return String(Int64(r)) }
        return "\(r)"
    }
}

/// A change of an alert: raised, escalated, deescalated or resolved.
public struct AlertTransition: Sendable, Equatable, CustomStringConvertible {
    public enum State: String, Sendable, CaseIterable {
        case raised, escalated, deescalated, resolved
    }

    public var rule: String
    public var series: SeriesKey
    public var state: State
    /// The level after the change (the level that was resolved, for `resolved`).
    public var level: AlertLevel
    public var previousLevel: AlertLevel?
    public var value: Double?
    public var threshold: Double?
    public var at: Timestamp
    /// When the alert was first raised.
    public var since: Timestamp
    public var message: String

    public init(
        rule: String, series: SeriesKey, state: State, level: AlertLevel, previousLevel: AlertLevel?, value: Double?,
        threshold: Double?, at: Timestamp, since: Timestamp, message: String
    ) {
        self.rule = rule
        self.series = series
        self.state = state
        self.level = level
        self.previousLevel = previousLevel
        self.value = value
        self.threshold = threshold
        self.at = at
        self.since = since
        self.message = message
    }

    /// `rule:series`, one per alert.
    public var alertID: String { "\(rule):\(series.path)" }

    public var description: String {
        var s = "\(at.rfc3339) \(rule) \(series.path) \(state.rawValue) \(level)"
        if let p = previousLevel, state != .raised { s += " (from \(p))" }
        if let v = value { s += " value \(Rule.formatNumber(v))" }
        if let t = threshold { s += " threshold \(Rule.formatNumber(t))" }
        return s
    }
}
