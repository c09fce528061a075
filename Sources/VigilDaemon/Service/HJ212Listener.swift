import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import VigilCore
import VigilMQTT

/// `hj212.listen`: makes vigil the platform the data loggers on the gateway's LAN connect
/// to. One thread polls the listening sockets and every connection (the house pattern of a
/// dedicated thread for blocking work): frames split across reads or several in one read are
/// cut out of each connection's bytes by `HJ212.scan`, screened (CRC, fields, station, PW;
/// `HJ212Cutter`) and offered to the inbox with a topic that names the connection. The
/// ingest thread decodes and commits them and, after the commit, hands back the data answers
/// (`deliver`), which this thread writes.
///
/// Optional, like HTTP: a port in use or any other error is logged, shown, and retried with
/// backoff (0.5 s doubling to 30 s); ingest goes on. The listener never blocks in the inbox:
/// it holds at most a quarter of it, and while an offer is refused (ingest behind, or a flood)
/// it stops reading its sockets, so loggers see TCP back-pressure and the MQTT thread keeps its
/// room; nothing is dropped.
final class HJ212Listener: HJ212AnswerSink, Sendable {
    let address: ListenAddress
    let limits: HJ212Limits
    let inbox: Inbox
    let clock: any VigilClock
    let logger: Logger
    let status: Mutex<HJ212ListenerStatus>
    private let outgoing = Mutex<[(connection: Int, bytes: [UInt8])]>([])
    private let stopping = Atomic<Bool>(false)
    /// What ingest decodes with (set at start and on reload): the listener screens frames with it.
    private let decoder = Mutex<HJ212Decoder?>(nil)
    /// A pipe that wakes the poll loop: answers to write, or stop.
    private let wakeFDs = Atomic<Int64>(-1)
    private var wakeRead: Int32 { Int32(truncatingIfNeeded: wakeFDs.load(ordering: .acquiring) >> 32) }
    private var wakeWrite: Int32 { Int32(truncatingIfNeeded: wakeFDs.load(ordering: .acquiring)) }

    /// Never fails: what the listener needs (its wake pipe, its sockets) is made in `run()`,
    /// where a failure is logged and retried, so the daemon starts whatever happens here.
    init(address: ListenAddress, limits: HJ212Limits, inbox: Inbox, clock: any VigilClock, logger: Logger) {
        self.address = address
        self.limits = limits
        self.inbox = inbox
        self.clock = clock
        self.logger = logger
        status = Mutex(HJ212ListenerStatus(listen: "\(address)"))
    }

    deinit {
        if wakeFDs.load(ordering: .acquiring) != -1 {
            close(wakeRead)
            close(wakeWrite)
        }
    }

