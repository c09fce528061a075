import Foundation
import Logging
import Synchronization
import VigilCore
import VigilMQTT
import VigilStorage

/// What ingest has done since the daemon started, for status and metrics.
public struct IngestSnapshot: Sendable {
    public var messagesReceived: UInt64 = 0
    public var readingsStored: UInt64 = 0
    public var readingsDuplicate: UInt64 = 0
    public var rejected: [RejectReason.Code: UInt64] = [:]
    public var commits: UInt64 = 0
    public var lastCommit: Timestamp?
    /// Reading timestamp (from the payload) to commit: publish-to-stored.
    public var publishToStored = LatencyHistogram()
    /// Receipt by the network thread to commit: the gateway's own share.
    public var receiveToStored = LatencyHistogram()
    public var commitDuration = LatencyHistogram()
    public var prunedRetention: UInt64 = 0
    public var prunedSize: UInt64 = 0
    public var senmlSkipped: UInt64 = 0
    public var rules = 0
    public var ruleStates = 0
    /// Raised alerts by level.
    public var activeAlerts: [AlertLevel: Int] = [:]
    public var transitions: UInt64 = 0
    /// Readings that came after their aggregate window had closed.
    public var aggregateLate: UInt64 = 0
    public var aggregatesSent: UInt64 = 0
    public var outboxDroppedAggregates: UInt64 = 0
    /// The buffer as of the last maintenance pass (every 2 s).
    public var bufferRows: Int64 = 0
    public var bufferBytes: Int64 = 0
    /// Monotonic seconds of the last time the pipeline finished a loop turn (for the watchdog).
    public var lastProgress: Double = 0
    /// Ingest waits because the buffer's filesystem has less than `buffer.min_free` left.
    public var diskPaused = false
    public var diskPauses: UInt64 = 0
    /// The wall clock minus vigil's time line (`DaemonClock`), and how often it was stepped away.
    public var clockOffset: TimeSpan = .zero
    public var clockStepped = false
    public var clockSteps: UInt64 = 0
    /// Readings whose own timestamp followed the stepped wall clock, moved onto the time line.
    public var readingsShifted: UInt64 = 0
    /// The pipeline has finished: everything received is committed.
    public var stopped = false
    public var rejectedTotal: UInt64 { rejected.values.reduce(0, +) }
}

/// The ingest thread: takes batches of raw messages from the inbox, decodes them, inserts
/// the readings and commits, every `commit.interval` or `commit.rows`, whichever comes first.
/// Between batches it does the buffer's upkeep (retention, size, status).
///
/// Crash window: a message the network thread has acknowledged is safe once the commit
/// that holds it returns. Before that it sits in the inbox or the open transaction; at
/// most `inbox.maxMessages + commit.rows` messages, and in steady state the readings of the
/// last `commit.interval`.
///
/// Rules are evaluated here too, on each reading as it arrives and on a one-second tick: a
/// transition is written in the same transaction as the readings that caused it, with the
/// alert state, so a crash loses both or neither and a restart never raises twice.
///
/// - Important: `run()` is called once, on its own thread, which then owns `writer`,
///   `decoder` and `engine`. Other threads only read `snapshot` (a Mutex), hand over a
///   reload (a Mutex) and call `stop()`. Hence `@unchecked Sendable`.
public final class IngestPipeline: @unchecked Sendable {
    public let inbox: Inbox
    let writer: BufferWriter
    var decoder: MessageDecoder
    var commit: CommitPolicy
    var engine: RuleEngine
    private var transitions: [AlertTransition] = []
    private var nextTick = 0.0
    private let reloads = Mutex<Reload?>(nil)

    /// What a reload changes while running.
    public struct Reload: Sendable {
        public var rules: [Rule]
        public var limits: IngestLimits
        public var commit: CommitPolicy
        public var retention: TimeSpan
        public var maxSize: ByteSize
        public var subscriptions: [SubscriptionSpec]

