import Testing

@testable import VigilCore

/// A rule engine on a manual clock: readings at seconds from t0, ticks in between.
struct Harness {
    let engine: RuleEngine
    var out: [AlertTransition] = []
    static let t0 = Timestamp(seconds: 1_800_000_000)

    init(_ rules: [Rule]) { engine = RuleEngine(rules: rules) }

    static func at(_ s: Double) -> Timestamp { t0.adding(TimeSpan(micros: Int64(s * 1_000_000))) }

    mutating func read(_ path: String, _ value: Double, at s: Double, unit: String? = nil) {
        let t = Self.at(s)
        engine.ingest(Reading(series: SeriesKey(path: path)!, value: value, timestamp: t, unit: unit), now: t, into: &out)
    }

    /// Ticks every `step` seconds from `from` to `to` (inclusive).
    mutating func tick(from: Double, to: Double, step: Double = 1) {
        var s = from
        while s <= to {
            engine.tick(now: Self.at(s), into: &out)
            s += step
        }
    }

    /// The transitions so far as "second state level", then cleared.
    mutating func take() -> [String] {
        defer { out.removeAll() }
        return out.map { "\(Int((Double($0.at.micros - Self.t0.micros) / 1e6).rounded())) \($0.state.rawValue) \($0.level)" }
    }
}

func rule(
    _ id: String = "r", match: String = "water/+/+/level", stat: RuleStat = .last, window: TimeSpan = .zero,
    op: RuleOp = .gt, levels: [AlertLevel: Double] = [.yellow: 4.5, .orange: 5.2, .red: 6.0], hysteresis: Double = 0,
    holdFor: TimeSpan = .zero, clearFor: TimeSpan = .zero, message: String? = nil, resolvedMessage: String? = nil,
    overrides: [RuleOverride] = []
) -> Rule {
    Rule(
        id: id, match: try! TopicFilter(match),
        kind: .threshold(
            ThresholdSpec(
                stat: stat, window: window, op: op, thresholds: Thresholds(levels), hysteresis: hysteresis,
                holdFor: holdFor, clearFor: clearFor)), message: message, resolvedMessage: resolvedMessage, overrides: overrides)
}

let level = "water/st/g/level"

@Suite("Rule engine")
struct RuleEngineTests {
    @Test func raiseEscalateDeescalateResolve() {
        var h = Harness([rule()])
        h.read(level, 4.0, at: 0)
        h.read(level, 4.6, at: 10)
        h.read(level, 6.5, at: 20)
        h.read(level, 5.5, at: 30)
        h.read(level, 4.0, at: 40)
        #expect(h.take() == ["10 raised yellow", "20 escalated red", "30 deescalated orange", "40 resolved orange"])
    }

    @Test func transitionCarriesValueThresholdAndMessage() {
        var h = Harness([rule(message: "{site} river level {value} {unit} over {level} line {threshold} m ({rule} {series})")])
        h.read(level, 5.3, at: 0, unit: "m")
        let t = h.out[0]
        #expect(t.state == .raised && t.level == .orange && t.previousLevel == nil)
        #expect(t.value == 5.3 && t.threshold == 5.2)
        #expect(t.message == "st river level 5.3 m over orange line 5.2 m (r water/st/g/level)")
        #expect(t.alertID == "r:water/st/g/level")
        h.read(level, 6.1, at: 5)
        #expect(h.out[1].previousLevel == .orange && h.out[1].since == Harness.at(0))
    }

    /// The value that ends an alert is on the other side of the line: a resolved
    /// transition does not reuse the raise wording ("4.0 m over yellow line").
    @Test func resolvedTransitionsHaveTheirOwnMessage() {
        var h = Harness([rule(message: "{site} river level {value} m over {level} line {threshold} m")])
        h.read(level, 4.6, at: 0, unit: "m")
        h.read(level, 4.0, at: 10, unit: "m")
        #expect(h.out.map(\.message) == ["st river level 4.6 m over yellow line 4.5 m", "water/st/g/level resolved: 4 m back within the yellow threshold 4.5 m"])
        var c = Harness([rule(message: "{site} over {level}", resolvedMessage: "{site} river level {value} m back under the {level} line {threshold} m")])
        c.read(level, 4.6, at: 0)
        c.read(level, 4.0, at: 10)
        #expect(c.out.last?.message == "st river level 4 m back under the yellow line 4.5 m")
    }

