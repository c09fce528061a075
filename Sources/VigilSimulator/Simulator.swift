import Foundation
import VigilCore

/// How the simulator writes its messages.
public enum SimulationFormat: String, Sendable, CaseIterable {
    /// `{net}/{site}/{device}/{metric}` with a bare number: no sequence number, no timestamp.
    case number
    /// `{net}/{site}/{device}` with one JSON object per device: `{"ts":..,"seq":..,"voltage":..}`.
    case json
    /// `{net}/{site}/{device}/senml` with one SenML pack per device.
    case senml
    /// energy and water as json, urban as senml (the SPEC's example layout).
    case mixed
    /// HJ 212-2017 real-time data frames (CN=2011) from the stations that speak it (urban air
    /// and noise, water quality), on `hj212/{site}/{device}` or over TCP; MN `{site}-{device}`.
    case hj212
}

public struct SimulationOptions: Sendable {
    public var networks = ["energy", "water", "urban"]
    public var sites = 2
    /// Devices per site and network.
    public var devices = 3
    public var format = SimulationFormat.mixed
    public var seed: UInt64 = 1
    /// Hours east of UTC of the gateway's local time, for daily cycles (China: 8).
    public var utcOffsetHours = 8.0
    /// How many times faster than the clock the weather, the rivers and the roads run
    /// (1: real time). A demo of a minute needs a flood of hours to happen in seconds;
    /// readings keep the true time, and the electrical, air and noise shapes do too.
    public var speedUp = 1.0
    public var anomalies: [Anomaly] = []

    public init() {}
}

/// A device being simulated.
struct SimDevice {
    let network: String
    let site: String
    let name: String
    let kind: DeviceKind
    var wander: [Wander]
    var rated: Double
    var base: Double
    var counter = 0.0
    var lastTime = 0.0
    var lastValues: [Double] = []
    /// A flood wave's share of the river stage (rising-river), m.
    var flood = 0.0
    /// Rain in the tipping bucket that has not tipped yet, mm.
    var bucket = 0.0
    /// Until when a night-time truck passes the noise sensor.
    var burstUntil = 0.0
    var burstLevel = 0.0
}

/// A dust episode at a site: coarse dust for hours, about once a month.
struct DustEpisode: Sendable {
    var start = 0.0
    var end = 0.0
    var factor = 1.0
}

/// One message to publish.
public struct SimulatedMessage: Sendable {
    public var topic: String
    public var payload: [UInt8]
    public var readings: Int
}

/// Realistic streams for the three networks: single-phase meters at 220 V and 10 kV feeders
/// carrying megawatts on daily load curves, one grid frequency around 50 Hz; rain as events
/// (mostly light, now and then a storm) counted by tipping buckets into running totals, river
/// stages that answer rain over hours, pH, turbidity, dissolved oxygen and the nutrients;
/// PM2.5, PM10, NO2 and O3 with their own daily shapes, haze over days and dust now and
/// then, road noise by day and night (nights over the limit, trucks), roads that flood when
/// the rain is more than the drains take, structural tilt.
///
/// Deterministic for a seed and a sequence of times. Each message carries a sequence number
/// and its send time (except in the `number` format, which has no room for them).
public struct Simulator {
    public private(set) var options: SimulationOptions
    var devices: [SimDevice] = []
    var weather: [String: SiteWeather] = [:]
    /// The grid's frequency, one for the whole network, and when it was last moved.
    var grid = Wander(sigma: 0.03, tau: 60)
    var gridTime = 0.0
    /// Haze over days, per site (a factor on the pollutants), and when it was last moved.
    var haze: [String: (Wander, Double)] = [:]
    var dust: [String: DustEpisode] = [:]
    /// Where the hydrological clock starts (the first time seen).
    var origin: Double?
    var rng: SeededRandom
    /// Next device (or, in the number format, device and metric) to publish.
    var cursor = 0
    var metricCursor = 0
    public private(set) var sequence = 0

    /// Sets the anomalies' clock: their start times count from `origin`.
    public mutating func begin(at origin: Timestamp) {
        for i in options.anomalies.indices { options.anomalies[i].origin = origin }
        self.origin = origin.seconds
    }

    /// The hydrological clock at wall-clock second `t`.
    func hydroTime(_ t: Double) -> Double {
        let o = origin ?? t
        return o + (t - o) * options.speedUp
    }

