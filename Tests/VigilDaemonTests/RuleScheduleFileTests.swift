import Foundation
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilDaemon

/// The rule language's keys for the standards: nominal values, levels with windows,
/// periods, effective dates, calendar windows and coverage; the config's timezone; test
/// files with a start; `vigil check --series` with the thresholds in force.
@Suite("Rule files: schedules, calendar windows, nominal values, time zones")
struct RuleScheduleFileTests {
    func load(_ text: String, zone: LocalTimeZone = .shanghai) throws -> [Rule] {
        let dir = TemporaryDirectory()
        let path = dir.file("r.yaml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try RuleFiles.load(files: [path], zone: zone)
    }

    func diagnostics(_ text: String) -> [String] {
        do {
            _ = try load(text)
            return []
        } catch let e as ConfigError {
            return e.diagnostics.map { "\($0.line):\($0.column): \($0.message)" }
        } catch {
            return ["\(error)"]
        }
    }

    func spec(_ r: Rule, _ series: String) -> ThresholdSpec {
        guard case .threshold(let s) = r.resolved(for: SeriesKey(path: series)!) else { fatalError("not a threshold rule") }
        return s
    }

    @Test func theSpecsIntendedShapeLoads() throws {
        let rules = try load("""
            rules:
              - id: road-noise-4a
                match: urban/+/+/noise
                stat: leq
                window: 1h
                op: ">"
                periods:
                  day:   { hours: "06:00-22:00", levels: { yellow: 70 } }
                  night: { hours: "22:00-06:00", levels: { yellow: 55 } }
              - id: pm25-daily
                match: urban/+/+/pm25
                stat: mean
                window: 1d
                align: calendar
                min_coverage: 20h
                min_hour_coverage: 45m
                op: ">"
                levels: { yellow: 75 }
                effective:
                  - { from: 2026-03-01, levels: { yellow: 60 } }
                  - { from: 2031-01-01, levels: { yellow: 50 } }
              - id: rainstorm
                match: water/+/+/rainfall
                stat: sum
                op: ">="
                levels:
                  blue:   { value: 50, window: 12h }
                  yellow: { value: 50, window: 6h }
                  orange: { value: 50, window: 3h }
                  red:    { value: 100, window: 3h }
            """, zone: .utc)
        #expect(rules.map(\.id) == ["road-noise-4a", "pm25-daily", "rainstorm"])
        #expect(rules.allSatisfy { $0.zone == .utc })
        let noise = spec(rules[0], "urban/d/n/noise")
        #expect(noise.schedule?.phases.first?.periods.map(\.hours).sorted() == ["06:00-22:00", "22:00-06:00"])
        let pm = spec(rules[1], "urban/d/a/pm25")
        #expect(pm.align == .calendar && pm.coverage == Coverage(minimum: .hours(20), perHour: .minutes(45)))
        #expect(pm.schedule?.phases.compactMap(\.from).map(\.description) == ["2026-03-01", "2031-01-01"])
        let rain = spec(rules[2], "water/s/r/rainfall")
        #expect(rain.levelWindows == [.blue: .hours(12), .yellow: .hours(6), .orange: .hours(3), .red: .hours(3)])
        #expect(rain.window == .hours(12), "every level has its window: the rule's is the longest")
        #expect(rules[1].window == .hours(25), "the replay reaches back over the open day")
    }

    /// Relative thresholds count from the rule's nominal value, or an override's.
    @Test func nominalValues() throws {
        let rules = try load("""
            rules:
              - id: v
                match: energy/+/+/voltage
                op: ">"
                nominal: 220
                levels: { yellow: +7%, orange: +10%, red: 260 }
                overrides:
                  - match: energy/s/feeder-1/voltage
                    nominal: 10
              - id: f
                match: energy/+/+/frequency
                op: "<"
                nominal: 50
                levels: { yellow: -0.2, red: -1 }
            """)
        let meter = spec(rules[0], "energy/s/meter-1/voltage").thresholds.levels.map(\.1)
        #expect(meter.count == 3 && abs(meter[0] - 235.4) < 1e-9 && abs(meter[1] - 242) < 1e-9 && meter[2] == 260)
        let feeder = spec(rules[0], "energy/s/feeder-1/voltage")
        #expect(feeder.nominal == 10 && abs(feeder.thresholds.levels[0].1 - 10.7) < 1e-9)
        #expect(spec(rules[1], "energy/s/f/frequency").thresholds.levels.map(\.1) == [49.8, 49])
    }

    /// An override of a rule with level windows keeps them, and may not change them.
    @Test func overridesKeepTheLevelWindows() throws {
        let text = """
            rules:
              - id: rainstorm
                match: water/+/+/rainfall
                stat: sum
                op: ">="
                levels: { blue: { value: 50, window: 12h }, orange: { value: 50, window: 3h } }
                overrides:
                  - match: water/mountain/+/rainfall
                    levels: { blue: 40, orange: 40 }
            """
        let r = try load(text)
        let s = spec(r[0], "water/mountain/r/rainfall")
        #expect(s.thresholds.levels.map(\.1) == [40, 40] && s.levelWindows == [.blue: .hours(12), .orange: .hours(3)])
        #expect(diagnostics(text.replacingOccurrences(of: "blue: 40,", with: "blue: { value: 40, window: 6h },")) == [
            "9:34: rule rainstorm: override water/mountain/+/rainfall: level blue has window 6h here but 12h elsewhere; a level keeps one window"
        ])
    }

    @Test func everyMistakeWithItsPlace() {
        let d = diagnostics("""
            rules:
              - id: a
                match: urban/+/+/x
                op: ">"
                levels: { yellow: +7% }
              - id: b
                match: urban/+/+/x
                op: ">"
                levels: { yellow: 7% }
                nominal: 10
              - id: c
                match: urban/+/+/x
                op: ">"
                periods:
                  day: { hours: "06:00-22:00", levels: { yellow: 70 } }
                  evening: { hours: "20:00-23:00", levels: { yellow: 60 } }
                  late: { hours: "25:00-26:00", levels: { yellow: 60 } }
              - id: d
                match: urban/+/+/x
                stat: mean
                window: 7h
                align: calendar
                op: ">"
                levels: { yellow: 1 }
                for: 1m
              - id: e
                match: urban/+/+/x
                stat: mean
                window: 1d
                align: calendar
                min_coverage: 90m
                op: ">"
                levels: { yellow: 1 }
              - id: f
                match: urban/+/+/x
                window: 1h
                min_coverage: 45m
                op: ">"
                levels: { yellow: 1 }
              - id: g
                match: urban/+/+/x
                op: ">"
                levels: { yellow: 75 }
                effective:
                  - { from: 2031-01-01, levels: { yellow: 50 } }
                  - { from: 2026-03-01, levels: { yellow: 60 } }
                  - { from: 2031-02-30, levels: { yellow: 40 } }
                  - { from: 2032-01-01 }
              - id: h
                match: water/+/+/x
                stat: sum
                align: calendar
                window: 1d
                op: ">="
                levels: { blue: { value: 50, window: 12h }, red: { value: 40, window: 3h }, orange: { value: 30, window: 3h } }
              - id: i
                match: water/+/+/x
                op: ">="
                levels: { blue: { value: 50, window: 12h }, orange: { value: 50, window: 3h }, red: { value: 40, window: 3h } }
            """)
        #expect(d == [
            "5:23: rule a: yellow '+7%' is relative: give nominal: the series' nominal value or baseline",
            "9:23: rule b: levels.yellow '7%': write a percentage of the nominal value with its sign, +7% or -7%",
            "16:7: rule c: periods: evening (20:00-23:00) overlaps day (06:00-22:00)",
            "17:22: rule c: periods.late.hours must be HH:MM-HH:MM in local time, such as 06:00-22:00 or 22:00-06:00, not '25:00-26:00'",
            "21:13: rule d: a calendar window divides a local day (1m, 10m, 1h, 1d, ...); not 7h",
            "25:5: rule d: for does not apply to a calendar window, which is judged once, when it closes",
            "31:19: rule e: min_coverage of a 1d window counts its hours: a whole number of hours up to 1d, not 1h30m",
            "37:5: rule f: min_coverage belongs to align: calendar windows (the local day, the hour)",
            "46:17: rule g: effective[1].from 2026-03-01 must come after 2031-01-01: effective dates go in order",
            "47:17: rule g: effective[2].from must be a date such as 2031-01-01, not '2031-02-30'",
            "48:9: rule g: effective[3] needs levels or periods: what applies from 2032-01-01 on",
            "55:13: rule h: levels with windows of their own need align: sliding",
            "59:13: rule i: levels must grow more extreme in the direction of op: red (40.0) must be above orange (50.0) for op >=",
        ])
    }

    /// `timezone` in vigil.yaml: the built-in default, IANA names from tzdata, fixed
    /// offsets, and a mistake at its place for a name that is none.
    @Test func timezones() throws {
        let base = "gateway_id: g\nsubscriptions:\n  - { network: water, topic: water/+/+, layout: 'water/{site}/{device}' }\n"
        #expect(try VigilConfig.parse(base, file: "v.yaml").timezone == .shanghai)
        #expect(try VigilConfig.parse(base + "timezone: UTC+05:30\n", file: "v.yaml").timezone.offset(atSeconds: 0) == 19_800)
        do {
            _ = try VigilConfig.parse(base + "timezone: Asia/Shangai\n", file: "v.yaml")
            Issue.record("a zone that does not exist loaded")
        } catch {
            #expect(error.diagnostics.map(\.description).first?.hasPrefix("v.yaml:4:11: timezone: time zone 'Asia/Shangai' is not in") == true)
        }
        if FileManager.default.fileExists(atPath: "/usr/share/zoneinfo/Europe/Berlin") {
            let z = try VigilConfig.parse(base + "timezone: Europe/Berlin\n", file: "v.yaml").timezone
            #expect(z.offset(atSeconds: 1_782_000_000) == 7200 && z.offset(atSeconds: 1_770_000_000) == 3600)
        } else {
            print("skipped: tzdata is not installed (scripts/deps installs it)")
        }
        // Without tzdata, Asia/Shanghai is still there.
        #expect(try TimeZones.load("Asia/Shanghai", directory: "/nonexistent").get() == .shanghai)
        #expect((try? TimeZones.load("../etc/passwd").get()) == nil)
    }

    /// Test files start where they say, and take RFC 3339 times.
    @Test func testFilesWithAStart() throws {
        let dir = TemporaryDirectory()
        try "rules:\n  - id: high\n    match: water/+/+/level\n    op: '>'\n    levels: { yellow: 5 }\n"
            .write(toFile: dir.file("rules.yaml"), atomically: true, encoding: .utf8)
        try """
            rule_files: [rules.yaml]
            timezone: UTC+8
            tests:
              - name: at midnight
                start: 2030-12-31T23:00:00+08:00
                series:
                  water/s/g/level: { readings: [{ at: 2031-01-01T00:00:00+08:00, value: 6 }, { at: 90m, value: 4 }] }
                expect:
                  - { at: 1h, rule: high, series: water/s/g/level, state: raised, level: yellow }
                  - { at: 2031-01-01T01:30:00+08:00, rule: high, series: water/s/g/level, state: resolved, level: yellow }
            """.write(toFile: dir.file("t.yaml"), atomically: true, encoding: .utf8)
        let file = try RuleTestFile.load(dir.file("t.yaml"))
        let c = try #require(file.cases.first)
        #expect(c.start == Timestamp.parseRFC3339("2030-12-31T15:00:00Z") && file.zone.offset(atSeconds: 0) == 28_800)
        #expect(c.inputs.map(\.at) == [.hours(1), .minutes(90)])
        let actual = RuleTestFile.localized(RuleTestFile.run(c, rules: try RuleFiles.load(files: file.ruleFiles, zone: file.zone)), c, zone: file.zone)
        let diff = RuleTestFile.diff(expected: RuleTestFile.localized(c.expected, c, zone: file.zone), actual: actual)
        #expect(diff == [
            "- expected: at 2h30m (2031-01-01 01:30 +08:00) high water/s/g/level resolved yellow",
            "+ got:      at 1h30m (2031-01-01 00:30 +08:00) high water/s/g/level resolved yellow",
        ])
    }

    /// `vigil check --series` gives the thresholds in force at a time and the next change.
    @Test func checkSeriesShowsWhatIsInForce() throws {
        let rules = try RuleFiles.load(directory: Repository.root.appendingPathComponent("config/rules.d").path)
        let late2030 = try #require(Timestamp.parseRFC3339("2030-12-31T12:00:00+08:00"))
        let pm = RuleDescription.forSeries(SeriesKey(path: "urban/district-1/aq-1/pm25")!, rules: rules, at: late2030)
        #expect(pm.contains("now (effective from 2026-03-01): yellow > 60, orange > 115, red > 150"), "\(pm)")
        #expect(pm.contains("next, at 2031-01-01 00:00 +08:00 (effective from 2031-01-01): yellow > 50"))
        #expect(pm.contains("min_coverage 20h (an hour counts with 45m of data)"))
        let evening = try #require(Timestamp.parseRFC3339("2026-06-01T21:30:00+08:00"))
        let noise = RuleDescription.forSeries(SeriesKey(path: "urban/district-1/noise-1/noise")!, rules: rules, at: evening)
        #expect(noise.contains("now (day, 06:00-22:00): yellow > 70, orange > 75, red > 80"), "\(noise)")
        #expect(noise.contains("next, at 2026-06-01 22:00 +08:00 (night, 22:00-06:00): yellow > 55, orange > 60, red > 65"))
        let rain = RuleDescription.forSeries(SeriesKey(path: "water/station-01/rain-1/rainfall")!, rules: rules, at: evening)
        #expect(rain.contains("sum: blue >= 50 over 12h, yellow >= 50 over 6h, orange >= 50 over 3h, red >= 100 over 3h"), "\(rain)")
        let feeder = RuleDescription.forSeries(SeriesKey(path: "energy/substation-1/feeder-1/line_voltage")!, rules: rules, at: evening)
        #expect(feeder.contains("mean over 10s: yellow > 10.7, orange > 11, red > 11.5"), "\(feeder)")
    }
}