        public init(
            rules: [Rule], limits: IngestLimits, commit: CommitPolicy, retention: TimeSpan, maxSize: ByteSize,
            subscriptions: [SubscriptionSpec]
        ) {
            self.rules = rules
            self.limits = limits
            self.commit = commit
            self.retention = retention
            self.maxSize = maxSize
            self.subscriptions = subscriptions
        }
    }
    let logger: Logger
    let status: StatusBoard
    /// Aggregates and alerts for upstream; nil when no upstream is configured.
    let outbound: Outbound?
    let aggregateConfig: AggregateConfig
    private let stats = Mutex(IngestSnapshot())

    // Owned by the ingest thread.
    private var readings: [Reading] = []
    private var pendingPayloadTimes: [Int64] = []
    private var pendingReceiveTimes: [Int64] = []
    private var batchStartedAt: UInt64?
    private var local = IngestSnapshot()
    private var rejectLog: [RejectReason.Code: (last: Double, suppressed: Int)] = [:]
    private var nextStatusWrite = 0.0
    private var nextSeriesFlush = 0.0
    private var nextMaintenance = 0.0
    private var failing = false
    private var diskGuard: DiskSpaceGuard

    /// A test hook: while set, the thread stops making progress (to test the watchdog).
    public let wedged = Atomic<Bool>(false)

    init(
        inbox: Inbox, writer: BufferWriter, subscriptions: [SubscriptionSpec], limits: IngestLimits,
        commit: CommitPolicy, rules: [Rule], status: StatusBoard, logger: Logger, outbound: Outbound? = nil,
        aggregate: AggregateConfig = AggregateConfig()
    ) {
        self.outbound = outbound
        self.aggregateConfig = aggregate
        self.inbox = inbox
        self.writer = writer
        self.decoder = MessageDecoder(subscriptions: subscriptions, limits: limits)
        self.engine = RuleEngine(rules: rules)
        self.commit = commit
        self.status = status
        self.logger = logger
        self.diskGuard = DiskSpaceGuard(directory: writer.options.directory, minFree: writer.options.minFree.bytes, logger: logger)
        readings.reserveCapacity(64)
    }

    /// A copy of the counters and histograms.
    public var snapshot: IngestSnapshot { stats.withLock { $0 } }

    /// Asks the thread to finish: it drains the inbox, commits and returns.
    public func stop() { inbox.close() }

    /// Hands a validated reload to the ingest thread, which applies it on its next turn.
    public func requestReload(_ reload: Reload) {
        reloads.withLock { $0 = reload }
        inbox.wake()
    }

    static func monotonic() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// The thread body. Returns after `stop()`, once everything received is committed.
    public func run() {
        var batch = MessageBatch()
        startRules(previous: [], reason: "")
        while true {
            while wedged.load(ordering: .relaxed) { usleep(10_000) }
            if let reload = reloads.withLock({ r -> Reload? in defer { r = nil }; return r }) { apply(reload) }
            let interval = commit.interval.seconds
            let now = Self.monotonic()
            let deadline: MonotonicDeadline
            let wakeAt: Int
            if let started = batchStartedAt {
                // A commit is due at a known time: sleep until then unless a large batch builds up.
                let due = Double(started) / 1e9 + interval
                deadline = .after(due - now)
                wakeAt = max(1, min(1024, commit.rows - writer.pendingRows))
            } else {
                deadline = .after(min(1, max(0.001, nextStatusWrite - now)))
                wakeAt = 1
            }
            // The disk nearly full: take nothing more. The inbox fills, libmosquitto stops
            // reading and the broker keeps the messages until space returns.
            let paused = diskGuard.check(now: now)
            if paused != local.diskPaused {
                local.diskPaused = paused
                if paused { local.diskPauses += 1 }
                publish()
            }
            // Stopping while paused: what the inbox holds (acknowledged to the broker
            // already) is written into the reserve that min_free kept.
            if paused && !inbox.isClosed {
                upkeepWhilePaused(at: now)
                usleep(50_000)
                continue
            }
            let got = inbox.take(into: &batch, deadline: deadline, wakeAt: wakeAt)
            if got { process(batch) }
            let t = Self.monotonic()
            if let started = batchStartedAt, t >= Double(started) / 1e9 + interval || writer.pendingRows >= commit.rows {
                commitPending()
            }
            if !got && inbox.isClosed {
                commitPending()
                break
            }
            upkeep(at: t)
        }
        do {
            try writer.flushSeriesSeen()
            if let o = outbound { _ = try o.markAcknowledged(writer: writer, now: DaemonClock.shared.now()) }
            try writer.commit()
            // The last status record says so: `vigil status` then tells a clean stop from a crash.
            local.stopped = true
        } catch {
            logger.error("final commit failed: \(error)")
        }
        publish()
        writeStatus()
    }

