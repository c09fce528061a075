import ArgumentParser
import Foundation
import VigilCore
import VigilStorage

extension VigilCommand {
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
