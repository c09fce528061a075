import Foundation
import VigilCore

/// The rule engine alone, in-process: 1,000 rules over 10,000 series.
///
/// Series: energy/site-K/meter-J/METRIC for 100 sites, 20 meters, 5 metrics. Rules:
/// 500 per site and metric (`energy/site-K/+/voltage`: one per series), 400 per meter and
/// metric (80 meters), 15 metric-wide (3 per metric) and 85 stale rules per site, with
/// stats and windows mixed (last, sliding mean, max, sum, rate and Leq; calendar daily
/// means with their coverage; calendar hourly Leq with day and night periods; a sliding
/// mean with effective dates): about 5.8 rules watch each reading. Timed in steady state,
/// with every window full.
enum RuleBench {
    struct Result {
        var rules: Int
        var series: Int
        var microsPerReading: Double
        var rulesPerReading: Double
    }

    static let metrics = ["voltage", "current", "power", "frequency", "energy"]

    static func rules() -> [Rule] {
        var out: [Rule] = []
        let levels = Thresholds([.yellow: 1e6, .orange: 2e6, .red: 3e6])
        let dayNight = ThresholdSchedule(phases: [
            .init(
                from: nil, thresholds: nil,
                periods: [
                    .init(name: "day", from: 360, to: 1320, thresholds: levels),
                    .init(name: "night", from: 1320, to: 360, thresholds: Thresholds([.yellow: 5e5, .orange: 1e6])),
                ])
        ])
        let phased = ThresholdSchedule(phases: [
            .init(from: nil, thresholds: levels), .init(from: LocalDate(parsing: "2031-01-01"), thresholds: Thresholds([.yellow: 5e5])),
        ])
        let kinds: [(RuleStat, TimeSpan, WindowAlign, ThresholdSchedule?)] = [
            (.last, .zero, .sliding, nil), (.mean, .minutes(1), .sliding, nil), (.max, .minutes(10), .sliding, nil),
            (.sum, .minutes(5), .sliding, nil), (.rate, .minutes(10), .sliding, nil), (.leq, .minutes(10), .sliding, nil),
            (.mean, .days(1), .calendar, nil), (.leq, .hours(1), .calendar, dayNight), (.mean, .minutes(5), .sliding, phased),
        ]
        func threshold(_ id: String, _ match: String, _ k: Int) -> Rule {
            let (stat, window, align, schedule) = kinds[k % kinds.count]
            let calendar = align == .calendar
            return Rule(
                id: id, match: try! TopicFilter(match),
                kind: .threshold(
                    ThresholdSpec(
                        stat: stat, window: window, op: .gt, thresholds: levels, hysteresis: 1,
                        holdFor: calendar ? .zero : .seconds(10), clearFor: calendar ? .zero : .seconds(30), schedule: schedule,
                        align: align, coverage: calendar ? Coverage(minimum: window == .days(1) ? .hours(20) : .minutes(45)) : nil)))
        }
        for site in 0..<100 {
            for (m, metric) in metrics.enumerated() { out.append(threshold("site-\(site)-\(metric)", "energy/site-\(site)/+/\(metric)", site + m)) }
        }
        for meter in 0..<80 {
            for (m, metric) in metrics.enumerated() { out.append(threshold("meter-\(meter)-\(metric)", "energy/+/meter-\(meter)/\(metric)", meter + m + 1)) }
        }
        for (m, metric) in metrics.enumerated() {
            for k in 0..<3 { out.append(threshold("all-\(metric)-\(k)", "energy/+/+/\(metric)", m + k + 2)) }
        }
        for site in 0..<85 {
            out.append(Rule(id: "silent-\(site)", match: try! TopicFilter("energy/site-\(site)/#"), kind: .stale(.minutes(5), .yellow)))
        }
        return out
    }

    static func run(readings n: Int) -> Result {
        let rules = rules()
        let engine = RuleEngine(rules: rules)
        var series: [SeriesKey] = []
        for site in 0..<100 {
            for meter in 0..<20 {
                for metric in metrics { series.append(SeriesKey(network: "energy", site: "site-\(site)", device: "meter-\(meter)", metric: metric)) }
            }
        }
        var out: [AlertTransition] = []
        // 16:40 in China: the calendar hours close at 17:00, in the timed part.
        let t0 = Timestamp(seconds: 1_800_002_400)
        // Warm up: every series seen once (states created), as after the first seconds of running.
        for (i, s) in series.enumerated() {
            engine.ingest(Reading(series: s, value: Double(i % 100), timestamp: t0), seriesID: Int64(i), now: t0, into: &out)
        }
        // Each series every 10 s (1,000 readings per simulated second), a tick each simulated
        // second. The first 12 simulated minutes fill every window and are not timed: the
        // figure is the steady state.
        let warmup = 720_000
        var now = t0
        var start: UInt64 = 0
        for i in 0..<(warmup + n) {
            if i == warmup { start = DispatchTime.now().uptimeNanoseconds }
            let t = t0.adding(TimeSpan(micros: Int64(i) * 1000))
            if t.micros - now.micros >= 1_000_000 {
                now = t
                engine.tick(now: now, into: &out)
            }
            let k = i % series.count
            engine.ingest(Reading(series: series[k], value: Double(i % 1000) / 10, timestamp: t), seriesID: Int64(k), now: t, into: &out)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Result(
            rules: rules.count, series: series.count, microsPerReading: seconds * 1e6 / Double(n),
            rulesPerReading: Double(engine.stateCount) / Double(series.count))
    }
}
