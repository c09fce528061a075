import Foundation
import Logging
import Synchronization
import VigilCore
import VigilMQTT
import VigilStorage

/// The messages vigil sends upstream (SPEC section 5).
public enum UpstreamPayload {
    /// `<prefix>/agg/<network>/<site>/<device>/<metric>` with the configured stats.
    public static func aggregate(
        _ w: ClosedWindow, gateway: String, seq: Int64, stats: [AggregateConfig.Stat], prefix: String
    ) -> (String, [UInt8]) {
        var s = "{\"gateway\":\(JSONText.string(gateway)),\"seq\":\(seq),\"series\":\(JSONText.string(w.series.path))"
        s += ",\"unit\":\(w.unit.map(JSONText.string) ?? "null"),\"window_start\":\"\(w.start.rfc3339)\",\"window_end\":\"\(w.end.rfc3339)\""
        for stat in stats {
            let v: String
            switch stat {
            case .count: v = String(w.stats.count)
            case .min: v = JSONText.number(w.stats.min)
            case .max: v = JSONText.number(w.stats.max)
            case .mean: v = JSONText.number(w.stats.mean)
            case .sum: v = JSONText.number(w.stats.sum)
            case .first: v = JSONText.number(w.stats.first)
            case .last: v = JSONText.number(w.stats.last)
            case .stddev: v = JSONText.number(w.stats.stddev)
            }
            s += ",\"\(stat.rawValue)\":\(v)"
        }
        s += "}"
        return ("\(prefix)/agg/\(w.series.path)", Array(s.utf8))
    }

    /// `<prefix>/alert/<network>/<site>/<device>/<metric>`.
    public static func alert(_ t: AlertTransition, gateway: String, seq: Int64, prefix: String) -> (String, [UInt8]) {
        var s = "{\"gateway\":\(JSONText.string(gateway)),\"seq\":\(seq),\"alert\":\(JSONText.string(t.alertID))"
        s += ",\"rule\":\(JSONText.string(t.rule)),\"series\":\(JSONText.string(t.series.path)),\"state\":\"\(t.state.rawValue)\""
        s += ",\"level\":\"\(t.level)\",\"previous_level\":\(t.previousLevel.map { "\"\($0)\"" } ?? "null")"
        s += ",\"value\":\(t.value.map(JSONText.number) ?? "null"),\"threshold\":\(t.threshold.map(JSONText.number) ?? "null")"
        s += ",\"at\":\"\(t.at.rfc3339)\",\"since\":\"\(t.since.rfc3339)\",\"message\":\(JSONText.string(t.message))}"
        return ("\(prefix)/alert/\(t.series.path)", Array(s.utf8))
    }

    /// The retained `<prefix>/status`.
    public static func status(_ state: String, gateway: String, since: Timestamp) -> [UInt8] {
        Array("{\"state\":\"\(state)\",\"gateway\":\(JSONText.string(gateway)),\"since\":\"\(since.rfc3339)\"}".utf8)
    }
}

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

/// Sends the outbox upstream and reports what the broker acknowledged.
///
/// One thread of its own reads the outbox through its own connection and publishes: alerts
/// ahead of aggregates, each kind in seq order, at most `max_inflight` unacknowledged, and
/// only while connected (so nothing piles up in memory during an outage: it stays on disk).
/// A message counts as delivered on its PUBACK; the ingest thread, the buffer's only
/// writer, marks it so. libmosquitto resends what was in flight across a reconnect; what
/// stays unacknowledged for `resendAfter` is sent again. Duplicates come only from that
/// in-flight window, and seq lets the platform drop them.
///
/// - Important: `@unchecked Sendable`: the mutable state is in `state` (a lock), the
///   outbox reader is used by the upstream thread only, the client is thread safe.
public final class UpstreamForwarder: MQTTClientDelegate, @unchecked Sendable {
    let endpoint: MQTTEndpoint
    let prefix: String
    let gateway: String
    let qos: Int32
    let maxInflight: Int
    let resendAfter: Double
    let logger: Logger
    private let reader: OutboxReader
    private(set) var client: MQTTClient!
    private let startedAt = DaemonClock.shared.now()

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

    /// Rows read ahead of publishing, per kind (upstream thread only). A kind read to its
    /// end is not read again until new rows are committed.
    private var ahead: [OutboxKind: [OutboxMessage]] = [.alert: [], .aggregate: []]
    private var aheadIndex: [OutboxKind: Int] = [.alert: 0, .aggregate: 0]
    private var exhausted: Set<OutboxKind> = []

