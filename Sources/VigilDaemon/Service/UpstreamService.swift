import Dispatch
import ServiceLifecycle

/// The upstream connection and its sender thread. It stops after the subscriber and
/// before ingest, so the last acknowledgements are marked in ingest's final commit.
struct UpstreamService: Service {
    let sender: UpstreamSender

    func run() async throws {
        let s = sender
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await DedicatedThread.run(name: "vigil upstream") { s.run() }
            } onGracefulShutdown: {
                DispatchQueue.global().async { s.stop() }
            }
        } onCancel: {
            DispatchQueue.global().async { s.stop() }
        }
    }
}
