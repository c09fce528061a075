import Foundation
import VigilCore

/// A small, fast, seedable generator (SplitMix64), so a simulation is the same with the same `--seed`.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A standard normal sample (Box-Muller).
    public mutating func gaussian() -> Double {
        let u1 = max(Double.leastNonzeroMagnitude, Double.random(in: 0..<1, using: &self))
        let u2 = Double.random(in: 0..<1, using: &self)
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    public mutating func uniform(_ r: ClosedRange<Double>) -> Double { Double.random(in: r, using: &self) }
}

/// Noise that wanders instead of jumping: a first-order autoregressive process.
struct Wander: Sendable {
    var value = 0.0
    let sigma: Double
    let keep: Double

    /// - Parameters:
    ///   - sigma: the long-run standard deviation.
    ///   - tau: seconds for the process to forget (its correlation time).
    init(sigma: Double, tau: Double) {
        self.sigma = sigma
        self.keep = tau
    }

    mutating func step(dt: Double, _ rng: inout SeededRandom) -> Double {
        let a = exp(-max(dt, 0.001) / keep)
        value = a * value + sigma * (1 - a * a).squareRoot() * rng.gaussian()
        return value
    }
}

/// What kind of sensor a device is, which fixes its metrics and how they move.
public enum DeviceKind: String, Sendable, CaseIterable {
    // energy
    case meter, feeder
    // water
    case gauge, rain, quality
    // urban
    case air, noise, waterlogging, tilt

    public var network: String {
        switch self {
        case .meter, .feeder: return "energy"
        case .gauge, .rain, .quality: return "water"
        case .air, .noise, .waterlogging, .tilt: return "urban"
        }
    }

    /// The metrics and their units.
    public var metrics: [(String, String)] {
        switch self {
        // A single-phase meter: phase-to-neutral voltage, 220 V.
        case .meter: return [("voltage", "V"), ("current", "A"), ("power", "kW"), ("energy", "kWh")]
        // A 10 kV feeder: phase-to-phase line voltage in kV, and the grid's frequency.
        case .feeder: return [("line_voltage", "kV"), ("current", "A"), ("power", "kW"), ("frequency", "Hz")]
        case .gauge: return [("water_level", "m"), ("flow", "m3/s")]
        // A tipping-bucket gauge reporting its running total (SL 651-2014).
        case .rain: return [("rainfall_total", "mm")]
        case .quality:
            return [
                ("ph", "pH"), ("turbidity", "NTU"), ("dissolved_oxygen", "mg/L"), ("codmn", "mg/L"), ("cod", "mg/L"),
                ("nh3_n", "mg/L"), ("tp", "mg/L"),
            ]
        case .air: return [("pm25", "ug/m3"), ("pm10", "ug/m3"), ("no2", "ug/m3"), ("o3", "ug/m3")]
        case .noise: return [("noise", "dBA")]
        case .waterlogging: return [("water_depth", "cm")]
        case .tilt: return [("tilt", "deg")]
        }
    }

    /// Monitoring stations that report as HJ 212-2017 data loggers.
    public var speaksHJ212: Bool { self == .air || self == .noise || self == .quality }

    /// The kinds of a network, in the order devices take them.
    public static func kinds(of network: String) -> [DeviceKind] {
        allCases.filter { $0.network == network }
    }

    /// The device name prefix (`meter-3`, `gauge-1`).
    public var prefix: String {
        switch self {
        case .air: return "aq"
        default: return rawValue
        }
    }
}

/// Hour of the day (0..<24) at the gateway's local time.
func hourOfDay(_ t: Double, offsetHours: Double) -> Double {
    let h = (t / 3600 + offsetHours).truncatingRemainder(dividingBy: 24)
    return h < 0 ? h + 24 : h
}

/// A bump centred on `at` hours with width `w`, wrapping around midnight.
func peak(_ h: Double, at: Double, width: Double) -> Double {
    var d = abs(h - at)
    d = min(d, 24 - d)
    return exp(-(d / width) * (d / width))
}
