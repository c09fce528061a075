import Foundation
import Logging
import Synchronization
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
    /// The settings in force: the start's, then each good reload's.
    let current: Mutex<Settings>
    /// vigil's time line, for every part.
    public let clock: any VigilClock
    public let pipeline: IngestPipeline
    public let status: StatusBoard
    let client: MQTTClient
    let ingress: LocalIngress
    let upstream: UpstreamSender?
    let checkpointer: Checkpointer
    let walFrames: WALFrames
    let logger: Logger
    let notifier = SystemdNotifier()
    /// READY=1 has been sent: the buffer is open and the local broker acknowledged the subscriptions.
    let readiness = Atomic<Bool>(false)
    /// The HTTP listener's address and state, when `http.listen` is set.
    let http: (address: ListenAddress, status: HTTPStatusBoard)?
    /// The token the page requires (`http.token_file`), when set.
    let httpToken: String?
    /// The HJ 212 TCP listener, when `hj212.listen` is set.
    let hj212: HJ212Listener?
    /// When the process started, for `process_start_time_seconds`.
    let processStart = ProcessMetrics.startTime()

    /// Builds every part; nothing runs yet.
    /// - Parameter clock: vigil's time line (a `DaemonClock` unless a test drives it).
    /// - Throws: when the buffer cannot be opened or a secret file cannot be read.
    public init(config: VigilConfig, rules: [Rule] = [], clock: any VigilClock = DaemonClock(), logger: Logger) throws {
        self.config = config
        self.current = Mutex(Settings(config: config, rules: rules))
        self.clock = clock
        self.logger = logger
        try FileManager.default.createDirectory(atPath: config.stateDir, withIntermediateDirectories: true)
        do {
            try FileManager.default.createDirectory(atPath: config.runtimeDir, withIntermediateDirectories: true)
        } catch {
            throw RuntimeDirError(path: config.runtimeDir, underlying: "\(error.localizedDescription)")
        }
        if let file = config.httpTokenFile {
            let token = try Secrets.read(file)
            guard !token.isEmpty else { throw TokenFileError(path: file) }
            httpToken = token
        } else {
            httpToken = nil
        }
        let buffer = try Buffer(options: config.buffer)
        walFrames = buffer.walFrames
        checkpointer = try Checkpointer(options: config.buffer)
        status = StatusBoard(gateway: config.gatewayID, localBroker: "\(config.local.host):\(config.local.port)", clock: clock)
        if let listen = config.httpListen, case .success(let address) = ListenAddress.parse(listen) {
            let board = HTTPStatusBoard(listen: "\(address)")
            http = (address, board)
            status.http.withLock { $0 = { board.current } }
        } else {
            http = nil
        }
        let inbox = Inbox()
        if let h = config.hj212, let listen = h.listen, case .success(let address) = ListenAddress.parse(listen) {
            var limits = HJ212Limits()
            limits.maxConnections = h.maxConnections
            limits.idleTimeout = h.idleTimeout.seconds
            limits.maxConnectionsPerPeer = h.maxConnectionsPerPeer
            limits.firstFrameTimeout = h.frameTimeout.seconds
            limits.frameTimeout = h.frameTimeout.seconds
            limits.framesPerSecond = Double(h.maxFramesPerSecond)
            let listener = HJ212Listener(address: address, limits: limits, inbox: inbox, clock: clock, logger: logger)
            hj212 = listener
            status.hj212.withLock { $0 = { listener.current } }
        } else {
            hj212 = nil
        }
        if let u = config.upstream {
            let sender = try UpstreamSender(
                config: u, gateway: config.gatewayID, prefix: config.topicPrefix, buffer: config.buffer, clock: clock,
                logger: logger, onAcknowledged: { inbox.wake() })
            upstream = sender
            status.upstream.withLock { $0 = { sender.status } }
        } else {
            upstream = nil
        }
        pipeline = IngestPipeline(
            inbox: inbox, buffer: buffer, clock: clock, subscriptions: config.subscriptions, limits: config.limits,
            commit: config.commit, rules: rules, status: status, logger: logger, runtimeDir: config.runtimeDir,
            upstream: upstream?.link, hj212: config.hj212.map { $0.decoder(zone: config.timezone) }, hj212Answers: hj212,
            aggregate: config.aggregate,
            outbox: OutboxStage.Settings(
                gateway: config.gatewayID, prefix: config.topicPrefix, stats: config.aggregate.stats,
                pack: config.upstream?.format == .pack, deflate: config.upstream?.compress == .deflate))
        ingress = LocalIngress(inbox: inbox, status: status, clock: clock)
        let endpoint = try config.local.endpoint(defaultClientID: config.localClientID)
        // The persistent session keeps the filters of an earlier config: drop the ones that are gone.
        let filters = config.subscriptions.map(\.filter.text)
        let previous = try buffer.meta.get(MetaKey.subscriptions)
        let stale = (previous?.split(separator: "\n").map(String.init) ?? []).filter { !filters.contains($0) }
        // Written when they change: a start writes to flash only what it must.
        let joined = filters.joined(separator: "\n")
        if previous != joined {
            try buffer.write { tx throws(SQLiteError) in try buffer.meta.set(MetaKey.subscriptions, joined, tx) }
        }
        client = try MQTTClient(
            endpoint: endpoint, subscriptions: filters, staleSubscriptions: stale, qos: config.local.qos,
            delegate: ingress, logger: logger)
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
        // Vital: checkpoint, ingest, the subscriber and upstream (each retries its broker
        // itself): if one of them ends, the group stops and systemd restarts vigil.
        // Stopped in reverse order: HTTP and systemd first, then the subscriber (no more
        // input), upstream (last acknowledgements), ingest (commits everything), checkpoint.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: CheckpointService(checkpointer: checkpointer, frames: walFrames, logger: logger)),
            .init(service: IngestService(pipeline: pipeline)),
        ]
        if let upstream { services.append(.init(service: UpstreamService(sender: upstream))) }
        services.append(.init(service: SubscriberService(client: client)))
        services.append(.init(service: ReloadService(daemon: self)))
        services.append(.init(service: SystemdService(notifier: notifier, daemon: self, logger: logger)))
        // Optional: its errors are its own (logged, retried); should it ever end, the rest goes on.
        // After ingest in the list, so stopped before it: what it handed over is committed.
        if let hj212 {
            services.append(
                .init(service: HJ212Service(listener: hj212), successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore))
        }
        if let http {
            services.append(
                .init(
                    service: HTTPService(address: http.address, router: .daemon(self), status: http.status, logger: logger),
                    successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore))
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        let s = pipeline.snapshot
        logger.info(
            "vigil stopped",
            metadata: [
                "messages": "\(s.messagesReceived)", "stored": "\(s.readingsStored)", "rejected": "\(s.rejectedTotal)",
            ])
    }
}

