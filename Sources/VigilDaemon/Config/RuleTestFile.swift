import ArgumentParser
import Foundation
import VigilCore
import Yams

/// A rule unit test file, as `vigil test` reads it:
///
/// ```yaml
/// rule_files: [../rules.d/water.yaml]      # relative to this file
/// timezone: Asia/Shanghai                   # local time of the rules (default Asia/Shanghai)
/// tests:
///   - name: the river rises past yellow, then falls back
///     start: 2026-06-01T21:30:00+08:00      # when the test's clock starts (RFC 3339)
///     tick: 1s                              # the clock's step (default 1s)
///     series:
///       water/station-07/gauge-1/water_level:
///         interval: 1m                      # between values (default 1m)
///         values: "4.0 4.6 4.7 _ 3.9 4.0+0.1x3"   # _ skips; a+bxn is a, a+b, ... (n more)
///       water/station-01/gauge-1/water_level:
///         readings: [{at: 0s, value: 4.0}, {at: 5m, value: 5.3}]
///     until: 30m                            # run the clock this far (default: the last input)
///     expect:
///       - {at: 1m, rule: river-level, series: water/station-07/gauge-1/water_level, state: raised, level: yellow}
/// ```
struct RuleTestFile {
    struct Input {
        var series: SeriesKey
        var at: TimeSpan
        var value: Double
        var unit: String?
    }

    struct Expected: Equatable, Comparable, CustomStringConvertible {
        var at: TimeSpan
        var rule: String
        var series: String
        var state: String
        var level: String
        var value: Double?
        var message: String?
        /// The local time of `at`, shown when the test has a `start`.
        var local: String?

        static func < (a: Expected, b: Expected) -> Bool {
            (a.at.micros, a.rule, a.series, a.state) < (b.at.micros, b.rule, b.series, b.state)
        }

        var description: String {
            var s = "at \(a(at))\(local.map { " (\($0))" } ?? "") \(rule) \(series) \(state) \(level)"
            if let v = value { s += " value \(Rule.formatNumber(v))" }
            if let m = message { s += " message \"\(m)\"" }
            return s
        }

        private func a(_ t: TimeSpan) -> String { t.description }
    }

    /// When a test's clock starts unless it says: 2026-01-01T00:00:00Z.
    static let defaultStart = Timestamp(seconds: 1_767_225_600)

    struct Case {
        var name: String
        /// The instant `at: 0s` stands for.
        var start: Timestamp
        /// Whether `start` was given (then times are also shown in local time).
        var startGiven: Bool
        var tick: TimeSpan
        var inputs: [Input]
        var until: TimeSpan
        var expected: [Expected]
    }

    var path: String
    var ruleFiles: [String]
    /// The local time the rules are read in (`timezone:`, default Asia/Shanghai).
    var zone: LocalTimeZone
    var cases: [Case]

