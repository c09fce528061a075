import Synchronization
import VigilCore
import VigilMQTT

/// Stage 1 of a reading's path: the topic. Copies each message from the local broker into
/// the inbox, stamped with its time of receipt (on libmosquitto's network thread), and keeps
/// the status board's view of the connection.
final class LocalIngress: MQTTClientDelegate {
    let inbox: Inbox
    let status: StatusBoard
    let clock: any VigilClock
    let subscribed = Atomic<Bool>(false)
    /// Connections made (on the network thread).
    private let connects = Atomic<Int>(0)

    init(inbox: Inbox, status: StatusBoard, clock: any VigilClock) {
        self.inbox = inbox
        self.status = status
        self.clock = clock
    }

    func mqttMessage(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, qos: Int32, retained: Bool) {
        inbox.push(topic: topic, payload: payload, receivedAt: clock.now())
    }

    func mqttConnected(sessionPresent: Bool) {
        let n = connects.add(1, ordering: .relaxed).newValue
        status.localConnected(true, connects: n, error: nil)
    }

    func mqttSubscribed() {
        subscribed.store(true, ordering: .releasing)
    }

    func mqttDisconnected(reason: String) {
        status.localConnected(false, connects: connects.load(ordering: .relaxed), error: reason)
    }
}
