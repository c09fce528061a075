import ArgumentParser
import Foundation
import VigilCore
import VigilStorage

extension VigilCommand {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Connections, ingest rate, buffer size and rejects, from the running daemon's buffer.")
        @OptionGroup var options: ConfigOptions
        @Flag(help: "The daemon's status record as JSON.") var json = false
        @Flag(help: "One line, for watch or a live demo.") var line = false

        func run() async throws {
            let config = try options.load()
            let reader = try openReader(config)
            let raw = StatusFile.read(runtimeDir: config.runtimeDir)
            if json {
                print(raw ?? "{}")
                return
            }
            let counters = try reader.counters()
            let now = Timestamp.now()
            guard let raw, let s = StatusBoard.decode(raw) else {
                print(
                    "daemon: no status record in \(config.runtimeDir): not running since the last boot (or it runs with another runtime_dir)")
                return
            }
            // updatedAt is on vigil's time line; the wall clock may have been stepped since it started.
            let age = Double(now.micros - s.updatedAtMicros) / 1e6 - (s.clock?.offsetSeconds ?? 0)
            let running = age < 5 && s.stoppedAt == nil
            if line {
                let i = s.ingest
                let alerts = (s.alerts?.active ?? [:]).values.reduce(0, +)
                var up = ""
                if let u = s.upstream {
                    up = " | upstream \(u.connected ? "connected" : "DOWN") backlog \(u.backlogAlerts + u.backlogAggregates)"
                }
                if let h = s.http, !h.listening { up += " | http DOWN" }
                if let h = s.hj212 { up += h.listening ? " | hj212 \(h.connections) logger(s)" : " | hj212 DOWN" }
                print(
                    "\(running ? "running" : "STOPPED")\(i.diskPaused == true ? " | PAUSED: disk nearly full" : "") | local \(s.local.connected ? "connected" : "DISCONNECTED") | ingest \(String(format: "%.0f", running ? i.rate : 0)) readings/s | stored \(i.readingsStored) | rejected \(i.rejected) | alerts \(alerts)\(up) | p99 \(fmt(i.publishToStoredMs.p99)) ms | buffer \(ByteSize(bytes: reader.fileBytes()))"
                )
                return
            }
            print("gateway \(s.gateway)")
            print(
                running
                    ? "daemon: running (pid \(s.pid), since \(s.startedAt))"
                    : s.stoppedAt.map { "daemon: stopped cleanly at \($0) (ran since \(s.startedAt)); the counts below are that run's" }
                        ?? "daemon: not running (last seen \(s.updatedAt), \(Int(age))s ago: it did not stop cleanly, or is wedged)")
            let l = s.local
            var local = "local broker \(l.broker): \(l.connected ? "connected" : "disconnected")"
            if let since = l.since { local += " since \(since)" }
            local += ", \(l.connects) connect(s)"
            if !l.connected, let e = l.lastError { local += ", last error: \(e)" }
            print(local)
            let i = s.ingest
            print(
                "ingest: \(String(format: "%.1f", running ? i.rate : 0)) readings/s; \(i.messagesReceived) messages, \(i.readingsStored) readings stored, \(i.rejected) rejected, \(i.readingsDuplicate) duplicates since start"
            )
            if let c = s.clock, c.stepped {
                print(
                    "  CLOCK: the wall clock is \(String(format: "%+.0f", c.offsetSeconds)) s from vigil's time line (stepped while vigil ran); readings without a timestamp get vigil's time until it restarts"
                )
            }
            if i.diskPaused == true {
                print("  PAUSED: the buffer's disk has less than buffer.min_free left; the broker keeps the messages")
            }
            print(
                "  publish-to-stored ms: p50 \(fmt(i.publishToStoredMs.p50)) p99 \(fmt(i.publishToStoredMs.p99)) p99.9 \(fmt(i.publishToStoredMs.p999)); inbox \(i.inboxDepth) waiting"
            )
            let rows = (counters[CounterName.readingsStored] ?? 0) - (counters[CounterName.readingsPrunedRetention] ?? 0)
                - (counters[CounterName.readingsPrunedSize] ?? 0)
            var buffer =
                "buffer: \(rows) readings, \(ByteSize(bytes: try reader.usedBytes())) used of \(config.buffer.maxSize), \(ByteSize(bytes: reader.fileBytes())) on disk"
            if let (lo, hi) = try reader.timeRange() { buffer += ", \(lo.rfc3339) to \(hi.rfc3339)" }
            print(buffer)
            if let h = s.hotTier {
                print(
                    "hot tier: \(ByteSize(bytes: h.bytes)) in \(config.runtimeDir)\(h.inUse ? "" : " (NOT IN USE: the runtime directory is full; batches go to flash)"), \(h.flushes) flush(es) of \(h.flushedReadings) readings to flash since start; at start: \(h.atStart)"
                )
            }
            let pruned = (counters[CounterName.readingsPrunedRetention] ?? 0, counters[CounterName.readingsPrunedSize] ?? 0)
            if pruned.0 > 0 || pruned.1 > 0 { print("  pruned: \(pruned.0) by retention, \(pruned.1) by max_size") }
            if let u = s.upstream {
                var line = "upstream \(u.broker): \(u.connected ? "connected" : "disconnected")"
                if let since = u.since { line += " since \(since)" }
                line += ", \(u.connects) connect(s)"
                if !u.connected, let e = u.lastError { line += ", last error: \(e)" }
                print(line)
                var backlog = "  backlog: \(u.backlogAlerts + u.backlogAggregates) undelivered (\(u.backlogAlerts) alerts, \(u.backlogAggregates) aggregates)"
                if let age = u.oldestAgeSeconds { backlog += ", oldest \(Int(age)) s old" }
                backlog += "; \(u.inflight) in flight, \(u.delivered) delivered since start"
                print(backlog)
            } else {
                print("upstream: not configured")
            }
            if let g = s.aggregates, s.upstream != nil {
                print("  aggregates: \(g.sent) sent, \(g.lateReadings) readings too late for their window, \(g.droppedUndelivered) dropped for space")
            }
            if let h = s.http { print(Self.describe(h)) }
            if let h = s.hj212 { print(Self.describe(h)) }
            let flagged = counters.filter { $0.key.hasPrefix("hj212_flagged_total:") }.sorted { $0.key < $1.key }
            if !flagged.isEmpty {
                print(
                    "  hj212 values flagged other than N (not readings): "
                        + flagged.map { "\($0.key.dropFirst("hj212_flagged_total:".count)) \($0.value)" }.joined(separator: ", "))
            }
            if let a = s.alerts {
                let active = AlertLevel.allCases.reversed().compactMap { l in a.active[l.name].map { "\($0) \(l.name)" } }
                print(
                    "alerts: \(active.isEmpty ? "none active" : active.joined(separator: ", ") + " active"); \(a.rules) rule(s), \(a.transitions) transition(s) since start (vigil alerts shows them)"
                )
            }
            let rejects = counters.filter { $0.key.hasPrefix(CounterName.rejectedPrefix) }.sorted { $0.value > $1.value }
            if !rejects.isEmpty {
                print(
                    "rejects: "
                        + rejects.map { "\($0.key.dropFirst(CounterName.rejectedPrefix.count)) \($0.value)" }.joined(
                            separator: ", ") + " (vigil rejects shows them)")
            }
        }

