import Dispatch
import Logging
import Synchronization

/// Writes the status record `vigil status` reads (in the runtime directory) off the ingest
/// thread: encoding it and the atomic file write took 1 to 6 ms there each second, while
/// the readings that arrived waited in the inbox, acknowledged to the broker (the window a
/// crash can lose). Records are written in order on one queue; `writeLast` waits for those
/// before it and writes the stop's record last. A failed write is logged once and retried
/// with the next record, a second later.
final class StatusWriter: Sendable {
    private let queue = DispatchQueue(label: "vigil.status")
    private let runtimeDir: String
    private let logger: Logger
    private let failing = Mutex(false)

    init(runtimeDir: String, logger: Logger) {
        self.runtimeDir = runtimeDir
        self.logger = logger
    }

    /// Encodes (`make`) and writes a record on the writer's queue.
    func write(_ make: @escaping @Sendable () -> String) {
        queue.async { self.store(make()) }
    }

    /// Writes a record after every one queued before it, and returns when it is written.
    func writeLast(_ json: String) {
        queue.sync { store(json) }
    }

    private func store(_ json: String) {
        do {
            try StatusFile.write(json, runtimeDir: runtimeDir)
            if failing.withLock({ f in defer { f = false }; return f }) {
                logger.notice("the status record is written again", metadata: ["runtime_dir": "\(runtimeDir)"])
            }
        } catch {
            if !failing.withLock({ f in defer { f = true }; return f }) {
                logger.warning("cannot write the status record", metadata: ["runtime_dir": "\(runtimeDir)", "error": "\(error)"])
            }
        }
    }
}
