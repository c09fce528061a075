import Foundation
import Testing
import VigilCore
import VigilMQTT
import VigilStorage
import VigilTestSupport

/// A local broker, an upstream broker with a collector on it, and daemons between them.
struct UpstreamRig {
    let local: Broker
    let upstream: Broker
    let collector: UpstreamCollector

    init(upstreamListener: String = "") throws {
        local = try Broker()
        upstream = try Broker(listenerConfig: upstreamListener)
        collector = try UpstreamCollector(broker: upstream)
    }

    /// The daemon config: 1-second windows closed a second late, the given upstream.
    static func config(gateway: String, local: Int, upstream: Int, upstreamExtra: String = "") -> String {
        DaemonProcess.config(gateway: gateway, localPort: local, extra: DaemonProcess.upstreamSection(port: upstream, extra: upstreamExtra))
    }

    func daemon(_ gateway: String, rules: String? = nil) throws -> DaemonProcess {
        let d = try DaemonProcess(config: Self.config(gateway: gateway, local: local.port, upstream: upstream.port))
        if let rules { try rules.write(toFile: d.directory.file("rules.d/r.yaml"), atomically: true, encoding: .utf8) }
        try d.start()
        return d
    }
}

/// What was sent: per series and 1-second window, the values.
final class SentLog: @unchecked Sendable {
    // Appended by one publisher thread, read after it is done.
    var values: [String: [Double]] = [:]

    func add(series: String, value: Double, at t: Timestamp) {
        let start = t.micros - t.micros % 1_000_000
        values["\(series) \(start)", default: []].append(value)
    }
}

/// Publishes `n` readings (value = sequence number) round-robin over `topics`, logging each.
func publishLogged(_ broker: Broker, topics: [String], network: String = "energy", first: Int = 0, n: Int, rate: Double, log: SentLog) throws {
    let e = MQTTEndpoint(host: broker.host, port: broker.port, clientID: "pub-\(UUID().uuidString.prefix(6))")
    let p = try PacedPublisher(endpoint: e, qos: 1)
    defer { p.close() }
    guard p.connect() else { throw Broker.BrokerError.didNotStart("publisher") }
    _ = p.run(count: n, rate: rate) { i, t in
        let seq = first + i
        let topic = topics[seq % topics.count]
        log.add(series: topic, value: Double(seq), at: t)
        return (topic, TestPublisher.payload(seq: seq, at: t))
    }
    _ = p.waitForAcknowledgements(n, timeout: 60)
}

extension Integration {
    @Suite("Upstream")
    struct Upstream {
        /// N readings over several windows: the aggregates' counts add up to N and their
        /// statistics match the test's own; every seq from first to last arrives.
        @Test func aggregatesAddUpAndEverySeqArrives() throws {
            let rig = try UpstreamRig()
            let daemon = try rig.daemon("gw-a")
            let log = SentLog()
            let topics = (0..<5).map { "energy/s\($0)/m/v" }
            let n = 3000
            try publishLogged(rig.local, topics: topics, n: n, rate: 600, log: log)
            #expect(eventually(timeout: 20) { rig.collector.aggregatedCount() == n }, "aggregated \(rig.collector.aggregatedCount()) of \(n)")
            var checked = 0
            for m in rig.collector.aggregates {
                let series = m.json["series"] as! String
                let start = Timestamp.parseRFC3339(m.json["window_start"] as! String)!
                let values = try #require(log.values["\(series) \(start.micros)"], "\(series) \(start)")
                #expect(m.count == values.count)
                #expect(m.double("min") == values.min() && m.double("max") == values.max())
                #expect(m.double("sum") == values.reduce(0, +))
                #expect(abs(m.double("mean")! - values.reduce(0, +) / Double(values.count)) < 1e-9)
                #expect(m.json["window_end"] as? String == start.adding(.seconds(1)).rfc3339)
                #expect(m.gateway == "gw-a" && m.topic == "vigil/gw-a/agg/\(series)")
                checked += 1
            }
            #expect(checked == log.values.count, "one aggregate per series and window")
            let seqs = Set(rig.collector.all.filter { !$0.topic.hasSuffix("/status") }.map(\.seq))
            #expect(seqs == Set(seqs.min()!...seqs.max()!), "every seq from first to last")
            let status = try daemon.command(["status"])
            #expect(status.stdout.contains("upstream 127.0.0.1:\(rig.upstream.port): connected"), "\(status.stdout)")
            #expect(rig.collector.all.first { $0.topic == "vigil/gw-a/status" }?.json["state"] as? String == "online")
            daemon.stop()
            #expect(eventually { rig.collector.all.last { $0.topic == "vigil/gw-a/status" }?.json["state"] as? String == "offline" })
        }

