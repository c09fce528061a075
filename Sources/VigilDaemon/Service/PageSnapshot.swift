import Foundation
import VigilCore

/// One build: its data, and its JSON in pieces encoded once for every request it serves:
/// everything but the series, and each series on its own, so that a filtered request only
/// joins the pieces that match (no encoding per request).
struct PageSnapshot: Sendable {
    /// At most this many series go out in one answer: those with an active alert and the
    /// stale ones first, then the rest in path order; `series_more` counts those left out
    /// (`?series=TEXT` finds them).
    static let seriesShown = 500

    struct Piece: Sendable {
        /// Lower case, for the filter.
        var path: String
        /// With an alert active or stale: sent first when the answer is capped.
        var urgent: Bool
        var json: [UInt8]
    }

    var data: PageData
    /// The JSON object of everything but the series, without its closing brace.
    var head: [UInt8]
    var pieces: [Piece]
    /// The answer without a filter, joined once.
    var json: [UInt8] = []

    /// Encodes `data`. A value JSON cannot hold (a number that is not finite) never makes
    /// the answer empty: a series that cannot be encoded is left out, the rest is encoded
    /// with such numbers as strings, and `error` (and the log, through `log`) says so.
    init(_ data: PageData, log: (String) -> Void = { _ in }) {
        var data = data
        let strict = PageData.encoder(strict: true)
        var problems: [String] = []
        var pieces: [Piece] = []
        pieces.reserveCapacity(data.series.count)
        for s in data.series {
            do {
                pieces.append(Piece(path: s.path.lowercased(), urgent: s.alert != nil || s.stale, json: Array(try strict.encode(s))))
            } catch {
                problems.append("series \(s.path) left out: \(error)")
            }
        }
        if !problems.isEmpty {
            let text = problems.prefix(3).joined(separator: "; ") + (problems.count > 3 ? " (and \(problems.count - 3) more)" : "")
            data.error = [data.error, text].compactMap { $0 }.joined(separator: "; ")
        }
        var bytes: [UInt8]
        do {
            bytes = Array(try strict.encode(data))
        } catch {
            problems.append("\(error)")
            data.error = [data.error, "a value is not a number: \(error)"].compactMap { $0 }.joined(separator: "; ")
            bytes = Array((try? PageData.encoder(strict: false).encode(data)) ?? Data(Self.minimal(data).utf8))
        }
        if !problems.isEmpty { log("page: \(problems.joined(separator: "; "))") }
        // The object stays open: the series follow (`answer`).
        if bytes.last == UInt8(ascii: "}") { bytes.removeLast() }
        self.data = data
        self.head = bytes
        self.pieces = pieces
        self.json = answer(filter: "")
    }

    /// The answer when nothing at all could be encoded: who, when and why.
    static func minimal(_ d: PageData) -> String {
        "{\"gateway\":\(JSONText.string(d.gateway)),\"generated_at\":\(JSONText.string(d.generatedAt)),\"error\":\(JSONText.string(d.error ?? "cannot encode the page"))}"
    }

    /// The JSON with the series whose path contains `filter` (any case; all when empty),
    /// at most `seriesShown` of them (urgent first), in path order; `series_more` counts
    /// those that matched and were left out, `series_total` all that matched.
    func answer(filter: String) -> [UInt8] {
        let needle = filter.lowercased()
        var urgent: [Int] = []
        var rest: [Int] = []
        for (i, p) in pieces.enumerated() where needle.isEmpty || p.path.contains(needle) {
            if p.urgent { urgent.append(i) } else { rest.append(i) }
        }
        let total = urgent.count + rest.count
        var chosen = Array(urgent.prefix(Self.seriesShown))
        chosen += rest.prefix(Self.seriesShown - chosen.count)
        chosen.sort()
        var out = head
        out.reserveCapacity(head.count + chosen.reduce(64) { $0 + pieces[$1].json.count + 1 })
        // The head always has keys (gateway, generated_at...): the series follow a comma.
        out += Array(",\"series\":[".utf8)
        for (n, i) in chosen.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            out += pieces[i].json
        }
        out += Array("],\"series_more\":\(total - chosen.count),\"series_total\":\(total)}".utf8)
        return out
    }
}
