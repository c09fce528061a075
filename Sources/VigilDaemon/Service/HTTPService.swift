import FlyingSocks
import Foundation
import Logging
import ServiceLifecycle
import VigilCore

/// `/`, `/page.json`, `/metrics`, `/healthz` and `/readyz` on `http.listen`; optional, so nothing it meets
/// ends it or the daemon. A host that does not resolve, a port in use, EMFILE or any other
/// error is logged, shown on `vigil status` and retried with backoff (0.5 s doubling to
/// 30 s) while ingest, rules and upstream go on; `run()` returns only when the daemon stops.
///
/// Sockets come from FlyingSocks (async/await over epoll, no dependencies); the HTTP on top
/// is the few lines small GETs need (`HTTPRouter`). FlyingFox, its HTTP server, was the
/// first choice, but on Linux it imports FoundationNetworking and so links libcurl into a
/// binary that never makes an HTTP request; SwiftNIO-based servers cost minutes of build
/// and megabytes of memory for the same three endpoints.
struct HTTPService: Service {
    let address: ListenAddress
    let router: HTTPRouter
    let status: HTTPStatusBoard
    let logger: Logger
    var limits = HTTPLimits()

    func run() async {
        await cancelWhenGracefulShutdown {
            var delay = 0.5
            while !Task.isCancelled {
                do {
                    try await listenAndServe { delay = 0.5 }
                    // Only cancellation may end it; anything else is an error, retried.
                    if !Task.isCancelled { throw ListenError.stopped }
                } catch where !Task.isCancelled {
                    failed(error, retryIn: delay)
                    try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                    delay = min(delay * 2, 30)
                } catch {}
            }
        }
    }

    private func failed(_ error: Error, retryIn delay: Double) {
        let text = Self.describe(error)
        status.update {
            $0.listening = false
            $0.addresses = []
            $0.lastError = text
            $0.lastErrorAt = Timestamp.now().rfc3339
            $0.errors += 1
        }
        logger.warning(
            "HTTP endpoints are not serving; ingest goes on, retrying",
            metadata: ["http.listen": "\(address)", "error": "\(text)", "retry_seconds": "\(delay)"])
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? SocketError, case .failed(let type, let code, let message) = e { return "\(type.lowercased()): \(message) (errno \(code))" }
        return "\(error)"
    }

