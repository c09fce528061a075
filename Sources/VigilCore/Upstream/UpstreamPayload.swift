/// The statistics an aggregate window can carry upstream (`aggregate.stats`).
public enum AggregateStat: String, Sendable, CaseIterable {
    case count, min, max, mean, sum, first, last, stddev
}

/// The messages vigil sends upstream (SPEC section 5; `docs/upstream.md`): pure encoding,
/// topic and JSON payload.
public enum UpstreamPayload {
    /// `<prefix>/agg/<network>/<site>/<device>/<metric>` with the configured stats.
    public static func aggregate(
        _ w: ClosedWindow, gateway: String, seq: Int64, stats: [AggregateStat], prefix: String
    ) -> (String, [UInt8]) {
        var s = "{\"gateway\":\(JSONText.string(gateway)),\"seq\":\(seq),"
        appendAggregate(w, stats: stats, to: &s)
        s += "}"
        return ("\(prefix)/agg/\(w.series.path)", Array(s.utf8))
    }

    /// `<prefix>/aggpack`: the aggregates of one window in one message, each as in
    /// `aggregate` without the gateway and seq, which the pack carries once; compressed
    /// into a zlib stream when `deflate`.
    /// - Parameter windows: closed windows that share one start and end.
    public static func pack(
        _ windows: [ClosedWindow], gateway: String, seq: Int64, stats: [AggregateStat], prefix: String, deflate: Bool
    ) -> (String, [UInt8]) {
        let first = windows.first
        var s = "{\"gateway\":\(JSONText.string(gateway)),\"seq\":\(seq)"
        s += ",\"window_start\":\"\(first?.start.rfc3339 ?? "")\",\"window_end\":\"\(first?.end.rfc3339 ?? "")\",\"aggregates\":["
        for (i, w) in windows.enumerated() {
            s += i == 0 ? "{" : ",{"
            appendAggregate(w, stats: stats, to: &s)
            s += "}"
        }
        s += "]}"
        let bytes = Array(s.utf8)
        return ("\(prefix)/aggpack", deflate ? Deflate.zlib(bytes) : bytes)
    }

    /// One aggregate's fields, without braces.
    private static func appendAggregate(_ w: ClosedWindow, stats: [AggregateStat], to s: inout String) {
        s += "\"series\":\(JSONText.string(w.series.path))"
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
