import Foundation
import Synchronization
import Testing
import VigilCore
import VigilStorage
import VigilTestSupport

extension Integration.HJ212ListenerSuite {
    /// Sends give up after 200 ms, so a flooding thread held by back-pressure sees its deadline.
    static func sendTimeout(_ c: HJ212Client) {
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool { HJ212Client.sendAll(fd, bytes) }

    /// Two floods at once, with the default frames-per-second bound: one thread sends
    /// `##0000AAAA` (a frame with a wrong CRC) without end and is closed after 16 in a row,
    /// one reject; another sends valid frames as fast as TCP takes them and is slowed to its
    /// bucket (no more stored than the burst plus 20 a second). Meanwhile MQTT readings and a
    /// second logger flow: every one stored, every frame answered within 2 s.
    @Test func floodsDoNotCrowdOutOthers() throws {
        let httpPort = FreePort.next()
        let (broker, daemon, port) = try Self.rig(idle: "60s", httpPort: httpPort, framesPerSecond: 20)
        defer { withExtendedLifetime(broker) {} }
        let now = Timestamp.now()
        let bad = try #require(HJ212Client(port: port))
        let good = try #require(HJ212Client(port: port))
        let logger = try #require(HJ212Client(port: port))
        Self.sendTimeout(bad)
        Self.sendTimeout(good)
        let stop = Atomic<Bool>(false)
        let badSent = Atomic<Int>(0)
        let goodSent = Atomic<Int>(0)
        let badFD = bad.fd
        let goodFD = good.fd
        let badThread = Thread {
            let junk = Array(String(repeating: "##0000AAAA", count: 100).utf8)
            while !stop.load(ordering: .relaxed), Self.sendAll(badFD, junk) { badSent.add(100, ordering: .relaxed) }
        }
        let goodThread = Thread {
            var k = 0
            while !stop.load(ordering: .relaxed) {
                let frames = (k..<(k + 50)).flatMap { i in
                    HJ212Client.frame(mn: "AQ001", qn: Self.qn(i), at: now.subtracting(.seconds(Int64(i + 1))), values: [("a34002", 40)], flag: 4)
                }
                if Self.sendAll(goodFD, frames) { k += 50; goodSent.store(k, ordering: .relaxed) }
            }
        }
        badThread.start()
        goodThread.start()
        let start = Date()
        let publisher = try TestPublisher(broker: broker, topics: ["energy/s/m/v"])
        let mqtt = Thread { publisher.publish(count: 300, rate: 100) }
        mqtt.start()
        var slowest = 0.0
        for i in 0..<12 {
            let q = Self.qn(900 + i)
            let sent = Date()
            #expect(logger.send(HJ212Client.frame(mn: "AQ001", qn: q, at: now.adding(.seconds(Int64(i))), values: [("a34004", 20)])))
            #expect(logger.answer(timeout: 2) == Self.expectedAnswer(qn: q, mn: "AQ001"), "frame \(i) answered")
            slowest = max(slowest, Date().timeIntervalSince(sent))
            usleep(300_000)
        }
        #expect(bad.closedByPeer(timeout: 5), "16 bad frames in a row close the connection")
        let elapsed = Date().timeIntervalSince(start)
        stop.store(true, ordering: .relaxed)
        #expect(publisher.publisher.waitForAcknowledgements(300, timeout: 30))
        #expect(eventually(timeout: 20) { (try? daemon.readings("energy/#").count) ?? 0 == 300 }, "every MQTT reading stored")
        #expect(try daemon.readings("urban/+/+/pm25").count == 12)
        let flooded = try daemon.readings("urban/+/+/pm10").count
        // The bucket: 100 at once (5 s of them), then 20 a second; a second of slack.
        let bound = 100 + Int(20 * (elapsed + 1))
        #expect(flooded > 20 && flooded <= bound, "\(flooded) flood frames stored in \(elapsed) s (bound \(bound)); \(goodSent.load(ordering: .relaxed)) sent")
        #expect(goodSent.load(ordering: .relaxed) > flooded, "the flooder was slowed, not served")
        print("HJ212 flood: \(badSent.load(ordering: .relaxed)) bad frames sent before the close; \(goodSent.load(ordering: .relaxed)) valid frames sent, \(flooded) stored in \(elapsed) s; slowest answer to the other logger \(slowest) s")
        let metrics = rawRequest(port: httpPort, "GET /metrics HTTP/1.0\r\n\r\n") ?? ""
        #expect(metrics.contains("vigil_rejected_total{reason=\"hj212_bad_crc\"} 1"), "one reject for the whole run")
        #expect(metrics.contains("vigil_hj212_bad_frames_total 16"), "\(metrics)")
        #expect(metrics.contains("vigil_hj212_connections_total{outcome=\"closed_hostile\"} 1"))
        #expect(daemon.stop() == 0)
    }
}

extension Integration.HJ212ListenerSuite {
    /// One address holds at most `max_connections_per_peer`: the next from it is refused, while
    /// another address is still served and the connections open stay.
    @Test func perAddressBound() throws {
        let (broker, daemon, port) = try Self.rig(maxConnections: 8, idle: "60s", perPeer: 2)
        defer { withExtendedLifetime(broker) {} }
        let now = Timestamp.now()
        let a = try #require(HJ212Client(port: port))
        let b = try #require(HJ212Client(port: port))
        let c = try #require(HJ212Client(port: port))
        #expect(c.closedByPeer(timeout: 5), "a third from 127.0.0.1 is refused")
        let other = try #require(HJ212Client(port: port, from: "127.0.0.2"))
        for (k, client) in [a, b, other].enumerated() {
            let q = Self.qn(600 + k)
            #expect(client.send(HJ212Client.frame(mn: "AQ001", qn: q, at: now.subtracting(.seconds(Int64(k))), values: [("a34004", 12)])))
            #expect(client.answer(timeout: 5) == Self.expectedAnswer(qn: q, mn: "AQ001"), "connection \(k) served")
        }
        #expect(eventually { Self.listener(daemon)?["refused_per_peer"] as? Int == 1 })
        #expect(Self.listener(daemon)?["refused"] as? Int == 1)
        #expect(daemon.stop() == 0)
    }

