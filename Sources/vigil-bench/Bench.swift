import Foundation
import VigilCore
import VigilMQTT
import VigilStorage
import VigilTestSupport

/// `vigil-bench`: vigil against the broker's own ceiling, in one run, on this machine.
///
/// Starts its own mosquitto on a free loopback port; measures what `mosquitto_sub` to
/// /dev/null receives per second from the same publisher (the ceiling, at QoS 0 and 1);
/// then sweeps vigil at rising paced rates up to saturation and unpaced, at QoS 0 and 1,
/// durability normal and full; then vigil with the shipped rule packs, the rule engine
/// alone, and the upstream backlog's drain. Prints a markdown report and writes it, with
/// an SVG plot, to results/ (git ignores it). A full run also rewrites the report's part of
/// docs/benchmark.md and docs/benchmark.svg; `--quick` and `--no-docs` leave docs/ alone.
@main
struct Bench {
    static func main() throws {
        let args = CommandLine.arguments.dropFirst()
        if let bad = args.first(where: { !["--quick", "--no-docs", "--rules", "--writes", "--writes-long", "--page", "--hj212"].contains($0) }) {
            print("usage: vigil-bench [--quick] [--no-docs] [--rules | --writes | --writes-long | --page | --hj212]  (unknown: \(bad))")
            exit(2)
        }
        // HJ 212 frames through the TCP listener from 10 loggers: `vigil-bench --hj212`.
        if args.contains("--hj212") {
            useSiblingDaemon()
            let r = try HJ212Bench.run(loggers: 10, framesPerLogger: args.contains("--quick") ? 1000 : 5000)
            print(
                String(
                    format: "HJ 212 over TCP, %d loggers: %d frames answered in %.2f s: %.0f frames/s, %.0f readings/s (%d readings in the buffer)",
                    r.loggers, r.frames, r.seconds, r.framesPerSecond, r.readingsPerSecond, r.stored))
            exit(0)
        }
        // The rule engine alone, in process (no broker): `vigil-bench --rules`.
        if args.contains("--rules") {
            let engine = RuleBench.run(readings: args.contains("--quick") ? 500_000 : 2_000_000)
            print(
                String(
                    format: "rule engine: %d rules over %d series: %.2f us per reading (%.1f rules per reading)", engine.rules, engine.series,
                    engine.microsPerReading, engine.rulesPerReading))
            exit(0)
        }
        // Flash writes and uplink bytes alone: `vigil-bench --writes`.
        if args.contains("--writes") {
            useSiblingDaemon()
            let broker = try Broker()
            let topics = (0..<100).map { "energy/site-\($0 % 10)/meter-\($0)/voltage" }
            let rows = try WritesBench.run(
                broker: broker, topics: topics, rates: [0, 1, 30, 300, 3000], seconds: args.contains("--quick") ? 20 : 60)
            print(WritesBench.table(rows, saturation: nil))
            print(UplinkBench.table(UplinkBench.run()))
            broker.stop()
            exit(0)
        }
        // 30 readings/s for 25 minutes, long enough for the WAL to reach its 4 MiB checkpoint
        // once: what a gateway writes in the long run, checkpoints in (`vigil-bench --writes-long`).
        if args.contains("--writes-long") {
            useSiblingDaemon()
            let broker = try Broker()
            let topics = (0..<100).map { "energy/site-\($0 % 10)/meter-\($0)/voltage" }
            let rows = [try WritesBench.measure(broker: broker, topics: topics, rate: 30, seconds: 1500)]
            print(WritesBench.table(rows, saturation: nil))
            broker.stop()
            exit(0)
        }
        // Ingest at saturation with the page polled every second, and without: `vigil-bench --page`.
        if args.contains("--page") {
            useSiblingDaemon()
            let broker = try Broker()
            let topics = (0..<100).map { "energy/site-\($0 % 10)/meter-\($0)/voltage" }
            let seconds = args.contains("--quick") ? 5.0 : 20
            print("vigil-bench --page: \(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(loadAverage()), \(gitDescription())")
            let quick = args.contains("--quick")
            let sides = try PageBench.run(broker: broker, topics: topics, seconds: seconds, rounds: quick ? 1 : 4)
            let paced = try PageBench.paced(broker: broker, topics: topics, rate: 5000, seconds: quick ? 5 : 15, rounds: quick ? 1 : 2)
            print("\n| measure | value | target |\n| --- | --- | --- |")
            for row in PageBench.rows(sides, paced: paced, seconds: seconds) { print("| \(row.measure) | \(row.value) | \(row.target) |") }
            print("")
            print(PageBench.table(sides, paced: paced))
            print("load average after: \(loadAverage())")
            broker.stop()
            exit(0)
        }
        let quick = args.contains("--quick")
        let docs = !quick && !args.contains("--no-docs")
        // A page that cannot take the report fails the run now, not after minutes of measuring.
        if docs {
            let page = Repository.root.appendingPathComponent("docs").appendingPathComponent(BenchDocs.pageName)
            do {
                _ = try BenchDocs.replacingReport(in: try String(contentsOf: page, encoding: .utf8), with: "")
            } catch {
                print("vigil-bench: \(page.path): \(error); fix it, or run with --no-docs")
                exit(1)
            }
        }
        guard Broker.isAvailable, let sub = mosquittoSub else {
            print("vigil-bench needs mosquitto and mosquitto_sub (apt-get install mosquitto mosquitto-clients)")
            exit(1)
        }
        let began = Date()
        let loadBefore = loadAverage()
        useSiblingDaemon()
        let n = quick ? 50_000 : 200_000
        // Best of two for the figures the summary compares; one run each with --quick.
        let runs = quick ? 1 : 2
        // Paced steps end a quarter second before the daemon's next once-a-second status
        // record (the step starts just after one), which then holds the step's latencies.
        let plan = Sweep.Plan(firstRate: 5_000, maxRate: 1_280_000, stepSeconds: quick ? 0.75 : 3.75, unpacedCount: n)
        print(
            "vigil-bench\(quick ? " --quick" : ""): \(ProcessInfo.processInfo.activeProcessorCount) cores; paced steps of \(plan.stepSeconds) s from \(Int(plan.firstRate))/s, doubling; \(n) readings unpaced"
        )
        print("vigil: \(DaemonProcess.binary)")
        let broker = try Broker()
        let topics = (0..<100).map { "energy/site-\($0 % 10)/meter-\($0)/voltage" }

        // 1. The broker's ceiling: mosquitto_sub to /dev/null, at each QoS. Best of two:
        // one short run is at the mercy of what else the machine does.
        var ceilings: [Int32: Double] = [:]
        for qos: Int32 in [0, 1] {
            ceilings[qos] = try (0..<runs).map { k in try measureCeiling(sub, broker: broker, topics: topics, n: n, qos: qos, run: k) }.max()!
            print(String(format: "ceiling (mosquitto_sub -q %d > /dev/null): %.0f msg/s", qos, ceilings[qos]!))
        }

        // 2. The sweep: each configuration at rising paced rates, then unpaced.
        var sweep: [(Sweep.Configuration, [Sweep.Measured])] = []
        for (k, config) in Sweep.configurations.enumerated() {
            print("sweep \(config.label): [\(Int(Date().timeIntervalSince(began))) s]")
            // The first configuration's unpaced run is the headline figure: best of two.
            let steps = try Sweep.run(
                config, broker: broker, topics: topics, plan: plan, unpacedRuns: k == 0 ? runs : 1, idleSettle: k == 0 ? 1.5 : 0)
            sweep.append((config, steps))
        }
        let base = sweep[0].1
        let sat = base.last!
        let idleRSS = base[0].idleRSS
        let peakRSS = sweep.flatMap(\.1).map(\.peakRSS).max() ?? 0
        let paced10k = base.first { $0.offered == 10_000 }

        // 3. The same saturation with the shipped rule packs loaded.
        print("rules: [\(Int(Date().timeIntervalSince(began))) s]")
        let rules = shippedRules()
        let withRules = try (0..<runs).map { _ in
            try Sweep.step(Sweep.configurations[0], broker: broker, topics: topics, rate: 0, count: n, rules: rules)
        }.max { $0.stored < $1.stored }!
        print(String(format: "with the shipped rule packs (%d files): %.0f readings/s", rules.count, withRules.stored))
        // 4. The rule engine alone: 1,000 rules over 10,000 series.
        let engine = RuleBench.run(readings: quick ? 500_000 : 2_000_000)
        print(String(format: "rule engine: %.2f us per reading", engine.microsPerReading))
        // 5. Upstream away, then back: the backlog's drain.
        print("drain: [\(Int(Date().timeIntervalSince(began))) s]")
        let outage = quick ? 5.0 : 20
        let drain = try DrainBench.run(outage: outage)
        // 6. What reaches flash at idle and at paced rates, and the uplink's bytes.
        print("writes: [\(Int(Date().timeIntervalSince(began))) s]")
        let writes = try WritesBench.run(broker: broker, topics: topics, rates: [0, 1, 30, 300, 3000], seconds: quick ? 20 : 60)
        print("uplink:")
        let uplink = UplinkBench.run()
        // 7. Ingest at saturation with the technician's page polled every second, and without.
        print("page: [\(Int(Date().timeIntervalSince(began))) s]")
        let pageSeconds = quick ? 5.0 : 20
        let page = try PageBench.run(broker: broker, topics: topics, seconds: pageSeconds, rounds: quick ? 1 : 4)
        let pagePaced = try PageBench.paced(broker: broker, topics: topics, rate: 5000, seconds: quick ? 5 : 15, rounds: quick ? 1 : 2)
        // 8. HJ 212 frames through the TCP listener from 10 data loggers.
        print("hj212: [\(Int(Date().timeIntervalSince(began))) s]")
        let hj212 = try HJ212Bench.run(loggers: 10, framesPerLogger: quick ? 1000 : 5000)

        var summary: [BenchReport.Row] = [
            .init(
                "broker ceiling (mosquitto_sub to /dev/null), QoS 0 / QoS 1",
                "\(BenchReport.grouped(ceilings[0]!)) / \(BenchReport.grouped(ceilings[1]!)) msg/s")
        ]
        for (k, (config, steps)) in sweep.enumerated() {
            let s = steps.last!
            let ratio = s.stored / ceilings[config.qos]!
            summary.append(
                .init(
                    "vigil sustained, \(config.label), into the buffer (unpaced)",
                    "\(BenchReport.grouped(s.stored)) readings/s, \(BenchReport.fixed(ratio * 100, 0)) % of the QoS \(config.qos) ceiling",
                    k == 0 ? ">= 85 %" : ""))
        }
        let held = sweep.map { config, steps in
            "\(config.label): \(steps.filter { $0.offered != nil && !$0.saturated }.compactMap(\.offered).max().map { BenchReport.grouped($0) } ?? "-")"
        }
        summary.append(.init("highest paced rate stored within 5 %, readings/s", held.joined(separator: "; ")))
        if let p = paced10k {
            summary.append(
                .init(
                    "publish-to-stored p50 / p99 / p99.9 at 10,000/s (QoS 0, normal)",
                    "\(BenchReport.fixed(p.p50, 2)) / \(BenchReport.fixed(p.p99, 2)) / \(BenchReport.fixed(p.p999, 2)) ms", "p99 < 20 ms"))
        }
        summary += [
            .init(
                "RSS at idle / peak under load (any step)", "\(BenchReport.fixed(idleRSS, 1)) / \(BenchReport.fixed(peakRSS, 1)) MB",
                "idle < 20 MB"),
            .init(
                "CPU per 10,000 readings, saturation / paced 10k/s (QoS 0, normal)",
                "\(BenchReport.fixed(sat.cpuPer10k, 3)) / \(paced10k.map { BenchReport.fixed($0.cpuPer10k, 3) } ?? "-") s"),
            .init(
                "bytes written / database file per reading, saturation (QoS 0, normal)",
                "\(BenchReport.grouped(sat.writtenPerReading)) / \(BenchReport.fixed(sat.filePerReading, 1))"),
            .init(
                "sustained with the shipped rule packs loaded (QoS 0, normal)",
                "\(BenchReport.grouped(withRules.stored)) readings/s, \(BenchReport.fixed(withRules.stored / sat.stored * 100, 0)) % of without",
                ">= 90 %"),
            .init(
                "rule evaluation, \(BenchReport.grouped(Double(engine.rules))) rules over \(BenchReport.grouped(Double(engine.series))) series",
                String(format: "%.2f µs per reading (%.1f rules per reading)", engine.microsPerReading, engine.rulesPerReading), "< 5 µs"),
            .init(
                "backlog drain after \(Int(outage)) s without upstream (\(drain.backlog) messages), live data flowing",
                String(format: "%@ msg/s, %.0fx the live rate of %.0f aggregates/s", BenchReport.grouped(drain.drainRate), drain.drainRate / drain.liveRate, drain.liveRate),
                ">= 5x"),
            .init(
                "RSS while upstream is away: start / max / end", String(format: "%.1f / %.1f / %.1f MB", drain.rssStart, drain.rssMax, drain.rssEnd),
                "flat"),
            .init(
                "HJ 212 over TCP, 10 loggers (4 values a frame, 50 in flight each, every frame answered after its commit)",
                "\(BenchReport.grouped(hj212.framesPerSecond)) frames/s, \(BenchReport.grouped(hj212.readingsPerSecond)) readings/s"),
        ]
        func written(_ rate: Double) -> WritesBench.Row? { writes.first { $0.rate == rate } }
        if let idle = written(0) {
            summary.append(.init("idle, bytes written to flash per second (\(Int(idle.seconds)) s average)", BenchReport.grouped(idle.perSecond), "<= 1,000"))
        }
        for (rate, target) in [(30.0, "<= 150"), (300.0, "<= 80")] {
            if let r = written(rate), let per = r.perReading {
                summary.append(.init("\(Int(rate)) readings/s, bytes written to flash per reading", BenchReport.grouped(per), target))
            }
        }
        if let r = uplink.first(where: { $0.series == 100 }) {
            summary.append(
                .init(
                    "uplink bytes per series and window (topic + payload), 100 series: series / pack / pack + deflate",
                    "\(BenchReport.grouped(r.seriesFormat)) / \(BenchReport.grouped(r.pack)) / \(BenchReport.grouped(r.deflated))",
                    "deflated <= 80"))
        }

        summary += PageBench.rows(page, paced: pagePaced, seconds: pageSeconds)

        let stamp = timestamp(began)
        let elapsed = Date().timeIntervalSince(began)
        let report = BenchReport(
            title: "vigil-bench \(stamp)",
            context: [
                "command: `scripts/bench\(quick ? " --quick" : "")`, \(Int(elapsed.rounded())) s",
                "machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, Linux \(uname()), \(mosquittoVersion())",
                "load average (1, 5, 15 min) before / after: \(loadBefore) / \(loadAverage()): anything else running skews every figure",
                "vigil: \(gitDescription()), release build, static Swift runtime",
            ],
            ceilings: [.init(label: "QoS 0", rate: ceilings[0]!), .init(label: "QoS 1", rate: ceilings[1]!)],
            summary: summary,
            steps: sweep.flatMap { config, steps in steps.map { $0.step(config, ceiling: ceilings[config.qos]!) } },
            sections: [
                .init(title: "Writes to flash", markdown: WritesBench.table(writes, saturation: sat)),
                .init(title: "Uplink bytes", markdown: UplinkBench.table(uplink)),
                .init(title: "The page polled", markdown: PageBench.table(page, paced: pagePaced)),
            ])

        print("")
        for line in report.context { print("- " + line) }
        print("")
        print(report.summaryTable())
        print(report.sweepTable())
        for section in report.sections { print("\n" + section.title + "\n\n" + section.markdown) }
        try write(report, stamp: stamp)
        if docs {
            writeDocs(report)
        } else {
            print("docs/ left as it is (\(quick ? "--quick" : "--no-docs"))")
        }
    }

