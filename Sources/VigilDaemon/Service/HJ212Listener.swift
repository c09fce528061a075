import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import VigilCore
import VigilMQTT

/// The bounds that keep a hostile or careless logger from holding the listener.
struct HJ212Limits: Sendable {
    /// Open connections at most; one more is accepted and closed at once (refused): the
    /// loggers already connected are never closed to make room.
    var maxConnections = 64
    /// A connection that sends nothing for this long is closed (a half frame with it).
    var idleTimeout = 300.0
    /// Bytes a connection may send in a row without a frame before it is closed.
    var maxGarbage = 2 * HJ212.maxFrameBytes
    /// Answers a peer that does not read may have waiting before it is closed.
    var maxPendingOutput = 64 * 1024
    /// Bytes taken from one connection per turn, so that none starves the others.
    var readChunk = 16 * 1024
}

/// The HJ 212 listener's state for `vigil status` and `/metrics`.
public struct HJ212ListenerStatus: Codable, Sendable, Equatable {
    public var listen: String
    public var listening = false
    public var addresses: [String] = []
    public var lastError: String?
    public var lastErrorAt: String?
    /// Failed attempts to listen, failed accepts.
    public var errors: UInt64 = 0
    public var connections = 0
    public var accepted: UInt64 = 0
    /// Connections closed at once because `max_connections` were open.
    public var refused: UInt64 = 0
    public var timedOut: UInt64 = 0
    /// Connections closed for sending bytes that are no frames, or not reading their answers.
    public var closedHostile: UInt64 = 0
    /// Frames (and runs of bytes that are none) handed to ingest.
    public var frames: UInt64 = 0
    /// Data answers (CN=9014) written, and those whose connection had gone.
    public var answers: UInt64 = 0
    public var answersDropped: UInt64 = 0
}

