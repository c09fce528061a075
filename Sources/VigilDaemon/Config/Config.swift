import Foundation
import Logging
import VigilCore
import VigilMQTT
import VigilStorage
import Yams

/// TLS files as the config names them.
public struct TLSFiles: Sendable, Hashable {
    public var caFile: String
    public var certFile: String?
    public var keyFile: String?
}

/// A broker connection as the config describes it.
public struct BrokerConfig: Sendable, Hashable {
    public var host = "127.0.0.1"
    public var port = 1883
    public var qos: Int32 = 1
    public var clientID: String?
    public var username: String?
    public var passwordFile: String?
    public var tls: TLSFiles?
    public var keepalive: TimeSpan = .seconds(30)
    public var maxInflight = 100

    /// The libmosquitto endpoint, with the password read from its file.
    public func endpoint(defaultClientID: String) throws -> MQTTEndpoint {
        var e = MQTTEndpoint(host: host, port: port, clientID: clientID ?? defaultClientID)
        e.username = username
        if let passwordFile {
            e.password = try Secrets.read(passwordFile)
        }
        e.tls = tls.map { TLSOptions(caFile: $0.caFile, certFile: $0.certFile, keyFile: $0.keyFile) }
        e.keepalive = Int(max(5, keepalive.micros / 1_000_000))
        e.maxInflight = maxInflight
        return e
    }
}

/// Secrets are files: a password file next to the config, or a systemd credential.
public enum Secrets {
    /// The file's content without its trailing line break.
    public static func read(_ path: String) throws -> String {
        var text = try String(contentsOfFile: path, encoding: .utf8)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        return text
    }
}

/// When readings are committed: after `interval` or `rows`, whichever comes first.
public struct CommitPolicy: Sendable, Hashable {
    public var interval: TimeSpan = .milliseconds(5)
    public var rows = 4000

    /// How long an acknowledged message may wait uncommitted before the MQTT thread stops
    /// reading (`Inbox.window`): one interval and 10 ms for the commit and the scheduler.
    /// What a crash can lose, at most: this long of messages.
    public var window: Double { interval.seconds + 0.010 }
}

public struct AggregateConfig: Sendable, Hashable {
    public typealias Stat = AggregateStat

    public var window: TimeSpan = .minutes(1)
    public var allowedLateness: TimeSpan = .seconds(10)
    public var stats: [Stat] = Stat.allCases
}

public struct UpstreamConfig: Sendable, Hashable {
    /// How aggregates travel: one message per series and window, or one per window.
    public enum Format: String, Sendable, CaseIterable {
        case series, pack
    }

    public enum Compression: String, Sendable, CaseIterable {
        case none, deflate
    }

    public var broker = BrokerConfig()
    public var topicPrefix = "vigil/{gateway_id}"
    public var format = Format.series
    public var compress = Compression.none
}

/// `hj212`: stations that speak HJ 212-2017, over MQTT (`format: hj212`) or TCP (`listen`).
public struct HJ212Config: Sendable, Hashable {
    /// `HOST:PORT` of the TCP listener; nil: frames come only over MQTT.
    public var listen: String?
    /// MN -> where its readings go (and its password, read from `password_file`).
    public var stations: [String: HJ212Station] = [:]
    /// The built-in code table with the config's codes added or replacing.
    public var codes: [String: HJ212Code] = HJ212Code.defaults
    /// Open connections at most; one more is refused (the loggers connected stay).
    public var maxConnections = 64
    /// Open connections from one address at most (a host cannot hold them all).
    public var maxConnectionsPerPeer = 4
    /// Frames one connection may send per second (a burst of 5 s of them); past it the
    /// listener stops reading that connection for a while (TCP back-pressure), nothing is lost.
    public var maxFramesPerSecond = 20
    /// A connection that sends nothing for this long is closed (loggers that send hourly
    /// keep their connection).
    public var idleTimeout: TimeSpan = .minutes(20)
    /// A new connection must send a valid frame within this, and a frame once started must be
    /// complete within it (a host that trickles bytes cannot hold connections).
    public var frameTimeout: TimeSpan = .seconds(30)
    /// The length of minute data's (2051) interval, as the data loggers are set.
    public var minuteInterval: TimeSpan = .minutes(1)

    /// The decoder the pipeline runs for these stations.
    public func decoder(zone: LocalTimeZone) -> HJ212Decoder {
        HJ212Decoder(codes: codes, stations: stations, zone: zone, minuteInterval: minuteInterval)
    }
}

