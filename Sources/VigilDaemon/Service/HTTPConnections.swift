import Foundation
import Synchronization

/// The bounds that keep a hostile or careless peer from holding the listener.
struct HTTPLimits: Sendable {
    /// Open connections at most; the next one closes the oldest that is still waiting for
    /// its request (or, if none waits, the oldest).
    var maxConnections = 64
    /// From accept to the end of the request head.
    var readDeadline = 5.0
    /// From the request to the last byte of the response.
    var writeDeadline = 10.0
}

/// The HTTP listener's state for `vigil status`, `/metrics` and the journal.
public struct HTTPStatus: Codable, Sendable, Equatable {
    public var listen: String
    public var listening: Bool
    /// The addresses bound, numeric (`127.0.0.1:9464`, `[::1]:9464`).
    public var addresses: [String] = []
    /// The last error: a failed bind, a resolve, EMFILE on accept.
    public var lastError: String?
    public var lastErrorAt: String?
    /// Errors since start (each failed attempt to listen, each accept that failed).
    public var errors: UInt64 = 0
    public var connections: Int = 0
    public var evicted: UInt64 = 0
    public var timedOut: UInt64 = 0
    public var requests: UInt64 = 0
}

/// The open connections, each a task: at the bound the oldest idle one is cancelled, and
/// a connection past its deadline is cancelled by the sweep. A cancelled task leaves its
/// wait on the socket at once (FlyingSocks' pool honours cancellation) and closes it.
final class HTTPConnections: Sendable {
    enum Phase { case reading, writing }
    struct Entry {
        var opened: Double
        var deadline: Double
        var phase: Phase
        var task: Task<Void, Never>?
    }
    struct State {
        var entries: [Int: Entry] = [:]
        var nextID = 0
    }

    let limits: HTTPLimits
    private let state = Mutex(State())
    let status: HTTPStatusBoard

    init(limits: HTTPLimits, status: HTTPStatusBoard) {
        self.limits = limits
        self.status = status
    }

    /// Makes room under the bound and registers a new connection.
    /// - Returns: its id, for `attach`, `writing` and `close`.
    func open(now: Double) -> Int {
        let (id, evicted, count) = state.withLock { s -> (Int, Task<Void, Never>?, Int) in
            var victim: Task<Void, Never>?
            if s.entries.count >= limits.maxConnections {
                let idle = s.entries.filter { $0.value.phase == .reading }
                let pick = (idle.isEmpty ? s.entries : idle).min { $0.value.opened < $1.value.opened }
                if let (key, e) = pick {
                    victim = e.task
                    s.entries[key] = nil
                }
            }
            let id = s.nextID
            s.nextID += 1
            s.entries[id] = Entry(opened: now, deadline: now + limits.readDeadline, phase: .reading)
            return (id, victim, s.entries.count)
        }
        if let evicted {
            evicted.cancel()
            status.update { $0.evicted += 1 }
        }
        status.update { $0.connections = count }
        return id
    }

    /// The task that serves connection `id` (cancelled if it is evicted or times out).
    func attach(_ id: Int, _ task: Task<Void, Never>) {
        let orphan = state.withLock { s -> Bool in
            guard s.entries[id] != nil else { return true }
            s.entries[id]?.task = task
            return false
        }
        // Evicted between open and attach: stop it now.
        if orphan { task.cancel() }
    }

    /// The request has arrived; the response is being written.
    func writing(_ id: Int, now: Double) {
        state.withLock {
            $0.entries[id]?.phase = .writing
            $0.entries[id]?.deadline = now + limits.writeDeadline
        }
        status.update { $0.requests += 1 }
    }

    func close(_ id: Int) {
        let count = state.withLock { s -> Int in
            s.entries[id] = nil
            return s.entries.count
        }
        status.update { $0.connections = count }
    }

    /// Cancels each connection past its deadline.
    func sweep(now: Double) {
        let late = state.withLock { s -> [Task<Void, Never>?] in
            let keys = s.entries.filter { $0.value.deadline <= now }.map(\.key)
            return keys.map { s.entries.removeValue(forKey: $0)?.task }
        }
        guard !late.isEmpty else { return }
        late.forEach { $0?.cancel() }
        let count = state.withLock { $0.entries.count }
        status.update {
            $0.timedOut += UInt64(late.count)
            $0.connections = count
        }
    }

    /// Out of file descriptors: the oldest connection still waiting for its request goes
    /// (its descriptor is the one the next accept needs).
    /// - Returns: whether one was closed.
    @discardableResult
    func evictOldestIdle() -> Bool {
        let victim = state.withLock { s -> Task<Void, Never>?? in
            guard let (key, _) = s.entries.filter({ $0.value.phase == .reading }).min(by: { $0.value.opened < $1.value.opened })
            else { return nil }
            return s.entries.removeValue(forKey: key)?.task
        }
        guard let victim else { return false }
        victim?.cancel()
        status.update { $0.evicted += 1 }
        return true
    }

    func cancelAll() {
        let all = state.withLock { s -> [Task<Void, Never>?] in
            defer { s.entries.removeAll() }
            return s.entries.values.map(\.task)
        }
        all.forEach { $0?.cancel() }
        status.update { $0.connections = 0 }
    }

    var count: Int { state.withLock { $0.entries.count } }
}

/// The listener's status, shared with the status board. Thread safe.
final class HTTPStatusBoard: Sendable {
    private let state: Mutex<HTTPStatus>

    init(listen: String) {
        state = Mutex(HTTPStatus(listen: listen, listening: false))
    }

    var current: HTTPStatus { state.withLock { $0 } }

    func update(_ body: (inout HTTPStatus) -> Void) {
        state.withLock { body(&$0) }
    }
}
