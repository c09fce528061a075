import VigilCore
import VigilTestSupport

/// Bytes on the uplink per series and window (topic and payload, as vigil encodes them)
/// for `upstream.format: series`, `pack`, and `pack` with `compress: deflate`: one window
/// of 60 readings per series, with the demo's series names and values that move as a
/// voltage does.
enum UplinkBench {
    struct Row {
        var series: Int
        var seriesFormat: Double
        var pack: Double
        var deflated: Double
    }

    static let prefix = "vigil/gw-demo-001"

    static func windows(_ n: Int) -> [ClosedWindow] {
        var rng = SeededGenerator(seed: 42)
        let start = Timestamp(seconds: 1_790_000_040)
        return (0..<n).map { i in
            var stats = WindowStats()
            var v = Double.random(in: 215...235, using: &rng)
            for k in 0..<60 {
                v += Double.random(in: -0.8...0.8, using: &rng)
                stats.add((v * 10).rounded() / 10, at: start.micros + Int64(k) * 1_000_000)
            }
            let key = SeriesKey(network: "energy", site: "substation-\(i / 10 + 1)", device: "meter-\(i % 10 + 1)", metric: "voltage")
            return ClosedWindow(
                seriesID: Int64(i), series: key, unit: "V", start: start, end: start.adding(.minutes(1)), stats: stats)
        }
    }

    static func run(seriesCounts: [Int] = [100, 1000]) -> [Row] {
        seriesCounts.map { n in
            let w = windows(n)
            var series = 0
            for (k, x) in w.enumerated() {
                let (topic, payload) = UpstreamPayload.aggregate(x, gateway: "gw-demo-001", seq: Int64(48_000 + k), stats: AggregateStat.allCases, prefix: prefix)
                series += topic.utf8.count + payload.count
            }
            func packed(_ deflate: Bool) -> Int {
                let (topic, payload) = UpstreamPayload.pack(
                    w, gateway: "gw-demo-001", seq: 48_000, stats: AggregateStat.allCases, prefix: prefix, deflate: deflate)
                return topic.utf8.count + payload.count
            }
            let row = Row(
                series: n, seriesFormat: Double(series) / Double(n), pack: Double(packed(false)) / Double(n),
                deflated: Double(packed(true)) / Double(n))
            print(String(format: "  %d series: series %.0f, pack %.0f, pack + deflate %.0f bytes per series and window", n, row.seriesFormat, row.pack, row.deflated))
            return row
        }
    }

    static func table(_ rows: [Row]) -> String {
        var out = "| series | `format: series` | `format: pack` | `pack` + `compress: deflate` | a month of one-minute windows, deflated |\n"
        out += "| ---: | ---: | ---: | ---: | ---: |\n"
        for r in rows {
            let month = r.deflated * Double(r.series) * 60 * 24 * 30
            out += "| \(BenchReport.grouped(Double(r.series))) | \(BenchReport.grouped(r.seriesFormat)) | \(BenchReport.grouped(r.pack)) "
            out += "| \(BenchReport.grouped(r.deflated)) | \(WritesBench.bytes(month)) |\n"
        }
        out += "\nBytes per series and window: the topic and the payload as vigil encodes them (all eight stats, the "
        out += "demo's series names), before MQTT's own few bytes per message; a pack is one message per window.\n"
        return out
    }
}