    @Test func downwardRules() {
        // Dissolved oxygen: low is bad; thresholds fall with severity.
        var h = Harness([rule(match: "water/+/+/do", op: .lt, levels: [.yellow: 5, .orange: 3, .red: 2], hysteresis: 0.2)])
        h.read("water/st/q/do", 6, at: 0)
        h.read("water/st/q/do", 4.9, at: 1)
        h.read("water/st/q/do", 1.5, at: 2)
        h.read("water/st/q/do", 2.1, at: 3)  // within hysteresis of red: stays
        h.read("water/st/q/do", 2.3, at: 4)  // past it: orange
        h.read("water/st/q/do", 5.1, at: 5)  // within hysteresis of yellow: stays yellow
        h.read("water/st/q/do", 5.3, at: 6)
        #expect(h.take() == ["1 raised yellow", "2 escalated red", "4 deescalated orange", "5 deescalated yellow", "6 resolved yellow"])
    }

    /// A value hovering around a threshold for an hour raises once and resolves at most once.
    @Test func hysteresisStopsFlapping() {
        var h = Harness([rule(levels: [.yellow: 4.5], hysteresis: 0.1)])
        for i in 0..<3600 {
            h.read(level, 4.5 + 0.05 * (i % 2 == 0 ? 1 : -1), at: Double(i))
        }
        #expect(h.take() == ["0 raised yellow"])
        h.read(level, 4.39, at: 3600)
        #expect(h.take() == ["3600 resolved yellow"])
        // Without hysteresis it flaps on every crossing: what hysteresis is for.
        var flappy = Harness([rule(levels: [.yellow: 4.5])])
        for i in 0..<100 { flappy.read(level, 4.5 + 0.05 * (i % 2 == 0 ? 1 : -1), at: Double(i)) }
        #expect(flappy.take().count == 100)
    }

    @Test func forHoldsBeforeRaisingAndEscalating() {
        var h = Harness([rule(holdFor: .minutes(2))])
        h.read(level, 4.6, at: 0)
        h.tick(from: 1, to: 60)
        h.read(level, 4.4, at: 61)  // dropped before 2 minutes: no alert, timer reset
        h.read(level, 4.7, at: 70)
        h.tick(from: 71, to: 189)
        #expect(h.take() == [])
        h.tick(from: 190, to: 190)  // 120 s after 70, raised by the tick: no reading needed
        #expect(h.take() == ["190 raised yellow"])
        h.read(level, 6.2, at: 200)  // red must hold 2 minutes too
        h.tick(from: 201, to: 319)
        #expect(h.take() == [])
        h.tick(from: 320, to: 320)
        #expect(h.take() == ["320 escalated red"])
    }

    @Test func forRaisesAtTheHighestLevelThatHeld() {
        var h = Harness([rule(holdFor: .seconds(60))])
        h.read(level, 5.0, at: 0)  // yellow from 0
        h.read(level, 6.5, at: 30)  // red from 30 (yellow still holds)
        h.tick(from: 31, to: 90)
        #expect(h.take() == ["60 raised yellow", "90 escalated red"])
    }

    @Test func clearForHoldsBeforeDeescalatingAndResolving() {
        var h = Harness([rule(clearFor: .minutes(5))])
        h.read(level, 5.5, at: 0)
        h.read(level, 4.0, at: 10)  // below every level: clearing from 10
        h.tick(from: 11, to: 200)
        h.read(level, 5.0, at: 201)  // yellow while clearing orange: the clear goes on, to yellow
        h.tick(from: 202, to: 500)
        #expect(h.take() == ["0 raised orange", "310 deescalated yellow"])
        h.read(level, 5.3, at: 501)
        #expect(h.take() == ["501 escalated orange"])
        h.read(level, 3.0, at: 600)
        h.tick(from: 601, to: 899)
        #expect(h.take() == [])
        h.tick(from: 900, to: 900)
        #expect(h.take() == ["900 resolved orange"])
    }