    /// The status record `vigil status` reads (a failed write is retried a second later).
    private func writeStatus() {
        do {
            try writer.setMetaOutsideBatch("status", status.json(ingest: local, inboxDepth: inbox.depth, backPressure: inbox.backPressure))
        } catch {
            logger.debug("status write failed: \(error)")
        }
    }

    private func process(_ batch: MessageBatch) {
        batch.forEach { topic, payload, receivedAt in
            local.messagesReceived += 1
            readings.removeAll(keepingCapacity: true)
            do throws(RejectReason) {
                do throws(RejectReason) {
                    try decoder.decode(topic: topic, payload: payload, receivedAt: receivedAt, into: &readings)
                } catch where (error.code == .futureTimestamp || error.code == .tooOld) && watchClock() {
                    // The wall clock was stepped since the last look: judge it again.
                    try decoder.decode(topic: topic, payload: payload, receivedAt: receivedAt, into: &readings)
                }
            } catch {
                rejected(error, topic: topic, payload: payload, at: receivedAt)
                return
            }
            if batchStartedAt == nil { batchStartedAt = DispatchTime.now().uptimeNanoseconds }
            do {
                try writer.begin()
                for r in readings {
                    if let id = try writer.insertReturningSeries(r) {
                        local.readingsStored += 1
                        if r.timestampFromPayload { pendingPayloadTimes.append(r.timestamp.micros) }
                        engine.ingest(r, seriesID: id, now: receivedAt, into: &transitions)
                        if let o = outbound, !o.add(r, seriesID: id) { writer.count(CounterName.aggregatesLate) }
                    } else {
                        local.readingsDuplicate += 1
                    }
                    pendingReceiveTimes.append(receivedAt.micros)
                }
                if !transitions.isEmpty { try recordTransitions() }
            } catch {
                storageFailed(error)
            }
            if writer.pendingRows >= commit.rows { commitPending() }
        }
        let skipped = UInt64(decoder.skippedRecords)
        if skipped > local.senmlSkipped {
            writer.count(CounterName.senmlSkipped, Int64(skipped - local.senmlSkipped))
            local.senmlSkipped = skipped
        }
        writer.count(CounterName.messagesReceived, Int64(batch.count))
        local.readingsShifted += UInt64(decoder.takeShifted())
    }

    private func rejected(_ reason: RejectReason, topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, at: Timestamp) {
        local.rejected[reason.code, default: 0] += 1
        let topicText = String(decoding: topic.prefix(512), as: UTF8.self)
        writer.reject(
            RejectRecord(
                at: at, topic: topicText, reason: reason, payloadPrefix: Array(payload.prefix(writer.options.rejectPayloadPrefix)),
                payloadSize: payload.count))
        // The log says so at most once a second per reason.
        let now = Self.monotonic()
        var entry = rejectLog[reason.code] ?? (last: -10, suppressed: 0)
        if now - entry.last >= 1 {
            var meta: Logger.Metadata = [
                "reason": "\(reason.code)", "mqtt.topic": "\(topicText)", "detail": "\(reason.detail)",
            ]
            if entry.suppressed > 0 { meta["suppressed"] = "\(entry.suppressed)" }
            logger.warning("rejected message", metadata: meta)
            entry = (now, 0)
        } else {
            entry.suppressed += 1
        }
        rejectLog[reason.code] = entry
    }

