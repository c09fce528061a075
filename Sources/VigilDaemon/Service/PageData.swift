import Foundation
import Synchronization
import VigilCore
import VigilStorage

/// What `/page.json` holds and `/` draws: the gateway at a glance.
struct PageData: Codable, Sendable, Equatable {
    struct Upstream: Codable, Sendable, Equatable {
        var broker: String
        var connected: Bool
        var since: String?
        var lastError: String?
        /// Messages waiting for upstream (alerts and aggregates).
        var backlog: Int64
        var backlogOldestSeconds: Double?
    }

    struct Health: Codable, Sendable, Equatable {
        var localBroker: String
        var localConnected: Bool
        var localSince: String?
        var localLastError: String?
        var upstream: Upstream?
        /// Readings stored per second over the last 10 s (from the status record).
        var ingestRate: Double?
        var publishToStoredMs: Percentiles
        var readingsStored: UInt64
        var bufferRows: Int64
        var bufferBytes: Int64
        var bufferMaxBytes: Int64
        var hotTierBytes: Int64?
        var stateDirFreeBytes: Int64?
        var runtimeDirFreeBytes: Int64?
        var ingestPaused: Bool
        var clockOffsetSeconds: Double
        var uptimeSeconds: Double
        var version: String
        var commit: String
        var rules: Int
    }

    struct ActiveAlert: Codable, Sendable, Equatable {
        var rule: String
        var series: String
        var level: String
        var value: Double?
        var threshold: Double?
        var since: String?
        /// The message of this (rule, series)'s latest transition.
        var message: String
    }

    struct Transition: Codable, Sendable, Equatable {
        var at: String
        var rule: String
        var series: String
        var state: String
        var level: String
        var value: Double?
        var message: String
    }

    struct Series: Codable, Sendable, Equatable {
        var path: String
        var network: String
        var site: String
        var unit: String?
        var latest: Double?
        var latestAt: String?
        var ageSeconds: Double?
        /// Means of each minute of the last hour, oldest first; null for a silent minute.
        var spark: [Double?]
        /// The highest level of an alert active on it.
        var alert: String?
        var stale: Bool
    }

    struct Reject: Codable, Sendable, Equatable {
        var at: String
        var topic: String
        var reason: String
        var detail: String
    }

    struct Rejects: Codable, Sendable, Equatable {
        /// Since the daemon started, by reason.
        var byReason: [String: UInt64]
        var latest: [Reject]
    }

    var gateway: String
    var generatedAt: String
    /// How long this build took, and the CPU time it used (its thread's).
    var buildMs: Double
    var buildCpuMs: Double
    /// Builds since start (one per second at most, however many pages poll).
    var builds: UInt64
    var health: Health
    /// Red first; in a level, the oldest first.
    var alerts: [ActiveAlert]
    /// The last transitions, newest first.
    var transitions: [Transition]
    var series: [Series] = []
    var rejects: Rejects
    /// The last pass over new readings read only the newest of them (more than
    /// `PageBuilder.readingsPerSecond` a second came in): the latest minute's means are
    /// those of a sample.
    var sparkSampled: Bool
    /// What went wrong this time, if anything: the buffer could not be read, or a value
    /// could not be encoded.
    var error: String?
    /// The buffer could not be read: alerts, transitions, series and the latest rejects
    /// are empty for that, not because there are none (the page keeps the last it had).
    var bufferUnread = false

    /// The keys of the JSON's head: the series go out piece by piece (`PageSnapshot`).
    enum CodingKeys: String, CodingKey {
        case gateway, generatedAt, buildMs, buildCpuMs, builds, health, alerts, transitions, rejects, sparkSampled, error, bufferUnread
    }

    static func encoder(strict: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        if !strict { encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan") }
        return encoder
    }
}

/// Builds `PageData` from the daemon's own read connection to the buffer (flash and hot
/// tier, as `vigil export` reads them), the published snapshots and the status record:
/// never the ingest thread's connection or locks. One build at a time (the single-flight
/// cache calls it), on a thread of its own.
final class PageBuilder: @unchecked Sendable {
    // @unchecked: `reader`, `sparks`, `sampled`, `builds` and `lastError` are used by one build at a time; `SingleFlight`
    // never runs two builds at once, and each build runs on its one thread start to end.
    private var reader: BufferReader?
    private var sparks = Sparklines()
    /// Whether the last pass over new readings hit its bound.
    private var sampled = false
    let daemon: Daemon

    /// How many transitions the page lists, and how many rejects.
    static let transitionsShown = 20
    static let rejectsShown = 10
    /// A series without a rule that says when it is silent is stale after this long.
    static let defaultStale = TimeSpan.minutes(15)
    /// What one build reads of the new readings: at most this many per second of the span
    /// (about 15 ms of CPU), and at most `readingsPerPass` in all. Above that rate the
    /// newest of them are read and the rest are not drawn (they are stored as usual).
    static let readingsPerSecond = 20_000
    static let readingsPerPass = 200_000

