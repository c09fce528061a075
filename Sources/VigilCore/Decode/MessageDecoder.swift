/// One subscription of the configuration: which topics, which network, where the names sit, which format.
public struct SubscriptionSpec: Sendable, Hashable {
    public var network: String
    public var filter: TopicFilter
    public var layout: TopicLayout
    public var format: PayloadFormat

    public init(network: String, filter: TopicFilter, layout: TopicLayout, format: PayloadFormat) {
        self.network = network
        self.filter = filter
        self.layout = layout
        self.format = format
    }
}

/// Limits on what a message may be (SPEC section 2).
public struct IngestLimits: Sendable, Hashable {
    public var maxPayloadBytes: Int = 64 * 1024
    public var maxJSONDepth: Int = 32
    public var maxTopicBytes: Int = 256
    /// How far ahead of the gateway clock a timestamp may be.
    public var maxFuture: TimeSpan = .minutes(5)
    /// How old a reading may be (the buffer's retention); nil: no limit.
    public var maxAge: TimeSpan? = .days(7)

    public init() {}
}

/// Turns MQTT messages into readings: finds the subscription and layout for the topic,
/// decodes the payload, and checks names and times.
///
/// - Important: not thread safe; one ingest thread owns it.
public struct MessageDecoder {
    public let subscriptions: [SubscriptionSpec]
    public let limits: IngestLimits
    private var payloadDecoder: PayloadDecoder
    private var routes: [String: Route] = [:]
    private var decoded: [DecodedValue] = []
    /// The wall clock minus the time `receivedAt` is on, while the wall clock is stepped away
    /// from it (see `TimeLine`); zero otherwise. A payload timestamp nearer the stepped wall
    /// clock than the time line comes from a sensor that follows the stepped clock: it is
    /// moved onto the time line, so rules, windows and aggregates see one time.
    public var wallOffset = TimeSpan.zero
    /// Readings moved onto the time line that way, since the last `takeShifted`.
    private var shiftedReadings = 0
    /// Stations and code table for `format: hj212` and the TCP listener; nil: no `hj212` section.
    public var hj212: HJ212Decoder?
    /// What the last message was, when it was an HJ 212 frame that decoded.
    public private(set) var lastHJ212: HJ212Outcome?
    private var hj212Readings: [Reading] = []

    /// Frames from the HJ 212 TCP listener come through the inbox with a topic that starts
    /// with this NUL byte, which no MQTT topic may hold (MQTT 3.1.1 section 1.5.3), then
    /// `hj212/<peer address>/<connection>`.
    public static let hj212TopicPrefix: [UInt8] = [0] + Array("hj212/".utf8)

    public mutating func takeShifted() -> Int {
        defer { shiftedReadings = 0 }
        return shiftedReadings
    }

    /// How many topics the route cache keeps before it starts over.
    static let routeCacheLimit = 100_000

    enum Route {
        case series(subscription: Int, site: String, device: String, metric: String?)
        case rejected(RejectReason)
    }

    public init(subscriptions: [SubscriptionSpec], limits: IngestLimits, hj212: HJ212Decoder? = nil) {
        self.subscriptions = subscriptions
        self.limits = limits
        self.hj212 = hj212
        self.payloadDecoder = PayloadDecoder(maxDepth: limits.maxJSONDepth)
        decoded.reserveCapacity(16)
    }

    /// SenML records skipped because they carry no number.
    public var skippedRecords: Int { payloadDecoder.skippedRecords }