    @Test func clearForResolvesAfterTheConditionStaysGone() {
        var h = Harness([rule(clearFor: .minutes(5))])
        h.read(level, 5.5, at: 0)
        h.read(level, 4.0, at: 10)
        h.tick(from: 11, to: 309)
        #expect(h.take() == ["0 raised orange"])
        h.tick(from: 310, to: 310)
        #expect(h.take() == ["310 resolved orange"])
    }

    @Test func clearForDeescalatesToTheHighestLevelSeenWhileClearing() {
        var h = Harness([rule(clearFor: .seconds(60))])
        h.read(level, 6.5, at: 0)  // red
        h.read(level, 4.0, at: 10)  // below everything
        h.read(level, 5.3, at: 20)  // orange while clearing red
        h.read(level, 4.0, at: 30)
        h.tick(from: 31, to: 70)
        // Red has been gone since 10; orange held at 20 and has been gone since 30.
        #expect(h.take() == ["0 raised red", "70 deescalated orange"])
        h.tick(from: 71, to: 90)
        #expect(h.take() == ["90 resolved orange"])
    }

    @Test func overridesPerSite() {
        var o = RuleOverride(match: try! TopicFilter("water/station-07/+/level"))
        o.thresholds = Thresholds([.yellow: 3.8, .orange: 4.4, .red: 5.0])
        var h = Harness([rule(overrides: [o])])
        h.read("water/station-07/g/level", 4.0, at: 0)
        h.read("water/station-01/g/level", 4.0, at: 0)
        #expect(h.out.map(\.series.site) == ["station-07"])
        #expect(h.out[0].threshold == 3.8)
    }

    @Test func everyStatOverAWindow() {
        func values(_ stat: RuleStat, _ readings: [(Double, Double)], at now: Double, window: TimeSpan = .seconds(100)) -> Double? {
            var w = SlidingWindow(window: window)
            for (t, v) in readings { w.add(v, at: Harness.at(t)) }
            w.expire(now: Harness.at(now))
            return w.value(stat)
        }
        let r: [(Double, Double)] = [(0, 10), (30, 14), (60, 8), (90, 20)]
        #expect(values(.last, r, at: 90) == 20)
        #expect(values(.mean, r, at: 90) == 13)
        #expect(values(.min, r, at: 90) == 8)
        #expect(values(.max, r, at: 90) == 20)
        #expect(values(.sum, r, at: 90) == 52)
        #expect(values(.count, r, at: 90) == 4)
        #expect(values(.rate, r, at: 90) == (20 - 10) / (90.0 / 3600))
        // Expiry: at 120 the reading at 0 and the one at 20 s-old edge leave.
        #expect(values(.sum, r, at: 120) == 42)
        #expect(values(.count, r, at: 130) == 2)  // the window holds now - 100 < t <= now: 60 and 90
        #expect(values(.sum, r, at: 130) == 28)
        #expect(values(.min, r, at: 161) == 20)
        #expect(values(.count, r, at: 500) == 0)
        #expect(values(.sum, r, at: 500) == 0)
        #expect(values(.mean, r, at: 500) == nil)
        #expect(values(.rate, [(0, 1)], at: 0) == nil)
    }

    @Test func increaseSurvivesCounterResets() {
        var w = SlidingWindow(window: .hours(1))
        for (t, v) in [(0.0, 100.0), (60, 110), (120, 125), (180, 5), (240, 15)] { w.add(v, at: Harness.at(t)) }
        // 10 + 15 + (reset: 5 from zero) + 10
        #expect(w.value(.increase) == 40)
        w.expire(now: Harness.at(3600 + 60))  // the first two leave: growth between the readings left, 125 -> 5 -> 15
        #expect(w.value(.increase) == 15)
    }