    init(daemon: Daemon) {
        self.daemon = daemon
    }

    private var builds: UInt64 = 0
    private var lastError: String?

    func build() -> PageData {
        builds += 1
        let started = Monotonic.seconds()
        let cpu = Self.threadCPUSeconds()
        let now = daemon.clock.now()
        var data = PageData(
            gateway: daemon.config.gatewayID, generatedAt: now.rfc3339, buildMs: 0, buildCpuMs: 0, builds: builds,
            health: health(now: now), alerts: [], transitions: [], series: [],
            rejects: PageData.Rejects(
                byReason: Dictionary(uniqueKeysWithValues: daemon.pipeline.snapshot.rejected.map { ($0.key.rawValue, $0.value) }),
                latest: []), sparkSampled: false)
        do {
            try fill(&data, now: now)
        } catch {
            // Opened again at the next build (the hot tier may have come or gone).
            reader = nil
            data.error = "\(error)"
            data.bufferUnread = true
            // Once per error, not once a build.
            if data.error != lastError { daemon.logger.warning("page: cannot read the buffer: \(error)") }
        }
        lastError = data.error
        data.buildMs = (Monotonic.seconds() - started) * 1000
        data.buildCpuMs = (Self.threadCPUSeconds() - cpu) * 1000
        return data
    }

    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private func health(now: Timestamp) -> PageData.Health {
        let s = daemon.pipeline.snapshot
        let local = daemon.status.local
        let record = StatusFile.read(runtimeDir: daemon.config.runtimeDir).flatMap(StatusBoard.decode)
        let upstream = daemon.upstream.map { u -> PageData.Upstream in
            let st = u.status
            return PageData.Upstream(
                broker: st.broker, connected: st.connected, since: st.since, lastError: st.lastError,
                backlog: st.backlogAlerts + st.backlogAggregates, backlogOldestSeconds: st.oldestAgeSeconds)
        }
        return PageData.Health(
            localBroker: local.broker, localConnected: local.connected, localSince: local.since, localLastError: local.lastError,
            upstream: upstream, ingestRate: record?.ingest.rate, publishToStoredMs: Percentiles(s.publishToStored),
            readingsStored: s.readingsStored, bufferRows: s.bufferRows, bufferBytes: s.bufferBytes,
            bufferMaxBytes: daemon.current.withLock { $0.config.buffer.maxSize.bytes },
            hotTierBytes: s.hotStart == .unused ? nil : s.hotBytes,
            stateDirFreeBytes: Self.freeBytes(daemon.config.stateDir), runtimeDirFreeBytes: Self.freeBytes(daemon.config.runtimeDir),
            ingestPaused: s.diskPaused, clockOffsetSeconds: s.clockOffset.seconds,
            uptimeSeconds: Double(now.micros - daemon.status.startedAt.micros) / 1e6,
            version: BuildInfo.version, commit: BuildInfo.commit, rules: s.rules)
    }

