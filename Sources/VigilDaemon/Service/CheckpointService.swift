import Logging
import ServiceLifecycle
import VigilStorage

/// Copies the WAL into the database file from its own connection, so the ingest thread's
/// commits never wait for a checkpoint: when the WAL holds `maxWALBytes` (4 MiB), or after
/// `maxWait` (30 minutes) with less. A page that several commits changed meanwhile (the last leaf of
/// the readings, the counters) is written to the file once, not once per commit.
struct CheckpointService: Service {
    let checkpointer: Checkpointer
    let frames: WALFrames
    let logger: Logger
    /// A WAL this long is copied into the database file at once...
    static let maxWALBytes = 4 << 20
    /// ...a shorter one when it has waited this long (seconds): the file stays a fair copy
    /// for the readers, and a quiet gateway's WAL does not sit there for days.
    static let maxWait = 1800.0

    func run() async throws {
        let stop = StopFlag()
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await DedicatedThread.run(name: "vigil checkpoint") {
                    var last = Monotonic.seconds()
                    let maxFrames = Int32(Self.maxWALBytes / checkpointer.pageSize)
                    while !stop.wait(seconds: 1) {
                        let n = frames.count
                        guard n >= maxFrames || (n > 0 && Monotonic.seconds() - last >= Self.maxWait) else { continue }
                        do {
                            try checkpointer.checkpoint()
                            frames.reset()
                            last = Monotonic.seconds()
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
