import Foundation
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilDaemon

/// A Prometheus text exposition, parsed strictly enough to fail on anything malformed.
struct PrometheusText {
    var samples: [String: Double] = [:]
    var types: [String: String] = [:]

    init(_ text: String) throws {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            if line.hasPrefix("# HELP ") { continue }
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram"].contains(parts[3]) else { throw ParseError(line: String(line)) }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            // name{labels} value
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw ParseError(line: String(line))
            }
            let key = String(line[..<space])
            let name = key.split(separator: "{").first.map(String.init) ?? key
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }) else { throw ParseError(line: String(line)) }
            let family = ["_bucket", "_sum", "_count"].reduce(name) { n, s in n.hasSuffix(s) && types[String(n.dropLast(s.count))] == "histogram" ? String(n.dropLast(s.count)) : n }
            guard types[family] != nil else { throw ParseError(line: "no TYPE for \(line)") }
            samples[key] = value
        }
    }

    struct ParseError: Error { var line: String }
}

extension Integration {
    @Suite("Service")
    struct ServiceSuite {
        /// The notify protocol against a listener the test owns.
        @Test func notifyProtocol() throws {
            let broker = try Broker()
            let listener = try NotifyListener()
            let daemon = try DaemonProcess(config: DaemonProcess.config(localPort: broker.port))
            try daemon.start(environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "2000000"])
            #expect(eventually { !listener.times(of: "READY=1").isEmpty })
            #expect(eventually(timeout: 5) { listener.times(of: "WATCHDOG=1").count >= 3 })
            let pings = listener.times(of: "WATCHDOG=1")
            let gaps = zip(pings.dropFirst(), pings).map { $0.timeIntervalSince($1) }
            #expect(gaps.allSatisfy { $0 > 0.7 && $0 < 1.5 }, "pings at half of WATCHDOG_USEC (1 s): \(gaps)")
            // Reload: RELOADING=1, then READY=1 again.
            let readies = listener.times(of: "READY=1").count
            daemon.signal(SIGHUP)
            #expect(eventually { !listener.times(of: "RELOADING=1").isEmpty && listener.times(of: "READY=1").count > readies })
            // Wedged ingest: the pings stop; unwedged, they come back.
            _ = FileManager.default.createFile(atPath: daemon.stateDir + "/.wedge", contents: nil)
            // The pings stop: none for three periods (systemd would restart vigil after two).
            #expect(eventually(timeout: 10) { Date().timeIntervalSince(listener.times(of: "WATCHDOG=1").last ?? .distantPast) > 3 },
                "pings went on while ingest was wedged")
            try FileManager.default.removeItem(atPath: daemon.stateDir + "/.wedge")
            let freedAt = Date()
            #expect(eventually(timeout: 5) { listener.times(of: "WATCHDOG=1").contains { $0 > freedAt } })
            #expect(daemon.stop() == 0)
            #expect(!listener.times(of: "STOPPING=1").isEmpty)
        }

        /// /metrics parses as Prometheus text and its counters agree with what was published;
        /// /healthz and /readyz answer.
        @Test func metricsAgreeWithWhatWasPublished() throws {
            let broker = try Broker()
            let port = FreePort.next()
            let daemon = try DaemonProcess(
                config: DaemonProcess.config(localPort: broker.port, extra: "http:\n  listen: 127.0.0.1:\(port)\n"))
            try "rules:\n  - id: hot\n    match: energy/+/+/v\n    op: '>'\n    levels: { red: 100 }\n"
                .write(toFile: daemon.directory.file("rules.d/r.yaml"), atomically: true, encoding: .utf8)
            try daemon.start()
            #expect(eventually { httpGet(port: port, path: "/readyz")?.status == 200 })
            #expect(httpGet(port: port, path: "/healthz")?.status == 200)
            let good = 500
            let publisher = try TestPublisher(broker: broker, topics: ["energy/s1/m/v", "energy/s2/m/v"])
            publisher.publish(count: good, rate: 1000)  // values 0..499: the rule raises at 101
            publisher.close()
            try publishAll(broker, [("water/s/g", json("{\"level\": ")), ("water/s/g", json("{\"level\": \"3\"}")), ("energy/s/m/v", json("NaN"))])
            #expect(eventually { daemon.storedCount() == Int64(good) })
            var metrics = try PrometheusText("")
            #expect(eventually {
                guard let body = httpGet(port: port, path: "/metrics")?.body, let m = try? PrometheusText(body) else { return false }
                metrics = m
                return m.samples["vigil_messages_received_total"] == Double(good + 3)
            })
            #expect(metrics.samples["vigil_readings_stored_total"] == Double(good))
            #expect(metrics.samples["vigil_rejected_total{reason=\"invalid_json\"}"] == 1)
            #expect(metrics.samples["vigil_rejected_total{reason=\"not_a_number\"}"] == 2)
            #expect(metrics.samples["vigil_publish_to_stored_seconds_count"] == Double(good))
            #expect(metrics.samples["vigil_publish_to_stored_seconds_bucket{le=\"+Inf\"}"] == Double(good))
            #expect(metrics.samples["vigil_alerts_active{level=\"red\"}"] == 2)
            #expect(metrics.samples["vigil_local_connected"] == 1)
            #expect(metrics.types["vigil_publish_to_stored_seconds"] == "histogram")
            #expect(eventually {
                (try? PrometheusText(httpGet(port: port, path: "/metrics")?.body ?? ""))?.samples["vigil_buffer_rows"] == Double(good)
            })
            // Buckets are cumulative.
            var buckets: [(Double, Double)] = []
            for (key, value) in metrics.samples where key.hasPrefix("vigil_publish_to_stored_seconds_bucket") {
                let le = key.split(separator: "\"")[1]
                buckets.append((Double(le) ?? .infinity, value))
            }
            buckets.sort { $0.0 < $1.0 }
            let counts = buckets.map(\.1)
            #expect(counts == counts.sorted() && counts.count == MetricsText.buckets.count + 1)
            #expect(daemon.stop() == 0)
        }

        /// Under systemd (JOURNAL_STREAM set) each line starts with its syslog priority and has no
        /// timestamp of its own; otherwise it starts with an RFC 3339 time.
        @Test func logLinesForTheJournal() throws {
            let broker = try Broker()
            let journal = try DaemonProcess(config: DaemonProcess.config(localPort: broker.port))
            try journal.start(environment: ["JOURNAL_STREAM": "8:12345"])
            try publishAll(broker, [("energy/s/m/v", json("NaN"))])
            #expect(eventually { journal.log.contains("<4>level=warning msg=\"rejected message\" ") })
            #expect(journal.log.contains("<6>level=info msg=\"vigil starting\" "))
            journal.stop()
            #expect(journal.log.split(separator: "\n").allSatisfy { $0.hasPrefix("<") })
            let plain = try DaemonProcess(config: DaemonProcess.config(localPort: broker.port))
            try plain.start()
            plain.stop()
            #expect(plain.log.split(separator: "\n").allSatisfy { $0.hasPrefix("ts=") && Timestamp.parseRFC3339(String($0.dropFirst(3).prefix(24))) != nil })
            #expect(plain.log.contains(" level=info msg=\"vigil starting\" "))
        }
    }
}