    private let state = MonotonicCondition()
    private var s = State()
    /// Called (on the network thread) when acknowledgements are waiting to be marked.
    let onAcked: @Sendable () -> Void

    public init(
        config: UpstreamConfig, gateway: String, prefix: String, buffer: BufferOptions, logger: Logger,
        resendAfter: Double = 30, onAcked: @escaping @Sendable () -> Void
    ) throws {
        var e = try config.broker.endpoint(defaultClientID: gateway)
        // The outbox is the persistent queue: the upstream session need not be.
        e.cleanSession = true
        // The sender keeps the in-flight window itself. libmosquitto's own limit would hold
        // new messages behind the unacknowledged ones of a dropped connection, which it
        // resends only seconds after a reconnect.
        e.maxInflight = 0
        endpoint = e
        self.prefix = prefix
        self.gateway = gateway
        qos = config.broker.qos
        maxInflight = config.broker.maxInflight
        self.resendAfter = resendAfter
        self.logger = logger
        self.onAcked = onAcked
        reader = try OutboxReader(options: buffer)
        let will = LastWill(
            topic: "\(prefix)/status", payload: UpstreamPayload.status("offline", gateway: gateway, since: startedAt), qos: 1,
            retain: true)
        client = try MQTTClient(endpoint: e, will: will, delegate: self, logger: logger)
    }

    public var address: String { endpoint.address }

    // MARK: Delegate (network thread)

    public func mqttConnected(sessionPresent: Bool) {
        logger.debug("upstream: connected", metadata: ["inflight": "\(status.inflight)"])
        _ = try? client.publish(
            topic: "\(prefix)/status", payload: UpstreamPayload.status("online", gateway: gateway, since: DaemonClock.shared.now()),
            qos: 1, retain: true)
        state.lock()
        s.connected = true
        s.connects += 1
        s.since = DaemonClock.shared.now()
        s.lastError = nil
        s.wake = true
        state.broadcast()
        state.unlock()
    }

    public func mqttDisconnected(reason: String) {
        logger.debug("upstream: disconnected", metadata: ["inflight": "\(status.inflight)"])
        state.lock()
        // Their PUBACKs may never come, or come late: send them again on the next
        // connection instead of holding the window shut for them.
        s.orphans += s.inflight.values
        s.inflight.removeAll()
        if s.connected { s.since = DaemonClock.shared.now() }
        s.connected = false
        s.lastError = client.lastError ?? reason
        state.unlock()
    }

    public func mqttPublished(mid: Int32) {
        state.lock()
        var any = false
        if let f = s.inflight.removeValue(forKey: mid) {
            s.acked.append(f.seq)
            s.delivered += 1
            any = true
        }
        // Wake the sender once a quarter of the window is free, not for every PUBACK.
        if s.inflight.count <= maxInflight * 3 / 4 {
            s.wake = true
            state.broadcast()
        }
        state.unlock()
        if any { onAcked() }
    }

    // MARK: For the ingest thread

    /// The seqs acknowledged since the last call.
    public func takeAcknowledged() -> [Int64] {
        state.lock()
        defer { state.unlock() }
        let a = s.acked
        s.acked.removeAll(keepingCapacity: true)
        return a
    }

    /// New messages are in the outbox.
    public func notify() {
        state.lock()
        s.wake = true
        s.newRows = true
        state.broadcast()
        state.unlock()
    }

    public var status: UpstreamStatus {
        state.lock()
        defer { state.unlock() }
        let oldest = s.backlog.oldest.map { Double(DaemonClock.shared.now().micros - $0.micros) / 1e6 }
        return UpstreamStatus(
            broker: endpoint.address, connected: s.connected, connects: s.connects, lastError: s.lastError,
            since: s.since?.rfc3339, backlogAlerts: s.backlog.alerts, backlogAggregates: s.backlog.aggregates,
            oldestAgeSeconds: oldest, inflight: s.inflight.count, delivered: s.delivered, sent: s.sent)
    }

    // MARK: The upstream thread

