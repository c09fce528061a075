import Foundation

/// The sweep as a hand-written SVG: two panels over the offered rate (log scale), the rate
/// vigil stored (with the line where stored equals offered and the broker's ceilings) and
/// the p99 publish-to-stored latency. One colour per configuration; the unpaced run of each
/// is an open circle in a column of its own at the right of the paced rates.
extension BenchReport {
    static let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

    /// A log axis: `lo...hi` mapped onto `from...to` (pixels).
    struct LogAxis {
        var lo: Double
        var hi: Double
        var from: Double
        var to: Double

        func position(_ v: Double) -> Double {
            let t = (log10(max(v, lo)) - log10(lo)) / (log10(hi) - log10(lo))
            return from + (to - from) * min(1, max(0, t))
        }

        /// 1, 2, 5 times a power of ten, within the axis.
        var ticks: [Double] { BenchReport.niceValues(from: lo, to: hi) }
    }

    /// The 1-2-5 values from the largest at most `lo` to the smallest at least `hi`.
    static func niceValues(from lo: Double, to hi: Double) -> [Double] {
        guard lo > 0, hi >= lo, lo.isFinite, hi.isFinite else { return [] }
        var all: [Double] = []
        for e in Int(floor(log10(lo)))...Int(ceil(log10(hi))) {
            for m in [1.0, 2, 5] { all.append(m * pow(10, Double(e))) }
        }
        let eps = 1e-9
        let first = all.lastIndex { $0 <= lo * (1 + eps) } ?? 0
        let last = all.firstIndex { $0 >= hi * (1 - eps) } ?? all.count - 1
        return Array(all[first...max(first, last)])
    }

