import Foundation
import VigilCore
import VigilMQTT
import VigilStorage
import VigilTestSupport

/// The buffer at `max_size` during an upstream outage: ingest goes on; summarised readings
/// go first, then the oldest undelivered aggregates (the documented drop policy); alerts
/// are never dropped; what was dropped is counted exactly (the seqs upstream never gets
/// are the dropped count, no more, no less).
enum MaxSizeFault {
    static func run(seconds: Double) throws -> FaultResult {
        var result = FaultResult(
            fault: "buffer at max_size (1 MiB) during a \(Int(seconds)) s upstream outage, 1,200 readings/s over 200 series",
            times: 1, readingsLost: "", messagesLost: "", duplicates: "", recovery: "")
        let rig = try FaultRig(
            gateway: "gw-max",
            rules: """
                rules:
                  - id: alarm
                    match: energy/alarm/+/v
                    op: ">"
                    levels: { red: 100 }
                """,
            adjust: { $0.replacingOccurrences(of: "max_size: 1GiB", with: "max_size: 1MiB") })
        let (local, upstream, collector, daemon) = (rig.local, rig.upstream, rig.collector, rig.daemon)
        defer { collector.close() }
        try daemon.start()
        upstream.stop()
        let sensors = try TestPublisher(broker: local, topics: (0..<200).map { "energy/s\($0 % 20)/m\($0)/v" })
        let alarms = try TestPublisher(broker: local, topics: ["energy/alarm/a/v"])
        let publishing = Publishing(sensors, rate: 1200)
        // An alarm on a new device every few seconds, while the buffer is full.
        let alarmCount = max(3, Int(seconds / 4))
        let raising = Publishing(run: { stop in
            alarms.publisher.run(count: alarmCount, rate: Double(alarmCount) / (seconds * 0.8), shouldStop: stop) { i, _ in
                ("energy/alarm/a\(i)/v", Array("150".utf8))
            }
        })
        usleep(UInt32(seconds * 1e6))
        let sensorsSent = publishing.stop().sent
        let alarmsSent = raising.stop().sent
        let sent = sensorsSent + alarmsSent
        if !sensors.publisher.waitForAcknowledgements(sensorsSent, timeout: 60) || !alarms.publisher.waitForAcknowledgements(alarmsSent) {
            result.failures.append("the broker did not acknowledge every reading")
        }
        waitUntilDrained(daemon, atLeast: Int64(sent))
        // Let maintenance (every 2 s) bring the buffer down to max_size.
        _ = eventually(timeout: 10, interval: 0.2) { ((try? daemon.reader().usedBytes()) ?? .max) <= (1 << 20) + (128 << 10) }
        let used = (try? daemon.reader().usedBytes()) ?? -1
        if used > (1 << 20) + (128 << 10) { result.failures.append("the buffer holds \(ByteSize(bytes: used)), over max_size") }
        let counters = try daemon.reader().counters()
        let stored = counters[CounterName.readingsStored] ?? 0
        if stored != Int64(sent) { result.failures.append("stored \(stored) of \(sent) readings: ingest did not go on") }
        let prunedSize = counters[CounterName.readingsPrunedSize] ?? 0
        if prunedSize == 0 { result.failures.append("no summarised reading was pruned for max_size") }
        let droppedBeforeReturn = counters[CounterName.outboxDroppedAggregates] ?? 0
        if droppedBeforeReturn == 0 { result.failures.append("the outage never filled the buffer (no aggregate dropped)") }

        let returned = Date()
        try upstream.start()
        let drained = eventually(timeout: 120, interval: 0.1) {
            (try? scalar(daemon, "SELECT count(*) FROM outbox WHERE delivered IS NULL")) == 0
                && collector.alerts.contains { $0.json["rule"] as? String == "vigil-backlog" && $0.json["state"] as? String == "resolved" }
        }
        let recovery = Date().timeIntervalSince(returned)
        if !drained { result.failures.append("the backlog did not drain, or vigil's backlog alert did not resolve") }
        usleep(500_000)
        let dropped = (try daemon.reader().counters())[CounterName.outboxDroppedAggregates] ?? 0
        let up = try rig.tally()
        let (received, missing) = (up.received, up.missing)
        if missing != dropped {
            result.failures.append("upstream misses \(missing) seqs but \(dropped) aggregates were counted as dropped")
        }
        // Alerts: every transition vigil recorded reached upstream (none dropped).
        let events = try scalar(daemon, "SELECT count(*) FROM alert_events")
        let alertsUp = Set(received.filter(\.isAlert).map(\.seq)).count
        if Int64(alertsUp) != events { result.failures.append("\(events) alert transitions, \(alertsUp) reached upstream") }
        let alarmRaises = Set(received.filter { $0.isAlert && $0.json["rule"] as? String == "alarm" }.compactMap { $0.json["series"] as? String })
        if alarmRaises.count != alarmCount { result.failures.append("\(alarmRaises.count) of \(alarmCount) alarms reached upstream") }
        if daemon.stop() != 0 { result.failures.append("vigil did not stop cleanly") }

        result.readingsLost = "\(Int64(sent) - stored) of \(sent) (\(prunedSize) pruned for max_size once summarised)"
        result.messagesLost = "\(missing) aggregates dropped, counted \(dropped); alerts: \(Int64(alertsUp) == events ? 0 : events - Int64(alertsUp)) of \(events)"
        result.duplicates = "upstream: \(up.duplicates) (in-flight window)"
        result.recovery = String(format: "backlog delivered and the backlog alert resolved %.1f s after upstream returned", recovery)
        sensors.close()
        alarms.close()
        print("max_size outage: \(result.messagesLost); \(result.recovery)")
        return result
    }
}