    /// Min and max from the monotonic queues agree with a scan, through merges, late readings and expiry.
    @Test func minAndMaxAgreeWithAScan() {
        var rng = SystemRandomNumberGenerator()
        for trial in 0..<8 {
            let window = TimeSpan.seconds(Int64(10 + trial * 7))
            var w = SlidingWindow(window: window)
            // Without the queues (a rule of another stat), min and max scan the slots: the same values.
            var plain = SlidingWindow(window: window, extrema: false)
            var kept: [(Int64, Double)] = []
            var t: Int64 = 0
            for _ in 0..<1500 {
                t += Int64.random(in: 0...400_000, using: &rng)
                let late = Int64.random(in: 0..<10, using: &rng) == 0 && t > 1_000_000
                let at = late ? t - 500_000 : t
                let v = Double(Int.random(in: -500...500, using: &rng))
                w.add(v, at: Harness.at(Double(at) / 1e6))
                plain.add(v, at: Harness.at(Double(at) / 1e6))
                if late, let last = kept.last { kept.append((last.0, v)) } else { kept.append((at, v)) }
                let now = Harness.at(Double(t) / 1e6)
                w.expire(now: now)
                plain.expire(now: now)
                #expect(plain.value(.max) == w.value(.max))
                #expect(plain.value(.min) == w.value(.min))
                // A scan of the readings a slot-exact window would hold (slots are exact here
                // when readings are sparser than the resolution; compare only then).
                let edge = now.micros - Harness.t0.micros - window.micros
                let inWindow = kept.filter { $0.0 > edge }.map(\.1)
                if let m = w.value(.max), w.readings == inWindow.count { #expect(m == inWindow.max()) }
                if let m = w.value(.min), w.readings == inWindow.count { #expect(m == inWindow.min()) }
            }
        }
    }

    @Test func denseWindowsStayBounded() {
        var w = SlidingWindow(window: .hours(24))
        for i in 0..<200_000 { w.add(1, at: Harness.at(Double(i) * 0.5)) }
        #expect(w.value(.count) == 200_000)
        #expect(w.value(.sum) == 200_000)
        // Slots, not readings: the memory is bounded (257 slots at most, in a ring of 512).
        #expect(w.slotCapacity <= 512)
        #expect(MemoryLayout<SlidingWindow.Slot>.stride * w.slotCapacity < 50_000)
    }

    /// A copy of a window is a window of its own: changing either leaves the other as it was
    /// (they share the ring until then), through growth of the ring and expiry.
    @Test func aCopiedWindowIsItsOwn() {
        var a = SlidingWindow(window: .seconds(100))
        for i in 0..<3 { a.add(Double(i), at: Harness.at(Double(i) * 10)) }
        var b = a
        for i in 3..<40 { b.add(Double(i), at: Harness.at(Double(i) * 10)) }  // b's ring grows
        #expect(a.value(.count) == 3)
        #expect(a.value(.sum) == 3)
        #expect(a.value(.max) == 2)
        let c = b
        b.expire(now: Harness.at(390))  // b keeps 300..390 (10 readings)
        #expect(b.value(.count) == 10)
        #expect(c.value(.count) == 40)  // 0 up to 39: nothing expired it
        #expect(c.value(.min) == 0)
        a.add(100, at: Harness.at(30))
        #expect(a.value(.last) == 100)
        #expect(b.value(.last) == 39 && c.value(.last) == 39)
    }

    @Test func windowedSumRaisesAndTheTickResolvesAsReadingsExpire() {
        var h = Harness([rule(match: "water/+/+/rain", stat: .sum, window: .hours(3), op: .ge, levels: [.orange: 50, .red: 100])])
        for i in 0..<6 { h.read("water/st/r/rain", 10, at: Double(i) * 600) }  // 10 mm every 10 minutes
        #expect(h.take() == ["2400 raised orange"])  // the fifth makes 50: >= 50
        h.tick(from: 3001, to: 3 * 3600 + 2000, step: 60)
        // 3 h after the first reading the sum falls to 50 (still orange); 3 h after the second, to 40.
        #expect(h.take() == ["11401 resolved orange"])
    }

    @Test func increaseRuleOnAnEnergyCounter() {
        var h = Harness([rule(match: "energy/+/+/energy", stat: .increase, window: .hours(1), op: .gt, levels: [.yellow: 50])])
        h.read("energy/s/m/energy", 1000, at: 0)
        h.read("energy/s/m/energy", 1030, at: 600)
        h.read("energy/s/m/energy", 2, at: 1200)  // meter reset: +2, not -1028
        h.read("energy/s/m/energy", 30, at: 1800)
        #expect(h.take() == ["1800 raised yellow"])
    }

    @Test func staleRulesRaiseOnSilenceAndResolveOnTheNextReading() {
        let stale = Rule(id: "silent", match: try! TopicFilter("urban/#"), kind: .stale(.minutes(10), .yellow))
        var h = Harness([stale])
        h.read("urban/d/aq/pm25", 30, at: 0)
        h.tick(from: 1, to: 599, step: 1)
        #expect(h.take() == [])
        h.tick(from: 600, to: 1200)
        #expect(h.take() == ["600 raised yellow"])
        #expect(h.out.isEmpty)
        h.read("urban/d/aq/pm25", 30, at: 1300)
        #expect(h.take() == ["1300 resolved yellow"])
        // A series seen before a restart and silent since is known to the rule.
        let restarted = Harness([stale])
        restarted.engine.knowSeries(SeriesKey(path: "urban/d/noise/db")!, lastSeen: Harness.at(0))
        var r = restarted
        r.tick(from: 600, to: 600)
        #expect(r.take() == ["600 raised yellow"])
    }

    @Test func stateSurvivesARestartWithoutADuplicateRaise() {
        var h = Harness([rule(holdFor: .seconds(60), clearFor: .seconds(60))])
        h.read(level, 5.0, at: 0)
        h.tick(from: 1, to: 60)
        #expect(h.take() == ["60 raised yellow"])
        h.read(level, 6.5, at: 70)  // red pending
        let saved = h.engine.takeDirty()
        #expect(saved.count == 1 && saved[0].level == .yellow && saved[0].pending[.red] == Harness.at(70))
        #expect(saved[0].absent.isEmpty)
        // A new engine (a restart) with the stored state and the readings replayed.
        var after = Harness([rule(holdFor: .seconds(60), clearFor: .seconds(60))])
        #expect(after.engine.restore(saved).isEmpty)
        after.engine.replay(Reading(series: SeriesKey(path: level)!, value: 6.5, timestamp: Harness.at(70)))
        after.tick(from: 80, to: 130)
        #expect(after.take() == ["130 escalated red"], "the pending timer went on; yellow was not raised again")
        after.read(level, 1, at: 140)
        after.tick(from: 141, to: 200)
        #expect(after.take() == ["200 resolved red"])
        // A rule that is gone: its alert comes back as an orphan, to be resolved.
        let other = Harness([rule("other")])
        let orphans = other.engine.restore(saved)
        #expect(orphans.count == 1)
        #expect(RuleEngine.orphanResolved(orphans[0], now: Harness.at(999), reason: "rule removed")?.state == .resolved)
    }

    @Test func thresholdOrderIsChecked() {
        #expect(Thresholds([.yellow: 4.5, .orange: 5.2]).orderProblem(.gt) == nil)
        #expect(Thresholds([.yellow: 4.5, .orange: 4.2]).orderProblem(.gt) != nil)
        #expect(Thresholds([.yellow: 5, .red: 2]).orderProblem(.lt) == nil)
        #expect(Thresholds([.yellow: 5, .red: 6]).orderProblem(.le) != nil)
    }
}

/// A tick skips the wakes of states judged since they were queued, when nothing falls due
/// by then: the same transitions, in the same order, as looking at each of them.
@Suite("Settled wakes")
struct SettledWakeTests {
    static func rules() -> [Rule] {
        let levels = Thresholds([.yellow: 50, .orange: 60, .red: 70])
        let dayNight = ThresholdSchedule(phases: [
            .init(
                from: nil, thresholds: nil,
                periods: [
                    .init(name: "day", from: 6 * 60, to: 22 * 60, thresholds: levels),
                    .init(name: "night", from: 22 * 60, to: 6 * 60, thresholds: Thresholds([.yellow: 40, .orange: 55])),
                ])
        ])
        let phased = ThresholdSchedule(phases: [
            .init(from: nil, thresholds: levels), .init(from: LocalDate(parsing: "2027-01-16"), thresholds: Thresholds([.yellow: 45])),
        ])
        let kinds: [(RuleStat, TimeSpan, WindowAlign, ThresholdSchedule?, Int64, Int64)] = [
            (.last, .zero, .sliding, nil, 0, 0), (.mean, .minutes(1), .sliding, nil, 10, 30), (.max, .minutes(3), .sliding, nil, 5, 0),
            (.sum, .seconds(90), .sliding, nil, 0, 20), (.rate, .minutes(2), .sliding, nil, 10, 10),
            (.leq, .minutes(2), .sliding, dayNight, 10, 30), (.mean, .hours(1), .calendar, nil, 0, 0),
            (.leq, .minutes(30), .calendar, dayNight, 0, 0), (.mean, .minutes(1), .sliding, phased, 3, 7),
            (.min, .seconds(45), .sliding, nil, 0, 0),
        ]
        var out: [Rule] = []
        for (k, (stat, window, align, schedule, hold, clear)) in kinds.enumerated() {
            out.append(
                Rule(
                    id: "k\(k)", match: try! TopicFilter("noise/+/+/k\(k % 5)"),
                    kind: .threshold(
                        ThresholdSpec(
                            stat: stat, window: window, op: .gt, thresholds: levels, hysteresis: 2, holdFor: .seconds(hold),
                            clearFor: .seconds(clear), schedule: schedule,
                            levelWindows: k == 1 ? [.red: .minutes(2)] : [:], align: align,
                            coverage: align == .calendar ? Coverage(minimum: .minutes(5)) : nil))))
        }
        out.append(Rule(id: "silent", match: try! TopicFilter("noise/#"), kind: .stale(.seconds(40), .yellow)))
        return out
    }

    @Test func skippingSettledWakesChangesNothing() {
        for seed in 0..<4 {
            var rng = TestRandom(seed: UInt64(seed))
            let skipping = RuleEngine(rules: Self.rules())
            let looking = RuleEngine(rules: Self.rules())
            looking.skipsSettledWakes = false
            var a: [AlertTransition] = []
            var b: [AlertTransition] = []
            // 21:50 in China: the night period starts in the run, and the phase of 2027-01-16.
            var now: Int64 = (1_800_000_000 + 21_000) * 1_000_000
            let series = (0..<12).map { SeriesKey(network: "noise", site: "s\($0 % 3)", device: "d\($0 / 3)", metric: "k\($0 % 5)") }
            for _ in 0..<20_000 {
                // Mostly forward, sometimes a step back (a clock step), readings late or early.
                let r = rng.next() % 100
                now += r < 3 ? -Int64(rng.next() % 5_000_000) : Int64(rng.next() % 900_000)
                if rng.next() % 3 == 0 {
                    let t = Timestamp(micros: now)
                    skipping.tick(now: t, into: &a)
                    looking.tick(now: t, into: &b)
                } else {
                    let s = series[Int(rng.next() % UInt64(series.count))]
                    let skew = rng.next() % 10 == 0 ? Int64(rng.next() % 4_000_000) - 2_000_000 : 0
                    let v = 30 + Double(rng.next() % 500) / 10
                    let reading = Reading(series: s, value: v, timestamp: Timestamp(micros: now + skew))
                    skipping.ingest(reading, now: Timestamp(micros: now), into: &a)
                    looking.ingest(reading, now: Timestamp(micros: now), into: &b)
                }
            }
            #expect(a.count > 100)
            #expect(a == b)
            #expect(skipping.stats == looking.stats)
            #expect(skipping.takeDirty() == looking.takeDirty())
            #expect(skipping.activeStates == looking.activeStates)
        }
    }
}

/// A small deterministic generator, so that a failure repeats.
struct TestRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Wake heap")
struct WakeHeapTests {
    /// Pops come out in (time, index) order, through pushes, pops and replaced tops.
    @Test func popsInOrder() {
        var rng = TestRandom(seed: 7)
        var heap = WakeHeap()
        var model: [(Int64, Int)] = []
        func less(_ a: (Int64, Int), _ b: (Int64, Int)) -> Bool { a.0 < b.0 || (a.0 == b.0 && a.1 < b.1) }
        for _ in 0..<20_000 {
            let r = rng.next() % 10
            let e = (Int64(rng.next() % 500), Int(rng.next() % 50))
            if r < 5 || model.isEmpty {
                heap.push(e.0, e.1)
                model.append(e)
            } else {
                let m = model.indices.min { less(model[$0], model[$1]) }!
                #expect(heap.peek.map { $0.0 == model[m].0 && $0.1 == model[m].1 } == true)
                model.remove(at: m)
                if r < 8 {
                    heap.pop()
                } else {
                    heap.replaceTop(e.0, e.1)
                    model.append(e)
                }
            }
            #expect(heap.count == model.count)
        }
    }
}

@Suite("Wake wheel")
struct WakeWheelTests {
    /// A tick takes what a heap would pop, in the heap's order: through entries of the past,
    /// entries beyond the wheel (in its heap until the wheel comes near), pushes while a tick
    /// is handled, ticks that go back, and jumps of the clock past the whole wheel.
    @Test func takesWhatAHeapPops() {
        var rng = TestRandom(seed: 11)
        var wheel = WakeWheel()
        var heap = WakeHeap()
        var batch: [WakeWheel.Entry] = []
        let span = WakeWheel.size << WakeWheel.shift  // the wheel's reach in µs (71 minutes)
        var t: Int64 = 1_800_000_000_000_000
        var taken = 0
        for step in 0..<4_000 {
            for _ in 0..<Int(rng.next() % 30) {
                let ahead: Int64
                switch rng.next() % 10 {
                case 0: ahead = -Int64(rng.next() % 5_000_000)  // overdue
                case 1: ahead = span + Int64(rng.next() % UInt64(span))  // beyond the wheel
                case 2: ahead = Int64(rng.next() % 65_536)  // within a bucket
                default: ahead = Int64(rng.next() % 20_000_000)
                }
                let e = (t + ahead, Int(rng.next() % 1_000))
                wheel.push(e.0, e.1)
                heap.push(e.0, e.1)
            }
            switch rng.next() % 100 {
            case 0: t += 2 * span  // the clock jumps past the wheel
            case 1: t -= 3_000_000  // a tick that goes back
            case 2..<10: t += span / 3
            default: t += Int64(rng.next() % 2_000_000)
            }
            var fromHeap: [(Int64, Int)] = []
            while let top = heap.peek, top.0 <= t {
                fromHeap.append(top)
                heap.pop()
            }
            var fromWheel: [(Int64, Int)] = []
            while wheel.takeDue(upTo: t, into: &batch) {
                fromWheel += batch.map { ($0.time, $0.index) }
                // Handling a wake queues the next one, later than the tick (the heap has
                // popped this tick's already: it can take it now too).
                if step % 3 == 0, let e = batch.first {
                    let next = t + 1 + Int64(rng.next() % 3_000_000)
                    wheel.push(next, e.index)
                    heap.push(next, e.index)
                }
            }
            #expect(fromWheel.count == fromHeap.count)
            #expect(zip(fromWheel, fromHeap).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 })
            #expect(wheel.count == heap.count)
            taken += fromWheel.count
        }
        #expect(taken > 10_000)
    }
}

@Suite("Series ids")
struct SeriesIDTests {
    /// Readings by series id (small and dense, large, negative) give what readings by series give.
    @Test func byIDAsBySeries() {
        let rules = [rule(holdFor: .seconds(2)), rule("mean", stat: .mean, window: .seconds(30)), rule("other", match: "air/#")]
        let byID = RuleEngine(rules: rules)
        let bySeries = RuleEngine(rules: rules)
        var a: [AlertTransition] = []
        var b: [AlertTransition] = []
        let series = ["water/a/g/level", "water/b/g/level", "air/c/g/pm25", "soil/d/g/moisture"].map { SeriesKey(path: $0)! }
        let ids: [Int64] = [3, 1 << 40, -5, 0]
        for k in 0..<400 {
            let s = k % series.count
            let t = Harness.at(Double(k))
            let r = Reading(series: series[s], value: Double((k * 7) % 13) / 2, timestamp: t)
            byID.ingest(r, seriesID: ids[s], now: t, into: &a)
            bySeries.ingest(r, now: t, into: &b)
            byID.tick(now: t, into: &a)
            bySeries.tick(now: t, into: &b)
        }
        #expect(a.count > 10)
        #expect(a == b)
        #expect(byID.watches(series[3]) == false)
    }
}