    /// Parses a test file; mistakes as file:line:column.
    static func load(_ path: String) throws(ConfigError) -> RuleTestFile {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError([Diagnostic(file: path, line: 1, column: 1, message: "cannot read the file: \(error.localizedDescription)")])
        }
        var r = YAMLReader(file: path)
        guard let root = r.load(text), let m = r.mapping(root, "a rule test file", allowed: ["rule_files", "timezone", "tests"]) else {
            throw ConfigError(r.diagnostics.isEmpty ? [Diagnostic(file: path, line: 1, column: 1, message: "the file is empty")] : r.diagnostics)
        }
        let base = (path as NSString).deletingLastPathComponent
        var files: [String] = []
        if let rf = m["rule_files"], let list = r.sequence(rf.value, "rule_files") {
            for n in list {
                if let f = r.string(n, "rule_files") { files.append(f.hasPrefix("/") ? f : (base.isEmpty ? f : base + "/" + f)) }
            }
        } else {
            r.error(root, "a rule test file names its rule_files")
        }
        var zone = LocalTimeZone.shanghai
        if let z = m["timezone"], let name = r.string(z.value, "timezone") {
            switch TimeZones.load(name) {
            case .success(let tz): zone = tz
            case .failure(let why): r.error(z.value, "timezone: \(why)")
            }
        }
        var cases: [Case] = []
        if let t = m["tests"], let list = r.sequence(t.value, "tests") {
            for item in list {
                guard let tm = r.mapping(item, "a test", allowed: ["name", "start", "tick", "series", "until", "expect"]) else { continue }
                var c = Case(
                    name: "test \(cases.count + 1)", start: defaultStart, startGiven: false, tick: .seconds(1), inputs: [], until: .zero,
                    expected: [])
                if let n = tm["name"], let s = r.string(n.value, "name") { c.name = s }
                if let st = tm["start"], let s = r.string(st.value, "start") {
                    if let t = Timestamp.parseRFC3339(s) {
                        c.start = t
                        c.startGiven = true
                    } else {
                        r.error(st.value, "start must be an RFC 3339 time with its offset, such as 2026-06-01T21:30:00+08:00, not '\(s)'")
                    }
                }
                if let n = tm["tick"], let d = r.duration(n.value, "tick") {
                    if d.micros <= 0 { r.error(n.value, "tick must be longer than 0") } else { c.tick = d }
                }
                if let sn = tm["series"], case .mapping(let sm) = sn.value {
                    for (k, v) in sm {
                        guard let path = k.string, let key = SeriesKey(path: path) else {
                            r.error(k, "a series is network/site/device/metric")
                            continue
                        }
                        c.inputs += inputs(key, v, start: c.start, reader: &r)
                    }
                } else {
                    r.error(item, "a test needs series: the input readings")
                }
                if let u = tm["until"], let d = time(u.value, "until", start: c.start, reader: &r) { c.until = d }
                let last = c.inputs.map(\.at).max() ?? .zero
                if c.until < last { c.until = last }
                if let e = tm["expect"] {
                    if case .scalar(let s) = e.value, s.string.isEmpty || s.string == "[]" {
                    } else if let list = r.sequence(e.value, "expect") {
                        for x in list {
                            guard let xm = r.mapping(x, "an expected transition", allowed: ["at", "rule", "series", "state", "level", "value", "message"]) else { continue }
                            guard let at = xm["at"].flatMap({ time($0.value, "at", start: c.start, reader: &r) }),
                                let rule = xm["rule"].flatMap({ r.string($0.value, "rule") }),
                                let series = xm["series"].flatMap({ r.string($0.value, "series") }),
                                let state = xm["state"].flatMap({ r.string($0.value, "state") }),
                                let level = xm["level"].flatMap({ r.string($0.value, "level") })
                            else {
                                r.error(x, "an expected transition has at, rule, series, state and level")
                                continue
                            }
                            if AlertTransition.State(rawValue: state) == nil {
                                r.error(xm["state"]!.value, "state is raised, escalated, deescalated or resolved")
                            }
                            var ex = Expected(at: at, rule: rule, series: series, state: state, level: level)
                            if let v = xm["value"] { ex.value = r.double(v.value, "value") }
                            if let msg = xm["message"] { ex.message = r.string(msg.value, "message") }
                            c.expected.append(ex)
                        }
                    }
                }
                cases.append(c)
            }
        } else {
            r.error(root, "a rule test file has a tests: list")
        }
        if !r.diagnostics.isEmpty { throw ConfigError(r.diagnostics) }
        return RuleTestFile(path: path, ruleFiles: files, zone: zone, cases: cases)
    }

    /// A time of a test: a span from its start (`90m`) or an RFC 3339 time (`2031-01-01T00:00:00+08:00`).
    static func time(_ node: Node, _ what: String, start: Timestamp, reader r: inout YAMLReader) -> TimeSpan? {
        guard let s = r.string(node, what) else { return nil }
        if let d = TimeSpan(parsing: s) { return d }
        if let t = Timestamp.parseRFC3339(s) {
            guard t >= start else {
                r.error(node, "\(what) \(s) is before the test's start")
                return nil
            }
            return TimeSpan(micros: t.micros - start.micros)
        }
        r.error(node, "\(what) must be a span from the test's start (30s, 5m, 2h) or an RFC 3339 time, not '\(s)'")
        return nil
    }

    static func inputs(_ key: SeriesKey, _ node: Node, start t0: Timestamp, reader r: inout YAMLReader) -> [Input] {
        guard let m = r.mapping(node, "series \(key.path)", allowed: ["interval", "start", "values", "readings", "unit"]) else { return [] }
        var unit: String?
        if let u = m["unit"] { unit = r.string(u.value, "unit") }
        var out: [Input] = []
        if let rs = m["readings"], let list = r.sequence(rs.value, "readings") {
            for item in list {
                guard let im = r.mapping(item, "a reading", allowed: ["at", "value"]),
                    let at = im["at"].flatMap({ time($0.value, "at", start: t0, reader: &r) }),
                    let v = im["value"].flatMap({ r.double($0.value, "value") })
                else {
                    r.error(item, "a reading is {at: 5m, value: 4.2}")
                    continue
                }
                out.append(Input(series: key, at: at, value: v, unit: unit))
            }
        }
        if let vs = m["values"] {
            var interval = TimeSpan.minutes(1)
            var start = TimeSpan.zero
            if let i = m["interval"], let d = r.duration(i.value, "interval") { interval = d }
            if let s = m["start"], let d = time(s.value, "start", start: t0, reader: &r) { start = d }
            var tokens: [String] = []
            switch vs.value {
            case .scalar(let s): tokens = s.string.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
            case .sequence(let seq): tokens = seq.compactMap { $0.string }
            default: r.error(vs.value, "values is a string such as \"4.0 4.6 _ 3.9\" or a list")
            }
            var k: Int64 = 0
            for tok in tokens {
                guard let values = expand(tok) else {
                    r.error(vs.value, "cannot read '\(tok)' in values (a number, _ to skip, or a+bxn)")
                    break
                }
                for v in values {
                    if let v { out.append(Input(series: key, at: TimeSpan(micros: start.micros + k * interval.micros), value: v, unit: unit)) }
                    k += 1
                }
            }
        }
        return out
    }

    /// `4.2` -> [4.2]; `_` -> [nil]; `1+0.5x3` -> [1, 1.5, 2, 2.5]; `10-2x2` -> [10, 8, 6].
    static func expand(_ token: String) -> [Double?]? {
        if token == "_" { return [nil] }
        if let v = Double(token), v.isFinite { return [v] }
        guard let x = token.lastIndex(of: "x"), let n = Int(token[token.index(after: x)...]), n >= 0 else { return nil }
        let body = token[..<x]
        guard let sign = body.dropFirst().lastIndex(where: { $0 == "+" || $0 == "-" }),
            let a = Double(body[..<sign]), let step = Double(body[body.index(after: sign)...])
        else { return nil }
        let d = body[sign] == "-" ? -step : step
        return (0...n).map { a + Double($0) * d }
    }

    /// Runs one case through the rule engine on a simulated clock.
    static func run(_ c: Case, rules: [Rule]) -> [Expected] {
        let t0 = c.start
        let engine = RuleEngine(rules: rules)
        var out: [AlertTransition] = []
        let inputs = c.inputs.sorted { $0.at < $1.at }
        var next = 0
        var clock: Int64 = 0
        while clock <= c.until.micros {
            while next < inputs.count, inputs[next].at.micros <= clock {
                let i = inputs[next]
                let t = t0.adding(i.at)
                engine.ingest(Reading(series: i.series, value: i.value, timestamp: t, unit: i.unit), now: t, into: &out)
                next += 1
            }
            engine.tick(now: t0.adding(TimeSpan(micros: clock)), into: &out)
            clock += c.tick.micros
        }
        return out.map {
            Expected(
                at: TimeSpan(micros: $0.at.micros - t0.micros), rule: $0.rule, series: $0.series.path, state: $0.state.rawValue,
                level: $0.level.name, value: $0.value, message: $0.message)
        }
    }

    /// The expected and actual transitions with their local times, for a test with a start.
    static func localized(_ list: [Expected], _ c: Case, zone: LocalTimeZone) -> [Expected] {
        guard c.startGiven else { return list }
        return list.map {
            var e = $0
            e.local = zone.describe(c.start.adding(e.at), seconds: c.start.adding(e.at).micros % 60_000_000 != 0)
            return e
        }
    }

    /// The differences between what was expected and what happened, empty when they agree.
    /// Values and messages are compared only where the test gives them; a value agrees to
    /// the four decimals messages show.
    static func diff(expected: [Expected], actual: [Expected]) -> [String] {
        var missing = expected.sorted()
        var extra: [Expected] = []
        for a in actual.sorted() {
            if let i = missing.firstIndex(where: {
                $0.at == a.at && $0.rule == a.rule && $0.series == a.series && $0.state == a.state && $0.level == a.level
                    && ($0.value.map { v in a.value.map { abs($0 - v) < 1e-9 || Rule.formatNumber($0) == Rule.formatNumber(v) } ?? false } ?? true)
                    && ($0.message.map { $0 == a.message } ?? true)
            }) {
                missing.remove(at: i)
            } else {
                var shown = a
                if !expected.contains(where: { $0.value != nil }) { shown.value = nil }
                if !expected.contains(where: { $0.message != nil }) { shown.message = nil }
                extra.append(shown)
            }
        }
        return missing.map { "- expected: \($0)" } + extra.map { "+ got:      \($0)" }
    }
}
