/// A pollutant code's reading: metric name, unit, and the factor that turns the frame's
/// value into that unit (stations mix mg/m3 and ug/m3).
public struct HJ212Code: Sendable, Hashable {
    public var metric: String
    public var unit: String?
    public var scale: Double

    public init(metric: String, unit: String?, scale: Double = 1) {
        self.metric = metric
        self.unit = unit
        self.scale = scale
    }

    /// The built-in table: the metrics the rule packs judge, and the weather codes air
    /// stations send with them. `hj212.codes` in the config adds codes or replaces these.
    public static let defaults: [String: HJ212Code] = [
        // Air (urban sensing), as the urban pack names them.
        "a34004": HJ212Code(metric: "pm25", unit: "ug/m3"),
        "a34002": HJ212Code(metric: "pm10", unit: "ug/m3"),
        "a21004": HJ212Code(metric: "no2", unit: "ug/m3"),
        "a05024": HJ212Code(metric: "o3", unit: "ug/m3"),
        "a21026": HJ212Code(metric: "so2", unit: "ug/m3"),
        "a21005": HJ212Code(metric: "co", unit: "mg/m3"),
        // Weather at air stations.
        "a01001": HJ212Code(metric: "air_temperature", unit: "Cel"),
        "a01002": HJ212Code(metric: "humidity", unit: "%RH"),
        "a01006": HJ212Code(metric: "air_pressure", unit: "kPa"),
        "a01007": HJ212Code(metric: "wind_speed", unit: "m/s"),
        "a01008": HJ212Code(metric: "wind_direction", unit: "deg"),
        // Noise: the A-weighted level, its equivalent level over the period, its maximum.
        "LA": HJ212Code(metric: "noise", unit: "dB(A)"),
        "LeqT": HJ212Code(metric: "noise_leq", unit: "dB(A)"),
        "Lmax": HJ212Code(metric: "noise_max", unit: "dB(A)"),
        // Water quality, as the water pack names them.
        "w01001": HJ212Code(metric: "ph", unit: nil),
        "w01003": HJ212Code(metric: "turbidity", unit: "NTU"),
        "w01009": HJ212Code(metric: "dissolved_oxygen", unit: "mg/L"),
        "w01010": HJ212Code(metric: "water_temperature", unit: "Cel"),
        "w01018": HJ212Code(metric: "cod", unit: "mg/L"),
        "w01019": HJ212Code(metric: "codmn", unit: "mg/L"),
        "w21003": HJ212Code(metric: "nh3_n", unit: "mg/L"),
        "w21011": HJ212Code(metric: "tp", unit: "mg/L"),
    ]
}

/// Where a station's readings go.
public struct HJ212Station: Sendable, Hashable {
    public var network: String
    public var site: String
    public var device: String
    /// The PW its frames must carry; nil: not checked.
    public var password: String?
    /// `interval_as: metric`: an hourly average (2061 `-Avg`) is stored under the plain
    /// metric (`pm25`), stamped at the hour's end, so rules written for the real-time series
    /// judge it; still kept out of the aggregates like all interval data.
    public var hourlyAverageAsMetric = false

    public init(network: String, site: String, device: String, password: String? = nil, hourlyAverageAsMetric: Bool = false) {
        self.network = network
        self.site = site
        self.device = device
        self.password = password
        self.hourlyAverageAsMetric = hourlyAverageAsMetric
    }
}

/// The data commands vigil reads.
public enum HJ212Command: Int, Sendable, CaseIterable {
    /// Real-time data: `-Rtd` values at DataTime.
    case realtime = 2011
    /// Minute data: `-Avg/-Min/-Max/-Cou` of the minutes starting at DataTime.
    case minute = 2051
    /// Hourly data.
    case hourly = 2061
    /// Daily data.
    case daily = 2031

    /// The length of an interval command's interval (nil for real-time data). Minute data
    /// covers the data logger's minute interval, commonly 10 minutes; vigil takes one
    /// minute unless `hj212.minute_interval` says otherwise (see docs/hj212.md).
    public func interval(minute: TimeSpan) -> TimeSpan? {
        switch self {
        case .realtime: return nil
        case .minute: return minute
        case .hourly: return .hours(1)
        case .daily: return .days(1)
        }
    }

    /// The suffix of interval metrics: `pm25_avg_1h`.
    var suffix: String {
        switch self {
        case .realtime: return ""
        case .minute: return ""
        case .hourly: return "1h"
        case .daily: return "1d"
        }
    }
}

/// What one frame came to, besides its readings.
public struct HJ212Outcome: Sendable, Equatable {
    public var frame: HJ212Frame
    public var station: HJ212Station
    /// Values whose flag is not N, by flag: not readings (never judged, never aggregated).
    public var flagged: [HJ212Flag: Int] = [:]
    /// Codes with valid values that the code table does not know: their values are readings
    /// whose metric is the code itself, without a unit (a code that is no valid name is
    /// named here and not stored).
    public var unknownCodes: [String] = []
    /// Readings that are interval values (2051, 2061, 2031), the last `intervalReadings`
    /// of those appended.
    public var intervalReadings = 0
}

