import Foundation
import Testing
import VigilCore
import VigilDaemon
import VigilSimulator
import VigilTestSupport

/// The shipped config's subscriptions, which the simulator's topics must fit.
private func shippedDecoder() throws -> MessageDecoder {
    let config = try VigilConfig.load(file: Repository.root.appendingPathComponent("config/vigil.yaml").path, environment: [:])
    var limits = IngestLimits()
    limits.maxAge = nil
    return MessageDecoder(subscriptions: config.subscriptions, limits: limits)
}

private func decode(_ decoder: inout MessageDecoder, _ topicText: String, _ payload: [UInt8], at t: Timestamp) throws -> [Reading] {
    var out: [Reading] = []
    let topic = Array(topicText.utf8)
    try topic.withUnsafeBytes { tb in
        try payload.withUnsafeBytes { pb in
            try decoder.decode(topic: tb, payload: pb, receivedAt: t, into: &out)
        }
    }
    return out
}

/// 2026-06-01 10:00 in China (UTC+8): daytime, for the daily cycles.
private let t0 = Timestamp(seconds: 1_780_279_200)

@Suite("Simulator") struct SimulatorTests {
    /// Every message of every format decodes through vigil's own decoders under the shipped
    /// config, into the readings the simulator says it sent, with its send time and seq.
    @Test(arguments: SimulationFormat.allCases.filter { $0 != .hj212 }) func outputDecodes(format: SimulationFormat) throws {
        var options = SimulationOptions()
        options.format = format
        options.devices = 4
        var sim = Simulator(options: options)
        sim.begin(at: t0)
        var decoder = try shippedDecoder()
        var series = Set<String>()
        var lastSeq = 0
        for i in 0..<3000 {
            let t = t0.adding(.milliseconds(Int64(i) * 7))
            let next = sim.next(at: t)
            let m = try #require(next)
            let readings: [Reading]
            do { readings = try decode(&decoder, m.topic, m.payload, at: t.adding(.milliseconds(2))) } catch {
                Issue.record("\(m.topic) \(String(decoding: m.payload, as: UTF8.self)): \(error)")
                continue
            }
            #expect(readings.count == m.readings)
            for r in readings {
                series.insert(r.series.path)
                #expect(r.value.isFinite)
                // json and senml carry their send time, to the microsecond; number has no room.
                #expect(r.timestamp == (format == .number ? t.adding(.milliseconds(2)) : t))
            }
            if format != .number {
                let object = try JSONSerialization.jsonObject(with: Data(m.payload))
                let first = (object as? [[String: Any]])?.first ?? (object as? [String: Any])
                let seq = try #require(first?["seq"] as? Int)
                #expect(seq == lastSeq + 1)
                lastSeq = seq
            }
        }
        // Every series the simulator publishes arrives under its own name.
        #expect(series == Set(sim.series))
        // Per site: energy 2 meters and 2 feeders of 4 metrics; water 2 gauges (2), a rain
        // gauge (1) and a quality station (7); urban air (4), noise, waterlogging, tilt.
        #expect(series.count == 2 * (16 + 12 + 7))
    }

    /// HJ 212: only the monitoring stations (air, noise, water quality) send, each frame a
    /// valid frame (CRC, length) of real-time data whose MN is `{site}-{device}`, decoding
    /// into the readings the simulator says, at DataTime (whole seconds, Shanghai time).
    @Test func hj212FramesDecode() throws {
        var options = SimulationOptions()
        options.format = .hj212
        options.devices = 4
        var sim = Simulator(options: options)
        sim.begin(at: t0)
        var stations: [String: HJ212Station] = [:]
        for path in sim.series {
            let p = path.split(separator: "/").map(String.init)
            stations[Simulator.hj212Station(site: p[1], device: p[2])] = HJ212Station(network: p[0], site: p[1], device: p[2])
        }
        let decoder = HJ212Decoder(stations: stations, zone: .shanghai)
        var series = Set<String>()
        for i in 0..<600 {
            let t = t0.adding(.milliseconds(Int64(i) * 7))
            let next = sim.next(at: t)
            let m = try #require(next)
            #expect(m.topic.hasPrefix("hj212/"))
            var out: [Reading] = []
            let outcome = try m.payload.withUnsafeBytes { try decoder.decode($0, into: &out) }
            #expect(outcome.frame.wantsAnswer && outcome.frame.cn == 2011 && outcome.unknownCodes.isEmpty)
            #expect(out.count == m.readings)
            for r in out {
                series.insert(r.series.path)
                #expect(r.timestamp == Timestamp(micros: t.micros / 1_000_000 * 1_000_000))
            }
        }
        // Per site: water quality (7 metrics), urban air (4) and noise (1); no energy, no gauges.
        #expect(series.count == 2 * (7 + 4 + 1))
        #expect(series.allSatisfy { !$0.hasPrefix("energy/") })
    }

    @Test func sameSeedSameStream() {
        func stream(_ seed: UInt64) -> [[UInt8]] {
            var o = SimulationOptions()
            o.seed = seed
            var sim = Simulator(options: o)
            sim.begin(at: t0)
            return (0..<500).compactMap { sim.next(at: t0.adding(.milliseconds(Int64($0) * 10)))?.payload }
        }
        #expect(stream(7) == stream(7))
        #expect(stream(7) != stream(8))
    }

