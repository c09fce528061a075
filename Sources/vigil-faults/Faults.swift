import Foundation
import VigilCore
import VigilMQTT
import VigilStorage
import VigilTestSupport

/// `vigil-faults`: vigil's guarantees under injected faults, with real brokers, a real
/// daemon and real SQLite files. Prints a table (fault, times, readings and messages lost,
/// duplicates, recovery time) and exits 1 if any guarantee did not hold.
///
///     vigil-faults                     the CI run: 20 crashes, 10 broker restarts, 30 s upstream outage,
///                                      max_size in an outage, a full disk, the hot tier's faults, clock steps
///     vigil-faults --soak 2h           the same faults in rounds until the time is up
///     vigil-faults --crashes 200 --restarts 50 --outage 300
@main
struct Faults {
    static func main() throws {
        var options = Options()
        var args = Array(CommandLine.arguments.dropFirst())
        while !args.isEmpty {
            let a = args.removeFirst()
            func value() -> String {
                guard !args.isEmpty else { usage("\(a) needs a value") }
                return args.removeFirst()
            }
            switch a {
            case "--crashes": options.crashes = number(value(), a)
            case "--restarts": options.restarts = number(value(), a)
            case "--outage": options.outage = Double(number(value(), a))
            case "--seed": options.seed = UInt64(number(value(), a))
            case "--soak":
                guard let t = TimeSpan(parsing: value()) else { usage("--soak takes a span: 30m, 2h") }
                options.soak = t.seconds
            case "--only": options.only = Set(value().split(separator: ",").map(String.init))
            case DiskFullFault.resultOption:
                // The faults that mount a tmpfs, run in a user and mount namespace (see `Namespaced`).
                try Namespaced.child(value(), "buffer filesystem full") { try DiskFullFault.run() }
            case RuntimeFullFault.resultOption:
                try Namespaced.child(value(), "runtime directory full") { try RuntimeFullFault.run() }
            case "-h", "--help": usage(nil)
            default: usage("unknown argument \(a)")
            }
        }
        print("vigil-faults: \(options.crashes) crashes, \(options.restarts) broker restarts, \(Int(options.outage)) s upstream outage, seed \(options.seed)\(options.soak.map { ", soak for \(Int($0)) s" } ?? "")")
        var results: [FaultResult] = []
        let began = Date()
        var round = 0
        repeat {
            round += 1
            var rng = SeededGenerator(seed: options.seed &+ UInt64(round))
            if options.runs("crash") { results.append(try CrashFault.run(cycles: options.crashes, rng: &rng)) }
            if options.runs("broker") { results.append(try BrokerRestartFault.run(restarts: options.restarts, rng: &rng)) }
            if options.runs("outage") { results.append(try UpstreamOutageFault.run(seconds: options.outage)) }
            if options.runs("maxsize") { results.append(try MaxSizeFault.run(seconds: 20)) }
            if options.runs("disk") { results.append(try DiskFullFault.run()) }
            if options.runs("hot") {
                results.append(try HotTierFaults.crashInHotTier())
                results.append(try HotTierFaults.hotTierGone())
                results.append(try HotTierFaults.atSizeBound())
                results.append(try RuntimeFullFault.run())
            }
            if options.runs("clock") { results.append(try ClockFault.run()) }
        } while options.soak.map({ Date().timeIntervalSince(began) < $0 }) ?? false
        let table = FaultResult.table(results)
        print("")
        print(table)
        let failures = results.flatMap(\.failures)
        for f in failures { print("FAIL: \(f)") }
        if let path = try? FaultResult.write(table) { print("written to \(path)") }
        exit(failures.isEmpty ? 0 : 1)
    }

    static func number(_ text: String, _ option: String) -> Int {
        guard let n = Int(text), n >= 0 else { usage("\(option) takes a whole number, not \(text)") }
        return n
    }

    static func usage(_ problem: String?) -> Never {
        if let problem { print("vigil-faults: \(problem)") }
        print("usage: vigil-faults [--crashes N] [--restarts N] [--outage SECONDS] [--seed N] [--soak 2h] [--only crash,broker,outage,maxsize,disk,hot,clock]")
        exit(problem == nil ? 0 : 2)
    }
}

struct Options {
    var crashes = 20
    var restarts = 10
    var outage = 30.0
    var seed: UInt64 = 1
    var soak: Double?
    var only: Set<String> = []
    func runs(_ fault: String) -> Bool { only.isEmpty || only.contains(fault) }
}

/// One fault's outcome: a row of the table, and what did not hold.
struct FaultResult: Codable {
    var fault: String
    var times: Int
    var readingsLost: String
    var messagesLost: String
    var duplicates: String
    var recovery: String
    var failures: [String] = []

    static func table(_ rows: [FaultResult]) -> String {
        var s = "| fault | times | readings lost | upstream messages lost | duplicates | recovery | holds |\n"
        s += "| --- | --- | --- | --- | --- | --- | --- |\n"
        for r in rows {
            s += "| \(r.fault) | \(r.times) | \(r.readingsLost) | \(r.messagesLost) | \(r.duplicates) | \(r.recovery) | \(r.failures.isEmpty ? "yes" : "**NO**") |\n"
        }
        return s
    }

