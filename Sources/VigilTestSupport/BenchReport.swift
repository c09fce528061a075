import Foundation

/// What `vigil-bench` found, and its two renderings: a markdown report and an SVG plot.
/// Pure values and pure functions, so the rendering is tested without running anything.
public struct BenchReport: Sendable, Equatable {
    /// One run of vigil: a fresh daemon on a fresh buffer, fed at one offered rate.
    public struct Step: Sendable, Equatable {
        /// The configuration's label, "QoS 0, normal" say: one series in the plot.
        public var configuration: String
        /// The paced rate, readings/s; nil for the unpaced (as fast as possible) run.
        public var offered: Double?
        /// What the publisher managed to send, readings/s.
        public var sent: Double
        /// Readings committed to the buffer per second, from the first publish to the last commit.
        public var stored: Double
        /// The broker's ceiling this step is compared with (same QoS).
        public var ceiling: Double
        /// Publish-to-stored latency, ms.
        public var p50: Double
        public var p99: Double
        public var p999: Double
        /// Resident memory at the end of the step and its peak, MB.
        public var rssMB: Double
        public var peakRSSMB: Double
        public var cpuPer10k: Double
        /// Bytes the daemon sent to the storage layer (/proc/PID/io write_bytes) per reading.
        public var writtenPerReading: Double
        /// Size of the buffer's database file per reading, after the daemon's final checkpoint.
        public var filePerReading: Double
        /// Stored fell more than 5 % short of offered, or the publisher fell behind.
        public var saturated: Bool

        public init(
            configuration: String, offered: Double?, sent: Double, stored: Double, ceiling: Double, p50: Double, p99: Double,
            p999: Double, rssMB: Double, peakRSSMB: Double, cpuPer10k: Double, writtenPerReading: Double,
            filePerReading: Double, saturated: Bool
        ) {
            self.configuration = configuration
            self.offered = offered
            self.sent = sent
            self.stored = stored
            self.ceiling = ceiling
            self.p50 = p50
            self.p99 = p99
            self.p999 = p999
            self.rssMB = rssMB
            self.peakRSSMB = peakRSSMB
            self.cpuPer10k = cpuPer10k
            self.writtenPerReading = writtenPerReading
            self.filePerReading = filePerReading
            self.saturated = saturated
        }

        public var ratio: Double { ceiling > 0 ? stored / ceiling : 0 }
    }

    /// A headline figure, with its target when there is one.
    public struct Row: Sendable, Equatable {
        public var measure: String
        public var value: String
        public var target: String
        public init(_ measure: String, _ value: String, _ target: String = "") {
            self.measure = measure
            self.value = value
            self.target = target
        }
    }

    /// The broker's own ceiling (mosquitto_sub to /dev/null), one per QoS.
    public struct Ceiling: Sendable, Equatable {
        public var label: String
        public var rate: Double
        public init(label: String, rate: Double) {
            self.label = label
            self.rate = rate
        }
    }

    public var title: String
    /// Lines about the run: when, on what, with which command.
    public var context: [String]
    public var ceilings: [Ceiling]
    public var summary: [Row]
    public var steps: [Step]
    /// More tables after the sweep: a title and its markdown.
    public var sections: [Section]

    /// A table of its own (writes to flash, uplink bytes).
    public struct Section: Sendable, Equatable {
        public var title: String
        public var markdown: String
        public init(title: String, markdown: String) {
            self.title = title
            self.markdown = markdown
        }
    }

    public init(title: String, context: [String], ceilings: [Ceiling], summary: [Row], steps: [Step], sections: [Section] = []) {
        self.title = title
        self.context = context
        self.ceilings = ceilings
        self.summary = summary
        self.steps = steps
        self.sections = sections
    }

    /// The configurations in the order their steps first appear.
    public var configurations: [String] {
        var seen: [String] = []
        for s in steps where !seen.contains(s.configuration) { seen.append(s.configuration) }
        return seen
    }

