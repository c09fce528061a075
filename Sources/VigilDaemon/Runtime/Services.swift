import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals
import VigilCore
import VigilMQTT
import VigilStorage

/// Runs blocking work (SQLite, libmosquitto) on a thread of its own, so that it never
/// holds one of the few threads of Swift's cooperative pool.
enum DedicatedThread {
    static func run(name: String, _ body: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let t = Thread {
                body()
                done.resume()
            }
            t.name = name
            t.start()
        }
    }
}

/// The ingest thread as a service. On graceful shutdown it drains what the subscriber
/// handed over, commits it and returns, so nothing acknowledged is lost on SIGTERM.
/// It must stop after the subscriber: the service group stops services in reverse order.
struct IngestService: Service {
    let pipeline: IngestPipeline

    func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await DedicatedThread.run(name: "vigil ingest") { pipeline.run() }
            } onGracefulShutdown: {
                pipeline.stop()
            }
        } onCancel: {
            pipeline.stop()
        }
    }
}

/// Copies each message from the local broker into the inbox (on libmosquitto's thread)
/// and keeps the status board's view of the connection.
final class LocalIngress: MQTTClientDelegate {
    let inbox: Inbox
    let status: StatusBoard
    /// Set once the client exists; read on the network thread.
    let client = Mutex<MQTTClient?>(nil)
    let subscribed = Atomic<Bool>(false)

    init(inbox: Inbox, status: StatusBoard) {
        self.inbox = inbox
        self.status = status
    }

    func mqttMessage(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, qos: Int32, retained: Bool) {
        inbox.push(topic: topic, payload: payload, receivedAt: DaemonClock.shared.now())
    }

    func mqttConnected(sessionPresent: Bool) {
        let connects = client.withLock { $0?.connectCount ?? 0 }
        status.localConnected(true, connects: connects, error: nil)
    }

    func mqttSubscribed() {
        subscribed.store(true, ordering: .releasing)
    }

    func mqttDisconnected(reason: String) {
        let (connects, error) = client.withLock { ($0?.connectCount ?? 0, $0?.lastError) }
        status.localConnected(false, connects: connects, error: error ?? reason)
    }
}

/// The connection to the gateway's own broker.
struct SubscriberService: Service {
    let client: MQTTClient
    let ingress: LocalIngress

    func run() async throws {
        client.start()
        // Runs until the group shuts down; cancellation ends it too.
        try? await gracefulShutdown()
        let client = self.client
        await DedicatedThread.run(name: "vigil mqtt stop") { client.stop() }
    }
}

/// Copies the WAL into the database file every second from its own connection, so the
/// ingest thread's commits never wait for a checkpoint.
struct CheckpointService: Service {
    let checkpointer: Checkpointer
    let logger: Logger

    func run() async throws {
        let stop = StopFlag()
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await DedicatedThread.run(name: "vigil checkpoint") {
                    while !stop.wait(seconds: 1) {
                        do {
                            try checkpointer.checkpoint()
                        } catch {
                            logger.debug("checkpoint failed: \(error)")
                        }
                    }
                    _ = try? checkpointer.checkpoint()
                }
            } onGracefulShutdown: {
                stop.set()
            }
        } onCancel: {
            stop.set()
        }
    }
}

/// A flag a thread can sleep on.
final class StopFlag: Sendable {
    private let condition = Mutex<Bool>(false)
    private let semaphore = DispatchSemaphore(value: 0)

    func set() {
        let first = condition.withLock { s -> Bool in
            defer { s = true }
            return !s
        }
        if first { semaphore.signal() }
    }

    var isSet: Bool { condition.withLock { $0 } }

    /// Sleeps up to `seconds`; returns true once the flag is set.
    func wait(seconds: Double) -> Bool {
        if isSet { return true }
        if semaphore.wait(timeout: .now() + seconds) == .success {
            semaphore.signal()
            return true
        }
        return isSet
    }
}

/// SIGHUP reloads the config and rules (`systemctl reload vigil`).
struct ReloadService: Service {
    let daemon: Daemon

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            daemon.reload()
        }
    }
}

/// The upstream connection and its sender thread. It stops after the subscriber and
/// before ingest, so the last acknowledgements are marked in ingest's final commit.
struct UpstreamService: Service {
    let forwarder: UpstreamForwarder

    func run() async throws {
        let f = forwarder
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await DedicatedThread.run(name: "vigil upstream") { f.run() }
            } onGracefulShutdown: {
                DispatchQueue.global().async { f.stop() }
            }
        } onCancel: {
            DispatchQueue.global().async { f.stop() }
        }
    }
}