/// Turns HJ 212 frames into readings: the station (MN) gives network, site and device; the
/// code table gives metric, unit and scale.
///
/// - Real-time data (2011): each `-Rtd` a reading of the code's metric at DataTime (or the
///   code's SampleTime).
/// - Interval data (2051 minute, 2061 hourly, 2031 daily): DataTime is the interval's
///   start; each `-Avg/-Min/-Max/-Cou` a reading of `<metric>_<avg|min|max|cou>_<interval>`
///   stamped at the interval's END, when the value became known.
/// - A value whose `-Flag` is not N is no reading; it is counted by flag.
/// - A code the table does not know is a reading of a metric named by the code, no unit.
public struct HJ212Decoder: Sendable {
    public var codes: [String: HJ212Code]
    public var stations: [String: HJ212Station]
    public var zone: LocalTimeZone
    /// The length of minute data's interval.
    public var minuteInterval: TimeSpan

    public init(
        codes: [String: HJ212Code] = HJ212Code.defaults, stations: [String: HJ212Station], zone: LocalTimeZone,
        minuteInterval: TimeSpan = .minutes(1)
    ) {
        self.codes = codes
        self.stations = stations
        self.zone = zone
        self.minuteInterval = minuteInterval
    }

    /// Decodes one frame; its readings are appended to `out`.
    /// - Throws: why the whole frame is rejected; `out` is then unchanged.
    public func decode(_ payload: UnsafeRawBufferPointer, into out: inout [Reading]) throws(RejectReason) -> HJ212Outcome {
        let frame = try HJ212Frame.parse(payload, zone: zone)
        return try decode(frame, into: &out)
    }

    /// What the TCP listener checks before a frame takes room in the inbox: framing, CRC,
    /// fields, station (MN) and password (PW). A frame that passes may still be rejected by
    /// `decode` (a bad value, an unsupported command), never for these.
    public func screen(_ payload: UnsafeRawBufferPointer) throws(RejectReason) {
        let frame = try HJ212Frame.parse(payload, zone: zone)
        _ = try station(of: frame)
    }

    func station(of frame: HJ212Frame) throws(RejectReason) -> HJ212Station {
        guard let station = stations[frame.mn] else {
            throw RejectReason(
                .hj212UnknownStation, "MN=\(PayloadDecoder.quoted(frame.mn)) is not in hj212.stations")
        }
        if let pw = station.password, pw != frame.pw {
            throw RejectReason(.hj212BadPassword, "PW of MN=\(frame.mn) does not match its password_file")
        }
        return station
    }

    public func decode(_ frame: HJ212Frame, into out: inout [Reading]) throws(RejectReason) -> HJ212Outcome {
        let station = try station(of: frame)
        guard let command = HJ212Command(rawValue: frame.cn) else {
            throw RejectReason(
                .hj212UnsupportedCommand, "CN=\(frame.cn) is not a data command vigil reads (2011, 2051, 2061, 2031)")
        }
        guard let dataTime = frame.dataTime else {
            throw RejectReason(.badTimestamp, "the CP part has no DataTime")
        }
        var outcome = HJ212Outcome(frame: frame, station: station)
        let interval = command.interval(minute: minuteInterval)
        let mark = out.count
        var unknown: Set<String> = []
        for v in frame.values {
            // Real-time data carries Rtd; interval data the statistics of its interval.
            guard (v.kind == .rtd) == (command == .realtime) else { continue }
            if let f = frame.flags[v.code] {
                let flag = HJ212Flag(byte: f)
                if flag != .n {
                    outcome.flagged[flag, default: 0] += 1
                    continue
                }
            }
            // A code the table does not know (a status code such as R01 every cycle, a
            // pollutant not built in): stored under the code itself, without a unit, so the
            // frame can be answered without losing it; named in the outcome.
            let known = codes[v.code]
            if known == nil {
                if unknown.insert(v.code).inserted { outcome.unknownCodes.append(v.code) }
            }
            let code = known ?? HJ212Code(metric: v.code, unit: nil)
            let value = v.value * code.scale
            guard value.isFinite else {
                out.removeSubrange(mark...)
                throw RejectReason(.nonFinite, "\(v.code)-\(v.kind.rawValue) is out of range after its scale")
            }
            let metric: String
            let at: Timestamp
            if let interval {
                metric =
                    station.hourlyAverageAsMetric && command == .hourly && v.kind == .avg
                    ? code.metric
                    : "\(code.metric)_\(v.kind.rawValue.lowercased())_\(command == .minute ? Self.name(interval) : command.suffix)"
                at = dataTime.adding(interval)
                outcome.intervalReadings += 1
            } else {
                metric = code.metric
                at = frame.sampleTimes[v.code] ?? dataTime
            }
            // An unknown code that makes no valid name (or one too long with its suffix) is
            // named in the outcome, not stored.
            if known == nil && !Names.isValid(metric) { continue }
            out.append(
                Reading(
                    series: SeriesKey(network: station.network, site: station.site, device: station.device, metric: metric),
                    value: value, timestamp: at, unit: code.unit, timestampFromPayload: true))
        }
        return outcome
    }

    /// `10m`, `1m`, `90s`.
    static func name(_ t: TimeSpan) -> String {
        let s = t.micros / 1_000_000
        return s % 60 == 0 ? "\(s / 60)m" : "\(s)s"
    }
}