    /// What each anomaly must set off among the shipped rules, and where.
    struct Scenario: Sendable, CustomTestStringConvertible {
        var anomaly: String
        var rule: String
        /// How long the anomaly lasts.
        var duration: TimeSpan
        /// Whether the alert must also resolve within `settle` after the anomaly.
        var resolves = true
        var settle = TimeSpan.minutes(3)
        /// The simulation's hydrological speed-up (weather, rivers, roads).
        var speedUp = 1.0
        var testDescription: String { "\(anomaly) sets off \(rule)" }
    }

    static let scenarios: [Scenario] = [
        Scenario(anomaly: "voltage-sag@energy/substation-1/meter-1", rule: "voltage-low", duration: .minutes(2)),
        Scenario(anomaly: "voltage-swell@energy/substation-1/meter-1", rule: "voltage-high", duration: .minutes(2)),
        // A 10 kV feeder sags against its own class (GB/T 12325 4.2), not the meters' 220 V.
        Scenario(anomaly: "voltage-sag@energy/substation-1/feeder-1", rule: "line-voltage-low", duration: .minutes(2)),
        Scenario(anomaly: "frequency-excursion@energy/substation-1/feeder-1", rule: "frequency-high", duration: .minutes(2)),
        // A flood wave climbs at 2 m/h: an hour or so to the warning line. The hydrology runs
        // 30 times faster here, as in a demo; the shapes themselves are tested at real speed.
        Scenario(anomaly: "rising-river@water/station-01/gauge-1", rule: "river-level", duration: .minutes(6), settle: .minutes(8), speedUp: 30),
        Scenario(anomaly: "rising-river@water/station-01/gauge-1", rule: "river-rising", duration: .minutes(6), resolves: false, speedUp: 30),
        // 60 mm/h, 24 mm/h more than the drains take: a low point passes 15 cm in about 50
        // minutes. The water drains off over the next half hour: the alert outlasts the storm.
        Scenario(anomaly: "heavy-rain@urban/district-1/#", rule: "waterlogging", duration: .hours(1), resolves: false),
        // 60 mm/h for an hour: the rainstorm scale, from the gauges' running totals.
        Scenario(anomaly: "heavy-rain@water/station-01/#", rule: "rainstorm-totals", duration: .hours(1), resolves: false, settle: .minutes(1)),
        Scenario(anomaly: "smog@urban/district-1/aq-1", rule: "pm25-episode", duration: .minutes(15), settle: .minutes(20)),
        Scenario(anomaly: "silent-sensor@energy/substation-1/meter-1", rule: "energy-sensor-silent", duration: .minutes(8)),
        Scenario(anomaly: "spike@urban/district-1/noise-1", rule: "noise-burst", duration: .seconds(20)),
        Scenario(anomaly: "spike@energy/substation-2/meter-1", rule: "voltage-high", duration: .seconds(30)),
        Scenario(anomaly: "silent-sensor@water/station-02/rain-1", rule: "water-sensor-silent", duration: .minutes(20)),
        Scenario(anomaly: "counter-reset@energy/substation-1/meter-1", rule: "meter-counter-reset", duration: .seconds(5), settle: .minutes(12)),
    ]

    /// Every kind of anomaly, simulated with devices reporting each second, sets off the
    /// matching rule of the shipped packs on the devices it targets and on no others, and
    /// nothing of that rule fires before it starts. Simulated time: no sleeps.
    @Test(arguments: scenarios) func anomalyCrossesItsRule(_ s: Scenario) throws {
        let rules = try RuleFiles.load(directory: Repository.root.appendingPathComponent("config/rules.d").path)
        #expect(rules.contains { $0.id == s.rule })
        let warmup = TimeSpan.minutes(3)
        var anomaly = try #require(Anomaly(parsing: s.anomaly))
        anomaly.start = warmup
        anomaly.duration = s.duration
        var options = SimulationOptions()
        options.devices = 4
        options.seed = 11
        options.speedUp = s.speedUp
        options.anomalies = [anomaly]
        var sim = Simulator(options: options)
        sim.begin(at: t0)
        let engine = RuleEngine(rules: rules)
        var decoder = try shippedDecoder()
        var transitions: [AlertTransition] = []
        let end = warmup.micros + s.duration.micros + s.settle.micros
        let step = 1_000_000 / Int64(sim.deviceCount)  // each device once a second
        var clock: Int64 = 0
        var nextTick: Int64 = 0
        while clock <= end {
            let t = t0.adding(TimeSpan(micros: clock))
            if let m = sim.next(at: t) {
                for r in try decode(&decoder, m.topic, m.payload, at: t) { engine.ingest(r, now: t, into: &transitions) }
            }
            if clock >= nextTick {
                engine.tick(now: t, into: &transitions)
                nextTick += 1_000_000
            }
            clock += step
        }
        let start = t0.adding(warmup)
        let mine = transitions.filter { $0.rule == s.rule }
        #expect(mine.filter { $0.at < start }.isEmpty, "fired before the anomaly: \(mine.filter { $0.at < start })")
        let raised = mine.filter { $0.state == .raised }
        #expect(!raised.isEmpty, "no \(s.rule) alert; transitions: \(transitions.prefix(20))")
        for r in raised {
            let levels = [r.series.network, r.series.site, r.series.device]
            #expect(anomaly.target.matches(levels: levels), "raised off target: \(r)")
            #expect(r.at >= start && r.at <= start.adding(s.duration).adding(.minutes(1)))
            if s.resolves {
                #expect(mine.contains { $0.state == .resolved && $0.series == r.series && $0.at > r.at }, "\(r.series.path) not resolved")
            }
        }
    }
}
