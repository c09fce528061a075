import Logging
import VigilCore
import VigilStorage

/// Stage 2 of a reading's path, after the topic: a message's topic and payload into
/// readings on vigil's time line, or a reject, counted by reason and kept for
/// `vigil rejects`. The log says so at most once a second per reason.
struct DecodeStage {
    private(set) var decoder: MessageDecoder
    private var clock: ClockWatch
    private var rejectLog: [RejectReason.Code: (last: Double, suppressed: Int)] = [:]
    /// SenML records without a number that the current decoder skipped and were counted.
    private var skippedCounted = 0
    /// When each (MN, unknown code) was last kept as a reject; at most 4,096 entries.
    private var unknownRejected: [String: Timestamp] = [:]
    private let rejects: RejectStore
    private let counters: CounterStore
    private let payloadPrefix: Int
    private let logger: Logger

    init(
        subscriptions: [SubscriptionSpec], limits: IngestLimits, hj212: HJ212Decoder? = nil, clock: any VigilClock,
        buffer: Buffer, logger: Logger
    ) {
        decoder = MessageDecoder(subscriptions: subscriptions, limits: limits, hj212: hj212)
        self.clock = ClockWatch(clock: clock, logger: logger)
        rejects = buffer.rejects
        counters = buffer.counters
        payloadPrefix = buffer.options.rejectPayloadPrefix
        self.logger = logger
    }

    /// New subscriptions (layouts, formats) or limits; the clock's offset carries over.
    mutating func reload(subscriptions: [SubscriptionSpec], limits: IngestLimits, hj212: HJ212Decoder?) {
        let offset = decoder.wallOffset
        decoder = MessageDecoder(subscriptions: subscriptions, limits: limits, hj212: hj212)
        decoder.wallOffset = offset
        skippedCounted = 0
    }

    /// The readings of one message into `out` (emptied first).
    /// - Returns: false when the message is rejected; the reject is recorded.
    mutating func decode(
        topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, receivedAt: Timestamp, into out: inout [Reading],
        stats: inout IngestSnapshot
    ) -> Bool {
        stats.messagesReceived += 1
        out.removeAll(keepingCapacity: true)
        do throws(RejectReason) {
            do throws(RejectReason) {
                try decoder.decode(topic: topic, payload: payload, receivedAt: receivedAt, into: &out)
            } catch where (error.code == .futureTimestamp || error.code == .tooOld) && watchClock(&stats) {
                // The wall clock was stepped since the last look: judge it again.
                try decoder.decode(topic: topic, payload: payload, receivedAt: receivedAt, into: &out)
            }
        } catch {
            reject(error, topic: topic, payload: payload, at: receivedAt, stats: &stats)
            return false
        }
        if let hj = decoder.lastHJ212 { hj212(hj, topic: topic, payload: payload, at: receivedAt, stats: &stats) }
        return true
    }

    /// What an HJ 212 frame came to besides its readings: values flagged other than N are
    /// counted by flag (they are no readings, so no rule and no aggregate sees them); codes
    /// the table does not know were stored under the code itself, and are counted by code and
    /// kept for `vigil rejects` at most once per station and code an hour (a station that
    /// sends a status code every cycle does not flood the rejects).
    private mutating func hj212(
        _ o: HJ212Outcome, topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, at: Timestamp,
        stats: inout IngestSnapshot
    ) {
        stats.hj212Frames += 1
        for (flag, n) in o.flagged {
            stats.hj212Flagged[flag, default: 0] += UInt64(n)
            counters.add(CounterName.hj212Flagged(flag.label), Int64(n))
        }
        guard !o.unknownCodes.isEmpty else { return }
        var fresh: [String] = []
        for code in o.unknownCodes {
            // Labels bounded: past 256 codes the rest count as `other`.
            let label = stats.hj212UnknownCodes[code] != nil || stats.hj212UnknownCodes.count < 256 ? code : "other"
            stats.hj212UnknownCodes[label, default: 0] += 1
            let key = o.frame.mn + "\u{0}" + code
            if let last = unknownRejected[key], at.micros - last.micros < 3_600_000_000 { continue }
            if unknownRejected.count >= 4096 {
                unknownRejected = unknownRejected.filter { at.micros - $0.value.micros < 3_600_000_000 }
                if unknownRejected.count >= 4096 { unknownRejected.removeAll() }
            }
            unknownRejected[key] = at
            fresh.append(code)
        }
        guard !fresh.isEmpty else { return }
        reject(
            RejectReason(
                .hj212UnknownCode,
                "MN=\(o.frame.mn): code \(fresh.prefix(5).joined(separator: ", ")) is not in the code table; stored as a metric of that name without a unit (name it under hj212.codes); kept here once an hour per station and code"
            ), topic: topic, payload: payload, at: at, stats: &stats)
    }

    /// Counts what a batch of `messages` came to.
    mutating func finishBatch(messages: Int, stats: inout IngestSnapshot) {
        let skipped = decoder.skippedRecords
        if skipped > skippedCounted {
            counters.add(CounterName.senmlSkipped, Int64(skipped - skippedCounted))
            stats.senmlSkipped += UInt64(skipped - skippedCounted)
            skippedCounted = skipped
        }
        counters.add(CounterName.messagesReceived, Int64(messages))
        stats.readingsShifted += UInt64(decoder.takeShifted())
    }

    /// Looks at the clocks (each second, and when a time is rejected).
    /// - Returns: whether the decoder now judges times differently.
    @discardableResult
    mutating func watchClock(_ stats: inout IngestSnapshot) -> Bool {
        let before = decoder.wallOffset
        decoder.wallOffset = clock.look(&stats)
        return decoder.wallOffset != before
    }

    /// The topic as `vigil rejects` and the log show it; the TCP listener's frames as
    /// `hj212/<peer address>/<connection>` (their topic starts with a NUL byte).
    static func topicText(_ topic: UnsafeRawBufferPointer) -> String {
        if topic.first == 0 { return "tcp:" + String(decoding: topic.dropFirst().prefix(512), as: UTF8.self) }
        return String(decoding: topic.prefix(512), as: UTF8.self)
    }

    private mutating func reject(
        _ reason: RejectReason, topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, at: Timestamp,
        stats: inout IngestSnapshot
    ) {
        stats.rejected[reason.code, default: 0] += 1
        let topicText = Self.topicText(topic)
        rejects.add(
            RejectRecord(
                at: at, topic: topicText, reason: reason, payloadPrefix: Array(payload.prefix(payloadPrefix)),
                payloadSize: payload.count))
        let now = Monotonic.seconds()
        var entry = rejectLog[reason.code] ?? (last: -10, suppressed: 0)
        if now - entry.last >= 1 {
            var meta: Logger.Metadata = [
                "reason": "\(reason.code)", "mqtt.topic": "\(topicText)", "detail": "\(reason.detail)",
            ]
            if entry.suppressed > 0 { meta["suppressed"] = "\(entry.suppressed)" }
            logger.warning("rejected message", metadata: meta)
            entry = (now, 0)
        } else {
            entry.suppressed += 1
        }
        rejectLog[reason.code] = entry
    }
}
