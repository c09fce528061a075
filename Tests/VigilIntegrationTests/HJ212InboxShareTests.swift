import Foundation
import Logging
import Testing
import VigilCore
import VigilMQTT
import VigilTestSupport

@testable import VigilDaemon

extension Integration.BackPressure {
    /// Ingest stalls while a logger floods the HJ 212 listener: the listener takes no more than
    /// its quarter of the inbox and stops reading (it never waits in the inbox), MQTT still
    /// fills the rest, and once ingest resumes every MQTT reading and every answered frame is
    /// stored; the back-pressure seconds are MQTT's own wait, not the uptime.
    @Test func listenerFloodKeepsToItsQuarter() async throws {
        let broker = try Broker()
        let dir = TemporaryDirectory()
        let port = FreePort.next()
        let configText = DaemonProcess.config(
            localPort: broker.port,
            extra: """
                hj212:
                  listen: 127.0.0.1:\(port)
                  max_frames_per_second: 1000000
                  stations:
                    "AQ001": { network: urban, site: s, device: d }
                """
        ).replacingOccurrences(of: "./state", with: dir.file("state")).replacingOccurrences(of: "./run", with: dir.file("run"))
        let config = try VigilConfig.parse(configText, file: dir.file("vigil.yaml"))
        let daemon = try Daemon(config: config, logger: Logger(label: "test"))
        let running = Task { try await daemon.run() }
        #expect(eventually { daemon.status.local.connected })
        #expect(eventually { daemon.hj212?.current.listening == true })
        let inbox = daemon.pipeline.inbox
        // This is about the inbox's shares of its count: the crash window out of the way.
        inbox.setWindow(nil)
        daemon.pipeline.wedged.store(true, ordering: .relaxed)
        let started = Date()
        let logger = try #require(HJ212Client(port: port))
        let now = Timestamp.now()
        let frames = 4000
        let flood = (0..<frames).flatMap { i in
            HJ212Client.frame(mn: "AQ001", qn: "20260301080000" + HJ212.pad(i % 1000, 3), at: now.subtracting(.seconds(Int64(i + 1))), values: [("a34004", 10)], flag: 4)
        }
        let fd = logger.fd
        let sender = Thread { _ = Integration.HJ212ListenerSuite.sendAll(fd, flood) }
        sender.start()
        let quarter = inbox.maxMessages / 4
        #expect(eventually(timeout: 20) { inbox.offers.waiting == quarter }, "the listener fills its quarter: \(inbox.offers.waiting)")
        #expect(eventually { inbox.offers.refused > 0 })
        // MQTT has the rest of the inbox.
        let n = inbox.maxMessages - quarter
        let publisher = try TestPublisher(broker: broker, topics: ["energy/s/m/v"])
        publisher.publish(count: n + 100, rate: 0)
        #expect(eventually(timeout: 30) { inbox.depth == inbox.maxMessages })
        #expect(inbox.offers.waiting == quarter, "never more than a quarter")
        #expect(eventually { inbox.producerIsWaiting }, "MQTT is held, the listener is not")
        daemon.pipeline.wedged.store(false, ordering: .relaxed)
        #expect(eventually(timeout: 60) { daemon.pipeline.snapshot.readingsStored == UInt64(n + 100 + frames) })
        let bp = inbox.backPressure
        #expect(bp.seconds < Date().timeIntervalSince(started) + 1, "\(bp.seconds) s of back-pressure in a test shorter than that")
        publisher.close()
        running.cancel()
        _ = await running.result
    }
}
