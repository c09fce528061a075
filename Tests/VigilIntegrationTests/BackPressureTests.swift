import Foundation
import Logging
import Testing
import VigilCore
import VigilMQTT
import VigilTestSupport

@testable import VigilDaemon

extension Integration {
    @Suite("Back-pressure")
    struct BackPressure {
        /// A daemon in this process on a broker of its own, connected.
        static func connectedDaemon() throws -> (Broker, TemporaryDirectory, Daemon, Task<Void, any Error>) {
            let broker = try Broker()
            let dir = TemporaryDirectory()
            let configText = DaemonProcess.config(localPort: broker.port).replacingOccurrences(of: "./state", with: dir.file("state"))
            let config = try VigilConfig.parse(configText, file: dir.file("vigil.yaml"))
            let daemon = try Daemon(config: config, logger: Logger(label: "test"))
            let running = Task { try await daemon.run() }
            #expect(eventually { daemon.status.local.connected })
            return (broker, dir, daemon, running)
        }

        /// Ingest stalls: the inbox fills to its bound, the network thread waits (the broker
        /// keeps the rest), and once ingest resumes every message is stored. Nothing is dropped.
        /// (The crash window out of the way: this is the inbox's own bound.)
        @Test func slowIngestHoldsTheNetworkThreadAndDropsNothing() async throws {
            let (broker, dir, daemon, running) = try Self.connectedDaemon()
            _ = dir
            daemon.pipeline.inbox.setWindow(nil)
            daemon.pipeline.wedged.store(true, ordering: .relaxed)
            let n = daemon.pipeline.inbox.maxMessages * 2 + 500
            let publisher = try TestPublisher(broker: broker, topics: ["energy/s/m/v"])
            publisher.publish(count: n, rate: 0)
            #expect(publisher.publisher.waitForAcknowledgements(n, timeout: 60))
            // The inbox is full and the network thread is held: nothing beyond the bound was taken.
            #expect(eventually { daemon.pipeline.inbox.depth == daemon.pipeline.inbox.maxMessages })
            #expect(eventually { daemon.pipeline.inbox.backPressure.count >= 1 })
            #expect(daemon.pipeline.snapshot.readingsStored == 0)
            daemon.pipeline.wedged.store(false, ordering: .relaxed)
            let stored = eventually(timeout: 60) { daemon.pipeline.snapshot.readingsStored == UInt64(n) }
            let s = daemon.pipeline.snapshot
            #expect(stored, "stored \(s.readingsStored) of \(n), \(s.readingsDuplicate) duplicates, \(s.rejectedTotal) rejected")
            publisher.close()
            running.cancel()
            _ = await running.result
        }

        /// Ingest stalls with the default commit interval: the network thread waits once the
        /// oldest message not committed is one window (commit interval + 10 ms) old, long
        /// before the inbox is full, so a crash now would lose no more than that; once ingest
        /// resumes every message is stored.
        @Test func lateIngestHoldsTheNetworkThreadAtTheWindow() async throws {
            let (broker, dir, daemon, running) = try Self.connectedDaemon()
            _ = dir
            let inbox = daemon.pipeline.inbox
            daemon.pipeline.wedged.store(true, ordering: .relaxed)
            let n = inbox.maxMessages
            let publisher = try TestPublisher(broker: broker, topics: ["energy/s/m/v"])
            publisher.publish(count: n, rate: 0)
            #expect(eventually { inbox.windowHolds >= 1 && inbox.producerIsWaiting })
            // The ingest thread may have committed the first few before it met the wedge (it
            // looks at it between batches): the rest waits at the broker.
            let depth = inbox.depth
            let storedBefore = Int(daemon.pipeline.snapshot.readingsStored)
            #expect(depth < n / 2, "held at the window, not at the inbox's bound: \(depth) waiting")
            #expect(storedBefore + depth < n / 2, "\(storedBefore) stored, \(depth) waiting: not held at the window")
            daemon.pipeline.wedged.store(false, ordering: .relaxed)
            let stored = eventually(timeout: 60) { daemon.pipeline.snapshot.readingsStored == UInt64(n) }
            #expect(stored, "stored \(daemon.pipeline.snapshot.readingsStored) of \(n)")
            publisher.close()
            running.cancel()
            _ = await running.result
        }
    }
}