        /// `format: pack` with `compress: deflate`: one message per window, which Python's
        /// zlib opens, holding every series' aggregate of that window with the right stats.
        @Test(.enabled(if: Zlib.isAvailable, "python3 reads the zlib streams")) func packsDeflatedCarryEveryAggregate() throws {
            let rig = try UpstreamRig()
            let d = try DaemonProcess(
                config: UpstreamRig.config(
                    gateway: "gw-p", local: rig.local.port, upstream: rig.upstream.port,
                    upstreamExtra: "  format: pack\n  compress: deflate"))
            try d.start()
            defer { d.stop() }
            let log = SentLog()
            let topics = (0..<20).map { "energy/s\($0)/m/v" }
            let n = 2000
            try publishLogged(rig.local, topics: topics, n: n, rate: 500, log: log)
            var packs: [[String: Any]] = []
            let complete = eventually(timeout: 20) {
                packs = rig.collector.all.filter { $0.topic == "vigil/gw-p/aggpack" }.compactMap { m in
                    guard let json = (try? Zlib.decompress(m.payload))?.bytes else { return nil }
                    return (try? JSONSerialization.jsonObject(with: Data(json))) as? [String: Any]
                }
                let counts = packs.flatMap { ($0["aggregates"] as? [[String: Any]]) ?? [] }.map { ($0["count"] as? Int) ?? 0 }
                return counts.reduce(0, +) == n
            }
            #expect(complete, "\(packs.count) packs")
            #expect(!rig.collector.all.contains { $0.topic.contains("/agg/") }, "no per-series messages")
            var checked = 0
            for pack in packs {
                #expect(pack["gateway"] as? String == "gw-p")
                let start = pack["window_start"] as? String
                for a in (pack["aggregates"] as? [[String: Any]]) ?? [] {
                    let series = a["series"] as! String
                    #expect(a["window_start"] as? String == start)
                    let t = Timestamp.parseRFC3339(start ?? "")!
                    let values = try #require(log.values["\(series) \(t.micros)"])
                    #expect(a["count"] as? Int == values.count && a["sum"] as? Double == values.reduce(0, +))
                    checked += 1
                }
            }
            #expect(checked == log.values.count, "one aggregate per series and window")
            let seqs = packs.compactMap { $0["seq"] as? Int }
            #expect(Set(seqs).count == seqs.count && seqs == seqs.sorted(), "a seq per pack, in order: \(seqs)")
        }

        /// Upstream down for several windows under load: everything queues on disk, then
        /// drains; nothing missing, seq order kept, duplicates only from the in-flight window;
        /// an alert raised during the outage goes ahead of the aggregate backlog.
        @Test func outageUnderLoad() throws {
            let rig = try UpstreamRig()
            let rules = "rules:\n  - id: high\n    match: water/+/+/level\n    op: '>'\n    levels: { red: 100 }\n"
            let daemon = try rig.daemon("gw-b", rules: rules)
            let log = SentLog()
            let n = 4000
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                try? publishLogged(rig.local, topics: (0..<8).map { "energy/s\($0)/m/v" }, n: n, rate: 400, log: log)
                done.signal()
            }
            #expect(eventually { rig.collector.aggregates.count > 5 })
            rig.upstream.stop()
            let downAt = Date()
            #expect(eventually(timeout: 10) { (daemon.status()?.upstreamConnected ?? true) == false })
            try publishAll(rig.local, [("water/st/g", json("{\"level\": 150}"))])
            // Several windows pass while upstream is away.
            while Date().timeIntervalSince(downAt) < 4 { usleep(100_000) }
            let before = rig.collector.all.count
            try rig.upstream.start()
            let upAt = Date()
            done.wait()
            let complete = eventually(timeout: 30) { rig.collector.aggregatedCount(seriesPrefix: "energy/") == n }
            #expect(complete, "aggregated \(rig.collector.aggregatedCount(seriesPrefix: "energy/")) of \(n); \(try! daemon.command(["status"]).stdout)")
            let after = Array(rig.collector.all.dropFirst(before))
            // The alert went ahead of the aggregates queued before it.
            let alert = try #require(after.first { $0.isAlert })
            let alertIndex = after.firstIndex { $0.isAlert }!
            #expect(after[alertIndex...].contains { $0.isAggregate && $0.seq < alert.seq }, "aggregates older than the alert came after it")
            // Within a second of vigil's reconnection (its `online` says when), ahead of the backlog.
            let reconnected = after.compactMap { m -> Date? in
                guard m.topic.hasSuffix("/status"), (m.json["state"] as? String) == "online",
                    let since = (m.json["since"] as? String).flatMap({ Timestamp.parseRFC3339($0) })
                else { return nil }
                return Date(timeIntervalSince1970: since.seconds)
            }.last { $0 > upAt.addingTimeInterval(-1) }
            let back = try #require(reconnected)
            #expect(alert.arrived.timeIntervalSince(back) < 1, "the alert left \(alert.arrived.timeIntervalSince(back)) s after vigil reconnected")
            // Within each kind, first arrivals come in seq order; duplicates stay within the in-flight window.
            for kind in [true, false] {
                var seen = Set<Int64>()
                var last: Int64 = -1
                var duplicates = 0
                for m in rig.collector.all where m.isAggregate == kind && (m.isAggregate || m.isAlert) {
                    if !seen.insert(m.seq).inserted {
                        duplicates += 1
                        continue
                    }
                    #expect(m.seq > last, "seq \(m.seq) after \(last)")
                    last = m.seq
                }
                #expect(duplicates <= 20, "duplicates \(duplicates)")
            }
            let seqs = Set(rig.collector.all.filter { !$0.topic.hasSuffix("/status") }.map(\.seq))
            #expect(seqs == Set(seqs.min()!...seqs.max()!), "every seq from first to last")
            daemon.stop()
        }

