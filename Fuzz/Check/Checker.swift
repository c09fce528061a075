import VigilCore

extension FuzzCheck {
    /// One input's checks: what they saw and which invariants broke.
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

        // MARK: The decoders

        /// One payload: once through each parser of its own (the JSON tape), then in each format
        /// and each kind of topic through the payload decoder and the message decoder. One
        /// payload decoder serves every case and one message decoder every case of a format.
        mutating func payload(
            _ payload: UnsafeRawBufferPointer, formats: [PayloadFormat], namesMetric: [Bool],
            topic: UnsafeRawBufferPointer?, limits: IngestLimits
        ) {
            let tape = checkTape(payload, maxDepth: limits.maxJSONDepth)
            var decoder = PayloadDecoder(maxDepth: limits.maxJSONDepth)
            for format in formats {
                var messages = messageDecoder(format, limits)
                for namesMetric in namesMetric {
                    decode(
                        payload: payload, topic: topic, format: format, namesMetric: namesMetric, limits: limits,
                        tape: tape, decoder: &decoder, messages: &messages)
                }
            }
        }

        /// One payload through the payload decoder (twice, into a filled and an empty array)
        /// and the message through the message decoder (twice: the route cache).
        /// `decoder` and `messages` are reused across cases, as the daemon reuses them across
        /// messages; `messages` must have been made with `limits` and the subscriptions of `format`
        /// (nil when they do not parse: that violation is recorded, the message checks skipped).
        mutating func decode(
            payload: UnsafeRawBufferPointer, topic: UnsafeRawBufferPointer?, format: PayloadFormat, namesMetric: Bool,
            limits: IngestLimits, tape: JSONError?, decoder: inout PayloadDecoder, messages: inout MessageDecoder?
        ) {
            if format == .hj212 {
                // Frames name their own series: checks of their own, once per payload.
                if !namesMetric { checkHJ212(payload, limits: limits) }
                return
            }
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
                checkValues(values, topicMetric: topicMetric)
            case .failure(let reason):
                outcome.verdicts.append(.rejected(reason.code.rawValue))
                if !FuzzCheck.payloadCodes.contains(reason.code) {
                    fail("the payload decoder rejects with \(reason.code)")
                }
            }
            checkFormat(format, first, tape: tape)

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

        /// What only one format promises, beyond the checks of every decode. A new format is one
        /// more case here: the switch has no default, so the compiler asks for it.
        mutating func checkFormat(
            _ format: PayloadFormat, _ result: Result<[DecodedValue], RejectReason>, tape: JSONError?
        ) {
            switch format {
            case .number:
                if case .success(let values) = result,
                    values.count != 1 || values[0].timestamp != nil || values[0].unit != nil
                {
                    fail("a bare number gave \(values)")
                }
            case .json, .senml:
                checkAgreesWithTape(result, tape)
            case .auto:
                // A number or JSON, whichever the payload looks like: nothing more than every decode.
                break
            case .hj212:
                // Never reaches here: `checkHJ212` (HJ212Check.swift) checks frames.
                break
            }
        }

        mutating func checkValues(_ values: [DecodedValue], topicMetric: String?) {
            if values.isEmpty { fail("accepted with no values") }
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
