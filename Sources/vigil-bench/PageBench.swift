import Foundation
import Synchronization
import VigilCore
import VigilStorage
import VigilTestSupport

/// Ingest at saturation with the technician's page polled every second, against the same
/// without polling: a fresh daemon each side (both with the HTTP listener on), fed unpaced
/// at QoS 0 for `seconds`; the sides alternate (without, with, without, with...) so that a
/// drift of the machine does not land on one side only.
enum PageBench {
    struct Side {
        var polled: Bool
        var seconds: Double
        var stored: Int64
        var rate: Double { seconds > 0 ? Double(stored) / seconds : 0 }
        /// Polls made (each one `GET /` and one `GET /page.json`) and how long `/page.json` took.
        var polls = 0
        var pollMsMedian = 0.0
        var pollMsMax = 0.0
        /// The largest `build_ms` a poll saw, the mean `build_cpu_ms`, and the builds the daemon made.
        var buildMsMax = 0.0
        var buildCPUMsMean = 0.0
        var builds = 0
        var jsonBytes = 0
    }

    static func run(broker: Broker, topics: [String], seconds: Double, rounds: Int) throws -> [Side] {
        var out: [Side] = []
        for round in 0..<rounds {
            for polled in [false, true] {
                let s = try side(broker: broker, topics: topics, seconds: seconds, polled: polled)
                print(
                    String(
                        format: "  page %@ (round %d): %.0f readings/s over %.1f s%@", polled ? "polled every second" : "not polled  ", round + 1,
                        s.rate, s.seconds,
                        polled
                            ? String(
                                format: "; %d polls, /page.json median %.1f ms, max %.1f ms; build max %.1f ms, CPU %.1f ms a build, %d builds, %d bytes", s.polls,
                                s.pollMsMedian, s.pollMsMax, s.buildMsMax, s.buildCPUMsMean, s.builds, s.jsonBytes) : ""))
                out.append(s)
            }
        }
        return out
    }

    static func side(broker: Broker, topics: [String], seconds: Double, polled: Bool) throws -> Side {
        let port = FreePort.next()
        let daemon = try DaemonProcess(
            config: DaemonProcess.config(gateway: "gw-bench", localPort: broker.port, qos: 0, extra: "http:\n  listen: 127.0.0.1:\(port)\n"))
        try daemon.start()
        defer { daemon.stop() }
        eventually(timeout: 10) { httpGet(port: port, path: "/readyz")?.status == 200 }
        let reader = try daemon.reader()
        let stored = { (try? reader.counters())?[CounterName.readingsStored] ?? 0 }

        // The poller: every second, the page and its JSON, as a browser left open would (the
        // page itself fetches every 5 s: this is five such browsers).
        let log = PollLog()
        let poller = Thread {
            while !log.stop.load(ordering: .relaxed) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = httpGet(port: port, path: "/")
                let t1 = DispatchTime.now().uptimeNanoseconds
                let json = httpGet(port: port, path: "/page.json")
                let ms = Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e6
                if let body = json?.body, let d = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] {
                    let entry = (ms, d["build_ms"] as? Double ?? 0, d["build_cpu_ms"] as? Double ?? 0, d["builds"] as? Int ?? 0, body.utf8.count)
                    log.polls.withLock { $0.append(entry) }
                }
                let spent = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if spent < 1 { usleep(useconds_t((1 - spent) * 1e6)) }
            }
        }

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
                }
                return now >= end
            },
            message: { i, t in (topics[i % topics.count], Sweep.payload(i, t)) })
        let count = stored() - (base ?? 0)
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - startNs) / 1e9
        log.stop.store(true, ordering: .relaxed)
        pub.close()
        while polled && !poller.isFinished { usleep(10_000) }
        var s = Side(polled: polled, seconds: elapsed, stored: count)
        let p = log.polls.withLock { $0 }
        if !p.isEmpty {
            let ms = p.map(\.ms).sorted()
            s.polls = p.count
            s.pollMsMedian = ms[ms.count / 2]
            s.pollMsMax = ms.last!
            s.buildMsMax = p.map(\.buildMs).max()!
            // Each build once (polls within a second see the same one).
            var seen: [Int: Double] = [:]
            for e in p { seen[e.builds] = e.buildCPUMs }
            s.buildCPUMsMean = seen.values.reduce(0, +) / Double(seen.count)
            s.builds = p.map(\.builds).max()!
            s.jsonBytes = p.last!.bytes
        }
        return s
    }

    /// The summary row: each side's best and worst, and the difference of the means.
    static func row(_ sides: [Side], seconds: Double) -> BenchReport.Row {
        let without = sides.filter { !$0.polled }.map(\.rate)
        let with = sides.filter(\.polled).map(\.rate)
        let mean = { (a: [Double]) in a.reduce(0, +) / Double(max(1, a.count)) }
        let diff = (mean(with) / mean(without) - 1) * 100
        let range = { (a: [Double]) in a.map { BenchReport.grouped($0) }.joined(separator: ", ") }
        return BenchReport.Row(
            "ingest at saturation (QoS 0, normal), \(Int(seconds)) s a side: page polled every second / not polled",
            "\(range(with)) / \(range(without)) readings/s (mean \(diff >= 0 ? "+" : "")\(BenchReport.fixed(diff, 1)) %)",
            "within noise")
    }

    /// The table of each side, for the report.
    static func table(_ sides: [Side]) -> String {
        var lines = [
            "| side | readings/s | seconds | polls | `/page.json` median / max ms | build max ms | build CPU ms (mean) | builds | JSON bytes |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for s in sides {
            lines.append(
                "| \(s.polled ? "polled every second" : "not polled") | \(BenchReport.grouped(s.rate)) | \(BenchReport.fixed(s.seconds, 1)) | "
                    + (s.polled
                        ? "\(s.polls) | \(BenchReport.fixed(s.pollMsMedian, 1)) / \(BenchReport.fixed(s.pollMsMax, 1)) | \(BenchReport.fixed(s.buildMsMax, 1)) | \(BenchReport.fixed(s.buildCPUMsMean, 1)) | \(s.builds) | \(BenchReport.grouped(Double(s.jsonBytes))) |"
                        : "- | - | - | - | - | - |"))
        }
        return lines.joined(separator: "\n")
    }
}

/// What the poller thread and the bench share.
final class PollLog: Sendable {
    let stop = Atomic<Bool>(false)
    let polls = Mutex<[(ms: Double, buildMs: Double, buildCPUMs: Double, builds: Int, bytes: Int)]>([])
}
