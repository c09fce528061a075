import Foundation
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilDaemon

@Suite("Configuration")
struct ConfigTests {
    static let good = """
        gateway_id: gw-hz-001
        state_dir: /tmp/vigil-state
        local:
          host: 127.0.0.1
          port: 1883
          qos: 1
        subscriptions:
          - network: energy
            topic: energy/+/+/+
            layout: energy/{site}/{device}/{metric}
            format: auto
          - network: water
            topic: water/+/+
            layout: water/{site}/{device}
        buffer:
          retention: 7d
          max_size: 512MiB
          durability: full
        aggregate:
          window: 1m
          allowed_lateness: 10s
          stats: [count, min, max, mean]
        http:
          listen: 127.0.0.1:9464
        log:
          level: debug
        """

    @Test func goodConfig() throws {
        let c = try VigilConfig.parse(Self.good, file: "vigil.yaml")
        #expect(c.gatewayID == "gw-hz-001")
        #expect(c.subscriptions.count == 2)
        #expect(c.subscriptions[1].format == .auto)
        #expect(c.buffer.maxSize.bytes == 512 << 20)
        #expect(c.buffer.durability == .full)
        #expect(c.buffer.directory == "/tmp/vigil-state")
        #expect(c.limits.maxAge == .days(7))
        #expect(c.aggregate.stats == [.count, .min, .max, .mean])
        #expect(c.httpListen == "127.0.0.1:9464")
        #expect(c.logLevel == .debug)
        #expect(c.localClientID == "vigil-gw-hz-001")
    }

    @Test func stateDirectoryFromSystemd() throws {
        let c = try VigilConfig.parse(Self.good, file: "vigil.yaml", environment: ["STATE_DIRECTORY": "/var/lib/vigil"])
        #expect(c.stateDir == "/var/lib/vigil")
        #expect(c.buffer.databasePath == "/var/lib/vigil/vigil.db")
    }

    func diagnostics(_ text: String) -> [String] {
        do {
            _ = try VigilConfig.parse(text, file: "bad.yaml")
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    @Test func everyMistakeWithItsPosition() {
        let text = """
            gateway_id: gw 1
            local:
              prot: 1883
              qos: 2
            subscriptions:
              - network: energy
                topic: energy/+/+
                layout: energy/{site}/{device}/{metric}
              - network: water
                topic: water/#/x
                layout: water/{site}/{device}
              - network: urban
                topic: city/+/+
                layout: city/{site}/{device}
                format: number
            buffer:
              retention: 7 days
              max_size: lots
              durability: fast
            """
        let d = diagnostics(text)
        let expected = [
            "bad.yaml:1:13: gateway_id 'gw 1' must be 1 to 64 of A-Z a-z 0-9 _ . -",
            "bad.yaml:3:3: unknown key 'prot' in local; did you mean 'port'?",
            "bad.yaml:4:8: local.qos must be a whole number from 0 to 1, not '2'",
            "bad.yaml:8:13: subscriptions[0].layout: the layout has more levels than topic energy/+/+",
            "bad.yaml:10:12: subscriptions[1].topic: '#' must be the last level",
            "bad.yaml:15:13: subscriptions[2]: format number needs {metric} in the layout",
            "bad.yaml:17:14: buffer.retention must be a duration such as 30s, 5m, 2h or 7d, not '7 days'",
            "bad.yaml:18:13: buffer.max_size must be a size such as 64KiB, 512MiB or 1GiB, not 'lots'",
            "bad.yaml:19:15: buffer.durability must be one of normal, full, not 'fast'",
        ]
        #expect(d == expected)
    }

    @Test func syntaxErrorsAndMissingKeys() {
        #expect(diagnostics("gateway_id: [unclosed\n").first?.hasPrefix("bad.yaml:2:1: YAML:") == true)
        #expect(diagnostics("gateway_id: a\ngateway_id: b\nsubscriptions: []\n").contains { $0.contains("duplicate key gateway_id") })
        #expect(diagnostics("") == ["bad.yaml:1:1: the file is empty; it needs at least gateway_id and subscriptions"])
        let missing = diagnostics("log: {level: info}\n")
        #expect(missing.contains("bad.yaml:1:1: gateway_id is required: the name this gateway has upstream"))
        #expect(missing.contains("bad.yaml:1:1: subscriptions is required: which topics to read and how"))
        #expect(diagnostics("gateway_id: g\nsubscriptions: []\nlog: {level: loud}\n").contains(
            "bad.yaml:3:14: log.level must be one of trace, debug, info, notice, warning, error, critical"))
    }

