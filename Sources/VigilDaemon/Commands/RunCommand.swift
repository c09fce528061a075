import ArgumentParser
import Foundation
import Logging
import VigilCore
import VigilStorage

extension VigilCommand {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the daemon in the foreground (systemd Type=notify).")
        @OptionGroup var options: ConfigOptions

        /// Everything that ends the daemon goes through the logger at critical (priority 2 in
        /// the journal): a bad config, a buffer that cannot be opened, an error out of a service.
        func run() async throws {
            VigilLogHandler.bootstrap(level: .info)
            let logger = Logger(label: "vigil")
            let settings: Settings
            do {
                settings = try Settings.load(file: options.path)
            } catch {
                for d in error.diagnostics { logger.critical("cannot start: \(d.description)") }
                throw ExitCode(1)
            }
            VigilLogHandler.setLevel(settings.config.logLevel)
            let daemon: Daemon
            do {
                daemon = try Daemon(config: settings.config, rules: settings.rules, logger: logger)
            } catch {
                logger.critical("cannot start: \(error.message)")
                throw ExitCode(1)
            }
            do {
                try await daemon.run()
            } catch {
                logger.critical("vigil stopped on an error: \(error.message)")
                throw ExitCode(1)
            }
        }
    }
}
