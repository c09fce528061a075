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
/// - Important: one producer and one consumer thread. `@unchecked Sendable` because every
///   mutable field is read and written only with `condition` locked.
public final class Inbox: @unchecked Sendable {
    private let condition = MonotonicCondition()
    private var batch = MessageBatch()
    private var closed = false
    private var consumerWaiting = false
    /// How many waiting messages wake the consumer before its deadline.
    private var consumerWakeAt = 1
    private var producerWaiting = false
    private var blockedNanos: UInt64 = 0
    private var blockedCount: UInt64 = 0
    private var pushed: UInt64 = 0

    public let maxMessages: Int
    public let maxBytes: Int

    public init(maxMessages: Int = 8192, maxBytes: Int = 8 << 20) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }

    /// Copies a message in; blocks while the inbox is full (back-pressure), unless closed.
    public func push(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, receivedAt: Timestamp) {
        condition.lock()
        if batch.count >= maxMessages || batch.bytes.count + topic.count + payload.count > maxBytes, !batch.isEmpty {
            let start = DispatchTime.now().uptimeNanoseconds
            blockedCount += 1
            while (batch.count >= maxMessages || batch.bytes.count + topic.count + payload.count > maxBytes)
                && !batch.isEmpty && !closed
            {
                producerWaiting = true
                condition.wait()
            }
            producerWaiting = false
            blockedNanos += DispatchTime.now().uptimeNanoseconds - start
        }
        batch.append(topic: topic, payload: payload, receivedAt: receivedAt)
        pushed += 1
        if consumerWaiting && (batch.count >= consumerWakeAt || producerWaiting) { condition.broadcast() }
        condition.unlock()
    }

    /// Swaps the waiting messages into `spare` (which is cleared first).
    /// - Parameters:
    ///   - deadline: how long to wait; nil waits until messages come or the inbox closes.
    ///   - wakeAt: how many messages end the wait before the deadline. An ingest thread
    ///     with a commit pending passes a large number and sleeps until its commit is due,
    ///     instead of waking for every message.
    /// - Returns: false when nothing came before the deadline or the inbox is closed and empty.
    public func take(into spare: inout MessageBatch, deadline: MonotonicDeadline?, wakeAt: Int = 1) -> Bool {
        spare.clear()
        condition.lock()
        defer { condition.unlock() }
        consumerWakeAt = max(1, min(wakeAt, maxMessages))
        while batch.count < consumerWakeAt && !closed && !producerWaiting {
            consumerWaiting = true
            if let deadline {
                if !condition.wait(until: deadline) { break }
            } else {
                condition.wait()
            }
        }
        consumerWaiting = false
        guard !batch.isEmpty else { return false }
        swap(&batch, &spare)
        if producerWaiting { condition.broadcast() }
        return true
    }

    /// Wakes a waiting consumer without a message (to make it look at the clock or stop).
    public func wake() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// After close, `push` no longer blocks and `take` returns what is left, then false.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    public var isClosed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closed
    }

    /// The network thread is held by back-pressure now.
    public var producerIsWaiting: Bool {
        condition.lock()
        defer { condition.unlock() }
        return producerWaiting
    }

    /// Messages waiting now.
    public var depth: Int {
        condition.lock()
        defer { condition.unlock() }
        return batch.count
    }

    /// How often and how long the network thread was held back because ingest was behind.
    public var backPressure: (count: UInt64, seconds: Double, pushed: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        return (blockedCount, Double(blockedNanos) / 1e9, pushed)
    }
}
