import VigilCore

/// What the decoder fuzz target (`Fuzz/Sources/vigil-fuzz`, `scripts/fuzz`) and its regression
/// tests (`FuzzRegressionTests`) run every input through: feeds arbitrary bytes through
/// `JSONTape`, `PayloadDecoder` and `MessageDecoder`, and checks what must hold whatever the
/// input. Its own target, outside VigilCore, so that none of it ships in `vigil`.
///
/// How an input is read:
/// - First byte below 0x80 (every JSON text, every number: raw payload files work as they
///   are): the whole input is the payload, decoded in every format, once with a topic that
///   names the metric and once with one that does not.
/// - First byte 0x80 or above: a control byte, then the payload.
///
/// The control byte's bits:
/// - 0-1: the format: number, json, senml, auto.
/// - 2: the topic layout names the metric.
/// - 3: the topic comes from the input: its length in two bytes (little-endian), then the topic.
/// - 4-5: the limits: JSON depth 32, 1, 4 or 512; retention 7 days, none, 7 days, none.
/// - 6: amplify: three bytes `r a b`; the `b` bytes from offset `a` of the payload (both cut to
///   fit) repeat `32 r` more times, up to 70 000 bytes.
///
/// Checked for every input: the decoders leave `out` unchanged when they reject and only
/// append when they accept; an accepted payload gives at least one finite value with a
/// valid metric name (or the topic's) and a valid unit; decoding again with the same
/// (reused) decoder gives the same result; the tape is well formed (containers hold their
/// counts, keys are strings, offsets lie inside the input, strings are valid UTF-8, numbers
/// equal the correctly rounded value of their text); the JSON verdict of the payload decoder
/// agrees with the tape's; `MessageDecoder` on a fixed topic gives exactly the payload
/// decoder's values (or rejects them for their time), with valid series names.
public enum FuzzCheck {
    /// What one parse or decode came to.
    package enum Verdict: Hashable, Sendable, CustomStringConvertible {
        /// Accepted, with this many nodes, values or readings.
        case accepted(Int)
        /// Rejected with this reason code.
        case rejected(String)

        package var description: String {
            switch self {
            case .accepted(let n): return "accepted(\(n))"
            case .rejected(let code): return "rejected(\(code))"
            }
        }
    }

    /// Everything `check` saw for one input.
    package struct Outcome: Hashable, Sendable, CustomStringConvertible {
        /// The tape parse, then per decode case the payload decoder and the message decoder.
        package var verdicts: [Verdict] = []
        /// Invariants that did not hold; empty for a good input.
        package var violations: [String] = []

        package var description: String {
            let v = verdicts.map(\.description).joined(separator: " ")
            return violations.isEmpty ? v : v + "; violations: " + violations.joined(separator: "; ")
        }
    }

    /// The fuzz target's question: the first invariant `input` breaks, or nil. The target traps
    /// on it, which is how libFuzzer learns of it; nothing here traps.
    public static func violation(in input: UnsafeRawBufferPointer) -> String? {
        check(input).violations.first
    }