    /// Slowloris: bytes that refresh the idle timer do not keep a connection that sends no valid
    /// frame within frame_timeout, nor one that starts a frame and trickles it; a logger that
    /// sent a frame and is silent keeps its connection (idle_timeout is far off).
    @Test func trickledBytesDoNotHoldConnections() throws {
        let (broker, daemon, port) = try Self.rig(idle: "60s", frameTimeout: "2s")
        defer { withExtendedLifetime(broker) {} }
        let now = Timestamp.now()
        let noFrame = try #require(HJ212Client(port: port))
        let trickle = try #require(HJ212Client(port: port))
        let quiet = try #require(HJ212Client(port: port))
        for (k, client) in [trickle, quiet].enumerated() {
            let q = Self.qn(700 + k)
            #expect(client.send(HJ212Client.frame(mn: "AQ001", qn: q, at: now.subtracting(.seconds(Int64(k))), values: [("a34004", 13)])))
            #expect(client.answer(timeout: 5) == Self.expectedAnswer(qn: q, mn: "AQ001"))
        }
        let half = HJ212Client.frame(mn: "AQ001", qn: Self.qn(710), at: now.subtracting(.seconds(10)), values: [("a34004", 14)])
        let start = Date()
        var noFrameClosed: Double?
        var trickleClosed: Double?
        var sent = 0
        while Date().timeIntervalSince(start) < 8 && (noFrameClosed == nil || trickleClosed == nil) {
            if noFrameClosed == nil {
                if !noFrame.send([13, 10]) || noFrame.closedByPeer(timeout: 0.05) { noFrameClosed = Date().timeIntervalSince(start) }
            }
            if trickleClosed == nil {
                if sent < half.count - 3, trickle.send([half[sent]]) { sent += 1 }
                if trickle.closedByPeer(timeout: 0.05) { trickleClosed = Date().timeIntervalSince(start) }
            }
            usleep(200_000)
        }
        let a = try #require(noFrameClosed, "the connection with no valid frame stays open")
        let b = try #require(trickleClosed, "the trickled frame keeps its connection")
        #expect(a >= 1.5 && a < 5, "no frame: closed after \(a) s")
        #expect(b >= 1.5 && b < 5, "trickle: closed after \(b) s")
        let q = Self.qn(720)
        #expect(quiet.send(HJ212Client.frame(mn: "AQ001", qn: q, at: now.subtracting(.seconds(20)), values: [("a34004", 15)])))
        #expect(quiet.answer(timeout: 5) == Self.expectedAnswer(qn: q, mn: "AQ001"), "the quiet logger is still connected")
        #expect(eventually { Self.listener(daemon)?["closed_slow"] as? Int == 2 })
        #expect(eventually { ((try? daemon.command(["rejects"]))?.stdout ?? "").contains("hj212_truncated") })
        let rejects = (try? daemon.command(["rejects"]))?.stdout ?? ""
        #expect(rejects.contains("tcp:hj212/127.0.0.1:"), "the reject names the logger's address: \(rejects)")
        #expect(daemon.stop() == 0)
    }
}
