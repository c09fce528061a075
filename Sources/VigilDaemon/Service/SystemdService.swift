import Foundation
import Logging
import ServiceLifecycle

/// Tells systemd when vigil is ready, pings the watchdog while the pipeline makes
/// progress, and says STOPPING=1 on the way out.
///
/// READY=1 comes once the buffer is open (the daemon exists) and the local broker has
/// acknowledged the subscriptions. WATCHDOG=1 is sent every half WATCHDOG_USEC, but only
/// while both the ingest thread and the MQTT network loop have shown progress within one
/// watchdog period: a wedged commit or MQTT loop stops the pings, and systemd restarts vigil.
struct SystemdService: Service {
    let notifier: SystemdNotifier
    let daemon: Daemon
    let logger: Logger

    func run() async throws {
        let start = ContinuousClock.now
        // Ready once subscribed.
        while !daemon.ingress.subscribed.load(ordering: .acquiring) {
            try await Task.sleep(for: .milliseconds(50))
            pollWedge()
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
        }
        notifier.notify("READY=1\nSTATUS=ingesting from \(daemon.config.local.host):\(daemon.config.local.port)")
        daemon.readiness.store(true, ordering: .releasing)
        logger.info("ready", metadata: ["startup_seconds": "\(ContinuousClock.now - start)"])
        // The start's code is done with: its pages go back to the kernel.
        try? await Task.sleep(for: .seconds(1))
        StartupPages.release(logger: logger)
        let period = notifier.watchdogInterval ?? 1
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                pollWedge()
                if notifier.watchdogInterval != nil, daemon.healthy(within: period * 2) {
                    notifier.notify("WATCHDOG=1")
                }
                try? await Task.sleep(for: .milliseconds(Int(min(period, 1) * 1000)))
            }
        } onGracefulShutdown: {
            notifier.notify("STOPPING=1\nSTATUS=stopping: committing what was received")
        }
    }

    /// A test hook, compiled into debug builds only: while `<state_dir>/.wedge` exists,
    /// the ingest thread is wedged.
    private func pollWedge() {
        #if VIGIL_TEST_HOOKS
        daemon.pipeline.wedgedByFile.store(
            FileManager.default.fileExists(atPath: daemon.config.stateDir + "/.wedge"), ordering: .relaxed)
        #endif
    }
}