    /// Writes the transitions gathered since the last call, in the open transaction, and logs them.
    private func recordTransitions() throws {
        for t in transitions {
            try writer.recordTransition(t)
            try outbound?.enqueue(t, writer: writer)
            local.transitions += 1
            switch t.state {
            case .raised: local.activeAlerts[t.level, default: 0] += 1
            case .escalated, .deescalated:
                if let p = t.previousLevel { local.activeAlerts[p, default: 1] -= 1 }
                local.activeAlerts[t.level, default: 0] += 1
            case .resolved: local.activeAlerts[t.level, default: 1] -= 1
            }
            local.activeAlerts = local.activeAlerts.filter { $0.value > 0 }
            logger.notice(
                "alert \(t.state.rawValue)",
                metadata: [
                    "rule.id": "\(t.rule)", "series": "\(t.series.path)", "level": "\(t.level)",
                    "value": "\(t.value.map(Rule.formatNumber) ?? "")", "threshold": "\(t.threshold.map(Rule.formatNumber) ?? "")",
                    "message": "\(t.message)",
                ])
        }
        transitions.removeAll(keepingCapacity: true)
    }

    /// Stores the (rule, series) states that changed, in the open transaction.
    private func saveRuleStates(now: Timestamp) throws {
        for record in engine.takeDirty() { try writer.saveAlertState(record, now: now) }
    }

    private func commitPending() {
        guard writer.inTransaction || batchStartedAt != nil else { return }
        let start = DispatchTime.now().uptimeNanoseconds
        let rows = writer.pendingRows
        do {
            try saveRuleStates(now: DaemonClock.shared.now())
            try writer.commit()
        } catch {
            storageFailed(error, rows: rows)
            return
        }
        let end = DispatchTime.now().uptimeNanoseconds
        let now = DaemonClock.shared.now().micros
        outbound?.committed()
        local.commits += 1
        local.lastCommit = Timestamp(micros: now)
        local.commitDuration.add(micros: Int64((end - start) / 1000))
        for t in pendingPayloadTimes { local.publishToStored.add(micros: now - t) }
        for t in pendingReceiveTimes { local.receiveToStored.add(micros: now - t) }
        pendingPayloadTimes.removeAll(keepingCapacity: true)
        pendingReceiveTimes.removeAll(keepingCapacity: true)
        batchStartedAt = nil
        if failing {
            failing = false
            logger.notice("buffer writes work again")
        }
        publish()
    }

    /// A failed write or commit: the open transaction is rolled back and what it held is
    /// counted as lost; ingest goes on with the next message.
    private func storageFailed(_ error: Error, rows: Int? = nil) {
        let lost = rows ?? writer.pendingRows
        writer.rollback()
        if let e = error as? SQLiteError, e.code == 13 { diskGuard.full() }  // SQLITE_FULL
        pendingPayloadTimes.removeAll(keepingCapacity: true)
        pendingReceiveTimes.removeAll(keepingCapacity: true)
        batchStartedAt = nil
        local.readingsStored -= UInt64(min(Int(local.readingsStored), lost))
        if !failing {
            logger.error("buffer write failed; the readings of this batch are lost", metadata: ["error": "\(error)", "lost": "\(lost)"])
        }
        failing = true
    }

    private func publish() {
        local.lastProgress = Self.monotonic()
        let copy = local
        stats.withLock { $0 = copy }
    }

    /// While ingest waits for disk space: the watchdog and the status record still see a
    /// daemon that is alive (the status write may fail for want of space; it is retried).
    private func upkeepWhilePaused(at now: Double) {
        showProgress(at: now)
        if now >= nextStatusWrite {
            nextStatusWrite = now + 1
            watchClock()
            writeStatus()
        }
    }

    private func showProgress(at now: Double) {
        local.lastProgress = now
        stats.withLock { $0.lastProgress = now }
    }

