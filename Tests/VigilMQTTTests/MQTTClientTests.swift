import Logging
import Synchronization
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilMQTT

/// What a client reported to its delegate.
private final class Recorder: MQTTClientDelegate {
    struct Seen {
        var messages: [(String, String)] = []
        var connects = 0
        var disconnects: [String] = []
        var published: [Int32] = []
        var subscribed = 0
    }

    let seen = Mutex(Seen())

    func mqttMessage(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, qos: Int32, retained: Bool) {
        let m = (String(decoding: topic, as: UTF8.self), String(decoding: payload, as: UTF8.self))
        seen.withLock { $0.messages.append(m) }
    }
    func mqttConnected(sessionPresent: Bool) { seen.withLock { $0.connects += 1 } }
    func mqttDisconnected(reason: String) { seen.withLock { $0.disconnects.append(reason) } }
    func mqttPublished(mid: Int32) { seen.withLock { $0.published.append(mid) } }
    func mqttSubscribed() { seen.withLock { $0.subscribed += 1 } }
}

/// The libmosquitto bridge against a real mosquitto on a free loopback port.
@Suite("MQTT client", .serialized)
struct MQTTClientTests {
    /// Subscribes on connect, receives, reports PUBACKs, and after the broker restarts
    /// reconnects by itself and subscribes again.
    @Test func subscribesReceivesAndComesBackAfterABrokerRestart() throws {
        let broker = try Broker()
        var e = MQTTEndpoint(host: broker.host, port: broker.port, clientID: "client-test")
        e.reconnectMin = .milliseconds(50)
        e.reconnectMax = .milliseconds(200)
        let sub = Recorder()
        let client = try MQTTClient(endpoint: e, subscriptions: ["t/#"], qos: 1, delegate: sub, logger: Logger(label: "test"))
        client.start()
        defer { client.stop() }
        #expect(eventually { sub.seen.withLock { $0.subscribed } == 1 })
        #expect(client.isConnected && client.connectCount == 1)

        let pub = Recorder()
        let publisher = try MQTTClient(
            endpoint: MQTTEndpoint(host: broker.host, port: broker.port, clientID: "client-test-pub"), delegate: pub,
            logger: Logger(label: "test"))
        publisher.start()
        defer { publisher.stop() }
        #expect(eventually { pub.seen.withLock { $0.connects } == 1 })
        let mid = try publisher.publish(topic: "t/a", payload: Array("1".utf8), qos: 1)
        #expect(eventually { sub.seen.withLock { $0.messages.map(\.1) } == ["1"] })
        #expect(eventually { pub.seen.withLock { $0.published }.contains(mid) })

        broker.stop()
        #expect(eventually { !client.isConnected })
        #expect(eventually { sub.seen.withLock { $0.disconnects.count } == 1 })
        try broker.start()
        #expect(eventually { sub.seen.withLock { $0.subscribed } == 2 }, "subscriptions sent again on the new connection")
        #expect(client.connectCount == 2)
        #expect(eventually { publisher.isConnected })
        _ = try publisher.publish(topic: "t/b", payload: Array("2".utf8), qos: 1)
        #expect(eventually { sub.seen.withLock { $0.messages.map(\.0) } == ["t/a", "t/b"] })
    }

    /// A broker that is not there: the failure is kept for status, and stop() still returns.
    @Test func unreachableBrokerIsRetriedAndStopReturns() throws {
        var e = MQTTEndpoint(host: "127.0.0.1", port: FreePort.next(), clientID: "client-nobody")
        e.reconnectMin = .milliseconds(20)
        e.reconnectMax = .milliseconds(50)
        let r = Recorder()
        let client = try MQTTClient(endpoint: e, delegate: r, logger: Logger(label: "test"))
        client.start()
        #expect(eventually { client.lastError?.contains("Connection refused") == true }, "\(client.lastError ?? "nil")")
        #expect(!client.isConnected)
        let start = MonotonicDeadline.now()
        client.stop()
        #expect(MonotonicDeadline.now().nanos - start.nanos < 2_000_000_000)
        #expect(r.seen.withLock { $0.connects } == 0)
    }
}