        /// The same, with vigil killed (kill -9) while upstream is down: after both are back,
        /// every stored reading is in an aggregate and every seq arrives.
        @Test func killedWhileUpstreamIsDown() throws {
            let rig = try UpstreamRig()
            let daemon = try rig.daemon("gw-c")
            let log = SentLog()
            let topics = (0..<4).map { "energy/s\($0)/m/v" }
            try publishLogged(rig.local, topics: topics, n: 1000, rate: 500, log: log)
            rig.upstream.stop()
            try publishLogged(rig.local, topics: topics, first: 1000, n: 1000, rate: 500, log: log)
            daemon.kill()
            try daemon.start()
            try publishLogged(rig.local, topics: topics, first: 2000, n: 1000, rate: 500, log: log)
            try rig.upstream.start()
            let stored = { daemon.storedCount() }
            #expect(eventually(timeout: 30) { rig.collector.aggregatedCount() == Int(stored()) && stored() > 2900 }, "aggregated \(rig.collector.aggregatedCount()) of \(stored()) stored")
            let seqs = Set(rig.collector.all.filter { !$0.topic.hasSuffix("/status") }.map(\.seq))
            #expect(seqs == Set(seqs.min()!...seqs.max()!), "every seq from first to last, across the crash")
            daemon.stop()
        }

        /// Three gateways, each with its own local broker, into one upstream broker: each
        /// stream complete and distinguishable.
        @Test func threeGatewaysOneUpstream() throws {
            let rig = try UpstreamRig()
            let gateways = ["gw-1", "gw-2", "gw-3"]
            let locals = try gateways.map { _ in try Broker() }
            let daemons = try zip(gateways, locals).map { g, local in
                let d = try DaemonProcess(config: UpstreamRig.config(gateway: g, local: local.port, upstream: rig.upstream.port))
                try d.start()
                return d
            }
            for (k, (g, local)) in zip(gateways, locals).enumerated() {
                try publishLogged(local, topics: ["energy/\(g)-site/m/v"], first: k * 10_000, n: 500, rate: 500, log: SentLog())
            }
            for g in gateways {
                #expect(eventually(timeout: 20) { rig.collector.aggregatedCount(gateway: g) == 500 }, "\(g)")
                let mine = rig.collector.aggregates.filter { $0.gateway == g }
                #expect(mine.allSatisfy { $0.topic.hasPrefix("vigil/\(g)/agg/") && ($0.json["series"] as! String) == "energy/\(g)-site/m/v" })
            }
            for d in daemons { d.stop() }
        }