    /// Decodes one message into readings, appended to `out`.
    /// - Throws: why the whole message is rejected; `out` is then unchanged.
    public mutating func decode(
        topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, receivedAt: Timestamp,
        into out: inout [Reading]
    ) throws(RejectReason) {
        lastHJ212 = nil
        if topic.first == 0, topic.starts(with: Self.hj212TopicPrefix) {
            // The HJ 212 TCP listener (no MQTT topic holds NUL).
            try decodeHJ212(payload, receivedAt: receivedAt, into: &out)
            return
        }
        guard topic.count <= limits.maxTopicBytes else {
            throw RejectReason(.topicTooLong, "the topic has \(topic.count) bytes, the limit is \(limits.maxTopicBytes)")
        }
        guard payload.count <= limits.maxPayloadBytes else {
            throw RejectReason(
                .payloadTooLarge, "the payload has \(payload.count) bytes, the limit is \(limits.maxPayloadBytes)")
        }
        let topicString = String(decoding: topic, as: UTF8.self)
        let route: Route
        if let cached = routes[topicString] {
            route = cached
        } else {
            route = Self.route(topicString, subscriptions)
            if routes.count >= Self.routeCacheLimit { routes.removeAll(keepingCapacity: true) }
            routes[topicString] = route
        }
        guard case .series(let index, let site, let device, let topicMetric) = route else {
            if case .rejected(let reason) = route { throw reason }
            fatalError("unreachable")
        }
        let sub = subscriptions[index]
        if sub.format == .hj212 {
            try decodeHJ212(payload, receivedAt: receivedAt, into: &out)
            return
        }
        decoded.removeAll(keepingCapacity: true)
        try payloadDecoder.decode(
            payload, format: sub.format, topicMetric: topicMetric, receivedAt: receivedAt, into: &decoded)
        var shifted = 0
        if wallOffset.micros != 0 {
            let wall = receivedAt.adding(wallOffset)
            for i in decoded.indices {
                if let t = decoded[i].timestamp, abs(t.micros - wall.micros) < abs(t.micros - receivedAt.micros) {
                    decoded[i].timestamp = t.subtracting(wallOffset)
                    shifted += 1
                }
            }
        }
        for d in decoded {
            if let t = d.timestamp { try checkTime(t, receivedAt: receivedAt) }
        }
        let mark = out.count
        out.reserveCapacity(mark + decoded.count)
        for d in decoded {
            guard let metric = d.metric ?? topicMetric else {
                out.removeSubrange(mark...)
                throw RejectReason(.noReadings, "no metric in the topic or the payload")
            }
            out.append(
                Reading(
                    series: SeriesKey(network: sub.network, site: site, device: device, metric: metric),
                    value: d.value, timestamp: d.timestamp ?? receivedAt, unit: d.unit,
                    timestampFromPayload: d.timestamp != nil))
        }
        shiftedReadings += shifted
    }

    /// A reading's time is neither too far ahead nor older than the retention.
    func checkTime(_ t: Timestamp, receivedAt: Timestamp) throws(RejectReason) {
        if t > receivedAt.adding(limits.maxFuture) {
            throw RejectReason(
                .futureTimestamp, "timestamp \(t.rfc3339) is more than \(limits.maxFuture) ahead of the gateway clock")
        }
        if let age = limits.maxAge, t < receivedAt.subtracting(age) {
            throw RejectReason(.tooOld, "timestamp \(t.rfc3339) is older than the retention \(age)")
        }
    }

    /// An HJ 212 frame: its station names network, site and device; times as for other formats.
    private mutating func decodeHJ212(
        _ payload: UnsafeRawBufferPointer, receivedAt: Timestamp, into out: inout [Reading]
    ) throws(RejectReason) {
        guard let hj212 else {
            throw RejectReason(.hj212UnknownStation, "the config has no hj212 section: no station is known")
        }
        hj212Readings.removeAll(keepingCapacity: true)
        let outcome = try hj212.decode(payload, into: &hj212Readings)
        var shifted = 0
        if wallOffset.micros != 0 {
            let wall = receivedAt.adding(wallOffset)
            for i in hj212Readings.indices {
                let t = hj212Readings[i].timestamp
                if abs(t.micros - wall.micros) < abs(t.micros - receivedAt.micros) {
                    hj212Readings[i].timestamp = t.subtracting(wallOffset)
                    shifted += 1
                }
            }
        }
        for r in hj212Readings { try checkTime(r.timestamp, receivedAt: receivedAt) }
        out.append(contentsOf: hj212Readings)
        shiftedReadings += shifted
        lastHJ212 = outcome
    }

    static func route(_ topic: String, _ subscriptions: [SubscriptionSpec]) -> Route {
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false)
        var shapeMismatch: SubscriptionSpec?
        for (i, sub) in subscriptions.enumerated() where sub.filter.matches(levels: levels) {
            // HJ 212 frames name their station; the topic only says they are frames.
            if sub.format == .hj212 { return .series(subscription: i, site: "", device: "", metric: nil) }
            guard let (site, device, metric) = sub.layout.extract(levels: levels) else {
                shapeMismatch = sub
                continue
            }
            for (what, name) in [("site", site), ("device", device), ("metric", metric ?? "x")] {
                guard Names.isValid(String(name)) else {
                    return .rejected(
                        RejectReason(
                            .badName,
                            "\(what) \(PayloadDecoder.quoted(String(name))) in the topic is not [A-Za-z0-9_.-]{1,64}"))
                }
            }
            return .series(subscription: i, site: String(site), device: String(device), metric: metric.map(String.init))
        }
        if let sub = shapeMismatch {
            return .rejected(
                RejectReason(.layoutMismatch, "the topic does not have the shape of layout \(sub.layout.text)"))
        }
        return .rejected(RejectReason(.noSubscription, "no subscription matches the topic"))
    }
}
