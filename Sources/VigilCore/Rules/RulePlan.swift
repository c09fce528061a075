/// A rule as it applies to the series of one override (or of none), compiled for the hot
/// path: the scalars each evaluation reads, in one object that the states share, so that a
/// reading costs one reference count per rule it meets, not one per array in the spec.
final class RulePlan {
    let kind: Rule.Kind
    let zone: LocalTimeZone
    // Threshold rules.
    let spec: ThresholdSpec
    let stat: RuleStat
    let op: RuleOp
    let hysteresis: Double
    let hold: Int64
    let clear: Int64
    /// The levels of a rule without a schedule.
    let levels: [(AlertLevel, Double)]
    let scheduled: Bool
    let calendar: Bool
    /// Levels with windows of their own: the distinct lengths after the rule's window, and
    /// which each level reads (0: the rule's window; k: the k-th of `extraWindows`).
    let extraWindows: [TimeSpan]
    let levelWindow: SIMD4<Int32>
    // Stale rules.
    let isStale: Bool
    let staleAfter: Int64
    let staleLevel: AlertLevel

    init(kind: Rule.Kind, zone: LocalTimeZone) {
        self.kind = kind
        self.zone = zone
        switch kind {
        case .threshold(let s):
            spec = s
            isStale = false
            staleAfter = 0
            staleLevel = .yellow
        case .stale(let after, let level):
            spec = ThresholdSpec(stat: .last, window: .zero, op: .gt, thresholds: Thresholds([:]))
            isStale = true
            staleAfter = after.micros
            staleLevel = level
        }
        stat = spec.stat
        op = spec.op
        hysteresis = spec.hysteresis
        hold = spec.holdFor.micros
        clear = spec.clearFor.micros
        levels = spec.thresholds.levels
        scheduled = spec.schedule != nil
        calendar = spec.align == .calendar
        var lengths: [TimeSpan] = []
        var map = SIMD4<Int32>(repeating: 0)
        if !calendar {
            for lvl in AlertLevel.allCases {
                let w = spec.window(of: lvl)
                guard w != spec.window else { continue }
                if let k = lengths.firstIndex(of: w) {
                    map[lvl.rawValue - 1] = Int32(k + 1)
                } else {
                    lengths.append(w)
                    map[lvl.rawValue - 1] = Int32(lengths.count)
                }
            }
        }
        extraWindows = lengths
        levelWindow = map
    }
}

/// The windows of levels with their own, for a state whose rule has them.
struct ExtraWindows {
    var windows: [SlidingWindow]
}

/// The thresholds in force for a state whose rule has a schedule, from `from` until
/// `until` (UTC micros; `from == .max`: not looked up yet), and the calendar window judged last.
struct InForce {
    var thresholds: Thresholds?
    var period: String?
    var from: Int64 = .max
    var until: Int64 = .min
}
