import Foundation
import Logging
import VigilCore
import VigilStorage
import Yams

extension VigilConfig {
    /// Parses and validates `vigil.yaml` text.
    /// - Parameter environment: `STATE_DIRECTORY` (systemd) overrides `state_dir`;
    ///   `CREDENTIALS_DIRECTORY` is where relative secret files are looked up first.
    /// - Throws: `ConfigError` with every mistake as file:line:column.
    public static func parse(_ text: String, file: String, environment: [String: String] = [:]) throws(ConfigError)
        -> VigilConfig
    {
        var p = ConfigParser(file: file, environment: environment)
        return try p.parse(text)
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

    /// `HOST:PORT` of `http.listen` (see `ListenAddress`).
    public static func parseListen(_ s: String) -> (host: String, port: Int)? {
        guard case .success(let a) = ListenAddress.parse(s) else { return nil }
        return (a.host, Int(a.port))
    }
}

/// Reads `vigil.yaml` one section at a time, gathering every mistake with its place.
struct ConfigParser {
    var r: YAMLReader
    var c: VigilConfig
    let environment: [String: String]
    let baseDir: String

    /// The top-level keys.
    static let sections = [
        "gateway_id", "timezone", "rules_dir", "state_dir", "runtime_dir", "local", "subscriptions", "buffer", "aggregate",
        "upstream", "http", "log", "limits", "hj212",
    ]

    init(file: String, environment: [String: String]) {
        r = YAMLReader(file: file)
        c = VigilConfig(file: file)
        self.environment = environment
        baseDir = (file as NSString).deletingLastPathComponent
    }

    /// A path relative to the config file's folder.
    func resolve(_ path: String) -> String {
        let joined = path.hasPrefix("/") ? path : (baseDir.isEmpty ? path : baseDir + "/" + path)
        return joined.hasPrefix("/") ? URL(fileURLWithPath: joined).standardizedFileURL.path : joined
    }

