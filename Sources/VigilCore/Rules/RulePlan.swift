/// A rule as it applies to the series of one override (or of none), compiled: what the
/// states of the rule share. What an evaluation reads of it is also in `scalars`, a value
/// with no references, which the engine keeps in an array of its own: a reading costs no
/// reference count for the plan or its thresholds.
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
    let scalars: PlanScalars

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
        scalars = PlanScalars(
            stat: stat, op: op, hysteresis: hysteresis, hold: hold, clear: clear, levels: LevelSet(spec.thresholds),
            scheduled: scheduled, calendar: calendar, levelWindow: map, isStale: isStale, staleAfter: staleAfter, staleLevel: staleLevel)
    }
}

/// What an evaluation reads of its plan (see `RulePlan`).
struct PlanScalars {
    let stat: RuleStat
    let op: RuleOp
    let hysteresis: Double
    let hold: Int64
    let clear: Int64
    /// The levels of a rule without a schedule.
    let levels: LevelSet
    let scheduled: Bool
    let calendar: Bool
    let levelWindow: SIMD4<Int32>
    let isStale: Bool
    let staleAfter: Int64
    let staleLevel: AlertLevel
}

/// Thresholds as the engine judges them: a bit per level (raw value - 1) and its threshold,
/// least severe first as the bits go. No array: nothing to count references of.
struct LevelSet: Equatable {
    var mask: UInt8 = 0
    var values = SIMD4<Double>(repeating: 0)

    /// No level: a schedule's thresholds that are off, or none looked up yet.
    static let none = LevelSet()

    init() {}

    init(_ t: Thresholds?) {
        for (l, v) in t?.levels ?? [] {
            mask |= 1 << (l.rawValue - 1)
            values[l.rawValue - 1] = v
        }
    }

    @inline(__always)
    func has(_ k: Int) -> Bool { mask & (1 << k) != 0 }

    func threshold(_ l: AlertLevel) -> Double? { has(l.rawValue - 1) ? values[l.rawValue - 1] : nil }

    /// Every level's bit (blue to red).
    static let all: UInt8 = 0b1111
}

/// The windows of levels with their own, for a state whose rule has them.
struct ExtraWindows {
    var windows: [SlidingWindow]
}

/// The thresholds in force for a state whose rule has a schedule, from `from` until
/// `until` (UTC micros; `from == .max`: not looked up yet), and the calendar window judged last.
struct InForce {
    var thresholds = LevelSet.none
    var period: String?
    var from: Int64 = .max
    var until: Int64 = .min
}

/// A time per level (raw value - 1), UTC micros, .min for none: since when a level's raise
/// condition has held, or its condition has been gone. Four fields, not a SIMD4: a store
/// to one lane of a vector went through the stack and stalled the load of the whole vector
/// that followed (a fifth of an evaluation's time).
struct LevelTimes: Equatable {
    var blue: Int64 = .min
    var yellow: Int64 = .min
    var orange: Int64 = .min
    var red: Int64 = .min

    static let none = LevelTimes()

    subscript(k: Int) -> Int64 {
        @inline(__always) get {
            switch k {
            case 0: return blue
            case 1: return yellow
            case 2: return orange
            default: return red
            }
        }
        @inline(__always) set {
            switch k {
            case 0: blue = newValue
            case 1: yellow = newValue
            case 2: orange = newValue
            default: red = newValue
            }
        }
    }
}
