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
}

public struct AggregateConfig: Sendable, Hashable {
    public typealias Stat = AggregateStat

    public var window: TimeSpan = .minutes(1)
    public var allowedLateness: TimeSpan = .seconds(10)
    public var stats: [Stat] = Stat.allCases
}

public struct UpstreamConfig: Sendable, Hashable {
    public var broker = BrokerConfig()
    public var topicPrefix = "vigil/{gateway_id}"
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
        let rules = try RuleFiles.load(directory: config.rulesDir)
        return Settings(config: config, rules: rules)
    }

    /// The keys whose change a reload cannot apply while running.
    public func restartNeeded(comparedTo running: VigilConfig) -> [String] {
        var keys: [String] = []
        let c = config
        if c.gatewayID != running.gatewayID { keys.append("gateway_id") }
        if c.stateDir != running.stateDir { keys.append("state_dir") }
        if c.local != running.local { keys.append("local") }
        if c.subscriptions.map(\.filter) != running.subscriptions.map(\.filter) { keys.append("subscriptions (topics)") }
        if c.buffer.durability != running.buffer.durability { keys.append("buffer.durability") }
        if c.buffer.minFree != running.buffer.minFree { keys.append("buffer.min_free") }
        if c.aggregate != running.aggregate { keys.append("aggregate") }
        if c.upstream != running.upstream { keys.append("upstream") }
        if c.httpListen != running.httpListen { keys.append("http") }
        return keys
    }
}

/// The whole of `vigil.yaml`.
public struct VigilConfig: Sendable {
    public var file: String
    public var gatewayID = ""
    public var rulesDir = "/etc/vigil/rules.d"
    public var stateDir = "/var/lib/vigil"
    public var local = BrokerConfig()
    public var subscriptions: [SubscriptionSpec] = []
    public var buffer = BufferOptions(directory: "/var/lib/vigil")
    public var commit = CommitPolicy()
    public var limits = IngestLimits()
    public var aggregate = AggregateConfig()
    public var upstream: UpstreamConfig?
    public var httpListen: String?
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

