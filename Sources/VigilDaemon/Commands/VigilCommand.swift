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
        version: BuildInfo.line,
        subcommands: [Run.self, Check.self, Reload.self, Test.self, Status.self, Alerts.self, Export.self, Rejects.self, Simulate.self]
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

/// A line on stderr; under systemd (`ExecStartPre=vigil check`) with its syslog priority,
/// so the journal files it as an error (3) or a warning (4).
func printError(_ s: String, priority: Int = 3) {
    let prefix = VigilLogHandler.stderrIsJournal() ? "<\(priority)>" : ""
    FileHandle.standardError.write(Data((prefix + s + "\n").utf8))
}

func printWarning(_ s: String) { printError(s, priority: 4) }

func openReader(_ config: VigilConfig) throws -> BufferReader {
    do {
        return try BufferReader(options: config.buffer)
    } catch {
        printError("vigil: \(error.message) (\(config.buffer.databasePath))")
        throw ExitCode(1)
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
