import Foundation
import VigilCore
import Yams

/// What `vigil check --topic T --payload P` prints: what one message would become, through
/// the decoder the daemon runs, without a daemon or a broker (Telegraf's `--test`).
enum MessageCheck {
    /// - Returns: the text, and whether the message would be stored (false: rejected).
    static func describe(topic: String, payload: [UInt8], config: VigilConfig, rules: [Rule], now: Timestamp) -> (
        text: String, stored: Bool
    ) {
        var lines = ["topic \(topic), \(payload.count) byte(s) of payload"]
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false)
        if let (i, sub) = config.subscriptions.enumerated().first(where: {
            $0.element.filter.matches(levels: levels) && $0.element.layout.extract(levels: levels) != nil
        }) {
            lines.append(
                sub.format == .hj212
                    ? "subscription \(i + 1) of \(config.subscriptions.count): \(sub.filter.text) (format hj212: the frame's MN names the station)"
                    : "subscription \(i + 1) of \(config.subscriptions.count): \(sub.filter.text) (network \(sub.network), layout \(sub.layout.text), format \(sub.format.rawValue))"
            )
        }
        var decoder = MessageDecoder(
            subscriptions: config.subscriptions, limits: config.limits, hj212: config.hj212.map { $0.decoder(zone: config.timezone) })
        var readings: [Reading] = []
        // `tcp:` (or `tcp:PEER`): as a frame from the HJ 212 TCP listener.
        let topicBytes = topic.hasPrefix("tcp:") ? HJ212Topic.topic(connection: 0) : Array(topic.utf8)
        if topic.hasPrefix("tcp:") { lines.append("an HJ 212 frame from the TCP listener (hj212.listen)") }
        let rejected: RejectReason? = topicBytes.withUnsafeBytes { t in
            payload.withUnsafeBytes { p in
                do throws(RejectReason) {
                    try decoder.decode(topic: t, payload: p, receivedAt: now, into: &readings)
                    return nil
                } catch {
                    return error
                }
            }
        }
        if let rejected {
            lines.append("rejected: \(rejected.code.rawValue): \(rejected.detail)")
            return (lines.joined(separator: "\n"), false)
        }
        if let hj = decoder.lastHJ212 {
            let f = hj.frame
            lines.append(
                "HJ 212 frame: CN=\(f.cn) ST=\(f.st) MN=\(f.mn) QN=\(f.qn ?? "-") -> station \(hj.station.network)/\(hj.station.site)/\(hj.station.device)"
            )
            if f.wantsAnswer {
                lines.append(
                    "answer after the commit: \(String(decoding: HJ212.answer(cn: 9014, qn: f.qn ?? "", pw: f.pw, mn: f.mn).dropLast(2), as: UTF8.self))")
            }
            for (flag, n) in hj.flagged.sorted(by: { $0.key.label < $1.key.label }) {
                lines.append("\(n) value(s) flagged \(flag.label): not readings (never judged or aggregated), counted in vigil_hj212_flagged_values_total")
            }
            if !hj.unknownCodes.isEmpty {
                lines.append("hj212_unknown_code: \(hj.unknownCodes.joined(separator: ", ")) not in the code table (hj212.codes): stored under the code, no unit")
            }
        }
        lines.append("\(readings.count) reading(s):")
        for r in readings {
            let unit = r.unit.map { " \($0)" } ?? ""
            let time = r.timestampFromPayload ? "from the payload" : "the time of receipt"
            lines.append("  \(r.series.path) = \(Rule.formatNumber(r.value))\(unit) at \(r.timestamp.rfc3339) (\(time))")
            let applying = rules.filter { $0.match.matches(levels: r.series.levels) }.map(\.id)
            lines.append("    rules: \(applying.isEmpty ? "none applies" : applying.joined(separator: ", "))")
        }
        if decoder.skippedRecords > 0 { lines.append("\(decoder.skippedRecords) SenML record(s) without a number skipped") }
        return (lines.joined(separator: "\n"), true)
    }
}

/// Where a key sits in a YAML file, as `file:line:column`, for a warning about its value.
enum YAMLLocation {
    static func of(_ path: [String], in file: String) -> String {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8), var node = try? Yams.compose(yaml: text) else {
            return file
        }
        for key in path {
            guard let next = node[key] else { return file }
            node = next
        }
        guard let mark = node.mark else { return file }
        return "\(file):\(mark.line):\(mark.column)"
    }
}
