import FlyingSocks
import Foundation
import Logging
import ServiceLifecycle
import VigilCore
import VigilStorage

/// `/metrics` (Prometheus text format 0.0.4), `/healthz` and `/readyz` on `http.listen`.
///
/// Sockets come from FlyingSocks (async/await over poll/epoll, no dependencies); the HTTP
/// on top is the few lines three GET endpoints need. FlyingFox, its HTTP server, was the
/// first choice, but on Linux it imports FoundationNetworking and so links libcurl into a
/// binary that never makes an HTTP request; SwiftNIO-based servers cost minutes of build
/// and megabytes of memory for the same three endpoints.
struct HTTPService: Service {
    let daemon: Daemon
    let host: String
    let port: UInt16
    let logger: Logger

    func run() async throws {
        let pool: some AsyncSocketPool = .make(maxEvents: 20)
        try await pool.prepare()
        let socket = try Socket(domain: AF_INET, type: .stream)
        try socket.setValue(true, for: .localAddressReuse)
        try socket.bind(to: try sockaddr_in.inet(ip4: host, port: port))
        try socket.listen()
        let server = try AsyncSocket(socket: socket, pool: pool)
        logger.info("HTTP endpoints listening", metadata: ["http.listen": "\(host):\(port)"])
        let daemon = self.daemon
        let logger = self.logger
        // Closing the listening socket would not wake the accept, which waits in epoll: the
        // tasks are cancelled instead, which stops the pool's epoll_wait and each suspension.
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    do { try await pool.run() } catch where !Task.isCancelled {
                        logger.warning("HTTP endpoints stopped", metadata: ["error": "\(error)"])
                    } catch {}
                }
                group.addTask {
                    do {
                        for try await client in server.sockets {
                            Task { await Self.serve(client, daemon: daemon, logger: logger) }
                        }
                    } catch where !Task.isCancelled {
                        logger.warning("HTTP endpoints stopped", metadata: ["error": "\(error)"])
                    } catch {}
                }
                await group.next()
                group.cancelAll()
            }
        }
        try? server.close()
    }

    /// One request, one response, then the connection closes.
    static func serve(_ client: AsyncSocket, daemon: Daemon, logger: Logger) async {
        defer { try? client.close() }
        var request: [UInt8] = []
        do {
            while request.count < 8192 {
                let chunk = try await client.read(atMost: 2048)
                if chunk.isEmpty { break }
                request += chunk
                if request.count >= 4, request.suffix(4) == [13, 10, 13, 10] { break }
            }
        } catch {
            return
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let (status, type, body) = respond(method: line.first.map(String.init) ?? "", path: line.dropFirst().first.map(String.init) ?? "", daemon: daemon)
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        try? await client.write(Data((head + body).utf8))
    }

    static func respond(method: String, path: String, daemon: Daemon) -> (String, String, String) {
        let text = "text/plain; charset=utf-8"
        guard method == "GET" || method == "HEAD" else { return ("405 Method Not Allowed", text, "GET only\n") }
        switch path.split(separator: "?").first.map(String.init) ?? "" {
        case "/metrics":
            return ("200 OK", "text/plain; version=0.0.4; charset=utf-8", MetricsText.render(daemon))
        case "/healthz":
            return daemon.healthy(within: 10)
                ? ("200 OK", text, "ok\n") : ("503 Service Unavailable", text, "ingest or the MQTT loop is not moving\n")
        case "/readyz":
            let ready = daemon.readiness.load(ordering: .acquiring) && daemon.status.local.connected
            return ready
                ? ("200 OK", text, "ready\n")
                : ("503 Service Unavailable", text, "not ready: the local broker is not connected and subscribed\n")
        default:
            return ("404 Not Found", text, "/metrics, /healthz, /readyz\n")
        }
    }
}

