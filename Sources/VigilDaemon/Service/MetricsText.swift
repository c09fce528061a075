import VigilCore

/// The Prometheus text exposition of vigil's counters, gauges and histograms. A part that
/// is not configured has no series (no `vigil_upstream_connected 0` on a local-only
/// gateway, which an alert would read as an outage). Counters only go up: they count what
/// is committed.
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
        metric(
            "vigil_build_info", "gauge", "The version and commit vigil was built from.",
            [("{version=\"\(label(BuildInfo.version))\",commit=\"\(label(BuildInfo.commit))\"}", 1)])
        metric("vigil_messages_received_total", "counter", "MQTT messages received from the local broker.", [("", Double(s.messagesReceived))])
        metric("vigil_readings_stored_total", "counter", "Readings committed to the buffer.", [("", Double(s.readingsStored))])
        metric("vigil_readings_duplicate_total", "counter", "Readings already stored (QoS 1 redeliveries).", [("", Double(s.readingsDuplicate))])
        metric(
            "vigil_rejected_total", "counter", "Messages rejected, by reason.",
            RejectReason.Code.all.map { ("{reason=\"\($0.rawValue)\"}", Double(s.rejected[$0] ?? 0)) })
        if daemon.config.hj212 != nil {
            metric("vigil_hj212_frames_total", "counter", "HJ 212 frames decoded (MQTT and TCP).", [("", Double(s.hj212Frames))])
            metric(
                "vigil_hj212_interval_readings_total", "counter",
                "HJ 212 minute, hourly and daily values: stored and judged by the rules, not aggregated again.",
                [("", Double(s.hj212IntervalReadings))])
            metric(
                "vigil_hj212_flagged_values_total", "counter",
                "HJ 212 values whose data flag is not N, by flag: not readings, never judged or aggregated.",
                HJ212Flag.allCases.filter { $0 != .n }.map { ("{flag=\"\($0.label)\"}", Double(s.hj212Flagged[$0] ?? 0)) })
            metric(
                "vigil_hj212_unknown_codes_total", "counter",
                "HJ 212 frames with values of a code the table does not know, stored under the code's own name, by code.",
                s.hj212UnknownCodes.sorted { $0.key < $1.key }.map { ("{code=\"\($0.key)\"}", Double($0.value)) })
        }
        metric("vigil_buffer_rows", "gauge", "Readings in the buffer.", [("", Double(s.bufferRows))])
        metric("vigil_buffer_bytes", "gauge", "Bytes the buffer's pages hold.", [("", Double(s.bufferBytes))])
        metric(
            "vigil_readings_pruned_total", "counter", "Readings deleted from the buffer, by why.",
            [("{why=\"retention\"}", Double(s.prunedRetention)), ("{why=\"max_size\"}", Double(s.prunedSize))])
        metric("vigil_buffer_hot_bytes", "gauge", "Bytes the hot tier (runtime_dir, tmpfs) holds.", [("", Double(s.hotBytes))])
        metric(
            "vigil_buffer_hot_in_use", "gauge", "1 while batches go to the hot tier (0: none, or the runtime directory is full).",
            [("", s.hotInUse ? 1 : 0)])
        metric("vigil_buffer_flushes_total", "counter", "Moves of the hot tier into the flash-backed buffer.", [("", Double(s.flushes))])
        metric(
            "vigil_buffer_flushed_readings_total", "counter", "Readings the flushes moved into the flash-backed buffer.",
            [("", Double(s.flushedReadings))])
        metric(
            "vigil_buffer_flush_seconds_total", "counter",
            "Time the flushes took, on the ingest thread (what arrives meanwhile waits in the inbox).", [("", s.flushSeconds)])
        metric(
            "vigil_buffer_flush_max_seconds", "gauge", "The longest the ingest thread spent at once on a flush (a step) since start.",
            [("", s.flushMaxSeconds)])
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
        metric(
            "vigil_crash_window_holds_total", "counter",
            "Times the MQTT thread waited because a message had waited uncommitted for the crash window (ingest was late).",
            [("", Double(daemon.pipeline.inbox.windowHolds))])
        metric("vigil_local_connected", "gauge", "1 while connected to the local broker.", [("", daemon.status.local.connected ? 1 : 0)])
        metric(
            "vigil_alerts_active", "gauge", "Raised alerts, by level.",
            AlertLevel.allCases.map { ("{level=\"\($0.name)\"}", Double(s.activeAlerts[$0] ?? 0)) })
        metric("vigil_alert_transitions_total", "counter", "Alert transitions since start.", [("", Double(s.transitions))])
        metric("vigil_rules", "gauge", "Rules loaded.", [("", Double(s.rules))])
        if let up = daemon.upstream?.status {
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
        }
        if let h = daemon.hj212?.current {
            metric("vigil_hj212_listening", "gauge", "1 while the HJ 212 TCP listener listens.", [("", h.listening ? 1 : 0)])
            metric("vigil_hj212_connections", "gauge", "Open HJ 212 logger connections.", [("", Double(h.connections))])
            metric(
                "vigil_hj212_connections_total", "counter", "HJ 212 connections, by what became of them.",
                [
                    ("{outcome=\"accepted\"}", Double(h.accepted)), ("{outcome=\"refused\"}", Double(h.refused)),
                    ("{outcome=\"refused_per_peer\"}", Double(h.refusedPerPeer)),
                    ("{outcome=\"idle_timeout\"}", Double(h.timedOut)), ("{outcome=\"closed_hostile\"}", Double(h.closedHostile)),
                    ("{outcome=\"closed_slow\"}", Double(h.closedSlow)),
                ])
            metric(
                "vigil_hj212_bad_frames_total", "counter",
                "HJ 212 frames over TCP that failed the listener's screen (CRC, fields, station, PW); the first of a run is a reject.",
                [("", Double(h.badFrames))])
            metric(
                "vigil_hj212_inbox_refusals_total", "counter",
                "Times the inbox refused the listener a frame (its quarter full); it then stops reading until ingest takes the batch.",
                [("", Double(daemon.pipeline.inbox.offers.refused))])
            metric("vigil_hj212_tcp_frames_total", "counter", "HJ 212 frames (and runs of bytes that are none) read over TCP.", [("", Double(h.frames))])
            metric(
                "vigil_hj212_answers_total", "counter", "Data answers (CN=9014) after the commit, by whether the connection was still open.",
                [("{result=\"sent\"}", Double(h.answers)), ("{result=\"connection_gone\"}", Double(h.answersDropped))])
            metric("vigil_hj212_errors_total", "counter", "Failed attempts to listen and failed accepts.", [("", Double(h.errors))])
        }
        if let h = daemon.http?.status.current {
            metric("vigil_http_listening", "gauge", "1 while the HTTP endpoints listen.", [("", h.listening ? 1 : 0)])
            metric("vigil_http_connections", "gauge", "Open HTTP connections.", [("", Double(h.connections))])
            metric("vigil_http_requests_total", "counter", "HTTP requests read.", [("", Double(h.requests))])
            metric(
                "vigil_http_connections_closed_total", "counter", "HTTP connections closed by vigil, by why.",
                [("{why=\"bound\"}", Double(h.evicted)), ("{why=\"deadline\"}", Double(h.timedOut))])
            metric("vigil_http_errors_total", "counter", "Failed attempts to listen and failed accepts (EMFILE...).", [("", Double(h.errors))])
        }
        histogram("vigil_publish_to_stored_seconds", "From a reading's own timestamp to the commit that stored it.", s.publishToStored)
        histogram("vigil_receive_to_stored_seconds", "From receipt by the MQTT thread to the commit.", s.receiveToStored)
        histogram("vigil_commit_duration_seconds", "Time each commit took.", s.commitDuration)
        let p = ProcessMetrics.read()
        if let v = p.cpuSeconds { metric("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", [("", v)]) }
        if let v = p.openFDs { metric("process_open_fds", "gauge", "Number of open file descriptors.", [("", v)]) }
        if let v = p.maxFDs { metric("process_max_fds", "gauge", "Maximum number of open file descriptors.", [("", v)]) }
        if let v = p.virtualBytes { metric("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", [("", v)]) }
        if let v = p.residentBytes { metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [("", v)]) }
        metric("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", [("", daemon.processStart)])
        return out
    }

    /// A label value, escaped as the text format wants.
    static func label(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
