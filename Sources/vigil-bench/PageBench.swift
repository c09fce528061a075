import Foundation
import Synchronization
import VigilCore
import VigilStorage
import VigilTestSupport

/// Ingest with the technician's page polled, against the same without polling: a fresh
/// daemon each side (both with the HTTP listener on). At saturation: fed unpaced at QoS 0
/// for `seconds`, the sides alternating (without, with, without, with...) for `rounds`
/// rounds so that a drift of the machine does not land on one side only; the spread of
/// one side's runs is the noise the difference is judged against. Paced: a rate well
/// below saturation, and the publish-to-stored p99 polled and not.
enum PageBench {
    /// The poller fetches `/` and `/page.json` every `pollInterval` seconds. The cache holds
    /// a build for a second from its end, so the daemon builds at most once per (1 s + a
    /// build); polled every 0.25 s it builds within a quarter of a second of that: the most
    /// pages can cost it (a poll every 0.5 s gave 14 builds in 20 s, every 1 s 11).
    static let pollInterval = 0.25

    struct Side {
        var polled: Bool
        var seconds: Double
        var stored: Int64
        var rate: Double { seconds > 0 ? Double(stored) / seconds : 0 }
        /// Polls made (each one `GET /` and one `GET /page.json`) and how long `/page.json` took.
        var polls = 0
        var pollMsMedian = 0.0
        var pollMsMax = 0.0
        /// The largest `build_ms` a poll saw, the mean `build_cpu_ms`, and the builds the
        /// daemon made in the measured window (from the first and last poll's `builds`).
        var buildMsMax = 0.0
        var buildCPUMsMean = 0.0
        var builds = 0
        var jsonBytes = 0
        /// Paced sides: publish-to-stored p99 (ms) and the offered rate.
        var p99Ms = 0.0
        var offered = 0.0
    }

    static func run(broker: Broker, topics: [String], seconds: Double, rounds: Int) throws -> [Side] {
        var out: [Side] = []
        for round in 0..<rounds {
            for polled in [false, true] {
                let s = try side(broker: broker, topics: topics, seconds: seconds, polled: polled)
                print(
                    String(
                        format: "  page %@ (round %d): %.0f readings/s over %.1f s%@", polled ? "polled      " : "not polled  ", round + 1,
                        s.rate, s.seconds,
                        polled
                            ? String(
                                format: "; %d polls, /page.json median %.1f ms, max %.1f ms; build max %.1f ms, CPU %.1f ms a build, %d builds, %d bytes",
                                s.polls, s.pollMsMedian, s.pollMsMax, s.buildMsMax, s.buildCPUMsMean, s.builds, s.jsonBytes) : ""))
                out.append(s)
            }
        }
        return out
    }

    /// Paced at `rate` for `seconds` a side, `rounds` alternating rounds: publish-to-stored p99.
    static func paced(broker: Broker, topics: [String], rate: Double, seconds: Double, rounds: Int) throws -> [Side] {
        var out: [Side] = []
        for round in 0..<rounds {
            for polled in [false, true] {
                let s = try pacedSide(broker: broker, topics: topics, rate: rate, seconds: seconds, polled: polled)
                print(
                    String(
                        format: "  page %@ at %.0f/s (round %d): stored %.0f/s, publish-to-stored p99 %.2f ms%@", polled ? "polled    " : "not polled",
                        rate, round + 1, s.rate, s.p99Ms, polled ? String(format: "; %d polls, %d builds", s.polls, s.builds) : ""))
                out.append(s)
            }
        }
        return out
    }

    /// A daemon with its HTTP listener on a free port, ready.
    static func daemon(broker: Broker) throws -> (DaemonProcess, Int) {
        let port = FreePort.next()
        let daemon = try DaemonProcess(
            config: DaemonProcess.config(gateway: "gw-bench", localPort: broker.port, qos: 0, extra: "http:\n  listen: 127.0.0.1:\(port)\n"))
        try daemon.start()
        eventually(timeout: 10) { httpGet(port: port, path: "/readyz")?.status == 200 }
        return (daemon, port)
    }