    /// docs/benchmark.md between its markers, and docs/benchmark.svg: the figures a reader
    /// of the repository sees. Only full runs get there; the results/ copies are already written.
    static func writeDocs(_ report: BenchReport) {
        let dir = Repository.root.appendingPathComponent("docs")
        do {
            let written = try BenchDocs.write(report, docs: dir)
            print("written: " + written.map(\.path).joined(separator: ", "))
        } catch {
            print("docs/\(BenchDocs.pageName) not updated: \(error) (the report is in results/)")
            exit(1)
        }
    }

    /// Runs the `vigil` built next to this binary, whatever VIGIL_BINARY says: the bench
    /// measures the build it belongs to.
    static func useSiblingDaemon() {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let sibling = exe.deletingLastPathComponent().appendingPathComponent("vigil").path
        if FileManager.default.isExecutableFile(atPath: sibling) { setenv("VIGIL_BINARY", sibling, 1) }
    }

    /// results/bench-<UTC timestamp>.md and .svg, and results/latest.md and latest.svg.
    static func write(_ report: BenchReport, stamp: String) throws {
        let dir = Repository.root.appendingPathComponent("results")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let svg = report.svg()
        for name in ["bench-\(stamp)", "latest"] {
            try report.markdown(plot: "\(name).svg").write(to: dir.appendingPathComponent("\(name).md"), atomically: true, encoding: .utf8)
            try svg.write(to: dir.appendingPathComponent("\(name).svg"), atomically: true, encoding: .utf8)
        }
        print("written: \(dir.path)/bench-\(stamp).md, .svg (and latest.md, latest.svg)")
    }