    private func fill(_ data: inout PageData, now: Timestamp) throws {
        if reader == nil { reader = try BufferReader(options: daemon.config.buffer) }
        guard let reader else { return }
        let rules = daemon.current.withLock { $0.rules }

        // Alerts: each active (rule, series) with the message of its own latest event.
        let active = try reader.alertStates().filter { $0.level != nil }
        let latest = try reader.latestEvents(of: active.map { ($0.rule, $0.series.path) })
        var messages: [String: String] = [:]
        for e in latest { messages[e.transition.rule + "\u{0}" + e.transition.series.path] = e.transition.message }
        var levelBySeries: [String: AlertLevel] = [:]
        var staleRuleActive: Set<String> = []
        let staleRules = Set(rules.filter { if case .stale = $0.kind { return true } else { return false } }.map(\.id))
        data.alerts = active.sorted { ($0.level!, $1.since ?? .init(micros: 0)) > ($1.level!, $0.since ?? .init(micros: 0)) }.map { a in
            let path = a.series.path
            levelBySeries[path] = max(levelBySeries[path] ?? a.level!, a.level!)
            if staleRules.contains(a.rule) { staleRuleActive.insert(path) }
            return PageData.ActiveAlert(
                rule: a.rule, series: path, level: a.level!.name, value: a.lastValue, threshold: a.threshold,
                since: a.since?.rfc3339, message: messages[a.rule + "\u{0}" + path] ?? "")
        }
        data.transitions = try reader.alertEvents(limit: Self.transitionsShown).reversed().map { e in
            let t = e.transition
            return PageData.Transition(
                at: t.at.rfc3339, rule: t.rule, series: t.series.path, state: t.state.rawValue, level: t.level.name,
                value: t.value, message: t.message)
        }

        // Series: the latest value and the last hour, from the span not read yet and a
        // trailing window before it (readings stored late), whose minutes are read again.
        let rewind = Self.rewind(
            allowedLateness: daemon.current.withLock { $0.config.aggregate.allowedLateness },
            observedLagMicros: daemon.pipeline.snapshot.publishToStored.maxMicros)
        let span = sparks.nextSpan(now: now, rewind: rewind)
        if span.from < span.to {
            // Bounded work: at most `readingsPerSecond` for each new second (the first
            // pass, over the hour, at most `readingsPerPass`), the newest of the span.
            let newSeconds = Double(span.to.micros - (sparks.readUntil ?? span.from).micros) / 1e6
            let limit = Int(min(Double(Self.readingsPerPass), max(1, newSeconds) * Double(Self.readingsPerSecond)))
            let read = try reader.bucketed(since: span.from, until: span.to, bucket: sparks.bucket.micros, limit: limit) { b in
                sparks.add(series: b.seriesID, bucket: b.index, sum: b.sum, count: b.count, latestTS: b.latestTS, latestValue: b.latestValue)
            }
            sampled = read >= limit
            sparks.read(from: span.from, until: span.to, complete: !sampled)
        }
        let known = try reader.series()
        sparks.keep(only: Set(known.map(\.id)))
        data.series = known.map { s in
            var latest: (Timestamp, Double)? = s.lastValue.map { (s.lastSeen, $0) }
            if let l = sparks.latest(series: s.id), l.timestamp >= (latest?.0 ?? Timestamp(micros: .min)) { latest = (l.timestamp, l.value) }
            let age = latest.map { Double(now.micros - $0.0.micros) / 1e6 }
            let staleAfter = rules.compactMap { r -> TimeSpan? in
                guard case .stale(let after, _) = r.kind, r.match.matches(levels: s.key.levels) else { return nil }
                return after
            }.min() ?? Self.defaultStale
            let path = s.key.path
            return PageData.Series(
                path: path, network: s.key.network, site: s.key.site, unit: s.unit, latest: latest?.1,
                latestAt: latest?.0.rfc3339, ageSeconds: age, spark: sparks.points(series: s.id, now: now),
                alert: levelBySeries[path]?.name,
                stale: staleRuleActive.contains(path) || (age.map { $0 > staleAfter.seconds } ?? true))
        }

        data.sparkSampled = sampled
        data.rejects.latest = try reader.rejects(limit: Self.rejectsShown, payloads: false).map { r in
            PageData.Reject(at: r.at.rfc3339, topic: r.topic, reason: r.reason.code.rawValue, detail: r.reason.detail)
        }
    }

    /// How far back each pass reads again: the longest a reading has taken from its
    /// timestamp to the buffer (since start), the aggregates' allowed lateness, and at
    /// least 2 minutes.
    static func rewind(allowedLateness: TimeSpan, observedLagMicros: UInt64) -> TimeSpan {
        let observed = TimeSpan(micros: Int64(min(observedLagMicros, UInt64(Int64.max / 2))))
        return TimeSpan(micros: max(TimeSpan.minutes(2).micros, allowedLateness.micros, observed.micros))
    }

    static func freeBytes(_ path: String) -> Int64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }
}

/// The page's JSON, built at most once a second on a thread of its own (single flight).
final class PageService: Sendable {
    let auth: PageAuth
    let cache: SingleFlight<PageSnapshot>

    init(daemon: Daemon, auth: PageAuth) {
        self.auth = auth
        let builder = PageBuilder(daemon: daemon)
        cache = SingleFlight(maxAge: 1, now: { Monotonic.seconds() }) {
            await Self.onThread {
                PageSnapshot(builder.build()) { daemon.logger.warning("\($0)") }
            }
        }
    }

    /// `/page.json`: the cached JSON as it is, or with only the series that match `filter`
    /// (the cached pieces joined for this request: nothing is read or encoded again).
    func json(filter: String) async -> [UInt8] {
        let snapshot = await cache.get()
        return filter.isEmpty ? snapshot.json : snapshot.answer(filter: filter)
    }

    /// Runs `body` on a thread of its own: SQLite reads must not hold a thread of the
    /// cooperative pool that the HTTP listener (and the rest of the daemon) runs on. The
    /// thread runs at nice `buildNice` (Linux keeps a nice value per thread, and `who` 0 is
    /// the calling thread): when the
    /// cores are busy, ingest gets them before a page build does.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        let box = Mutex<T?>(nil)
        await DedicatedThread.run(name: "vigil-page") {
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, buildNice)
            box.withLock { $0 = body() }
        }
        return box.withLock { $0! }
    }

    static let buildNice: Int32 = 10
}
