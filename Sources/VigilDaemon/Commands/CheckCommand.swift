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

        func validate() throws {
            if let s = series, SeriesKey(path: s) == nil {
                throw ValidationError("--series must be network/site/device/metric with names of A-Z a-z 0-9 _ . -")
            }
        }

        func run() async throws {
            let settings = try options.loadSettings()
            let config = settings.config
            if let path = series, let key = SeriesKey(path: path) {
                print(RuleDescription.forSeries(key, rules: settings.rules))
                return
            }
            print(
                "\(options.path): ok: gateway \(config.gatewayID), \(config.subscriptions.count) subscription(s), \(settings.rules.count) rule(s) from \(RuleFiles.files(in: config.rulesDir).count) file(s) in \(config.rulesDir), state in \(config.stateDir)"
            )
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
