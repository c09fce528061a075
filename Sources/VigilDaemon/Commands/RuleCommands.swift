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

    struct Alerts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Alert history from the buffer, or the alerts raised now.")
        @OptionGroup var options: ConfigOptions
        @Flag(help: "Only the alerts raised now.") var active = false
        @Option(help: "From this time (RFC 3339, a date, epoch seconds, or a span back from now such as 1h).")
        var since: String?
        @Option(help: "At most this many transitions (the newest).") var limit: Int = 200
        @Flag(help: "One JSON object per line.") var json = false

        func validate() throws {
            if let v = since, Timestamp.parseUserTime(v) == nil { throw ValidationError("--since: cannot read '\(v)' as a time") }
        }

        func run() async throws {
            let config = try options.load()
            let reader = try openReader(config)
            if active {
                let raised = try reader.alertStates().filter { $0.level != nil }
                if json {
                    for a in raised {
                        print(
                            "{\"alert\":\(JSONText.string("\(a.rule):\(a.series.path)")),\"rule\":\(JSONText.string(a.rule)),\"series\":\(JSONText.string(a.series.path)),\"level\":\"\(a.level!)\",\"since\":\"\(a.since?.rfc3339 ?? "")\",\"value\":\(a.lastValue.map(JSONText.number) ?? "null"),\"threshold\":\(a.threshold.map(JSONText.number) ?? "null")}"
                        )
                    }
                    return
                }
                if raised.isEmpty {
                    print("no active alerts")
                    return
                }
                for a in raised.sorted(by: { ($0.level!.rawValue, $1.since?.micros ?? 0) > ($1.level!.rawValue, $0.since?.micros ?? 0) }) {
                    let value = a.lastValue.map(Rule.formatNumber) ?? "-"
                    let threshold = a.threshold.map(Rule.formatNumber) ?? "-"
                    print("\(a.level!.name.uppercased().padding(toLength: 6, withPad: " ", startingAt: 0)) \(a.rule)  \(a.series.path)  value \(value) threshold \(threshold)  since \(a.since?.rfc3339 ?? "-")")
                }
                return
            }
            let events = try reader.alertEvents(since: since.flatMap { Timestamp.parseUserTime($0) }, limit: limit)
            for e in events {
                let t = e.transition
                if json {
                    print(
                        "{\"at\":\"\(t.at.rfc3339)\",\"alert\":\(JSONText.string(t.alertID)),\"rule\":\(JSONText.string(t.rule)),\"series\":\(JSONText.string(t.series.path)),\"state\":\"\(t.state.rawValue)\",\"level\":\"\(t.level)\",\"previous_level\":\(t.previousLevel.map { "\"\($0)\"" } ?? "null"),\"value\":\(t.value.map(JSONText.number) ?? "null"),\"threshold\":\(t.threshold.map(JSONText.number) ?? "null"),\"since\":\"\(t.since.rfc3339)\",\"message\":\(JSONText.string(t.message))}"
                    )
                } else {
                    print("\(t.at.rfc3339)  \(t.state.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)) \(t.level.name.padding(toLength: 6, withPad: " ", startingAt: 0)) \(t.rule)  \(t.series.path)  \(t.message)")
                }
            }
            if events.isEmpty && !json { print("no alerts") }
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
