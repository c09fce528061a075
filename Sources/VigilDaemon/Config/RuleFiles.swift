import Foundation
import VigilCore
import Yams

/// Rule files: every `*.yaml` in `rules_dir`, in name order, each with a `rules:` list.
public enum RuleFiles {
    /// The rule files of a directory, sorted by name.
    public static func files(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { directory + "/" + $0 }
    }

    /// Loads and validates every rule file of `directory`; `zone` is the local time their
    /// periods, calendar windows and effective dates are read in (the config's `timezone`).
    /// - Throws: `ConfigError` with every mistake as file:line:column.
    public static func load(directory: String, zone: LocalTimeZone = .shanghai) throws(ConfigError) -> [Rule] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw ConfigError([Diagnostic(file: directory, line: 1, column: 1, message: "rules_dir does not exist or is not a directory")])
        }
        return try load(files: files(in: directory), zone: zone)
    }

    /// Loads and validates rule files; ids must be unique across all of them.
    public static func load(files: [String], zone: LocalTimeZone = .shanghai) throws(ConfigError) -> [Rule] {
        var diagnostics: [Diagnostic] = []
        var rules: [Rule] = []
        var seen: [String: (String, Int)] = [:]
        for file in files {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "cannot read the file: \(error.localizedDescription)"))
                continue
            }
            var r = YAMLReader(file: file)
            let parsed = parse(text, reader: &r)
            diagnostics += r.diagnostics
            // Every rule with a readable id reserves it, even one with mistakes.
            for (rule, id, idNode, line) in parsed {
                if let (f, l) = seen[id] {
                    let m = idNode.mark
                    diagnostics.append(
                        Diagnostic(
                            file: file, line: m?.line ?? 1, column: m?.column ?? 1,
                            message: "rule id '\(id)' is already used at \(f):\(l)"))
                    continue
                }
                seen[id] = (file, line)
                if var rule {
                    rule.zone = zone
                    rules.append(rule)
                }
            }
        }
        if !diagnostics.isEmpty { throw ConfigError(diagnostics) }
        return rules
    }

    static let ruleKeys = [
        "id", "description", "match", "stat", "window", "align", "min_coverage", "min_hour_coverage", "op", "nominal", "levels",
        "periods", "effective", "hysteresis", "for", "clear_for", "message", "resolved_message", "overrides", "stale", "level",
    ]
    static let overrideKeys = [
        "match", "nominal", "levels", "periods", "effective", "hysteresis", "for", "clear_for", "stale", "level",
    ]
    /// The keys of threshold rules, which a stale rule may not have.
    static let thresholdKeys = [
        "stat", "window", "align", "min_coverage", "min_hour_coverage", "op", "nominal", "levels", "periods", "effective",
        "hysteresis", "for", "clear_for",
    ]

    /// Parses one file's rules; mistakes go to the reader. Each entry: the rule (nil when it
    /// has mistakes), its id, where the id is written and the rule's line.
    static func parse(_ text: String, reader r: inout YAMLReader) -> [(Rule?, String, Node, Int)] {
        guard let root = r.load(text) else { return [] }
        if case .scalar(let s) = root, s.string.isEmpty { return [] }
        guard let top = r.mapping(root, "a rule file", allowed: ["rules"]) else { return [] }
        guard let rulesNode = top["rules"] else {
            r.error(root, "a rule file has a `rules:` list")
            return []
        }
        // `rules:` with nothing after it: a file with no rules yet.
        if case .scalar(let s) = rulesNode.value, ["", "null", "~"].contains(s.string) { return [] }
        guard let list = r.sequence(rulesNode.value, "rules") else { return [] }
        var out: [(Rule?, String, Node, Int)] = []
        for item in list {
            if let parsed = parseRule(item, reader: &r) { out.append(parsed) }
        }
        return out
    }

    static func parseRule(_ node: Node, reader r: inout YAMLReader) -> (Rule?, String, Node, Int)? {
        guard let m = r.mapping(node, "a rule", allowed: ruleKeys) else { return nil }
        let errorsBefore = r.diagnostics.count
        guard let idNode = m["id"] else {
            r.error(node, "a rule needs an id")
            return nil
        }
        guard let id = r.name(idNode.value, "id") else { return nil }
        let what = "rule \(id)"
        guard let matchNode = m["match"] else {
            r.error(node, "\(what) needs match: the series it watches, as an MQTT filter such as water/+/+/water_level")
            return nil
        }
        let match = filter(matchNode.value, "\(what): match", reader: &r)
        var description = ""
        if let d = m["description"], let s = r.string(d.value, "\(what): description") { description = s }
        var messages: [String: String] = [:]
        for key in ["message", "resolved_message"] {
            if let msgNode = m[key], let s = r.string(msgNode.value, "\(what): \(key)") {
                if let bad = unknownPlaceholder(s) {
                    r.error(msgNode.value, "\(what): \(key) has unknown placeholder {\(bad)}; known: \(Rule.placeholders.sorted().map { "{\($0)}" }.joined(separator: " "))")
                }
                messages[key] = s
            }
        }
        let kind: Rule.Kind?
        var raw: RawSchedule?
        if let staleNode = m["stale"] {
            for key in thresholdKeys where m[key] != nil {
                r.error(m[key]!.key, "\(what): a stale rule watches silence; '\(key)' belongs to threshold rules")
            }
            let after = r.duration(staleNode.value, "\(what): stale")
            if let a = after, a.micros <= 0 { r.error(staleNode.value, "\(what): stale must be longer than 0") }
            var level = AlertLevel.yellow
            if let l = m["level"], let lv = alertLevel(l.value, "\(what): level", reader: &r) { level = lv }
            kind = after.map { .stale($0, level) }
        } else {
            if let l = m["level"] {
                r.error(l.key, "\(what): level goes with stale; threshold rules give levels: { yellow: ..., red: ... }")
            }
            let parsed = thresholdSpec(m, what, node: node, reader: &r)
            raw = parsed?.1
            kind = parsed.map { .threshold($0.0) }
        }
        var overrides: [RuleOverride] = []
        if let o = m["overrides"], let list = r.sequence(o.value, "\(what): overrides") {
            for item in list {
                guard let om = r.mapping(item, "\(what): an override", allowed: overrideKeys) else { continue }
                guard let mn = om["match"], let f = filter(mn.value, "\(what): override match", reader: &r) else {
                    if om["match"] == nil { r.error(item, "\(what): an override needs match") }
                    continue
                }
                var ov = RuleOverride(match: f)
                if let n = om["nominal"] { ov.nominal = r.double(n.value, "\(what): override nominal") }
                if case .threshold(let spec) = kind {
                    thresholds(of: &ov, om, rule: spec, raw: raw, what, reader: &r)
                }
                if let h = om["hysteresis"] { ov.hysteresis = nonNegative(h.value, "\(what): override hysteresis", reader: &r) }
                if let x = om["for"] { ov.holdFor = r.duration(x.value, "\(what): override for") }
                if let x = om["clear_for"] { ov.clearFor = r.duration(x.value, "\(what): override clear_for") }
                if let x = om["stale"] { ov.stale = r.duration(x.value, "\(what): override stale") }
                if let x = om["level"] { ov.level = alertLevel(x.value, "\(what): override level", reader: &r) }
                switch kind {
                case .threshold:
                    if ov.stale != nil || ov.level != nil {
                        r.error(item, "\(what): stale and level in an override belong to stale rules")
                    }
                case .stale:
                    let thresholdKeys = ["nominal", "levels", "periods", "effective", "hysteresis", "for", "clear_for"]
                    if thresholdKeys.contains(where: { om[$0] != nil }) {
                        r.error(item, "\(what): a stale rule's override may set stale and level only")
                    }
                case nil: break
                }
                overrides.append(ov)
            }
        }
        let line = node.mark?.line ?? 0
        guard r.diagnostics.count == errorsBefore, let kind, let match else { return (nil, id, idNode.value, line) }
        let rule = Rule(
            id: id, description: description, match: match, kind: kind, message: messages["message"],
            resolvedMessage: messages["resolved_message"], overrides: overrides,
            file: r.file, line: line)
        return (rule, id, idNode.value, line)
    }

    static func thresholdSpec(
        _ m: [String: (key: Node, value: Node)], _ what: String, node: Node, reader r: inout YAMLReader
    ) -> (ThresholdSpec, RawSchedule)? {
        var stat = RuleStat.last
        if let s = m["stat"], let st = r.choice(s.value, "\(what): stat", RuleStat.self) { stat = st }
        var window = TimeSpan.zero
        if let w = m["window"], let d = r.duration(w.value, "\(what): window") { window = d }
        guard let opNode = m["op"] else {
            r.error(node, "\(what) needs op: one of > >= < <= (or stale: for a silence rule)")
            return nil
        }
        guard let op = r.choice(opNode.value, "\(what): op", RuleOp.self) else { return nil }
        guard m["levels"] != nil || m["periods"] != nil else {
            r.error(node, "\(what) needs levels, such as { yellow: 4.5, orange: 5.2, red: 6.0 }, or periods by local hours")
            return nil
        }
        var nominal: Double?
        if let n = m["nominal"] { nominal = r.double(n.value, "\(what): nominal") }
        guard
            let raw = rawSchedule(
                levels: m["levels"]?.value, periods: m["periods"]?.value, effective: m["effective"]?.value, what, reader: &r),
            let (t, schedule, windows) = materialize(raw, nominal: nominal, op: op, what, reader: &r)
        else { return nil }
        // Every level with a window of its own: the rule's window is the longest of them.
        let levelsUsed = Set(raw.phases.flatMap { ph in ([ph.thresholds].compactMap { $0 } + ph.periods.map(\.thresholds)).flatMap(\.levels) }.map(\.level))
        if m["window"] == nil, !windows.isEmpty, levelsUsed.allSatisfy({ windows[$0] != nil }) { window = windows.values.max()! }
        if stat.needsWindow && window.micros <= 0 {
            r.error(m["stat"]?.value ?? node, "\(what): stat \(stat.rawValue) needs a window longer than 0s")
        }
        var spec = ThresholdSpec(
            stat: stat, window: window, op: op, thresholds: t, schedule: schedule, levelWindows: windows, nominal: nominal)
        windowKeys(m, &spec, what, reader: &r)
        if let h = m["hysteresis"], let v = nonNegative(h.value, "\(what): hysteresis", reader: &r) { spec.hysteresis = v }
        if let f = m["for"], let d = r.duration(f.value, "\(what): for") { spec.holdFor = d }
        if let c = m["clear_for"], let d = r.duration(c.value, "\(what): clear_for") { spec.clearFor = d }
        return (spec, raw)
    }

    /// An override's thresholds: its own levels, periods and effective dates (which replace
    /// the rule's together), or the rule's counted from the override's `nominal`.
    static func thresholds(
        of ov: inout RuleOverride, _ om: [String: (key: Node, value: Node)], rule spec: ThresholdSpec, raw: RawSchedule?,
        _ what: String, reader r: inout YAMLReader
    ) {
        let w = "\(what): override \(ov.match.text)"
        let own = om["levels"] != nil || om["periods"] != nil || om["effective"] != nil
        let schedule: RawSchedule?
        if own {
            schedule = rawSchedule(levels: om["levels"]?.value, periods: om["periods"]?.value, effective: om["effective"]?.value, w, reader: &r)
        } else if ov.nominal != nil {
            schedule = raw
        } else {
            return
        }
        // The override's levels keep the rule's windows (a different one is a mistake).
        guard let schedule,
            let (t, s, _) = materialize(
                schedule, nominal: ov.nominal ?? spec.nominal, op: spec.op, inherited: spec.levelWindows, w, reader: &r)
        else { return }
        ov.thresholds = t
        ov.schedule = s
    }

    static func thresholds(_ node: Node, _ what: String, reader r: inout YAMLReader) -> Thresholds? {
        guard let lm = r.mapping(node, what, allowed: AlertLevel.allCases.map(\.name)) else { return nil }
        var dict: [AlertLevel: Double] = [:]
        for (name, pair) in lm {
            guard let level = AlertLevel(name: name), let v = r.double(pair.value, "\(what).\(name)") else { continue }
            dict[level] = v
        }
        if dict.isEmpty {
            r.error(node, "\(what) needs at least one of blue, yellow, orange, red")
            return nil
        }
        return Thresholds(dict)
    }

    static func alertLevel(_ node: Node, _ what: String, reader r: inout YAMLReader) -> AlertLevel? {
        guard let s = r.string(node, what) else { return nil }
        guard let l = AlertLevel(name: s) else {
            r.error(node, "\(what) must be one of blue, yellow, orange, red, not '\(s)'")
            return nil
        }
        return l
    }

    static func nonNegative(_ node: Node, _ what: String, reader r: inout YAMLReader) -> Double? {
        guard let v = r.double(node, what) else { return nil }
        guard v >= 0 else {
            r.error(node, "\(what) must be 0 or more")
            return nil
        }
        return v
    }

    static func filter(_ node: Node, _ what: String, reader r: inout YAMLReader) -> TopicFilter? {
        guard let s = r.string(node, what) else { return nil }
        switch TopicFilter.parse(s) {
        case .failure(let e):
            r.error(node, "\(what): \(e)")
            return nil
        case .success(let f):
            // A series path has four levels: network/site/device/metric.
            let fixed = f.levels.filter { $0 != .multi }.count
            if fixed > 4 || (!f.levels.contains(.multi) && fixed != 4) {
                r.error(node, "\(what): '\(s)' can never match a series, which is network/site/device/metric")
                return nil
            }
            return f
        }
    }

    static func unknownPlaceholder(_ template: String) -> String? {
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            let name = String(rest[rest.index(after: open)..<close])
            if !Rule.placeholders.contains(name) { return name }
            rest = rest[rest.index(after: close)...]
        }
        return nil
    }
}
