import Foundation
import Logging
import VigilCore
import VigilMQTT

/// Everything that arrives on an upstream broker under `vigil/#`, in order, with a
/// persistent session so that nothing is missed while its broker restarts.
/// `@unchecked Sendable`: `messages` and `highest` are read and written only under `lock`.
public final class UpstreamCollector: MQTTClientDelegate, @unchecked Sendable {
    public struct Message: Sendable {
        public var topic: String
        public var payload: [UInt8]
        public var arrived: Date
        /// The payload's `"seq"`, read on arrival; -1 when it has none.
        public var seq: Int64
        /// Replayed by the broker on subscribe, not published now.
        public var retained: Bool

        /// The payload's JSON object (parsed on each use: the network thread only copies).
        public var json: [String: any Sendable] {
            let obj = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] ?? [:]
            var out: [String: any Sendable] = [:]
            for (k, v) in obj {
                switch v {
                case let n as NSNumber: out[k] = n
                case let s as String: out[k] = s
                default: out[k] = "\(v)"
                }
            }
            return out
        }

        public var gateway: String { json["gateway"] as? String ?? "" }
        public var isAggregate: Bool { topic.contains("/agg/") }
        public var isAlert: Bool { topic.contains("/alert/") }
        public var count: Int { (json["count"] as? NSNumber)?.intValue ?? 0 }
        public func double(_ key: String) -> Double? { (json[key] as? NSNumber)?.doubleValue }
    }

    private let lock = NSLock()
    private var messages: [Message] = []
    private var highest: (seq: Int64, arrived: Date)?

    /// `"seq":123` read straight from the bytes, in one pass without allocating.
    static func seq(in p: UnsafeRawBufferPointer) -> Int64 {
        let key: [UInt8] = Array("\"seq\":".utf8)
        var i = 0
        while i + key.count <= p.count {
            var k = 0
            while k < key.count && p[i + k] == key[k] { k += 1 }
            if k == key.count {
                var v: Int64 = 0
                var j = i + k
                while j < p.count, p[j] >= 48, p[j] <= 57 {
                    v = v * 10 + Int64(p[j] - 48)
                    j += 1
                }
                return v
            }
            i += 1
        }
        return -1
    }

    /// The highest seq seen and when it arrived (cheap to poll).
    public var highestSeq: (seq: Int64, arrived: Date)? {
        lock.lock()
        defer { lock.unlock() }
        return highest
    }
    private var client: MQTTClient?

    public init(broker: Broker, filter: String = "vigil/#", clientID: String = "collector", host: String? = nil, tls: TLSOptions? = nil)
        throws
    {
        var e = MQTTEndpoint(host: host ?? broker.host, port: broker.port, clientID: clientID)
        e.tls = tls
        e.cleanSession = false
        e.reconnectMin = .milliseconds(100)
        e.reconnectMax = .milliseconds(500)
        client = try MQTTClient(endpoint: e, subscriptions: [filter], qos: 1, delegate: self, logger: Logger(label: "collector"))
        client?.start()
        guard eventually({ client?.isConnected == true }) else {
            throw Broker.BrokerError.didNotStart("the collector could not connect to \(broker.address)")
        }
        usleep(100_000)  // SUBACK
    }

    public func mqttMessage(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, qos: Int32, retained: Bool) {
        let m = Message(topic: String(decoding: topic, as: UTF8.self), payload: Array(payload), arrived: Date(), seq: Self.seq(in: payload), retained: retained)
        lock.lock()
        messages.append(m)
        if m.seq > (highest?.seq ?? -1) { highest = (m.seq, m.arrived) }
        lock.unlock()
    }

    public var all: [Message] {
        lock.lock()
        defer { lock.unlock() }
        return messages
    }

    public var aggregates: [Message] { all.filter(\.isAggregate) }
    public var alerts: [Message] { all.filter(\.isAlert) }

    /// The sum of the aggregates' counts, duplicates (same gateway and seq) counted once.
    public func aggregatedCount(gateway: String? = nil, seriesPrefix: String = "") -> Int {
        var seen = Set<String>()
        var total = 0
        for m in aggregates
        where (gateway == nil || m.gateway == gateway) && (m.json["series"] as? String ?? "").hasPrefix(seriesPrefix) {
            if seen.insert("\(m.gateway)/\(m.seq)").inserted { total += m.count }
        }
        return total
    }

    public func close() {
        client?.stop()
        client = nil
    }

    deinit { client?.stop() }
}
