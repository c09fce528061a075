import Foundation
import VigilCore

/// Messages copied out of libmosquitto's callback: topics and payloads in one byte arena,
/// so handing a batch on costs one swap, not an allocation per message.
public struct MessageBatch: Sendable {
    public struct Entry: Sendable {
        public var topicStart: Int32
        public var topicCount: Int32
        public var payloadStart: Int32
        public var payloadCount: Int32
        public var receivedAt: Timestamp
    }

    public private(set) var bytes: [UInt8] = []
    public private(set) var entries: [Entry] = []

    public init() {}

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    public mutating func append(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, receivedAt: Timestamp) {
        let t = Int32(bytes.count)
        bytes.append(contentsOf: topic)
        let p = Int32(bytes.count)
        bytes.append(contentsOf: payload)
        entries.append(
            Entry(
                topicStart: t, topicCount: Int32(topic.count), payloadStart: p, payloadCount: Int32(payload.count),
                receivedAt: receivedAt))
    }

    public mutating func append(topic: String, payload: [UInt8], receivedAt: Timestamp) {
        var topic = topic
        topic.withUTF8 { t in
            payload.withUnsafeBytes { p in append(topic: UnsafeRawBufferPointer(t), payload: p, receivedAt: receivedAt) }
        }
    }

    /// Empties the batch; gives back memory after a burst so an idle daemon stays small.
    public mutating func clear() {
        if bytes.capacity > 4 << 20 {
            bytes = []
            entries = []
        } else {
            bytes.removeAll(keepingCapacity: true)
            entries.removeAll(keepingCapacity: true)
        }
    }

    /// Calls `body` with each message's topic and payload bytes, valid only during the call.
    public func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, Timestamp) throws -> Void) rethrows {
        try bytes.withUnsafeBytes { all in
            for e in entries {
                let topic = UnsafeRawBufferPointer(rebasing: all[Int(e.topicStart)..<Int(e.topicStart + e.topicCount)])
                let payload = UnsafeRawBufferPointer(
                    rebasing: all[Int(e.payloadStart)..<Int(e.payloadStart + e.payloadCount)])
                try body(topic, payload, e.receivedAt)
            }
        }
    }
}

/// The hand-off between the MQTT network thread and the ingest thread.
///
/// `push` never drops: when the inbox is full it blocks the network thread until the
/// consumer takes a batch, so libmosquitto stops reading the socket and the broker keeps
/// the backlog for the persistent session. What sits here has been acknowledged to the
/// broker (libmosquitto sends PUBACK before the callback), so it is part of the window a
/// crash can lose: keep `maxMessages` small.
///
/// Two producers and one consumer thread; every field of the state is behind the lock. The
/// MQTT network thread `push`es (and blocks while the inbox is full: the only producer that
/// waits, so `producerIsWaiting` and `backPressure` are its own). The HJ 212 listener
/// `offer`s, which never blocks and holds at most a quarter of the inbox (messages and bytes); when an
/// offer is refused the listener stops reading its sockets until ingest has taken the batch.
public final class Inbox: Sendable {
    struct State {
        var batch = MessageBatch()
        var closed = false
        var consumerWaiting = false
        /// How many waiting messages wake the consumer before its deadline.
        var consumerWakeAt = 1
        var producerWaiting = false
        /// `hold()`: the producer that pushes waits, whatever the room.
        var held = false
        /// Messages of the second producer (`offer`) in `batch`.
        var offered = 0
        var offeredBytes = 0
        /// An offer was refused since the last take (ingest should take early).
        var offerRefused = false
        var refusedOffers: UInt64 = 0
        var blockedNanos: UInt64 = 0
        var blockedCount: UInt64 = 0
        var pushed: UInt64 = 0

        /// No room for `bytes` more (a message larger than the whole inbox still goes into an empty one).
        func isFull(adding bytes: Int, maxMessages: Int, maxBytes: Int) -> Bool {
            !batch.isEmpty && (batch.count >= maxMessages || batch.bytes.count + bytes > maxBytes)
        }
    }

    private let state = ConditionLock(State())

    public let maxMessages: Int
    public let maxBytes: Int

