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
}