    public init(options: SimulationOptions) {
        self.options = options
        rng = SeededRandom(seed: options.seed)
        for network in options.networks {
            let kinds = DeviceKind.kinds(of: network)
            guard !kinds.isEmpty else { continue }
            for s in 0..<options.sites {
                let site = Self.siteName(network, s)
                for d in 0..<options.devices {
                    let kind = kinds[d % kinds.count]
                    let name = "\(kind.prefix)-\(d / kinds.count + 1)"
                    let sigmas: [(Double, Double)]
                    var rated = 0.0
                    var base = 0.0
                    var counter = 0.0
                    switch kind {
                    case .meter:
                        // A household or a shop: 2 to 8 kW at its peak.
                        sigmas = [(0.6, 120), (0.05, 600), (0, 1), (0, 1)]
                        rated = rng.uniform(2...8)
                        counter = rng.uniform(1_000...50_000).rounded()  // a meter in service for years
                    case .feeder:
                        // A 10 kV feeder of 2 to 6 MW: 100 to 400 A.
                        sigmas = [(0.02, 120), (0.05, 900), (0, 1), (0.002, 5)]
                        rated = rng.uniform(2_000...6_000)
                    case .gauge:
                        sigmas = [(0.02, 900), (0.5, 300)]
                        base = rng.uniform(2.0...3.2)
                    case .rain:
                        sigmas = [(0, 1)]
                        counter = (rng.uniform(0...2_000) * 2).rounded() / 2  // the total since the gauge was set
                    case .quality: sigmas = [(0.05, 1800), (0.8, 900), (0.15, 1200), (0.3, 3600), (1.2, 3600), (0.05, 3600), (0.012, 3600)]
                    case .air: sigmas = [(8, 1800), (5, 900), (5, 900), (8, 1800), (0.25, 172_800)]
                    case .noise: sigmas = [(2.5, 60)]
                    case .waterlogging: sigmas = [(0.3, 300)]
                    case .tilt:
                        sigmas = [(0.01, 3600)]
                        base = rng.uniform(0.02...0.2)
                    }
                    devices.append(
                        SimDevice(
                            network: network, site: site, name: name, kind: kind,
                            wander: sigmas.map { Wander(sigma: $0.0, tau: $0.1) }, rated: rated, base: base, counter: counter))
                }
            }
        }
    }

    static func siteName(_ network: String, _ i: Int) -> String {
        switch network {
        case "energy": return "substation-\(i + 1)"
        case "water": return "station-\(String(format: "%02d", i + 1))"
        case "urban": return "district-\(i + 1)"
        default: return "site-\(i + 1)"
        }
    }

    static func topicPrefix(_ network: String) -> String { network == "urban" ? "city" : network }

    /// The series this simulation publishes.
    public var series: [String] {
        devices.flatMap { d in d.kind.metrics.map { "\(d.network)/\(d.site)/\(d.name)/\($0.0)" } }
    }

    public var deviceCount: Int { devices.count }

    func format(for network: String) -> SimulationFormat {
        if options.format != .mixed { return options.format }
        return network == "urban" ? .senml : .json
    }

    /// Readings per message on average, to turn a readings rate into a message rate.
    public var readingsPerMessage: Double {
        guard !devices.isEmpty else { return 1 }
        var readings = 0
        var messages = 0
        for d in devices where options.format != .hj212 || d.kind.speaksHJ212 {
            readings += d.kind.metrics.count
            messages += format(for: d.network) == .number ? d.kind.metrics.count : 1
        }
        return Double(readings) / Double(messages)
    }

    /// The next message, for send time `t`; nil when every device is silenced by an anomaly.
    public mutating func next(at t: Timestamp) -> SimulatedMessage? {
        guard !devices.isEmpty else { return nil }
        for _ in 0..<devices.count {
            let i = cursor
            let fmt = format(for: devices[i].network)
            if fmt == .hj212 {
                cursor = (cursor + 1) % devices.count
                if !devices[i].kind.speaksHJ212 || isSilenced(i, t) { continue }
                compute(i, t)
                sequence += 1
                return hj212Message(i, t)
            }
            if fmt == .number {
                if metricCursor == 0 { compute(i, t) }
                let m = metricCursor
                metricCursor += 1
                if metricCursor >= devices[i].kind.metrics.count {
                    metricCursor = 0
                    cursor = (cursor + 1) % devices.count
                }
                if isSilenced(i, t) { continue }
                sequence += 1
                return numberMessage(i, metric: m)
            }
            cursor = (cursor + 1) % devices.count
            if isSilenced(i, t) { continue }
            compute(i, t)
            sequence += 1
            return fmt == .senml ? senmlMessage(i, t) : jsonMessage(i, t)
        }
        return nil
    }

