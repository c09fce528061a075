import VigilCore
import VigilMQTT
import VigilStorage

/// What the upstream connection is doing, for status and metrics.
public struct UpstreamStatus: Codable, Sendable, Equatable {
    public var broker: String
    public var connected: Bool
    public var connects: Int
    public var lastError: String?
    public var since: String?
    public var backlogAlerts: Int64
    public var backlogAggregates: Int64
    /// Seconds since the oldest undelivered message was queued.
    public var oldestAgeSeconds: Double?
    public var inflight: Int
    public var delivered: UInt64
    public var sent: UInt64
}

/// The meeting point of the upstream connection's network thread, the upstream sender and
/// the ingest thread; the upstream client's delegate. Everything here is a value behind
/// one lock: the sender records what it publishes, the network thread the PUBACKs, and the
/// ingest thread takes the acknowledged seqs (to mark them delivered, as the buffer's only
/// writer) and says when new messages are committed. No part holds another.
public final class UpstreamLink: MQTTClientDelegate, Sendable {
    struct Inflight {
        var seq: Int64
        var kind: OutboxKind
        var sentAt: Double
        var message: OutboxMessage
    }

    struct State {
        var connected = false
        var connects = 0
        var lastError: String?
        var since: Timestamp?
        var stopping = false
        /// Connected, and the retained `online` status not yet published on this connection.
        var announce = false
        var inflight: [Int32: Inflight] = [:]
        var acked: [Int64] = []
        var cursor: [OutboxKind: Int64] = [.alert: 0, .aggregate: 0]
        var backlog = OutboxBacklog()
        var delivered: UInt64 = 0
        var sent: UInt64 = 0
        var wake = false
        /// New rows were committed since the outbox was last read to its end.
        var newRows = true
        /// What was in flight when the connection dropped: sent again, first, on the next one.
        var orphans: [Inflight] = []
    }

    let state = ConditionLock(State())
    let maxInflight: Int
    let clock: any VigilClock
    /// Called (on the network thread) when acknowledgements are waiting to be marked.
    private let onAcknowledged: @Sendable () -> Void

    init(maxInflight: Int, clock: any VigilClock, onAcknowledged: @escaping @Sendable () -> Void) {
        self.maxInflight = maxInflight
        self.clock = clock
        self.onAcknowledged = onAcknowledged
    }

    // MARK: The network thread

    public func mqttConnected(sessionPresent: Bool) {
        let now = clock.now()
        state.withLockBroadcasting { s in
            s.connected = true
            s.connects += 1
            s.since = now
            s.lastError = nil
            s.announce = true
            s.wake = true
        }
    }

    public func mqttDisconnected(reason: String) {
        let now = clock.now()
        state.withLock { s in
            // Their PUBACKs may never come, or come late: send them again on the next
            // connection instead of holding the window shut for them.
            s.orphans += s.inflight.values
            s.inflight.removeAll()
            if s.connected { s.since = now }
            s.connected = false
            s.lastError = reason
        }
    }

    public func mqttPublished(mid: Int32) {
        let (any, wakeSender) = state.withLock { s -> (Bool, Bool) in
            var any = false
            if let f = s.inflight.removeValue(forKey: mid) {
                s.acked.append(f.seq)
                s.delivered += 1
                any = true
            }
            // Wake the sender once a quarter of the window is free, not for every PUBACK.
            let wake = s.inflight.count <= maxInflight * 3 / 4
            if wake { s.wake = true }
            return (any, wake)
        }
        if wakeSender { state.broadcast() }
        if any { onAcknowledged() }
    }

    // MARK: The ingest thread

    /// The seqs acknowledged since the last call.
    public func takeAcknowledged() -> [Int64] {
        state.withLock { s in
            defer { s.acked.removeAll(keepingCapacity: true) }
            return s.acked
        }
    }

    /// New messages are committed to the outbox.
    public func notifyNewRows() {
        state.withLockBroadcasting { s in
            s.wake = true
            s.newRows = true
        }
    }

    /// Connected, with no aggregate waiting: a backlog has been delivered.
    var aggregatesDelivered: Bool { state.withLock { $0.connected && $0.backlog.aggregates == 0 } }

    /// The connection and the outbox as `vigil status` shows them.
    func status(broker: String) -> UpstreamStatus {
        let now = clock.now()
        return state.withLock { s in
            let oldest = s.backlog.oldest.map { Double(now.micros - $0.micros) / 1e6 }
            return UpstreamStatus(
                broker: broker, connected: s.connected, connects: s.connects, lastError: s.lastError,
                since: s.since?.rfc3339, backlogAlerts: s.backlog.alerts, backlogAggregates: s.backlog.aggregates,
                oldestAgeSeconds: oldest, inflight: s.inflight.count, delivered: s.delivered, sent: s.sent)
        }
    }
}
