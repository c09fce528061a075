import Foundation
import VigilCore
import VigilStorage
import VigilTestSupport

/// What vigil writes to flash at idle and at a few paced rates: the daemon's `write_bytes`
/// (tmpfs writes do not count there) from a few seconds after its start to the end of its
/// clean stop, so the stop's last flush and checkpoint are in, as a checkpoint would be in
/// the long run. Taken from this process's own /proc/self/io, to which the kernel adds a
/// child's counts when it is reaped.
enum WritesBench {
    struct Row {
        /// Readings per second (0: idle).
        var rate: Double
        var seconds: Double
        var readings: Int
        var bytes: Double

        var perSecond: Double { bytes / seconds }
        var perReading: Double? { readings > 0 ? bytes / Double(readings) : nil }
        var perDay: Double { perSecond * 86_400 }
        /// Days an 8 GB eMMC rated for 3,000 erase cycles would take this, before the
        /// card's own write amplification.
        var emmcDays: Double { perDay > 0 ? 8e9 * 3000 / perDay : .infinity }
    }

    static func run(broker: Broker, topics: [String], rates: [Double], seconds: Double) throws -> [Row] {
        try rates.map { rate in
            let row = try measure(broker: broker, topics: topics, rate: rate, seconds: seconds)
            print(
                String(
                    format: "  %@: %.0f B written in %.0f s = %.0f B/s%@", rate > 0 ? "\(Int(rate))/s" : "idle", row.bytes, row.seconds,
                    row.perSecond, row.perReading.map { String(format: ", %.0f B per reading", $0) } ?? ""))
            return row
        }
    }

    static func measure(broker: Broker, topics: [String], rate: Double, seconds: Double) throws -> Row {
        let before = ProcStat.writeBytes(getpid())
        let daemon = try DaemonProcess(config: DaemonProcess.config(gateway: "gw-writes", localPort: broker.port))
        try daemon.start()
        // The start (schema, the first status) is not what a day of running costs.
        Thread.sleep(forTimeInterval: 3)
        let atStart = ProcStat.writeBytes(daemon.pid!)
        var sent = 0
        if rate > 0 {
            let pub = try TestPublisher(broker: broker, topics: topics, qos: 1)
            let report = pub.publisher.run(count: Int(rate * seconds), rate: rate) { i, t in
                (topics[i % topics.count], Sweep.payload(i, t))
            }
            _ = pub.publisher.waitForAcknowledgements(report.sent, timeout: 30)
            sent = report.sent
            pub.close()
        } else {
            Thread.sleep(forTimeInterval: seconds)
        }
        _ = eventually(timeout: 10) { daemon.storedCount() >= Int64(sent) }
        daemon.stop()
        let total = ProcStat.writeBytes(getpid()) - before
        return Row(rate: rate, seconds: seconds, readings: sent, bytes: max(0, total - atStart))
    }

    static func table(_ rows: [Row], saturation: Sweep.Measured) -> String {
        var out = "| load | bytes written per second | per reading | per day | an 8 GB, 3,000-cycle eMMC lasts |\n"
        out += "| --- | ---: | ---: | ---: | ---: |\n"
        for r in rows {
            out += "| \(r.rate > 0 ? "\(BenchReport.grouped(r.rate)) readings/s" : "idle, no readings") "
            out += "| \(BenchReport.grouped(r.perSecond)) | \(r.perReading.map { BenchReport.grouped($0) } ?? "-") "
            out += "| \(bytes(r.perDay)) | \(days(r.emmcDays)) |\n"
        }
        let satDay = saturation.stored * saturation.writtenPerReading * 86_400
        out += "| saturation (\(BenchReport.grouped(saturation.stored)) readings/s, QoS 0) "
        out += "| \(BenchReport.grouped(saturation.stored * saturation.writtenPerReading)) | \(BenchReport.grouped(saturation.writtenPerReading)) "
        out += "| \(bytes(satDay)) | \(days(8e9 * 3000 / satDay)) |\n\n"
        out += "The daemon's write_bytes from /proc (the hot tier and the status record are on a tmpfs and do not count), "
        out += "from 3 s after its start to the end of its clean stop (its last flush and checkpoint included); "
        out += "the saturation row is the sweep's, during the step. The eMMC column is 8 GB x 3,000 cycles over the "
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
