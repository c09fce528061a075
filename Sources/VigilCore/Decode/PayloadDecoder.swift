/// The payload formats a subscription accepts.
public enum PayloadFormat: String, Sendable, CaseIterable {
    case number, json, senml, auto
    /// An HJ 212-2017 frame; the station (MN) names site and device (see `HJ212Decoder`).
    case hj212
}

/// One value decoded from a payload, before the topic supplies its series.
public struct DecodedValue: Sendable, Equatable {
    /// The metric named by the payload; nil means the topic's metric.
    public var metric: String?
    public var value: Double
    /// The payload's timestamp; nil means the time of receipt.
    public var timestamp: Timestamp?
    public var unit: String?

    public init(metric: String?, value: Double, timestamp: Timestamp?, unit: String?) {
        self.metric = metric
        self.value = value
        self.timestamp = timestamp
        self.unit = unit
    }
}

/// Decodes payloads in the number, json, senml and auto formats of SPEC section 2.
///
/// JSON objects: when the topic names a metric, `{"value": v, "ts": t, "unit": u}` is one
/// reading of it (a field named like the metric stands in for `value`); when the topic
/// names none, every numeric field is a reading of the metric it names, and
/// `ts`/`time`/`timestamp`, `unit` and `seq` are metadata.
/// Strings, booleans, null, arrays and objects in other fields are ignored.
///
/// - Important: not thread safe; each ingest thread owns one.
public struct PayloadDecoder {
    public var maxDepth: Int {
        get { tape.maxDepth }
        set { tape.maxDepth = newValue }
    }

    var tape: JSONTape
    /// SenML records skipped because they carry no number (`vs`, `vb`, `vd`), since creation.
    public internal(set) var skippedRecords: Int = 0

    public init(maxDepth: Int = 32) {
        tape = JSONTape(maxDepth: maxDepth)
    }

    /// Decodes one payload into `out` (appending).
    /// - Parameters:
    ///   - topicMetric: the metric the topic names, if its layout has `{metric}`.
    ///   - receivedAt: the time of receipt; SenML relative times count from it.
    /// - Throws: the reason the whole payload is rejected; `out` is then unchanged.
    public mutating func decode(
        _ payload: UnsafeRawBufferPointer, format: PayloadFormat, topicMetric: String?, receivedAt: Timestamp,
        into out: inout [DecodedValue]
    ) throws(RejectReason) {
        let mark = out.count
        do {
            try decodeUnchecked(payload, format: format, topicMetric: topicMetric, receivedAt: receivedAt, into: &out)
        } catch {
            out.removeSubrange(mark...)
            throw error
        }
    }

    private mutating func decodeUnchecked(
        _ payload: UnsafeRawBufferPointer, format: PayloadFormat, topicMetric: String?, receivedAt: Timestamp,
        into out: inout [DecodedValue]
    ) throws(RejectReason) {
        var format = format
        if format == .auto {
            let first = JSONTape.skipWhitespace(payload, 0)
            if first < payload.count, payload[first] == UInt8(ascii: "[") {
                format = .senml
            } else if first < payload.count, payload[first] == UInt8(ascii: "{") {
                format = .json
            } else {
                format = .number
            }
        }
        switch format {
        case .number, .auto:
            guard topicMetric != nil else {
                throw RejectReason(.noReadings, "a bare number needs a {metric} in the topic layout")
            }
            out.append(DecodedValue(metric: nil, value: try Self.bareNumber(payload), timestamp: nil, unit: nil))
        case .json:
            try parse(payload)
            try decodeJSON(payload, topicMetric: topicMetric, into: &out)
        case .senml:
            try parse(payload)
            try decodeSenML(payload, topicMetric: topicMetric, receivedAt: receivedAt, into: &out)
        case .hj212:
            // HJ 212 frames name their own series: `MessageDecoder` decodes them with the stations.
            throw RejectReason(.hj212UnknownStation, "HJ 212 frames need the stations of the config")
        }
    }

    private mutating func parse(_ payload: UnsafeRawBufferPointer) throws(RejectReason) {
        do {
            try tape.parse(payload)
        } catch {
            switch error {
            case .tooDeep: throw RejectReason(.tooDeep, error.message)
            case .invalidUTF8: throw RejectReason(.invalidUTF8, error.message)
            case .syntax: throw RejectReason(.invalidJSON, error.message)
            }
        }
    }

