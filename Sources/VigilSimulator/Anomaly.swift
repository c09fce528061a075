import VigilCore

/// A disturbance on demand: `KIND[@TARGET][:START[+DURATION]]`.
///
/// `TARGET` is an MQTT-style filter over `network/site/device` (default `#`: every device
/// the kind applies to); `START` counts from the start of the simulation (default 0) and
/// `DURATION` defaults to 60s. `voltage-sag@energy/substation-1/meter-1:10s+30s`.
public struct Anomaly: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        case voltageSag = "voltage-sag"
        case voltageSwell = "voltage-swell"
        case frequencyExcursion = "frequency-excursion"
        case risingRiver = "rising-river"
        case heavyRain = "heavy-rain"
        case smog
        case silentSensor = "silent-sensor"
        case spike
        case counterReset = "counter-reset"

        /// What it does, for `vigil simulate --help`.
        public var summary: String {
            switch self {
            case .voltageSag: return "supply voltage drops about 20 % (energy meters and feeders)"
            case .voltageSwell: return "supply voltage rises about 12 % (energy meters and feeders)"
            case .frequencyExcursion:
                return "the feeders targeted run islanded at about 50.45 Hz (default: the whole grid, whose frequency is one)"
            case .risingRiver: return "a flood wave: the stage climbs up to 4 m at 2 m/h, and falls back at 1 m/h after (water gauges)"
            case .heavyRain:
                return "a storm of 60 mm/h (rain gauges, river catchments, roads: a road floods with what its drains cannot take)"
            case .smog: return "PM2.5 about five times its usual level (urban air)"
            case .silentSensor: return "the devices stop publishing"
            case .spike: return "the first metric reads ten times its value (noise: 45 dB(A) louder)"
            case .counterReset: return "energy meters' kWh counters reset to 0"
            }
        }
    }

    public var kind: Kind
    public var target: TopicFilter
    public var start: TimeSpan
    public var duration: TimeSpan
    /// The wall-clock start of the simulation, set when it begins.
    public var origin = Timestamp(micros: 0)

    public init(kind: Kind, target: TopicFilter, start: TimeSpan, duration: TimeSpan) {
        self.kind = kind
        self.target = target
        self.start = start
        self.duration = duration
    }

    /// Parses `KIND[@TARGET][:START[+DURATION]]`.
    public init?(parsing text: String) {
        var rest = Substring(text)
        var timing: Substring = ""
        if let colon = rest.firstIndex(of: ":") {
            timing = rest[rest.index(after: colon)...]
            rest = rest[..<colon]
        }
        var targetText = "#"
        if let at = rest.firstIndex(of: "@") {
            targetText = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
        }
        guard let kind = Kind(rawValue: String(rest)), case .success(let target) = TopicFilter.parse(targetText) else {
            return nil
        }
        var start = TimeSpan.zero
        var duration = TimeSpan.seconds(60)
        if !timing.isEmpty {
            let parts = timing.split(separator: "+", maxSplits: 1)
            guard let s = TimeSpan(parsing: String(parts[0])) else { return nil }
            start = s
            if parts.count == 2 {
                guard let d = TimeSpan(parsing: String(parts[1])), d.micros > 0 else { return nil }
                duration = d
            }
        }
        self.init(kind: kind, target: target, start: start, duration: duration)
    }

    public var description: String { "\(kind.rawValue)@\(target.text):\(start)+\(duration)" }

    func applies(to network: String, _ site: String, _ device: String) -> Bool {
        target.matches(levels: [network, site, device])
    }

    func active(at t: Timestamp) -> Bool {
        let s = origin.adding(start)
        return t >= s && t < s.adding(duration)
    }

    /// 0 outside the anomaly; inside, ramps up over its first fifth (at most 5 s), holds at 1
    /// and stops at the end. (A rising river's flood wave moves at its own pace.)
    func strength(at t: Timestamp) -> Double {
        guard active(at: t) else { return 0 }
        let elapsed = Double(t.micros - origin.adding(start).micros) / 1e6
        let ramp = min(5, duration.seconds / 5)
        return ramp <= 0 ? 1 : min(1, elapsed / ramp)
    }
}

