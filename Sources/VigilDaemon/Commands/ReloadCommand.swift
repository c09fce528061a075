import ArgumentParser
import Foundation

extension VigilCommand {
    /// `systemctl reload vigil` runs this (`ExecReload=`): it checks the config and the rules
    /// first, so that a mistake fails the reload with its file:line:column in the journal and
    /// the daemon keeps what it runs; then it sends SIGHUP. A minimal Debian has no /bin/kill.
    struct Reload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the config and rules, then tell the running daemon to reload them (SIGHUP).")
        @OptionGroup var options: ConfigOptions
        @Option(help: "The daemon's pid (default: $MAINPID, which systemd sets for ExecReload).")
        var pid: Int32?

        func run() async throws {
            guard let target = pid ?? ProcessInfo.processInfo.environment["MAINPID"].flatMap(Int32.init), target > 0 else {
                printError("vigil reload: no daemon to reload: give --pid (systemd sets $MAINPID)")
                throw ExitCode(1)
            }
            _ = try options.loadSettings()
            guard kill(target, SIGHUP) == 0 else {
                printError("vigil reload: cannot signal pid \(target): \(String(cString: strerror(errno)))")
                throw ExitCode(1)
            }
            print("\(options.path): ok; reload requested from pid \(target)")
        }
    }
}
