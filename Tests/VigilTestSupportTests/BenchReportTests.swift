import Foundation
import Testing
import VigilTestSupport

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// The benchmark's report: the markdown table and the SVG plot, from fixed figures.
@Suite("Benchmark report")
struct BenchReportTests {
    static func step(_ config: String, _ offered: Double?, stored: Double, p99: Double, ceiling: Double, saturated: Bool = false)
        -> BenchReport.Step
    {
        BenchReport.Step(
            configuration: config, offered: offered, sent: offered ?? 250_000, stored: stored, ceiling: ceiling, p50: p99 / 2, p99: p99,
            p999: p99 * 1.5, rssMB: 27.25, peakRSSMB: 28.5, cpuPer10k: 0.0625, writtenPerReading: 1234.4, filePerReading: 28.25,
            saturated: saturated)
    }

    static let report = BenchReport(
        title: "vigil-bench <test> & co",
        context: ["command: `scripts/bench`"],
        ceilings: [.init(label: "QoS 0", rate: 100_000), .init(label: "QoS 1", rate: 40_000)],
        summary: [.init("broker ceiling", "100,000 msg/s"), .init("ratio", "120 %", ">= 85 %")],
        steps: [
            step("QoS 0, normal", 5_000, stored: 4_990, p99: 5.5, ceiling: 100_000),
            step("QoS 0, normal", 10_000, stored: 9_980, p99: 6, ceiling: 100_000),
            step("QoS 0, normal", 160_000, stored: 120_000, p99: 400, ceiling: 100_000, saturated: true),
            step("QoS 0, normal", nil, stored: 150_000, p99: 160, ceiling: 100_000, saturated: true),
            step("QoS 1, full", 5_000, stored: 4_980, p99: 6.5, ceiling: 40_000),
            step("QoS 1, full", 10_000, stored: 7_000, p99: 300, ceiling: 40_000, saturated: true),
            step("QoS 1, full", nil, stored: 30_000, p99: 1_500, ceiling: 40_000, saturated: true),
        ])

    @Test func markdownTables() {
        let md = Self.report.markdown(plot: "latest.svg")
        let lines = md.split(separator: "\n").map(String.init)
        #expect(lines.first == "# vigil-bench <test> & co")
        #expect(lines.contains("| ratio | 120 % | >= 85 % |"))
        let header = lines.firstIndex { $0.hasPrefix("| configuration | offered /s | stored /s | of ceiling |") }
        #expect(header != nil)
        guard let header else { return }
        let columns = lines[header].split(separator: "|").count
        let rows = lines[(header + 2)...].prefix { $0.hasPrefix("|") }
        #expect(rows.count == 7)
        for row in rows { #expect(row.split(separator: "|").count == columns) }
        #expect(
            rows.first
                == "| QoS 0, normal | 5,000 | 4,990 | 5 % | 2.75 | 5.50 | 8.25 | 27.2 / 28.5 | 0.062 | 1,234 | 28.2 |")
        #expect(rows.contains { $0.hasPrefix("| QoS 0, normal | 160,000 | 120,000 * | 120 % |") })
        #expect(rows.contains { $0.hasPrefix("| QoS 1, full | unpaced | 30,000 * | 75 % |") })
        #expect(md.contains("(QoS 0: 100,000/s, QoS 1: 40,000/s)"))
        #expect(md.contains("![offered vs stored rate and p99 latency](latest.svg)"))
    }

    @Test func headingLevelForTheDocsPage() {
        let md = Self.report.markdown(plot: "benchmark.svg", headingLevel: 2)
        let headings = md.split(separator: "\n").filter { $0.hasPrefix("#") }
        #expect(headings == ["## vigil-bench <test> & co", "### Summary", "### Sweep"])
        #expect(Self.report.markdown() == Self.report.markdown(plot: nil, headingLevel: 1))
        let section = BenchDocs.section(Self.report)
        #expect(section.hasPrefix("## Latest full run: vigil-bench <test> & co\n"))
        #expect(section.contains("![offered vs stored rate and p99 latency](benchmark.svg)"))
    }

    static let page = """
        # Benchmark

        Hand-written prose, kept.

        <!-- bench:begin -->
        ## Latest full run: an old one

        | old | table |
        <!-- bench:end -->

        Prose after the report, kept too.

        """

