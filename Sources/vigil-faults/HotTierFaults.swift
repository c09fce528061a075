import Foundation
import VigilCore
import VigilStorage
import VigilTestSupport

/// The hot tier (`runtime_dir/hot.db`, a tmpfs) under faults: a crash while readings are
/// only there, a start that finds it gone, the tier at its size bound, its filesystem full.
enum HotTierFaults {
    static let rate = 2000.0
    static let topics = (0..<20).map { "energy/s\($0)/m/v" }

    /// Readings in the flash database alone, as a power cut would leave it.
    static func flashReadings(_ daemon: DaemonProcess) -> Int64 {
        (try? scalar(daemon, "SELECT count(*) FROM readings")) ?? -1
    }

    static func hot(_ daemon: DaemonProcess) -> [String: Any] {
        guard let json = daemon.statusJSON(), let data = json.data(using: .utf8),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return (obj["hot_tier"] as? [String: Any]) ?? [:]
    }

    /// kill -9 while the readings are in the hot tier only (no flush yet): the restart
    /// moves them into flash; none is lost beyond the crash window.
    static func crashInHotTier() throws -> FaultResult {
        var result = FaultResult(
            fault: "kill -9 with the readings in the hot tier only, then a restart that moves them", times: 1, readingsLost: "",
            messagesLost: "n/a", duplicates: "", recovery: "")
        let broker = try Broker()
        let daemon = try DaemonProcess(
            config: DaemonProcess.config(gateway: "gw-hot", localPort: broker.port, buffer: "  flush_interval: 1h"))
        try daemon.start()
        let publisher = try TestPublisher(broker: broker, topics: topics)
        let publishing = Publishing(publisher, rate: rate)
        usleep(4_000_000)
        daemon.kill()
        usleep(200_000)
        let acknowledged = publisher.publisher.acknowledged
        let inFlash = flashReadings(daemon)
        if inFlash != 0 { result.failures.append("flash held \(inFlash) readings before any flush: they did not go to the hot tier") }
        let inHot =
            (try? SQLiteDatabase(path: daemon.runtimeDir + "/hot.db", readOnly: true).scalarInt("SELECT count(*) FROM readings"))
            .flatMap { $0 } ?? 0
        if inHot == 0 { result.failures.append("the hot tier held no reading at the crash") }
        let started = Date()
        try daemon.start()
        let restart = Date().timeIntervalSince(started)
        let moved = daemon.log.split(separator: "\n").first { $0.contains("a crash left in the hot tier") }
        if moved == nil { result.failures.append("the restart did not say it moved the hot tier") }
        // The start moves the hot tier before it subscribes: flash has all of it now.
        if flashReadings(daemon) < inHot {
            result.failures.append("after the restart flash holds \(flashReadings(daemon)) readings; the hot tier held \(inHot)")
        }
        let sent = publishing.stopAndDrain(publisher, into: daemon, failures: &result.failures)
        let counts = try storedValueCounts(daemon)
        let lost = (0..<acknowledged).filter { counts[$0] == nil }.count
        let lostAfter = (acknowledged..<sent).filter { counts[$0] == nil }.count
        let window = UncommittedWindow.readings(rate: rate, commitInterval: 0.005)
        if lost > window { result.failures.append("the crash lost \(lost) readings, more than the window of \(window)") }
        if lostAfter > 0 { result.failures.append("\(lostAfter) readings sent after the restart were not stored") }
        let doubled = counts.values.filter { $0 > 1 }.count
        if doubled > 0 { result.failures.append("\(doubled) readings stored twice") }
        result.readingsLost = "\(lost) of \(acknowledged) at the crash (window \(window)), \(lostAfter) of \(sent - acknowledged) after"
        result.duplicates = "stored: \(doubled)"
        result.recovery = "restart to subscribed \(ms(restart)); the \(inHot) readings of the hot tier moved to flash before it"
        daemon.stop()
        publisher.close()
        print("hot tier crash: \(result.readingsLost); \(result.recovery)")
        return result
    }

