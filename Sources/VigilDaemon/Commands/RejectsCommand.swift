import ArgumentParser
import Foundation
import Logging
import VigilCore
import VigilStorage

extension VigilCommand {
    struct Rejects: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The latest rejected messages and why, newest first.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "How many to show.") var limit: Int = 20
        @Flag(help: "One JSON object per line.") var json = false

        func run() async throws {
            let config = try options.load()
            let reader = try openReader(config)
            let counters = try reader.counters()
            let rows = try reader.rejects(limit: limit)
            if json {
                for r in rows {
                    print(
                        "{\"at\":\"\(r.at.rfc3339)\",\"topic\":\(JSONText.string(r.topic)),\"reason\":\"\(r.reason.code)\",\"detail\":\(JSONText.string(r.reason.detail)),\"payload_size\":\(r.payloadSize),\"payload_prefix\":\(JSONText.string(Printable.escape(r.payloadPrefix)))}"
                    )
                }
                return
            }
            let totals = counters.filter { $0.key.hasPrefix(CounterName.rejectedPrefix) }.sorted { $0.value > $1.value }
            if totals.isEmpty {
                print("no rejected messages")
                return
            }
            print("rejected since the buffer was created:")
            for (k, v) in totals { print("  \(k.dropFirst(CounterName.rejectedPrefix.count)): \(v)") }
            print("\nlatest \(rows.count):")
            for r in rows {
                print("\(r.at.rfc3339)  \(r.reason.code)  \(r.topic)")
                print("    \(r.reason.detail)")
                let more = r.payloadSize > r.payloadPrefix.count ? " ... (\(r.payloadSize) bytes)" : ""
                print("    payload: \(Printable.escape(r.payloadPrefix))\(more)")
            }
        }
    }
}