    func isSilenced(_ i: Int, _ t: Timestamp) -> Bool {
        let d = devices[i]
        return options.anomalies.contains { $0.kind == .silentSensor && $0.active(at: t) && $0.applies(to: d.network, d.site, d.name) }
    }

    /// Advances device `i` to time `t` and computes its values.
    mutating func compute(_ i: Int, _ ts: Timestamp) {
        let t = ts.seconds
        var d = devices[i]
        let dt = d.lastTime == 0 ? 1 : max(0.001, t - d.lastTime)
        let dth = dt * options.speedUp
        d.lastTime = t
        let h = hourOfDay(t, offsetHours: options.utcOffsetHours)
        let key = "\(d.network)/\(d.site)"
        let ht = hydroTime(t)
        var w = weather[key] ?? SiteWeather()
        w.advance(to: ht, &rng)
        let heavyRain = anomalyStrength(.heavyRain, d, ts)
        if heavyRain > 0 {
            w.raining = true
            w.level = max(w.level, 60 * heavyRain)
            w.intensity = max(w.intensity, 60 * heavyRain)
            w.nextChange = max(w.nextChange, ht + 60)
        }
        weather[key] = w
        let n = d.wander.indices.map { d.wander[$0].step(dt: dt, &rng) }
        var values: [Double]
        switch d.kind {
        case .meter, .feeder:
            let load = max(0.05, min(1.25, 0.25 + 0.3 * peak(h, at: 8, width: 2) + 0.55 * peak(h, at: 19.5, width: 2.5) + n[1]))
            let power = d.rated * load
            let supply = 1 - 0.2 * anomalyStrength(.voltageSag, d, ts) + 0.12 * anomalyStrength(.voltageSwell, d, ts)
            if d.kind == .meter {
                let voltage = (220 * (1.03 - 0.05 * load) + n[0]) * supply
                let current = power * 1000 / (voltage * 0.95)
                d.counter += power * dt / 3600
                if anomalyStrength(.counterReset, d, ts) > 0 && d.counter > 1 { d.counter = 0 }
                values = [voltage, current, power, d.counter]
            } else {
                // The substation's 10 kV bus, regulated a little above nominal, sagging with load.
                let lineVoltage = (10.5 - 0.3 * load + n[0]) * supply
                let current = power / (3.0.squareRoot() * lineVoltage * 0.95)
                values = [lineVoltage, current, power, gridFrequency(t) + n[3] + 0.45 * anomalyStrength(.frequencyExcursion, d, ts)]
            }
        case .gauge:
            // A flood wave from upstream climbs at most 2 m an hour, falls at 1 m an hour.
            let target = anomalyStrength(.risingRiver, d, ts) > 0 ? 4.0 : 0
            d.flood = target > d.flood ? min(target, d.flood + 2 * dth / 3600) : max(target, d.flood - dth / 3600)
            let level = d.base + w.riverRise + n[0] + d.flood
            let flow = max(0.1, 8 + 35 * pow(max(0, level - d.base + 0.3), 1.5) + n[1])
            values = [level, flow]
        case .rain:
            d.bucket += w.intensity * dth / 3600
            while d.bucket >= 0.5 {  // a 0.5 mm tipping bucket
                d.bucket -= 0.5
                d.counter += 0.5
            }
            values = [d.counter]
        case .quality:
            let c = w.catchment  // runoff brings silt, organic matter and nutrients
            let ph = 7.4 + 0.25 * sin((h - 9) / 24 * 2 * .pi) + n[0]
            let turbidity = max(0.2, 4 + 0.3 * c + n[1])
            let oxygen = max(0, 7.2 + 1.4 * peak(h, at: 15, width: 4) - 1.1 * peak(h, at: 5, width: 3) - 0.02 * c + n[2])
            values = [
                ph, turbidity, oxygen, max(0.5, 3.2 + 0.04 * c + n[3]), max(2, 13 + 0.15 * c + n[4]),
                max(0.02, 0.35 + 0.005 * c + n[5]), max(0.005, 0.08 + 0.002 * c + n[6]),
            ]
        case .air:
            values = air(&d, site: key, t: t, h: h, n: n, ts: ts)
        case .noise:
            let day = 1 / (1 + exp(-(h - 6) * 2)) - 1 / (1 + exp(-(h - 22) * 2))
            // Night traffic keeps a trunk road near 57 dB(A), over class 4a's 55; now and
            // then a truck passes.
            if day < 0.5, t >= d.burstUntil, rng.uniform(0...1) < dt / 900 {
                d.burstUntil = t + rng.uniform(3...8)
                d.burstLevel = rng.uniform(12...20)
            }
            values = [57 + 10 * day + n[0] + (t < d.burstUntil ? d.burstLevel : 0)]
        case .waterlogging:
            let previous = d.lastValues.first ?? 0
            let depth = w.roadDepth(previous, dt: dth)
            values = [min(depth > 0 ? max(0, depth + n[0] * 0.05) : 0, 80)]
        case .tilt:
            values = [d.base + n[0]]
        }
        if anomalyStrength(.spike, d, ts) > 0, !values.isEmpty {
            // Decibels add: a pile driver or a horn at the sensor, not a reading of 600 dB.
            if d.kind == .noise { values[0] += 45 } else { values[0] *= 10 }
        }
        d.lastValues = values
        devices[i] = d
    }

