import Logging
import ServiceLifecycle
import VigilStorage

/// Copies the WAL into the database file every second from its own connection, so the
/// ingest thread's commits never wait for a checkpoint.
struct CheckpointService: Service {
    let checkpointer: Checkpointer
    let logger: Logger

    func run() async throws {
        let stop = StopFlag()
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await DedicatedThread.run(name: "vigil checkpoint") {
                    while !stop.wait(seconds: 1) {
                        do {
                            try checkpointer.checkpoint()
                        } catch {
                            logger.debug("checkpoint failed: \(error)")
                        }
                    }
                    _ = try? checkpointer.checkpoint()
                }
            } onGracefulShutdown: {
                stop.set()
            }
        } onCancel: {
            stop.set()
        }
    }
}