    @Test func secretsMustBeReadable() {
        let text = """
            gateway_id: g
            local:
              password_file: /nonexistent/local.pass
              tls: { cert_file: /x }
            subscriptions:
              - { network: energy, topic: e/+/+/+, layout: "e/{site}/{device}/{metric}" }
            """
        let d = diagnostics(text)
        #expect(d.contains("bad.yaml:3:18: local.password_file '/nonexistent/local.pass' cannot be read"))
        #expect(d.contains("bad.yaml:4:8: local.tls needs ca_file: the CA that signs the broker's certificate"))
    }

    @Test func layoutsMustFitTheirTopics() {
        #expect(VigilConfig.layoutProblem(filter: try! TopicFilter("a/+/+/+"), layout: try! TopicLayout("a/{site}/{device}/{metric}")) == nil)
        #expect(VigilConfig.layoutProblem(filter: try! TopicFilter("a/#"), layout: try! TopicLayout("a/{site}/{device}/{metric}")) == nil)
        #expect(VigilConfig.layoutProblem(filter: try! TopicFilter("a/+/+/+"), layout: try! TopicLayout("b/{site}/{device}/{metric}")) != nil)
        #expect(VigilConfig.layoutProblem(filter: try! TopicFilter("a/+/+/+/x"), layout: try! TopicLayout("a/{site}/{device}/{metric}")) != nil)
        #expect(VigilConfig.layoutProblem(filter: try! TopicFilter("a/+/+/+/x"), layout: try! TopicLayout("a/{site}/{device}/{metric}/#")) == nil)
    }

    /// `vigil check` prints each mistake as file:line:column and exits 1, touching no network.
    @Test func checkCommand() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("vigil.yaml")
        try "gateway_id: g\nsubscriptions:\n  - network: energy\n    topik: x\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bad = try DaemonProcess.run(DaemonProcess.binary, ["check", "--config", path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("\(path):4:5: unknown key 'topik' in subscriptions[0]; did you mean 'topic'?"))
        try FileManager.default.createDirectory(atPath: dir.file("rules.d"), withIntermediateDirectories: true)
        try (Self.good + "\nrules_dir: rules.d\n").write(toFile: path, atomically: true, encoding: .utf8)
        let ok = try DaemonProcess.run(DaemonProcess.binary, ["check", "--config", path])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("ok"))
        // The daemon refuses to start on an invalid config.
        try "gateway_id: g\n".write(toFile: path, atomically: true, encoding: .utf8)
        let run = try DaemonProcess.run(DaemonProcess.binary, ["run", "--config", path])
        #expect(run.status == 1)
        #expect(run.stderr.contains("subscriptions is required"))
    }

    /// `http.token_file`: relative names are looked up in `$CREDENTIALS_DIRECTORY` first;
    /// a file that cannot be read, or an empty one, is a mistake at its place.
    @Test func tokenFile() throws {
        let dir = TemporaryDirectory()
        let creds = dir.file("creds")
        try FileManager.default.createDirectory(atPath: creds, withIntermediateDirectories: true)
        try "tok-123\n".write(toFile: creds + "/page-token", atomically: true, encoding: .utf8)
        try "".write(toFile: dir.file("empty"), atomically: true, encoding: .utf8)
        func text(_ file: String) -> String {
            """
            gateway_id: g
            subscriptions:
              - { network: energy, topic: e/+/+/+, layout: "e/{site}/{device}/{metric}" }
            http:
              listen: 0.0.0.0:9464
              token_file: \(file)
            """
        }
        let c = try VigilConfig.parse(text("page-token"), file: dir.file("vigil.yaml"), environment: ["CREDENTIALS_DIRECTORY": creds])
        #expect(c.httpTokenFile == creds + "/page-token")
        #expect(try Secrets.read(c.httpTokenFile!) == "tok-123")
        #expect(diagnostics(text("/nonexistent/token")) == ["bad.yaml:6:15: http.token_file '/nonexistent/token' cannot be read"])
        #expect(diagnostics(text(dir.file("empty"))) == ["bad.yaml:6:15: http.token_file '\(dir.file("empty"))' is empty: put the token (one line) in it"])
    }

}
