import Foundation
import Synchronization
import VigilCore
import VigilStorage

/// A connection's state as `vigil status` shows it.
public struct ConnectionStatus: Codable, Sendable, Equatable {
    public var broker: String
    public var connected: Bool
    public var connects: Int
    public var lastError: String?
    public var since: String?
}

public struct Percentiles: Codable, Sendable, Equatable {
    public var p50: Double
    public var p99: Double
    public var p999: Double
    public var count: UInt64

    init(_ h: LatencyHistogram) {
        p50 = Double(h.percentile(0.5)) / 1000
        p99 = Double(h.percentile(0.99)) / 1000
        p999 = Double(h.percentile(0.999)) / 1000
        count = h.count
    }
}

public struct IngestStatus: Codable, Sendable, Equatable {
    public var messagesReceived: UInt64
    public var readingsStored: UInt64
    public var readingsDuplicate: UInt64
    public var rejected: UInt64
    public var rejectedByReason: [String: UInt64]
    /// Readings stored per second over the last 10 seconds.
    public var rate: Double
    public var inboxDepth: Int
    public var backPressureSeconds: Double
    public var publishToStoredMs: Percentiles
    public var receiveToStoredMs: Percentiles
    public var lastCommit: String?
    public var prunedRetention: UInt64
    public var prunedSize: UInt64
    /// Paused because the buffer's disk has less than `buffer.min_free` left (absent in
    /// records written before this field existed).
    public var diskPaused: Bool?
}

public struct AlertsStatus: Codable, Sendable, Equatable {
    public var rules: Int
    /// Raised alerts by level name.
    public var active: [String: Int]
    public var transitions: UInt64
}

/// What the daemon writes to the buffer's `meta` table every second, for `vigil status`.
public struct DaemonStatus: Codable, Sendable, Equatable {
    public var pid: Int32
    public var gateway: String
    public var startedAt: String
    public var updatedAt: String
    public var updatedAtMicros: Int64
    public var local: ConnectionStatus
    public var ingest: IngestStatus
    public var alerts: AlertsStatus?
    public var upstream: UpstreamStatus?
    public var aggregates: AggregatesStatus?
    /// The wall clock minus vigil's time line, when the wall clock was stepped while vigil ran.
    public var clock: ClockStatus?
    /// The hot tier in the runtime directory, when there is one.
    public var hotTier: HotTierStatus?
    /// The HTTP listener, when `http.listen` is set.
    public var http: HTTPStatus?
    /// The HJ 212 listener, when `hj212.listen` is set.
    public var hj212: HJ212ListenerStatus?
    /// Set in the last record a daemon writes, when it stops cleanly.
    public var stoppedAt: String?
}

/// The hot tier (absent in records written before it existed).
public struct HotTierStatus: Codable, Sendable, Equatable {
    /// Bytes it holds, as of the last maintenance pass.
    public var bytes: Int64
    /// Batches go to it now (false while the runtime directory is full).
    public var inUse: Bool
    public var flushes: UInt64
    public var flushedReadings: UInt64
    /// The longest the ingest thread spent at once on a flush (a step), in seconds (absent
    /// in records written before flushes went in steps).
    public var flushMaxSeconds: Double?
    /// What the start found: empty, moved N, lost, foreign N.
    public var atStart: String
}

public struct ClockStatus: Codable, Sendable, Equatable {
    public var offsetSeconds: Double
    public var stepped: Bool
    public var steps: UInt64
}

public struct AggregatesStatus: Codable, Sendable, Equatable {
    public var sent: UInt64
    public var lateReadings: UInt64
    public var droppedUndelivered: UInt64
}

/// The daemon's live state, gathered from its parts. Thread safe.
public final class StatusBoard: Sendable {
    struct State {
        var local: ConnectionStatus
        var rateSamples: [(Double, UInt64)] = []
    }

    let gateway: String
    let clock: any VigilClock
    let startedAt: Timestamp
    private let state: Mutex<State>
    /// The upstream connection's view, when there is one.
    let upstream = Mutex<(@Sendable () -> UpstreamStatus)?>(nil)
    /// The HTTP listener's view, when there is one.
    let http = Mutex<(@Sendable () -> HTTPStatus)?>(nil)
    let hj212 = Mutex<(@Sendable () -> HJ212ListenerStatus)?>(nil)