extension Daemon {
    /// SIGHUP: reads the config and rules again. If anything is wrong, the running ones stay
    /// and the log says why (file:line:column); if all is well, the rules and the keys that
    /// can change live are applied, and the keys that need a restart are named.
    /// - Returns: whether the reload was applied.
    @discardableResult
    public func reload() -> Bool {
        let file = config.file
        logger.info("reload requested", metadata: ["config": "\(file)"])
        notifier.notify("RELOADING=1\nSTATUS=reloading \(file)")
        defer { notifier.notify("READY=1\nSTATUS=ingesting") }
        let settings: Settings
        do {
            settings = try Settings.load(file: file)
        } catch {
            for d in error.diagnostics { logger.error("reload: \(d.description)") }
            logger.error("reload failed: the running config and rules stay in force", metadata: ["errors": "\(error.diagnostics.count)"])
            return false
        }
        let running = current.withLock { $0.config }
        let needRestart = settings.restartNeeded(comparedTo: running)
        if !needRestart.isEmpty {
            logger.warning("reload: these changes need a restart and are not applied: \(needRestart.joined(separator: ", "))")
        }
        VigilLogHandler.setLevel(settings.config.logLevel)
        let c = settings.config
        // Subscriptions: new topics need a restart; a new layout or format for the same topics applies now.
        let subscriptions = c.subscriptions.map(\.filter) == running.subscriptions.map(\.filter) ? c.subscriptions : running.subscriptions
        pipeline.requestReload(
            IngestPipeline.Reload(
                rules: settings.rules, limits: c.limits, commit: c.commit, retention: c.buffer.retention,
                maxSize: c.buffer.maxSize, subscriptions: subscriptions,
                hj212: c.hj212.map { $0.decoder(zone: c.timezone) }))
        current.withLock { $0 = Settings(config: running, rules: settings.rules) }
        return true
    }
}

extension Daemon {
    /// Whether the parts that must keep moving have moved within `seconds`: the ingest
    /// thread (it turns at least once a second) and the local MQTT network loop (or it
    /// waits on back-pressure, which means ingest is the one to watch).
    public func healthy(within seconds: Double) -> Bool {
        let now = Monotonic.seconds()
        let ingest = pipeline.snapshot.lastProgress
        let mqtt = client.lastLoop
        // Only the MQTT thread waits in the inbox (the HJ 212 listener never does), so a
        // waiting producer here is the MQTT loop held by back-pressure, not dead.
        let mqttAlive = now - mqtt <= seconds || pipeline.inbox.producerIsWaiting
        return now - ingest <= seconds && mqttAlive
    }
}

/// The runtime directory cannot be made: the daemon does not start.
struct RuntimeDirError: Error, CustomStringConvertible {
    var path: String
    var underlying: String
    var description: String {
        "runtime_dir \(path) cannot be created (\(underlying)): under systemd RuntimeDirectory=vigil makes it; elsewhere set runtime_dir to a writable tmpfs folder"
    }
}

/// `http.token_file` holds nothing: no token would let anyone in.
struct TokenFileError: Error, CustomStringConvertible {
    var path: String
    var description: String { "http.token_file \(path) is empty: put the token (one line) in it" }
}
