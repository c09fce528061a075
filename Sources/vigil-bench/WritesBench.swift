import Foundation
import VigilCore
import VigilStorage
import VigilTestSupport

/// What vigil writes to flash at idle and at a few paced rates: the daemon's `write_bytes`
/// (tmpfs writes do not count there). A first run creates the buffer and every series and
/// stops; the measured run starts on that buffer, and its figures run from a few
/// seconds after its start (`live`) to the end of its clean stop (`total`, with its last
/// flush and a checkpoint of everything the run wrote, which in the long run happens at
/// 4 MiB of WAL or every 30 minutes): the daemon's own count at its exit, from `wait4`'s
/// rusage (this process's /proc/self/io would add the bench's own writes, and those of
/// every `vigil status` it ran).
enum WritesBench {
    struct Row {
        /// Readings per second (0: idle).
        var rate: Double
        var seconds: Double
        var readings: Int
        /// Written while running, and with the stop.
        var live: Double
        var total: Double

        var perSecond: Double { total / seconds }
        var perReading: Double? { readings > 0 ? total / Double(readings) : nil }
        var livePerReading: Double? { readings > 0 ? live / Double(readings) : nil }
        var perDay: Double { perSecond * 86_400 }
        /// Days an 8 GB eMMC rated for 3,000 erase cycles would take this, before the
        /// card's own write amplification.
        var emmcDays: Double { perDay > 0 ? 8e9 * 3000 / perDay : .infinity }
    }

    /// How long a row runs: `base`, and five times that at 30 readings/s. The stop's
    /// checkpoint copies every page the run changed into the database file once, as a
    /// gateway's checkpoint every 4 MiB of WAL or 30 minutes does; the pages that each
    /// flush writes again (page 1, the readings' interior page, the last leaves) cost that
    /// once per checkpoint, not once per minute. 60 s at 30/s is 1,800 readings, which puts
    /// them at about 35 bytes a reading (168 where the 25-minute run measured 133); five
    /// minutes measured 131. (At 300/s and more a minute holds enough readings.)
    static func seconds(rate: Double, base: Double) -> Double { rate == 30 ? base * 5 : base }

    static func run(broker: Broker, topics: [String], rates: [Double], seconds base: Double) throws -> [Row] {
        try rates.map { rate in
            let row = try measure(broker: broker, topics: topics, rate: rate, seconds: seconds(rate: rate, base: base))
            print(
                String(
                    format: "  %@: %.0f B written in %.0f s (%.0f while running) = %.0f B/s%@", rate > 0 ? "\(Int(rate))/s" : "idle",
                    row.total, row.seconds, row.live, row.perSecond, row.perReading.map { String(format: ", %.0f B per reading", $0) } ?? ""))
            return row
        }
    }

    /// Publishes at `rate` for `seconds` (nothing when 0); returns the readings sent.
    static func publish(_ broker: Broker, _ topics: [String], rate: Double, seconds: Double, first: Int = 0) throws -> Int {
        guard rate > 0 else {
            Thread.sleep(forTimeInterval: seconds)
            return 0
        }
        let pub = try TestPublisher(broker: broker, topics: topics, qos: 1)
        let report = pub.publisher.run(count: Int(rate * seconds), rate: rate) { i, t in
            (topics[i % topics.count], Sweep.payload(first + i, t))
        }
        _ = pub.publisher.waitForAcknowledgements(report.sent, timeout: 30)
        pub.close()
        return report.sent
    }

    static func measure(broker: Broker, topics: [String], rate: Double, seconds: Double) throws -> Row {
        let daemon = try DaemonProcess(config: DaemonProcess.config(gateway: "gw-writes", localPort: broker.port))
        try daemon.start()
        // The first run reaches every series, whatever the rate (1/s over 100 series would not).
        let warm = try publish(broker, topics, rate: max(rate, Double(topics.count) / 5), seconds: 10)
        _ = eventually(timeout: 10) { daemon.storedCount() >= Int64(warm) }
        daemon.stop()
        try daemon.start()
        Thread.sleep(forTimeInterval: 3)
        let pid = daemon.pid!
        let atStart = ProcStat.writeBytes(pid)
        let sent = try publish(broker, topics, rate: rate, seconds: seconds, first: warm)
        let live = ProcStat.writeBytes(pid) - atStart
        daemon.stop()
        let total = Double(daemon.lastWrittenBytes ?? 0) - atStart
        return Row(rate: rate, seconds: seconds, readings: sent, live: max(0, live), total: max(0, total))
    }

    static func table(_ rows: [Row], saturation: Sweep.Measured?) -> String {
        var out = "| load | run | bytes written per second | per reading | while running, per reading | per day | an 8 GB, 3,000-cycle eMMC lasts |\n"
        out += "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        for r in rows {
            out += "| \(r.rate > 0 ? "\(BenchReport.grouped(r.rate)) readings/s" : "idle, no readings") | \(BenchReport.grouped(r.seconds)) s "
            out += "| \(BenchReport.grouped(r.perSecond)) | \(r.perReading.map { BenchReport.grouped($0) } ?? "-") "
            out += "| \(r.livePerReading.map { BenchReport.grouped($0) } ?? BenchReport.grouped(r.live / r.seconds) + " B/s") "
            out += "| \(bytes(r.perDay)) | \(days(r.emmcDays)) |\n"
        }
        if let saturation {
            let satDay = saturation.stored * saturation.writtenPerReading * 86_400
            out += "| saturation (\(BenchReport.grouped(saturation.stored)) readings/s, QoS 0) | sweep step "
            out += "| \(BenchReport.grouped(saturation.stored * saturation.writtenPerReading)) | - | \(BenchReport.grouped(saturation.writtenPerReading)) "
            out += "| \(bytes(satDay)) | \(days(8e9 * 3000 / satDay)) |\n"
        }
        out += "\n"
        out += "The daemon's write_bytes from /proc; the hot tier and the status record are on a tmpfs and do not count. "
        out += "Each row is a second run on a buffer a first run at the same rate made (the series exist), measured "
        out += "from 3 s after its start to the end of its clean stop: its last flush and a checkpoint of all it wrote "
        out += "are in (in the long run a checkpoint comes at 4 MiB of WAL or every 30 minutes, so a short row overstates it; "
        out += "the 30/s row runs five minutes for that reason). \"While running\" leaves the stop out. "
        out += "The saturation row is the sweep's, during its step. The eMMC column is 8 GB x 3,000 cycles over the "
        out += "bytes a day, before the card's own write amplification.\n"
        return out
    }

    static func bytes(_ v: Double) -> String {
        if v >= 1e9 { return BenchReport.fixed(v / 1e9, 1) + " GB" }
        if v >= 1e6 { return BenchReport.fixed(v / 1e6, 1) + " MB" }
        if v >= 1e3 { return BenchReport.fixed(v / 1e3, 1) + " kB" }
        return BenchReport.grouped(v) + " B"
    }

    static func days(_ d: Double) -> String {
        guard d.isFinite else { return "-" }
        return d >= 3650 ? BenchReport.grouped(d / 365) + " years" : BenchReport.grouped(d) + " days"
    }
}
