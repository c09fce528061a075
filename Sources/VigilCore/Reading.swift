/// The three sensing networks a gateway serves; any other valid name is allowed too.
public enum Network {
    public static let known = ["energy", "water", "urban"]
}

/// A series: `network/site/device/metric`.
public struct SeriesKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var network: String
    public var site: String
    public var device: String
    public var metric: String

    public init(network: String, site: String, device: String, metric: String) {
        self.network = network
        self.site = site
        self.device = device
        self.metric = metric
    }

    /// Parses `network/site/device/metric`; nil unless there are four valid names.
    public init?(path: String) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts.allSatisfy({ Names.isValid(String($0)) }) else { return nil }
        self.init(network: String(parts[0]), site: String(parts[1]), device: String(parts[2]), metric: String(parts[3]))
    }

    public var path: String { "\(network)/\(site)/\(device)/\(metric)" }
    public var description: String { path }
    public var levels: [String] { [network, site, device, metric] }

    public static func < (a: SeriesKey, b: SeriesKey) -> Bool { a.path < b.path }
}

/// One measurement: a finite value of a series at a time, with an optional unit.
public struct Reading: Hashable, Sendable {
    public var series: SeriesKey
    public var value: Double
    public var timestamp: Timestamp
    public var unit: String?
    /// Whether the timestamp came from the payload (false: the time of receipt).
    public var timestampFromPayload: Bool

    public init(series: SeriesKey, value: Double, timestamp: Timestamp, unit: String? = nil, timestampFromPayload: Bool = true) {
        self.series = series
        self.value = value
        self.timestamp = timestamp
        self.unit = unit
        self.timestampFromPayload = timestampFromPayload
    }
}

/// Why a message was rejected: a stable code for counters, and a detail for people.
public struct RejectReason: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code.rawValue): \(detail)" }

    /// Reject codes, the `reason` label of `vigil_rejected_total`.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let payloadTooLarge = Code(rawValue: "payload_too_large")
        public static let topicTooLong = Code(rawValue: "topic_too_long")
        public static let noSubscription = Code(rawValue: "no_subscription")
        public static let layoutMismatch = Code(rawValue: "layout_mismatch")
        public static let badName = Code(rawValue: "bad_name")
        public static let invalidJSON = Code(rawValue: "invalid_json")
        public static let tooDeep = Code(rawValue: "too_deep")
        public static let invalidUTF8 = Code(rawValue: "invalid_utf8")
        public static let notANumber = Code(rawValue: "not_a_number")
        public static let nonFinite = Code(rawValue: "non_finite")
        public static let noReadings = Code(rawValue: "no_readings")
        public static let invalidSenML = Code(rawValue: "invalid_senml")
        public static let badTimestamp = Code(rawValue: "bad_timestamp")
        public static let futureTimestamp = Code(rawValue: "future_timestamp")
        public static let tooOld = Code(rawValue: "too_old")
        public static let badUnit = Code(rawValue: "bad_unit")
        // HJ 212 frames (format hj212 and the TCP listener).
        public static let hj212Garbage = Code(rawValue: "hj212_garbage")
        public static let hj212BadLength = Code(rawValue: "hj212_bad_length")
        public static let hj212Truncated = Code(rawValue: "hj212_truncated")
        public static let hj212TooLarge = Code(rawValue: "hj212_too_large")
        public static let hj212BadCRC = Code(rawValue: "hj212_bad_crc")
        public static let hj212Malformed = Code(rawValue: "hj212_malformed")
        public static let hj212MissingCP = Code(rawValue: "hj212_missing_cp")
        public static let hj212UnknownCode = Code(rawValue: "hj212_unknown_code")
        public static let hj212UnknownStation = Code(rawValue: "hj212_unknown_station")
        public static let hj212BadPassword = Code(rawValue: "hj212_bad_password")
        public static let hj212UnsupportedCommand = Code(rawValue: "hj212_unsupported_command")

        public static let all: [Code] = [
            .payloadTooLarge, .topicTooLong, .noSubscription, .layoutMismatch, .badName, .invalidJSON, .tooDeep,
            .invalidUTF8, .notANumber, .nonFinite, .noReadings, .invalidSenML, .badTimestamp, .futureTimestamp,
            .tooOld, .badUnit, .hj212Garbage, .hj212BadLength, .hj212Truncated, .hj212TooLarge, .hj212BadCRC,
            .hj212Malformed, .hj212MissingCP, .hj212UnknownCode, .hj212UnknownStation, .hj212BadPassword,
            .hj212UnsupportedCommand,
        ]
    }
}
