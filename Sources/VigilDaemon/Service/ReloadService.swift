import ServiceLifecycle
import UnixSignals

/// SIGHUP reloads the config and rules (`systemctl reload vigil`).
struct ReloadService: Service {
    let daemon: Daemon

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            daemon.reload()
        }
    }
}
