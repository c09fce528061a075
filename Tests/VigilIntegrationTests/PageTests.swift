import Foundation
import Logging
import Synchronization
import Testing
import VigilCore
import VigilMQTT
import VigilTestSupport

@testable import VigilDaemon
@testable import VigilStorage

/// One GET with extra headers: status, headers (lower-case names) and body.
func pageGet(port: Int, _ target: String, headers: [String: String] = [:]) -> (status: Int, headers: [String: String], body: String)? {
    var request = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for (k, v) in headers { request += "\(k): \(v)\r\n" }
    guard let text = rawRequest(port: port, request + "\r\n"), let end = text.range(of: "\r\n\r\n") else { return nil }
    let lines = text[..<end.lowerBound].components(separatedBy: "\r\n")
    let status = lines.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    var h: [String: String] = [:]
    for l in lines.dropFirst() {
        if let c = l.firstIndex(of: ":") { h[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces) }
    }
    return (status, h, String(text[end.upperBound...]))
}

func pageJSON(_ body: String) -> [String: Any]? {
    try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
}

extension Integration {
    @Suite("The technician's page")
    struct PageSuite {
        static let rules = """
            rules:
              - id: level-high
                match: water/+/+/level
                op: ">"
                levels: { yellow: 5, orange: 7, red: 8 }
                message: "{site} level {value} over {level} line {threshold}"
            """

