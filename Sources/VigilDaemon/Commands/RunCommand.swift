import ArgumentParser
import Foundation
import Logging
import VigilCore
import VigilStorage

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
}