    // MARK: Markdown

    public func summaryTable() -> String {
        var out = "| measure | value | target |\n| --- | --- | --- |\n"
        for r in summary { out += "| \(r.measure) | \(r.value) | \(r.target) |\n" }
        return out
    }

    public func sweepTable() -> String {
        var out = """
            | configuration | offered /s | stored /s | of ceiling | p50 ms | p99 ms | p99.9 ms | RSS / peak MB | CPU s per 10k | written B/reading | file B/reading |
            | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |

            """
        for s in steps {
            let offered = s.offered.map { Self.grouped($0) } ?? "unpaced"
            let stored = Self.grouped(s.stored) + (s.saturated ? " *" : "")
            out += "| \(s.configuration) | \(offered) | \(stored) | \(Self.fixed(s.ratio * 100, 0)) % "
            out += "| \(Self.fixed(s.p50, 2)) | \(Self.fixed(s.p99, 2)) | \(Self.fixed(s.p999, 2)) "
            out += "| \(Self.fixed(s.rssMB, 1)) / \(Self.fixed(s.peakRSSMB, 1)) | \(Self.fixed(s.cpuPer10k, 3)) "
            out += "| \(Self.grouped(s.writtenPerReading)) | \(Self.fixed(s.filePerReading, 1)) |\n"
        }
        return out
    }

    /// The whole report; `plot` is the SVG's file name, next to the markdown. The title is a
    /// heading of `headingLevel` (1 for a page of its own in results/, 2 inside
    /// docs/benchmark.md), its sections one level below.
    public func markdown(plot: String? = nil, headingLevel: Int = 1) -> String {
        let h = String(repeating: "#", count: Swift.min(Swift.max(headingLevel, 1), 5))
        var out = "\(h) \(title)\n\n"
        for line in context { out += "- \(line)\n" }
        out += "\n\(h)# Summary\n\n" + summaryTable()
        out += "\n\(h)# Sweep\n\n"
        out += "Each row is a fresh vigil on a fresh buffer. Paced rates double until vigil stores more than 5 % less "
        out += "than offered or the publisher falls behind (marked *); the last row of each configuration publishes "
        out += "as fast as it can. \"of ceiling\" compares with what `mosquitto_sub` to /dev/null receives at the same QoS"
        if !ceilings.isEmpty {
            out += " (" + ceilings.map { "\($0.label): \(Self.grouped($0.rate))/s" }.joined(separator: ", ") + ")"
        }
        out += ". Written bytes are the daemon's /proc/PID/io write_bytes during the step; file bytes are the "
        out += "database's size after vigil's final checkpoint.\n\n"
        out += sweepTable()
        if let plot { out += "\n![offered vs stored rate and p99 latency](\(plot))\n" }
        for section in sections { out += "\n\(h)# \(section.title)\n\n\(section.markdown)" }
        return out
    }

    // MARK: Formatting

    /// An integer with thousands separators, whatever the locale: 122,000.
    public static func grouped(_ v: Double) -> String {
        guard v.isFinite else { return "-" }
        let n = Int64(v.rounded())
        var digits = String(n.magnitude)
        var out = ""
        while digits.count > 3 {
            out = "," + digits.suffix(3) + out
            digits.removeLast(3)
        }
        return (n < 0 ? "-" : "") + digits + out
    }

    public static func fixed(_ v: Double, _ places: Int) -> String {
        guard v.isFinite else { return "-" }
        return String(format: "%.\(places)f", v)
    }

    /// 5k, 20k, 1.5M: rates on an axis.
    public static func short(_ v: Double) -> String {
        if v >= 1e6 { return trim(v / 1e6) + "M" }
        if v >= 1e3 { return trim(v / 1e3) + "k" }
        return trim(v)
    }

    static func trim(_ v: Double) -> String {
        v == v.rounded() ? String(Int64(v)) : String(format: "%.1f", v)
    }
}