    /// A secret file: relative ones are looked up in `$CREDENTIALS_DIRECTORY` first.
    mutating func secret(_ node: Node, _ what: String) -> String? {
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

    mutating func parse(_ text: String) throws(ConfigError) -> VigilConfig {
        guard let root = r.load(text) else {
            if r.diagnostics.isEmpty { r.error(nil, "the file is empty; it needs at least gateway_id and subscriptions") }
            throw ConfigError(r.diagnostics)
        }
        guard let m = r.mapping(root, "the config", allowed: Self.sections) else { throw ConfigError(r.diagnostics) }
        if let v = m["gateway_id"] {
            c.gatewayID = r.name(v.value, "gateway_id") ?? ""
        } else {
            r.error(root, "gateway_id is required: the name this gateway has upstream")
        }
        if let v = m["timezone"], let s = r.string(v.value, "timezone") {
            switch TimeZones.load(s, directory: TimeZones.directory(environment)) {
            case .success(let zone): c.timezone = zone
            case .failure(let why): r.error(v.value, "timezone: \(why)")
            }
        }
        if let v = m["rules_dir"], let s = r.string(v.value, "rules_dir") { c.rulesDir = resolve(s) }
        if let v = m["state_dir"], let s = r.string(v.value, "state_dir") { c.stateDir = resolve(s) }
        if let sd = environment["STATE_DIRECTORY"], !sd.isEmpty {
            c.stateDir = sd.split(separator: ":").first.map(String.init) ?? sd
        }
        if let v = m["runtime_dir"], let s = r.string(v.value, "runtime_dir") { c.runtimeDir = resolve(s) }
        if let rd = environment["RUNTIME_DIRECTORY"], !rd.isEmpty {
            c.runtimeDir = rd.split(separator: ":").first.map(String.init) ?? rd
        }
        if let v = m["local"] { local(v.value) }
        if let v = m["subscriptions"] {
            subscriptions(v.value)
        } else {
            r.error(root, "subscriptions is required: which topics to read and how")
        }
        c.buffer = BufferOptions(directory: c.stateDir)
        c.buffer.runtimeDirectory = c.runtimeDir
        if let v = m["buffer"] { buffer(v.value) }
        c.limits.maxAge = c.buffer.retention
        if let v = m["limits"] { limits(v.value) }
        if let v = m["aggregate"] { aggregate(v.value) }
        if let v = m["upstream"] { upstream(v.value) }
        if let v = m["http"] { http(v.value) }
        if let v = m["hj212"] { hj212(v.value) }
        if c.hj212 == nil, let sub = c.subscriptions.first(where: { $0.format == .hj212 }) {
            r.error(m["subscriptions"]?.value, "subscription \(sub.filter.text) has format hj212, but there is no hj212 section with its stations")
        }
        if let v = m["log"] { log(v.value) }
        if !r.diagnostics.isEmpty { throw ConfigError(r.diagnostics) }
        return c
    }

    mutating func brokerConfig(_ node: Node, _ what: String, defaults: BrokerConfig, also: [String] = []) -> BrokerConfig {
        var b = defaults
        let keys = [
            "host", "port", "qos", "client_id", "username", "password_file", "tls", "keepalive", "max_inflight",
            "topic_prefix",
        ] + also
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

    mutating func local(_ node: Node) {
        if case .mapping(let lm) = node, lm["topic_prefix"] != nil {
            r.error(lm.keys.first { $0.string == "topic_prefix" }, "topic_prefix belongs in upstream, not local")
        }
        c.local = brokerConfig(node, "local", defaults: BrokerConfig())
    }

    mutating func subscriptions(_ node: Node) {
        guard let list = r.sequence(node, "subscriptions") else { return }
        for (i, item) in list.enumerated() {
            let what = "subscriptions[\(i)]"
            guard let sm = r.mapping(item, what, allowed: ["network", "topic", "layout", "format"]) else { continue }
            var format = PayloadFormat.auto
            if let f = sm["format"], let ff = r.choice(f.value, "\(what).format", PayloadFormat.self) { format = ff }
            // HJ 212 frames name their station (MN): network and layout are not needed.
            if format == .hj212, let topicNode = sm["topic"] {
                guard let topic = r.string(topicNode.value, "\(what).topic") else { continue }
                if let extra = sm["layout"] ?? sm["network"] {
                    r.error(extra.key, "\(what): format hj212 takes network, site and device from hj212.stations; leave out network and layout")
                    continue
                }
                switch TopicFilter.parse(topic) {
                case .success(let f):
                    c.subscriptions.append(
                        SubscriptionSpec(network: "hj212", filter: f, layout: try! TopicLayout("{site}/{device}/#"), format: .hj212))
                case .failure(let e): r.error(topicNode.value, "\(what).topic: \(e)")
                }
                continue
            }
            guard let netNode = sm["network"], let topicNode = sm["topic"], let layoutNode = sm["layout"] else {
                r.error(item, "\(what) needs network, topic and layout")
                continue
            }
            guard let network = r.name(netNode.value, "\(what).network"),
                let topic = r.string(topicNode.value, "\(what).topic"),
                let layoutText = r.string(layoutNode.value, "\(what).layout")
            else { continue }
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
            if let problem = VigilConfig.layoutProblem(filter: filter, layout: layout) {
                r.error(layoutNode.value, "\(what).layout: \(problem)")
                continue
            }
            if format == .number && !layout.hasMetric {
                r.error(sm["format"]?.value ?? item, "\(what): format number needs {metric} in the layout")
                continue
            }
            c.subscriptions.append(SubscriptionSpec(network: network, filter: filter, layout: layout, format: format))
        }
        if list.isEmpty { r.error(node, "subscriptions is empty: vigil would receive nothing") }
    }

    mutating func buffer(_ node: Node) {
        guard let bm = r.mapping(node, "buffer", allowed: [
                "retention", "max_size", "min_free", "durability", "commit_interval", "commit_rows", "flush_interval",
                "hot_max_size",
            ]) else { return }
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
        if let x = bm["flush_interval"], let d = r.duration(x.value, "buffer.flush_interval") {
            if d < .seconds(1) || d > .hours(1) {
                r.error(x.value, "buffer.flush_interval must be between 1s and 1h")
            } else {
                c.buffer.flushInterval = d
            }
        }
        if let x = bm["hot_max_size"], let s = r.size(x.value, "buffer.hot_max_size") {
            if s.bytes < 1 << 20 || s.bytes > 1 << 30 {
                r.error(x.value, "buffer.hot_max_size must be between 1MiB and 1GiB")
            } else {
                c.buffer.hotMaxSize = s
            }
        }
    }

    mutating func limits(_ node: Node) {
        guard let lm = r.mapping(node, "limits", allowed: ["max_payload", "max_json_depth", "max_topic", "max_future"]) else { return }
        if let x = lm["max_payload"], let s = r.size(x.value, "limits.max_payload") {
            if s.bytes > 16 << 20 { r.error(x.value, "limits.max_payload must be at most 16MiB") } else { c.limits.maxPayloadBytes = Int(s.bytes) }
        }
        if let x = lm["max_json_depth"], let n = r.int(x.value, "limits.max_json_depth", 2...512) { c.limits.maxJSONDepth = n }
        if let x = lm["max_topic"], let n = r.int(x.value, "limits.max_topic", 16...65535) { c.limits.maxTopicBytes = n }
        if let x = lm["max_future"], let d = r.duration(x.value, "limits.max_future") { c.limits.maxFuture = d }
    }

    mutating func aggregate(_ node: Node) {
        guard let am = r.mapping(node, "aggregate", allowed: ["window", "allowed_lateness", "stats"]) else { return }
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

    mutating func upstream(_ node: Node) {
        var u = UpstreamConfig()
        u.broker.port = 8883
        if case .mapping = node {
            u.broker = brokerConfig(node, "upstream", defaults: u.broker, also: ["format", "compress"])
            if case .mapping(let um) = node {
                if let p = um["topic_prefix"], let s = r.string(p, "upstream.topic_prefix") {
                    if s.contains("+") || s.contains("#") || s.hasSuffix("/") || s.isEmpty {
                        r.error(p, "upstream.topic_prefix must be a topic without wildcards or a trailing /")
                    } else {
                        u.topicPrefix = s
                    }
                }
                if let f = um["format"], let v = r.choice(f, "upstream.format", UpstreamConfig.Format.self) { u.format = v }
                if let x = um["compress"], let v = r.choice(x, "upstream.compress", UpstreamConfig.Compression.self) {
                    if v == .deflate && u.format != .pack {
                        r.error(x, "upstream.compress: deflate needs format: pack (a message per series is too small to gain)")
                    } else {
                        u.compress = v
                    }
                }
            }
            c.upstream = u
        } else {
            r.error(node, "upstream must be a mapping with at least host")
        }
    }

    mutating func http(_ node: Node) {
        guard let hm = r.mapping(node, "http", allowed: ["listen", "token_file"]) else { return }
        if let x = hm["listen"], let s = r.string(x.value, "http.listen") {
            switch ListenAddress.parse(s) {
            case .failure(let problem): r.error(x.value, "http.listen: \(problem.message)")
            case .success: c.httpListen = s
            }
        }
        if let x = hm["token_file"], let path = secret(x.value, "http.token_file") {
            c.httpTokenFile = path
            // An empty token would let an empty `?token=` in: a mistake, not "no token".
            if FileManager.default.isReadableFile(atPath: path), ((try? Secrets.read(path)) ?? "").isEmpty {
                r.error(x.value, "http.token_file '\(path)' is empty: put the token (one line) in it")
            }
        }
    }

    mutating func log(_ node: Node) {
        guard let lm = r.mapping(node, "log", allowed: ["level"]) else { return }
        if let x = lm["level"], let s = r.string(x.value, "log.level") {
            if let level = Logger.Level(rawValue: s) {
                c.logLevel = level
            } else {
                r.error(x.value, "log.level must be one of trace, debug, info, notice, warning, error, critical")
            }
        }
    }
}