/// The Prometheus text exposition of vigil's counters, gauges and histograms.
enum MetricsText {
    static let buckets: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60]

    static func render(_ daemon: Daemon) -> String {
        let s = daemon.pipeline.snapshot
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, Double)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, v) in samples { out += "\(name)\(labels) \(format(v))\n" }
        }
        func histogram(_ name: String, _ help: String, _ h: LatencyHistogram) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
            for b in buckets {
                out += "\(name)_bucket{le=\"\(format(b))\"} \(h.count(atMost: UInt64(b * 1e6)))\n"
            }
            out += "\(name)_bucket{le=\"+Inf\"} \(h.count)\n"
            out += "\(name)_sum \(format(Double(h.sumMicros) / 1e6))\n\(name)_count \(h.count)\n"
        }
        metric("vigil_up", "gauge", "1 while the daemon runs.", [("", 1)])
        metric("vigil_messages_received_total", "counter", "MQTT messages received from the local broker.", [("", Double(s.messagesReceived))])
        metric("vigil_readings_stored_total", "counter", "Readings committed to the buffer.", [("", Double(s.readingsStored))])
        metric("vigil_readings_duplicate_total", "counter", "Readings already stored (QoS 1 redeliveries).", [("", Double(s.readingsDuplicate))])
        metric(
            "vigil_rejected_total", "counter", "Messages rejected, by reason.",
            RejectReason.Code.all.map { ("{reason=\"\($0.rawValue)\"}", Double(s.rejected[$0] ?? 0)) })
        metric("vigil_buffer_rows", "gauge", "Readings in the buffer.", [("", Double(s.bufferRows))])
        metric("vigil_buffer_bytes", "gauge", "Bytes the buffer's pages hold.", [("", Double(s.bufferBytes))])
        metric(
            "vigil_readings_pruned_total", "counter", "Readings deleted from the buffer, by why.",
            [("{why=\"retention\"}", Double(s.prunedRetention)), ("{why=\"max_size\"}", Double(s.prunedSize))])
        metric("vigil_ingest_paused", "gauge", "1 while ingest waits for disk space (buffer.min_free).", [("", s.diskPaused ? 1 : 0)])
        metric(
            "vigil_clock_offset_seconds", "gauge", "The wall clock minus vigil's time line (non-zero after a step while vigil runs).",
            [("", s.clockOffset.seconds)])
        metric("vigil_clock_steps_total", "counter", "Times the wall clock was stepped away from vigil's time line.", [("", Double(s.clockSteps))])
        metric(
            "vigil_readings_clock_shifted_total", "counter",
            "Readings whose own timestamp followed the stepped wall clock, moved onto vigil's time line.", [("", Double(s.readingsShifted))])
        metric("vigil_inbox_depth", "gauge", "Messages waiting between the MQTT thread and ingest.", [("", Double(daemon.pipeline.inbox.depth))])
        metric(
            "vigil_backpressure_seconds_total", "counter", "Time the MQTT thread waited because ingest was behind.",
            [("", daemon.pipeline.inbox.backPressure.seconds)])
        metric("vigil_local_connected", "gauge", "1 while connected to the local broker.", [("", daemon.status.local.connected ? 1 : 0)])
        metric(
            "vigil_alerts_active", "gauge", "Raised alerts, by level.",
            AlertLevel.allCases.map { ("{level=\"\($0.name)\"}", Double(s.activeAlerts[$0] ?? 0)) })
        metric("vigil_alert_transitions_total", "counter", "Alert transitions since start.", [("", Double(s.transitions))])
        metric("vigil_rules", "gauge", "Rules loaded.", [("", Double(s.rules))])
        if let up = daemon.forwarder?.status {
            metric("vigil_upstream_connected", "gauge", "1 while connected to the upstream broker.", [("", up.connected ? 1 : 0)])
            metric(
                "vigil_outbox_backlog", "gauge", "Messages waiting for upstream, by kind.",
                [("{kind=\"alert\"}", Double(up.backlogAlerts)), ("{kind=\"aggregate\"}", Double(up.backlogAggregates))])
            metric("vigil_outbox_oldest_age_seconds", "gauge", "Age of the oldest undelivered message.", [("", up.oldestAgeSeconds ?? 0)])
            metric("vigil_outbox_inflight", "gauge", "Messages sent upstream and not yet acknowledged.", [("", Double(up.inflight))])
            metric("vigil_outbox_delivered_total", "counter", "Messages acknowledged by upstream since start.", [("", Double(up.delivered))])
            metric("vigil_outbox_dropped_total", "counter", "Undelivered aggregates dropped for space.", [("", Double(s.outboxDroppedAggregates))])
            metric("vigil_aggregates_total", "counter", "Aggregate windows closed and queued since start.", [("", Double(s.aggregatesSent))])
            metric("vigil_aggregate_late_readings_total", "counter", "Readings that came after their window closed.", [("", Double(s.aggregateLate))])
        } else {
            metric("vigil_upstream_connected", "gauge", "1 while connected to the upstream broker.", [("", 0)])
        }
        histogram("vigil_publish_to_stored_seconds", "From a reading's own timestamp to the commit that stored it.", s.publishToStored)
        histogram("vigil_receive_to_stored_seconds", "From receipt by the MQTT thread to the commit.", s.receiveToStored)
        histogram("vigil_commit_duration_seconds", "Time each commit took.", s.commitDuration)
        return out
    }

    static func format(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