    public init(gateway: String, localBroker: String, clock: any VigilClock) {
        self.gateway = gateway
        self.clock = clock
        startedAt = clock.now()
        state = Mutex(State(local: ConnectionStatus(broker: localBroker, connected: false, connects: 0)))
    }

    public func localConnected(_ connected: Bool, connects: Int, error: String?) {
        state.withLock {
            if $0.local.connected != connected { $0.local.since = clock.now().rfc3339 }
            $0.local.connected = connected
            $0.local.connects = connects
            if let error { $0.local.lastError = error }
        }
    }

    public var local: ConnectionStatus { state.withLock { $0.local } }

    func status(ingest s: IngestSnapshot, inboxDepth: Int, backPressure: (count: UInt64, seconds: Double, pushed: UInt64))
        -> DaemonStatus
    {
        let now = clock.now()
        let mono = Monotonic.seconds()
        let (local, rate) = state.withLock { st -> (ConnectionStatus, Double) in
            st.rateSamples.append((mono, s.readingsStored))
            st.rateSamples.removeAll { mono - $0.0 > 10.5 }
            let first = st.rateSamples.first!
            let dt = mono - first.0
            return (st.local, dt > 0.5 ? Double(s.readingsStored - first.1) / dt : 0)
        }
        return DaemonStatus(
            pid: getpid(), gateway: gateway, startedAt: startedAt.rfc3339, updatedAt: now.rfc3339,
            updatedAtMicros: now.micros, local: local,
            ingest: IngestStatus(
                messagesReceived: s.messagesReceived, readingsStored: s.readingsStored,
                readingsDuplicate: s.readingsDuplicate, rejected: s.rejectedTotal,
                rejectedByReason: Dictionary(uniqueKeysWithValues: s.rejected.map { ($0.key.rawValue, $0.value) }),
                rate: rate, inboxDepth: inboxDepth, backPressureSeconds: backPressure.seconds,
                publishToStoredMs: Percentiles(s.publishToStored), receiveToStoredMs: Percentiles(s.receiveToStored),
                lastCommit: s.lastCommit?.rfc3339, prunedRetention: s.prunedRetention, prunedSize: s.prunedSize,
                diskPaused: s.diskPaused),
            alerts: AlertsStatus(
                rules: s.rules, active: Dictionary(uniqueKeysWithValues: s.activeAlerts.map { ($0.key.name, $0.value) }),
                transitions: s.transitions),
            upstream: upstream.withLock { $0 }?(),
            aggregates: AggregatesStatus(sent: s.aggregatesSent, lateReadings: s.aggregateLate, droppedUndelivered: s.outboxDroppedAggregates),
            clock: ClockStatus(offsetSeconds: s.clockOffset.seconds, stepped: s.clockStepped, steps: s.clockSteps),
            hotTier: s.hotStart == .unused
                ? nil
                : HotTierStatus(
                    bytes: s.hotBytes, inUse: s.hotInUse, flushes: s.flushes, flushedReadings: s.flushedReadings,
                    flushMaxSeconds: s.flushMaxSeconds, atStart: Self.describe(s.hotStart)),
            http: http.withLock { $0 }?(),
            hj212: hj212.withLock { $0 }?(),
            stoppedAt: s.stopped ? now.rfc3339 : nil)
    }

    func json(ingest s: IngestSnapshot, inboxDepth: Int, backPressure: (count: UInt64, seconds: Double, pushed: UInt64))
        -> String
    {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(status(ingest: s, inboxDepth: inboxDepth, backPressure: backPressure))) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func describe(_ start: HotTierStart) -> String {
        switch start {
        case .unused: return "unused"
        case .empty: return "empty"
        case .moved(let n): return "moved \(n) readings a crash left"
        case .lost(let t): return "gone since the last flush (\(t?.rfc3339 ?? "never")): a reboot or a power cut"
        case .foreign(let n): return "another buffer's, \(n) readings discarded"
        }
    }

    public static func decode(_ json: String) -> DaemonStatus? {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(DaemonStatus.self, from: Data(json.utf8))
    }
}