/// `hj212.listen`: makes vigil the platform the data loggers on the gateway's LAN connect
/// to. One thread polls the listening sockets and every connection (the house pattern of a
/// dedicated thread for blocking work): frames split across reads or several in one read are
/// cut out of each connection's bytes by `HJ212.scan` and handed to the inbox, the same way
/// MQTT messages go, with a topic that names the connection. The ingest thread decodes and
/// commits them and, after the commit, hands back the data answers (`deliver`), which this
/// thread writes.
///
/// Optional, like HTTP: a port in use or any other error is logged, shown, and retried with
/// backoff (0.5 s doubling to 30 s); ingest goes on. When the inbox is full (ingest behind),
/// the thread waits in `push`, so loggers see TCP back-pressure; nothing is dropped.
final class HJ212Listener: HJ212AnswerSink, Sendable {
    let address: ListenAddress
    let limits: HJ212Limits
    let inbox: Inbox
    let clock: any VigilClock
    let logger: Logger
    private let status: Mutex<HJ212ListenerStatus>
    private let outgoing = Mutex<[(connection: Int, bytes: [UInt8])]>([])
    private let stopping = Atomic<Bool>(false)
    /// A pipe that wakes the poll loop: answers to write, or stop.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    init(address: ListenAddress, limits: HJ212Limits, inbox: Inbox, clock: any VigilClock, logger: Logger) throws {
        self.address = address
        self.limits = limits
        self.inbox = inbox
        self.clock = clock
        self.logger = logger
        status = Mutex(HJ212ListenerStatus(listen: "\(address)"))
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ListenerError.system("pipe", errno) }
        for fd in fds { Self.nonBlocking(fd) }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    var current: HJ212ListenerStatus { status.withLock { $0 } }

    /// From the ingest thread, after a commit: answers for their connections.
    func deliver(_ answers: [(connection: Int, bytes: [UInt8])]) {
        outgoing.withLock { $0.append(contentsOf: answers) }
        wake()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        wake()
    }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
    }

    private var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// The thread body: listens, serves, retries after errors; returns after `stop()`.
    func run() {
        var delay = 0.5
        while !isStopping {
            do {
                let sockets = try listen()
                delay = 0.5
                serve(sockets)
                for (fd, _) in sockets { close(fd) }
            } catch {
                let text = "\(error)"
                status.withLock {
                    $0.listening = false
                    $0.addresses = []
                    $0.lastError = text
                    $0.lastErrorAt = Timestamp.now().rfc3339
                    $0.errors += 1
                }
                logger.warning(
                    "HJ 212 listener is not listening; ingest goes on, retrying",
                    metadata: ["hj212.listen": "\(address)", "error": "\(text)", "retry_seconds": "\(delay)"])
                sleep(seconds: delay)
                delay = min(delay * 2, 30)
            }
        }
        status.withLock {
            $0.listening = false
            $0.connections = 0
        }
    }

    /// Waits up to `seconds`, or until `stop()`.
    private func sleep(seconds: Double) {
        let end = Monotonic.seconds() + seconds
        while !isStopping {
            let left = end - Monotonic.seconds()
            if left <= 0 { return }
            var p = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, Int32(min(left, 1) * 1000) + 1)
            drainWake()
        }
    }

    private func drainWake() {
        var sink = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &sink, 64) > 0 {}
    }

    enum ListenerError: Error, CustomStringConvertible {
        case system(String, Int32)
        case resolve(String)
        var description: String {
            switch self {
            case .system(let call, let code): return "\(call): \(String(cString: strerror(code))) (errno \(code))"
            case .resolve(let m): return m
            }
        }
    }

    /// Binds every address the host resolves to.
    private func listen() throws -> [(Int32, String)] {
        let resolved: [ListenAddress.Resolved]
        do {
            resolved = try address.resolve()
        } catch {
            throw ListenerError.resolve("\(error)")
        }
        var out: [(Int32, String)] = []
        var firstError: Error?
        for a in resolved {
            let fd = socket(a.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                firstError = firstError ?? ListenerError.system("socket", errno)
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if a.family == AF_INET6 {
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            var storage = a.storage
            let bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, a.length) }
            }
            guard bound == 0, Glibc.listen(fd, 128) == 0 else {
                firstError = firstError ?? ListenerError.system("bind \(a.text):\(address.port)", errno)
                close(fd)
                continue
            }
            out.append((fd, a.family == AF_INET6 ? "[\(a.text)]:\(address.port)" : "\(a.text):\(address.port)"))
        }
        guard !out.isEmpty else { throw firstError ?? ListenerError.resolve("\(address.host) resolves to no address") }
        let bound = out.map(\.1)
        status.withLock {
            $0.listening = true
            $0.addresses = bound
        }
        logger.info("HJ 212 listener listening", metadata: ["hj212.listen": "\(address)", "addresses": "\(bound.joined(separator: ","))"])
        return out
    }

    /// One logger's connection, owned by the poll thread.
    struct Connection {
        let fd: Int32
        let peer: String
        var input: [UInt8] = []
        var output: [UInt8] = []
        var lastActive: Double
        /// Bytes in a row that were no frame, and whether that run was handed on (once).
        var garbage = 0
        var garbageReported = false
    }

    /// The poll loop, until `stop()`.
    private func serve(_ sockets: [(Int32, String)]) {
        var connections: [Int: Connection] = [:]
        var nextID = 0
        var fds: [pollfd] = []
        var ids: [Int] = []
        var chunk = [UInt8](repeating: 0, count: limits.readChunk)
        var lastRefusalLog = -10.0
        defer {
            for (_, c) in connections { close(c.fd) }
            status.withLock { $0.connections = 0 }
        }
        func closeConnection(_ id: Int, why: String) {
            guard let c = connections.removeValue(forKey: id) else { return }
            // A half frame left behind is a reject (truncated), kept for `vigil rejects`.
            if c.input.count >= 2, c.input[0] == 35, c.input[1] == 35 { hand(c.input, connection: id) }
            close(c.fd)
            let n = connections.count
            status.withLock { $0.connections = n }
            logger.debug("HJ 212 connection closed", metadata: ["peer": "\(c.peer)", "why": "\(why)"])
        }
        while !isStopping {
            fds.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            for (fd, _) in sockets { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            for (id, c) in connections {
                fds.append(pollfd(fd: c.fd, events: Int16(POLLIN) | (c.output.isEmpty ? 0 : Int16(POLLOUT)), revents: 0))
                ids.append(id)
            }
            let ready = poll(&fds, nfds_t(fds.count), 250)
            if ready < 0 && errno != EINTR {
                logger.warning("HJ 212 listener: poll failed", metadata: ["errno": "\(errno)"])
                return
            }
            let now = Monotonic.seconds()
            // Answers from the ingest thread.
            if fds[0].revents != 0 { drainWake() }
            let answers = outgoing.withLock { o -> [(connection: Int, bytes: [UInt8])] in
                defer { o.removeAll() }
                return o
            }
            var dropped: UInt64 = 0
            for a in answers {
                if connections[a.connection] != nil {
                    connections[a.connection]!.output += a.bytes
                } else {
                    dropped += 1
                }
            }
            if !answers.isEmpty {
                let sent = UInt64(answers.count) - dropped
                status.withLock {
                    $0.answers += sent
                    $0.answersDropped += dropped
                }
            }
            // New connections: refused at the bound, never at the cost of one that is open.
            for i in 0..<sockets.count where fds[1 + i].revents != 0 {
                for _ in 0..<64 {
                    let fd = accept(sockets[i].0, nil, nil)
                    if fd < 0 {
                        if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED {
                            let code = errno
                            status.withLock {
                                $0.errors += 1
                                $0.lastError = "accept: \(String(cString: strerror(code))) (errno \(code))"
                                $0.lastErrorAt = Timestamp.now().rfc3339
                            }
                        }
                        break
                    }
                    if connections.count >= limits.maxConnections {
                        close(fd)
                        status.withLock { $0.refused += 1 }
                        if now - lastRefusalLog >= 1 {
                            lastRefusalLog = now
                            logger.warning(
                                "HJ 212 listener: connection refused, hj212.max_connections are open",
                                metadata: ["max_connections": "\(limits.maxConnections)"])
                        }
                        continue
                    }
                    Self.nonBlocking(fd)
                    let id = nextID
                    nextID += 1
                    connections[id] = Connection(fd: fd, peer: Self.peerName(fd), lastActive: now)
                    let n = connections.count
                    status.withLock {
                        $0.accepted += 1
                        $0.connections = n
                    }
                }
            }
            // Each connection: read a chunk, cut frames, write answers.
            for (k, id) in ids.enumerated() {
                let revents = fds[1 + sockets.count + k].revents
                guard var c = connections[id] else { continue }
                if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    let n = read(c.fd, &chunk, chunk.count)
                    if n > 0 {
                        c.input.append(contentsOf: chunk[0..<n])
                        c.lastActive = now
                        cut(&c, connection: id)
                        if c.garbage > limits.maxGarbage {
                            connections[id] = c
                            status.withLock { $0.closedHostile += 1 }
                            logger.warning(
                                "HJ 212 listener: closed a connection that sends no frames", metadata: ["peer": "\(c.peer)"])
                            closeConnection(id, why: "garbage")
                            continue
                        }
                    } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                        connections[id] = c
                        closeConnection(id, why: n == 0 ? "closed by the peer" : "read error \(errno)")
                        continue
                    }
                }
                connections[id] = c
            }
            for (id, var c) in connections where !c.output.isEmpty {
                // MSG_NOSIGNAL: a logger gone before its answer is EPIPE here, never a SIGPIPE for vigil.
                let n = c.output.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n > 0 {
                    c.output.removeFirst(n)
                } else if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    connections[id] = c
                    closeConnection(id, why: "write error \(errno)")
                    continue
                }
                connections[id] = c
                if c.output.count > limits.maxPendingOutput {
                    status.withLock { $0.closedHostile += 1 }
                    closeConnection(id, why: "does not read its answers")
                }
            }
            // Idle connections (a half frame and silence) go; the others are not touched.
            let idle = connections.filter { now - $0.value.lastActive > limits.idleTimeout }.map(\.key)
            if !idle.isEmpty {
                status.withLock { $0.timedOut += UInt64(idle.count) }
                for id in idle { closeConnection(id, why: "idle") }
            }
        }
    }

    /// Cuts what a connection sent into frames for the inbox. Bytes that are no frame are
    /// handed on once per run (the decoder rejects them, visibly), then skipped.
    private func cut(_ c: inout Connection, connection id: Int) {
        var consumed = 0
        var handed: UInt64 = 0
        c.input.withUnsafeBytes { all in
            scanning: while consumed < all.count {
                let rest = UnsafeRawBufferPointer(rebasing: all[consumed...])
                switch HJ212.scan(rest) {
                case .needMore:
                    break scanning
                case .lineBreaks(let n):
                    consumed += n
                case .frame(let n):
                    hand(UnsafeRawBufferPointer(rebasing: rest[0..<n]), connection: id)
                    handed += 1
                    consumed += n
                    c.garbage = 0
                    c.garbageReported = false
                case .garbage(let n), .badLength(let n):
                    if !c.garbageReported {
                        hand(UnsafeRawBufferPointer(rebasing: rest[0..<min(n, 256)]), connection: id)
                        handed += 1
                        c.garbageReported = true
                    }
                    c.garbage += n
                    consumed += n
                }
            }
        }
        if consumed > 0 { c.input.removeFirst(consumed) }
        if handed > 0 { status.withLock { $0.frames += handed } }
    }

    private func hand(_ bytes: UnsafeRawBufferPointer, connection id: Int) {
        HJ212Topic.topic(connection: id).withUnsafeBytes { t in
            inbox.push(topic: t, payload: bytes, receivedAt: clock.now())
        }
    }

    private func hand(_ bytes: [UInt8], connection id: Int) {
        bytes.withUnsafeBytes { hand($0, connection: id) }
    }

    static func peerName(_ fd: Int32) -> String {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
        }
        guard ok == 0 else { return "?" }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var serv = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let r = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, len, &host, socklen_t(host.count), &serv, socklen_t(serv.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard r == 0 else { return "?" }
        func text(_ c: [CChar]) -> String { String(decoding: c.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return text(host) + ":" + text(serv)
    }

    /// Non-blocking and closed on exec.
    static func nonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }
}

/// The listener as a service: its thread runs until graceful shutdown. Stopped before
/// ingest (the group stops in reverse order), so the frames it handed over are committed.
struct HJ212Service: Service {
    let listener: HJ212Listener

    func run() async {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await DedicatedThread.run(name: "vigil hj212") { listener.run() }
            } onGracefulShutdown: {
                listener.stop()
            }
        } onCancel: {
            listener.stop()
        }
    }
}