    public static func parse(_ text: String, file: String, environment: [String: String] = [:]) throws(ConfigError)
        -> VigilConfig
    {
        var r = YAMLReader(file: file)
        var c = VigilConfig(file: file)
        let baseDir = (file as NSString).deletingLastPathComponent
        func resolve(_ path: String) -> String {
            let joined = path.hasPrefix("/") ? path : (baseDir.isEmpty ? path : baseDir + "/" + path)
            return joined.hasPrefix("/") ? URL(fileURLWithPath: joined).standardizedFileURL.path : joined
        }
        func secret(_ node: Node, _ what: String) -> String? {
            guard let p = r.string(node, what) else { return nil }
            var path = resolve(p)
            if !p.hasPrefix("/"), let creds = environment["CREDENTIALS_DIRECTORY"] {
                let candidate = creds + "/" + p
                if FileManager.default.fileExists(atPath: candidate) { path = candidate }
            }
            if !FileManager.default.isReadableFile(atPath: path) {
                r.error(node, "\(what) '\(path)' cannot be read")
            }
            return path
        }

        guard let root = r.load(text) else {
            if r.diagnostics.isEmpty { r.error(nil, "the file is empty; it needs at least gateway_id and subscriptions") }
            throw ConfigError(r.diagnostics)
        }
        let top = [
            "gateway_id", "rules_dir", "state_dir", "local", "subscriptions", "buffer", "aggregate", "upstream", "http",
            "log", "limits",
        ]
        guard let m = r.mapping(root, "the config", allowed: top) else { throw ConfigError(r.diagnostics) }

        if let v = m["gateway_id"] {
            c.gatewayID = r.name(v.value, "gateway_id") ?? ""
        } else {
            r.error(root, "gateway_id is required: the name this gateway has upstream")
        }
        if let v = m["rules_dir"], let s = r.string(v.value, "rules_dir") { c.rulesDir = resolve(s) }
        if let v = m["state_dir"], let s = r.string(v.value, "state_dir") { c.stateDir = resolve(s) }
        if let sd = environment["STATE_DIRECTORY"], !sd.isEmpty {
            c.stateDir = sd.split(separator: ":").first.map(String.init) ?? sd
        }

        func brokerConfig(_ node: Node, _ what: String, defaults: BrokerConfig) -> BrokerConfig {
            var b = defaults
            let keys = [
                "host", "port", "qos", "client_id", "username", "password_file", "tls", "keepalive", "max_inflight",
                "topic_prefix",
            ]
            guard let bm = r.mapping(node, what, allowed: keys) else { return b }
            if let v = bm["host"], let s = r.string(v.value, "\(what).host") { b.host = s }
            if let v = bm["port"], let p = r.int(v.value, "\(what).port", 1...65535) { b.port = p }
            if let v = bm["qos"], let q = r.int(v.value, "\(what).qos", 0...1) { b.qos = Int32(q) }
            if let v = bm["client_id"], let s = r.string(v.value, "\(what).client_id") { b.clientID = s }
            if let v = bm["username"], let s = r.string(v.value, "\(what).username") { b.username = s }
            if let v = bm["password_file"] { b.passwordFile = secret(v.value, "\(what).password_file") }
            if let v = bm["keepalive"], let d = r.duration(v.value, "\(what).keepalive") { b.keepalive = d }
            if let v = bm["max_inflight"], let n = r.int(v.value, "\(what).max_inflight", 1...65535) { b.maxInflight = n }
            if let v = bm["tls"], let tm = r.mapping(v.value, "\(what).tls", allowed: ["ca_file", "cert_file", "key_file"]) {
                if let ca = tm["ca_file"], let caPath = secret(ca.value, "\(what).tls.ca_file") {
                    var t = TLSFiles(caFile: caPath)
                    if let x = tm["cert_file"] { t.certFile = secret(x.value, "\(what).tls.cert_file") }
                    if let x = tm["key_file"] { t.keyFile = secret(x.value, "\(what).tls.key_file") }
                    if (t.certFile == nil) != (t.keyFile == nil) {
                        r.error(v.value, "\(what).tls needs both cert_file and key_file for mutual TLS, or neither")
                    }
                    b.tls = t
                } else if tm["ca_file"] == nil {
                    r.error(v.value, "\(what).tls needs ca_file: the CA that signs the broker's certificate")
                }
            }
            return b
        }

        if let v = m["local"] {
            if case .mapping(let lm) = v.value, lm["topic_prefix"] != nil {
                r.error(lm.keys.first { $0.string == "topic_prefix" }, "topic_prefix belongs in upstream, not local")
            }
            c.local = brokerConfig(v.value, "local", defaults: BrokerConfig())
        }

        if let v = m["subscriptions"], let list = r.sequence(v.value, "subscriptions") {
            for (i, item) in list.enumerated() {
                let what = "subscriptions[\(i)]"
                guard let sm = r.mapping(item, what, allowed: ["network", "topic", "layout", "format"]) else { continue }
                guard let netNode = sm["network"], let topicNode = sm["topic"], let layoutNode = sm["layout"] else {
                    r.error(item, "\(what) needs network, topic and layout")
                    continue
                }
                guard let network = r.name(netNode.value, "\(what).network"),
                    let topic = r.string(topicNode.value, "\(what).topic"),
                    let layoutText = r.string(layoutNode.value, "\(what).layout")
                else { continue }
                var format = PayloadFormat.auto
                if let f = sm["format"], let ff = r.choice(f.value, "\(what).format", PayloadFormat.self) { format = ff }
                let filter: TopicFilter
                switch TopicFilter.parse(topic) {
                case .success(let f): filter = f
                case .failure(let e):
                    r.error(topicNode.value, "\(what).topic: \(e)")
                    continue
                }
                let layout: TopicLayout
                do {
                    layout = try TopicLayout(layoutText)
                } catch {
                    r.error(layoutNode.value, "\(what).layout: \(error)")
                    continue
                }
                if let problem = Self.layoutProblem(filter: filter, layout: layout) {
                    r.error(layoutNode.value, "\(what).layout: \(problem)")
                    continue
                }
                if format == .number && !layout.hasMetric {
                    r.error(sm["format"]?.value ?? item, "\(what): format number needs {metric} in the layout")
                    continue
                }
                c.subscriptions.append(SubscriptionSpec(network: network, filter: filter, layout: layout, format: format))
            }
            if list.isEmpty { r.error(v.value, "subscriptions is empty: vigil would receive nothing") }
        } else {
            r.error(root, "subscriptions is required: which topics to read and how")
        }

        c.buffer = BufferOptions(directory: c.stateDir)
        if let v = m["buffer"],
            let bm = r.mapping(v.value, "buffer", allowed: ["retention", "max_size", "min_free", "durability", "commit_interval", "commit_rows"])
        {
            if let x = bm["retention"], let d = r.duration(x.value, "buffer.retention") {
                if d.micros <= 0 { r.error(x.value, "buffer.retention must be longer than 0") } else { c.buffer.retention = d }
            }
            if let x = bm["max_size"], let s = r.size(x.value, "buffer.max_size") {
                if s.bytes < 1 << 20 { r.error(x.value, "buffer.max_size must be at least 1MiB") } else { c.buffer.maxSize = s }
            }
            if let x = bm["min_free"], let s = r.size(x.value, "buffer.min_free") {
                if s.bytes < 1 << 20 { r.error(x.value, "buffer.min_free must be at least 1MiB") } else { c.buffer.minFree = s }
            }
            if let x = bm["durability"], let d = r.choice(x.value, "buffer.durability", Durability.self) { c.buffer.durability = d }
            if let x = bm["commit_interval"], let d = r.duration(x.value, "buffer.commit_interval") {
                if d.micros < 100 || d > .seconds(10) {
                    r.error(x.value, "buffer.commit_interval must be between 100us and 10s")
                } else {
                    c.commit.interval = d
                }
            }
            if let x = bm["commit_rows"], let n = r.int(x.value, "buffer.commit_rows", 1...100_000) { c.commit.rows = n }
        }
        c.limits.maxAge = c.buffer.retention

        if let v = m["limits"],
            let lm = r.mapping(v.value, "limits", allowed: ["max_payload", "max_json_depth", "max_topic", "max_future"])
        {
            if let x = lm["max_payload"], let s = r.size(x.value, "limits.max_payload") {
                if s.bytes > 16 << 20 { r.error(x.value, "limits.max_payload must be at most 16MiB") } else { c.limits.maxPayloadBytes = Int(s.bytes) }
            }
            if let x = lm["max_json_depth"], let n = r.int(x.value, "limits.max_json_depth", 2...512) { c.limits.maxJSONDepth = n }
            if let x = lm["max_topic"], let n = r.int(x.value, "limits.max_topic", 16...65535) { c.limits.maxTopicBytes = n }
            if let x = lm["max_future"], let d = r.duration(x.value, "limits.max_future") { c.limits.maxFuture = d }
        }

        if let v = m["aggregate"], let am = r.mapping(v.value, "aggregate", allowed: ["window", "allowed_lateness", "stats"]) {
            if let x = am["window"], let d = r.duration(x.value, "aggregate.window") {
                if d < .seconds(1) || d > .days(1) || (86_400_000_000 % d.micros != 0) {
                    r.error(x.value, "aggregate.window must be from 1s to 1d and divide a day evenly (10s, 1m, 5m, 1h, ...)")
                } else {
                    c.aggregate.window = d
                }
            }
            if let x = am["allowed_lateness"], let d = r.duration(x.value, "aggregate.allowed_lateness") {
                c.aggregate.allowedLateness = d
            }
            if let x = am["stats"], let list = r.sequence(x.value, "aggregate.stats") {
                var stats: [AggregateConfig.Stat] = []
                for s in list {
                    if let st = r.choice(s, "aggregate.stats", AggregateConfig.Stat.self) { stats.append(st) }
                }
                if stats.isEmpty { r.error(x.value, "aggregate.stats needs at least one statistic") }
                c.aggregate.stats = stats
            }
        }

        if let v = m["upstream"] {
            var u = UpstreamConfig()
            u.broker.port = 8883
            if case .mapping = v.value {
                u.broker = brokerConfig(v.value, "upstream", defaults: u.broker)
                if case .mapping(let um) = v.value, let p = um["topic_prefix"], let s = r.string(p, "upstream.topic_prefix") {
                    if s.contains("+") || s.contains("#") || s.hasSuffix("/") || s.isEmpty {
                        r.error(p, "upstream.topic_prefix must be a topic without wildcards or a trailing /")
                    } else {
                        u.topicPrefix = s
                    }
                }
                c.upstream = u
            } else {
                r.error(v.value, "upstream must be a mapping with at least host")
            }
        }

        if let v = m["http"], let hm = r.mapping(v.value, "http", allowed: ["listen"]) {
            if let x = hm["listen"], let s = r.string(x.value, "http.listen") {
                if Self.parseListen(s) == nil {
                    r.error(x.value, "http.listen must be HOST:PORT, such as 127.0.0.1:9464")
                } else {
                    c.httpListen = s
                }
            }
        }

        if let v = m["log"], let lm = r.mapping(v.value, "log", allowed: ["level"]) {
            if let x = lm["level"], let s = r.string(x.value, "log.level") {
                if let level = Logger.Level(rawValue: s) {
                    c.logLevel = level
                } else {
                    r.error(x.value, "log.level must be one of trace, debug, info, notice, warning, error, critical")
                }
            }
        }

        if !r.diagnostics.isEmpty { throw ConfigError(r.diagnostics) }
        return c
    }

    /// The upstream topic prefix with `{gateway_id}` filled in.
    public var topicPrefix: String {
        (upstream?.topicPrefix ?? "vigil/{gateway_id}").replacingOccurrences(of: "{gateway_id}", with: gatewayID)
    }

    /// Why a layout cannot describe the topics of a filter, if it cannot.
    static func layoutProblem(filter: TopicFilter, layout: TopicLayout) -> String? {
        for (i, level) in layout.levels.enumerated() {
            guard i < filter.levels.count else {
                return "the layout has more levels than topic \(filter.text)"
            }
            let f = filter.levels[i]
            if f == .multi { return nil }
            switch level {
            case .literal(let l):
                if case .literal(let fl) = f, fl != l {
                    return "level \(i + 1) is '\(l)' in the layout but '\(fl)' in topic \(filter.text)"
                }
            case .site, .device, .metric, .any:
                if case .literal = f { continue }
            case .rest:
                return nil
            }
        }
        if filter.levels.count > layout.levels.count {
            return "topic \(filter.text) has more levels than the layout; end the layout with # to ignore the rest"
        }
        return nil
    }

    /// `HOST:PORT` of `http.listen`.
    public static func parseListen(_ s: String) -> (host: String, port: Int)? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}
