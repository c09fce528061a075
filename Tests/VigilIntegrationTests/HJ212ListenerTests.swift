import Foundation
import Testing
import VigilCore
import VigilStorage
import VigilTestSupport

extension Integration {
    /// `hj212.listen` in a real daemon: data loggers over TCP into the same pipeline as MQTT.
    @Suite("HJ 212 TCP listener")
    struct HJ212ListenerSuite {
        static let rules = """
            rules:
              - id: pm25-high
                match: urban/+/+/pm25
                stat: last
                op: ">"
                levels: { yellow: 75 }
            """

        /// A daemon with the listener on a free port and two stations.
        /// Loopback is one address: the tests that open many connections, or flood on purpose
        /// to see every frame stored, raise the per-address and per-second bounds.
        static func rig(
            maxConnections: Int = 8, idle: String = "2s", extraStation: String = "", httpPort: Int? = nil, perPeer: Int = 8,
            framesPerSecond: Int = 100_000, frameTimeout: String = "30s"
        ) throws -> (
            Broker, DaemonProcess, Int
        ) {
            let broker = try Broker()
            let port = FreePort.next()
            let http = httpPort.map { "http:\n  listen: 127.0.0.1:\($0)\n" } ?? ""
            let daemon = try DaemonProcess(
                config: DaemonProcess.config(
                    localPort: broker.port,
                    extra: http + """
                        hj212:
                          listen: 127.0.0.1:\(port)
                          max_connections: \(maxConnections)
                          max_connections_per_peer: \(perPeer)
                          max_frames_per_second: \(framesPerSecond)
                          frame_timeout: \(frameTimeout)
                          idle_timeout: \(idle)
                          stations:
                            "AQ001": { network: urban, site: district-1, device: aqms-1 }
                            "WQ001": { network: water, site: station-07, device: wq-1, password_file: wq.pass }
                            \(extraStation)
                        """))
            try "s3cret\n".write(toFile: daemon.directory.file("wq.pass"), atomically: true, encoding: .utf8)
            try Self.rules.write(toFile: daemon.directory.file("rules.d/test.yaml"), atomically: true, encoding: .utf8)
            try daemon.start()
            // Listening, as the status record says (a probe connection would count against
            // max_connections until the listener saw it close).
            #expect(eventually(timeout: 10) { Self.listener(daemon)?["listening"] as? Bool == true })
            return (broker, daemon, port)
        }

        /// The `hj212` object of the daemon's status record.
        static func listener(_ daemon: DaemonProcess) -> [String: Any]? {
            guard let text = daemon.statusJSON(), let o = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            else { return nil }
            return o["hj212"] as? [String: Any]
        }

        static func qn(_ i: Int) -> String { "20260301080000" + HJ212.pad(i % 1000, 3) }

        static func expectedAnswer(qn: String, mn: String, pw: String = "123456") -> [UInt8] {
            HJ212.answer(cn: 9014, qn: qn, pw: pw, mn: mn)
        }

