/// HJ 212-2017 frames (the national standard for online monitoring data transmission):
/// `##` + four decimal digits (the data segment's length in bytes) + data segment + four
/// hex digits of CRC over the data segment + CRLF. The data segment is
/// `QN=...;ST=..;CN=....;PW=...;MN=...;Flag=.;[PNUM=..;PNO=..;]CP=&&...&&`.
///
/// Pure: no Foundation, no I/O; local times are turned into instants with the
/// `LocalTimeZone` given.
public enum HJ212 {
    /// The largest data segment the four-digit length field can announce.
    public static let maxSegment = 9999
    /// `##`, the length, the largest segment, the CRC and CRLF.
    public static let maxFrameBytes = 2 + 4 + maxSegment + 4 + 2

    /// The standard's CRC (not CRC-16/MODBUS): start 0xFFFF; per byte
    /// `crc = (crc >> 8) ^ byte`, then eight shifts right, xoring 0xA001 when the bit shifted
    /// out is 1.
    public static func crc(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var crc: UInt16 = 0xFFFF
        for b in bytes {
            crc = (crc >> 8) ^ UInt16(b)
            for _ in 0..<8 {
                let out = crc & 1
                crc >>= 1
                if out != 0 { crc ^= 0xA001 }
            }
        }
        return crc
    }

    public static func crc(_ bytes: [UInt8]) -> UInt16 { bytes.withUnsafeBytes { crc($0) } }

    /// A whole frame for a data segment: `##`, length, segment, CRC, CRLF.
    public static func frame(segment: String) -> [UInt8] { frame(segmentBytes: Array(segment.utf8)) }

    /// A whole frame for a data segment of any bytes (tests and the fuzz checks).
    public static func frame(segmentBytes seg: [UInt8]) -> [UInt8] {
        var out: [UInt8] = Array("##".utf8)
        out += Array(pad(seg.count, 4).utf8)
        out += seg
        out += Array(hex4(crc(seg)).utf8)
        out += [13, 10]
        return out
    }

    /// The answer a platform sends back: `CN=9014` (data answer) or `CN=9013`
    /// (notification answer), with the request's QN, PW and MN; `ST=91`, `Flag=4` (no
    /// answer wanted) and an empty CP.
    public static func answer(cn: Int, qn: String, pw: String, mn: String) -> [UInt8] {
        frame(segment: "QN=\(qn);ST=91;CN=\(cn);PW=\(pw);MN=\(mn);Flag=4;CP=&&&&")
    }

    /// `yyyyMMddHHmmss` in local time, as DataTime is written (and QN's first 14 digits).
    public static func localTime(_ t: Timestamp, zone: LocalTimeZone) -> String {
        let local = zone.localSeconds(t)
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let secs = Int(local - days * 86_400)
        let d = LocalDate(daysSinceEpoch: days)
        return pad(Int(d.year), 4) + pad(Int(d.month), 2) + pad(Int(d.day), 2) + pad(secs / 3600, 2) + pad(secs / 60 % 60, 2)
            + pad(secs % 60, 2)
    }