    public init(maxMessages: Int = 8192, maxBytes: Int = 8 << 20) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }

    /// Copies a message in; blocks while the inbox is full (back-pressure), unless closed.
    public func push(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, receivedAt: Timestamp) {
        let size = topic.count + payload.count
        // Set only by this call's own wait: the time it waited, never another's.
        var blockedAt: UInt64 = 0
        let wakeConsumer = state.wait(
            while: { s in
                guard !s.closed, s.held || s.isFull(adding: size, maxMessages: maxMessages, maxBytes: maxBytes) else {
                    return false
                }
                if blockedAt == 0 {
                    s.producerWaiting = true
                    s.blockedCount += 1
                    blockedAt = DispatchTime.now().uptimeNanoseconds
                }
                return true
            },
            then: { s in
                if blockedAt != 0 {
                    s.producerWaiting = false
                    s.blockedNanos += DispatchTime.now().uptimeNanoseconds - blockedAt
                }
                s.batch.append(topic: topic, payload: payload, receivedAt: receivedAt)
                s.pushed += 1
                return s.consumerWaiting && s.batch.count >= s.consumerWakeAt
            })
        if wakeConsumer { state.broadcast() }
    }

    /// The second producer's hand-off: copies a message in unless the inbox is full or this
    /// producer's messages already hold a quarter of it (messages or bytes), so the MQTT
    /// thread always has the rest; never blocks.
    /// - Returns: false when refused (the caller keeps the message and offers it again later).
    public func offer(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, receivedAt: Timestamp) -> Bool {
        let size = topic.count + payload.count
        let (taken, wakeConsumer) = state.withLock { s -> (Bool, Bool) in
            let overShare = s.offered > 0 && (s.offered >= max(1, maxMessages / 4) || s.offeredBytes + size > maxBytes / 4)
            if !s.closed && (overShare || s.isFull(adding: size, maxMessages: maxMessages, maxBytes: maxBytes)) {
                s.offerRefused = true
                s.refusedOffers += 1
                return (false, s.consumerWaiting)
            }
            s.batch.append(topic: topic, payload: payload, receivedAt: receivedAt)
            s.pushed += 1
            s.offered += 1
            s.offeredBytes += size
            return (true, s.consumerWaiting && s.batch.count >= s.consumerWakeAt)
        }
        if wakeConsumer { state.broadcast() }
        return taken
    }

    /// Messages of the second producer waiting now, and its refused offers so far.
    public var offers: (waiting: Int, refused: UInt64) { state.withLock { ($0.offered, $0.refusedOffers) } }

    /// Swaps the waiting messages into `spare` (which is cleared first).
    /// - Parameters:
    ///   - deadline: how long to wait; nil waits until messages come or the inbox closes.
    ///   - wakeAt: how many messages end the wait before the deadline. An ingest thread
    ///     with a commit pending passes a large number and sleeps until its commit is due,
    ///     instead of waking for every message.
    /// - Returns: false when nothing came before the deadline or the inbox is closed and empty.
    public func take(into spare: inout MessageBatch, deadline: MonotonicDeadline?, wakeAt: Int = 1) -> Bool {
        spare.clear()
        let wakeAt = max(1, min(wakeAt, maxMessages))
        let (got, wakeProducer) = state.wait(
            until: deadline,
            while: { s in
                s.consumerWakeAt = wakeAt
                s.consumerWaiting = s.batch.count < wakeAt && !s.closed && !s.producerWaiting && !s.offerRefused
                return s.consumerWaiting
            },
            then: { s in
                s.consumerWaiting = false
                s.offerRefused = false
                guard !s.batch.isEmpty else { return (false, false) }
                swap(&s.batch, &spare)
                s.offered = 0
                s.offeredBytes = 0
                return (true, s.producerWaiting)
            })
        if wakeProducer { state.broadcast() }
        return got
    }

    /// Holds the producer that `push`es (the MQTT network thread) at its next message, as
    /// a full inbox does, until `release()`: libmosquitto then reads no further, and
    /// acknowledges nothing more, while ingest is in an fsync. `offer` is not held.
    public func hold() {
        state.withLock { $0.held = true }
    }

    public func release() {
        state.withLockBroadcasting { $0.held = false }
    }

    /// Wakes a waiting consumer without a message (to make it look at the clock or stop).
    public func wake() {
        state.broadcast()
    }

    /// After close, `push` no longer blocks and `take` returns what is left, then false.
    public func close() {
        state.withLockBroadcasting { $0.closed = true }
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    /// The MQTT network thread (the producer that `push`es) is held by back-pressure now; the
    /// listener, which only `offer`s, never is.
    public var producerIsWaiting: Bool { state.withLock { $0.producerWaiting } }

    /// Messages waiting now.
    public var depth: Int { state.withLock { $0.batch.count } }

    /// How often and how long the MQTT network thread was held back: ingest was behind, or
    /// in an fsync (`hold`).
    public var backPressure: (count: UInt64, seconds: Double, pushed: UInt64) {
        state.withLock { ($0.blockedCount, Double($0.blockedNanos) / 1e9, $0.pushed) }
    }
}