        func fmt(_ v: Double) -> String { String(format: "%.2f", v) }

        /// The HJ 212 listener: where it listens, or why not, and what its loggers did.
        static func describe(_ h: HJ212ListenerStatus) -> String {
            var line = "hj212 \(h.listen): "
            line += h.listening ? "listening on \(h.addresses.joined(separator: ", "))" : "NOT LISTENING (retrying; ingest goes on)"
            line += "; \(h.connections) logger(s) connected, \(h.frames) frame(s), \(h.answers) answer(s) sent"
            line += "; \(h.refused) refused at the bound, \(h.timedOut) idle closed, \(h.closedHostile) closed as hostile"
            if let e = h.lastError { line += "\n  last error: \(e)" + (h.lastErrorAt.map { " at \($0)" } ?? "") + " (\(h.errors) error(s) since start)" }
            return line
        }

        /// The HTTP listener: where it listens, or why not (it keeps trying; ingest goes on).
        static func describe(_ h: HTTPStatus) -> String {
            var line = "http \(h.listen): "
            line += h.listening ? "listening on \(h.addresses.joined(separator: ", "))" : "NOT LISTENING (retrying; ingest goes on)"
            line += "; \(h.connections) open, \(h.requests) request(s), \(h.evicted) idle connection(s) closed at the bound, \(h.timedOut) timed out"
            if let e = h.lastError { line += "\n  last error: \(e)" + (h.lastErrorAt.map { " at \($0)" } ?? "") + " (\(h.errors) error(s) since start)" }
            return line
        }
    }
}