    /// The pipe that wakes the poll loop, made once (in `run()`).
    private func makeWakePipe() throws {
        guard wakeFDs.load(ordering: .acquiring) == -1 else { return }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ListenerError.system("pipe", errno) }
        for fd in fds { Self.nonBlocking(fd) }
        wakeFDs.store(Int64(fds[0]) << 32 | Int64(UInt32(bitPattern: fds[1])), ordering: .releasing)
    }

    var current: HJ212ListenerStatus { status.withLock { $0 } }

    /// From the ingest thread, after a commit: answers for their connections.
    func deliver(_ answers: [(connection: Int, bytes: [UInt8])]) {
        outgoing.withLock { $0.append(contentsOf: answers) }
        wake()
    }

    func use(_ decoder: HJ212Decoder?) {
        self.decoder.withLock { $0 = decoder }
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        wake()
    }

    private func wake() {
        guard wakeFDs.load(ordering: .acquiring) != -1 else { return }
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
    }

    private var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// The thread body: listens, serves, retries after errors; returns after `stop()`.
    func run() {
        var delay = 0.5
        var nextID = 0
        while !isStopping {
            do {
                try makeWakePipe()
                let sockets = try listen()
                delay = 0.5
                serve(sockets, nextID: &nextID)
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

    /// The poll loop, until `stop()`. `nextID` lives as long as the listener, so a connection
    /// after a re-listen never takes the number of one whose answers are still on their way.
    private func serve(_ sockets: [(Int32, String)], nextID: inout Int) {
        var connections: [Int: HJ212Connection] = [:]
        var perHost: [String: Int] = [:]
        var fds: [pollfd] = []
        var ids: [Int] = []
        var chunk = [UInt8](repeating: 0, count: limits.readChunk)
        var lastRefusalLog = -10.0
        var acceptPausedUntil = 0.0
        var inboxFull = false
        let burst = limits.framesPerSecond * limits.burstSeconds
        defer {
            for (_, c) in connections { close(c.fd) }
            status.withLock { $0.connections = 0 }
        }
        func closeConnection(_ id: Int, why: String) {
            guard let c = connections.removeValue(forKey: id) else { return }
            // A half frame left behind is a reject (truncated), kept for `vigil rejects` when
            // the inbox has room for it.
            if c.partialSince != nil, c.input.count >= 2, c.input[0] == 35, c.input[1] == 35 {
                c.input.withUnsafeBytes { _ = offer($0, topic: c.topic) }
            }
            close(c.fd)
            perHost[c.host, default: 1] -= 1
            if perHost[c.host] == 0 { perHost[c.host] = nil }
            let n = connections.count
            status.withLock { $0.connections = n }
            logger.debug("HJ 212 connection closed", metadata: ["peer": "\(c.peer)", "why": "\(why)"])
        }
        func cutting(_ c: inout HJ212Connection, _ id: Int, now: Double) -> HJ212Cut {
            var counts: (handed: UInt64, bad: UInt64) = (0, 0)
            let cutter = HJ212Cutter(limits: limits, decoder: decoder.withLock { $0 })
            let topic = c.topic
            let r = cutter.cut(&c, now: now, counts: &counts) { offer($0, topic: topic) }
            if counts.handed > 0 || counts.bad > 0 {
                status.withLock {
                    $0.frames += counts.handed
                    $0.badFrames += counts.bad
                }
            }
            return r
        }
        while !isStopping {
            let before = Monotonic.seconds()
            fds.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            let accepting = before >= acceptPausedUntil
            for (fd, _) in sockets { fds.append(pollfd(fd: accepting ? fd : -1, events: Int16(POLLIN), revents: 0)) }
            var throttled = false
            for (id, c) in connections {
                // Read only while there is room: the inbox share free, a token in the bucket,
                // less than a frame waiting. Otherwise the socket is left alone (-1: poll skips
                // it) and the peer sees TCP back-pressure.
                let tokens = min(burst, c.tokens + (before - c.refilledAt) * limits.framesPerSecond)
                let read = !inboxFull && tokens >= 1 && c.input.count < HJ212.maxFrameBytes
                if !read && (tokens < 1 || !c.input.isEmpty) { throttled = true }
                let events = (read ? Int16(POLLIN) : 0) | (c.output.isEmpty ? 0 : Int16(POLLOUT))
                fds.append(pollfd(fd: events == 0 ? -1 : c.fd, events: events, revents: 0))
                ids.append(id)
            }
            let ready = poll(&fds, nfds_t(fds.count), inboxFull || throttled || !accepting ? 20 : 250)
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
            // New connections: refused at the bounds, never at the cost of one that is open.
            for i in 0..<sockets.count where fds[1 + i].revents != 0 {
                for _ in 0..<64 {
                    // (accept4 is not in Glibc's Swift overlay: the flags are set right after.)
                    let fd = accept(sockets[i].0, nil, nil)
                    if fd < 0 {
                        let code = errno
                        if code != EAGAIN && code != EWOULDBLOCK && code != EINTR && code != ECONNABORTED {
                            status.withLock {
                                $0.errors += 1
                                $0.lastError = "accept: \(String(cString: strerror(code))) (errno \(code))"
                                $0.lastErrorAt = Timestamp.now().rfc3339
                            }
                            // Out of descriptors (or another error): the pending connection stays
                            // in the backlog; stop polling the socket a while instead of spinning.
                            acceptPausedUntil = now + 0.5
                        }
                        break
                    }
                    Self.nonBlocking(fd)
                    let (peer, host) = Self.peerName(fd)
                    let fromHost = perHost[host] ?? 0
                    if connections.count >= limits.maxConnections || fromHost >= limits.maxConnectionsPerPeer {
                        close(fd)
                        let perPeer = connections.count < limits.maxConnections
                        status.withLock {
                            $0.refused += 1
                            if perPeer { $0.refusedPerPeer += 1 }
                        }
                        if now - lastRefusalLog >= 1 {
                            lastRefusalLog = now
                            logger.warning(
                                perPeer
                                    ? "HJ 212 listener: connection refused, hj212.max_connections_per_peer are open from its address"
                                    : "HJ 212 listener: connection refused, hj212.max_connections are open",
                                metadata: [
                                    "peer": "\(peer)", "max_connections": "\(limits.maxConnections)",
                                    "max_connections_per_peer": "\(limits.maxConnectionsPerPeer)",
                                ])
                        }
                        continue
                    }
                    let id = nextID
                    nextID += 1
                    connections[id] = HJ212Connection(fd: fd, peer: peer, host: host, now: now, burst: burst, id: id)
                    perHost[host] = fromHost + 1
                    let n = connections.count
                    status.withLock {
                        $0.accepted += 1
                        $0.connections = n
                    }
                }
            }
            // Each connection: frames left from an earlier turn, then a chunk read and cut.
            inboxFull = false
            for (k, id) in ids.enumerated() {
                let revents = fds[1 + sockets.count + k].revents
                guard var c = connections[id] else { continue }
                c.refill(now: now, rate: limits.framesPerSecond, burst: burst)
                var outcome = HJ212Cut.ok
                if !c.input.isEmpty && !inboxFull { outcome = cutting(&c, id, now: now) }
                if case .ok = outcome, revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    let n = read(c.fd, &chunk, chunk.count)
                    if n > 0 {
                        c.input.append(contentsOf: chunk[0..<n])
                        c.lastActive = now
                        outcome = cutting(&c, id, now: now)
                    } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                        connections[id] = c
                        closeConnection(id, why: n == 0 ? "closed by the peer" : "read error \(errno)")
                        continue
                    }
                }
                connections[id] = c
                switch outcome {
                case .ok: break
                case .inboxFull: inboxFull = true
                case .hostile(let why):
                    status.withLock { $0.closedHostile += 1 }
                    logger.warning("HJ 212 listener: closed a hostile connection", metadata: ["peer": "\(c.peer)", "why": "\(why)"])
                    closeConnection(id, why: why)
                }
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
            // Idle connections go, and slow ones: no valid frame within `firstFrameTimeout` of
            // connecting, or a frame started and not finished within `frameTimeout`.
            var idle = 0
            var slow = 0
            for (id, c) in connections {
                if now - c.lastActive > limits.idleTimeout {
                    idle += 1
                    closeConnection(id, why: "idle")
                } else if c.goodFrames == 0 && now - c.openedAt > limits.firstFrameTimeout && !(c.partialSince == nil && !c.input.isEmpty) {
                    // (Whole frames held back by the inbox or the bucket are not slowness.)
                    slow += 1
                    closeConnection(id, why: "no valid frame within \(limits.firstFrameTimeout) s of connecting")
                } else if let since = c.partialSince, now - since > limits.frameTimeout {
                    slow += 1
                    closeConnection(id, why: "a frame not finished within \(limits.frameTimeout) s")
                }
            }
            if idle > 0 || slow > 0 {
                status.withLock {
                    $0.timedOut += UInt64(idle)
                    $0.closedSlow += UInt64(slow)
                }
            }
        }
    }

    private func offer(_ bytes: UnsafeRawBufferPointer, topic: [UInt8]) -> Bool {
        topic.withUnsafeBytes { t in
            inbox.offer(topic: t, payload: bytes, receivedAt: clock.now())
        }
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
