import Dispatch
import Foundation
import Logging
import Synchronization
import VigilCore

/// One logfmt line per event on stderr: `level=info msg="..." key=value ...`, which Loki,
/// Vector and the journal's readers split into fields. Under systemd (`JOURNAL_STREAM` set)
/// each line starts with its syslog priority (`<3>`), which the journal takes off and keeps
/// as the priority, and carries no time of its own; otherwise it starts with `ts=` and an
/// RFC 3339 time.
public struct VigilLogHandler: LogHandler {
    /// The level `log.level` configures: every handler follows it (a reload changes it for
    /// all), unless its own `logLevel` was set, which as swift-log's contract says changes
    /// that logger alone.
    static let configuredLevel = Mutex<Logger.Level>(.info)

    private var ownLevel: Logger.Level?

    public var logLevel: Logger.Level {
        get { ownLevel ?? Self.configuredLevel.withLock { $0 } }
        set { ownLevel = newValue }
    }

    public var metadata: Logger.Metadata = [:]
    let label: String
    let journal: Bool

    static let output = Mutex<Void>(())
    /// The keys every line has.
    static let reserved: Set<String> = ["ts", "level", "msg"]
    static let limiter = Mutex(LogRateLimiter())

    public init(label: String, journal: Bool) {
        self.label = label
        self.journal = journal
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    static func quote(_ s: String) -> String {
        if !s.isEmpty && !s.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) { return s }
        return quoteAlways(s)
    }

    /// The message is always quoted, so that `msg="..."` reads the same whatever it holds.
    static func quoteAlways(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    /// One line: `<6>level=info msg="..." k=v` for the journal, `ts=... level=info msg="..." k=v`
    /// otherwise; metadata in key order.
    func render(level: Logger.Level, message: String, metadata: Logger.Metadata, time: String) -> String {
        var line = journal ? "<\(Self.priority(level))>" : "ts=\(time) "
        line += "level=\(level.rawValue) msg=\(Self.quoteAlways(message))"
        for key in metadata.keys.sorted() {
            // The line's own fields keep their meaning: metadata of the same name is renamed.
            let name = Self.reserved.contains(key) ? "meta.\(key)" : key
            line += " \(name)=\(Self.quote("\(metadata[key]!)"))"
        }
        return line + "\n"
    }

    public func log(event: LogEvent) {
        // The same warning or error over and over: a few lines, then a count.
        var suppressed = 0
        if event.level >= .warning {
            let now = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
            guard let n = Self.limiter.withLock({ $0.admit("\(event.message)", now: now) }) else { return }
            suppressed = n
        }
        var all = self.metadata
        if let m = event.metadata { all.merge(m) { $1 } }
        if suppressed > 0 { all["suppressed_before"] = "\(suppressed)" }
        let line = render(level: event.level, message: "\(event.message)", metadata: all, time: VigilTime.nowRFC3339())
        Self.output.withLock { _ in
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// Sets up swift-log once for the process.
    public static func bootstrap(level: Logger.Level) {
        let journal = stderrIsJournal()
        setLevel(level)
        LoggingSystem.bootstrap { label in VigilLogHandler(label: label, journal: journal) }
    }

    /// Whether stderr goes to the journal: systemd sets `JOURNAL_STREAM` for a service's
    /// stdout and stderr.
    public static func stderrIsJournal(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["JOURNAL_STREAM"] != nil
    }

    /// Changes the configured level (a reload): every logger without a level of its own follows.
    public static func setLevel(_ level: Logger.Level) {
        configuredLevel.withLock { $0 = level }
    }
}

enum VigilTime {
    static func nowRFC3339() -> String {
        var t = Timestamp.now()
        t.micros -= t.micros % 1000
        return t.rfc3339
    }
}

/// At most `burst` lines of the same message per `period`; past that they are counted, and
/// the next line that gets through says how many were suppressed.
public struct LogRateLimiter: Sendable {
    public var burst = 5
    public var period = 10.0
    struct Entry {
        var windowStart: Double
        var count: Int
        var suppressed: Int
    }
    private var entries: [String: Entry] = [:]

    public init() {}

    /// nil: suppress this line. Otherwise the number suppressed since the last line of it.
    public mutating func admit(_ key: String, now: Double) -> Int? {
        if entries.count > 1000 { entries.removeAll() }
        var e = entries[key] ?? Entry(windowStart: now, count: 0, suppressed: 0)
        if now - e.windowStart >= period {
            e.windowStart = now
            e.count = 0
        }
        e.count += 1
        if e.count > burst {
            e.suppressed += 1
            entries[key] = e
            return nil
        }
        let n = e.suppressed
        e.suppressed = 0
        entries[key] = e
        return n
    }
}
