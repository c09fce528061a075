import ArgumentParser
import Foundation
import Logging
import VigilCore
import VigilStorage

/// `vigil`: the edge telemetry daemon and its operator commands.
public struct VigilCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vigil",
        abstract: "Edge telemetry daemon: MQTT readings into a durable local buffer, early warnings, aggregates upstream.",
        subcommands: [Run.self, Check.self, Test.self, Status.self, Alerts.self, Export.self, Rejects.self, Simulate.self]
    )

    public init() {}
}

/// The config file option every command shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The main config file (default: $VIGIL_CONFIG or /etc/vigil/vigil.yaml).")
    var config: String?

    var path: String {
        config ?? ProcessInfo.processInfo.environment["VIGIL_CONFIG"] ?? "/etc/vigil/vigil.yaml"
    }

    /// Loads the config, or prints every mistake as file:line:column and exits 1.
    func load() throws -> VigilConfig {
        try orExit { () throws(ConfigError) in try VigilConfig.load(file: path) }
    }

    /// Loads the config and the rules, or prints every mistake and exits 1.
    func loadSettings() throws -> Settings {
        try orExit { () throws(ConfigError) in try Settings.load(file: path) }
    }

    private func orExit<T>(_ body: () throws(ConfigError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            for d in error.diagnostics { printError(d.description) }
            throw ExitCode(1)
        }
    }
}

func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

func openReader(_ config: VigilConfig) throws -> BufferReader {
    do {
        return try BufferReader(options: config.buffer)
    } catch {
        printError("vigil: \(error.message) (\(config.buffer.databasePath))")
        throw ExitCode(1)
    }
}

extension VigilCommand {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the daemon in the foreground (systemd Type=notify).")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let settings = try options.loadSettings()
            let config = settings.config
            VigilLogHandler.bootstrap(level: config.logLevel)
            let logger = Logger(label: "vigil")
            let daemon: Daemon
            do {
                daemon = try Daemon(config: config, rules: settings.rules, logger: logger)
            } catch {
                logger.critical("cannot start: \(error)")
                throw ExitCode(1)
            }
            try await daemon.run()
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Raw readings from the buffer, in time order.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "MQTT-style filter over series paths, e.g. water/+/+/water_level or energy/#.")
        var match: String = "#"
        @Option(help: "From this time (RFC 3339, a date, epoch seconds, or a span back from now such as 1h).")
        var since: String?
        @Option(help: "Up to (not including) this time.")
        var until: String?
        @Option(help: "csv or json.")
        var format: OutputFormat = .csv

        enum OutputFormat: String, ExpressibleByArgument { case csv, json }

        func validate() throws {
            if case .failure(let e) = TopicFilter.parse(match) { throw ValidationError("--match: \(e)") }
            for (name, v) in [("--since", since), ("--until", until)] {
                if let v, Timestamp.parseUserTime(v) == nil { throw ValidationError("\(name): cannot read '\(v)' as a time") }
            }
        }

        func run() async throws {
            let config = try options.load()
            let reader = try openReader(config)
            let filter = try TopicFilter(match)
            let out = BufferedOutput()
            var first = true
            switch format {
            case .csv: out.write("time,series,value,unit\n")
            case .json: out.write("[")
            }
            try reader.readings(
                matching: filter, since: since.flatMap { Timestamp.parseUserTime($0) },
                until: until.flatMap { Timestamp.parseUserTime($0) }
            ) { r in
                switch format {
                case .csv:
                    out.write("\(r.timestamp.rfc3339),\(r.series),\(JSONText.number(r.value)),\(CSV.field(r.unit ?? ""))\n")
                case .json:
                    out.write(first ? "\n" : ",\n")
                    out.write(
                        "{\"series\":\(JSONText.string(r.series)),\"time\":\"\(r.timestamp.rfc3339)\",\"ts\":\(r.timestamp.secondsString),\"value\":\(JSONText.number(r.value)),\"unit\":\(r.unit.map(JSONText.string) ?? "null")}"
                    )
                }
                first = false
            }
            if format == .json { out.write(first ? "]\n" : "\n]\n") }
            out.flush()
        }
    }

    struct Rejects: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The latest rejected messages and why, newest first.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "How many to show.") var limit: Int = 20
        @Flag(help: "One JSON object per line.") var json = false

        func run() async throws {
            let config = try options.load()
            let reader = try openReader(config)
            let counters = try reader.counters()
            let rows = try reader.rejects(limit: limit)
            if json {
                for r in rows {
                    print(
                        "{\"at\":\"\(r.at.rfc3339)\",\"topic\":\(JSONText.string(r.topic)),\"reason\":\"\(r.reason.code)\",\"detail\":\(JSONText.string(r.reason.detail)),\"payload_size\":\(r.payloadSize),\"payload_prefix\":\(JSONText.string(Printable.escape(r.payloadPrefix)))}"
                    )
                }
                return
            }
            let totals = counters.filter { $0.key.hasPrefix(CounterName.rejectedPrefix) }.sorted { $0.value > $1.value }
            if totals.isEmpty {
                print("no rejected messages")
                return
            }
            print("rejected since the buffer was created:")
            for (k, v) in totals { print("  \(k.dropFirst(CounterName.rejectedPrefix.count)): \(v)") }
            print("\nlatest \(rows.count):")
            for r in rows {
                print("\(r.at.rfc3339)  \(r.reason.code)  \(r.topic)")
                print("    \(r.reason.detail)")
                let more = r.payloadSize > r.payloadPrefix.count ? " ... (\(r.payloadSize) bytes)" : ""
                print("    payload: \(Printable.escape(r.payloadPrefix))\(more)")
            }
        }
    }
}

/// Stdout in large writes, for exports of millions of rows.
final class BufferedOutput {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        buffer.withUnsafeBytes { p in
            var off = 0
            while off < p.count {
                let n = Foundation.write(1, p.baseAddress! + off, p.count - off)
                if n <= 0 { break }
                off += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

enum CSV {
    static func field(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// Bytes shown to people: printable ASCII as is, the rest escaped.
enum Printable {
    static func escape(_ bytes: [UInt8]) -> String {
        var out = ""
        for b in bytes {
            if b >= 0x20 && b < 0x7F && b != UInt8(ascii: "\\") {
                out.append(Character(Unicode.Scalar(b)))
            } else if b == UInt8(ascii: "\\") {
                out += "\\\\"
            } else {
                out += String(format: "\\x%02x", b)
            }
        }
        return out
    }
}

extension SQLiteError {
    var messageText: String { message }
}

extension Error {
    /// A one-line message for people.
    var message: String {
        if let e = self as? SQLiteError { return e.message }
        return "\(self)"
    }
}
