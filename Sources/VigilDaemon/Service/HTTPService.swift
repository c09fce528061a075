import FlyingSocks
import Foundation
import Logging
import ServiceLifecycle
import VigilCore
import VigilStorage

/// `/metrics` (Prometheus text format 0.0.4), `/healthz` and `/readyz` on `http.listen`.
///
/// Sockets come from FlyingSocks (async/await over poll/epoll, no dependencies); the HTTP
/// on top is the few lines three GET endpoints need. FlyingFox, its HTTP server, was the
/// first choice, but on Linux it imports FoundationNetworking and so links libcurl into a
/// binary that never makes an HTTP request; SwiftNIO-based servers cost minutes of build
/// and megabytes of memory for the same three endpoints.
struct HTTPService: Service {
    let daemon: Daemon
    let host: String
    let port: UInt16
    let logger: Logger

    func run() async throws {
        let pool: some AsyncSocketPool = .make(maxEvents: 20)
        try await pool.prepare()
        let socket = try Socket(domain: AF_INET, type: .stream)
        try socket.setValue(true, for: .localAddressReuse)
        try socket.bind(to: try sockaddr_in.inet(ip4: host, port: port))
        try socket.listen()
        let server = try AsyncSocket(socket: socket, pool: pool)
        logger.info("HTTP endpoints listening", metadata: ["http.listen": "\(host):\(port)"])
        let daemon = self.daemon
        let logger = self.logger
        // Closing the listening socket would not wake the accept, which waits in epoll: the
        // tasks are cancelled instead, which stops the pool's epoll_wait and each suspension.
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    do { try await pool.run() } catch where !Task.isCancelled {
                        logger.warning("HTTP endpoints stopped", metadata: ["error": "\(error)"])
                    } catch {}
                }
                group.addTask {
                    do {
                        for try await client in server.sockets {
                            Task { await Self.serve(client, daemon: daemon, logger: logger) }
                        }
                    } catch where !Task.isCancelled {
                        logger.warning("HTTP endpoints stopped", metadata: ["error": "\(error)"])
                    } catch {}
                }
                await group.next()
                group.cancelAll()
            }
        }
        try? server.close()
    }

    /// One request, one response, then the connection closes.
    static func serve(_ client: AsyncSocket, daemon: Daemon, logger: Logger) async {
        defer { try? client.close() }
        var request: [UInt8] = []
        do {
            while request.count < 8192 {
                let chunk = try await client.read(atMost: 2048)
                if chunk.isEmpty { break }
                request += chunk
                if request.count >= 4, request.suffix(4) == [13, 10, 13, 10] { break }
            }
        } catch {
            return
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let (status, type, body) = respond(method: line.first.map(String.init) ?? "", path: line.dropFirst().first.map(String.init) ?? "", daemon: daemon)
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        try? await client.write(Data((head + body).utf8))
    }

    static func respond(method: String, path: String, daemon: Daemon) -> (String, String, String) {
        let text = "text/plain; charset=utf-8"
        guard method == "GET" || method == "HEAD" else { return ("405 Method Not Allowed", text, "GET only\n") }
        switch path.split(separator: "?").first.map(String.init) ?? "" {
        case "/metrics":
            return ("200 OK", "text/plain; version=0.0.4; charset=utf-8", MetricsText.render(daemon))
        case "/healthz":
            return daemon.healthy(within: 10)
                ? ("200 OK", text, "ok\n") : ("503 Service Unavailable", text, "ingest or the MQTT loop is not moving\n")
        case "/readyz":
            let ready = daemon.readiness.load(ordering: .acquiring) && daemon.status.local.connected
            return ready
                ? ("200 OK", text, "ready\n")
                : ("503 Service Unavailable", text, "not ready: the local broker is not connected and subscribed\n")
        default:
            return ("404 Not Found", text, "/metrics, /healthz, /readyz\n")
        }
    }
}