    static func monotonic() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Runs until `stop()`: fills the in-flight window from the outbox whenever there is room.
    public func run() {
        client.start()
        var nextBacklog = 0.0
        while true {
            state.lock()
            if !s.wake && !s.stopping { state.wait(until: .after(0.5)) }
            s.wake = false
            let stopping = s.stopping
            let connected = s.connected
            state.unlock()
            if stopping { break }
            let now = Self.monotonic()
            if now >= nextBacklog {
                nextBacklog = now + 1
                if let b = try? reader.backlogNow() {
                    state.lock()
                    s.backlog = b
                    state.unlock()
                }
            }
            guard connected else { continue }
            resendOrphans(now: now)
            resendStale(now: now)
            fill(now: now)
        }
    }

    /// Publishes from the outbox while there is room in flight: alerts first, each kind in
    /// seq order, read ahead in batches so that a message costs no query of its own.
    private func fill(now: Double) {
        state.lock()
        if s.newRows {
            s.newRows = false
            exhausted.removeAll()
        }
        let inflightBefore = s.inflight.count
        state.unlock()
        var published = 0
        defer {
            if published > 0 {
                logger.debug("upstream: published", metadata: ["count": "\(published)", "inflight.before": "\(inflightBefore)"])
            }
        }
        while let m = nextMessage() {
            state.lock()
            let room = maxInflight - s.inflight.count
            let connected = s.connected
            state.unlock()
            guard room > 0, connected else { return }
            guard publish(m, now: now) else { return }
            published += 1
            aheadIndex[m.kind, default: 0] += 1
        }
    }

    /// The next message to send without taking it: an alert if any waits, else an aggregate.
    private func nextMessage() -> OutboxMessage? {
        for kind in OutboxKind.allCases {
            if aheadIndex[kind]! >= ahead[kind]!.count && !exhausted.contains(kind) {
                state.lock()
                let after = s.cursor[kind] ?? 0
                state.unlock()
                let limit = kind == .alert ? 100 : 500
                do {
                    ahead[kind] = try reader.undelivered(kind, after: after, limit: limit)
                } catch {
                    logger.warning("reading the outbox failed: \(error)")
                    ahead[kind] = []
                }
                aheadIndex[kind] = 0
                if ahead[kind]!.count < limit { exhausted.insert(kind) }
            }
            if aheadIndex[kind]! < ahead[kind]!.count { return ahead[kind]![aheadIndex[kind]!] }
        }
        return nil
    }

    @discardableResult
    private func publish(_ m: OutboxMessage, now: Double) -> Bool {
        // Hold the lock across the publish, so the PUBACK (on the network thread) finds the mid.
        state.lock()
        defer { state.unlock() }
        do {
            let mid = try client.publish(topic: m.topic, payload: m.payload, qos: qos)
            s.cursor[m.kind] = max(s.cursor[m.kind] ?? 0, m.seq)
            s.sent += 1
            if qos == 0 {
                s.acked.append(m.seq)
                s.delivered += 1
            } else {
                s.inflight[mid] = Inflight(seq: m.seq, kind: m.kind, sentAt: now, message: m)
            }
            return true
        } catch {
            logger.warning("publishing upstream failed: \(error)")
            return false
        }
    }

    /// Sends again, in seq order, what was in flight when the last connection dropped.
    private func resendOrphans(now: Double) {
        state.lock()
        let orphans = s.orphans.sorted { $0.seq < $1.seq }
        s.orphans.removeAll()
        state.unlock()
        for f in orphans { publish(f.message, now: now) }
    }

    /// Sends again what has waited too long for its PUBACK (duplicates are allowed, loss is not).
    private func resendStale(now: Double) {
        state.lock()
        let stale = s.inflight.filter { now - $0.value.sentAt > resendAfter }
        for (mid, _) in stale { s.inflight[mid] = nil }
        state.unlock()
        for (_, f) in stale.sorted(by: { $0.value.seq < $1.value.seq }) { publish(f.message, now: now) }
    }

    /// Ends the thread; on a clean stop the retained status says `offline` (a clean
    /// DISCONNECT does not fire the last will).
    public func stop(timeout: TimeInterval = 3) {
        let deadline = MonotonicDeadline.after(timeout)
        state.lock()
        // Give what is in flight a moment to be acknowledged.
        while !s.inflight.isEmpty && s.connected && state.wait(until: deadline) {}
        s.stopping = true
        let connected = s.connected
        state.broadcast()
        state.unlock()
        if connected {
            _ = try? client.publish(
                topic: "\(prefix)/status", payload: UpstreamPayload.status("offline", gateway: gateway, since: DaemonClock.shared.now()),
                qos: 1, retain: true)
        }
        client.stop()
    }
}