    /// A log axis over `values`, widened to nice values at both ends.
    static func domain(_ values: [Double]) -> (Double, Double) {
        let v = values.filter { $0 > 0 && $0.isFinite }
        guard let lo = v.min(), let hi = v.max() else { return (1, 10) }
        let nice = niceValues(from: lo, to: hi)
        guard let first = nice.first, let last = nice.last, last > first else { return (lo / 2, lo * 2) }
        return (first, last)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func n(_ v: Double) -> String { String(format: "%.1f", v) }

    public func svg() -> String {
        let width = 980.0
        let height = 470.0
        let top = 50.0
        let plotHeight = 320.0
        let plotWidth = 380.0
        let lefts = [80.0, 570.0]
        let configs = configurations
        let xs = steps.compactMap(\.offered)
        let (xlo, xhi) = Self.domain(xs)
        let hasUnpaced = steps.contains { $0.offered == nil }
        // The paced rates on a log axis; the unpaced runs in a column of their own at the right.
        let pacedWidth = hasUnpaced ? plotWidth - 80 : plotWidth
        let (slo, shi) = Self.domain(steps.map(\.stored) + xs + ceilings.map(\.rate))
        let (llo, lhi) = Self.domain(steps.map(\.p99))

        var out = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <title>\(Self.escape(title))</title>
            <rect width="100%" height="100%" fill="white"/>

            """

        func panel(
            id: String, left: Double, heading: String, yLabel: String, x: LogAxis, y: LogAxis, yFormat: (Double) -> String,
            extra: String, value: (Step) -> Double
        ) {
            let bottom = top + plotHeight
            out += "<g id=\"\(id)\">\n"
            out += "<text x=\"\(Self.n(left + plotWidth / 2))\" y=\"\(Self.n(top - 18))\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(Self.escape(heading))</text>\n"
            for t in x.ticks {
                let p = x.position(t)
                out += "<line x1=\"\(Self.n(p))\" y1=\"\(Self.n(top))\" x2=\"\(Self.n(p))\" y2=\"\(Self.n(bottom))\" stroke=\"#e4e4e4\"/>\n"
                out += "<text x=\"\(Self.n(p))\" y=\"\(Self.n(bottom + 16))\" text-anchor=\"middle\">\(Self.escape(Self.short(t)))</text>\n"
            }
            let unpacedX = left + plotWidth - 28
            if hasUnpaced {
                let sep = Self.n(left + plotWidth - 56)
                out += "<line x1=\"\(sep)\" y1=\"\(Self.n(top))\" x2=\"\(sep)\" y2=\"\(Self.n(bottom))\" stroke=\"#999\" stroke-dasharray=\"3 3\"/>\n"
                out += "<text x=\"\(Self.n(unpacedX))\" y=\"\(Self.n(bottom + 16))\" text-anchor=\"middle\">unpaced</text>\n"
            }
            for t in y.ticks {
                let p = y.position(t)
                out += "<line x1=\"\(Self.n(left))\" y1=\"\(Self.n(p))\" x2=\"\(Self.n(left + plotWidth))\" y2=\"\(Self.n(p))\" stroke=\"#e4e4e4\"/>\n"
                out += "<text x=\"\(Self.n(left - 6))\" y=\"\(Self.n(p + 4))\" text-anchor=\"end\">\(Self.escape(yFormat(t)))</text>\n"
            }
            out += "<rect x=\"\(Self.n(left))\" y=\"\(Self.n(top))\" width=\"\(Self.n(plotWidth))\" height=\"\(Self.n(plotHeight))\" fill=\"none\" stroke=\"#333\"/>\n"
            out += "<text class=\"axis-label\" x=\"\(Self.n(left + plotWidth / 2))\" y=\"\(Self.n(bottom + 36))\" text-anchor=\"middle\">offered readings/s (log)</text>\n"
            let ly = top + plotHeight / 2
            out += "<text class=\"axis-label\" x=\"\(Self.n(left - 56))\" y=\"\(Self.n(ly))\" text-anchor=\"middle\" transform=\"rotate(-90 \(Self.n(left - 56)) \(Self.n(ly)))\">\(Self.escape(yLabel))</text>\n"
            out += extra
            for (k, config) in configs.enumerated() {
                let colour = Self.colours[k % Self.colours.count]
                let mine = steps.filter { $0.configuration == config }
                let paced = mine.filter { $0.offered != nil }
                out += "<g class=\"series\" data-panel=\"\(id)\" data-configuration=\"\(Self.escape(config))\" stroke=\"\(colour)\" fill=\"\(colour)\">\n"
                let points = paced.map { "\(Self.n(x.position($0.offered!))),\(Self.n(y.position(value($0))))" }
                if points.count > 1 {
                    out += "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke-width=\"2\"/>\n"
                }
                for s in mine {
                    // Unpaced runs side by side, so equal figures do not hide each other.
                    let cx = Self.n(s.offered.map { x.position($0) } ?? unpacedX + (Double(k) - Double(configs.count - 1) / 2) * 7)
                    let cy = Self.n(y.position(value(s)))
                    let what = s.offered.map { "offered \(Self.grouped($0))/s" } ?? "unpaced, sent \(Self.grouped(s.sent))/s"
                    let tip = "\(config), \(what): stored \(Self.grouped(s.stored))/s, p99 \(Self.fixed(s.p99, 2)) ms"
                    if s.offered == nil {
                        out += "<circle cx=\"\(cx)\" cy=\"\(cy)\" r=\"5\" fill=\"white\" stroke-width=\"2\"><title>\(Self.escape(tip))</title></circle>\n"
                    } else {
                        out += "<circle cx=\"\(cx)\" cy=\"\(cy)\" r=\"3.5\"><title>\(Self.escape(tip))</title></circle>\n"
                    }
                }
                out += "</g>\n"
            }
            out += "</g>\n"
        }

        // Left: stored against offered, with stored = offered and the ceilings.
        let tx = LogAxis(lo: xlo, hi: xhi, from: lefts[0], to: lefts[0] + pacedWidth)
        let ty = LogAxis(lo: slo, hi: shi, from: top + plotHeight, to: top)
        var guides = ""
        let d0 = max(xlo, slo)
        let d1 = min(xhi, shi)
        if d1 > d0 {
            guides += "<line class=\"ideal\" x1=\"\(Self.n(tx.position(d0)))\" y1=\"\(Self.n(ty.position(d0)))\" x2=\"\(Self.n(tx.position(d1)))\" y2=\"\(Self.n(ty.position(d1)))\" stroke=\"#888\" stroke-dasharray=\"5 4\"/>\n"
            guides += "<text x=\"\(Self.n(tx.position(d1) - 4))\" y=\"\(Self.n(ty.position(d1) + 14))\" text-anchor=\"end\" fill=\"#666\">stored = offered</text>\n"
        }
        for c in ceilings {
            let y = Self.n(ty.position(c.rate))
            guides += "<line class=\"ceiling\" x1=\"\(Self.n(lefts[0]))\" y1=\"\(y)\" x2=\"\(Self.n(lefts[0] + plotWidth))\" y2=\"\(y)\" stroke=\"#444\" stroke-dasharray=\"2 3\"/>\n"
            guides += "<text x=\"\(Self.n(lefts[0] + 4))\" y=\"\(Self.n(ty.position(c.rate) - 4))\" fill=\"#444\">\(Self.escape("ceiling, \(c.label): \(Self.short(c.rate))/s"))</text>\n"
        }
        panel(
            id: "throughput", left: lefts[0], heading: "stored vs offered", yLabel: "stored readings/s (log)", x: tx, y: ty,
            yFormat: Self.short, extra: guides, value: \.stored)

        // Right: p99 latency against offered.
        let lx = LogAxis(lo: xlo, hi: xhi, from: lefts[1], to: lefts[1] + pacedWidth)
        let lyAxis = LogAxis(lo: llo, hi: lhi, from: top + plotHeight, to: top)
        panel(
            id: "latency", left: lefts[1], heading: "p99 publish-to-stored", yLabel: "p99 latency, ms (log)", x: lx, y: lyAxis,
            yFormat: { $0 < 1 ? String(format: "%g", $0) : Self.short($0) }, extra: "", value: \.p99)

        // Legend, under both panels.
        var lx0 = lefts[0]
        let legendY = top + plotHeight + 62
        for (k, config) in configs.enumerated() {
            let colour = Self.colours[k % Self.colours.count]
            out += "<g class=\"legend\"><line x1=\"\(Self.n(lx0))\" y1=\"\(Self.n(legendY))\" x2=\"\(Self.n(lx0 + 22))\" y2=\"\(Self.n(legendY))\" stroke=\"\(colour)\" stroke-width=\"3\"/>"
            out += "<text x=\"\(Self.n(lx0 + 28))\" y=\"\(Self.n(legendY + 4))\">\(Self.escape(config))</text></g>\n"
            lx0 += 150
        }
        out += "<g class=\"legend\"><circle cx=\"\(Self.n(lx0 + 8))\" cy=\"\(Self.n(legendY))\" r=\"5\" fill=\"white\" stroke=\"#333\" stroke-width=\"2\"/>"
        out += "<text x=\"\(Self.n(lx0 + 20))\" y=\"\(Self.n(legendY + 4))\">unpaced: as fast as the publisher can</text></g>\n"
        out += "</svg>\n"
        return out
    }
}