    /// Binds every address the host resolves to, then accepts until cancelled.
    /// - Parameter listening: called once the listeners are up.
    /// - Throws: when no address can be bound, or a listener fails.
    private func listenAndServe(listening: () -> Void) async throws {
        let addresses = try address.resolve()
        let pool: some AsyncSocketPool = .make(maxEvents: 64)
        try await pool.prepare()
        var listeners: [(AsyncSocket, String)] = []
        defer { for (l, _) in listeners { try? l.close() } }
        var firstError: Error?
        for a in addresses {
            do {
                listeners.append((try Self.listen(a, pool: pool), a.family == AF_INET6 ? "[\(a.text)]:\(address.port)" : "\(a.text):\(address.port)"))
            } catch {
                firstError = firstError ?? error
                logger.warning("HTTP: cannot listen on one address", metadata: ["address": "\(a.text)", "error": "\(Self.describe(error))"])
            }
        }
        guard !listeners.isEmpty else { throw firstError ?? ListenError.resolve(host: address.host, message: "no address") }
        let bound = listeners.map(\.1)
        status.update {
            $0.listening = true
            $0.addresses = bound
        }
        listening()
        logger.info("HTTP endpoints listening", metadata: ["http.listen": "\(address)", "addresses": "\(bound.joined(separator: ","))"])
        let connections = HTTPConnections(limits: limits, status: status)
        defer { connections.cancelAll() }
        let router = self.router
        let logger = self.logger
        let sockets = listeners.map(\.0)
        // The pool's loop, an accept loop per address and the deadline sweep: the first to
        // end (an error; or cancellation, at shutdown) ends the others.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            for l in sockets {
                group.addTask { try await Self.accept(on: l, connections: connections, router: router, logger: logger) }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(250))
                    connections.sweep(now: Monotonic.seconds())
                }
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    static func listen(_ a: ListenAddress.Resolved, pool: some AsyncSocketPool) throws -> AsyncSocket {
        let socket = try Socket(domain: a.family, type: .stream)
        do {
            try socket.setValue(true, for: .localAddressReuse)
            var one: Int32 = 1
            // [::] beside 0.0.0.0 (or ::1 beside 127.0.0.1 for localhost): each its own socket.
            if a.family == AF_INET6 {
                setsockopt(socket.file.rawValue, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            // As sockaddr_in or sockaddr_in6: FlyingSocks' sockaddr_storage recurses forever
            // when asked its size (0.27.1).
            var storage = a.storage
            if a.family == AF_INET6 {
                try socket.bind(to: withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) })
            } else {
                try socket.bind(to: withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) })
            }
            try socket.listen(maxPendingConnection: 128)
            return try AsyncSocket(socket: socket, pool: pool)
        } catch {
            try? socket.close()
            throw error
        }
    }

    /// Accepts until cancelled. Out of descriptors (EMFILE, ENFILE) or memory, it closes the
    /// oldest idle connection, waits (50 ms doubling to 2 s) and goes on; the listener stays.
    static func accept(on listener: AsyncSocket, connections: HTTPConnections, router: HTTPRouter, logger: Logger) async throws {
        var pause = 0.05
        while !Task.isCancelled {
            let client: AsyncSocket
            do {
                client = try await listener.accept()
                pause = 0.05
            } catch SocketError.failed(_, let code, let message) where [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(code) {
                connections.evictOldestIdle()
                connections.status.update {
                    $0.errors += 1
                    $0.lastError = "accept: \(message) (errno \(code))"
                    $0.lastErrorAt = Timestamp.now().rfc3339
                }
                logger.warning(
                    "HTTP: cannot accept a connection; closed the oldest idle one, ingest goes on",
                    metadata: ["error": "\(message)", "errno": "\(code)", "retry_seconds": "\(pause)"])
                try await Task.sleep(for: .milliseconds(Int(pause * 1000)))
                pause = min(pause * 2, 2)
                continue
            } catch SocketError.failed(_, let code, _) where [ECONNABORTED, EINTR, EPROTO, EPERM].contains(code) {
                continue
            }
            let id = connections.open(now: Monotonic.seconds())
            let task = Task {
                defer {
                    try? client.close()
                    connections.close(id)
                }
                await serve(client, id: id, connections: connections, router: router)
            }
            connections.attach(id, task)
        }
    }

    /// One request, one response, then the connection closes.
    static func serve(_ client: AsyncSocket, id: Int, connections: HTTPConnections, router: HTTPRouter) async {
        var received: [UInt8] = []
        do {
            while true {
                switch HTTPHead.parse(received) {
                case .incomplete:
                    received += try await client.read(atMost: 4096)
                case .reject(let response):
                    connections.writing(id, now: Monotonic.seconds())
                    try await client.write(Data(response.serialized(head: false)))
                    return
                case .request(let request):
                    connections.writing(id, now: Monotonic.seconds())
                    let response = await router.respond(to: request)
                    try await client.write(Data(response.serialized(head: request.isHead)))
                    return
                }
            }
        } catch {
            // The peer went away, or the deadline or the bound cancelled this connection.
        }
    }
}

extension HTTPRouter {
    /// vigil's endpoints.
    static func daemon(_ daemon: Daemon) -> HTTPRouter {
        var r = HTTPRouter()
        let listen = daemon.config.httpListen.flatMap { try? ListenAddress.parse($0).get() }
        r.page(
            PageService(
                daemon: daemon,
                auth: PageAuth(token: daemon.httpToken, port: listen?.port ?? 9464, hostNames: PageAuth.hostNames(listen: listen))))
        r.get("/metrics") { _ in
            HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array(MetricsText.render(daemon).utf8))
        }
        r.get("/healthz") { _ in
            daemon.healthy(within: 10) ? .text(200, "ok\n") : .text(503, "ingest or the MQTT loop is not moving\n")
        }
        r.get("/readyz") { _ in
            daemon.readiness.load(ordering: .acquiring) && daemon.status.local.connected
                ? .text(200, "ready\n") : .text(503, "not ready: the local broker is not connected and subscribed\n")
        }
        return r
    }
}

extension HTTPRouter {
    /// Headers of the page and its JSON: not cached (they change and may need a token), not
    /// framed by another site, no outside source of anything.
    static let pageHeaders: [(String, String)] = [
        ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        (
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'"
        ),
    ]

    /// `/` (the page) and `/page.json` (what it draws; `?series=TEXT` keeps the series whose
    /// path contains TEXT), behind the token when `http.token_file` is set.
    mutating func page(_ page: PageService) {
        get("/") { request in
            if case .respond(let r) = page.auth.check(request) { return r }
            return HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", headers: Self.pageHeaders, body: PageHTML.bytes)
        }
        get("/page.json") { request in
            if case .respond(let r) = page.auth.check(request) { return r }
            let body = await page.json(filter: PageAuth.queryValue("series", in: request.query) ?? "")
            return HTTPResponse(status: 200, contentType: "application/json", headers: Self.pageHeaders, body: body)
        }
    }
}