    static func write(_ table: String) throws -> String {
        let dir = Repository.root.appendingPathComponent("results").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        let path = "\(dir)/faults-\(f.string(from: Date())).md"
        let text = "# vigil-faults, \(Timestamp.now().rfc3339), \(ProcessInfo.processInfo.activeProcessorCount) cores\n\n\(table)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try? text.write(toFile: "\(dir)/faults-latest.md", atomically: true, encoding: .utf8)
        return path
    }
}

/// Milliseconds, for the table.
func ms(_ seconds: Double) -> String { String(format: "%.0f ms", seconds * 1000) }

func percentile(_ xs: [Double], _ p: Double) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
}

/// Sequence-numbered readings published at a paced rate on a thread of its own, until stopped.
/// `@unchecked Sendable`: `stopped` and `report` are read and written only under `lock`.
final class Publishing: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var report: PublishReport?
    private let done = DispatchSemaphore(value: 0)

    convenience init(_ publisher: TestPublisher, rate: Double) {
        self.init(run: { stop in publisher.publish(count: Int.max / 2, rate: rate, shouldStop: stop) })
    }

    /// Runs `body` on a thread of its own; `body` publishes until the function it is given returns true.
    init(run body: @escaping @Sendable (_ shouldStop: () -> Bool) -> PublishReport) {
        DispatchQueue.global().async {
            let r = body { self.lock.withLock { self.stopped } }
            self.lock.withLock { self.report = r }
            self.done.signal()
        }
    }

    /// Returns once the publishing thread has sent its last reading: what it sent.
    @discardableResult
    func stop() -> PublishReport {
        lock.withLock { stopped = true }
        done.wait()
        return lock.withLock { report! }
    }

    /// Stops, waits until the broker has acknowledged every reading sent and the daemon has
    /// stored what it got; returns how many were sent.
    func stopAndDrain(_ publisher: TestPublisher, into daemon: DaemonProcess, failures: inout [String]) -> Int {
        let sent = stop().sent
        if !publisher.publisher.waitForAcknowledgements(sent, timeout: 60) { failures.append("the broker did not acknowledge every reading") }
        waitUntilDrained(daemon, atLeast: Int64(sent))
        return sent
    }
}

/// The gateway's broker, an upstream broker with a collector on it, and a daemon between
/// them (not started) with `rules` as its rule file.
struct FaultRig {
    let local: Broker
    let upstream: Broker
    let collector: UpstreamCollector
    let daemon: DaemonProcess

    /// - Parameter adjust: edits the daemon's config text (a smaller max_size, say).
    init(gateway: String, maxInflight: Int? = 20, rules: String, adjust: (String) -> String = { $0 }) throws {
        local = try Broker()
        upstream = try Broker()
        collector = try UpstreamCollector(broker: upstream)
        daemon = try DaemonProcess(
            config: adjust(
                DaemonProcess.config(
                    gateway: gateway, localPort: local.port,
                    extra: DaemonProcess.upstreamSection(port: upstream.port, maxInflight: maxInflight))))
        try rules.write(toFile: daemon.directory.file("rules.d/r.yaml"), atomically: true, encoding: .utf8)
    }

    /// What upstream received of the outbox so far.
    func tally() throws -> UpstreamTally {
        let received = collector.all.filter { $0.seq > 0 && !$0.retained }
        // The last seq given, from meta (rows of the outbox, the newest too, are pruned once
        // delivered when the buffer is over max_size).
        let maxSeq = try scalar(daemon, "SELECT coalesce((SELECT CAST(value AS INTEGER) - 1 FROM meta WHERE key = 'next_seq'), 0)")
        return UpstreamTally(maxSeq: maxSeq, received: received, distinct: Set(received.map(\.seq)))
    }
}

/// Upstream messages against the outbox: seqs never received, and redeliveries.
struct UpstreamTally {
    let maxSeq: Int64
    let received: [UpstreamCollector.Message]
    let distinct: Set<Int64>
    /// Seqs up to the outbox's highest that never arrived.
    var missing: Int64 { maxSeq - Int64(distinct.filter { $0 <= maxSeq }.count) }
    var duplicates: Int { received.count - distinct.count }
}

/// Waits until the stored count stops moving (what the broker held for vigil has drained).
func waitUntilDrained(_ daemon: DaemonProcess, atLeast: Int64, timeout: TimeInterval = 120) {
    var last: Int64 = -1
    var stableSince = Date()
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let c = daemon.storedCount()
        if c != last {
            last = c
            stableSince = Date()
        } else if c >= atLeast || Date().timeIntervalSince(stableSince) > 3 {
            if Date().timeIntervalSince(stableSince) > 0.5 { return }
        }
        usleep(50_000)
    }
}

/// The stored values of `filter`, with how many rows each has.
func storedValueCounts(_ daemon: DaemonProcess, _ filter: String = "#") throws -> [Int: Int] {
    var counts: [Int: Int] = [:]
    for r in try daemon.readings(filter) { counts[Int(r.value), default: 0] += 1 }
    return counts
}

/// A query on the daemon's buffer, on a connection of its own.
func scalar(_ daemon: DaemonProcess, _ sql: String) throws -> Int64 {
    let db = try SQLiteDatabase(path: BufferOptions(directory: daemon.stateDir).databasePath, readOnly: true)
    db.setBusyTimeout(milliseconds: 5000)
    return try db.scalarInt(sql) ?? 0
}
