import Foundation
import Logging
import VigilCore
import VigilMQTT
import VigilStorage

/// Stage 6, the last of a reading's path: sends the outbox upstream.
///
/// One thread of its own reads the outbox through its own connection and publishes: alerts
/// ahead of aggregates, each kind in seq order, at most `max_inflight` unacknowledged, and
/// only while connected (so nothing piles up in memory during an outage: it stays on disk).
/// A message counts as delivered on its PUBACK, which the `UpstreamLink` hands to the
/// ingest thread as a seq; that thread, the buffer's only writer, marks it so.
/// libmosquitto resends what was in flight across a reconnect; what stays unacknowledged
/// for `resendAfter` is sent again. Duplicates come only from that in-flight window, and
/// seq lets the platform drop them.
public final class UpstreamSender: Sendable {
    let endpoint: MQTTEndpoint
    let prefix: String
    let gateway: String
    let qos: Int32
    let resendAfter: Double
    let logger: Logger
    public let link: UpstreamLink
    private let client: MQTTClient
    private let reader: OutboxReader

    /// - Parameter onAcknowledged: called on the network thread when PUBACKs wait to be marked.
    public init(
        config: UpstreamConfig, gateway: String, prefix: String, buffer: BufferOptions, clock: any VigilClock, logger: Logger,
        resendAfter: Double = 30, onAcknowledged: @escaping @Sendable () -> Void
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
        self.resendAfter = resendAfter
        self.logger = logger
        link = UpstreamLink(maxInflight: config.broker.maxInflight, clock: clock, onAcknowledged: onAcknowledged)
        reader = try OutboxReader(options: buffer)
        let will = LastWill(
            topic: "\(prefix)/status", payload: UpstreamPayload.status("offline", gateway: gateway, since: clock.now()), qos: 1,
            retain: true)
        client = try MQTTClient(endpoint: e, will: will, delegate: link, logger: logger)
    }

    public var address: String { endpoint.address }

    public var status: UpstreamStatus { link.status(broker: endpoint.address) }

    /// Rows read ahead of publishing, per kind. A kind read to its end is not read again
    /// until new rows are committed.
    private struct ReadAhead {
        var rows: [OutboxKind: [OutboxMessage]] = [.alert: [], .aggregate: []]
        var index: [OutboxKind: Int] = [.alert: 0, .aggregate: 0]
        var exhausted: Set<OutboxKind> = []
    }

    /// Runs until `stop()`: fills the in-flight window from the outbox whenever there is room.
    public func run() {
        client.start()
        var ahead = ReadAhead()
        var nextBacklog = 0.0
        while true {
            let (stopping, connected, announce) = link.state.wait(
                until: .after(0.5), while: { !$0.wake && !$0.stopping },
                then: { s in
                    s.wake = false
                    defer { s.announce = false }
                    return (s.stopping, s.connected, s.announce && s.connected)
                })
            if stopping { break }
            if announce { publishStatus("online") }
            let now = Monotonic.seconds()
            if now >= nextBacklog {
                nextBacklog = now + 1
                if let b = try? reader.backlogNow() { link.state.withLock { $0.backlog = b } }
            }
            guard connected else { continue }
            resendOrphans(now: now)
            resendStale(now: now)
            fill(now: now, &ahead)
        }
    }

    private func publishStatus(_ state: String) {
        _ = try? client.publish(
            topic: "\(prefix)/status", payload: UpstreamPayload.status(state, gateway: gateway, since: link.clock.now()),
            qos: 1, retain: true)
    }

    /// Publishes from the outbox while there is room in flight: alerts first, each kind in
    /// seq order, read ahead in batches so that a message costs no query of its own.
    private func fill(now: Double, _ ahead: inout ReadAhead) {
        let inflightBefore = link.state.withLock { s in
            if s.newRows {
                s.newRows = false
                ahead.exhausted.removeAll()
            }
            return s.inflight.count
        }
        var published = 0
        defer {
            if published > 0 {
                logger.debug("upstream: published", metadata: ["count": "\(published)", "inflight.before": "\(inflightBefore)"])
            }
        }
        while let m = next(&ahead) {
            let room = link.state.withLock { $0.connected ? link.maxInflight - $0.inflight.count : 0 }
            guard room > 0, publish(m, now: now) else { return }
            published += 1
            ahead.index[m.kind, default: 0] += 1
        }
    }

    /// The next message to send without taking it: an alert if any waits, else an aggregate.
    private func next(_ ahead: inout ReadAhead) -> OutboxMessage? {
        for kind in OutboxKind.allCases {
            if ahead.index[kind]! >= ahead.rows[kind]!.count && !ahead.exhausted.contains(kind) {
                let after = link.state.withLock { $0.cursor[kind] ?? 0 }
                let limit = kind == .alert ? 100 : 500
                do {
                    ahead.rows[kind] = try reader.undelivered(kind, after: after, limit: limit)
                } catch {
                    logger.warning("reading the outbox failed: \(error)")
                    ahead.rows[kind] = []
                }
                ahead.index[kind] = 0
                if ahead.rows[kind]!.count < limit { ahead.exhausted.insert(kind) }
            }
            if ahead.index[kind]! < ahead.rows[kind]!.count { return ahead.rows[kind]![ahead.index[kind]!] }
        }
        return nil
    }

    @discardableResult
    private func publish(_ m: OutboxMessage, now: Double) -> Bool {
        // Publish with the lock held, so the PUBACK (on the network thread) finds the mid.
        do {
            try link.state.withLock { s in
                let mid = try client.publish(topic: m.topic, payload: m.payload, qos: qos)
                s.cursor[m.kind] = max(s.cursor[m.kind] ?? 0, m.seq)
                s.sent += 1
                if qos == 0 {
                    s.acked.append(m.seq)
                    s.delivered += 1
                } else {
                    s.inflight[mid] = UpstreamLink.Inflight(seq: m.seq, kind: m.kind, sentAt: now, message: m)
                }
            }
            return true
        } catch {
            logger.warning("publishing upstream failed: \(error)")
            return false
        }
    }

    /// Sends again, in seq order, what was in flight when the last connection dropped.
    private func resendOrphans(now: Double) {
        let orphans = link.state.withLock { s in
            defer { s.orphans.removeAll() }
            return s.orphans.sorted { $0.seq < $1.seq }
        }
        for f in orphans { publish(f.message, now: now) }
    }

    /// Sends again what has waited too long for its PUBACK (duplicates are allowed, loss is not).
    private func resendStale(now: Double) {
        let stale = link.state.withLock { s in
            let stale = s.inflight.filter { now - $0.value.sentAt > resendAfter }
            for (mid, _) in stale { s.inflight[mid] = nil }
            return stale
        }
        for (_, f) in stale.sorted(by: { $0.value.seq < $1.value.seq }) { publish(f.message, now: now) }
    }

    /// Ends the thread; on a clean stop the retained status says `offline` (a clean
    /// DISCONNECT does not fire the last will).
    public func stop(timeout: TimeInterval = 3) {
        // Give what is in flight a moment to be acknowledged.
        let connected = link.state.wait(
            until: .after(timeout), while: { !$0.inflight.isEmpty && $0.connected },
            then: { s in
                s.stopping = true
                return s.connected
            })
        link.state.broadcast()
        if connected { publishStatus("offline") }
        client.stop()
    }
}
