import Foundation
import VigilCore
import VigilStorage

/// The `vigil` binary run as a child process against a config the test writes, so tests
/// can stop it with SIGTERM, kill it with SIGKILL and start it again on the same state.
/// `@unchecked Sendable`: `process` and `starts` change only in `start`/`stop`/`kill`, which a
/// test calls from one task at a time.
public final class DaemonProcess: @unchecked Sendable {
    // Touched only by the owning test, one call at a time.
    public let directory: TemporaryDirectory
    public let configPath: String
    private var process: ChildProcess?
    public private(set) var starts = 0

    /// The built `vigil` executable: `$VIGIL_BINARY`, or next to the test bundle.
    public static var binary: String {
        if let b = ProcessInfo.processInfo.environment["VIGIL_BINARY"] { return b }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("vigil").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return Repository.root.appendingPathComponent(".build/debug/vigil").path
    }

    /// The standard three subscriptions of the SPEC, for a broker on `port`.
    /// - Parameter durability: `buffer.durability` (`normal` or `full`); nil leaves the default.
    public static func config(
        gateway: String = "gw-test", localPort: Int, qos: Int = 1, durability: String? = nil, extra: String = "",
        buffer: String = ""
    ) -> String {
        let durabilityLine = durability.map { "\n  durability: \($0)" } ?? ""
        return """
        gateway_id: \(gateway)
        state_dir: ./state
        runtime_dir: ./run
        rules_dir: ./rules.d
        local:
          host: 127.0.0.1
          port: \(localPort)
          qos: \(qos)
        subscriptions:
          - network: energy
            topic: energy/+/+/+
            layout: energy/{site}/{device}/{metric}
          - network: water
            topic: water/+/+
            layout: water/{site}/{device}
            format: json
          - network: urban
            topic: city/+/+/senml
            layout: city/{site}/{device}/senml
            format: senml
        buffer:
          retention: 7d
          max_size: 1GiB\(durabilityLine)
        \(buffer)
        \(extra)
        """
    }

    /// The `aggregate` and `upstream` sections for an upstream broker on `port`: 1-second
    /// windows closed a second late, so aggregates flow while a test watches.
    public static func upstreamSection(port: Int, maxInflight: Int? = 20, extra: String = "") -> String {
        """
        aggregate:
          window: 1s
          allowed_lateness: 1s
        upstream:
          host: 127.0.0.1
          port: \(port)\(maxInflight.map { "\n  max_inflight: \($0)" } ?? "")
        \(extra)
        """
    }

