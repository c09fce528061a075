import Foundation
import VigilCore
import VigilMQTT
import VigilTestSupport

/// Upstream away, then back: how fast vigil drains the backlog while live data keeps
/// flowing, and whether memory stays flat while the backlog is on disk.
enum DrainBench {
    struct Result {
        var liveRate: Double
        var backlog: Int64
        var drainSeconds: Double
        var rssStart: Double
        var rssMax: Double
        var rssEnd: Double
        var drainRate: Double { drainSeconds > 0 ? Double(backlog) / drainSeconds : 0 }
    }

    static func run(outage: Double) throws -> Result {
        let local = try Broker()
        let upstream = try Broker()
        let collector = try UpstreamCollector(broker: upstream)
        let daemon = try DaemonProcess(
            config: DaemonProcess.config(
                gateway: "gw-drain", localPort: local.port, qos: 0,
                extra: DaemonProcess.upstreamSection(
                    port: upstream.port, maxInflight: 100,
                    extra: "log:\n  level: \(ProcessInfo.processInfo.environment["VIGIL_BENCH_TRACE"] != nil ? "debug" : "info")")))
        try daemon.start()
        let series = 500
        let rate = 2000.0
        let topics = (0..<series).map { "energy/site-\($0 % 10)/meter-\($0)/voltage" }
        let e = MQTTEndpoint(host: local.host, port: local.port, clientID: "drain-pub")
        let pub = try PacedPublisher(endpoint: e, qos: 0)
        _ = pub.connect()
        let stop = StopSwitch()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = pub.run(count: Int.max, rate: rate, shouldStop: { stop.isOn }) { i, t in
                (topics[i % topics.count], Array("{\"value\":\(224 + Double(i % 50) / 10),\"ts\":\(t.secondsString)}".utf8))
            }
            done.signal()
        }
        // Live for a few windows, then upstream goes away.
        _ = eventually(timeout: 20) { collector.aggregates.count > series * 3 }
        let pid = daemon.pid!
        upstream.stop()
        let rssStart = ProcStat.rssMB(pid)
        var rssMax = rssStart
        let away = Date()
        while Date().timeIntervalSince(away) < outage {
            Thread.sleep(forTimeInterval: 1)
            rssMax = max(rssMax, ProcStat.rssMB(pid))
        }
        let rssEnd = ProcStat.rssMB(pid)
        // Everything queued up to now: drained when its last seq has arrived (aggregates
        // leave in seq order), timed from vigil's reconnection (its retained `online`).
        let last = (try? daemon.reader().outbox(limit: 1_000_000).map(\.0.seq).max()) ?? 0
        let before = collector.all.count
        let backlog = (try? daemon.reader().outbox(limit: 1_000_000).filter { $0.1 == nil }.count).map(Int64.init) ?? 0
        try upstream.start()
        // vigil's `online` says when it connected (`since`): the clock starts there, not at
        // whatever the collector's own session replays when it reconnects first.
        let onlineSince = { (m: UpstreamCollector.Message) -> Date? in
            guard m.topic.hasSuffix("/status"), (m.json["state"] as? String) == "online",
                let since = (m.json["since"] as? String).flatMap({ Timestamp.parseRFC3339($0) })
            else { return nil }
            let d = Date(timeIntervalSince1970: since.seconds)
            return d > away ? d : nil
        }
        _ = eventually(timeout: 120, interval: 0.05) { collector.all.dropFirst(before).contains { onlineSince($0) != nil } }
        let reconnected = collector.all.dropFirst(before).compactMap(onlineSince).first ?? Date()
        _ = eventually(timeout: 120, interval: 0.01) { (collector.highestSeq?.seq ?? 0) >= last }
        let drained = collector.all.dropFirst(before).first { $0.seq >= last }?.arrived ?? Date()
        let seconds = drained.timeIntervalSince(reconnected)
        if ProcessInfo.processInfo.environment["VIGIL_BENCH_TRACE"] != nil {
            var buckets: [Int: (Int, Int)] = [:]
            for m in collector.all.dropFirst(before) {
                let b = Int(m.arrived.timeIntervalSince(reconnected) * 4)
                var e = buckets[b] ?? (0, 0)
                if m.seq <= last { e.0 += 1 } else { e.1 += 1 }
                buckets[b] = e
            }
            for k in buckets.keys.sorted() { print("  +\(Double(k) / 4)s: backlog \(buckets[k]!.0), live \(buckets[k]!.1)") }
        }
        stop.turnOn()
        done.wait()
        pub.close()
        daemon.stop()
        print(String(format: "drain: backlog %lld after %.0f s away; drained in %.2f s after reconnecting, with live data flowing", backlog, outage, seconds))
        return Result(
            liveRate: Double(series), backlog: backlog, drainSeconds: seconds, rssStart: rssStart, rssMax: rssMax, rssEnd: rssEnd)
    }

    static func backlogNow(_ daemon: DaemonProcess) -> Int64 {
        guard let raw = daemon.statusJSON(),
            let obj = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any],
            let up = obj["upstream"] as? [String: Any]
        else { return .max }
        return ((up["backlog_aggregates"] as? NSNumber)?.int64Value ?? 0) + ((up["backlog_alerts"] as? NSNumber)?.int64Value ?? 0)
    }
}

/// A flag one thread sets and another polls.
/// `@unchecked Sendable`: `on` is read and written only under `lock`.
final class StopSwitch: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var on = false
    var isOn: Bool {
        lock.lock()
        defer { lock.unlock() }
        return on
    }
    func turnOn() {
        lock.lock()
        on = true
        lock.unlock()
    }
}