    /// kill -9, then the runtime directory emptied (as a reboot empties /run): the start
    /// says what it lost (at most `flush_interval`) and counts it; the rest is there.
    static func hotTierGone() throws -> FaultResult {
        let flush = 2.0
        var result = FaultResult(
            fault: "kill -9, then the hot tier gone (as after a reboot), flush_interval 2 s", times: 1, readingsLost: "",
            messagesLost: "n/a", duplicates: "", recovery: "")
        let broker = try Broker()
        let daemon = try DaemonProcess(
            config: DaemonProcess.config(gateway: "gw-gone", localPort: broker.port, buffer: "  flush_interval: \(Int(flush))s"))
        try daemon.start()
        let publisher = try TestPublisher(broker: broker, topics: topics)
        let publishing = Publishing(publisher, rate: rate)
        usleep(5_500_000)
        daemon.kill()
        usleep(200_000)
        let acknowledged = publisher.publisher.acknowledged
        for name in (try? FileManager.default.contentsOfDirectory(atPath: daemon.runtimeDir)) ?? [] {
            try? FileManager.default.removeItem(atPath: daemon.runtimeDir + "/" + name)
        }
        try daemon.start()
        let said = daemon.log.split(separator: "\n").first { $0.contains("the hot tier is gone") }
        if said == nil { result.failures.append("the start did not say the hot tier was gone") }
        let sent = publishing.stopAndDrain(publisher, into: daemon, failures: &result.failures)
        let counts = try storedValueCounts(daemon)
        let lost = (0..<acknowledged).filter { counts[$0] == nil }.count
        let lostAfter = (acknowledged..<sent).filter { counts[$0] == nil }.count
        // At most one flush interval (and the crash window) of readings.
        let bound = Int(rate * (flush + 0.015)) + 1
        if lost > bound { result.failures.append("\(lost) readings lost, more than one flush_interval's \(bound)") }
        if lost == 0 { result.failures.append("nothing lost: the readings cannot have been in the hot tier") }
        if lostAfter > 0 { result.failures.append("\(lostAfter) readings sent after the restart were not stored") }
        let counted = (try? daemon.reader().counters())?[CounterName.hotTierLost] ?? 0
        if counted != 1 { result.failures.append("hot_tier_lost_total is \(counted), not 1") }
        result.readingsLost = "\(lost) of \(acknowledged) (at most one flush_interval: \(bound)), \(lostAfter) after"
        result.duplicates = "stored: \(counts.values.filter { $0 > 1 }.count)"
        result.recovery = "logged (\(said != nil ? "ERROR" : "not")) and counted (hot_tier_lost_total \(counted))"
        daemon.stop()
        publisher.close()
        print("hot tier gone: \(result.readingsLost); \(result.recovery)")
        return result
    }

    /// The hot tier at its size bound (1 MiB) with no timed flush: it moves to flash by size,
    /// again and again, and loses nothing.
    static func atSizeBound() throws -> FaultResult {
        var result = FaultResult(
            fault: "hot tier at its size bound (hot_max_size 1 MiB) under 5,000 readings/s", times: 1, readingsLost: "",
            messagesLost: "n/a", duplicates: "", recovery: "")
        let broker = try Broker()
        let daemon = try DaemonProcess(
            config: DaemonProcess.config(
                gateway: "gw-bound", localPort: broker.port, buffer: "  flush_interval: 1h\n  hot_max_size: 1MiB"))
        try daemon.start()
        let publisher = try TestPublisher(broker: broker, topics: topics)
        let publishing = Publishing(publisher, rate: 5000)
        var largest = 0.0
        for _ in 0..<80 {
            usleep(250_000)
            largest = max(largest, (hot(daemon)["bytes"] as? NSNumber)?.doubleValue ?? 0)
        }
        let sent = publishing.stopAndDrain(publisher, into: daemon, failures: &result.failures)
        usleep(1_200_000)
        let flushes = (hot(daemon)["flushes"] as? NSNumber)?.intValue ?? 0
        // A flush by size moves some 40,000 readings: in one go that held the ingest thread
        // for about 80 ms here (400 readings acknowledged and not committed at 5,000/s); in
        // steps of 1,024 each takes about 5 ms. 60 ms leaves room for a loaded machine.
        let pause = (hot(daemon)["flush_max_seconds"] as? NSNumber)?.doubleValue ?? .infinity
        if pause > 0.060 { result.failures.append("a flush held the ingest thread for \(ms(pause)) at once (at most 60 ms)") }
        let counts = try storedValueCounts(daemon)
        let lost = (0..<sent).filter { counts[$0] == nil }.count
        if lost > 0 { result.failures.append("\(lost) readings lost") }
        if flushes < 2 { result.failures.append("\(flushes) flushes: the bound did not move the hot tier") }
        if largest > 3 * 1_048_576 { result.failures.append("the hot tier grew to \(Int(largest)) bytes, past three times its bound") }
        result.readingsLost = "\(lost) of \(sent)"
        result.duplicates = "stored: \(counts.values.filter { $0 > 1 }.count)"
        result.recovery = "\(flushes) flushes by size in 20 s; largest hot tier seen \(Int(largest / 1024)) KiB; longest pause of a flush \(ms(pause))"
        daemon.stop()
        publisher.close()
        print("hot tier bound: \(result.readingsLost); \(result.recovery)")
        return result
    }
}