    /// Decodes `input` every way its first byte asks for and returns the verdicts and any
    /// violated invariants. Traps only where the decoders themselves trap.
    package static func check(_ input: UnsafeRawBufferPointer) -> Outcome {
        var checker = Checker()
        guard let control = input.first else { return checker.outcome }
        if control < 0x80 {
            let limits = IngestLimits()
            let tape = checker.tape(input, maxDepth: limits.maxJSONDepth)
            var decoder = PayloadDecoder(maxDepth: limits.maxJSONDepth)
            for format in PayloadFormat.allCases {
                var messages = checker.messageDecoder(format, limits)
                for namesMetric in [false, true] {
                    checker.decode(
                        payload: input, topic: nil, format: format, namesMetric: namesMetric, limits: limits,
                        tape: tape, decoder: &decoder, messages: &messages)
                }
            }
            return checker.outcome
        }
        let format = PayloadFormat.allCases[Int(control & 3)]
        let namesMetric = control & 4 != 0
        let limits = Self.limits(Int(control >> 4) & 3)
        func byte(_ k: Int) -> Int { k < input.count ? Int(input[k]) : 0 }
        var p = 1
        var topic: UnsafeRawBufferPointer?
        if control & 8 != 0 {
            let length = byte(p) | byte(p + 1) << 8
            p = min(p + 2, input.count)
            let end = min(p + length, input.count)
            topic = UnsafeRawBufferPointer(rebasing: input[p..<end])
            p = end
        }
        var amplify: (r: Int, a: Int, b: Int)?
        if control & 64 != 0 {
            amplify = (byte(p), byte(p + 1), byte(p + 2))
            p = min(p + 3, input.count)
        }
        let payload = UnsafeRawBufferPointer(rebasing: input[p...])
        func body(_ payload: UnsafeRawBufferPointer) {
            let tape = checker.tape(payload, maxDepth: limits.maxJSONDepth)
            var decoder = PayloadDecoder(maxDepth: limits.maxJSONDepth)
            var messages = checker.messageDecoder(format, limits)
            checker.decode(
                payload: payload, topic: topic, format: format, namesMetric: namesMetric, limits: limits, tape: tape,
                decoder: &decoder, messages: &messages)
        }
        if let amplify {
            let big = amplified(payload, r: amplify.r, a: amplify.a, b: amplify.b)
            big.withUnsafeBytes { body($0) }
        } else {
            body(payload)
        }
        return checker.outcome
    }

    /// The largest payload amplification builds: just above the default 64 KiB limit.
    static let amplifiedLimit = 70_000

