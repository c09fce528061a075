import Foundation
import Logging
import VigilCore
import VigilStorage

/// What the ingest thread sends upstream: windowed aggregates and alert transitions, put in
/// the outbox in the same transaction as the readings and states they come from.
///
/// - Important: owned by the ingest thread.
final class Outbound {
    let gateway: String
    let prefix: String
    let stats: [AggregateConfig.Stat]
    let forwarder: UpstreamForwarder
    var aggregator: WindowAggregator
    private(set) var nextSeq: Int64 = 1
    /// Messages were added since the forwarder was last told.
    private var added = false
    /// vigil's own alert: undelivered aggregates are being dropped because the buffer is full.
    private(set) var backlogAlertSince: Timestamp?
    private var droppedSinceRaise: Int64 = 0

    static let backlogRule = "vigil-backlog"
    var backlogSeries: SeriesKey { SeriesKey(network: "vigil", site: gateway, device: "outbox", metric: "dropped") }

    init(config: AggregateConfig, gateway: String, prefix: String, forwarder: UpstreamForwarder) {
        self.gateway = gateway
        self.prefix = prefix
        self.stats = config.stats
        self.forwarder = forwarder
        aggregator = WindowAggregator(window: config.window, allowedLateness: config.allowedLateness)
    }

    /// Loads seq and the watermark, and whether the backlog alert was left raised.
    func start(writer: BufferWriter, config: AggregateConfig) throws {
        nextSeq = try writer.loadNextSeq()
        aggregator = WindowAggregator(
            window: config.window, allowedLateness: config.allowedLateness, watermark: try writer.loadWatermark())
    }

    func restoreBacklogAlert(_ last: AlertTransition?) {
        if let last, last.state != .resolved { backlogAlertSince = last.since }
    }

    /// Where to start replaying the buffer to rebuild the open windows.
    var replayFrom: Timestamp? { aggregator.watermark.map { Timestamp(micros: $0) } }

    /// Windows before the watermark are summarised: their readings may go first when space runs out.
    var summarisedBefore: Timestamp? { replayFrom }

    func add(_ r: Reading, seriesID: Int64) -> Bool {
        aggregator.add(seriesID: seriesID, series: r.series, unit: r.unit, value: r.value, at: r.timestamp)
    }

    /// Puts an alert transition in the outbox (open transaction).
    func enqueue(_ t: AlertTransition, writer: BufferWriter) throws {
        let (topic, payload) = UpstreamPayload.alert(t, gateway: gateway, seq: nextSeq, prefix: prefix)
        try writer.enqueue(seq: nextSeq, kind: .alert, topic: topic, payload: payload, at: t.at)
        nextSeq += 1
        added = true
    }

    /// Closes the windows that are due and puts them in the outbox with the new watermark.
    /// - Returns: how many were closed.
    @discardableResult
    func closeWindows(now: Timestamp, writer: BufferWriter) throws -> Int {
        let closed = aggregator.close(now: now)
        guard let w = aggregator.watermark else { return 0 }
        for c in closed {
            let (topic, payload) = UpstreamPayload.aggregate(c, gateway: gateway, seq: nextSeq, stats: stats, prefix: prefix)
            try writer.enqueue(seq: nextSeq, kind: .aggregate, topic: topic, payload: payload, at: now)
            nextSeq += 1
            added = true
        }
        if !closed.isEmpty { writer.count(CounterName.aggregatesSent, Int64(closed.count)) }
        try writer.setMetaIfChanged(MetaKey.aggregatedUntil, String(w))
        return closed.count
    }

    /// Marks what upstream acknowledged (open transaction).
    func markAcknowledged(writer: BufferWriter, now: Timestamp) throws -> Int {
        let acks = forwarder.takeAcknowledged()
        try writer.markDelivered(acks, at: now)
        return acks.count
    }

    /// Tells the forwarder about new messages, once they are committed.
    func committed() {
        if added {
            added = false
            forwarder.notify()
        }
    }

    /// vigil's own alert when undelivered aggregates are dropped; resolved once the backlog
    /// of aggregates has drained.
    func backlogTransition(dropped: Int64, now: Timestamp) -> AlertTransition? {
        if dropped > 0 {
            droppedSinceRaise += dropped
            guard backlogAlertSince == nil else { return nil }
            backlogAlertSince = now
            return AlertTransition(
                rule: Self.backlogRule, series: backlogSeries, state: .raised, level: .orange, previousLevel: nil,
                value: Double(dropped), threshold: nil, at: now, since: now,
                message: "\(gateway): the buffer is full of undelivered messages; the oldest aggregates are being dropped (alerts are kept)")
        }
        // Resolved when the backlog was delivered, not when dropping emptied it.
        let upstream = forwarder.status
        guard let since = backlogAlertSince, upstream.connected, upstream.backlogAggregates == 0 else { return nil }
        backlogAlertSince = nil
        defer { droppedSinceRaise = 0 }
        return AlertTransition(
            rule: Self.backlogRule, series: backlogSeries, state: .resolved, level: .orange, previousLevel: .orange,
            value: Double(droppedSinceRaise), threshold: nil, at: now, since: since,
            message: "\(gateway): the upstream backlog has drained; \(droppedSinceRaise) aggregates were dropped")
    }
}

extension BufferWriter {
    /// Sets a meta value in the open transaction unless it already has it.
    func setMetaIfChanged(_ key: String, _ value: String) throws {
        if lastMeta[key] == value { return }
        try setMeta(key, value)
        lastMeta[key] = value
    }
}
