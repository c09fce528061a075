import Foundation
import Testing
import VigilCore

@testable import VigilSimulator

/// 2026-06-01 00:00 in China (UTC+8).
private let midnight = Timestamp(seconds: 1_780_243_200)

/// Every device of a simulation computed each `step` for `days`, as (device, time, values).
private func run(_ networks: [String], days: Double, step: Double = 60, seed: UInt64 = 3, each: (SimDevice, Double, [Double]) -> Void) {
    var o = SimulationOptions()
    o.networks = networks
    o.devices = 4
    o.seed = seed
    var sim = Simulator(options: o)
    sim.begin(at: midnight)
    var t = midnight.seconds
    while t < midnight.seconds + days * 86_400 {
        for i in sim.devices.indices {
            sim.compute(i, Timestamp(secondsValue: t)!)
            each(sim.devices[i], t, sim.devices[i].lastValues)
        }
        t += step
    }
}

private func leq(_ levels: [Double]) -> Double { 10 * log10(levels.map { pow(10, $0 / 10) }.reduce(0, +) / Double(levels.count)) }

/// The shapes the rules are judged on, at real speed (the review found rain of 45 mm a day
/// never over 25 mm/h, roads flooding in any shower, rivers swinging metres a day, no night
/// noise over the limit, PM10 fixed at 1.7 PM2.5).
@Suite("Simulator shapes")
struct ShapeTests {
    /// A year of rain: about 1,400 mm as events, mostly light, a few storms of 30 to 80
    /// mm/h; the roads flood only when the rain is more than the drains take, and the river
    /// answers over hours.
    @Test func rainRoadsAndRivers() {
        var w = SiteWeather()
        var rng = SeededRandom(seed: 5)
        var total = 0.0
        var rainingMinutes = 0
        var lightMinutes = 0
        var peak = 0.0
        var depth = 0.0
        var floods = 0
        var wasFlooded = false
        var heaviestRecent = 0.0  // the most intense minute of the last two hours
        var recent: [Double] = []
        var riseRates: [Double] = []
        var lastRise = 0.0
        var t = 1_000_000.0
        for minute in 0..<(365 * 1440) {
            t += 60
            w.advance(to: t, &rng)
            total += w.intensity / 60
            if w.intensity > 0 {
                rainingMinutes += 1
                if w.intensity < 5 { lightMinutes += 1 }
            }
            peak = max(peak, w.intensity)
            recent.append(w.intensity)
            if recent.count > 120 { recent.removeFirst() }
            heaviestRecent = recent.max()!
            depth = w.roadDepth(depth, dt: 60)
            if depth > 15 && !wasFlooded {
                floods += 1
                #expect(heaviestRecent > SiteWeather.drainage, "a road flooded in rain of \(heaviestRecent) mm/h")
            }
            wasFlooded = depth > 15
            if minute % 60 == 0 {
                riseRates.append(w.riverRise - lastRise)
                lastRise = w.riverRise
            }
        }
        #expect((900...2_200).contains(total), "\(total) mm in a year")
        #expect(Double(lightMinutes) / Double(rainingMinutes) > 0.6, "mostly light rain")
        #expect((30...130).contains(peak), "the heaviest minute: \(peak) mm/h")
        #expect(floods >= 1 && floods < 20, "\(floods) floods in a year")
        // The stage moves by centimetres an hour, at most about a metre in a storm's hour.
        let sorted = riseRates.sorted()
        print("simulated year: \(Int(total)) mm, light \(Double(lightMinutes) / Double(rainingMinutes)), peak \(peak) mm/h, \(floods) floods, river rise per hour median \(sorted[sorted.count / 2]) max \(sorted.last!)")
        #expect(sorted[sorted.count / 2] < 0.01 && sorted.last! < 1.0, "river rise per hour: median \(sorted[sorted.count / 2]), max \(sorted.last!)")
    }

    /// The grid has one frequency; feeders run at 10 kV with hundreds of amperes, meters
    /// at 220 V with a household's current.
    @Test func energy() {
        var frequencies: [Double: [Double]] = [:]
        run(["energy"], days: 1) { d, t, v in
            switch d.kind {
            case .feeder:
                #expect((9.9...10.7).contains(v[0]), "line voltage \(v[0]) kV")
                #expect((10...450).contains(v[1]), "feeder current \(v[1]) A")
                #expect((100...7_500).contains(v[2]), "feeder power \(v[2]) kW")
                frequencies[t, default: []].append(v[3])
            case .meter:
                #expect((205...232).contains(v[0]), "meter voltage \(v[0]) V")
                #expect((0.3...50).contains(v[1]), "meter current \(v[1]) A")
            default: break
            }
        }
        for (_, f) in frequencies { #expect(f.max()! - f.min()! < 0.02, "one grid, one frequency: \(f)") }
        #expect(frequencies.values.flatMap { $0 }.allSatisfy { abs($0 - 50) < 0.2 })
    }

    /// A trunk road: the day's hours within 70 dB(A), the night's mostly over 55.
    @Test func roadNoiseByDayAndNight() {
        var hours: [Int: [Double]] = [:]
        run(["urban"], days: 2, step: 10) { d, t, v in
            guard d.kind == .noise, d.site == "district-1" else { return }
            hours[Int((t - midnight.seconds) / 3600), default: []].append(v[0])
        }
        let byHour = hours.mapValues(leq)
        let day = byHour.filter { (6..<22).contains($0.key % 24) }.values
        let night = byHour.filter { !(6..<22).contains($0.key % 24) }.values
        #expect(day.allSatisfy { (62...70).contains($0) }, "day hours: \(day.sorted())")
        #expect(night.filter { $0 > 55 }.count * 4 >= night.count * 3, "night hours: \(night.sorted())")
    }

    /// PM10 is not PM2.5 times a constant; O3 peaks in the afternoon.
    @Test func airHasItsOwnShapes() {
        var ratios: [Double] = []
        var o3ByHour: [Int: [Double]] = [:]
        run(["urban"], days: 3, step: 300) { d, t, v in
            guard d.kind == .air else { return }
            ratios.append(v[0] / v[1])
            o3ByHour[Int((t - midnight.seconds) / 3600) % 24, default: []].append(v[3])
        }
        let mean = ratios.reduce(0, +) / Double(ratios.count)
        let sd = (ratios.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(ratios.count)).squareRoot()
        #expect((0.3...0.8).contains(mean) && sd > 0.04, "PM2.5/PM10 \(mean) +- \(sd)")
        let o3 = o3ByHour.mapValues { $0.reduce(0, +) / Double($0.count) }
        let peakHour = o3.max { $0.value < $1.value }!.key
        #expect((12...17).contains(peakHour) && o3[3]! < o3[peakHour]! / 2, "O3 by hour: \(o3.sorted { $0.key < $1.key })")
    }

    /// Gauges send running totals in 0.5 mm steps.
    @Test func rainGaugesSendRunningTotals() {
        var previous: [String: Double] = [:]
        run(["water"], days: 20, step: 600) { d, _, v in
            guard d.kind == .rain else { return }
            let key = d.site
            if let p = previous[key] { #expect(v[0] >= p) }
            #expect((v[0] * 2).rounded() == v[0] * 2)
            previous[key] = v[0]
        }
        #expect(previous.count == 2)
    }
}