    static func timestamp(_ d: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: d)
    }

    /// The first three fields of /proc/loadavg.
    static func loadAverage() -> String {
        let s = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        return s.split(separator: " ").prefix(3).joined(separator: " ")
    }

    static func uname() -> String {
        ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func mosquittoVersion() -> String {
        guard let exe = Broker.executable, let r = try? ChildProcess.run(exe, ["-h"]) else { return "mosquitto" }
        let first = (r.stdout + r.stderr).split(separator: "\n").first.map(String.init) ?? "mosquitto"
        return first.replacingOccurrences(of: " running", with: "")
    }

    static func gitDescription() -> String {
        let root = Repository.root.path
        guard let r = try? ChildProcess.run("/usr/bin/git", ["-C", root, "describe", "--always", "--dirty"]), r.status == 0 else {
            return "unknown commit"
        }
        return "commit " + r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static var mosquittoSub: String? {
        ["/usr/bin/mosquitto_sub", "/usr/local/bin/mosquitto_sub"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// What `mosquitto_sub` (`sub`) receives per second, to /dev/null, from one publisher at `qos`.
    static func measureCeiling(_ sub: String, broker: Broker, topics: [String], n: Int, qos: Int32, run: Int) throws -> Double {
        let id = "ceiling-q\(qos)-\(run)"
        let child = try ChildProcess(sub, ["-h", broker.host, "-p", "\(broker.port)", "-t", "energy/#", "-q", "\(qos)", "-C", "\(n)", "-i", id])
        // Wait until the subscriber is in (the broker logs its connection), then a moment for its SUBSCRIBE.
        eventually(timeout: 10) { broker.log.contains(" as \(id) ") }
        usleep(200_000)
        let pub = try TestPublisher(broker: broker, topics: topics, qos: qos)
        let start = DispatchTime.now().uptimeNanoseconds
        pub.publish(count: n, rate: 0)
        child.wait()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        pub.close()
        return Double(n) / seconds
    }

    /// The shipped rule packs (config/rules.d), next to this checkout.
    static func shippedRules() -> [String: String] {
        let dir = Repository.root.appendingPathComponent("config/rules.d").path
        var out: [String: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasSuffix(".yaml") {
            out[name] = try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)
        }
        return out
    }
}
