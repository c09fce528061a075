import Foundation
import VigilCore
import VigilStorage
import VigilTestSupport

/// vigil at rising paced rates, then unpaced, for one configuration (QoS and durability).
/// Every step is a fresh daemon on a fresh buffer: its latency histogram, peak RSS and
/// buffer file belong to that step alone.
enum Sweep {
    struct Configuration: Sendable {
        var qos: Int32
        var durability: String
        var label: String { "QoS \(qos), \(durability)" }
    }

    static let configurations = [
        Configuration(qos: 0, durability: "normal"), Configuration(qos: 1, durability: "normal"),
        Configuration(qos: 0, durability: "full"), Configuration(qos: 1, durability: "full"),
    ]

    struct Plan: Sendable {
        /// The first paced rate; each next one doubles it.
        var firstRate: Double
        var maxRate: Double
        /// How long each paced step publishes.
        var stepSeconds: Double
        /// Readings in the unpaced run.
        var unpacedCount: Int
    }

    /// What one step measured.
    struct Measured {
        var offered: Double?
        var sent: Double
        var stored: Double
        var count: Int64
        var seconds: Double
        var p50: Double
        var p99: Double
        var p999: Double
        var idleRSS: Double
        var rss: Double
        var peakRSS: Double
        var cpuSeconds: Double
        var written: Double
        var fileBytes: Double
        var publisherMaxLag: Double
        /// The whole step, the daemon's start and stop included.
        var wall: Double

        var cpuPer10k: Double { count > 0 ? cpuSeconds / (Double(count) / 10_000) : 0 }
        var writtenPerReading: Double { count > 0 ? written / Double(count) : 0 }
        var filePerReading: Double { count > 0 ? fileBytes / Double(count) : 0 }

        /// Stored more than 5 % short of offered, or the publisher fell behind its schedule.
        var saturated: Bool {
            guard let offered else { return true }
            return stored < offered * 0.95 || sent < offered * 0.95
        }

        func step(_ config: Configuration, ceiling: Double) -> BenchReport.Step {
            BenchReport.Step(
                configuration: config.label, offered: offered, sent: sent, stored: stored, ceiling: ceiling, p50: p50, p99: p99,
                p999: p999, rssMB: rss, peakRSSMB: peakRSS, cpuPer10k: cpuPer10k, writtenPerReading: writtenPerReading,
                filePerReading: filePerReading, saturated: saturated)
        }
    }

    /// The paced steps up to saturation, then the unpaced run (best of `unpacedRuns`).
    static func run(
        _ config: Configuration, broker: Broker, topics: [String], plan: Plan, unpacedRuns: Int = 1, idleSettle: Double = 0
    ) throws -> [Measured] {
        var out: [Measured] = []
        var rate = plan.firstRate
        while rate <= plan.maxRate {
            let m = try step(
                config, broker: broker, topics: topics, rate: rate, count: Int(rate * plan.stepSeconds),
                settle: out.isEmpty ? idleSettle : 0)
            out.append(m)
            log(config, m)
            if m.saturated { break }
            rate *= 2
        }
        var best: Measured?
        for _ in 0..<max(1, unpacedRuns) {
            let m = try step(config, broker: broker, topics: topics, rate: 0, count: plan.unpacedCount)
            log(config, m)
            if best == nil || m.stored > best!.stored { best = m }
        }
        out.append(best!)
        return out
    }

    static func log(_ config: Configuration, _ m: Measured) {
        let what = m.offered.map { String(format: "%6.0f/s", $0) } ?? "unpaced"
        print(
            String(
                format: "  %@ %@: sent %.0f/s, stored %lld in %.2fs = %.0f/s; p50/p99/p99.9 %.2f/%.2f/%.2f ms; cpu %.2fs; lag %.0f ms; step %.1fs%@",
                config.label, what, m.sent, m.count, m.seconds, m.stored, m.p50, m.p99, m.p999, m.cpuSeconds,
                m.publisherMaxLag * 1000, m.wall, m.offered != nil && m.saturated ? "  <- saturated" : ""))
    }

    /// Realistic values (a supply voltage around 224 V), so rules judge what they would in the field.
    static func payload(_ i: Int, _ t: Timestamp) -> [UInt8] {
        Array("{\"value\":\(224 + Double(i % 50) / 10),\"ts\":\(t.secondsString),\"seq\":\(i)}".utf8)
    }