/// The runtime directory's filesystem full (an 8 MiB tmpfs, filled to the last byte) under
/// load: batches go to flash, nothing is lost, and the hot tier takes them again once there
/// is room. Mounts a tmpfs, so it runs as root or in a user namespace, like the disk fault.
enum RuntimeFullFault {
    static let resultOption = "--runtime-fault-result"

    static func run() throws -> FaultResult {
        if getuid() != 0 {
            return try Namespaced.run(resultOption, fault: "runtime directory full (8 MiB tmpfs)")
        }
        var result = FaultResult(
            fault: "runtime directory full (8 MiB tmpfs, filled) under 2,000 readings/s, then room again", times: 1,
            readingsLost: "", messagesLost: "n/a", duplicates: "", recovery: "")
        let mountPoint = TemporaryDirectory("vigil-runfull")
        guard DiskFullFault.mount(["-t", "tmpfs", "-o", "size=8m", "tmpfs", mountPoint.path]) else {
            result.readingsLost = "skipped: cannot mount a tmpfs here (needs root)"
            return result
        }
        defer { _ = DiskFullFault.mount(["-l", mountPoint.path], command: "/usr/bin/umount") }
        let broker = try Broker()
        let daemon = try DaemonProcess(config: DaemonProcess.config(gateway: "gw-runfull", localPort: broker.port))
        try? FileManager.default.removeItem(atPath: daemon.runtimeDir)
        try FileManager.default.createSymbolicLink(atPath: daemon.runtimeDir, withDestinationPath: mountPoint.path)
        try daemon.start()
        let publisher = try TestPublisher(broker: broker, topics: HotTierFaults.topics)
        let publishing = Publishing(publisher, rate: HotTierFaults.rate)
        usleep(2_000_000)
        // Fill what is left, to the last byte.
        let filler = mountPoint.file("filler")
        _ = FileManager.default.createFile(atPath: filler, contents: nil)
        if let h = FileHandle(forWritingAtPath: filler) {
            let block = Data(count: 64 << 10)
            while (try? h.write(contentsOf: block)) != nil {}
            try? h.close()
        }
        let full = Date()
        let gaveWay = eventually(timeout: 10, interval: 0.05) { daemon.log.contains("batches go to flash directly") }
        let gaveWayAfter = Date().timeIntervalSince(full)
        if !gaveWay { result.failures.append("vigil did not say the runtime directory was full") }
        usleep(3_000_000)
        if !daemon.isRunning { result.failures.append("vigil exited with the runtime directory full") }
        try? FileManager.default.removeItem(atPath: filler)
        let freed = Date()
        let back = eventually(timeout: 10, interval: 0.05) { daemon.log.contains("batches go to the hot tier") }
        if !back { result.failures.append("the hot tier did not take the batches again once there was room") }
        let recovery = Date().timeIntervalSince(freed)
        usleep(1_000_000)
        let sent = publishing.stopAndDrain(publisher, into: daemon, failures: &result.failures)
        let counts = try storedValueCounts(daemon)
        let lost = (0..<sent).filter { counts[$0] == nil }.count
        if lost > 0 { result.failures.append("\(lost) readings lost to the full runtime directory") }
        if daemon.log.contains("readings of this batch are lost") { result.failures.append("a batch was lost") }
        if !daemon.isRunning || daemon.stop() != 0 { result.failures.append("vigil did not stop cleanly after the fault") }
        result.readingsLost = "\(lost) of \(sent)"
        result.duplicates = "stored: \(counts.values.filter { $0 > 1 }.count)"
        result.recovery = "batches to flash \(ms(gaveWayAfter)) after it filled; to the hot tier again \(ms(recovery)) after room returned"
        publisher.close()
        print("runtime full: \(result.readingsLost); \(result.recovery)")
        return result
    }
}