        /// Mutual TLS to the upstream broker (require_certificate); a wrong CA or host name is refused, logged clearly.
        @Test func mutualTLSUpstream() throws {
            let pki = try TestPKI()
            let local = try Broker()
            let upstream = try Broker(listenerConfig: pki.brokerConfig(requireClientCertificate: true))
            let collector = try UpstreamCollector(
                broker: upstream, host: "localhost", tls: TLSOptions(caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey))
            func tls(ca: String, host: String) -> String {
                UpstreamRig.config(gateway: "gw-tls", local: local.port, upstream: upstream.port)
                    .replacingOccurrences(of: "  host: 127.0.0.1\n  port: \(upstream.port)", with: "  host: \(host)\n  port: \(upstream.port)\n  tls: { ca_file: \(ca), cert_file: \(pki.clientCert), key_file: \(pki.clientKey) }")
            }
            let good = try DaemonProcess(config: tls(ca: pki.caCert, host: "localhost"))
            try good.start()
            try publishLogged(local, topics: ["energy/s/m/v"], n: 100, rate: 200, log: SentLog())
            #expect(eventually(timeout: 15) { collector.aggregatedCount(gateway: "gw-tls") == 100 })
            good.stop()

            let wrongCA = try DaemonProcess(config: tls(ca: pki.otherCACert, host: "localhost"))
            try wrongCA.start()
            #expect(eventually { wrongCA.log.contains("certificate verify failed") && wrongCA.log.contains("mqtt.broker=localhost:\(upstream.port)") }, "\(wrongCA.log)")
            wrongCA.stop()
            let elsewhere = try TestPKI(serverNames: "DNS:upstream.elsewhere.example")
            let misnamed = try Broker(listenerConfig: elsewhere.brokerConfig(requireClientCertificate: false))
            let wrongHost = try DaemonProcess(
                config: UpstreamRig.config(gateway: "gw-tls2", local: local.port, upstream: misnamed.port)
                    .replacingOccurrences(of: "  host: 127.0.0.1\n  port: \(misnamed.port)", with: "  host: localhost\n  port: \(misnamed.port)\n  tls: { ca_file: \(elsewhere.caCert) }"))
            try wrongHost.start()
            #expect(eventually { wrongHost.log.contains("host name verification failed") }, "\(wrongHost.log)")
            wrongHost.stop()
        }
    }
}

extension Integration.Upstream {
    /// A buffer full of backlog: ingest goes on, summarised readings and then the oldest
    /// undelivered aggregates are dropped (counted, logged, and vigil's own alert raised),
    /// alerts are never dropped, and the alert resolves once the backlog drains.
    @Test func fullBufferDropsAggregatesNeverAlerts() throws {
        let rig = try UpstreamRig()
        let rules = "rules:\n  - id: high\n    match: water/+/+/level\n    op: '>'\n    levels: { red: 100 }\n"
        let d = try DaemonProcess(
            config: UpstreamRig.config(gateway: "gw-full", local: rig.local.port, upstream: rig.upstream.port)
                .replacingOccurrences(of: "max_size: 1GiB", with: "max_size: 1MiB"))
        try rules.write(toFile: d.directory.file("rules.d/r.yaml"), atomically: true, encoding: .utf8)
        try d.start()
        rig.upstream.stop()
        let topics = (0..<200).map { "energy/s\($0 % 20)/m\($0)/v" }
        let n = 24_000
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? publishLogged(rig.local, topics: topics, n: n, rate: 1200, log: SentLog())
            done.signal()
        }
        // An alert in the middle of the flood.
        #expect(eventually(timeout: 30) { d.storedCount() > 8000 })
        try publishAll(rig.local, [("water/st/g", json("{\"level\": 150}"))])
        done.wait()
        #expect(eventually(timeout: 30) { d.storedCount() >= Int64(n) }, "ingest never stopped: \(d.storedCount())")
        #expect(eventually(timeout: 20) { ((try? d.reader().counters()) ?? [:])[CounterName.outboxDroppedAggregates] ?? 0 > 0 })
        let counters = try d.reader().counters()
        #expect((counters[CounterName.readingsPrunedSize] ?? 0) > 0, "summarised readings went first")
        #expect(d.log.contains("dropped the oldest aggregates"))
        // Dropped a little at a time: only what max_size needs, not the whole backlog.
        #expect((counters[CounterName.outboxDroppedAggregates] ?? 0) < (counters[CounterName.aggregatesSent] ?? 0))
        #expect(eventually { (try? d.reader().alertEvents().contains { $0.transition.rule == "vigil-backlog" && $0.transition.state == .raised }) == true })
        #expect(eventually { ((try? d.reader().usedBytes()) ?? .max) <= (1 << 20) + (128 << 10) }, "the buffer stays near max_size")
        // Still raised while upstream is down: dropping is not draining.
        #expect(try d.reader().alertEvents().filter { $0.transition.rule == "vigil-backlog" }.map(\.transition.state) == [.raised])
        // Upstream back: the user's alert (never dropped) and vigil's own arrive; the backlog drains.
        try rig.upstream.start()
        #expect(eventually(timeout: 30) { rig.collector.alerts.contains { ($0.json["rule"] as? String) == "high" } })
        #expect(eventually(timeout: 30) {
            rig.collector.alerts.contains { ($0.json["rule"] as? String) == "vigil-backlog" && ($0.json["state"] as? String) == "resolved" }
        }, "\(try! d.command(["status"]).stdout)")
        let raised = rig.collector.alerts.first { ($0.json["rule"] as? String) == "vigil-backlog" }
        #expect(raised?.json["state"] as? String == "raised" && raised?.json["series"] as? String == "vigil/gw-full/outbox/dropped")
        d.stop()
    }
}
