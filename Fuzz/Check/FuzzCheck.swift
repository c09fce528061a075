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
///
/// Where things are: this file reads the input and holds the fixtures; `Checker.swift` runs a
/// payload through the decoders and checks what every format promises; `TapeCheck.swift` checks
/// the JSON tape. A new decoder is one more case:
/// - a new `PayloadFormat` (HJ 212 frames, say) is decoded in raw inputs at once, and the
///   compiler asks for its case in `Checker.checkFormat`, where what only it promises goes. The
///   control byte picks among the first four formats only: all its bits are taken, so reaching
///   a fifth from control inputs means a second control byte.
/// - a parser of its own, as the tape is to JSON, gets a file like `TapeCheck.swift` and one
///   call in `Checker.payload`, which runs every payload through each parser once.
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
            checker.payload(
                input, formats: PayloadFormat.allCases, namesMetric: [false, true], topic: nil, limits: IngestLimits())
            return checker.outcome
        }
        let formats = PayloadFormat.allCases
        let format = formats[Int(control & 3) % formats.count]
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
            checker.payload(payload, formats: [format], namesMetric: [namesMetric], topic: topic, limits: limits)
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
}