    private func upkeep(at now: Double) {
        showProgress(at: now)
        if now >= nextTick {
            nextTick = now + 1
            tick()
        }
        if now >= nextStatusWrite {
            nextStatusWrite = now + 1
            publish()
            writeStatus()
        }
        if now >= nextSeriesFlush {
            nextSeriesFlush = now + 10
            do { try writer.flushSeriesSeen() } catch { logger.debug("series flush failed: \(error)") }
        }
        if now >= nextMaintenance {
            do {
                let report = try writer.maintain(now: DaemonClock.shared.now(), prunableBefore: outbound?.summarisedBefore)
                local.bufferBytes = (try? writer.usedBytes()) ?? local.bufferBytes
                local.bufferRows = (try? writer.storedRows()) ?? local.bufferRows
                local.prunedRetention += UInt64(report.prunedForRetention)
                local.prunedSize += UInt64(report.prunedForSize)
                local.outboxDroppedAggregates += UInt64(report.droppedAggregates)
                if report.prunedForRetention > 0 || report.prunedForSize > 0 || report.prunedDelivered > 0 {
                    logger.info(
                        "pruned the buffer",
                        metadata: [
                            "readings.retention": "\(report.prunedForRetention)", "readings.max_size": "\(report.prunedForSize)",
                            "delivered_messages": "\(report.prunedDelivered)",
                        ])
                }
                if report.droppedAggregates > 0 {
                    logger.error(
                        "the buffer is at max_size with undelivered messages: dropped the oldest aggregates (alerts are kept)",
                        metadata: ["dropped": "\(report.droppedAggregates)"])
                    if let t = outbound?.backlogTransition(dropped: report.droppedAggregates, now: DaemonClock.shared.now()) {
                        transitions.append(t)
                        try recordTransitions()
                        try writer.commit()
                        outbound?.committed()
                    }
                }
                nextMaintenance = now + (report.more ? 0.05 : 2)
            } catch {
                logger.warning("retention pass failed: \(error)")
                nextMaintenance = now + 2
            }
        }
    }
}

extension IngestPipeline {
    /// Brings the rule engine up: stored states (or, on reload, the running engine's),
    /// known series for the stale rules, and the windows rebuilt from the buffer. At start
    /// (`reason` empty) also the outbox: seq, the aggregation watermark, the open windows.
    func startRules(previous: [AlertStateRecord], reason: String) {
        let now = DaemonClock.shared.now()
        do {
            if reason.isEmpty, let o = outbound {
                try o.start(writer: writer, config: aggregateConfig)
                o.restoreBacklogAlert(try writer.lastTransition(rule: Outbound.backlogRule))
            }
            var records = previous.isEmpty && reason.isEmpty ? try writer.loadAlertStates() : previous
            // A clock that went back since the last run: what it stored lies ahead. Timers
            // and last-seen times start from now rather than wait for the difference.
            var ahead = 0
            for i in records.indices {
                if let r = records[i].timersNotAfter(now) {
                    records[i] = r
                    ahead += 1
                }
            }
            let orphans = engine.restore(records)
            for o in orphans {
                if let t = RuleEngine.orphanResolved(o, now: now, reason: reason.isEmpty ? "its rule is gone" : reason) {
                    transitions.append(t)
                }
                var idle = o
                idle.level = nil
                idle.pending = [:]
                idle.absent = [:]
                try writer.saveAlertState(idle, now: now)
            }
            for (series, seen) in writer.knownSeries {
                if seen > now { ahead += 1 }
                engine.knowSeries(series, lastSeen: min(seen, now))
            }
            if ahead > 0 {
                logger.warning(
                    "the stored rule timers and last-seen times lie ahead of the clock (it went back since they were stored): started from now",
                    metadata: ["count": "\(ahead)"])
            }
            let window = engine.longestWindow
            var replayed = 0
            // One pass over the buffer rebuilds the rule windows and, at start, the open
            // aggregate windows (the readings from the watermark on).
            let rulesFrom = window.micros > 0 ? now.subtracting(window) : nil
            let aggregatesFrom = reason.isEmpty ? outbound?.replayFrom : nil
            if let from = [rulesFrom, aggregatesFrom].compactMap({ $0 }).min() {
                try writer.forEachReading(since: from) { r, id in
                    if let rf = rulesFrom, r.timestamp >= rf { engine.replay(r) }
                    if let af = aggregatesFrom, r.timestamp >= af { _ = outbound?.add(r, seriesID: id) }
                    replayed += 1
                }
            }
            var counts: [AlertLevel: Int] = [:]
            for s in engine.activeStates { if let l = s.level { counts[l, default: 0] += 1 } }
            local.activeAlerts = counts
            try recordTransitions()
            try saveRuleStates(now: now)
            try writer.commit()
            let active = counts.values.reduce(0, +)
            logger.info(
                "rules loaded",
                metadata: [
                    "rules": "\(engine.rules.count)", "active_alerts": "\(active)", "replayed_readings": "\(replayed)",
                    "window": "\(window)",
                ])
        } catch {
            logger.error("restoring the rule state failed: \(error)")
            writer.rollback()
        }
    }