    /// Only the lines between the markers change; the markers and the rest stay byte for byte.
    @Test func markerReplacement() throws {
        let report = "## Latest full run: new\n\n| new | table |\n"
        let new = try BenchDocs.replacingReport(in: Self.page, with: report)
        #expect(
            new == """
                # Benchmark

                Hand-written prose, kept.

                <!-- bench:begin -->
                ## Latest full run: new

                | new | table |
                <!-- bench:end -->

                Prose after the report, kept too.

                """)
        // Again with the same report: nothing moves.
        #expect(try BenchDocs.replacingReport(in: new, with: report) == new)
        // A report without its final line break gets one, so the end marker keeps its line.
        #expect(try BenchDocs.replacingReport(in: Self.page, with: "x").contains("\nx\n<!-- bench:end -->\n"))
        // The whole report of a run goes in, and the page still has one part for the next.
        let full = try BenchDocs.replacingReport(in: Self.page, with: BenchDocs.section(Self.report))
        #expect(full.hasPrefix("# Benchmark\n\nHand-written prose, kept.\n\n<!-- bench:begin -->\n## Latest full run: vigil-bench"))
        #expect(full.hasSuffix("<!-- bench:end -->\n\nProse after the report, kept too.\n"))
        #expect(!full.contains("| old | table |"))
        #expect(try BenchDocs.replacingReport(in: full, with: report) == new)
    }

    /// A page that cannot take the report is an error, never a page silently spoiled.
    @Test func pagesWithoutTheirMarkersAreErrors() {
        let begin = BenchDocs.begin
        let end = BenchDocs.end
        #expect(throws: BenchDocs.MarkerError.missing(begin)) {
            try BenchDocs.replacingReport(in: "# Benchmark\n\nno markers\n", with: "report")
        }
        #expect(throws: BenchDocs.MarkerError.missing(end)) {
            try BenchDocs.replacingReport(in: "a\n\(begin)\nb\n", with: "report")
        }
        #expect(throws: BenchDocs.MarkerError.endBeforeBegin(begin: 3, end: 1)) {
            try BenchDocs.replacingReport(in: "\(end)\nb\n\(begin)\n", with: "report")
        }
        #expect(throws: BenchDocs.MarkerError.repeated(begin, lines: [1, 3])) {
            try BenchDocs.replacingReport(in: "\(begin)\nx\n\(begin)\n\(end)\n", with: "report")
        }
        #expect(throws: BenchDocs.MarkerError.markerInReport(end)) {
            try BenchDocs.replacingReport(in: Self.page, with: "a\n\(end)\nb\n")
        }
        // A marker quoted inside a line of prose is not a marker line.
        #expect(throws: BenchDocs.MarkerError.missing(begin)) {
            try BenchDocs.replacingReport(in: "the part between `\(begin)` and `\(end)`\n", with: "report")
        }
    }

    /// The page and the plot in a docs directory; a page without markers leaves both alone.
    @Test func writesThePageAndThePlot() throws {
        let dir = TemporaryDirectory("vigil-bench-docs")
        let docs = URL(fileURLWithPath: dir.path)
        try Self.page.write(to: docs.appendingPathComponent(BenchDocs.pageName), atomically: true, encoding: .utf8)
        let written = try BenchDocs.write(Self.report, docs: docs)
        #expect(written.map(\.lastPathComponent) == [BenchDocs.pageName, BenchDocs.plotName])
        let page = try String(contentsOfFile: dir.file(BenchDocs.pageName), encoding: .utf8)
        #expect(page == (try BenchDocs.replacingReport(in: Self.page, with: BenchDocs.section(Self.report))))
        #expect(try String(contentsOfFile: dir.file(BenchDocs.plotName), encoding: .utf8) == Self.report.svg())

        let bare = TemporaryDirectory("vigil-bench-docs")
        try "# Benchmark\n".write(toFile: bare.file(BenchDocs.pageName), atomically: true, encoding: .utf8)
        #expect(throws: BenchDocs.MarkerError.self) { try BenchDocs.write(Self.report, docs: URL(fileURLWithPath: bare.path)) }
        #expect(try String(contentsOfFile: bare.file(BenchDocs.pageName), encoding: .utf8) == "# Benchmark\n")
        #expect(!FileManager.default.fileExists(atPath: bare.file(BenchDocs.plotName)))
    }

    @Test func numbers() {
        #expect(BenchReport.grouped(1_234_567.4) == "1,234,567")
        #expect(BenchReport.grouped(999) == "999")
        #expect(BenchReport.grouped(-12_000) == "-12,000")
        #expect(BenchReport.short(5_000) == "5k")
        #expect(BenchReport.short(1_500_000) == "1.5M")
    }

    /// Elements by name, with their attributes.
    final class Collector: NSObject, XMLParserDelegate {
        var elements: [(String, [String: String])] = []
        func parser(
            _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            elements.append((name, attributes))
        }
    }

    @Test func svgIsWellFormedWithOneSeriesPerConfigurationAndPanel() throws {
        let svg = Self.report.svg()
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(collector.elements.first?.0 == "svg")
        let series = collector.elements.filter { $0.1["class"] == "series" }
        let keys = Set(series.map { "\($0.1["data-panel"] ?? "")/\($0.1["data-configuration"] ?? "")" })
        #expect(
            keys == ["throughput/QoS 0, normal", "throughput/QoS 1, full", "latency/QoS 0, normal", "latency/QoS 1, full"])
        #expect(series.count == 4)
        // Three paced points and one unpaced for the first configuration, two and one for the second, per panel.
        #expect(collector.elements.filter { $0.0 == "circle" }.count == 2 * 7 + 1)
        #expect(collector.elements.filter { $0.0 == "polyline" }.count == 4)
        #expect(collector.elements.filter { $0.1["class"] == "ceiling" }.count == 2)
        #expect(collector.elements.filter { $0.1["class"] == "axis-label" }.count == 4)
        #expect(svg.contains("offered readings/s (log)"))
        #expect(svg.contains("p99 latency, ms (log)"))
        #expect(svg.contains("vigil-bench &lt;test&gt; &amp; co"))
    }

    @Test func everyPointInsideItsPanel() {
        let svg = Self.report.svg()
        // cx and cy of every data point (the legend's circle is below the panels).
        let pattern = /<circle cx="([0-9.]+)" cy="([0-9.]+)" r="(?:3.5|5)"(?: fill="white" stroke-width="2")?>/
        let points = svg.matches(of: pattern).map { (Double($0.1)!, Double($0.2)!) }
        #expect(points.count == 14)
        for (x, y) in points {
            #expect((80...460).contains(x) || (570...950).contains(x))
            #expect((50...370).contains(y))
        }
    }
}