        /// Three loggers at once: several frames in one write, a frame byte by byte, frames cut
        /// mid-way; each answered byte for byte after its readings are stored, which the rules
        /// judge as any reading.
        @Test func severalLoggersSplitAndBatched() throws {
            let (broker, daemon, port) = try Self.rig()
            defer { withExtendedLifetime(broker) {} }  // the local broker lives as long as the test
            let now = Timestamp.now()
            let a = try #require(HJ212Client(port: port))
            let b = try #require(HJ212Client(port: port))
            let c = try #require(HJ212Client(port: port))
            // A: three frames in one write.
            let framesA = (0..<3).map { i in
                HJ212Client.frame(mn: "AQ001", qn: Self.qn(i), at: now.subtracting(.seconds(Int64(3 - i))), values: [("a34004", 30 + Double(i))])
            }
            #expect(a.send(framesA.flatMap { $0 }))
            // B: one frame, a byte at a time (the password station).
            let frameB = HJ212Client.frame(mn: "WQ001", qn: Self.qn(10), at: now, values: [("w01001", 7.25)], pw: "s3cret")
            for byte in frameB { #expect(b.send([byte])) }
            // C: two frames cut in the middle of each, without their CRLF on the first.
            let c1 = Array(HJ212Client.frame(mn: "AQ001", qn: Self.qn(20), at: now, values: [("a34002", 80)]).dropLast(2))
            let c2 = HJ212Client.frame(mn: "AQ001", qn: Self.qn(21), at: now, values: [("a34004", 120)])
            let joined = c1 + c2
            #expect(c.send(Array(joined[..<50])))
            #expect(c.send(Array(joined[50..<(c1.count + 40)])))
            #expect(c.send(Array(joined[(c1.count + 40)...])))

            for i in 0..<3 { #expect(a.answer() == Self.expectedAnswer(qn: Self.qn(i), mn: "AQ001")) }
            #expect(b.answer() == Self.expectedAnswer(qn: Self.qn(10), mn: "WQ001", pw: "s3cret"))
            #expect(c.answer() == Self.expectedAnswer(qn: Self.qn(20), mn: "AQ001"))
            #expect(c.answer() == Self.expectedAnswer(qn: Self.qn(21), mn: "AQ001"))
            // Answered means stored: the readings are in the buffer.
            let stored = try daemon.readings().map { "\($0.series)=\(Rule.formatNumber($0.value))" }.sorted()
            #expect(stored == [
                "urban/district-1/aqms-1/pm10=80", "urban/district-1/aqms-1/pm25=120", "urban/district-1/aqms-1/pm25=30",
                "urban/district-1/aqms-1/pm25=31", "urban/district-1/aqms-1/pm25=32", "water/station-07/wq-1/ph=7.25",
            ])
            // 120 ug/m3 over TCP raises the rule as an MQTT reading would.
            #expect(eventually(timeout: 10) {
                ((try? daemon.command(["alerts", "--json"]))?.stdout ?? "").contains("pm25-high")
            })
            // A wrong password: no answer, a reject with its reason.
            let wrong = HJ212Client.frame(mn: "WQ001", qn: Self.qn(30), at: now, values: [("w01001", 7)], pw: "guess")
            #expect(b.send(wrong))
            #expect(b.answer(timeout: 1) == nil)
            #expect(eventually { ((try? daemon.command(["rejects"]))?.stdout ?? "").contains("hj212_bad_password") })
            #expect(daemon.stop() == 0)
        }

        /// A logger that sends half a frame and goes silent is closed at the idle timeout (the
        /// half frame kept as a reject); another logger, busy all along, is unaffected.
        @Test func halfFrameThenSilence() throws {
            let (broker, daemon, port) = try Self.rig(idle: "2s")
            defer { withExtendedLifetime(broker) {} }  // the local broker lives as long as the test
            let silent = try #require(HJ212Client(port: port))
            let busy = try #require(HJ212Client(port: port))
            let half = HJ212Client.frame(mn: "AQ001", qn: Self.qn(1), at: .now(), values: [("a34004", 33)])
            #expect(silent.send(Array(half.prefix(half.count / 2))))
            let start = Date()
            var answered = 0
            var i = 100
            // The busy logger sends every 300 ms until the silent one is closed, then once more.
            while Date().timeIntervalSince(start) < 8 {
                #expect(busy.send(HJ212Client.frame(mn: "AQ001", qn: Self.qn(i), at: .now(), values: [("a34004", 20)])))
                if busy.answer(timeout: 2) == Self.expectedAnswer(qn: Self.qn(i), mn: "AQ001") { answered += 1 }
                i += 1
                if silent.closedByPeer(timeout: 0.3) { break }
            }
            let closedAfter = Date().timeIntervalSince(start)
            #expect(closedAfter >= 1.9 && closedAfter < 8, "closed after \(closedAfter) s")
            #expect(busy.send(HJ212Client.frame(mn: "AQ001", qn: Self.qn(i), at: .now(), values: [("a34004", 21)])))
            #expect(busy.answer(timeout: 2) == Self.expectedAnswer(qn: Self.qn(i), mn: "AQ001"))
            #expect(answered == i - 100, "every frame of the busy logger was answered")
            #expect(eventually { ((try? daemon.command(["rejects"]))?.stdout ?? "").contains("hj212_truncated") })
            #expect(daemon.stop() == 0)
        }

        /// A peer that floods bytes which are no frames is closed; one that floods frames is
        /// served without holding up the others; at the connection bound a new connection is
        /// refused and every logger already connected stays.
        @Test func floodingPeersAndTheBound() throws {
            let httpPort = FreePort.next()
            let (broker, daemon, port) = try Self.rig(maxConnections: 3, idle: "60s", httpPort: httpPort)
            defer { withExtendedLifetime(broker) {} }  // the local broker lives as long as the test
            let logger = try #require(HJ212Client(port: port))
            let garbage = try #require(HJ212Client(port: port))
            let frames = try #require(HJ212Client(port: port))
            // Garbage: a megabyte of it (the listener closes it well before).
            let junk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
            for _ in 0..<16 where garbage.send(junk) {}
            #expect(garbage.closedByPeer(timeout: 5))
            // A frame flood without reading answers in between: 2,000 frames in one go.
            let now = Timestamp.now()
            let flood = (0..<2000).flatMap { i in
                HJ212Client.frame(mn: "AQ001", qn: Self.qn(i), at: now.subtracting(.seconds(Int64(i + 1))), values: [("a34004", 10)], flag: 4)
            }
            #expect(frames.send(flood))
            // The legitimate logger is answered meanwhile.
            #expect(logger.send(HJ212Client.frame(mn: "AQ001", qn: Self.qn(999), at: now, values: [("a34002", 55)])))
            #expect(logger.answer(timeout: 5) == Self.expectedAnswer(qn: Self.qn(999), mn: "AQ001"))

            // The bound: the garbage peer's place came free; fill it, then one more is refused.
            let third = try #require(HJ212Client(port: port))
            let refused = try #require(HJ212Client(port: port))
            #expect(refused.closedByPeer(timeout: 5), "the connection over the bound is closed at once")
            for (k, client) in [logger, frames, third].enumerated() {
                let q = Self.qn(500 + k)
                #expect(client.send(HJ212Client.frame(mn: "AQ001", qn: q, at: now.subtracting(.seconds(3000 + Int64(k))), values: [("a34004", 11)])))
                #expect(client.answer(timeout: 5) == Self.expectedAnswer(qn: q, mn: "AQ001"), "logger \(k) still served")
            }
            // Every frame of the flood is stored (each its own second), and the three after it.
            #expect(eventually(timeout: 20) { (try? daemon.readings("urban/+/+/pm25").count) ?? 0 == 2003 })
            #expect(eventually { Self.listener(daemon)?["refused"] as? Int == 1 })
            // A value in calibration over TCP: answered, not stored, counted by its flag.
            let q = Self.qn(777)
            #expect(logger.send(HJ212Client.frame(mn: "AQ001", qn: q, at: now.subtracting(.seconds(4000)), values: [("a34004", 500), ("a21004", 30)], flags: ["a34004": "C"])))
            #expect(logger.answer(timeout: 5) == Self.expectedAnswer(qn: q, mn: "AQ001"))
            #expect(try daemon.readings("urban/+/+/pm25").count == 2003)
            #expect(try daemon.readings("urban/+/+/no2").count == 1)
            let metrics = rawRequest(port: httpPort, "GET /metrics HTTP/1.0\r\n\r\n") ?? ""
            #expect(metrics.contains("vigil_hj212_flagged_values_total{flag=\"C\"} 1"), "\(metrics)")
            #expect(metrics.contains("vigil_hj212_connections_total{outcome=\"refused\"} 1"))
            #expect(metrics.contains("vigil_hj212_connections_total{outcome=\"closed_hostile\"} 1"))
            #expect(metrics.contains("vigil_rejected_total{reason=\"hj212_garbage\"} 1"))
            #expect(daemon.stop() == 0)
        }

        /// SIGTERM, or SIGKILL (a crash) and a restart, while a logger streams: every frame that
        /// was answered has its reading in the buffer afterwards (an answer never comes before
        /// the commit; the crash window is MQTT's).
        @Test(arguments: [false, true]) func answeredMeansStored(crash: Bool) throws {
            let (broker, daemon, port) = try Self.rig()
            defer { withExtendedLifetime(broker) {} }  // the local broker lives as long as the test
            let c = try #require(HJ212Client(port: port))
            let now = Timestamp.now()
            func qn(_ k: Int) -> String { "2026030108000" + HJ212.pad(k, 4) }
            let n = 3000
            let frames = (0..<n).map { k in
                HJ212Client.frame(mn: "AQ001", qn: qn(k), at: now.subtracting(.seconds(Int64(k + 1))), values: [("a34004", Double(k))])
            }
            var answered: [Int] = []
            var sent = 0
            var stopping = false
            while true {
                if sent < n {
                    let batch = frames[sent..<min(n, sent + 50)].flatMap { $0 }
                    if !c.send(batch) { break }
                    sent = min(n, sent + 50)
                }
                while let a = c.answer(timeout: stopping ? 2 : 0.05) {
                    let text = String(decoding: a, as: UTF8.self)
                    guard let r = text.range(of: "QN="), let k = Int(text[r.upperBound...].prefix(17).suffix(4)) else { continue }
                    answered.append(k)
                }
                if !stopping && answered.count >= 300 {
                    daemon.signal(crash ? SIGKILL : SIGTERM)
                    stopping = true
                } else if stopping && (sent >= n || c.closedByPeer(timeout: 0.01)) {
                    break
                }
            }
            if crash {
                daemon.kill()
                try daemon.start()
            }
            #expect(daemon.stop() == 0)
            #expect(answered.count >= 300 && answered.count < n, "SIGTERM came mid-stream: \(answered.count) of \(n) answered")
            var stored = Set<Int64>()
            try daemon.reader().readings(matching: try TopicFilter("urban/+/+/pm25")) { stored.insert($0.timestamp.micros) }
            let missing = answered.filter { !stored.contains(now.subtracting(.seconds(Int64($0 + 1))).micros / 1_000_000 * 1_000_000) }
            #expect(missing.isEmpty, "\(missing.count) of \(answered.count) answered frames not stored")
        }

        /// Loggers that send and vanish (reset) before their answers are written: vigil keeps
        /// running (no SIGPIPE) and serves the next logger. (What a reset discards unread is
        /// lost to vigil; the logger never had its answer and sends it again.)
        @Test func loggersGoneBeforeTheirAnswers() throws {
            // Room for all 21: the listener may accept several before it reads the resets of
            // the earlier ones, and the bound would refuse the last (a test race, not a bug).
            let (broker, daemon, port) = try Self.rig(maxConnections: 32, perPeer: 32)
            defer { withExtendedLifetime(broker) {} }  // the local broker lives as long as the test
            let now = Timestamp.now()
            for k in 0..<20 {
                let c = try #require(HJ212Client(port: port))
                let frames = (0..<20).flatMap { j in
                    HJ212Client.frame(mn: "AQ001", qn: Self.qn(k * 20 + j), at: now.subtracting(.seconds(Int64(k * 20 + j + 1))), values: [("a34004", 5)])
                }
                #expect(c.send(frames))
                c.reset()
            }
            let last = try #require(HJ212Client(port: port))
            #expect(last.send(HJ212Client.frame(mn: "AQ001", qn: Self.qn(999), at: now, values: [("a34004", 6)])))
            #expect(last.answer() == Self.expectedAnswer(qn: Self.qn(999), mn: "AQ001"))
            #expect(daemon.isRunning)
            #expect(daemon.stop() == 0)
        }

        /// `vigil simulate --format hj212` over MQTT into a subscription in format hj212: the
        /// station's frames become readings of the site its MN maps to (no answers over MQTT).
        @Test func simulatorOverMQTT() throws {
            let broker = try Broker()
            let daemon = try DaemonProcess(
                config: """
                    gateway_id: gw-test
                    state_dir: ./state
                    runtime_dir: ./run
                    rules_dir: ./rules.d
                    local: { host: 127.0.0.1, port: \(broker.port), qos: 1 }
                    subscriptions:
                      - topic: hj212/+/+
                        format: hj212
                    hj212:
                      stations:
                        "station-01-quality-1": { network: water, site: wq-site, device: wq-1 }
                    """)
            try daemon.start()
            // water: gauge, rain, quality: the third device is the quality station.
            let run = try ChildProcess.run(
                DaemonProcess.binary,
                ["simulate", "--broker", "127.0.0.1:\(broker.port)", "--format", "hj212", "--networks", "water", "--sites", "1",
                 "--devices", "3", "--rate", "7", "--count", "28"])
            #expect(run.status == 0, "\(run.stderr)")
            // One frame a second (DataTime has whole seconds), seven readings each.
            #expect(eventually { (try? daemon.readings("water/wq-site/wq-1/#").count) ?? 0 >= 21 })
            let metrics = Set(try daemon.readings("water/wq-site/wq-1/#").map { $0.series.split(separator: "/").last.map(String.init) ?? "" })
            #expect(metrics == ["ph", "turbidity", "dissolved_oxygen", "codmn", "cod", "nh3_n", "tp"])
            #expect(try daemon.command(["rejects"]).stdout.contains("hj212_") == false)
            #expect(daemon.stop() == 0)
        }

        /// A reload adds a station; one whose password file cannot be read is refused with its
        /// place, and the stations in force stay.
        @Test func reloadChangesStations() throws {
            let (broker, daemon, port) = try Self.rig()
            defer { withExtendedLifetime(broker) {} }  // the local broker lives as long as the test
            let c = try #require(HJ212Client(port: port))
            let frame = HJ212Client.frame(mn: "NEW01", qn: Self.qn(1), at: .now(), values: [("a34004", 44)])
            #expect(c.send(frame))
            #expect(c.answer(timeout: 1) == nil, "an unknown station is not answered")
            let text = try String(contentsOfFile: daemon.configPath, encoding: .utf8)
            let bad = text.replacingOccurrences(
                of: "  stations:\n", with: "  stations:\n    \"NEW01\": { network: urban, site: new-1, device: aq, password_file: /nonexistent.pass }\n")
            try bad.write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            #expect(eventually { daemon.log.contains("reload failed") }, "\(daemon.log)")
            #expect(daemon.log.contains("hj212.stations.NEW01.password_file '/nonexistent.pass' cannot be read"))
            #expect(c.send(HJ212Client.frame(mn: "AQ001", qn: Self.qn(2), at: .now(), values: [("a34004", 45)])))
            #expect(c.answer() == Self.expectedAnswer(qn: Self.qn(2), mn: "AQ001"), "the stations in force stay")
            let good = text.replacingOccurrences(of: "  stations:\n", with: "  stations:\n    \"NEW01\": { network: urban, site: new-1, device: aq }\n")
            try good.write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            #expect(eventually { daemon.log.contains("msg=\"reloaded\"") }, "\(daemon.log)")
            #expect(eventually {
                _ = c.send(HJ212Client.frame(mn: "NEW01", qn: Self.qn(3), at: .now(), values: [("a34004", 46)]))
                return c.answer(timeout: 0.5) == Self.expectedAnswer(qn: Self.qn(3), mn: "NEW01")
            })
            #expect(try daemon.readings("urban/new-1/#").map(\.value).contains(46))
            #expect(daemon.stop() == 0)
        }

        /// A port in use: the listener retries, ingest from MQTT goes on, `vigil status` says
        /// why; once the port is free, loggers are served.
        @Test func aBusyPortDoesNotStopIngest() throws {
            let port = FreePort.next()
            let holder = try #require(PortHolder(port: port))
            let broker = try Broker()
            let daemon = try DaemonProcess(
                config: DaemonProcess.config(
                    localPort: broker.port,
                    extra: "hj212:\n  listen: 127.0.0.1:\(port)\n  stations:\n    \"AQ001\": { network: urban, site: d1, device: aq }\n"))
            try daemon.start()
            try publishAll(broker, [("water/station-01/g", Array("{\"level\": 1.5}".utf8))])
            #expect(eventually { daemon.storedCount() == 1 }, "MQTT ingest goes on")
            #expect(eventually {
                let out = (try? daemon.command(["status"]))?.stdout ?? ""
                return out.contains("hj212 127.0.0.1:\(port): NOT LISTENING") && out.contains("last error: bind")
            })
            holder.release()
            #expect(eventually(timeout: 40) { ((try? daemon.command(["status"]))?.stdout ?? "").contains("hj212 127.0.0.1:\(port): listening on 127.0.0.1:\(port)") })
            let c = try #require(HJ212Client(port: port))
            #expect(c.send(HJ212Client.frame(mn: "AQ001", qn: Self.qn(1), at: .now(), values: [("a34004", 12)])))
            #expect(c.answer() == Self.expectedAnswer(qn: Self.qn(1), mn: "AQ001"))
            #expect(daemon.stop() == 0)
        }

        /// `vigil simulate --hj212`: the stations connect as data loggers, every frame is
        /// answered, and the readings are in the buffer under the sites the MNs map to.
        @Test func simulatorOverTCP() throws {
            let (broker, daemon, port) = try Self.rig(extraStation: """
                "district-1-aq-1": { network: urban, site: hj-1, device: aqms-1 }
                    "district-1-noise-1": { network: urban, site: hj-1, device: noise-1 }
                """)
            defer { withExtendedLifetime(broker) {} }
            let run = try ChildProcess.run(
                DaemonProcess.binary,
                ["simulate", "--hj212", "127.0.0.1:\(port)", "--networks", "urban", "--sites", "1", "--devices", "2", "--rate", "60",
                 "--count", "400", "--anomaly", "smog@urban/district-1/aq-1:0s+60s"])
            #expect(run.status == 0, "\(run.stderr)")
            // "vigil simulate: R readings in F HJ 212 frames over TCP over S s, A answered (CN=9014), C connections"
            let words = run.stderr.split(separator: " ")
            let frames = try #require(words.firstIndex(of: "HJ").flatMap { Int(words[$0 - 1]) }, "\(run.stderr)")
            let answered = try #require(words.firstIndex(of: "answered").flatMap { Int(words[$0 - 1]) }, "\(run.stderr)")
            #expect(frames >= 10 && answered == frames, "\(run.stderr)")
            #expect(run.stderr.contains(", 2 connections"), "\(run.stderr)")
            let stored = try daemon.readings("urban/hj-1/#")
            #expect(Set(stored.map(\.series)) == [
                "urban/hj-1/aqms-1/pm25", "urban/hj-1/aqms-1/pm10", "urban/hj-1/aqms-1/no2", "urban/hj-1/aqms-1/o3",
                "urban/hj-1/noise-1/noise",
            ])
            // Smog: PM2.5 about five times its usual level (after a 5 s ramp) raises the rule.
            #expect(eventually(timeout: 10) { ((try? daemon.command(["alerts", "--json"]))?.stdout ?? "").contains("urban/hj-1/aqms-1/pm25") })
            #expect(daemon.stop() == 0)
        }
    }
}
