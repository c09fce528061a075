import ServiceLifecycle
import VigilMQTT

/// The connection to the gateway's own broker, whose network thread feeds `LocalIngress`.
struct SubscriberService: Service {
    let client: MQTTClient

    func run() async throws {
        client.start()
        // Runs until the group shuts down; cancellation ends it too.
        try? await gracefulShutdown()
        let client = self.client
        await DedicatedThread.run(name: "vigil mqtt stop") { client.stop() }
    }
}
