import Foundation
import Logging
import VigilCore

/// What a publishing run did.
public struct PublishReport: Sendable {
    public var sent = 0
    public var acknowledged = 0
    public var seconds = 0.0
    /// The furthest behind schedule the publisher fell, in seconds.
    public var maxLag = 0.0
    public var rate: Double { seconds > 0 ? Double(sent) / seconds : 0 }
}

/// Publishes messages on an open-loop schedule: message `i` is due at `start + i / rate`,
/// whatever the broker does, so a slow consumer shows up as lag, not as a lower rate.
///
/// - Important: `@unchecked Sendable` for `client`, which `close()` drops: `run`, `connect`
///   and `close` are called from one thread at a time. The counters are behind `state`'s lock.
public final class PacedPublisher: MQTTClientDelegate, @unchecked Sendable {
    private var client: MQTTClient?
    private let state = ConditionLock((acked: 0, connected: false))
    /// Messages handed to libmosquitto over every run (touched by `run` and `close` only).
    private var sentTotal = 0
    public let qos: Int32

    public init(endpoint: MQTTEndpoint, qos: Int32, logger: Logger = Logger(label: "vigil.publisher")) throws(MQTTError) {
        self.qos = qos
        // libmosquitto's default of 20 in flight, as every benchmark figure was measured.
        // (With no limit, one bench run saw the broker close a publisher's connection at
        // saturation; not looked into.)
        var e = endpoint
        e.maxInflight = 0
        client = try MQTTClient(endpoint: e, delegate: self, logger: logger)
    }

    /// Connects and waits for the broker's CONNACK.
    public func connect(timeout: TimeInterval = 10) -> Bool {
        client?.start()
        return state.wait(until: .after(timeout), while: { !$0.connected }, then: { $0.connected })
    }

    public func mqttConnected(sessionPresent: Bool) {
        state.withLockBroadcasting { $0.connected = true }
    }

    public func mqttDisconnected(reason: String) {
        state.withLockBroadcasting { $0.connected = false }
    }

    public func mqttPublished(mid: Int32) {
        state.withLockBroadcasting { $0.acked += 1 }
    }

    public var acknowledged: Int { state.withLock { $0.acked } }

    /// Publishes `count` messages at `rate` per second (0: as fast as possible).
    /// - Parameters:
    ///   - message: the topic and payload of message `i`, given the time it is sent; nil
    ///     keeps the slot empty (nothing is sent, the schedule goes on).
    ///   - shouldStop: checked between messages; returning true ends the run early.
    public func run(
        count: Int, rate: Double, retain: Bool = false,
        shouldStop: () -> Bool = { false },
        message: (Int, Timestamp) -> (String, [UInt8])?
    ) -> PublishReport {
        var report = PublishReport()
        guard let client else { return report }
        let start = DispatchTime.now().uptimeNanoseconds
        var i = 0
        while i < count {
            if shouldStop() { break }
            let now = DispatchTime.now().uptimeNanoseconds
            let elapsed = Double(now - start) / 1e9
            let due = rate > 0 ? min(count, Int(elapsed * rate) + 1) : count
            if due <= i {
                // Sleep until the next message is due (at most 1 ms at a time, so bursts stay short).
                let next = Double(i) / rate
                let wait = min(0.001, max(0, next - elapsed))
                if wait > 0 { usleep(useconds_t(wait * 1e6)) }
                continue
            }
            if rate > 0 { report.maxLag = max(report.maxLag, elapsed - Double(i) / rate) }
            let burstEnd = rate > 0 ? due : min(count, i + 256)
            while i < burstEnd {
                guard let (topic, payload) = message(i, Timestamp.now()) else {
                    i += 1
                    continue
                }
                do {
                    try client.publish(topic: topic, payload: payload, qos: qos, retain: retain)
                } catch {
                    usleep(1000)
                    continue
                }
                i += 1
                report.sent += 1
                sentTotal += 1
            }
        }
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        report.acknowledged = acknowledged
        return report
    }

    /// Waits until `count` publishes are acknowledged (QoS 1) or written (QoS 0).
    @discardableResult
    public func waitForAcknowledgements(_ count: Int, timeout: TimeInterval = 30) -> Bool {
        state.wait(until: .after(timeout), while: { $0.acked < count }, then: { $0.acked >= count })
    }

    /// Waits, while the broker stays connected and for at most `drain` seconds, until
    /// everything sent is acknowledged (QoS 1) or written (QoS 0), then disconnects. A
    /// disconnect drops what libmosquitto still queues, so closing straight after a run
    /// would lose its last messages.
    public func close(drain: TimeInterval = 10) {
        let sent = sentTotal
        state.wait(until: .after(drain), while: { $0.connected && $0.acked < sent }, then: { _ in })
        client?.stop()
        client = nil
    }

    deinit {
        client?.stop()
    }
}
