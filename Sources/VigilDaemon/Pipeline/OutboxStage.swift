import VigilCore
import VigilStorage

/// Stage 5: what leaves for upstream goes into the outbox with a seq that is never reused:
/// each alert transition at once, each closed aggregate window; and what upstream
/// acknowledged is marked delivered. The upstream sender (its own thread) reads the outbox
/// and hands acknowledgements back as values through the `UpstreamLink`; this stage, on
/// the ingest thread, is the only one that writes.
struct OutboxStage {
    /// What goes upstream, and how.
    struct Settings {
        var gateway = ""
        var prefix = ""
        var stats = AggregateStat.allCases
        /// One message per window (`upstream.format: pack`) instead of one per series.
        var pack = false
        var deflate = false
    }

    let settings: Settings
    var gateway: String { settings.gateway }
    private let link: UpstreamLink
    private let store: OutboxStore
    private let counters: CounterStore
    private(set) var nextSeq: Int64 = 1
    /// The aggregation watermark as last stored.
    private(set) var watermark: Int64?
    /// Messages were added since the sender was last told.
    private var added = false
    private(set) var backlog: BacklogAlert

    init(settings: Settings, link: UpstreamLink, buffer: Buffer) {
        self.settings = settings
        self.link = link
        store = buffer.outbox
        counters = buffer.counters
        backlog = BacklogAlert(gateway: settings.gateway)
    }

    /// Loads seq, and whether the backlog alert was left raised.
    mutating func start(alerts: AlertStore) throws(SQLiteError) {
        nextSeq = try store.loadNextSeq()
        watermark = try store.loadWatermark()?.micros
        backlog.restore(try alerts.lastTransition(rule: BacklogAlert.rule))
    }

    /// Puts an alert transition in the outbox.
    mutating func enqueue(_ t: AlertTransition, _ tx: Transaction) throws(SQLiteError) {
        let (topic, payload) = UpstreamPayload.alert(t, gateway: gateway, seq: nextSeq, prefix: settings.prefix)
        try store.enqueue(seq: nextSeq, kind: .alert, topic: topic, payload: payload, at: t.at, tx)
        nextSeq += 1
        added = true
    }

    /// Puts closed windows in the outbox, with the watermark they bring.
    mutating func enqueue(_ windows: [ClosedWindow], watermark: Int64, now: Timestamp, _ tx: Transaction)
        throws(SQLiteError)
    {
        let s = settings
        if s.pack {
            // One message per window period (several close at once after a pause).
            var start = 0
            while start < windows.count {
                var end = start + 1
                while end < windows.count && windows[end].start == windows[start].start { end += 1 }
                let (topic, payload) = UpstreamPayload.pack(
                    Array(windows[start..<end]), gateway: s.gateway, seq: nextSeq, stats: s.stats, prefix: s.prefix,
                    deflate: s.deflate)
                try store.enqueue(seq: nextSeq, kind: .aggregate, topic: topic, payload: payload, at: now, tx)
                nextSeq += 1
                added = true
                start = end
            }
        } else {
            for w in windows {
                let (topic, payload) = UpstreamPayload.aggregate(w, gateway: s.gateway, seq: nextSeq, stats: s.stats, prefix: s.prefix)
                try store.enqueue(seq: nextSeq, kind: .aggregate, topic: topic, payload: payload, at: now, tx)
                nextSeq += 1
                added = true
            }
        }
        if !windows.isEmpty { counters.add(CounterName.aggregatesSent, Int64(windows.count)) }
        try store.setWatermark(watermark, tx)
        self.watermark = watermark
    }

    /// Marks what upstream acknowledged since the last call, in the open transaction.
    func markAcknowledged(now: Timestamp, _ buffer: Buffer) throws(SQLiteError) {
        let acks = link.takeAcknowledged()
        guard !acks.isEmpty else { return }
        try store.markDelivered(acks, at: now, try buffer.transaction())
    }

    /// Tells the sender about new messages, once they are committed.
    mutating func committed() {
        if added {
            added = false
            link.notifyNewRows()
        }
    }

    /// vigil's own alert when undelivered aggregates are dropped (`dropped` > 0), resolved
    /// once upstream has the backlog of aggregates.
    mutating func backlogTransition(dropped: Int64, now: Timestamp) -> AlertTransition? {
        backlog.transition(dropped: dropped, now: now, drained: link.aggregatesDelivered)
    }
}

/// vigil's own alert `vigil-backlog`: the buffer is at `max_size` with undelivered
/// messages, and the oldest aggregates are being dropped (alerts never are).
struct BacklogAlert {
    static let rule = "vigil-backlog"
    let gateway: String
    private(set) var since: Timestamp?
    private var droppedSinceRaise: Int64 = 0

    init(gateway: String) { self.gateway = gateway }

    var series: SeriesKey { SeriesKey(network: "vigil", site: gateway, device: "outbox", metric: "dropped") }

    /// Left raised by the last run.
    mutating func restore(_ last: AlertTransition?) {
        if let last, last.state != .resolved { since = last.since }
    }

    /// Raised when aggregates are dropped; resolved when the backlog was delivered (`drained`),
    /// not when dropping emptied it.
    mutating func transition(dropped: Int64, now: Timestamp, drained: Bool) -> AlertTransition? {
        if dropped > 0 {
            droppedSinceRaise += dropped
            guard since == nil else { return nil }
            since = now
            return AlertTransition(
                rule: Self.rule, series: series, state: .raised, level: .orange, previousLevel: nil,
                value: Double(dropped), threshold: nil, at: now, since: now,
                message: "\(gateway): the buffer is full of undelivered messages; the oldest aggregates are being dropped (alerts are kept)")
        }
        guard let raisedAt = since, drained else { return nil }
        since = nil
        defer { droppedSinceRaise = 0 }
        return AlertTransition(
            rule: Self.rule, series: series, state: .resolved, level: .orange, previousLevel: .orange,
            value: Double(droppedSinceRaise), threshold: nil, at: now, since: raisedAt,
            message: "\(gateway): the upstream backlog has drained; \(droppedSinceRaise) aggregates were dropped")
    }
}
