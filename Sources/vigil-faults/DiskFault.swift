import Foundation
import VigilCore
import VigilStorage
import VigilTestSupport

/// The buffer's filesystem fills up under load (a 24 MiB tmpfs that another process fills),
/// then gets room again (remounted at 256 MiB): vigil must not crash, must say so clearly,
/// must lose nothing (the broker keeps the messages while ingest waits) and must resume by
/// itself.
///
/// Mounting a tmpfs needs root. Anyone else gets the same fault in a user and mount
/// namespace of their own (`unshare --user --map-root-user --mount`, which Debian allows
/// unprivileged users): this executable runs the fault there, brokers and daemon included,
/// and hands back the result in a file.
enum DiskFullFault {
    static let resultOption = "--disk-fault-result"

    static func run() throws -> FaultResult {
        if getuid() != 0 { return try Namespaced.run(resultOption, fault: "buffer filesystem full (24 MiB tmpfs)") }
        var result = FaultResult(fault: "buffer filesystem full (24 MiB tmpfs) under 5,000 readings/s, then room again", times: 1, readingsLost: "", messagesLost: "n/a", duplicates: "", recovery: "")
        let mountPoint = TemporaryDirectory("vigil-diskfull")
        guard mount(["-t", "tmpfs", "-o", "size=24m", "tmpfs", mountPoint.path]) else {
            result.readingsLost = "skipped: cannot mount a tmpfs here (needs root)"
            return result
        }
        defer { _ = mount(["-l", mountPoint.path], command: "/usr/bin/umount") }
        let broker = try Broker()
        let daemon = try DaemonProcess(config: DaemonProcess.config(gateway: "gw-disk", localPort: broker.port, buffer: "  min_free: 4MiB\n  flush_interval: 1s"))
        // The daemon's state folder is the tmpfs.
        try FileManager.default.createDirectory(atPath: mountPoint.file("state"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: daemon.stateDir, withDestinationPath: mountPoint.file("state"))
        try daemon.start()
        let publisher = try TestPublisher(broker: broker, topics: (0..<20).map { "energy/s\($0)/m/v" })
        let publishing = Publishing(publisher, rate: 5000)
        usleep(2_000_000)
        // vigil writes flash once per flush, so it would take minutes to fill 24 MiB: another
        // process fills it, to 2 MiB short of full (under min_free, over what a flush needs).
        let filler = mountPoint.file("filler")
        if let free = FileSystem.freeBytes(mountPoint.path), free > 2 << 20 {
            _ = FileManager.default.createFile(atPath: filler, contents: Data(count: Int(free - (2 << 20))))
        }
        let paused = eventually(timeout: 120, interval: 0.1) { daemon.log.contains("ingest paused") }
        if !paused { result.failures.append("ingest never paused (log: \(daemon.log.suffix(500)))") }
        usleep(3_000_000)  // full for a while, under load
        if !daemon.isRunning { result.failures.append("vigil exited with the disk full") }
        let sqliteFull = daemon.log.contains("disk is full")
        let remounted = Date()
        // With the type and source spelled out: in a user namespace mount(8) fails the short form.
        if !mount(["-t", "tmpfs", "-o", "remount,size=256m", "tmpfs", mountPoint.path]) {
            result.failures.append("could not grow the tmpfs")
        }
        let resumed = eventually(timeout: 30, interval: 0.02) { daemon.log.contains("ingest resumed") }
        let recovery = Date().timeIntervalSince(remounted)
        if !resumed { result.failures.append("ingest did not resume once space returned") }
        usleep(1_000_000)
        let sent = publishing.stopAndDrain(publisher, into: daemon, failures: &result.failures)
        let counts = try storedValueCounts(daemon)
        let missing = (0..<sent).filter { counts[$0] == nil }.count
        if missing > 0 { result.failures.append("\(missing) readings lost to the full disk") }
        if sqliteFull { result.failures.append("a commit failed with SQLITE_FULL: min_free did not keep the disk from filling") }
        if !daemon.isRunning || daemon.stop() != 0 { result.failures.append("vigil did not stop cleanly after the fault") }
        result.readingsLost = "\(missing) of \(sent)"
        result.duplicates = "stored: \(counts.values.filter { $0 > 1 }.count)"
        result.recovery = "ingest resumed \(ms(recovery)) after space returned"
        publisher.close()
        print("disk full: \(result.readingsLost) lost; \(result.recovery); log said: \(daemon.log.split(separator: "\n").first { $0.contains("ingest paused") } ?? "")")
        return result
    }

    @discardableResult
    static func mount(_ args: [String], command: String = "/usr/bin/mount") -> Bool {
        guard let r = try? ChildProcess.run(command, args) else { return false }
        return r.status == 0
    }
}

/// A fault that mounts a tmpfs, run by someone who is not root: this executable again, in a
/// user and mount namespace of its own (`unshare --user --map-root-user --mount`, which
/// Debian allows unprivileged users), brokers and daemon included, handing back the result
/// in a file.
enum Namespaced {
    static func run(_ option: String, fault: String) throws -> FaultResult {
        let dir = TemporaryDirectory("vigil-fault-result")
        let path = dir.file("result.json")
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let run = try ChildProcess.run("/usr/bin/unshare", ["--user", "--map-root-user", "--mount", me, option, path])
        print(run.stdout, terminator: "")
        guard let data = FileManager.default.contents(atPath: path), var result = try? JSONDecoder().decode(FaultResult.self, from: data)
        else {
            var missing = FaultResult(fault: fault, times: 0, readingsLost: "", messagesLost: "n/a", duplicates: "", recovery: "")
            let why = run.stderr.split(separator: "\n").last.map(String.init) ?? "exit status \(run.status)"
            if why.hasPrefix("unshare:") {
                // Only unshare itself failing means the fault cannot be had here.
                missing.readingsLost = "skipped: a tmpfs needs root or unprivileged user namespaces (\(why))"
            } else {
                missing.failures.append("the fault in a user namespace ended without a result: \(why)")
            }
            return missing
        }
        result.recovery += " (as a user, in a user namespace)"
        return result
    }

    /// In the namespace: runs the fault and writes its result to `path`.
    static func child(_ path: String, _ name: String, _ fault: () throws -> FaultResult) throws -> Never {
        var result: FaultResult
        do {
            result = try fault()
        } catch {
            result = FaultResult(fault: name, times: 1, readingsLost: "", messagesLost: "", duplicates: "", recovery: "")
            result.failures.append("the fault stopped: \(error)")
        }
        try JSONEncoder().encode(result).write(to: URL(fileURLWithPath: path))
        exit(0)
    }
}
