import VigilCore

/// The messages a simulation publishes, in each format.
extension Simulator {
    static func number(_ v: Double) -> String {
        let r = (v * 1000).rounded() / 1000
        if r == r.rounded(), abs(r) < 1e15 { return String(Int64(r)) }
        return "\(r)"
    }

    func numberMessage(_ i: Int, metric m: Int) -> SimulatedMessage {
        let d = devices[i]
        let (metric, _) = d.kind.metrics[m]
        return SimulatedMessage(
            topic: "\(Self.topicPrefix(d.network))/\(d.site)/\(d.name)/\(metric)",
            payload: Array(Self.number(d.lastValues[m]).utf8), readings: 1)
    }

    func jsonMessage(_ i: Int, _ t: Timestamp) -> SimulatedMessage {
        let d = devices[i]
        var s = "{\"ts\":\(t.secondsString),\"seq\":\(sequence)"
        for (k, (metric, _)) in d.kind.metrics.enumerated() {
            s += ",\"\(metric)\":\(Self.number(d.lastValues[k]))"
        }
        s += "}"
        return SimulatedMessage(
            topic: "\(Self.topicPrefix(d.network))/\(d.site)/\(d.name)", payload: Array(s.utf8),
            readings: d.kind.metrics.count)
    }

    func senmlMessage(_ i: Int, _ t: Timestamp) -> SimulatedMessage {
        let d = devices[i]
        var s = "["
        for (k, (metric, unit)) in d.kind.metrics.enumerated() {
            if k == 0 {
                s += "{\"bn\":\"urn:dev:\(d.name):\",\"bt\":\(t.secondsString),\"seq\":\(sequence),"
            } else {
                s += ",{"
            }
            s += "\"n\":\"\(metric)\",\"u\":\"\(unit)\",\"v\":\(Self.number(d.lastValues[k]))}"
        }
        s += "]"
        return SimulatedMessage(
            topic: "\(Self.topicPrefix(d.network))/\(d.site)/\(d.name)/senml", payload: Array(s.utf8),
            readings: d.kind.metrics.count)
    }

    /// HJ 212 pollutant codes of the simulated metrics (the built-in code table, reversed).
    static let hj212Codes: [String: String] = {
        var m: [String: String] = [:]
        for (code, c) in HJ212Code.defaults { m[c.metric] = code }
        return m
    }()

    /// The station's MN: `{site}-{device}` (`hj212.stations` maps it to a site and device).
    public static func hj212Station(site: String, device: String) -> String { "\(site)-\(device)" }

    /// A real-time data frame (CN=2011) asking for an answer, DataTime and QN in Shanghai time.
    func hj212Message(_ i: Int, _ t: Timestamp) -> SimulatedMessage {
        let d = devices[i]
        let zone = LocalTimeZone.fixed("UTC+\(options.utcOffsetHours)", offsetSeconds: Int32(options.utcOffsetHours * 3600))
        let local = HJ212.localTime(t, zone: zone)
        let ms = Int((t.micros / 1000) % 1000)
        var items: [String] = []
        for (k, (metric, _)) in d.kind.metrics.enumerated() {
            guard let code = Self.hj212Codes[metric] else { continue }
            items.append("\(code)-Rtd=\(Self.number(d.lastValues[k])),\(code)-Flag=N")
        }
        let st = d.kind == .quality ? "21" : d.kind == .noise ? "23" : "22"
        let mn = Self.hj212Station(site: d.site, device: d.name)
        let segment =
            "QN=\(local)\(HJ212.pad(ms, 3));ST=\(st);CN=2011;PW=123456;MN=\(mn);Flag=5;CP=&&DataTime=\(local);\(items.joined(separator: ";"))&&"
        return SimulatedMessage(topic: "hj212/\(d.site)/\(d.name)", payload: HJ212.frame(segment: segment), readings: items.count)
    }
}
