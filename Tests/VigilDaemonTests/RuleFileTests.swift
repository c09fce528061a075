import Foundation
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilDaemon

@Suite("Rule files")
struct RuleFileTests {
    func diagnostics(_ text: String) -> [String] {
        let dir = TemporaryDirectory()
        let path = dir.file("r.yaml")
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try RuleFiles.load(files: [path])
            return []
        } catch {
            return error.diagnostics.map { $0.description.replacingOccurrences(of: path, with: "r.yaml") }
        }
    }

    @Test func theSpecExampleLoads() throws {
        let dir = TemporaryDirectory()
        let text = """
            rules:
              - id: river-level
                description: River stage against warning and guaranteed levels
                match: water/+/+/water_level
                stat: last
                window: 0s
                op: ">"
                levels: { yellow: 4.5, orange: 5.2, red: 6.0 }
                hysteresis: 0.1
                for: 2m
                clear_for: 5m
                message: "{site} river level {value} m over {level} line {threshold} m"
                overrides:
                  - match: water/station-07/+/water_level
                    levels: { yellow: 3.8, orange: 4.4, red: 5.0 }
              - id: rain-3h
                match: water/+/+/rainfall
                stat: sum
                window: 3h
                op: ">="
                levels: { orange: 50, red: 100 }
              - id: sensor-silent
                match: "urban/#"
                stale: 10m
                level: yellow
            """
        try text.write(toFile: dir.file("a.yaml"), atomically: true, encoding: .utf8)
        let rules = try RuleFiles.load(directory: dir.path)
        #expect(rules.map(\.id) == ["river-level", "rain-3h", "sensor-silent"])
        guard case .threshold(let spec) = rules[0].kind else { Issue.record("not a threshold rule"); return }
        #expect(spec.holdFor == .minutes(2) && spec.clearFor == .minutes(5) && spec.hysteresis == 0.1)
        #expect(rules[0].overrides.count == 1 && rules[0].line == 2)
        #expect(rules[2].kind == .stale(.minutes(10), .yellow))
    }

    @Test func everyMistakeWithItsPosition() {
        let d = diagnostics("""
            rules:
              - id: a
                match: water/+/+/level
                op: ">"
                levels: { yellow: 5, orange: 4 }
              - id: b
                match: water/+/+
                op: ">"
                levels: { yellow: 1 }
              - id: c
                match: water/#
                stat: rate
                op: ">"
                levels: { yellow: 1 }
                message: "{site} is {colour}"
              - id: a
                match: energy/#
                stale: 5m
              - id: d
                match: energy/#
                op: "=>"
                levels: { amber: 1 }
                hysteresis: -1
                fore: 2m
            """)
        #expect(d == [
            "r.yaml:5:13: rule a: levels must grow more extreme in the direction of op: orange (4.0) must be above yellow (5.0) for op >",
            "r.yaml:7:12: rule b: match: 'water/+/+' can never match a series, which is network/site/device/metric",
            "r.yaml:12:11: rule c: stat rate needs a window longer than 0s",
            "r.yaml:15:14: rule c: message has unknown placeholder {colour}; known: {device} {level} {metric} {network} {nominal} {period} {rule} {series} {site} {threshold} {unit} {value} {window}",
            "r.yaml:16:9: rule id 'a' is already used at r.yaml:2",
            "r.yaml:21:9: rule d: op must be one of >, >=, <, <=, not '=>'",
            "r.yaml:24:5: unknown key 'fore' in a rule; did you mean 'for'?",
        ])
    }

    @Test func resolvedMessage() throws {
        #expect(diagnostics("""
            rules:
              - id: a
                match: water/+/+/level
                op: ">"
                levels: { yellow: 5 }
                resolved_message: "{site} back to {colour}"
            """) == [
            "r.yaml:6:23: rule a: resolved_message has unknown placeholder {colour}; known: {device} {level} {metric} {network} {nominal} {period} {rule} {series} {site} {threshold} {unit} {value} {window}"
        ])
        let dir = TemporaryDirectory()
        try """
            rules:
              - id: a
                match: water/+/+/level
                op: ">"
                levels: { yellow: 5 }
                resolved_message: "{site} back under {threshold} m"
            """.write(toFile: dir.file("a.yaml"), atomically: true, encoding: .utf8)
        #expect(try RuleFiles.load(directory: dir.path).first?.resolvedMessage == "{site} back under {threshold} m")
    }

    /// `vigil check` reports rule mistakes as file:line:column; `--series` explains what applies.
    @Test func checkCommandWithRules() throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.file("rules.d"), withIntermediateDirectories: true)
        let config = dir.file("vigil.yaml")
        try "gateway_id: g\nrules_dir: rules.d\nsubscriptions:\n  - { network: water, topic: water/+/+, layout: 'water/{site}/{device}' }\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let rules = dir.file("rules.d/water.yaml")
        try "rules:\n  - id: low\n    match: water/+/+/do\n    op: '<'\n    levels: { yellow: 5, red: 6 }\n".write(toFile: rules, atomically: true, encoding: .utf8)
        let bad = try DaemonProcess.run(DaemonProcess.binary, ["check", "--config", config])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("\(rules):5:13: rule low: levels must grow more extreme"), "\(bad.stderr)")
        try "rules:\n  - id: low\n    match: water/+/+/do\n    op: '<'\n    levels: { yellow: 5, red: 2 }\n".write(toFile: rules, atomically: true, encoding: .utf8)
        let ok = try DaemonProcess.run(DaemonProcess.binary, ["check", "--config", config])
        #expect(ok.status == 0 && ok.stdout.contains("1 rule(s)"), "\(ok.stderr)")
        let series = try DaemonProcess.run(DaemonProcess.binary, ["check", "--config", config, "--series", "water/st/q/do"])
        #expect(series.stdout.contains("- low (\(rules):2)"))
        #expect(series.stdout.contains("last: yellow < 5, red < 2"))
        let none = try DaemonProcess.run(DaemonProcess.binary, ["check", "--config", config, "--series", "energy/s/m/v"])
        #expect(none.stdout.contains("no rule applies"))
    }

    /// `vigil test` passes what agrees, and for what does not prints the difference and exits 1.
    @Test func testCommandShowsADiff() throws {
        let dir = TemporaryDirectory()
        try "rules:\n  - id: high\n    match: water/+/+/level\n    op: '>'\n    levels: { yellow: 5 }\n"
            .write(toFile: dir.file("rules.yaml"), atomically: true, encoding: .utf8)
        let test = dir.file("test.yaml")
        try """
            rule_files: [rules.yaml]
            tests:
              - name: right
                series:
                  water/s/g/level: { interval: 1m, values: "4 6 4" }
                expect:
                  - { at: 1m, rule: high, series: water/s/g/level, state: raised, level: yellow }
                  - { at: 2m, rule: high, series: water/s/g/level, state: resolved, level: yellow }
              - name: wrong
                series:
                  water/s/g/level: { interval: 1m, values: "4 6 4" }
                expect:
                  - { at: 1m, rule: high, series: water/s/g/level, state: raised, level: orange }
            """.write(toFile: test, atomically: true, encoding: .utf8)
        let r = try DaemonProcess.run(DaemonProcess.binary, ["test", test])
        #expect(r.status == 1)
        #expect(r.stdout.contains("ok    \(test): right"))
        #expect(r.stdout.contains("FAIL  \(test): wrong"))
        #expect(r.stdout.contains("- expected: at 1m high water/s/g/level raised orange"))
        #expect(r.stdout.contains("+ got:      at 1m high water/s/g/level raised yellow"))
        #expect(r.stdout.contains("+ got:      at 2m high water/s/g/level resolved yellow"))
        #expect(r.stdout.contains("1 passed, 1 failed"))
    }

    @Test func compactValues() {
        #expect(RuleTestFile.expand("4.2")! == [4.2])
        #expect(RuleTestFile.expand("_")! == [nil])
        #expect(RuleTestFile.expand("1+0.5x3")! == [1, 1.5, 2, 2.5])
        #expect(RuleTestFile.expand("10-2x2")! == [10, 8, 6])
        #expect(RuleTestFile.expand("-1+1x2")! == [-1, 0, 1])
        #expect(RuleTestFile.expand("abc") == nil)
    }
}
