import ArgumentParser
import Foundation
import Logging
import VigilCore
import VigilStorage

extension VigilCommand {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Raw readings from the buffer, in time order.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "MQTT-style filter over series paths, e.g. water/+/+/water_level or energy/#.")
        var match: String = "#"
        @Option(help: "From this time (RFC 3339, a date, epoch seconds, or a span back from now such as 1h).")
        var since: String?
        @Option(help: "Up to (not including) this time.")
        var until: String?
        @Option(help: "csv or json.")
        var format: OutputFormat = .csv

        enum OutputFormat: String, ExpressibleByArgument { case csv, json }

        func validate() throws {
            if case .failure(let e) = TopicFilter.parse(match) { throw ValidationError("--match: \(e)") }
            for (name, v) in [("--since", since), ("--until", until)] {
                if let v, Timestamp.parseUserTime(v) == nil { throw ValidationError("\(name): cannot read '\(v)' as a time") }
            }
        }

        func run() async throws {
            let config = try options.load()
            let reader = try openReader(config)
            let filter = try TopicFilter(match)
            let out = BufferedOutput()
            var first = true
            switch format {
            case .csv: out.write("time,series,value,unit\n")
            case .json: out.write("[")
            }
            try reader.readings(
                matching: filter, since: since.flatMap { Timestamp.parseUserTime($0) },
                until: until.flatMap { Timestamp.parseUserTime($0) }
            ) { r in
                switch format {
                case .csv:
                    out.write("\(r.timestamp.rfc3339),\(r.series),\(JSONText.number(r.value)),\(CSV.field(r.unit ?? ""))\n")
                case .json:
                    out.write(first ? "\n" : ",\n")
                    out.write(
                        "{\"series\":\(JSONText.string(r.series)),\"time\":\"\(r.timestamp.rfc3339)\",\"ts\":\(r.timestamp.secondsString),\"value\":\(JSONText.number(r.value)),\"unit\":\(r.unit.map(JSONText.string) ?? "null")}"
                    )
                }
                first = false
            }
            if format == .json { out.write(first ? "]\n" : "\n]\n") }
            out.flush()
        }
    }
}