    /// Each second: rule deadlines, expiring windows and silent series; aggregate windows
    /// that are due; acknowledgements from upstream.
    func tick() {
        watchClock()
        let now = DaemonClock.shared.now()
        engine.tick(now: now, into: &transitions)
        do {
            if let o = outbound {
                if let t = o.backlogTransition(dropped: 0, now: now) { transitions.append(t) }
                let closed = try o.closeWindows(now: now, writer: writer)
                local.aggregatesSent += UInt64(closed)
                _ = try o.markAcknowledged(writer: writer, now: now)
                local.aggregateLate = o.aggregator.late
            }
            if !transitions.isEmpty { try recordTransitions() }
            try saveRuleStates(now: now)
            if writer.inTransaction && batchStartedAt == nil {
                try writer.commit()
                outbound?.committed()
            }
        } catch {
            storageFailed(error)
        }
        local.rules = engine.rules.count
        local.ruleStates = engine.stateCount
    }

    /// Compares vigil's time line with the wall clock: says so when the wall clock is stepped
    /// (vigil keeps its time line until it restarts) and has the decoder move timestamps
    /// that follow the stepped wall clock onto the time line. Returns whether that changed.
    @discardableResult
    private func watchClock() -> Bool {
        let before = decoder.wallOffset
        let event = DaemonClock.shared.adjust()
        let (offset, stepped) = DaemonClock.shared.offset
        local.clockOffset = TimeSpan(micros: offset)
        local.clockStepped = stepped
        decoder.wallOffset = stepped ? TimeSpan(micros: offset) : .zero
        switch event {
        case .stepped(let o):
            local.clockSteps += 1
            logger.warning(
                "the wall clock was stepped; vigil keeps its own time line (timers, windows and the time of readings without one) until it restarts",
                metadata: ["offset_seconds": "\(Self.seconds(o))"])
        case .back(let o):
            logger.notice("the wall clock is back on vigil's time line", metadata: ["offset_seconds": "\(Self.seconds(o))"])
        case nil:
            break
        }
        return decoder.wallOffset != before
    }

    static func seconds(_ micros: Int64) -> String { String(format: "%+.3f", Double(micros) / 1e6) }

    /// Applies a reload between batches: new rules keep the state of the alerts whose rule
    /// still exists; alerts of removed rules are resolved.
    func apply(_ reload: Reload) {
        commitPending()
        let previous = engine.activeStates
        engine = RuleEngine(rules: reload.rules)
        let offset = decoder.wallOffset
        decoder = MessageDecoder(subscriptions: reload.subscriptions, limits: reload.limits)
        decoder.wallOffset = offset
        commit = reload.commit
        writer.setLimits(retention: reload.retention, maxSize: reload.maxSize)
        startRules(previous: previous, reason: "its rule was removed or changed its match in a reload")
        tick()
        logger.notice("reloaded", metadata: ["rules": "\(reload.rules.count)"])
    }
}

extension BufferWriter {
    /// Writes a meta value now, in the open batch if there is one, else in its own commit.
    func setMetaOutsideBatch(_ key: String, _ value: String) throws {
        let own = !inTransaction
        if own { try begin() }
        try setMeta(key, value)
        if own { try commit() }
    }
}