    /// A payload that is one JSON number with optional surrounding whitespace.
    static func bareNumber(_ payload: UnsafeRawBufferPointer) throws(RejectReason) -> Double {
        let start = JSONTape.skipWhitespace(payload, 0)
        guard start < payload.count else { throw RejectReason(.notANumber, "the payload is empty") }
        let c = payload[start]
        guard c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) else {
            throw RejectReason(.notANumber, "the payload is not a number")
        }
        var node = JSONTape.Node(kind: .number)
        let end: Int
        do {
            end = try JSONTape.scanNumber(payload, start, into: &node)
        } catch {
            throw RejectReason(.notANumber, "the payload is not a number: \(error.message)")
        }
        guard JSONTape.skipWhitespace(payload, end) == payload.count else {
            throw RejectReason(.notANumber, "unexpected data after the number at byte \(end)")
        }
        guard node.number.isFinite else { throw RejectReason(.nonFinite, "the number is out of range") }
        return node.number
    }

    // MARK: JSON objects

    private func decodeJSON(
        _ b: UnsafeRawBufferPointer, topicMetric: String?, into out: inout [DecodedValue]
    ) throws(RejectReason) {
        let root = tape.nodes[0]
        if root.kind == .number {
            guard topicMetric != nil else {
                throw RejectReason(.noReadings, "a bare number needs a {metric} in the topic layout")
            }
            guard root.number.isFinite else { throw RejectReason(.nonFinite, "the number is out of range") }
            out.append(DecodedValue(metric: nil, value: root.number, timestamp: nil, unit: nil))
            return
        }
        guard root.kind == .object else {
            throw RejectReason(.noReadings, "expected a JSON object, found \(Self.kindName(root.kind))")
        }
        var timestamp: Timestamp?
        var unit: String?
        var valueIndex: Int?
        var metricFieldIndex: Int?
        // First pass: metadata and the `value` field.
        var i = 1
        for _ in 0..<Int(root.count) {
            let v = i + 1
            if tape.string(i, equals: "value", in: b) {
                valueIndex = v
            } else if tape.string(i, equals: "ts", in: b) || tape.string(i, equals: "time", in: b)
                || tape.string(i, equals: "timestamp", in: b)
            {
                timestamp = try Self.timestamp(tape, v, b)
            } else if tape.string(i, equals: "unit", in: b) {
                unit = try Self.unit(tape, v, b)
            } else if let m = topicMetric, valueIndex == nil, tape.string(i, in: b) == m {
                metricFieldIndex = v
            }
            i = tape.next(after: v)
        }
        if topicMetric != nil {
            guard let v = valueIndex ?? metricFieldIndex else {
                throw RejectReason(.noReadings, "the object has no \"value\" field")
            }
            let value = try Self.number(tape, v, field: valueIndex != nil ? "value" : topicMetric!)
            out.append(DecodedValue(metric: nil, value: value, timestamp: timestamp, unit: unit))
            return
        }
        // One reading per numeric field.
        let mark = out.count
        i = 1
        var stringFields: [String] = []
        var seen: [String: Int]?
        for _ in 0..<Int(root.count) {
            let v = i + 1
            let node = tape.nodes[v]
            if node.kind == .number, !Self.isMetadataKey(tape, i, b) {
                let name = tape.string(i, in: b)
                guard Names.isValid(name) else {
                    throw RejectReason(.badName, "field name \(Self.quoted(name)) is not [A-Za-z0-9_.-]{1,64}")
                }
                guard node.number.isFinite else {
                    throw RejectReason(.nonFinite, "field \(name) is out of range")
                }
                // A field named twice: the last one wins, as for "value", "ts" and "unit". A few
                // fields are searched; past 16 a dictionary keeps 10,000 keys from costing n².
                let earlier = seen.map { $0[name] } ?? out[mark...].firstIndex { $0.metric == name }
                if let earlier {
                    out[earlier].value = node.number
                } else {
                    out.append(DecodedValue(metric: name, value: node.number, timestamp: timestamp, unit: unit))
                    if seen != nil {
                        seen![name] = out.count - 1
                    } else if out.count - mark == 16 {
                        seen = Dictionary(uniqueKeysWithValues: out[mark...].indices.map { (out[$0].metric!, $0) })
                    }
                }
            } else if node.kind == .string, !Self.isMetadataKey(tape, i, b), stringFields.count < 3 {
                stringFields.append(tape.string(i, in: b))
            }
            i = tape.next(after: v)
        }
        if out.count == mark {
            if !stringFields.isEmpty {
                throw RejectReason(
                    .notANumber, "field \(stringFields.joined(separator: ", ")) holds a string, not a number")
            }
            throw RejectReason(.noReadings, "the object has no numeric field")
        }
    }

    private static func isMetadataKey(_ tape: JSONTape, _ i: Int, _ b: UnsafeRawBufferPointer) -> Bool {
        tape.string(i, equals: "ts", in: b) || tape.string(i, equals: "time", in: b)
            || tape.string(i, equals: "timestamp", in: b) || tape.string(i, equals: "seq", in: b)
            || tape.string(i, equals: "unit", in: b)
    }

    static func number(_ tape: JSONTape, _ v: Int, field: String) throws(RejectReason) -> Double {
        let node = tape.nodes[v]
        guard node.kind == .number else {
            throw RejectReason(.notANumber, "\"\(field)\" is \(kindName(node.kind)), not a number")
        }
        guard node.number.isFinite else { throw RejectReason(.nonFinite, "\"\(field)\" is out of range") }
        return node.number
    }

    static func unit(_ tape: JSONTape, _ v: Int, _ b: UnsafeRawBufferPointer) throws(RejectReason) -> String? {
        let node = tape.nodes[v]
        if node.kind == .null { return nil }
        guard node.kind == .string else { throw RejectReason(.badUnit, "the unit is \(kindName(node.kind))") }
        let s = tape.string(v, in: b)
        guard s.utf8.count <= 32, s.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw RejectReason(.badUnit, "the unit must be at most 32 printable bytes")
        }
        return s.isEmpty ? nil : s
    }

    /// A timestamp field: seconds (fractional allowed), integer milliseconds above 10^11, or RFC 3339.
    static func timestamp(_ tape: JSONTape, _ v: Int, _ b: UnsafeRawBufferPointer) throws(RejectReason) -> Timestamp {
        let node = tape.nodes[v]
        switch node.kind {
        case .number:
            let raw = UnsafeRawBufferPointer(rebasing: b[Int(node.start)..<Int(node.start + node.length)])
            guard let t = Self.timestamp(number: node.number, raw: raw, isInteger: node.isInteger), t.micros > 0 else {
                throw RejectReason(.badTimestamp, "the timestamp \(String(decoding: raw, as: UTF8.self)) is not a time")
            }
            return t
        case .string:
            // A string with escapes (`\u005A` for `Z`) is parsed as it decodes, not as written.
            let parsed =
                tape.nodes[v].escaped ? Timestamp.parseRFC3339(tape.string(v, in: b)) : Timestamp.parseRFC3339(tape.rawBytes(v, in: b))
            guard let t = parsed else {
                throw RejectReason(
                    .badTimestamp, "the timestamp \(quoted(tape.string(v, in: b))) is not RFC 3339")
            }
            // As for numbers: a time before 1970 is no sensor's reading.
            guard t.micros > 0 else {
                throw RejectReason(.badTimestamp, "the timestamp \(quoted(tape.string(v, in: b))) is not after 1970")
            }
            return t
        default:
            throw RejectReason(.badTimestamp, "the timestamp is \(kindName(node.kind))")
        }
    }

    /// Converts a numeric timestamp exactly from its text where it can: seconds with up to six
    /// decimals, or integer milliseconds (values above 10^11).
    public static func timestamp(number: Double, raw: UnsafeRawBufferPointer, isInteger: Bool) -> Timestamp? {
        guard number.isFinite, number > 0 else { return nil }
        let isMillis = number > 1e11
        // Exact path: plain decimal digits with an optional fraction.
        var intPart: Int64 = 0
        var frac: Int64 = 0
        var fracDigits = 0
        var i = 0
        var exact = true
        while i < raw.count, raw[i] >= 48, raw[i] <= 57 {
            if intPart > 900_000_000_000_000 { exact = false }
            intPart = intPart &* 10 &+ Int64(raw[i] - 48)
            i += 1
        }
        if i < raw.count, raw[i] == UInt8(ascii: ".") {
            i += 1
            while i < raw.count, raw[i] >= 48, raw[i] <= 57 {
                let limit = isMillis ? 3 : 6
                if fracDigits < limit {
                    frac = frac * 10 + Int64(raw[i] - 48)
                    fracDigits += 1
                }
                i += 1
            }
        }
        if i != raw.count { exact = false }
        if exact {
            let scale: Int64 = isMillis ? 1000 : 1_000_000
            let digitsWanted = isMillis ? 3 : 6
            var f = frac
            for _ in fracDigits..<digitsWanted { f *= 10 }
            let (m, overflow) = intPart.multipliedReportingOverflow(by: scale)
            guard !overflow else { return nil }
            return Timestamp(micros: m + f)
        }
        return Timestamp(secondsValue: isMillis ? number / 1000 : number)
    }
}
