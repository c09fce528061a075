import Foundation
import Logging
import VigilCore
import VigilMQTT

/// Publishes sequence-numbered readings at a paced rate: the value of reading `i` is `i`
/// and its timestamp is its send time, so a receiver can tell exactly which ones arrived
/// and how long they took.
public final class TestPublisher: Sendable {
    // Immutable after init; the publisher is thread safe.
    public let publisher: PacedPublisher
    public let topics: [String]

    /// - Parameters:
    ///   - topics: readings go round-robin over these topics (JSON `{"value":i,"ts":t,"seq":i}`).
    ///   - clientID: a fixed id with `persistent` keeps the session across reconnects.
    public init(broker: Broker, topics: [String], qos: Int32 = 1, clientID: String? = nil) throws {
        var e = MQTTEndpoint(host: broker.host, port: broker.port, clientID: clientID ?? "pub-\(UUID().uuidString.prefix(8))")
        e.cleanSession = clientID == nil
        e.reconnectMin = .milliseconds(100)
        e.reconnectMax = .seconds(1)
        publisher = try PacedPublisher(endpoint: e, qos: qos)
        self.topics = topics
        guard publisher.connect() else { throw Broker.BrokerError.didNotStart("publisher could not connect to \(broker.address)") }
    }

    /// The payload of reading `seq`.
    public static func payload(seq: Int, at t: Timestamp) -> [UInt8] {
        Array("{\"value\":\(seq),\"ts\":\(t.secondsString),\"seq\":\(seq)}".utf8)
    }

    /// Publishes readings `first..<first+count` at `rate` per second.
    @discardableResult
    public func publish(first: Int = 0, count: Int, rate: Double, shouldStop: () -> Bool = { false }) -> PublishReport {
        publisher.run(count: count, rate: rate, shouldStop: shouldStop) { i, t in
            let seq = first + i
            return (topics[seq % topics.count], TestPublisher.payload(seq: seq, at: t))
        }
    }

    public func close() { publisher.close() }
}
