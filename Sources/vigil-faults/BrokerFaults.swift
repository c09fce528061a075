import Foundation
import VigilCore
import VigilStorage
import VigilTestSupport

/// The local broker restarted under QoS 1 load, vigil and the publisher on persistent
/// sessions: every message the broker accepted is stored exactly once.
enum BrokerRestartFault {
    static func run(restarts: Int, rng: inout SeededGenerator) throws -> FaultResult {
        var result = FaultResult(fault: "local broker restarted under 2,000 readings/s, QoS 1", times: restarts, readingsLost: "", messagesLost: "n/a", duplicates: "", recovery: "")
        let broker = try Broker()
        let daemon = try DaemonProcess(config: DaemonProcess.config(gateway: "gw-restart", localPort: broker.port))
        try daemon.start()
        let publisher = try TestPublisher(broker: broker, topics: (0..<10).map { "energy/s\($0)/m/v" }, clientID: "pub-faults")
        let publishing = Publishing(publisher, rate: 2000)
        var recoveries: [Double] = []
        for i in 1...restarts {
            usleep(UInt32.random(in: 400_000...1_000_000, using: &rng))
            broker.stop()
            usleep(UInt32.random(in: 100_000...500_000, using: &rng))
            let started = Date()
            try broker.start()
            // vigil is back when it logs its next connection.
            let ok = eventually(timeout: 30, interval: 0.01) { daemon.log.components(separatedBy: "MQTT connected").count - 1 >= i + 1 }
            if !ok { result.failures.append("restart \(i): vigil did not reconnect within 30 s") }
            recoveries.append(Date().timeIntervalSince(started))
        }
        publishing.stop()
        let sent = publisher.publisher.acknowledged
        if !publisher.publisher.waitForAcknowledgements(sent, timeout: 60) { result.failures.append("the broker did not acknowledge every message") }
        waitUntilDrained(daemon, atLeast: Int64(sent))
        let counts = try storedValueCounts(daemon)
        let missing = (0..<sent).filter { counts[$0] == nil }
        let doubled = counts.values.filter { $0 > 1 }.count
        let redelivered = ((try? daemon.reader().counters()) ?? [:])[CounterName.readingsDuplicate] ?? 0
        if !missing.isEmpty { result.failures.append("\(missing.count) accepted readings not stored: \(missing.prefix(10))") }
        if doubled > 0 { result.failures.append("\(doubled) readings stored more than once") }
        result.readingsLost = "\(missing.count) of \(sent)"
        result.duplicates = "stored: \(doubled) (redelivered by the broker and dropped: \(redelivered))"
        result.recovery = "broker up to vigil subscribed: p50 \(ms(percentile(recoveries, 0.5))), max \(ms(recoveries.max() ?? 0))"
        publisher.close()
        daemon.stop()
        print("broker restarts: \(result.readingsLost) lost; \(result.duplicates); \(result.recovery)")
        return result
    }
}

/// The upstream broker down for a while under load, then back: every aggregate and alert
/// arrives, each kind's first arrivals in seq order.
enum UpstreamOutageFault {
    static func run(seconds: Double) throws -> FaultResult {
        var result = FaultResult(fault: "upstream down \(Int(seconds)) s under 1,000 readings/s", times: 1, readingsLost: "", messagesLost: "", duplicates: "", recovery: "")
        // An alert raised while upstream is away: s0's values pass the threshold halfway through.
        let rig = try FaultRig(
            gateway: "gw-outage", maxInflight: nil,
            rules: """
                rules:
                  - id: high
                    match: energy/s0/+/v
                    op: ">"
                    levels: { red: \(Int(3000 + seconds * 500)) }
                """)
        let (local, upstream, daemon) = (rig.local, rig.upstream, rig.daemon)
        defer { rig.collector.close() }
        try daemon.start()
        let publisher = try TestPublisher(broker: local, topics: (0..<50).map { "energy/s\($0)/m/v" })
        let publishing = Publishing(publisher, rate: 1000)
        usleep(3_000_000)
        upstream.stop()
        usleep(UInt32(seconds * 1_000_000))
        // What was queued while upstream was away: everything up to this seq.
        let backlog = try scalar(daemon, "SELECT count(*) FROM outbox WHERE delivered IS NULL")
        let queuedUpTo = try scalar(daemon, "SELECT max(seq) FROM outbox")
        let upstreamConnects = { daemon.log.components(separatedBy: "MQTT connected mqtt.broker=\(upstream.address)").count - 1 }
        let connectsBefore = upstreamConnects()
        let started = Date()
        try upstream.start()
        _ = eventually(timeout: 60, interval: 0.01) { upstreamConnects() > connectsBefore }
        let reconnectSeconds = Date().timeIntervalSince(started)
        let drained = eventually(timeout: 300, interval: 0.05) {
            (try? scalar(daemon, "SELECT count(*) FROM outbox WHERE delivered IS NULL AND seq <= \(queuedUpTo)")) == 0
        }
        let drainSeconds = Date().timeIntervalSince(started)
        if !drained { result.failures.append("the backlog of \(backlog) did not drain") }
        usleep(2_000_000)
        let sent = publishing.stopAndDrain(publisher, into: daemon, failures: &result.failures)
        _ = eventually(timeout: 60, interval: 0.1) { (try? scalar(daemon, "SELECT count(*) FROM outbox WHERE delivered IS NULL")) == 0 }
        let counts = try storedValueCounts(daemon)
        let lostReadings = (0..<sent).filter { counts[$0] == nil }.count
        if lostReadings > 0 { result.failures.append("\(lostReadings) readings not stored") }
        let up = try rig.tally()
        if up.missing > 0 { result.failures.append("\(up.missing) of \(up.maxSeq) messages never reached upstream") }
        // In order: within each kind, the first arrival of each seq comes in seq order.
        for kind in ["/agg/", "/alert/"] {
            var seen = Set<Int64>()
            var firsts: [Int64] = []
            for m in up.received where m.topic.contains(kind) && seen.insert(m.seq).inserted { firsts.append(m.seq) }
            if firsts != firsts.sorted() { result.failures.append("\(kind) messages first arrived out of seq order") }
        }
        if !up.received.contains(where: { $0.isAlert }) { result.failures.append("no alert reached upstream") }
        result.readingsLost = "\(lostReadings) of \(sent)"
        result.messagesLost = "\(up.missing) of \(up.maxSeq) (backlog \(backlog) at reconnection)"
        result.duplicates = "upstream: \(up.duplicates) (in-flight window)"
        result.recovery = String(
            format: "reconnected %.1f s after upstream returned (backoff), backlog delivered %.1f s later", reconnectSeconds,
            drainSeconds - reconnectSeconds)
        publisher.close()
        daemon.stop()
        print("upstream outage: \(result.messagesLost) lost; \(result.duplicates); \(result.recovery)")
        return result
    }
}