    public static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }

    public static func hex4(_ v: UInt16) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for shift in stride(from: 12, through: 0, by: -4) { out.append(digits[Int((v >> UInt16(shift)) & 0xF)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt16? {
        switch c {
        case 48...57: return UInt16(c - 48)
        case 65...70: return UInt16(c - 55)
        case 97...102: return UInt16(c - 87)
        default: return nil
        }
    }

    // MARK: Framing

    /// Where a frame sits in a byte stream (TCP): see `scan`.
    public enum Scan: Equatable, Sendable {
        /// Not enough bytes yet to tell.
        case needMore
        /// Bytes before the next `##` (or a `#` that starts none): skip them, a reject.
        case garbage(count: Int)
        /// A frame (with its CRLF if it has one) of `count` bytes at the start; decode it.
        case frame(count: Int)
        /// The length field is not four digits: skip `count` bytes (up to the next `##`).
        case badLength(count: Int)
        /// CR and LF between frames: skip them, no reject.
        case lineBreaks(count: Int)
    }

    /// Looks at the start of a stream buffer. A frame is `##` + four digits + that many
    /// bytes + four CRC characters; a CRLF after it is taken with it. Never looks at more
    /// than `maxFrameBytes`, so a peer cannot make one frame cost more.
    public static func scan(_ b: UnsafeRawBufferPointer) -> Scan {
        guard !b.isEmpty else { return .needMore }
        if b[0] == 13 || b[0] == 10 {
            var i = 1
            while i < b.count, b[i] == 13 || b[i] == 10 { i += 1 }
            return .lineBreaks(count: i)
        }
        if b[0] != 35 {
            var i = 1
            while i < b.count, b[i] != 35 { i += 1 }
            return .garbage(count: i)
        }
        guard b.count >= 2 else { return .needMore }
        if b[1] != 35 { return .garbage(count: 1) }
        guard b.count >= 6 else { return .needMore }
        var len = 0
        for i in 2..<6 {
            guard b[i] >= 48, b[i] <= 57 else {
                return .badLength(count: nextStart(b, from: 2))
            }
            len = len * 10 + Int(b[i] - 48)
        }
        let end = 6 + len + 4
        guard b.count >= end else { return .needMore }
        // The CRLF after it, when it has come, goes with it; otherwise it is skipped later.
        if b.count >= end + 2 && b[end] == 13 && b[end + 1] == 10 { return .frame(count: end + 2) }
        return .frame(count: end)
    }

    /// Where the next `##` starts, from `from` (the end when there is none).
    public static func nextStart(_ b: UnsafeRawBufferPointer, from: Int) -> Int {
        var i = from
        while i + 1 < b.count {
            if b[i] == 35 && b[i + 1] == 35 { return i }
            i += 1
        }
        return b.count
    }
}

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

    public init(network: String, site: String, device: String, password: String? = nil) {
        self.network = network
        self.site = site
        self.device = device
        self.password = password
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

/// One value of a frame's CP segment.
public struct HJ212Value: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case rtd = "Rtd", avg = "Avg", min = "Min", max = "Max", cou = "Cou"
    }
    public var code: String
    public var kind: Kind
    public var value: Double
}

/// A parsed frame.
public struct HJ212Frame: Sendable, Equatable {
    public var qn: String?
    public var st: String
    public var cn: Int
    public var pw: String
    public var mn: String
    /// The Flag field: bit 0 (A) asks for an answer, bit 1 (D) says the frame is one packet
    /// of several; the upper bits are the protocol version.
    public var flag: Int
    public var dataTime: Timestamp?
    public var values: [HJ212Value]
    /// `code-Flag` per code, as the frame wrote it (one byte).
    public var flags: [String: UInt8]
    /// `code-SampleTime` per code.
    public var sampleTimes: [String: Timestamp]

    /// The frame asks for an answer (Flag bit 0).
    public var wantsAnswer: Bool { flag & 1 == 1 }
}

/// A data flag (`code-Flag`): N is valid data; the standard's others are F (stopped),
/// M (maintenance), S (manual), D (fault), C (calibration), T (over range), B
/// (communication fault). Lower case is the same letter; anything else is `other`.
public enum HJ212Flag: String, Sendable, CaseIterable {
    case n = "N", f = "F", m = "M", s = "S", d = "D", c = "C", t = "T", b = "B", other

    public init(byte: UInt8) {
        let upper = byte >= 97 && byte <= 122 ? byte - 32 : byte
        self = upper >= 65 && upper <= 90 ? HJ212Flag(rawValue: String(UnicodeScalar(upper))) ?? .other : .other
    }

    /// The counter label: the letter, or `other`.
    public var label: String { rawValue }
}

extension HJ212Frame {
    /// Parses one whole frame (as an MQTT payload carries it: the CRLF may be left out).
    /// - Throws: the reason, with a reject code of its own for each kind of mistake.
    public static func parse(_ p: UnsafeRawBufferPointer, zone: LocalTimeZone) throws(RejectReason) -> HJ212Frame {
        guard p.count <= HJ212.maxFrameBytes else {
            throw RejectReason(.hj212TooLarge, "the frame has \(p.count) bytes; HJ 212 frames have at most \(HJ212.maxFrameBytes)")
        }
        guard p.count >= 2, p[0] == 35, p[1] == 35 else {
            let at = HJ212.nextStart(p, from: 0)
            throw RejectReason(
                .hj212Garbage,
                at < p.count ? "\(at) bytes before the frame's ##" : "the payload does not start with ## (no HJ 212 frame)")
        }
        guard p.count >= 6 else { throw RejectReason(.hj212Truncated, "the frame ends after \(p.count) bytes, inside its length") }
        var len = 0
        for i in 2..<6 {
            guard p[i] >= 48, p[i] <= 57 else {
                throw RejectReason(.hj212BadLength, "the length field \(Self.text(p, 2, 6)) is not four decimal digits")
            }
            len = len * 10 + Int(p[i] - 48)
        }
        var n = p.count
        if n >= 2, p[n - 2] == 13, p[n - 1] == 10 { n -= 2 }
        let end = 6 + len + 4
        if n < end {
            // The length is larger than what came: either the frame is cut short, or the
            // field lies. A complete tail (CRLF) says the field lies.
            if n < p.count {
                throw RejectReason(.hj212BadLength, "the length field says \(len) bytes, but the data segment has \(max(0, n - 10))")
            }
            throw RejectReason(.hj212Truncated, "the frame ends after \(p.count) bytes; its length field says \(end)")
        }
        if n > end {
            throw RejectReason(.hj212BadLength, "the length field says \(len) bytes, but the data segment has \(n - 10)")
        }
        var expected: UInt16 = 0
        for i in (6 + len)..<end {
            guard let h = HJ212.hexValue(p[i]) else {
                throw RejectReason(.hj212BadCRC, "the CRC \(Self.text(p, 6 + len, end)) is not four hex digits")
            }
            expected = expected << 4 | h
        }
        let segment = UnsafeRawBufferPointer(rebasing: p[6..<(6 + len)])
        let actual = HJ212.crc(segment)
        guard actual == expected else {
            throw RejectReason(
                .hj212BadCRC, "CRC \(Self.text(p, 6 + len, end)) does not match the data segment (its CRC is \(HJ212.hex4(actual)))")
        }
        return try parseSegment(segment, zone: zone)
    }

    static func text(_ p: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> String {
        PayloadDecoder.quoted(String(decoding: UnsafeRawBufferPointer(rebasing: p[from..<min(to, p.count)]), as: UTF8.self))
    }

    /// The fields of a data segment whose CRC was right.
    static func parseSegment(_ s: UnsafeRawBufferPointer, zone: LocalTimeZone) throws(RejectReason) -> HJ212Frame {
        guard s.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw RejectReason(.hj212Malformed, "the data segment holds bytes that are not printable ASCII")
        }
        let text = String(decoding: s, as: UTF8.self)
        guard let cpRange = text.firstRange(of: "CP=&&") else {
            throw RejectReason(.hj212MissingCP, "the data segment has no CP=&&...&& part")
        }
        let afterCP = text[cpRange.upperBound...]
        guard afterCP.hasSuffix("&&") else {
            throw RejectReason(.hj212MissingCP, "the CP part does not end with &&")
        }
        let cp = afterCP.dropLast(2)
        var fields: [Substring: Substring] = [:]
        for part in text[..<cpRange.lowerBound].split(separator: ";") {
            guard let eq = part.firstIndex(of: "=") else {
                throw RejectReason(.hj212Malformed, "field \(PayloadDecoder.quoted(String(part))) has no =")
            }
            fields[part[..<eq]] = part[part.index(after: eq)...]
        }
        for key in ["ST", "CN", "MN", "Flag"] where fields[Substring(key)] == nil {
            throw RejectReason(.hj212Malformed, "the data segment has no \(key) field")
        }
        guard let cn = Int(fields["CN"]!), fields["CN"]!.count == 4 else {
            throw RejectReason(.hj212Malformed, "CN=\(fields["CN"]!) is not a four-digit command")
        }
        guard let flag = Int(fields["Flag"]!), flag >= 0, flag < 256 else {
            throw RejectReason(.hj212Malformed, "Flag=\(fields["Flag"]!) is not a number from 0 to 255")
        }
        var frame = HJ212Frame(
            qn: fields["QN"].map(String.init), st: String(fields["ST"]!), cn: cn, pw: String(fields["PW"] ?? ""),
            mn: String(fields["MN"]!), flag: flag, dataTime: nil, values: [], flags: [:], sampleTimes: [:])
        for group in cp.split(separator: ";") {
            for item in group.split(separator: ",") {
                guard let eq = item.firstIndex(of: "=") else {
                    throw RejectReason(.hj212Malformed, "CP item \(PayloadDecoder.quoted(String(item))) has no =")
                }
                let key = item[..<eq]
                let value = item[item.index(after: eq)...]
                if key == "DataTime" {
                    frame.dataTime = try localTime(value, zone: zone, what: "DataTime")
                    continue
                }
                guard let dash = key.lastIndex(of: "-") else { continue }  // PolId, RestartTime...: not readings
                let code = String(key[..<dash])
                let suffix = key[key.index(after: dash)...]
                if suffix == "Flag" {
                    guard value.utf8.count == 1 else {
                        throw RejectReason(.hj212Malformed, "\(key)=\(value) is not a one-letter flag")
                    }
                    frame.flags[code] = value.utf8.first!
                } else if suffix == "SampleTime" {
                    frame.sampleTimes[code] = try localTime(value, zone: zone, what: String(key))
                } else if let kind = HJ212Value.Kind(rawValue: String(suffix)) {
                    frame.values.append(HJ212Value(code: code, kind: kind, value: try number(value, String(key))))
                }
                // Other suffixes (ZsRtd, EFlag...) are not readings vigil keeps.
            }
        }
        return frame
    }

    /// A decimal number as HJ 212 writes them: optional sign, digits, optional fraction.
    static func number(_ v: Substring, _ key: String) throws(RejectReason) -> Double {
        var digits = 0
        var dots = 0
        for (i, c) in v.utf8.enumerated() {
            if c >= 48 && c <= 57 {
                digits += 1
            } else if c == 46 {
                dots += 1
            } else if !(i == 0 && (c == 45 || c == 43)) {
                digits = 0
                break
            }
        }
        guard digits > 0, dots <= 1, v.utf8.count <= 32, let d = Double(v) else {
            throw RejectReason(.notANumber, "\(key)=\(PayloadDecoder.quoted(String(v.prefix(40)))) is not a number")
        }
        guard d.isFinite else { throw RejectReason(.nonFinite, "\(key) is out of range") }
        return d
    }

    /// `yyyyMMddHHmmss` in local time.
    static func localTime(_ v: Substring, zone: LocalTimeZone, what: String) throws(RejectReason) -> Timestamp {
        let b = Array(v.utf8)
        guard b.count == 14, b.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw RejectReason(.badTimestamp, "\(what)=\(PayloadDecoder.quoted(String(v.prefix(40)))) is not yyyyMMddHHmmss")
        }
        func num(_ from: Int, _ count: Int) -> Int64 {
            var n: Int64 = 0
            for i in from..<(from + count) { n = n * 10 + Int64(b[i] - 48) }
            return n
        }
        let (y, mo, d, h, mi, s) = (num(0, 4), num(4, 2), num(6, 2), num(8, 2), num(10, 2), num(12, 2))
        guard y >= 1970, (1...12).contains(mo), d >= 1, d <= Timestamp.daysIn(month: mo, year: y), h < 24, mi < 60, s < 60
        else {
            throw RejectReason(.badTimestamp, "\(what)=\(v) is not a valid date and time")
        }
        let local = Timestamp.days(year: y, month: mo, day: d) * 86_400 + h * 3600 + mi * 60 + s
        return Timestamp(micros: zone.utcSeconds(forLocal: local) * 1_000_000)
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
                metric = "\(code.metric)_\(v.kind.rawValue.lowercased())_\(command == .minute ? Self.name(interval) : command.suffix)"
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
