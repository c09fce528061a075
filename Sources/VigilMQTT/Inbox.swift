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
/// crash can lose, with what ingest has taken and not committed yet. `window` bounds that
/// loss: while the oldest message not yet committed (`committed()`) came more than `window`
/// ago, or the messages not committed are as many as arrive in `window` at the recent
/// rate, `push` waits, so libmosquitto reads and acknowledges nothing more and the broker
/// keeps what comes. A slow or descheduled ingest thread, or a burst after a stall, costs
/// a crash no more than `window` of messages. `maxMessages` bounds the inbox in any case.
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
        /// Monotonic nanoseconds of the first message in `batch`.
        var batchSince: UInt64?
        /// Of the first message `take` handed out since the last `committed()`, and how many.
        var takenSince: UInt64?
        var takenCount = 0
        /// Of the first message of the batch `take` handed out last, and its size.
        var lastTakenSince: UInt64?
        var lastTakenCount = 0
        var window: UInt64?
        /// The producer waits for a commit: the window is full (ingest is late).
        var heldByWindow = false
        var windowHolds: UInt64 = 0
        /// The rate that turns the window into a count.
        var arrivals = ArrivalRate()

        /// The window is full: the oldest message not committed came more than `window`
        /// before `now`, or the messages not committed are as many as `window` holds at the
        /// steady rate (`ArrivalRate`; at least `minWindowMessages`), so a burst after a
        /// stall (a broker's backlog, a publisher catching up) counts as what it is.
        func windowFull(now: UInt64) -> Bool {
            guard let window, let since = takenSince ?? batchSince else { return false }
            if now &- since > window { return true }
            let most = Swift.max(Inbox.minWindowMessages, arrivals.messages(in: window))
            return takenCount + batch.count >= most
        }

        /// No room for `bytes` more (a message larger than the whole inbox still goes into an empty one).
        func isFull(adding bytes: Int, maxMessages: Int, maxBytes: Int) -> Bool {
            !batch.isEmpty && (batch.count >= maxMessages || batch.bytes.count + bytes > maxBytes)
        }

    }

    /// The window in messages never holds fewer (a start, a trickle).
    static let minWindowMessages = 64

    private let state = ConditionLock(State())

    public let maxMessages: Int
    public let maxBytes: Int

    private let now: @Sendable () -> UInt64

    /// - Parameters:
    ///   - window: seconds a message may wait uncommitted before `push` waits; nil: no bound
    ///     in time (see `setWindow`).
    ///   - now: monotonic nanoseconds (a test passes its own clock).
    public init(
        maxMessages: Int = 8192, maxBytes: Int = 8 << 20, window: Double? = nil,
        now: @escaping @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }
    ) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
        self.now = now
        setWindow(window)
    }

    /// The bound in time on what is acknowledged and not committed (see the type's doc).
    public func setWindow(_ seconds: Double?) {
        state.withLockBroadcasting { $0.window = seconds.map { UInt64(max(0, $0) * 1e9) } }
    }

    /// Copies a message in; blocks while the inbox is full (back-pressure), unless closed.
    public func push(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, receivedAt: Timestamp) {
        let size = topic.count + payload.count
        // Set only by this call's own wait: the time it waited, never another's.
        var blockedAt: UInt64 = 0
        let now = self.now
        let wakeConsumer = state.wait(
            while: { s in
                guard !s.closed else { return false }
                let t = now()
                let window = s.windowFull(now: t)
                guard s.held || window || s.isFull(adding: size, maxMessages: maxMessages, maxBytes: maxBytes) else {
                    return false
                }
                if window && !s.heldByWindow {
                    s.heldByWindow = true
                    s.windowHolds += 1
                    // A consumer asleep until its commit is due takes and commits now.
                    if s.consumerWaiting { state.broadcastFromWait() }
                }
                if blockedAt == 0 {
                    s.producerWaiting = true
                    s.blockedCount += 1
                    blockedAt = t
                }
                return true
            },
            then: { s in
                let t = now()
                if blockedAt != 0 {
                    s.producerWaiting = false
                    s.heldByWindow = false
                    s.blockedNanos += t &- blockedAt
                }
                if s.batch.isEmpty { s.batchSince = t }
                s.arrivals.count(at: t)
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
            let t = now()
            if s.batch.isEmpty { s.batchSince = t }
            s.arrivals.count(at: t)
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
                s.takenSince = s.takenSince ?? s.batchSince
                s.takenCount += spare.count
                s.lastTakenSince = s.batchSince
                s.lastTakenCount = spare.count
                s.batchSince = nil
                s.offered = 0
                s.offeredBytes = 0
                return (true, s.producerWaiting)
            })
        if wakeProducer { state.broadcast() }
        return got
    }

    /// What `take` handed out is committed: its messages no longer count against `window`.
    /// - Parameter keepingLast: a commit in the middle of the last batch taken, whose other
    ///   messages still wait (they count from that batch's first message).
    public func committed(keepingLast: Bool = false) {
        let wake = state.withLock { s -> Bool in
            s.takenSince = keepingLast ? s.lastTakenSince : nil
            s.takenCount = keepingLast ? s.lastTakenCount : 0
            return s.heldByWindow
        }
        if wake { state.broadcast() }
    }

    /// The producer waits for a commit because its oldest uncommitted message is `window`
    /// old (ingest is late): the consumer should commit now.
    public var isHeldByWindow: Bool { state.withLock { $0.heldByWindow } }

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

    /// How often the producer was held because the oldest uncommitted message was `window`
    /// old (counted in `backPressure` too).
    public var windowHolds: UInt64 { state.withLock { $0.windowHolds } }
}

/// Messages per second at a steady rate: the median of the last ten 20 ms buckets, so a
/// burst shorter than 80 ms (a backlog delivered after a stall or a restart) does not raise
/// it, and a rate that changes (a load that starts) is followed within 100 ms.
struct ArrivalRate {
    static let bucketNanos: UInt64 = 20_000_000
    static let buckets = 10
    /// The last ten whole buckets, oldest overwritten first.
    private var counts = [Int](repeating: 0, count: buckets)
    private var next = 0
    private var bucket: UInt64 = 0
    private var current = 0
    private(set) var perSecond = 0

    mutating func count(at t: UInt64) {
        let b = t / Self.bucketNanos
        if b > bucket {
            // The bucket that ends, then an empty one for each that passed without a message.
            let ended = Int(min(b - bucket, UInt64(Self.buckets)))
            for i in 0..<ended {
                counts[next] = i == 0 ? current : 0
                next = (next + 1) % Self.buckets
            }
            current = 0
            bucket = b
            perSecond = counts.sorted()[Self.buckets / 2] * Int(1_000_000_000 / Self.bucketNanos)
        }
        current += 1
    }

    /// Messages that come in `nanos` at that rate, rounded up.
    func messages(in nanos: UInt64) -> Int {
        Int((UInt64(perSecond) * nanos + 999_999_999) / 1_000_000_000)
    }
}
