import ArgumentParser
import Foundation
import VigilCore
import VigilStorage

extension VigilCommand {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the config and the rules without touching the network; every mistake as file:line:column.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "Show which rules and thresholds apply to this series (network/site/device/metric): those in force now, and the next change.")
        var series: String?
        @Option(help: "With --payload: what a message on this topic would become.")
        var topic: String?
        @Option(help: "The message's payload for --topic; - reads it from standard input. Exit 1 if it would be rejected.")
        var payload: String?
        @Option(help: "With --series: the time to show the thresholds at instead of now (RFC 3339, or a date).")
        var at: String?

        func validate() throws {
            if let s = series, SeriesKey(path: s) == nil {
                throw ValidationError("--series must be network/site/device/metric with names of A-Z a-z 0-9 _ . -")
            }
            if (topic == nil) != (payload == nil) { throw ValidationError("--topic and --payload go together") }
            if let a = at, Timestamp.parseUserTime(a) == nil {
                throw ValidationError("--at must be an RFC 3339 time such as 2031-01-01T00:00:00+08:00, or a date")
            }
        }

        func run() async throws {
            let settings = try options.loadSettings()
            let config = settings.config
            if let path = series, let key = SeriesKey(path: path) {
                let now = at.flatMap { Timestamp.parseUserTime($0) } ?? .now()
                print(RuleDescription.forSeries(key, rules: settings.rules, zone: config.timezone, at: now))
                return
            }
            if let topic, let payload {
                let bytes = payload == "-" ? Array(FileHandle.standardInput.readDataToEndOfFile()) : Array(payload.utf8)
                let (text, stored) = MessageCheck.describe(
                    topic: topic, payload: bytes, config: config, rules: settings.rules, now: Timestamp.now())
                print(text)
                if !stored { throw ExitCode(1) }
                return
            }
            print(
                "\(options.path): ok: gateway \(config.gatewayID), \(config.subscriptions.count) subscription(s), \(settings.rules.count) rule(s) from \(RuleFiles.files(in: config.rulesDir).count) file(s) in \(config.rulesDir), state in \(config.stateDir)"
            )
            // A port in use or a host that does not resolve now is a warning: the unit runs this
            // check before every start, and ingest must start anyway (the listener keeps trying).
            if let listen = config.httpListen, case .success(let address) = ListenAddress.parse(listen) {
                let place = YAMLLocation.of(["http", "listen"], in: options.path)
                for w in address.availability() { printWarning("\(place): warning: http.listen \(w)") }
                if !address.isLoopback && config.httpTokenFile == nil {
                    printWarning(
                        "\(place): warning: http.listen \(address) is reachable from other machines and http.token_file is not set: anyone on that network can read the page (/) and /page.json"
                    )
                }
            }
            // A short token is guessed: at 16 bytes and more, not by trying.
            if let file = config.httpTokenFile, let token = try? Secrets.read(file), !token.isEmpty, token.utf8.count < 16 {
                let place = YAMLLocation.of(["http", "token_file"], in: options.path)
                printWarning(
                    "\(place): warning: http.token_file '\(file)' holds a token of \(token.utf8.count) bytes: use at least 16 (e.g. openssl rand -hex 16)")
            }
        }
    }
}

/// What `vigil check --series` prints: each rule that applies, overrides folded in, with
/// the thresholds in force at `now` and, when they change with the local time, the next change.
enum RuleDescription {
    static func forSeries(_ key: SeriesKey, rules: [Rule], zone: LocalTimeZone = .shanghai, at now: Timestamp = .now()) -> String {
        let matching = rules.filter { $0.match.matches(levels: key.levels) }
        guard !matching.isEmpty else { return "\(key.path): no rule applies" }
        var lines = ["\(key.path): \(matching.count) rule(s), at \(zone.describe(now)) (\(zone.name))"]
        for rule in matching {
            var head = "- \(rule.id) (\(rule.file):\(rule.line))"
            if let o = rule.override(for: key) { head += ", with override \(o.match.text)" }
            lines.append(head)
            if !rule.description.isEmpty { lines.append("    \(rule.description)") }
            switch rule.resolved(for: key) {
            case .threshold(let s):
                lines += threshold(s, zone: rule.zone, now: now)
            case .stale(let after, let level):
                lines.append("    \(level) when silent for \(after)")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func threshold(_ s: ThresholdSpec, zone: LocalTimeZone, now: Timestamp) -> [String] {
        var lines: [String] = []
        let window: String
        switch (s.align, s.window) {
        case (.calendar, .days(1)): window = " over each local day (judged at local midnight)"
        case (.calendar, .hours(1)): window = " over each clock hour (judged when it ends)"
        case (.calendar, let w): window = " over calendar windows of \(w) from local midnight (judged as each ends)"
        case (.sliding, let w):
            // Every level with a window of its own: each says its window.
            let all = (s.schedule?.allThresholds ?? [s.thresholds]).flatMap(\.levels).allSatisfy { s.levelWindows[$0.0] != nil }
            window = w.micros == 0 || (all && !s.levelWindows.isEmpty) ? "" : " over \(w)"
        }
        func levels(_ t: Thresholds?) -> String {
            guard let t, !t.isEmpty else { return "off (no thresholds at this time)" }
            return t.levels.map { l, v in
                let own = s.levelWindows[l].map { " over \($0)" } ?? ""
                return "\(l) \(s.op.rawValue) \(Rule.formatNumber(v))\(own)"
            }.joined(separator: ", ")
        }
        func when(_ f: ThresholdSchedule.InForce, _ schedule: ThresholdSchedule) -> String {
            var parts: [String] = []
            if let p = f.period, let q = schedule.phases.flatMap(\.periods).first(where: { $0.name == p }) { parts.append("\(p), \(q.hours)") }
            if let d = f.phaseFrom { parts.append("effective from \(d)") }
            return parts.isEmpty ? "" : " (\(parts.joined(separator: "; ")))"
        }
        if let schedule = s.schedule {
            lines.append("    \(s.stat.rawValue)\(window)")
            let f = s.inForce(at: now, zone: zone)
            lines.append("    now\(when(f, schedule)): \(levels(f.thresholds))")
            if f.until != .max {
                let at = Timestamp(seconds: zone.utcSeconds(forLocal: f.until))
                let g = schedule.inForce(atLocal: f.until)
                lines.append("    next, at \(zone.describe(at))\(when(g, schedule)): \(levels(g.thresholds))")
            } else {
                lines.append("    next: no change ahead")
            }
        } else {
            lines.append("    \(s.stat.rawValue)\(window): \(levels(s.thresholds))")
        }
        var timing: [String] = []
        if let n = s.nominal { timing.append("nominal \(Rule.formatNumber(n))") }
        if let c = s.coverage {
            timing.append("min_coverage \(c.minimum)" + (c.perHour.map { " (an hour counts with \($0) of data)" } ?? ""))
        }
        if s.hysteresis > 0 { timing.append("hysteresis \(Rule.formatNumber(s.hysteresis))") }
        if s.holdFor.micros > 0 { timing.append("for \(s.holdFor)") }
        if s.clearFor.micros > 0 { timing.append("clear_for \(s.clearFor)") }
        if !timing.isEmpty { lines.append("    " + timing.joined(separator: ", ")) }
        return lines
    }
}
