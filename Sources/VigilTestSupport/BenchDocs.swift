import Foundation

/// `docs/benchmark.md`: a hand-written page with one part that `vigil-bench` rewrites at the
/// end of a full run, between two marker lines, and the run's plot beside it as
/// `docs/benchmark.svg`. Everything outside the markers stays as it was, byte for byte.
public enum BenchDocs {
    /// The marker lines, each alone on its line.
    public static let begin = "<!-- bench:begin -->"
    public static let end = "<!-- bench:end -->"
    /// The page and the plot, in the docs directory.
    public static let pageName = "benchmark.md"
    public static let plotName = "benchmark.svg"

    /// Why a page cannot take a new report. Lines count from 1.
    public enum MarkerError: Error, Equatable, CustomStringConvertible {
        /// The marker is on no line of its own.
        case missing(String)
        /// The marker is on more than one line.
        case repeated(String, lines: [Int])
        /// The end marker comes before the begin marker.
        case endBeforeBegin(begin: Int, end: Int)
        /// The generated part holds a marker line itself, which would spoil the next run.
        case markerInReport(String)

        public var description: String {
            switch self {
            case .missing(let m): return "no line holds \(m) alone: the page has no part for the report"
            case .repeated(let m, let lines): return "\(m) is on several lines (\(lines.map(String.init).joined(separator: ", ")))"
            case .endBeforeBegin(let b, let e): return "\(BenchDocs.end) (line \(e)) comes before \(BenchDocs.begin) (line \(b))"
            case .markerInReport(let m): return "the report holds \(m) on a line of its own"
            }
        }
    }

    /// `page` with the lines between the marker lines replaced by `report`; the marker lines
    /// and everything outside them are kept.
    /// - Throws: `MarkerError` when the page has not exactly one begin marker line followed
    ///   by exactly one end marker line; the page is then left to the caller untouched.
    public static func replacingReport(in page: String, with report: String) throws(MarkerError) -> String {
        let lines = page.split(separator: "\n", omittingEmptySubsequences: false)
        func lineNumbers(of marker: String) -> [Int] {
            lines.indices.filter { lines[$0].trimmingCharacters(in: .whitespacesAndNewlines) == marker }
        }
        let begins = lineNumbers(of: begin)
        let ends = lineNumbers(of: end)
        for (marker, found) in [(begin, begins), (end, ends)] {
            if found.isEmpty { throw .missing(marker) }
            if found.count > 1 { throw .repeated(marker, lines: found.map { $0 + 1 }) }
        }
        let b = begins[0]
        let e = ends[0]
        guard b < e else { throw .endBeforeBegin(begin: b + 1, end: e + 1) }
        for marker in [begin, end]
        where report.split(separator: "\n").contains(where: { $0.trimmingCharacters(in: .whitespacesAndNewlines) == marker }) {
            throw .markerInReport(marker)
        }
        var body = report
        if !body.hasSuffix("\n") { body += "\n" }
        let head = lines[...b].joined(separator: "\n")
        let tail = lines[e...].joined(separator: "\n")
        return head + "\n" + body + tail
    }

    /// What goes between the markers: the report under a second-level heading, its plot
    /// linked beside the page.
    public static func section(_ report: BenchReport) -> String {
        var r = report
        r.title = "Latest full run: \(report.title)"
        return r.markdown(plot: plotName, headingLevel: 2)
    }

    /// Rewrites `<docs>/benchmark.md` with the report and writes `<docs>/benchmark.svg`. The
    /// page is read and checked first: when it cannot take the report, nothing is written.
    /// - Returns: the files written.
    @discardableResult
    public static func write(_ report: BenchReport, docs: URL) throws -> [URL] {
        let pageURL = docs.appendingPathComponent(pageName)
        let plotURL = docs.appendingPathComponent(plotName)
        let old = try String(contentsOf: pageURL, encoding: .utf8)
        let new = try replacingReport(in: old, with: section(report))
        try report.svg().write(to: plotURL, atomically: true, encoding: .utf8)
        try new.write(to: pageURL, atomically: true, encoding: .utf8)
        return [pageURL, plotURL]
    }
}