        /// While the daemon ingests from a real broker: the page is served, and its JSON
        /// shows the raised alert (level, value, threshold, message), the series with its
        /// latest value and sparkline, marked by the alert, and the reject with its reason.
        @Test func pageShowsWhatTheDaemonHolds() throws {
            let port = FreePort.next()
            let broker = try Broker()
            let daemon = try DaemonProcess(
                config: DaemonProcess.config(localPort: broker.port, extra: "http:\n  listen: 127.0.0.1:\(port)\n"))
            try Self.rules.write(toFile: daemon.directory.file("rules.d/test.yaml"), atomically: true, encoding: .utf8)
            try daemon.start()
            defer { daemon.stop() }

            let page = try #require(pageGet(port: port, "/"))
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(page.body.contains("<script>") && page.body.contains("page.json"))
            // Nothing from elsewhere: no src, link, import or url() at all.
            for outside in ["src=", "href=", "@import", "url(", "<link"] { #expect(!page.body.contains(outside), "\(outside)") }
            #expect(page.headers["content-security-policy"]?.hasPrefix("default-src 'none'") == true)
            #expect(page.body.utf8.count < 16_384, "the page is \(page.body.utf8.count) bytes")

            // Readings go on while the page is read.
            let publisher = Thread {
                for i in 0..<40 {
                    try? publishAll(broker, [("energy/s1/meter-\(i % 4)/power", json("\(Double(i))"))])
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
            publisher.start()
            try publishAll(broker, [("water/st-1/g", json("{\"level\": 8.5}")), ("water/st-1/g", json("not json at all"))])

            var data: [String: Any] = [:]
            let shown = eventually(timeout: 20, interval: 0.3) {
                guard let r = pageGet(port: port, "/page.json"), r.status == 200, let d = pageJSON(r.body) else { return false }
                data = d
                let series = d["series"] as? [[String: Any]] ?? []
                let alerts = d["alerts"] as? [[String: Any]] ?? []
                // The sparkline reads up to 2 s before now: wait for it too.
                return !alerts.isEmpty
                    && series.contains {
                        $0["path"] as? String == "water/st-1/g/level" && $0["latest"] as? Double == 8.5
                            && ($0["spark"] as? [Any])?.contains { $0 as? Double == 8.5 } == true
                    }
                    && ((d["rejects"] as? [String: Any])?["latest"] as? [Any])?.isEmpty == false
            }
            #expect(shown, "\(data)")
            let alert = try #require((data["alerts"] as? [[String: Any]])?.first)
            #expect(alert["level"] as? String == "red")
            #expect(alert["series"] as? String == "water/st-1/g/level")
            #expect(alert["value"] as? Double == 8.5)
            #expect(alert["threshold"] as? Double == 8)
            #expect(alert["message"] as? String == "st-1 level 8.5 over red line 8")
            let series = try #require((data["series"] as? [[String: Any]])?.first { $0["path"] as? String == "water/st-1/g/level" })
            #expect(series["alert"] as? String == "red")
            #expect(series["stale"] as? Bool == false)
            let spark = try #require(series["spark"] as? [Any])
            #expect(spark.count == 60)
            // One reading: one minute drawn (the current one, or the one before at a minute's turn).
            #expect(spark.compactMap { $0 as? Double } == [8.5], "\(spark.suffix(3))")
            #expect(spark.suffix(2).contains { $0 as? Double == 8.5 })
            let rejects = try #require(data["rejects"] as? [String: Any])
            let latest = try #require((rejects["latest"] as? [[String: Any]])?.first)
            #expect(latest["topic"] as? String == "water/st-1/g")
            let reason = try #require(latest["reason"] as? String)
            #expect((rejects["by_reason"] as? [String: Any])?[reason] as? Int == 1, "\(rejects)")
            let health = try #require(data["health"] as? [String: Any])
            #expect(health["local_connected"] as? Bool == true)
            #expect(health["version"] as? String == BuildInfo.version)
            #expect((health["buffer_max_bytes"] as? Int) == 1 << 30)
            #expect((health["state_dir_free_bytes"] as? Int ?? 0) > 0)

            // The filter keeps the series that match, on the cached result.
            let filtered = try #require(pageGet(port: port, "/page.json?series=ST-1"))
            let paths = (pageJSON(filtered.body)?["series"] as? [[String: Any]])?.compactMap { $0["path"] as? String }
            #expect(paths == ["water/st-1/g/level"])
            // Energy readings came in while the page was read, and show up.
            #expect(eventually(timeout: 10, interval: 0.3) {
                let d = pageGet(port: port, "/page.json?series=energy/s1").flatMap { pageJSON($0.body) }
                return (d?["series"] as? [[String: Any]])?.count == 4
            })
            while !publisher.isFinished { Thread.sleep(forTimeInterval: 0.05) }
        }

        /// The page's active alerts carry the message of each alert's own latest event, with
        /// thousands of events of another alert after it: the last 20 transitions do not
        /// hold it, and the page still shows it.
        @Test func eachActiveAlertHasItsOwnLatestMessage() throws {
            let broker = try Broker()
            let dir = TemporaryDirectory()
            let text = DaemonProcess.config(localPort: broker.port)
                .replacingOccurrences(of: "./state", with: dir.file("state")).replacingOccurrences(of: "./run", with: dir.file("run"))
            let config = try VigilConfig.parse(text, file: dir.file("vigil.yaml"))
            for d in ["run", "state"] { try FileManager.default.createDirectory(atPath: dir.file(d), withIntermediateDirectories: true) }
            let t0 = Timestamp.now().subtracting(.hours(1))
            func event(_ rule: String, _ series: String, _ state: AlertTransition.State, _ level: AlertLevel, _ s: Int64, _ message: String)
                -> AlertTransition
            {
                AlertTransition(
                    rule: rule, series: SeriesKey(path: series)!, state: state, level: level, previousLevel: nil, value: Double(s),
                    threshold: 1, at: t0.adding(.seconds(s)), since: t0, message: message)
            }
            // What a daemon that ran would have left: a quiet alert, then a noisy one.
            do {
                let buffer = try Buffer(options: config.buffer)
                try buffer.write { tx throws(SQLiteError) in
                    try buffer.alerts.record(event("quiet", "water/st-1/g/level", .raised, .yellow, 0, "quiet went yellow"), tx)
                    try buffer.alerts.record(event("quiet", "water/st-1/g/level", .escalated, .red, 1, "quiet went red"), tx)
                    for i in 0..<3000 {
                        let up = i % 2 == 0
                        try buffer.alerts.record(
                            event("noisy", "energy/s/m/v", up ? .escalated : .deescalated, up ? .orange : .yellow, Int64(10 + i), "noisy \(i)"), tx)
                    }
                    // A series silent for 30 minutes (no stale rule: 15 min makes it stale),
                    // and one heard a minute ago.
                    _ = try buffer.readings.insert(
                        Reading(series: SeriesKey(path: "water/st-2/g/level")!, value: 4.5, timestamp: Timestamp.now().subtracting(.minutes(30)), unit: "m"), tx)
                    _ = try buffer.readings.insert(
                        Reading(series: SeriesKey(path: "water/st-3/g/level")!, value: 1.5, timestamp: Timestamp.now().subtracting(.minutes(1))), tx)
                    for (rule, series, level) in [("quiet", "water/st-1/g/level", AlertLevel.red), ("noisy", "energy/s/m/v", .yellow)] {
                        try buffer.alerts.save(
                            AlertStateRecord(
                                rule: rule, series: SeriesKey(path: series)!, level: level, since: t0, pending: [:], absent: [:], lastValue: 9,
                                threshold: 8), now: t0, tx)
                    }
                }
            }
            let daemon = try Daemon(config: config, logger: Logger(label: "test"))
            let data = PageBuilder(daemon: daemon).build()
            #expect(data.error == nil)
            #expect(data.alerts.map(\.rule) == ["quiet", "noisy"], "red first")
            #expect(data.alerts.map(\.level) == ["red", "yellow"])
            #expect(data.alerts.map(\.message) == ["quiet went red", "noisy 2999"])
            let silent = try #require(data.series.first { $0.path == "water/st-2/g/level" })
            #expect(silent.stale && silent.latest == 4.5 && silent.unit == "m" && (silent.ageSeconds ?? 0) >= 1800)
            // Its sparkline has the minute 30 minutes back (index 29 of 60, give or take the turn of a minute).
            #expect(silent.spark.count == 60 && silent.spark.compactMap { $0 } == [4.5])
            #expect(silent.spark[28...30].contains { $0 == 4.5 })
            let heard = try #require(data.series.first { $0.path == "water/st-3/g/level" })
            #expect(!heard.stale && heard.alert == nil)
            #expect(data.series.first { $0.path == "water/st-1/g/level" } == nil, "no reading: an alert alone makes no series")
            #expect(data.transitions.count == PageBuilder.transitionsShown)
            #expect(!data.transitions.contains { $0.rule == "quiet" } && data.transitions.first?.message == "noisy 2999", "newest first")
        }

        /// A daemon (not started) on a fresh buffer with a manual clock, for the page's builder.
        static func builderDaemon(_ dir: TemporaryDirectory, clock: ManualClock) throws -> (Daemon, VigilConfig) {
            let text = DaemonProcess.config(localPort: FreePort.next())
                .replacingOccurrences(of: "./state", with: dir.file("state")).replacingOccurrences(of: "./run", with: dir.file("run"))
            let config = try VigilConfig.parse(text, file: dir.file("vigil.yaml"))
            for d in ["run", "state"] { try FileManager.default.createDirectory(atPath: dir.file(d), withIntermediateDirectories: true) }
            return (try Daemon(config: config, clock: clock, logger: Logger(label: "test")), config)
        }

        /// A reading stored 30 s after its own timestamp, after a build had read past it, is
        /// drawn by the next build; a reading already drawn is not counted again.
        @Test func lateReadingIsDrawn() throws {
            let dir = TemporaryDirectory()
            let t0 = Timestamp(micros: (Timestamp.now().micros / 60_000_000) * 60_000_000 + 40_000_000)  // hh:mm:40
            let clock = ManualClock(start: t0)
            let (daemon, config) = try Self.builderDaemon(dir, clock: clock)
            let key = SeriesKey(path: "water/st-1/g/level")!
            let buffer = try Buffer(options: config.buffer)
            try buffer.write { tx throws(SQLiteError) in
                _ = try buffer.readings.insert(Reading(series: key, value: 2, timestamp: t0.subtracting(.seconds(5))), tx)
            }
            let builder = PageBuilder(daemon: daemon)
            var data = builder.build()
            #expect(data.error == nil)
            #expect(data.series.first?.spark.last == 2)
            // 30 s late: its timestamp is long behind what the first build read.
            clock.advance(.seconds(1))
            try buffer.write { tx throws(SQLiteError) in
                _ = try buffer.readings.insert(Reading(series: key, value: 6, timestamp: t0.subtracting(.seconds(30))), tx)
            }
            data = builder.build()
            #expect(data.series.first?.spark.last == 4, "\(String(describing: data.series.first?.spark.suffix(2)))")
            #expect(data.series.first?.latest == 2, "the late reading is older than the latest")
            clock.advance(.seconds(1))
            data = builder.build()
            #expect(data.series.first?.spark.last == 4)
            #expect(data.series.first?.spark.compactMap { $0 } == [4])
            // 100 s late, in the minute before: within the 2 minutes read again.
            try buffer.write { tx throws(SQLiteError) in
                _ = try buffer.readings.insert(Reading(series: key, value: 9, timestamp: t0.subtracting(.seconds(100))), tx)
            }
            clock.advance(.seconds(1))
            data = builder.build()
            #expect(data.series.first?.spark.suffix(2) == [9, 4], "\(String(describing: data.series.first?.spark.suffix(3)))")
        }

        /// Readings of 1e308 in one minute, read over several builds: their sum overflows,
        /// that minute is left out, and the JSON is whole (never `{}`).
        @Test func hugeReadingsKeepTheJSONWhole() throws {
            let dir = TemporaryDirectory()
            let t0 = Timestamp(micros: (Timestamp.now().micros / 60_000_000) * 60_000_000 + 20_000_000)  // hh:mm:20
            let clock = ManualClock(start: t0)
            let (daemon, config) = try Self.builderDaemon(dir, clock: clock)
            let buffer = try Buffer(options: config.buffer)
            let builder = PageBuilder(daemon: daemon)
            for i in 0..<4 {
                try buffer.write { tx throws(SQLiteError) in
                    _ = try buffer.readings.insert(
                        Reading(series: SeriesKey(path: "energy/s/m/p")!, value: 1e308, timestamp: clock.now().subtracting(.seconds(3))), tx)
                    _ = try buffer.readings.insert(
                        Reading(series: SeriesKey(path: "energy/s/m/q")!, value: Double(i), timestamp: clock.now().subtracting(.seconds(3))), tx)
                }
                let snap = PageSnapshot(builder.build())
                let o = try #require(try JSONSerialization.jsonObject(with: Data(snap.json)) as? [String: Any])
                let series = try #require(o["series"] as? [[String: Any]], "\(String(decoding: snap.json, as: UTF8.self))")
                #expect(series.count == 2 && o["error"] == nil, "\(o)")
                let p = try #require(series.first { $0["path"] as? String == "energy/s/m/p" })
                #expect(p["latest"] as? Double == 1e308)
                if i == 0 { #expect((p["spark"] as? [Any])?.last as? Double == 1e308) }
                let q = try #require(series.first { $0["path"] as? String == "energy/s/m/q" })
                let mean: Double = Double((0...i).reduce(0, +)) / Double(i + 1)
                let qLast = (q["spark"] as? [Any])?.last as? Double
                #expect(qLast == mean)
                clock.advance(.seconds(1))
            }
        }

        /// Twenty requests sent while a build runs (a slow first build: 150,000 readings in
        /// the hour, and every request is on the wire before the build has ended, since the
        /// build took longer than the sending): that one build answers them all.
        @Test func requestsDuringABuildShareIt() throws {
            let port = FreePort.next()
            let broker = try Broker()
            let daemon = try DaemonProcess(
                config: DaemonProcess.config(localPort: broker.port, extra: "http:\n  listen: 127.0.0.1:\(port)\n"))
            do {
                try FileManager.default.createDirectory(atPath: daemon.stateDir, withIntermediateDirectories: true)
                let buffer = try Buffer(options: BufferOptions(directory: daemon.stateDir))
                let now = Timestamp.now()
                try buffer.write { tx throws(SQLiteError) in
                    for i in 0..<150_000 {
                        _ = try buffer.readings.insert(
                            Reading(
                                series: SeriesKey(path: "energy/s\(i % 10)/m\(i % 100)/p")!, value: Double(i),
                                timestamp: now.subtracting(TimeSpan(micros: Int64(i) * 20_000 + 3_000_000))), tx)
                    }
                }
            }
            try daemon.start()
            defer { daemon.stop() }
            #expect(eventually { pageGet(port: port, "/metrics")?.status == 200 })
            // Connect all, then send all, then read all: the first request starts the build.
            let fds = (0..<20).compactMap { _ in FreePort.connectLoopback(port) }
            #expect(fds.count == 20)
            defer { fds.forEach { close($0) } }
            let request = "GET /page.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            let sendStart = Monotonic.seconds()
            for fd in fds { _ = request.withCString { send(fd, $0, strlen($0), 0) } }
            let sendMs = (Monotonic.seconds() - sendStart) * 1000
            var answers: [[String: Any]] = []
            for fd in fds {
                var timeout = timeval(tv_sec: 20, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let data = receiveUntilClosed(fd)
                let text = String(decoding: data, as: UTF8.self)
                if let end = text.range(of: "\r\n\r\n"), let d = pageJSON(String(text[end.upperBound...])) { answers.append(d) }
            }
            #expect(answers.count == 20)
            let builds = Set(answers.compactMap { $0["builds"] as? Int })
            let buildMs = answers.compactMap { $0["build_ms"] as? Double }.max() ?? 0
            #expect(builds == [1], "one build for all: \(builds)")
            #expect(buildMs > sendMs, "the build (\(buildMs) ms) outlasted the sending (\(sendMs) ms): the requests overlapped it")
        }

        /// A `Host` that is not a name of this gateway (DNS rebinding) is refused; IP
        /// literals and localhost are not.
        @Test func foreignHostIsRefused() throws {
            let port = FreePort.next()
            let broker = try Broker()
            let daemon = try DaemonProcess(
                config: DaemonProcess.config(localPort: broker.port, extra: "http:\n  listen: 127.0.0.1:\(port)\n"))
            try daemon.start()
            defer { daemon.stop() }
            #expect(eventually { pageGet(port: port, "/metrics")?.status == 200 })
            let foreign = try #require(rawRequest(port: port, "GET /page.json HTTP/1.1\r\nHost: evil.example:\(port)\r\nConnection: close\r\n\r\n"))
            #expect(foreign.hasPrefix("HTTP/1.1 421"), "\(foreign.prefix(80))")
            #expect(!foreign.contains("\"gateway\""))
            for host in ["localhost:\(port)", "127.0.0.1:\(port)", "[::1]:\(port)"] {
                let ok = try #require(rawRequest(port: port, "GET / HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n"))
                #expect(ok.hasPrefix("HTTP/1.1 200"), "\(host)")
            }
        }

        /// With `http.token_file` (from `$CREDENTIALS_DIRECTORY`) on a LAN address: the page
        /// and its JSON need the token (bearer, or the cookie a `?token=` login sets);
        /// /metrics does not. `vigil check` warns about a LAN address without a token.
        @Test func tokenGuardsThePage() throws {
            let port = FreePort.next()
            let broker = try Broker()
            let creds = TemporaryDirectory("vigil-creds")
            try "page-s3cret-0123456\n".write(toFile: creds.file("page-token"), atomically: true, encoding: .utf8)
            let daemon = try DaemonProcess(
                config: DaemonProcess.config(localPort: broker.port, extra: "http:\n  listen: 0.0.0.0:\(port)\n  token_file: page-token\n"))
            try daemon.start(environment: ["CREDENTIALS_DIRECTORY": creds.path])
            defer { daemon.stop() }
            #expect(eventually { pageGet(port: port, "/metrics")?.status == 200 })
            #expect(pageGet(port: port, "/")?.status == 401)
            #expect(pageGet(port: port, "/page.json")?.status == 401)
            #expect(pageGet(port: port, "/page.json", headers: ["Authorization": "Bearer page-s3cre"])?.status == 401)
            #expect(pageGet(port: port, "/?token=wrong")?.status == 401)
            let bearer = try #require(pageGet(port: port, "/page.json", headers: ["Authorization": "Bearer page-s3cret-0123456"]))
            #expect(bearer.status == 200 && pageJSON(bearer.body)?["gateway"] as? String == "gw-test")
            let login = try #require(pageGet(port: port, "/?token=page-s3cret-0123456"))
            #expect(login.status == 303 && login.headers["location"] == "/")
            let cookie = try #require(login.headers["set-cookie"])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("page-s3cret-0123456"))
            let session = String(cookie.split(separator: ";")[0])
            #expect(pageGet(port: port, "/", headers: ["Cookie": session])?.status == 200)
            #expect(pageGet(port: port, "/page.json", headers: ["Cookie": session])?.status == 200)

            // vigil check: the token file is found in $CREDENTIALS_DIRECTORY, and no warning
            // with it; without it, a mistake at its place.
            var env = ProcessInfo.processInfo.environment
            env["CREDENTIALS_DIRECTORY"] = creds.path
            let ok = try DaemonProcess.run(DaemonProcess.binary, ["check", "--config", daemon.configPath], environment: env)
            #expect(ok.status == 0 && !ok.stderr.contains("token_file"), "\(ok.stdout) \(ok.stderr)")
            // A token shorter than 16 bytes is a warning.
            try "short-token\n".write(toFile: creds.file("page-token"), atomically: true, encoding: .utf8)
            let short = try DaemonProcess.run(DaemonProcess.binary, ["check", "--config", daemon.configPath], environment: env)
            #expect(
                short.status == 0 && short.stderr.contains(":15: warning: http.token_file '") && short.stderr.contains("holds a token of 11 bytes"),
                "\(short.stderr)")
            env["CREDENTIALS_DIRECTORY"] = nil
            let missing = try DaemonProcess.run(DaemonProcess.binary, ["check", "--config", daemon.configPath], environment: env)
            #expect(missing.status != 0 && missing.stderr.contains(":15: http.token_file '"), "\(missing.stderr)")
            // ...and a warning without it.
            let open = try DaemonProcess(config: DaemonProcess.config(localPort: broker.port, extra: "http:\n  listen: 0.0.0.0:\(port)\n"))
            let warned = try open.command(["check"])
            #expect(warned.status == 0)
            #expect(warned.stderr.contains("warning: http.listen 0.0.0.0:\(port) is reachable from other machines and http.token_file is not set"), "\(warned.stderr)")
            let loopback = try DaemonProcess(config: DaemonProcess.config(localPort: broker.port, extra: "http:\n  listen: 127.0.0.1:\(port)\n"))
            #expect(try !loopback.command(["check"]).stderr.contains("token_file"))
        }
    }
}
