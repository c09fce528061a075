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

/// The statistic a rule compares with its thresholds, over its sliding window.
public enum RuleStat: String, Sendable, CaseIterable {
    case last, mean, min, max, sum, count
    /// Change per hour between the first and last reading in the window.
    case rate
    /// Counter growth in the window; a drop is a counter reset, counted from zero.
    case increase

    public var needsWindow: Bool { self == .rate || self == .increase }
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

    public static func == (a: Thresholds, b: Thresholds) -> Bool {
        a.levels.count == b.levels.count && zip(a.levels, b.levels).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    public func threshold(_ level: AlertLevel) -> Double? { levels.first { $0.0 == level }?.1 }

    /// Why these thresholds do not grow more extreme in the direction of `op`, if they do not.
    public func orderProblem(_ op: RuleOp) -> String? {
        for i in levels.indices.dropFirst() {
            let (pl, pv) = levels[i - 1]
            let (l, v) = levels[i]
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
    public var thresholds: Thresholds
    public var hysteresis: Double
    /// How long a level's condition must hold before raising or escalating to it.
    public var holdFor: TimeSpan
    /// How long the condition must be gone before de-escalating or resolving.
    public var clearFor: TimeSpan

    public init(
        stat: RuleStat, window: TimeSpan, op: RuleOp, thresholds: Thresholds, hysteresis: Double = 0,
        holdFor: TimeSpan = .zero, clearFor: TimeSpan = .zero
    ) {
        self.stat = stat
        self.window = window
        self.op = op
        self.thresholds = thresholds
        self.hysteresis = hysteresis
        self.holdFor = holdFor
        self.clearFor = clearFor
    }
}

/// A rule's per-series variant: any field left nil keeps the rule's.
public struct RuleOverride: Sendable, Equatable {
    public var match: TopicFilter
    public var thresholds: Thresholds?
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

    public init(
        id: String, description: String = "", match: TopicFilter, kind: Kind, message: String? = nil,
        resolvedMessage: String? = nil, overrides: [RuleOverride] = [], file: String = "", line: Int = 0
    ) {
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
            if let t = o.thresholds { spec.thresholds = t }
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

    /// The longest window any of its variants needs (for rebuilding windows at start).
    public var window: TimeSpan {
        if case .threshold(let s) = kind { return s.window }
        return .zero
    }

    /// Placeholders a message may use.
    public static let placeholders: Set<String> = [
        "site", "device", "metric", "network", "series", "rule", "value", "unit", "level", "threshold",
    ]

    /// The message for a transition, `{placeholder}`s filled in.
    public static func render(
        _ template: String, series: SeriesKey, rule: String, value: Double?, unit: String?, level: AlertLevel?,
        threshold: Double?
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