    static func amplified(_ p: UnsafeRawBufferPointer, r: Int, a: Int, b: Int) -> [UInt8] {
        let start = a % (p.count + 1)
        let end = start + b % (p.count - start + 1)
        let unit = end - start
        let extra = unit == 0 ? 0 : min(32 * r, max(0, (amplifiedLimit - p.count) / unit))
        let total = p.count + extra * unit
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            var out = UnsafeMutableRawBufferPointer(buffer)
            func put(_ part: UnsafeRawBufferPointer) {
                out.copyMemory(from: part)
                out = UnsafeMutableRawBufferPointer(rebasing: out[part.count...])
            }
            put(UnsafeRawBufferPointer(rebasing: p[..<end]))
            for _ in 0..<extra { put(UnsafeRawBufferPointer(rebasing: p[start..<end])) }
            put(UnsafeRawBufferPointer(rebasing: p[end...]))
            count = total
        }
    }

    static func limits(_ variant: Int) -> IngestLimits {
        var limits = IngestLimits()
        switch variant {
        case 1:
            limits.maxJSONDepth = 1
            limits.maxAge = nil
        case 2:
            limits.maxJSONDepth = 4
        case 3:
            limits.maxJSONDepth = 512
            limits.maxAge = nil
        default:
            break
        }
        return limits
    }

    /// The gateway clock of every decode: fixed, so that a crash reproduces.
    static let receivedAt = Timestamp(seconds: 1_763_892_000)
    static let topicMetric = "temp_c"
    static let fixedTopicWithMetric = "t/site-1/dev.2/temp_c"
    static let fixedTopicWithoutMetric = "t/site-1/dev.2"

    /// The message decoders' subscriptions, in whichever format: a layout with `{metric}`, one
    /// without, one with `+` and `#`, and one that never fits its filter's topics. Parsed once;
    /// should one not parse, every input reports it as a violation (no trap).
    static let subscriptions = Result { () throws(TopicFilter.FilterError) -> [SubscriptionSpec] in
        try [
            ("energy", "t/+/+/+", "t/{site}/{device}/{metric}"),
            ("water", "t/+/+", "t/{site}/{device}"),
            ("urban", "u/#", "u/{site}/+/{device}/{metric}/#"),
            ("lab", "v/+/+", "v/{site}/{device}/extra"),
        ].map { (network, filter, layout) throws(TopicFilter.FilterError) in
            SubscriptionSpec(
                network: network, filter: try TopicFilter(filter), layout: try TopicLayout(layout), format: .number)
        }
    }

    /// Payload rejections: never one that only the message decoder gives.
    static let payloadCodes: Set<RejectReason.Code> = [
        .invalidJSON, .tooDeep, .invalidUTF8, .notANumber, .nonFinite, .noReadings, .invalidSenML, .badName,
        .badTimestamp, .badUnit,
    ]

    struct Checker {
        var outcome = Outcome()
        /// What is being checked, the prefix of each violation: `tape`, `setup`, or the format
        /// and whether the topic names the metric (`senml/no-metric`).
        var context = "setup"

        mutating func fail(_ what: String) {
            // The first few say enough; a broken invariant tends to break many times.
            guard outcome.violations.count < 8 else { return }
            outcome.violations.append("\(context): \(what)")
        }

        /// A message decoder with the fixed subscriptions in `format`; nil, and a violation, if
        /// they do not parse.
        mutating func messageDecoder(_ format: PayloadFormat, _ limits: IngestLimits) -> MessageDecoder? {
            switch FuzzCheck.subscriptions {
            case .success(let specs):
                let inFormat = specs.map { spec in
                    var spec = spec
                    spec.format = format
                    return spec
                }
                return MessageDecoder(subscriptions: inFormat, limits: limits)
            case .failure(let error):
                context = "setup"
                fail("the fixed subscriptions do not parse: \(error)")
                return nil
            }
        }

        // MARK: The tape

        /// Parses `b` and checks the tape; returns the parse error, if any.
        mutating func tape(_ b: UnsafeRawBufferPointer, maxDepth: Int) -> JSONError? {
            context = "tape"
            var tape = JSONTape(maxDepth: maxDepth)
            do {
                try tape.parse(b)
            } catch {
                switch error {
                case .syntax(let offset, _):
                    if offset < 0 || offset > b.count { fail("syntax error offset \(offset) of \(b.count)") }
                    outcome.verdicts.append(.rejected("syntax"))
                case .invalidUTF8(let offset):
                    if offset < 0 || offset >= b.count { fail("invalid UTF-8 offset \(offset) of \(b.count)") }
                    outcome.verdicts.append(.rejected("invalid_utf8"))
                case .tooDeep(let limit):
                    if limit != maxDepth { fail("too deep for \(limit), the limit is \(maxDepth)") }
                    outcome.verdicts.append(.rejected("too_deep"))
                }
                return error
            }
            let nodes = tape.nodes
            if nodes.isEmpty {
                fail("accepted with no nodes")
            } else if walk(tape, b, 0, depth: 1) != nodes.count {
                fail("the root does not span the tape")
            }
            outcome.verdicts.append(.accepted(nodes.count))
            return nil
        }

        /// Checks the value at `i` and everything inside it; returns the index after it.
        mutating func walk(_ tape: JSONTape, _ b: UnsafeRawBufferPointer, _ i: Int, depth: Int) -> Int {
            let nodes = tape.nodes
            guard i < nodes.count else {
                fail("node \(i) is past the end \(nodes.count)")
                return nodes.count
            }
            let node = nodes[i]
            let end = Int(node.end)
            switch node.kind {
            case .object, .array:
                if depth > tape.maxDepth { fail("depth \(depth) beyond \(tape.maxDepth)") }
                guard end > i, end <= nodes.count, node.count >= 0 else {
                    fail("container \(i) ends at \(end) of \(nodes.count)")
                    return nodes.count
                }
                var j = i + 1
                for _ in 0..<Int(node.count) {
                    guard j < end else {
                        fail("container \(i) holds fewer than \(node.count) members")
                        return end
                    }
                    if node.kind == .object {
                        if nodes[j].kind != .string { fail("key \(j) is not a string") }
                        j = walk(tape, b, j, depth: depth + 1)
                    }
                    j = walk(tape, b, j, depth: depth + 1)
                }
                if j != end { fail("container \(i) ends at \(end), its members at \(j)") }
                return end
            case .string:
                if end != i + 1 { fail("string \(i) ends at \(end)") }
                let start = Int(node.start)
                let stop = start + Int(node.length)
                guard start >= 1, node.length >= 0, stop < b.count, b[start - 1] == UInt8(ascii: "\""),
                    b[stop] == UInt8(ascii: "\"")
                else {
                    fail("string \(i) at \(start)..<\(stop) is not between quotes")
                    return i + 1
                }
                let raw = tape.rawBytes(i, in: b)
                if raw.contains(where: { $0 < 0x20 }) { fail("control character in string \(i)") }
                if node.escaped {
                    if !raw.contains(UInt8(ascii: "\\")) { fail("string \(i) marked escaped has no escape") }
                    let decoded = tape.string(i, in: b)
                    if decoded.utf8.count > 3 * raw.count { fail("string \(i) decodes to more than it holds") }
                } else {
                    if raw.contains(UInt8(ascii: "\\")) { fail("string \(i) has an escape not marked") }
                    if String(validating: raw, as: UTF8.self) == nil { fail("string \(i) is not UTF-8") }
                }
                return i + 1
            case .number:
                if end != i + 1 { fail("number \(i) ends at \(end)") }
                let start = Int(node.start)
                let stop = start + Int(node.length)
                guard start >= 0, node.length > 0, stop <= b.count else {
                    fail("number \(i) at \(start)..<\(stop) is outside the input")
                    return i + 1
                }
                let raw = UnsafeRawBufferPointer(rebasing: b[start..<stop])
                let hasFraction = raw.contains {
                    $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E")
                }
                if node.isInteger == hasFraction { fail("number \(i) isInteger is \(node.isInteger)") }
                let text = String(decoding: raw, as: UTF8.self)
                if let expected = Double(text) {
                    if expected.bitPattern != node.number.bitPattern {
                        fail("number \(text.prefix(80)) parsed as \(node.number), correctly rounded \(expected)")
                    }
                } else {
                    fail("number \(text.prefix(80)) is not a number")
                }
                return i + 1
            case .true, .false, .null:
                if end != i + 1 { fail("literal \(i) ends at \(end)") }
                return i + 1
            }
        }

        // MARK: The decoders

        /// One payload through the payload decoder (twice, into a filled and an empty array)
        /// and the message through the message decoder (twice: the route cache).
        /// `decoder` and `messages` are reused across cases, as the daemon reuses them across
        /// messages; `messages` must have been made with `limits` and the subscriptions of `format`
        /// (nil when they do not parse: that violation is recorded, the message checks skipped).
        mutating func decode(
            payload: UnsafeRawBufferPointer, topic: UnsafeRawBufferPointer?, format: PayloadFormat, namesMetric: Bool,
            limits: IngestLimits, tape: JSONError?, decoder: inout PayloadDecoder, messages: inout MessageDecoder?
        ) {
            let topicMetric = namesMetric ? FuzzCheck.topicMetric : nil
            context = "\(format.rawValue)/\(namesMetric ? "metric" : "no-metric")"

            // The payload decoder.
            let sentinel = DecodedValue(metric: "sentinel", value: -1, timestamp: nil, unit: nil)
            var filled = [sentinel]
            let first: Result<[DecodedValue], RejectReason>
            do {
                try decoder.decode(
                    payload, format: format, topicMetric: topicMetric, receivedAt: receivedAt, into: &filled)
                if filled.first != sentinel { fail("the decoder changed what was in out") }
                first = .success(Array(filled.dropFirst()))
            } catch {
                if filled != [sentinel] { fail("a rejected payload left \(filled.count - 1) values") }
                first = .failure(error)
            }
            var fresh: [DecodedValue] = []
            let again: Result<[DecodedValue], RejectReason>
            do {
                try decoder.decode(
                    payload, format: format, topicMetric: topicMetric, receivedAt: receivedAt, into: &fresh)
                again = .success(fresh)
            } catch {
                again = .failure(error)
            }
            if first != again { fail("decoding again gave \(again), first \(first)") }

            switch first {
            case .success(let values):
                outcome.verdicts.append(.accepted(values.count))
                checkValues(values, format: format, topicMetric: topicMetric)
            case .failure(let reason):
                outcome.verdicts.append(.rejected(reason.code.rawValue))
                if !FuzzCheck.payloadCodes.contains(reason.code) {
                    fail("the payload decoder rejects with \(reason.code)")
                }
            }
            if format == .json || format == .senml {
                checkAgreesWithTape(first, tape)
            }

            // The message decoder.
            guard var messageDecoder = messages.take() else { return }
            defer { messages = messageDecoder }
            let fixedTopic = namesMetric ? FuzzCheck.fixedTopicWithMetric : FuzzCheck.fixedTopicWithoutMetric
            let sentinelReading = Reading(
                series: SeriesKey(network: "s", site: "s", device: "s", metric: "s"), value: -1,
                timestamp: Timestamp(micros: 1))
            func decodeMessage(into out: inout [Reading]) -> RejectReason? {
                func decode(topic: UnsafeRawBufferPointer) -> RejectReason? {
                    do {
                        try messageDecoder.decode(topic: topic, payload: payload, receivedAt: receivedAt, into: &out)
                        return nil
                    } catch {
                        return error
                    }
                }
                if let topic { return decode(topic: topic) }
                return Array(fixedTopic.utf8).withUnsafeBytes { decode(topic: $0) }
            }
            var readings = [sentinelReading]
            let messageError = decodeMessage(into: &readings)
            var readingsAgain: [Reading] = []
            let messageErrorAgain = decodeMessage(into: &readingsAgain)
            if let messageError {
                outcome.verdicts.append(.rejected(messageError.code.rawValue))
                if readings != [sentinelReading] {
                    fail("a rejected message left \(readings.count - 1) readings")
                }
                if !RejectReason.Code.all.contains(messageError.code) {
                    fail("unknown reject code \(messageError.code)")
                }
            } else {
                outcome.verdicts.append(.accepted(readings.count - 1))
                if readings.first != sentinelReading { fail("the message decoder changed out") }
                readings.removeFirst()
                checkReadings(readings, limits: limits)
            }
            if messageErrorAgain != messageError || (messageError == nil && readingsAgain != readings) {
                fail("the message decoded again (route cached) differs")
            }
            if topic == nil {
                checkMessageAgreesWithPayload(
                    messageError, readings, first, payload: payload, topicMetric: topicMetric, limits: limits)
            }
        }

        mutating func checkValues(
            _ values: [DecodedValue], format: PayloadFormat, topicMetric: String?
        ) {
            if values.isEmpty { fail("accepted with no values") }
            if format == .number, values.count != 1 || values[0].timestamp != nil || values[0].unit != nil {
                fail("a bare number gave \(values)")
            }
            for d in values {
                if !d.value.isFinite { fail("value \(d.value) is not finite") }
                if topicMetric != nil {
                    if let m = d.metric { fail("metric \(m) in the payload overrides the topic's") }
                } else if let m = d.metric {
                    if !Names.isValid(m) { fail("metric \(PayloadDecoder.quoted(m)) is not a valid name") }
                } else {
                    fail("a value with no metric and none in the topic")
                }
                checkUnit(d.unit)
            }
        }

        mutating func checkUnit(_ unit: String?) {
            guard let u = unit else { return }
            let printable = u.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F }
            if u.isEmpty || u.utf8.count > 32 || !printable {
                fail("unit \(PayloadDecoder.quoted(u)) is not 1 to 32 printable bytes")
            }
        }

        mutating func checkReadings(_ readings: [Reading], limits: IngestLimits) {
            if readings.isEmpty { fail("message accepted with no readings") }
            let newest = receivedAt.adding(limits.maxFuture)
            let oldest = limits.maxAge.map { receivedAt.subtracting($0) }
            for r in readings {
                if !r.series.levels.allSatisfy(Names.isValid) {
                    fail("series \(PayloadDecoder.quoted(r.series.path)) has an invalid name")
                }
                if SeriesKey(path: r.series.path) != r.series {
                    fail("series \(PayloadDecoder.quoted(r.series.path)) does not round-trip")
                }
                if !r.value.isFinite { fail("reading value \(r.value) is not finite") }
                checkUnit(r.unit)
                if r.timestampFromPayload {
                    if r.timestamp > newest || (oldest.map { r.timestamp < $0 } ?? false) {
                        fail("reading time \(r.timestamp.micros) outside the accepted range")
                    }
                } else if r.timestamp != receivedAt {
                    fail("a reading without a payload time is not at the time of receipt")
                }
            }
        }

        /// The payload decoder's JSON verdict is the tape's.
        mutating func checkAgreesWithTape(
            _ result: Result<[DecodedValue], RejectReason>, _ tape: JSONError?
        ) {
            let expected: RejectReason.Code?
            switch tape {
            case nil: expected = nil
            case .syntax?: expected = .invalidJSON
            case .tooDeep?: expected = .tooDeep
            case .invalidUTF8?: expected = .invalidUTF8
            }
            let jsonCodes: Set<RejectReason.Code> = [.invalidJSON, .tooDeep, .invalidUTF8]
            switch result {
            case .success:
                if let expected { fail("accepted a payload the tape rejects as \(expected)") }
            case .failure(let reason):
                if let expected, reason.code != expected {
                    fail("rejected with \(reason.code), the tape says \(expected)")
                }
                if expected == nil, jsonCodes.contains(reason.code) {
                    fail("rejected as \(reason.code) JSON the tape accepts")
                }
            }
        }

        /// On a valid fixed topic, the message decoder gives the payload decoder's values,
        /// or rejects them for their time.
        mutating func checkMessageAgreesWithPayload(
            _ error: RejectReason?, _ readings: [Reading], _ payloadResult: Result<[DecodedValue], RejectReason>,
            payload: UnsafeRawBufferPointer, topicMetric: String?, limits: IngestLimits
        ) {
            if payload.count > limits.maxPayloadBytes {
                if error?.code != .payloadTooLarge { fail("a payload too large gave \(String(describing: error))") }
                return
            }
            switch payloadResult {
            case .failure(let reason):
                if error != reason { fail("message rejected as \(String(describing: error)), payload as \(reason)") }
            case .success(let values):
                let newest = receivedAt.adding(limits.maxFuture)
                let oldest = limits.maxAge.map { receivedAt.subtracting($0) }
                let outOfRange = values.contains { d in
                    guard let t = d.timestamp else { return false }
                    return t > newest || (oldest.map { t < $0 } ?? false)
                }
                if outOfRange {
                    if error?.code != .futureTimestamp && error?.code != .tooOld {
                        fail("a time out of range gave \(String(describing: error))")
                    }
                    return
                }
                if let error {
                    fail("message rejected as \(error), the payload decodes")
                    return
                }
                guard readings.count == values.count else {
                    fail("\(readings.count) readings from \(values.count) values")
                    return
                }
                let network = topicMetric != nil ? "energy" : "water"
                for (r, d) in zip(readings, values) {
                    let series = SeriesKey(
                        network: network, site: "site-1", device: "dev.2", metric: d.metric ?? topicMetric ?? "")
                    if r.series != series || r.value.bitPattern != d.value.bitPattern || r.unit != d.unit
                        || r.timestamp != (d.timestamp ?? receivedAt) || r.timestampFromPayload != (d.timestamp != nil)
                    {
                        fail("reading \(r) from value \(d)")
                    }
                }
            }
        }
    }
}
