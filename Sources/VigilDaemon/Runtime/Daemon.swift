import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import VigilCore
import VigilMQTT
import VigilStorage

/// `vigil run`: opens the buffer, connects to the local broker and runs every part under
/// one service group until SIGTERM or SIGINT, then stops them in reverse order so that
/// everything received is committed before the process exits.
public final class Daemon: Sendable {
    public let config: VigilConfig
    public let pipeline: IngestPipeline
    public let status: StatusBoard
    let client: MQTTClient
    let ingress: LocalIngress
    let checkpointer: Checkpointer
    let logger: Logger

    /// Builds every part; nothing runs yet.
    /// - Throws: when the buffer cannot be opened or a secret file cannot be read.
    public init(config: VigilConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        try FileManager.default.createDirectory(atPath: config.stateDir, withIntermediateDirectories: true)
        let writer = try BufferWriter(options: config.buffer)
        checkpointer = try Checkpointer(options: config.buffer)
        status = StatusBoard(gateway: config.gatewayID, localBroker: "\(config.local.host):\(config.local.port)")
        let inbox = Inbox()
        pipeline = IngestPipeline(
            inbox: inbox, writer: writer, subscriptions: config.subscriptions, limits: config.limits,
            commit: config.commit, status: status, logger: logger)
        ingress = LocalIngress(inbox: inbox, status: status)
        let endpoint = try config.local.endpoint(defaultClientID: config.localClientID)
        client = try MQTTClient(
            endpoint: endpoint, subscriptions: config.subscriptions.map(\.filter.text), qos: config.local.qos,
            delegate: ingress, logger: logger)
        ingress.client.withLock { $0 = client }
    }

    /// Runs until SIGTERM or SIGINT.
    public func run() async throws {
        logger.info(
            "vigil starting",
            metadata: [
                "gateway": "\(config.gatewayID)", "state_dir": "\(config.stateDir)",
                "mqtt.broker": "\(config.local.host):\(config.local.port)",
                "subscriptions": "\(config.subscriptions.count)",
            ])
        if config.upstream != nil {
            logger.warning("upstream is configured, but this vigil does not forward yet: nothing is sent upstream")
        }
        if config.httpListen != nil {
            logger.warning("http.listen is configured, but this vigil has no HTTP endpoint yet")
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: CheckpointService(checkpointer: checkpointer, logger: logger)),
                    .init(service: IngestService(pipeline: pipeline)),
                    .init(service: SubscriberService(client: client, ingress: ingress)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        let s = pipeline.snapshot
        logger.info(
            "vigil stopped",
            metadata: [
                "messages": "\(s.messagesReceived)", "stored": "\(s.readingsStored)", "rejected": "\(s.rejectedTotal)",
            ])
    }
}