    /// The grid's frequency at `t`: one for every feeder of the network.
    mutating func gridFrequency(_ t: Double) -> Double {
        if t > gridTime {
            _ = grid.step(dt: gridTime == 0 ? 1 : t - gridTime, &rng)
            gridTime = t
        }
        return 50 + grid.value
    }

    /// PM2.5, PM10, NO2 and O3. Haze builds and clears over days (a factor on the fine
    /// particles and NO2); PM10 adds coarse dust from traffic and building sites by day,
    /// and dust episodes of hours; O3 follows the sun, peaking in the afternoon, less where
    /// traffic's NO titrates it in the morning rush.
    mutating func air(_ d: inout SimDevice, site: String, t: Double, h: Double, n: [Double], ts: Timestamp) -> [Double] {
        var (hz, last) = haze[site] ?? (Wander(sigma: 0.45, tau: 3 * 86_400), 0)
        if t > last {
            _ = hz.step(dt: last == 0 ? 1 : t - last, &rng)
            last = t
        }
        self.haze[site] = (hz, last)
        let haze = exp(hz.value)
        var ep = dust[site] ?? DustEpisode(start: t + -log(max(1e-9, rng.uniform(0...1))) * 30 * 86_400, end: 0, factor: 1)
        if t >= ep.start && ep.end == 0 {
            ep.end = t + rng.uniform(6...18) * 3600
            ep.factor = rng.uniform(4...8)
        }
        if ep.end != 0 && t >= ep.end {
            ep = DustEpisode(start: t + -log(max(1e-9, rng.uniform(0...1))) * 30 * 86_400, end: 0, factor: 1)
        }
        dust[site] = ep
        let dustFactor = ep.end != 0 ? ep.factor : 1
        let smog = 1 + 4 * anomalyStrength(.smog, d, ts)
        let pm25 = max(3, (22 + 18 * peak(h, at: 8, width: 2) + 25 * peak(h, at: 20, width: 3) + n[0]) * haze * smog)
            * (1 + 0.12 * (dustFactor - 1))
        let coarse = max(3, 18 + 22 * peak(h, at: 10, width: 3) + n[1])
        let pm10 = pm25 * 1.1 + coarse * dustFactor
        let no2 = max(2, (22 + 28 * peak(h, at: 8, width: 1.5) + 24 * peak(h, at: 18, width: 2) + n[2]) * haze.squareRoot())
        let sun = h > 7 && h < 20 ? pow(sin(.pi * (h - 7) / 13), 1.3) : 0
        let o3 = max(4, 18 + 120 * sun * exp(n[4]) - 15 * peak(h, at: 8, width: 1.5) + n[3])
        return [pm25, pm10, no2, o3]
    }

    /// How strongly an anomaly of `kind` acts on a device at `t` (0: not at all, ramping to 1).
    func anomalyStrength(_ kind: Anomaly.Kind, _ d: SimDevice, _ t: Timestamp) -> Double {
        var s = 0.0
        for a in options.anomalies where a.kind == kind && a.applies(to: d.network, d.site, d.name) {
            s = max(s, a.strength(at: t))
        }
        return s
    }
}