    /// The poller: every `pollInterval`, the page and its JSON, as browsers left open would.
    static func poller(port: Int, log: PollLog) -> Thread {
        Thread {
            while !log.stop.load(ordering: .relaxed) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = httpGet(port: port, path: "/")
                let t1 = DispatchTime.now().uptimeNanoseconds
                let json = httpGet(port: port, path: "/page.json")
                let ms = Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e6
                if log.measuring.load(ordering: .relaxed), let body = json?.body,
                    let d = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
                {
                    let entry = (ms, d["build_ms"] as? Double ?? 0, d["build_cpu_ms"] as? Double ?? 0, d["builds"] as? Int ?? 0, body.utf8.count)
                    log.polls.withLock { $0.append(entry) }
                }
                let spent = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if spent < pollInterval { usleep(useconds_t((pollInterval - spent) * 1e6)) }
            }
        }
    }

    static func side(broker: Broker, topics: [String], seconds: Double, polled: Bool) throws -> Side {
        let (daemon, port) = try daemon(broker: broker)
        defer { daemon.stop() }
        let reader = try daemon.reader()
        let stored = { (try? reader.counters())?[CounterName.readingsStored] ?? 0 }
        let log = PollLog()
        let poller = poller(port: port, log: log)

        let pub = try TestPublisher(broker: broker, topics: topics, qos: 0)
        // A second to reach saturation, then the measured window.
        let warm = DispatchTime.now().uptimeNanoseconds + 1_000_000_000
        let end = warm + UInt64(seconds * 1e9)
        var base: Int64?
        var startNs: UInt64 = 0
        if polled { poller.start() }
        _ = pub.publisher.run(
            count: Int.max, rate: 0,
            shouldStop: {
                let now = DispatchTime.now().uptimeNanoseconds
                if base == nil, now >= warm {
                    base = stored()
                    startNs = now
                    log.measuring.store(true, ordering: .relaxed)
                }
                return now >= end
            },
            message: { i, t in (topics[i % topics.count], Sweep.payload(i, t)) })
        log.measuring.store(false, ordering: .relaxed)
        let count = stored() - (base ?? 0)
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - startNs) / 1e9
        log.stop.store(true, ordering: .relaxed)
        pub.close()
        while polled && !poller.isFinished { usleep(10_000) }
        var s = Side(polled: polled, seconds: elapsed, stored: count)
        summarize(log, into: &s)
        return s
    }

    static func pacedSide(broker: Broker, topics: [String], rate: Double, seconds: Double, polled: Bool) throws -> Side {
        let (daemon, port) = try daemon(broker: broker)
        defer { daemon.stop() }
        let log = PollLog()
        let poller = poller(port: port, log: log)
        let pub = try TestPublisher(broker: broker, topics: topics, qos: 0)
        let count = Int(rate * seconds)
        log.measuring.store(true, ordering: .relaxed)
        if polled { poller.start() }
        let started = DispatchTime.now().uptimeNanoseconds
        _ = pub.publisher.run(count: count, rate: rate) { i, t in (topics[i % topics.count], Sweep.payload(i, t)) }
        // The status record (every second) that counts every reading has the daemon's p99.
        var status = daemon.status()
        eventually(timeout: 10, interval: 0.05) {
            status = daemon.status()
            return (status?.readingsStored ?? 0) >= UInt64(count)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        log.measuring.store(false, ordering: .relaxed)
        log.stop.store(true, ordering: .relaxed)
        pub.close()
        while polled && !poller.isFinished { usleep(10_000) }
        var s = Side(polled: polled, seconds: elapsed, stored: Int64(status?.readingsStored ?? 0))
        s.p99Ms = status?.publishToStoredP99 ?? -1
        s.offered = rate
        summarize(log, into: &s)
        return s
    }

    static func summarize(_ log: PollLog, into s: inout Side) {
        let p = log.polls.withLock { $0 }
        guard !p.isEmpty else { return }
        let ms = p.map(\.ms).sorted()
        s.polls = p.count
        s.pollMsMedian = ms[ms.count / 2]
        s.pollMsMax = ms.last!
        s.buildMsMax = p.map(\.buildMs).max()!
        // Each build once (polls that found the cache fresh see the same one).
        var seen: [Int: Double] = [:]
        for e in p { seen[e.builds] = e.buildCPUMs }
        s.buildCPUMsMean = seen.values.reduce(0, +) / Double(seen.count)
        s.builds = seen.count
        s.jsonBytes = p.last!.bytes
    }

    static func mean(_ a: [Double]) -> Double { a.reduce(0, +) / Double(max(1, a.count)) }

    /// (max - min) / mean of one side's runs, in per cent: the noise.
    static func spread(_ a: [Double]) -> Double {
        guard let lo = a.min(), let hi = a.max(), mean(a) > 0 else { return 0 }
        return (hi - lo) / mean(a) * 100
    }

    /// The summary rows: at saturation, each side's runs, the difference of the means and
    /// each side's spread; paced, the publish-to-stored p99 of each side.
    static func rows(_ sides: [Side], paced: [Side], seconds: Double) -> [BenchReport.Row] {
        let without = sides.filter { !$0.polled }.map(\.rate)
        let with = sides.filter(\.polled).map(\.rate)
        let diff = (mean(with) / mean(without) - 1) * 100
        let range = { (a: [Double]) in a.map { BenchReport.grouped($0) }.joined(separator: ", ") }
        let noise = max(spread(with), spread(without))
        var rows = [
            BenchReport.Row(
                "ingest at saturation (QoS 0, normal), \(Int(seconds)) s a side, \(with.count) rounds: page polled every \(pollInterval) s / not polled",
                "\(range(with)) / \(range(without)) readings/s (mean \(diff >= 0 ? "+" : "")\(BenchReport.fixed(diff, 1)) %; same-side spread "
                    + "\(BenchReport.fixed(spread(with), 1)) % polled, \(BenchReport.fixed(spread(without), 1)) % not)",
                // The page must cost no more than noise: polled faster than the spread is no cost.
                diff >= -noise ? "no slower beyond noise (diff >= -spread)" : "no slower beyond noise: NOT MET")
        ]
        if !paced.isEmpty {
            let p = paced.filter(\.polled).map(\.p99Ms)
            let n = paced.filter { !$0.polled }.map(\.p99Ms)
            let ms = { (a: [Double]) in a.map { BenchReport.fixed($0, 1) }.joined(separator: ", ") }
            rows.append(
                BenchReport.Row(
                    "publish-to-stored p99 at \(BenchReport.grouped(paced[0].offered)) readings/s paced: page polled / not polled",
                    "\(ms(p)) / \(ms(n)) ms (mean \(BenchReport.fixed(mean(p), 1)) / \(BenchReport.fixed(mean(n), 1)) ms)",
                    // Met when polled is no later than one side's runs differ among themselves.
                    mean(p) - mean(n) <= max(p.max()! - p.min()!, n.max()! - n.min()!)
                        ? "no later beyond noise (diff <= spread)" : "no later beyond noise: NOT MET"))
        }
        return rows
    }

    /// The table of each side, for the report.
    static func table(_ sides: [Side], paced: [Side] = []) -> String {
        var lines = [
            "| side | readings/s | seconds | polls | `/page.json` median / max ms | build max ms | build CPU ms (mean) | builds | JSON bytes |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for s in sides {
            lines.append(
                "| \(s.polled ? "polled" : "not polled") | \(BenchReport.grouped(s.rate)) | \(BenchReport.fixed(s.seconds, 1)) | "
                    + (s.polled
                        ? "\(s.polls) | \(BenchReport.fixed(s.pollMsMedian, 1)) / \(BenchReport.fixed(s.pollMsMax, 1)) | \(BenchReport.fixed(s.buildMsMax, 1)) | \(BenchReport.fixed(s.buildCPUMsMean, 1)) | \(s.builds) | \(BenchReport.grouped(Double(s.jsonBytes))) |"
                        : "- | - | - | - | - | - |"))
        }
        if !paced.isEmpty {
            lines += ["", "| paced side | offered/s | publish-to-stored p99 ms | polls | builds |", "| --- | ---: | ---: | ---: | ---: |"]
            for s in paced {
                lines.append(
                    "| \(s.polled ? "polled" : "not polled") | \(BenchReport.grouped(s.offered)) | \(BenchReport.fixed(s.p99Ms, 2)) | \(s.polled ? "\(s.polls)" : "-") | \(s.polled ? "\(s.builds)" : "-") |")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// What the poller thread and the bench share.
final class PollLog: Sendable {
    let stop = Atomic<Bool>(false)
    /// Polls are logged only while this is set (the measured window).
    let measuring = Atomic<Bool>(false)
    let polls = Mutex<[(ms: Double, buildMs: Double, buildCPUMs: Double, builds: Int, bytes: Int)]>([])
}
