import Foundation
import VigilCore
import VigilStorage
import VigilTestSupport

/// kill -9 at random moments during 5,000 readings/s of ingest, upstream going down and up
/// between crashes. After each crash, before the restart: the buffer passes
/// `PRAGMA integrity_check`, and every series has exactly one raised alert and one
/// `raised` event (a rule raises on each series' first reading: no alert state lost or
/// doubled). At the end: readings lost per crash within the documented window, and every
/// outbox row delivered upstream at least once.
enum CrashFault {
    static let rate = 5000.0
    static let series = 20

    static func run(cycles: Int, rng: inout SeededGenerator) throws -> FaultResult {
        var result = FaultResult(fault: "kill -9 during 5,000 readings/s, upstream down and up", times: cycles, readingsLost: "", messagesLost: "", duplicates: "", recovery: "")
        // Raised by each series' first reading (every value is over -1), never resolved.
        let rig = try FaultRig(
            gateway: "gw-crash",
            rules: """
                rules:
                  - id: always
                    match: energy/+/+/v
                    op: ">"
                    levels: { red: -1 }
                """)
        let (local, upstream, daemon) = (rig.local, rig.upstream, rig.daemon)
        defer { rig.collector.close() }
        try daemon.start()
        let publisher = try TestPublisher(broker: local, topics: (0..<series).map { "energy/s\($0)/m/v" })
        let publishing = Publishing(publisher, rate: rate)
        // Readings acknowledged by the broker just after each kill. Read after it, not before:
        // what vigil held when it died was published earlier, but the broker's PUBACK for it
        // may reach the publisher a few milliseconds later.
        var killedAt: [Int] = []
        var recoveries: [Double] = []
        // Seconds from each start (subscribed) to its kill: a loss above the window says when it came.
        var upFor: [Double] = []
        var startedAt = Date()
        for cycle in 1...cycles {
            usleep(UInt32.random(in: 300_000...1_200_000, using: &rng))
            switch cycle % 4 {
            case 1: upstream.stop()
            case 3: try upstream.start()
            default: break
            }
            daemon.kill()
            upFor.append(Date().timeIntervalSince(startedAt))
            usleep(200_000)
            killedAt.append(publisher.publisher.acknowledged)
            // Nothing writes the buffer now: check it as a restart would find it.
            let db = try SQLiteDatabase(path: BufferOptions(directory: daemon.stateDir).databasePath)
            let integrity = try db.scalarText("PRAGMA integrity_check") ?? "?"
            if integrity != "ok" { result.failures.append("crash \(cycle): integrity_check says \(integrity)") }
            let seriesSeen = try db.scalarInt("SELECT count(*) FROM series") ?? 0
            let active = try db.scalarInt("SELECT count(*) FROM alert_states WHERE level IS NOT NULL") ?? 0
            let raisedEvents = try db.scalarInt("SELECT count(*) FROM alert_events WHERE state = 'raised'") ?? 0
            if active != seriesSeen || raisedEvents != seriesSeen {
                result.failures.append("crash \(cycle): \(seriesSeen) series, \(active) raised alerts, \(raisedEvents) raised events (each should be one per series)")
            }
            let started = Date()
            try daemon.start()
            startedAt = Date()
            recoveries.append(Date().timeIntervalSince(started))
        }
        if !upstream.isRunning { try upstream.start() }
        publishing.stop()
        let sent = publisher.publisher.acknowledged
        _ = publisher.publisher.waitForAcknowledgements(sent, timeout: 60)
        waitUntilDrained(daemon, atLeast: Int64(sent) - 75 * Int64(cycles))
        // Readings: each one missing is charged to the first crash after it was sent.
        let counts = try storedValueCounts(daemon)
        var lostPerCrash = [Int](repeating: 0, count: cycles)
        var lostValues = [[Int]](repeating: [], count: cycles)
        var lostAfterLastCrash = 0
        for v in 0..<sent where counts[v] == nil {
            if let c = killedAt.firstIndex(where: { v < $0 }) {
                lostPerCrash[c] += 1
                lostValues[c].append(v)
            } else {
                lostAfterLastCrash += 1
            }
        }
        let doubled = counts.values.filter { $0 > 1 }.count
        let window = UncommittedWindow.readings(rate: rate, commitInterval: 0.005)
        let worst = lostPerCrash.max() ?? 0
        let total = lostPerCrash.reduce(0, +)
        if worst > window { result.failures.append("a crash lost \(worst) readings, more than the documented window of \(window)") }
        for c in 0..<cycles where lostPerCrash[c] > window / 2 {
            // Where the lost readings sit: just before the kill (the window), or earlier.
            let values = lostValues[c]
            print(
                "  crash \(c + 1): lost \(values.count), readings \(values.first!)...\(values.last!), the last acknowledged before the kill "
                    + "\(killedAt[c] - 1); killed \(ms(upFor[c])) after it was up")
        }
        if lostAfterLastCrash > 0 { result.failures.append("\(lostAfterLastCrash) readings sent after the last crash were not stored") }
        if doubled > 0 { result.failures.append("\(doubled) readings stored more than once") }
        result.readingsLost = "\(total) of \(sent) (at most \(worst) per crash; window \(window))"

        // Upstream: every outbox row delivered at least once, alerts ahead of nothing lost.
        let drained = eventually(timeout: 120, interval: 0.2) {
            (try? scalar(daemon, "SELECT count(*) FROM outbox WHERE delivered IS NULL")) == 0
        }
        if !drained { result.failures.append("the outbox did not drain after upstream came back") }
        let up = try rig.tally()
        if up.missing > 0 { result.failures.append("\(up.missing) of \(up.maxSeq) outbox messages never reached upstream") }
        let raisedUpstream = Set(up.received.filter { $0.isAlert && ($0.json["state"] as? String) == "raised" }.map { $0.json["series"] as? String ?? "" })
        if raisedUpstream.count != series { result.failures.append("upstream saw \(raisedUpstream.count) distinct raised alerts, expected \(series)") }
        result.messagesLost = "\(up.missing) of \(up.maxSeq)"
        result.duplicates = "stored: \(doubled); upstream: \(up.duplicates) (at least once)"
        result.recovery = "restart to subscribed: p50 \(ms(percentile(recoveries, 0.5))), max \(ms(recoveries.max() ?? 0))"
        publisher.close()
        daemon.stop()
        print("crash: \(result.readingsLost); upstream \(result.messagesLost) lost; \(result.duplicates); \(result.recovery)")
        return result
    }
}
