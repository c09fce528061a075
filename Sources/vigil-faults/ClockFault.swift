import Foundation
import VigilCore
import VigilMQTT
import VigilStorage
import VigilTestSupport

/// The gateway's wall clock stepped back an hour, then forward a day, during ingest
/// (`CSteppedClock` preloaded into the daemon only: brokers and most sensors keep the true
/// time; a few sensors follow the gateway's clock, re-synced once vigil has seen each step).
/// vigil must keep its own time line: a `for` timer fires on time (not early at the forward
/// step, not an hour late after the step back), readings without a timestamp are labelled on
/// that time line, readings with one are all taken (none judged from the future) and those
/// that follow the stepped clock are moved onto the time line, retention (12 h here) does
/// not prune a day's worth at the forward step, aggregate windows close on time, none
/// repeats and each counts every reading, and the upstream seq has no gap or repeat.
enum ClockFault {
    /// The preload library, built beside the daemon.
    static var library: String {
        URL(fileURLWithPath: DaemonProcess.binary).deletingLastPathComponent().appendingPathComponent("libvigil-stepped-clock.so").path
    }

    static func run() throws -> FaultResult {
        var result = FaultResult(
            fault: "wall clock stepped back 1 h, then forward 1 day, under 2,000 readings/s", times: 2, readingsLost: "",
            messagesLost: "", duplicates: "", recovery: "")
        guard FileManager.default.fileExists(atPath: library) else {
            result.failures.append("\(library) is missing (swift build makes it)")
            return result
        }
        let rig = try FaultRig(
            gateway: "gw-clock",
            rules: """
                rules:
                  - id: hold
                    match: energy/gw/hold/v
                    op: ">"
                    for: 8s
                    levels: { red: 100 }
                """,
            adjust: {
                $0.replacingOccurrences(of: "retention: 7d", with: "retention: 12h")
                    // A loaded machine may take over a second from publish to receipt.
                    .replacingOccurrences(of: "allowed_lateness: 1s", with: "allowed_lateness: 5s")
            })
        let (local, collector, daemon) = (rig.local, rig.collector, rig.daemon)
        defer { collector.close() }
        // The daemon's wall clock is the true one plus the seconds this file says.
        let offsetFile = daemon.directory.file("clock-offset")
        func step(_ seconds: Int) { try? "\(seconds)\n".write(toFile: offsetFile, atomically: true, encoding: .utf8) }
        step(0)
        try daemon.start(environment: ["LD_PRELOAD": library, "VIGIL_CLOCK_OFFSET_FILE": offsetFile])

        // Sensors with their own (true) clocks, and one device that sends bare numbers: the
        // gateway gives those its time. It crosses the rule's threshold 2 s in.
        let sensors = try TestPublisher(broker: local, topics: (0..<20).map { "energy/s\($0)/m/v" })
        let device = try TestPublisher(broker: local, topics: ["energy/gw/hold/v"])
        let followers = try TestPublisher(broker: local, topics: (0..<5).map { "energy/f\($0)/m/v" })
        let followed = FollowedClock()
        let began = Date()
        let publishing = Publishing(sensors, rate: 2000)
        let following = Publishing(run: { stop in
            followers.publisher.run(count: Int.max / 2, rate: 200, shouldStop: stop) { i, t in
                guard let offset = followed.offset else { return nil }  // re-syncing: silent
                return (followers.topics[i % 5], TestPublisher.payload(seq: i, at: t.adding(.seconds(offset))))
            }
        })
        let crossesAt = began.addingTimeInterval(2)
        let holding = Publishing(run: { stop in
            device.publisher.run(count: Int.max / 2, rate: 10, shouldStop: stop) { i, _ in
                ("energy/gw/hold/v", Array((i < 20 ? "50" : "200").utf8))
            }
        })
        func at(_ seconds: Double) { usleep(UInt32(max(0, began.addingTimeInterval(seconds).timeIntervalSinceNow) * 1e6)) }
        // The followers go quiet at each step and take up the gateway's clock once vigil has
        // seen it (as a sensor that syncs with the gateway would, a poll later).
        var steps = 0
        func stepAndFollow(_ seconds: Int) {
            followed.offset = nil
            step(seconds)
            steps += 1
            let seen = eventually(timeout: 5, interval: 0.05) {
                daemon.log.components(separatedBy: "the wall clock was stepped").count - 1 >= steps
            }
            if !seen { result.failures.append("vigil did not see the step of \(seconds) s within 5 s") }
            followed.offset = Int64(seconds)
        }
        at(4)
        stepAndFollow(-3600)
        at(7)
        stepAndFollow(86400)
        at(14)
        holding.stop()
        let followersSent = following.stop().sent
        let ended = Date()
        if !followers.publisher.waitForAcknowledgements(followersSent, timeout: 60) {
            result.failures.append("the broker did not acknowledge every reading")
        }
        let sent = publishing.stopAndDrain(sensors, into: daemon, failures: &result.failures)
        waitUntilDrained(daemon, atLeast: Int64(sent + followersSent))
        // The last windows close a second after they end, a second late: then all is upstream.
        _ = eventually(timeout: 30, interval: 0.1) {
            (try? scalar(daemon, "SELECT count(*) FROM outbox WHERE delivered IS NULL")) == 0
                && Date().timeIntervalSince(ended) > 4
        }

        // Readings: every sensor reading stored once, none rejected; the device's readings
        // labelled on the time line (the true time here), not an hour back or a day on.
        var counts: [Int: Int] = [:]
        for r in try daemon.readings("energy/+/m/v") where r.series.hasPrefix("energy/s") { counts[Int(r.value), default: 0] += 1 }
        let lost = (0..<sent).filter { counts[$0] == nil }.count
        let doubled = counts.values.filter { $0 > 1 }.count
        if lost > 0 { result.failures.append("\(lost) sensor readings not stored (judged from the future?)") }
        if doubled > 0 { result.failures.append("\(doubled) sensor readings stored twice") }
        let rejected = try scalar(daemon, "SELECT count(*) FROM rejects")
        if rejected > 0 { result.failures.append("\(rejected) messages rejected") }
        let lo = Timestamp(secondsValue: began.timeIntervalSince1970 - 2)!
        let hi = Timestamp(secondsValue: ended.timeIntervalSince1970 + 2)!
        // The followers: every reading stored once, moved onto the time line.
        let follower = try daemon.readings("energy/+/m/v").filter { $0.series.hasPrefix("energy/f") }
        let followerValues = Dictionary(grouping: follower, by: { Int($0.value) })
        // (The slots skipped while re-syncing leave gaps in the values: count, do not list.)
        let followersLost = followersSent - followerValues.count
        if followersLost > 0 { result.failures.append("\(followersLost) of \(followersSent) readings of sensors on the stepped clock not stored") }
        if followerValues.values.contains(where: { $0.count > 1 }) { result.failures.append("readings of sensors on the stepped clock stored twice") }
        let followersOff = follower.filter { $0.timestamp < lo || $0.timestamp > hi }
        if !followersOff.isEmpty {
            result.failures.append("\(followersOff.count) readings of sensors on the stepped clock left off the time line (e.g. \(followersOff[0].timestamp.rfc3339))")
        }
        let held = try daemon.readings("energy/gw/hold/v")
        let mislabelled = held.filter { $0.timestamp < lo || $0.timestamp > hi }
        if held.count < 100 { result.failures.append("only \(held.count) readings of the bare-number device stored") }
        if !mislabelled.isEmpty {
            result.failures.append(
                "\(mislabelled.count) readings without a timestamp labelled off the time line (e.g. \(mislabelled[0].timestamp.rfc3339))")
        }

        // The `for: 8s` timer: raised once, 8 s after the crossing (the tick: up to a second
        // more), across both steps.
        let raises = collector.alerts.filter { $0.json["rule"] as? String == "hold" && $0.json["state"] as? String == "raised" }
        var raisedAfter = -1.0
        if let first = raises.first {
            raisedAfter = first.arrived.timeIntervalSince(crossesAt)
            if raisedAfter < 7.9 || raisedAfter > 11 {
                result.failures.append(String(format: "the for: 8s timer fired %.1f s after the crossing", raisedAfter))
            }
        } else {
            result.failures.append("the for: 8s alert was never raised")
        }
        if Set(raises.map(\.seq)).count > 1 { result.failures.append("the alert was raised \(raises.count) times") }

        // Aggregate windows: each (series, window) once, on the true time, counts complete.
        let aggregates = collector.aggregates.filter { !$0.retained }
        var windows: [String: Int64] = [:]
        var repeated = 0
        var offTime = 0
        var perSeries: [String: Int] = [:]
        for m in aggregates {
            let series = m.json["series"] as? String ?? ""
            let start = m.json["window_start"] as? String ?? ""
            if let seq = windows[series + " " + start] {
                if seq != m.seq { repeated += 1 }  // a redelivery has the same seq
                continue
            }
            windows[series + " " + start] = m.seq
            perSeries[series, default: 0] += m.count
            if let t = Timestamp.parseRFC3339(start), t < lo || t > hi { offTime += 1 }
        }
        if repeated > 0 { result.failures.append("\(repeated) aggregate windows sent twice") }
        if offTime > 0 { result.failures.append("\(offTime) aggregate windows off the time line") }
        var storedPerSeries: [String: Int] = [:]
        for r in try daemon.readings("energy/#") { storedPerSeries[r.series, default: 0] += 1 }
        let short = storedPerSeries.filter { perSeries[$0.key] != $0.value }
        if !short.isEmpty {
            result.failures.append(
                "aggregates do not count every stored reading: \(short.count) series, e.g. \(short.first!.key) stored \(short.first!.value), aggregated \(perSeries[short.first!.key] ?? 0)")
        }

        // seq: no gap, no repeat.
        let up = try rig.tally()
        if up.missing > 0 { result.failures.append("\(up.missing) of \(up.maxSeq) upstream messages missing") }
        let sentTwice = try scalar(daemon, "SELECT count(*) - count(DISTINCT seq) FROM outbox")
        if sentTwice > 0 { result.failures.append("\(sentTwice) seqs used twice") }

        // Said so: logged once per step away, in the status record, and back when set right.
        let warned = daemon.log.contains("the wall clock was stepped")
        if !warned { result.failures.append("vigil did not say that the wall clock was stepped") }
        let offset = daemon.statusJSON().flatMap { StatusClock(json: $0) }
        if let o = offset, abs(o.offset - 86400) > 5 || !o.stepped {
            result.failures.append("status says the clock is \(o.offset) s off (stepped: \(o.stepped)), not a day")
        } else if offset == nil {
            result.failures.append("the status record has no clock")
        }
        step(0)
        let back = eventually(timeout: 10, interval: 0.2) { daemon.log.contains("the wall clock is back") }
        if !back { result.failures.append("vigil did not notice the wall clock set right") }
        if daemon.stop() != 0 { result.failures.append("vigil did not stop cleanly") }

        result.readingsLost = "\(lost) of \(sent), and \(followersLost) of \(followersSent) on the stepped clock (\(followersOff.count) off the time line); of \(held.count) without a timestamp, \(mislabelled.count) off the time line"
        result.messagesLost = "\(up.missing) of \(up.maxSeq); \(windows.count) windows, \(offTime) off time"
        result.duplicates = "stored: \(doubled), windows sent twice: \(repeated)"
        result.recovery = raisedAfter >= 0 ? String(format: "for: 8s fired after %.1f s", raisedAfter) : "for: 8s never fired"
        sensors.close()
        device.close()
        followers.close()
        print("clock steps: \(result.readingsLost) lost; \(result.messagesLost); \(result.recovery)")
        return result
    }

    /// The offset the following sensors add to the true time; nil while they re-sync.
    /// `@unchecked Sendable`: `value` is read and written only under `lock`.
    final class FollowedClock: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Int64? = 0
        var offset: Int64? {
            get { lock.withLock { value } }
            set { lock.withLock { value = newValue } }
        }
    }

    /// The `clock` part of the status record.
    struct StatusClock {
        var offset: Double
        var stepped: Bool
        init?(json: String) {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                let c = obj["clock"] as? [String: Any], let o = c["offset_seconds"] as? NSNumber
            else { return nil }
            offset = o.doubleValue
            stepped = c["stepped"] as? Bool ?? false
        }
    }
}