    /// One fresh daemon fed `count` readings at `rate` (0: as fast as the publisher can).
    /// - Parameter settle: seconds to wait after start before the idle RSS is read.
    static func step(
        _ config: Configuration, broker: Broker, topics: [String], rate: Double, count: Int, rules: [String: String] = [:],
        settle: Double = 0
    ) throws -> Measured {
        let began = DispatchTime.now().uptimeNanoseconds
        let daemon = try DaemonProcess(
            config: DaemonProcess.config(
                gateway: "gw-bench", localPort: broker.port, qos: Int(config.qos), durability: config.durability))
        for (name, text) in rules { try text.write(toFile: daemon.directory.file("rules.d/\(name)"), atomically: true, encoding: .utf8) }
        try daemon.start()
        defer { daemon.stop() }
        let pid = daemon.pid!
        if settle > 0 { Thread.sleep(forTimeInterval: settle) }
        let idle = ProcStat.rssMB(pid)
        // One reader for the polling: opening the buffer each time would cost the daemon CPU.
        var reader: BufferReader? = try daemon.reader()
        let stored = { (try? reader?.counters())?[CounterName.readingsStored] ?? 0 }
        let base = stored()
        let cpu0 = ProcStat.cpuSeconds(pid)
        let written0 = ProcStat.writeBytes(pid)
        let pub = try TestPublisher(broker: broker, topics: topics, qos: config.qos)
        let start = DispatchTime.now().uptimeNanoseconds
        let report = pub.publisher.run(count: count, rate: rate) { i, t in (topics[i % topics.count], payload(i, t)) }
        // Until every reading is stored, or nothing moves for 5 s.
        var last = stored() - base
        var lastChange = DispatchTime.now().uptimeNanoseconds
        while last < Int64(count) {
            usleep(2_000)
            let c = stored() - base
            let now = DispatchTime.now().uptimeNanoseconds
            if c != last {
                last = c
                lastChange = now
            } else if now - lastChange > 5_000_000_000 {
                print("  vigil stopped at \(c) of \(count) readings")
                break
            }
        }
        let seconds = Double(lastChange - start) / 1e9
        let cpu = ProcStat.cpuSeconds(pid) - cpu0
        let written = ProcStat.writeBytes(pid) - written0
        let rss = ProcStat.rssMB(pid)
        let peak = ProcStat.peakRSSMB(pid)
        pub.close()
        // The status record is written every second: wait for one that counts every reading.
        var status = daemon.status()
        eventually(timeout: 3, interval: 0.05) {
            status = daemon.status()
            return (status?.readingsStored ?? 0) >= UInt64(base + last)
        }
        // Without other connections the daemon checkpoints and drops the WAL when it stops:
        // the database file is then what the readings take on disk.
        reader = nil
        daemon.stop()
        let dbPath = BufferOptions(directory: daemon.stateDir).databasePath
        let fileBytes = ((try? FileManager.default.attributesOfItem(atPath: dbPath))?[.size] as? NSNumber)?.doubleValue ?? 0
        return Measured(
            offered: rate > 0 ? rate : nil, sent: report.rate, stored: seconds > 0 ? Double(last) / seconds : 0, count: last,
            seconds: seconds, p50: status?.publishToStoredP50 ?? -1, p99: status?.publishToStoredP99 ?? -1,
            p999: status?.publishToStoredP999 ?? -1, idleRSS: idle, rss: rss, peakRSS: peak, cpuSeconds: cpu,
            written: written, fileBytes: fileBytes, publisherMaxLag: report.maxLag,
            wall: Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9)
    }
}

/// Figures from /proc for one process.
enum ProcStat {
    static func field(_ pid: Int32, _ name: String) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix(name + ":") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Double(parts[1]) { return kb / 1024 }
        }
        return 0
    }

    static func rssMB(_ pid: Int32) -> Double { field(pid, "VmRSS") }
    static func peakRSSMB(_ pid: Int32) -> Double { field(pid, "VmHWM") }

    /// User plus system CPU seconds so far.
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = s.lastIndex(of: ")")
        else { return 0 }
        let fields = s[s.index(after: close)...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 13, let u = Double(fields[11]), let k = Double(fields[12]) else { return 0 }
        return (u + k) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Bytes the process caused to be sent to the storage layer (`write_bytes` of /proc/PID/io).
    static func writeBytes(_ pid: Int32) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("write_bytes:") {
            return Double(line.dropFirst("write_bytes:".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return 0
    }
}
