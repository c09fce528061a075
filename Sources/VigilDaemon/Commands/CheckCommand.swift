import ArgumentParser
import Foundation
import VigilCore
import VigilStorage

extension VigilCommand {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the config and the rules without touching the network; every mistake as file:line:column.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "Show which rules and thresholds apply to this series (network/site/device/metric).")
        var series: String?
        @Option(help: "With --payload: what a message on this topic would become.")
        var topic: String?
        @Option(help: "The message's payload for --topic; - reads it from standard input. Exit 1 if it would be rejected.")
        var payload: String?

        func validate() throws {
            if let s = series, SeriesKey(path: s) == nil {
                throw ValidationError("--series must be network/site/device/metric with names of A-Z a-z 0-9 _ . -")
            }
            if (topic == nil) != (payload == nil) { throw ValidationError("--topic and --payload go together") }
        }

        func run() async throws {
            let settings = try options.loadSettings()
            let config = settings.config
            if let path = series, let key = SeriesKey(path: path) {
                print(RuleDescription.forSeries(key, rules: settings.rules))
                return
            }
            if let topic, let payload {
                let bytes = payload == "-" ? Array(FileHandle.standardInput.readDataToEndOfFile()) : Array(payload.utf8)
                let (text, stored) = MessageCheck.describe(
                    topic: topic, payload: bytes, config: config, rules: settings.rules, now: Timestamp.now())
                print(text)
                if !stored { throw ExitCode(1) }
                return
            }
            print(
                "\(options.path): ok: gateway \(config.gatewayID), \(config.subscriptions.count) subscription(s), \(settings.rules.count) rule(s) from \(RuleFiles.files(in: config.rulesDir).count) file(s) in \(config.rulesDir), state in \(config.stateDir)"
            )
            // A port in use or a host that does not resolve now is a warning: the unit runs this
            // check before every start, and ingest must start anyway (the listener keeps trying).
            if let listen = config.httpListen, case .success(let address) = ListenAddress.parse(listen) {
                let place = YAMLLocation.of(["http", "listen"], in: options.path)
                for w in address.availability() { printWarning("\(place): warning: http.listen \(w)") }
            }
        }
    }
}

/// What `vigil check --series` prints.
enum RuleDescription {
    static func forSeries(_ key: SeriesKey, rules: [Rule]) -> String {
        let matching = rules.filter { $0.match.matches(levels: key.levels) }
        guard !matching.isEmpty else { return "\(key.path): no rule applies" }
        var lines = ["\(key.path): \(matching.count) rule(s)"]
        for rule in matching {
            var head = "- \(rule.id) (\(rule.file):\(rule.line))"
            if let o = rule.override(for: key) { head += ", with override \(o.match.text)" }
            lines.append(head)
            if !rule.description.isEmpty { lines.append("    \(rule.description)") }
            switch rule.resolved(for: key) {
            case .threshold(let s):
                let window = s.window.micros == 0 ? "" : " over \(s.window)"
                let levels = s.thresholds.levels.map { "\($0.0) \(s.op.rawValue) \(Rule.formatNumber($0.1))" }.joined(separator: ", ")
                lines.append("    \(s.stat.rawValue)\(window): \(levels)")
                var timing: [String] = []
                if s.hysteresis > 0 { timing.append("hysteresis \(Rule.formatNumber(s.hysteresis))") }
                if s.holdFor.micros > 0 { timing.append("for \(s.holdFor)") }
                if s.clearFor.micros > 0 { timing.append("clear_for \(s.clearFor)") }
                if !timing.isEmpty { lines.append("    " + timing.joined(separator: ", ")) }
            case .stale(let after, let level):
                lines.append("    \(level) when silent for \(after)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
