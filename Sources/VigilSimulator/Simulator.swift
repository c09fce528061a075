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
}

/// One message to publish.
public struct SimulatedMessage: Sendable {
    public var topic: String
    public var payload: [UInt8]
    public var readings: Int
}

/// Realistic streams for the three networks: daily load curves with noise for feeder
/// voltage, current and power, frequency around 50 Hz; river stage that follows rainfall
/// with a lag, rain in storms, pH, turbidity and dissolved oxygen; PM2.5, PM10 and NO2 with
/// a daily cycle, road noise by day and night, waterlogging in storms, structural tilt.
///
/// Deterministic for a seed and a sequence of times. Each message carries a sequence number
/// and its send time (except in the `number` format, which has no room for them).
public struct Simulator {
    public private(set) var options: SimulationOptions
    var devices: [SimDevice] = []
    var weather: [String: SiteWeather] = [:]
    var rng: SeededRandom
    /// Next device (or, in the number format, device and metric) to publish.
    var cursor = 0
    var metricCursor = 0
    public private(set) var sequence = 0

    /// Sets the anomalies' clock: their start times count from `origin`.
    public mutating func begin(at origin: Timestamp) {
        for i in options.anomalies.indices { options.anomalies[i].origin = origin }
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
                        sigmas = [(0.6, 120), (0.05, 600), (0, 1), (0, 1)]
                        rated = rng.uniform(5...15)
                        counter = rng.uniform(1_000...50_000).rounded()  // a meter in service for years
                    case .feeder:
                        sigmas = [(0.8, 120), (0.05, 900), (0, 1), (0.02, 30)]
                        rated = rng.uniform(800...2500)
                    case .gauge:
                        sigmas = [(0.02, 900), (0.5, 300)]
                        base = rng.uniform(2.0...3.2)
                    case .rain: sigmas = [(0, 1)]
                    case .quality: sigmas = [(0.05, 1800), (0.8, 900), (0.15, 1200)]
                    case .air: sigmas = [(8, 1800), (5, 900), (5, 900)]
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
        for d in devices {
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
        d.lastTime = t
        let h = hourOfDay(t, offsetHours: options.utcOffsetHours)
        let key = "\(d.network)/\(d.site)"
        var w = weather[key] ?? SiteWeather()
        w.advance(to: t, &rng)
        let heavyRain = anomalyStrength(.heavyRain, d, ts)
        if heavyRain > 0 {
            w.raining = true
            w.intensity = max(w.intensity, 60 * heavyRain)
            w.nextChange = max(w.nextChange, t + 60)
        }
        weather[key] = w
        let n = d.wander.indices.map { d.wander[$0].step(dt: dt, &rng) }
        var values: [Double]
        switch d.kind {
        case .meter, .feeder:
            let load = max(0.05, min(1.25, 0.25 + 0.3 * peak(h, at: 8, width: 2) + 0.55 * peak(h, at: 19.5, width: 2.5) + n[1]))
            let power = d.rated * load
            var voltage = 220 * (1.03 - 0.05 * load) + n[0]
            voltage *= 1 - 0.2 * anomalyStrength(.voltageSag, d, ts) + 0.12 * anomalyStrength(.voltageSwell, d, ts)
            let current = power * 1000 / voltage
            if d.kind == .meter {
                d.counter += power * dt / 3600
                if anomalyStrength(.counterReset, d, ts) > 0 && d.counter > 1 { d.counter = 0 }
                values = [voltage, current, power, d.counter]
            } else {
                let frequency = 50 + n[3] + 0.45 * anomalyStrength(.frequencyExcursion, d, ts)
                values = [voltage, current, power, frequency]
            }
        case .gauge:
            let rising = anomalyStrength(.risingRiver, d, ts)
            let level = d.base + 0.12 * w.runoff + n[0] + 4.0 * rising
            let flow = max(0.1, 8 + 35 * pow(max(0, level - d.base + 0.3), 1.5) + n[1])
            values = [level, flow]
        case .rain:
            values = [max(0, w.intensity * dt / 3600)]
        case .quality:
            let ph = 7.4 + 0.25 * sin((h - 9) / 24 * 2 * .pi) + n[0]
            let turbidity = max(0.2, 4 + 1.5 * w.runoff + n[1])
            let oxygen = max(0, 7.2 + 1.4 * peak(h, at: 15, width: 4) - 1.1 * peak(h, at: 5, width: 3) + n[2])
            values = [ph, turbidity, oxygen]
        case .air:
            let smog = 1 + 4 * anomalyStrength(.smog, d, ts)
            let pm25 = max(3, (28 + 22 * peak(h, at: 8, width: 2) + 30 * peak(h, at: 20, width: 3) + n[0]) * smog)
            let pm10 = max(5, pm25 * 1.7 + n[1])
            let no2 = max(2, 22 + 28 * peak(h, at: 8, width: 1.5) + 24 * peak(h, at: 18, width: 2) + n[2])
            values = [pm25, pm10, no2]
        case .noise:
            let day = 1 / (1 + exp(-(h - 6) * 2)) - 1 / (1 + exp(-(h - 22) * 2))
            values = [49 + 15 * day + n[0]]
        case .waterlogging:
            let previous = d.lastValues.first ?? 0
            let inflow = max(0, w.intensity - 12) * 0.6
            let depth = max(0, previous * exp(-dt / 1800) + inflow * dt / 60 + (previous > 0 ? n[0] * 0.1 : 0))
            values = [min(depth, 80)]
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

    /// How strongly an anomaly of `kind` acts on a device at `t` (0: not at all, ramping to 1).
    func anomalyStrength(_ kind: Anomaly.Kind, _ d: SimDevice, _ t: Timestamp) -> Double {
        var s = 0.0
        for a in options.anomalies where a.kind == kind && a.applies(to: d.network, d.site, d.name) {
            s = max(s, a.strength(at: t))
        }
        return s
    }

    // MARK: Payloads

    static func number(_ v: Double) -> String {
        let r = (v * 1000).rounded() / 1000
        if r == r.rounded(), abs(r) < 1e15 { return String(Int64(r)) }
        return "\(r)"
    }

    func numberMessage(_ i: Int, metric m: Int) -> SimulatedMessage {
        let d = devices[i]
        let (metric, _) = d.kind.metrics[m]
        return SimulatedMessage(
            topic: "\(Self.topicPrefix(d.network))/\(d.site)/\(d.name)/\(metric)",
            payload: Array(Self.number(d.lastValues[m]).utf8), readings: 1)
    }

    func jsonMessage(_ i: Int, _ t: Timestamp) -> SimulatedMessage {
        let d = devices[i]
        var s = "{\"ts\":\(t.secondsString),\"seq\":\(sequence)"
        for (k, (metric, _)) in d.kind.metrics.enumerated() {
            s += ",\"\(metric)\":\(Self.number(d.lastValues[k]))"
        }
        s += "}"
        return SimulatedMessage(
            topic: "\(Self.topicPrefix(d.network))/\(d.site)/\(d.name)", payload: Array(s.utf8),
            readings: d.kind.metrics.count)
    }

    func senmlMessage(_ i: Int, _ t: Timestamp) -> SimulatedMessage {
        let d = devices[i]
        var s = "["
        for (k, (metric, unit)) in d.kind.metrics.enumerated() {
            if k == 0 {
                s += "{\"bn\":\"urn:dev:\(d.name):\",\"bt\":\(t.secondsString),\"seq\":\(sequence),"
            } else {
                s += ",{"
            }
            s += "\"n\":\"\(metric)\",\"u\":\"\(unit)\",\"v\":\(Self.number(d.lastValues[k]))}"
        }
        s += "]"
        return SimulatedMessage(
            topic: "\(Self.topicPrefix(d.network))/\(d.site)/\(d.name)/senml", payload: Array(s.utf8),
            readings: d.kind.metrics.count)
    }
}
