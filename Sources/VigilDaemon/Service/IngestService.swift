import ServiceLifecycle

/// The ingest thread as a service. On graceful shutdown it drains what the subscriber
/// handed over, commits it and returns, so nothing acknowledged is lost on SIGTERM.
/// It must stop after the subscriber: the service group stops services in reverse order.
struct IngestService: Service {
    let pipeline: IngestPipeline

    func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await DedicatedThread.run(name: "vigil ingest") { pipeline.run() }
            } onGracefulShutdown: {
                pipeline.stop()
            }
        } onCancel: {
            pipeline.stop()
        }
    }
}