/// The config file and the rule files it points to, validated together.
public struct Settings: Sendable {
    public var config: VigilConfig
    public var rules: [Rule]

    /// Loads `vigil.yaml` and every rule file of its `rules_dir`.
    /// - Throws: `ConfigError` with every mistake of every file as file:line:column.
    public static func load(file: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ConfigError) -> Settings
    {
        let config = try VigilConfig.load(file: file, environment: environment)
        let rules = try RuleFiles.load(directory: config.rulesDir, zone: config.timezone)
        return Settings(config: config, rules: rules)
    }

    /// The keys whose change a reload cannot apply while running.
    public func restartNeeded(comparedTo running: VigilConfig) -> [String] {
        var keys: [String] = []
        let c = config
        if c.gatewayID != running.gatewayID { keys.append("gateway_id") }
        if c.stateDir != running.stateDir { keys.append("state_dir") }
        if c.runtimeDir != running.runtimeDir { keys.append("runtime_dir") }
        if c.buffer.flushInterval != running.buffer.flushInterval { keys.append("buffer.flush_interval") }
        if c.buffer.hotMaxSize != running.buffer.hotMaxSize { keys.append("buffer.hot_max_size") }
        if c.local != running.local { keys.append("local") }
        if c.subscriptions.map(\.filter) != running.subscriptions.map(\.filter) { keys.append("subscriptions (topics)") }
        if c.buffer.durability != running.buffer.durability { keys.append("buffer.durability") }
        if c.buffer.minFree != running.buffer.minFree { keys.append("buffer.min_free") }
        if c.aggregate != running.aggregate { keys.append("aggregate") }
        if c.upstream != running.upstream { keys.append("upstream") }
        if c.httpListen != running.httpListen || c.httpTokenFile != running.httpTokenFile { keys.append("http") }
        if c.hj212?.listen != running.hj212?.listen || c.hj212?.maxConnections != running.hj212?.maxConnections
            || c.hj212?.idleTimeout != running.hj212?.idleTimeout
            || c.hj212?.maxConnectionsPerPeer != running.hj212?.maxConnectionsPerPeer
            || c.hj212?.maxFramesPerSecond != running.hj212?.maxFramesPerSecond
            || c.hj212?.frameTimeout != running.hj212?.frameTimeout
        {
            keys.append("hj212 (listener)")
        }
        return keys
    }
}

/// The whole of `vigil.yaml`.
public struct VigilConfig: Sendable {
    public var file: String
    public var gatewayID = ""
    /// Local time for rule periods, calendar windows and effective dates (`timezone`).
    public var timezone = LocalTimeZone.shanghai
    public var rulesDir = "/etc/vigil/rules.d"
    public var stateDir = "/var/lib/vigil"
    /// Where what is only about the running process lives (the status record, the hot
    /// tier): a tmpfs, which survives a crash of vigil and not a power cut.
    public var runtimeDir = "/run/vigil"
    public var local = BrokerConfig()
    public var subscriptions: [SubscriptionSpec] = []
    public var buffer = BufferOptions(directory: "/var/lib/vigil")
    public var commit = CommitPolicy()
    public var limits = IngestLimits()
    public var aggregate = AggregateConfig()
    public var upstream: UpstreamConfig?
    public var httpListen: String?
    /// The token `/` and `/page.json` require (`http.token_file`), when set.
    public var httpTokenFile: String?
    public var hj212: HJ212Config?
    public var logLevel: Logger.Level = .info

    /// The local client id unless the config names one.
    public var localClientID: String { local.clientID ?? "vigil-\(gatewayID)" }

    /// Loads and validates a config file.
    /// - Parameter environment: `STATE_DIRECTORY` (systemd) overrides `state_dir`;
    ///   `CREDENTIALS_DIRECTORY` is where relative secret files are looked up first.
    /// - Throws: `ConfigError` with every mistake as file:line:column.
    public static func load(file: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError)
        -> VigilConfig
    {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigError([Diagnostic(file: file, line: 1, column: 1, message: "cannot read the file: \(error.localizedDescription)")])
        }
        return try parse(text, file: file, environment: environment)
    }

    /// The upstream topic prefix with `{gateway_id}` filled in.
    public var topicPrefix: String {
        (upstream?.topicPrefix ?? "vigil/{gateway_id}").replacingOccurrences(of: "{gateway_id}", with: gatewayID)
    }
}