    public init(config: String) throws {
        directory = TemporaryDirectory("vigil-daemon")
        configPath = directory.file("vigil.yaml")
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory.file("rules.d"), withIntermediateDirectories: true)
        // `run/` is a tmpfs, as /run is on a gateway: what the hot tier writes there costs no
        // flash (and does not count in the daemon's write_bytes).
        if access("/dev/shm", W_OK) == 0 {
            let shm = TemporaryDirectory("vigil-run", in: "/dev/shm")
            runtime = shm
            try FileManager.default.createSymbolicLink(atPath: directory.file("run"), withDestinationPath: shm.path)
        } else {
            runtime = nil
        }
    }

    /// The tmpfs folder `run/` points to, when there is one.
    let runtime: TemporaryDirectory?

    public var stateDir: String { directory.file("state") }
    /// The daemon's runtime directory (`runtime_dir: ./run`): the status record, the hot tier.
    public var runtimeDir: String { directory.file("run") }
    public var logPath: String { directory.file("vigil.log") }
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    public var pid: Int32? { process?.pid }

    /// Starts the daemon and waits until it is connected to its broker.
    /// - Parameter fileLimit: `ulimit -n` for the daemon (systemd's default for a service is 1024).
    public func start(environment: [String: String] = [:], waitConnected: Bool = true, fileLimit: Int? = nil) throws {
        guard process == nil else { return }
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "JOURNAL_STREAM")
        env.removeValue(forKey: "NOTIFY_SOCKET")
        for (k, v) in environment { env[k] = v }
        let args = ["run", "--config", configPath]
        let p =
            try fileLimit.map { n in
                // The shell sets the limit and becomes the daemon (exec): the pid is the daemon's.
                try ChildProcess("/bin/sh", ["-c", "ulimit -n \(n) && exec \"$0\" \"$@\"", Self.binary] + args, environment: env, outputPath: logPath)
            } ?? ChildProcess(Self.binary, args, environment: env, outputPath: logPath)
        process = p
        starts += 1
        if waitConnected {
            let ok = eventually(timeout: 20) { status()?.local.connected == true && status()?.pid == p.pid }
            if !ok { throw DaemonError.notReady(self.log) }
        }
    }

    public enum DaemonError: Error, CustomStringConvertible {
        case notReady(String)
        public var description: String {
            switch self { case .notReady(let log): return "the daemon did not connect; its log:\n\(log.suffix(3000))" }
        }
    }

    /// SIGTERM, then waits for the exit. Returns the exit status.
    @discardableResult
    public func stop() -> Int32 {
        guard let p = process else { return 0 }
        p.signal(SIGTERM)
        let status = p.wait()
        lastWrittenBytes = p.writtenBytes
        process = nil
        return status
    }

    /// What the last run that `stop()` ended wrote to storage over its whole life (see
    /// `ChildProcess.writtenBytes`).
    public private(set) var lastWrittenBytes: Int64?

    /// SIGKILL: a crash, with no chance to commit.
    public func kill() {
        guard let p = process else { return }
        p.signal(SIGKILL)
        p.wait()
        process = nil
    }

    public func signal(_ sig: Int32) {
        process?.signal(sig)
    }

    public var isRunning: Bool { process?.isRunning ?? false }

    /// Runs `vigil ARGS --config <this config>` and returns its exit status and output.
    public func command(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try Self.run(Self.binary, args + ["--config", configPath])
    }

    public static func run(_ exe: String, _ args: [String], environment: [String: String]? = nil) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        try ChildProcess.run(exe, args, environment: environment)
    }

    /// The buffer with its hot tier, read while the daemon runs.
    public func reader() throws -> BufferReader {
        var options = BufferOptions(directory: stateDir)
        options.runtimeDirectory = runtimeDir
        return try BufferReader(options: options)
    }

    /// The daemon's last status record as written (`<runtime_dir>/status.json`).
    public func statusJSON() -> String? {
        try? String(contentsOfFile: runtimeDir + "/status.json", encoding: .utf8)
    }

    /// The daemon's last status record, decoded loosely.
    public func status() -> DaemonStatusView? {
        statusJSON().flatMap { DaemonStatusView(json: $0) }
    }

    /// Every stored reading whose series matches `filter`.
    public func readings(_ filter: String = "#") throws -> [StoredReading] {
        var out: [StoredReading] = []
        try reader().readings(matching: try TopicFilter(filter)) { out.append($0) }
        return out
    }

    /// Readings stored so far, from the buffer's counters.
    public func storedCount() -> Int64 {
        ((try? reader().counters()) ?? [:])[CounterName.readingsStored] ?? 0
    }

    deinit {
        if let p = process, p.isRunning { p.terminate() }
    }
}

/// The parts of the daemon's status record that tests look at.
public struct DaemonStatusView {
    public struct Local {
        public var connected: Bool
        public var connects: Int
    }

    public var pid: Int32
    public var local: Local
    public var upstreamConnected: Bool?
    public var publishToStoredP50: Double
    public var publishToStoredP99: Double
    public var publishToStoredP999: Double
    public var readingsStored: UInt64

    init?(json: String) {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let local = obj["local"] as? [String: Any], let ingest = obj["ingest"] as? [String: Any]
        else { return nil }
        pid = (obj["pid"] as? NSNumber)?.int32Value ?? 0
        self.local = Local(
            connected: (local["connected"] as? Bool) ?? false, connects: (local["connects"] as? NSNumber)?.intValue ?? 0)
        let lat = ingest["publish_to_stored_ms"] as? [String: Any]
        publishToStoredP50 = (lat?["p50"] as? NSNumber)?.doubleValue ?? 0
        publishToStoredP99 = (lat?["p99"] as? NSNumber)?.doubleValue ?? 0
        publishToStoredP999 = (lat?["p999"] as? NSNumber)?.doubleValue ?? 0
        readingsStored = (ingest["readings_stored"] as? NSNumber)?.uint64Value ?? 0
        upstreamConnected = (obj["upstream"] as? [String: Any])?["connected"] as? Bool
    }
}
