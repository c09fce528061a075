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
    private let rejects: RejectStore
    private let counters: CounterStore
    private let payloadPrefix: Int
    private let logger: Logger

    init(
        subscriptions: [SubscriptionSpec], limits: IngestLimits, clock: any VigilClock, buffer: Buffer, logger: Logger
    ) {
        decoder = MessageDecoder(subscriptions: subscriptions, limits: limits)
        self.clock = ClockWatch(clock: clock, logger: logger)
        rejects = buffer.rejects
        counters = buffer.counters
        payloadPrefix = buffer.options.rejectPayloadPrefix
        self.logger = logger
    }

    /// New subscriptions (layouts, formats) or limits; the clock's offset carries over.
    mutating func reload(subscriptions: [SubscriptionSpec], limits: IngestLimits) {
        let offset = decoder.wallOffset
        decoder = MessageDecoder(subscriptions: subscriptions, limits: limits)
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
        return true
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

    private mutating func reject(
        _ reason: RejectReason, topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, at: Timestamp,
        stats: inout IngestSnapshot
    ) {
        stats.rejected[reason.code, default: 0] += 1
        let topicText = String(decoding: topic.prefix(512), as: UTF8.self)
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
