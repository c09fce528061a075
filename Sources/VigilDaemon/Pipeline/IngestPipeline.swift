import Foundation
import Logging
import Synchronization
import VigilCore
import VigilMQTT
import VigilStorage

/// The ingest thread: takes batches of raw messages from the inbox and sends each message
/// down the path of a reading, stage by stage:
///
///     topic (LocalIngress, the MQTT thread) -> inbox
///       -> decode (DecodeStage) -> store (StoreStage)
///       -> rules (RuleStage) and windows (WindowStage)
///       -> outbox (OutboxStage) -> upstream (UpstreamSender, its own thread)
///
/// and commits every `commit.interval` or `commit.rows`. Between batches it does the
/// buffer's upkeep (`BufferUpkeep`). Time comes from the `VigilClock` it is given, so an
/// in-process test can drive every stage on a manual clock (`handle`, `commit`, `tick`).
///
/// - Important: `run()` is called once, on its own thread, which then owns the stages.
///   Other threads only read `snapshot` (a Mutex), hand over a reload (a Mutex) and call
///   `stop()`: hence `@unchecked Sendable`.
public final class IngestPipeline: @unchecked Sendable {
    public let inbox: Inbox
    let buffer: Buffer
    let clock: any VigilClock
    let logger: Logger
    let status: StatusBoard
    var decode: DecodeStage
    var store: StoreStage
    var rules: RuleStage
    /// Windows and outbox, when an upstream is configured.
    var upstream: UpstreamStages?
    var upkeep: BufferUpkeep
    private let statusWriter: StatusWriter
    private let reloads = Mutex<Reload?>(nil)
    private let published = Mutex(IngestSnapshot())
    /// The counters as the ingest thread keeps them; `publish()` copies them out.
    var stats = IngestSnapshot()
    private var readings: [Reading] = []
    /// Messages were taken from the inbox since the last commit (they count against its window).
    private var holdingTaken = false
    /// `handle` is going through a batch: a commit now leaves the rest of it waiting.
    private var inBatch = false
    /// Where the answers of HJ 212 frames from the TCP listener go once committed.
    let hj212Answers: (any HJ212AnswerSink)?
    /// Answers (CN=9014) for frames of the open batch: sent only after the commit that holds
    /// their readings, and never when a failed write rolled that batch back.
    private var pendingAnswers: [(connection: Int, bytes: [UInt8], failures: UInt64)] = []
    private var nextTick = 0.0
    var nextCountersWrite = 0.0
    var nextSeenWrite = 0.0
    /// How often a flush writes the counters to flash (until then they wait in the hot
    /// tier, which a crash keeps), and when each series was last seen (a start after a
    /// crash or power cut finds what came since in the readings; see `ReadingStore`).
    static let countersWriteSeconds = 60.0
    static let seenWriteSeconds = 600.0
    /// A flush is under way in steps (see `flush()`, IngestPipeline+Flush.swift).
    var flushing = false
    /// Readings a flush moves per step: about 4 ms of work on the ingest thread (a 2-core
    /// x86 server; see docs/benchmark.md), a few bytes per reading of flash for each
    /// step's own commit.
    static let flushStepReadings = 1024

    #if VIGIL_TEST_HOOKS
    /// Test hooks (debug builds): while either is set, the thread stops making progress.
    /// `wedged` is for in-process tests, `wedgedByFile` follows `<state_dir>/.wedge`.
    public let wedged = Atomic<Bool>(false)
    let wedgedByFile = Atomic<Bool>(false)
    #endif

    /// What a reload changes while running.
    public struct Reload: Sendable {
        public var rules: [Rule]
        public var limits: IngestLimits
        public var commit: CommitPolicy
        public var retention: TimeSpan
        public var maxSize: ByteSize
        public var subscriptions: [SubscriptionSpec]
        public var hj212: HJ212Decoder?
    }

    init(
        inbox: Inbox, buffer: Buffer, clock: any VigilClock, subscriptions: [SubscriptionSpec], limits: IngestLimits,
        commit: CommitPolicy, rules: [Rule], status: StatusBoard, logger: Logger, runtimeDir: String,
        upstream: UpstreamLink? = nil, hj212: HJ212Decoder? = nil, hj212Answers: (any HJ212AnswerSink)? = nil,
        aggregate: AggregateConfig = AggregateConfig(), outbox: OutboxStage.Settings = OutboxStage.Settings()
    ) {
        self.inbox = inbox
        self.buffer = buffer
        buffer.flashSyncGate = (hold: { [inbox] in inbox.hold() }, release: { [inbox] in inbox.release() })
        inbox.setWindow(commit.window)
        self.clock = clock
        self.status = status
        self.logger = logger
        decode = DecodeStage(
            subscriptions: subscriptions, limits: limits, hj212: hj212, clock: clock, buffer: buffer, logger: logger)
        self.hj212Answers = hj212Answers
        hj212Answers?.use(hj212)
        store = StoreStage(buffer: buffer, policy: commit, logger: logger)
        self.rules = RuleStage(rules: rules, buffer: buffer, logger: logger)
        self.upstream = upstream.map { link in
            UpstreamStages(
                windows: WindowStage(config: aggregate),
                outbox: OutboxStage(settings: outbox, link: link, buffer: buffer))
        }
        upkeep = BufferUpkeep(buffer: buffer, runtimeDir: runtimeDir, logger: logger)
        statusWriter = StatusWriter(runtimeDir: runtimeDir, logger: logger)
        readings.reserveCapacity(64)
    }

    /// A copy of the counters and histograms.
    public var snapshot: IngestSnapshot { published.withLock { $0 } }

    /// Asks the thread to finish: it drains the inbox, commits and returns.
    public func stop() { inbox.close() }

    /// Hands a validated reload to the ingest thread, which applies it on its next turn.
    public func requestReload(_ reload: Reload) {
        reloads.withLock { $0 = reload }
        inbox.wake()
    }

    /// The thread body. Returns after `stop()`, once everything received is committed.
    public func run() {
        var batch = MessageBatch()
        start()
        while true {
            #if VIGIL_TEST_HOOKS
            while wedged.load(ordering: .relaxed) || wedgedByFile.load(ordering: .relaxed) { usleep(10_000) }
            #endif
            if let reload = reloads.withLock({ r -> Reload? in defer { r = nil }; return r }) { apply(reload) }
            let now = Monotonic.seconds()
            // A commit due at a known time: sleep until then unless a large batch builds up.
            let deadline = MonotonicDeadline.after(store.due.map { $0 - now } ?? min(1, max(0.001, upkeep.nextStatusWrite - now)))
            let wakeAt = store.due == nil ? 1 : max(1, min(1024, store.room))
            // The disk nearly full: take nothing more. The inbox fills, libmosquitto stops
            // reading and the broker keeps the messages until space returns. Stopping while
            // paused, what the inbox holds (acknowledged to the broker already) is written
            // into the reserve that min_free kept.
            if diskPaused(now: now) && !inbox.isClosed {
                upkeepWhilePaused(at: now)
                usleep(50_000)
                continue
            }
            let got = inbox.take(into: &batch, deadline: deadline, wakeAt: wakeAt)
            if got {
                holdingTaken = true
                handle(batch)
            }
            let t = Monotonic.seconds()
            if let due = store.due {
                // Late (the MQTT thread waits on the window): commit what is pending now.
                if t >= due || store.isFull || inbox.isHeldByWindow { commit() }
            } else if holdingTaken {
                // What was taken left nothing to commit (rejects, duplicates).
                committedTaken()
            }
            if !got && inbox.isClosed {
                commit()
                break
            }
            upkeepTurn(at: t)
        }
        finish()
    }

    /// Each message of a batch down the path: decode, store, rules and windows; what the
    /// rules raise into the alert history and the outbox, in the same transaction.
    func handle(_ batch: MessageBatch) {
        inBatch = true
        defer { inBatch = false }
        batch.forEach { topic, payload, receivedAt in
            guard decode.decode(topic: topic, payload: payload, receivedAt: receivedAt, into: &readings, stats: &stats)
            else { return }
            let failuresBefore = store.failures
            // HJ 212 interval data (2051, 2061, 2031) are the station's own statistics of an
            // interval that has ended: stored and judged, not aggregated again (their window
            // has mostly closed by the time they come, so they would all count as late).
            let interval = decode.decoder.lastHJ212.map { $0.intervalReadings > 0 } ?? false
            do {
                let tx = try store.batch()
                for r in readings {
                    guard let id = try store.insert(r, receivedAt: receivedAt, tx, stats: &stats) else { continue }
                    rules.ingest(r, seriesID: id, now: receivedAt)
                    if interval {
                        stats.hj212IntervalReadings += 1
                    } else if upstream?.windows.add(r, seriesID: id) == false {
                        buffer.counters.add(CounterName.aggregatesLate)
                    }
                }
                try recordTransitions()
            } catch {
                store.failed(error, stats: &stats)
            }
            if store.failures == failuresBefore, let frame = decode.decoder.lastHJ212?.frame, frame.wantsAnswer,
                let connection = HJ212Topic.connection(topic)
            {
                // The data answer waits for the commit: a logger that has it drops the data.
                pendingAnswers.append(
                    (connection, HJ212.answer(cn: 9014, qn: frame.qn ?? "", pw: frame.pw, mn: frame.mn), store.failures))
            }
            if store.isFull { commit() }
        }
        decode.finishBatch(messages: batch.count, stats: &stats)
    }

    /// After a commit: the answers whose readings it holds go to the listener; those of a
    /// batch a failed write rolled back are dropped (the logger sends the data again).
    private func answersCommitted() {
        guard !pendingAnswers.isEmpty else { return }
        let failures = store.failures
        let ready = pendingAnswers.filter { $0.failures == failures }.map { (connection: $0.connection, bytes: $0.bytes) }
        pendingAnswers.removeAll(keepingCapacity: true)
        if !ready.isEmpty { hj212Answers?.deliver(ready) }
    }

    /// Writes the rules' transitions into the alert history and the outbox.
    func recordTransitions() throws {
        try rules.record(buffer, enqueue: { t, tx in try upstream?.outbox.enqueue(t, tx) }, stats: &stats)
    }

    /// Commits what is pending, with the rule states that changed, and tells the upstream
    /// sender about new outbox rows.
    func commit() {
        defer { committedTaken() }
        guard store.hasPending else { return }
        do {
            try rules.saveStates(now: clock.now(), buffer)
        } catch {
            store.failed(error, stats: &stats)
            pendingAnswers.removeAll(keepingCapacity: true)
            return
        }
        guard store.commit(now: clock, stats: &stats) else {
            pendingAnswers.removeAll(keepingCapacity: true)
            return
        }
        answersCommitted()
        upstream?.outbox.committed()
        publish()
    }

    /// Tells the inbox that what was taken is committed (or rolled back and counted): it no
    /// longer counts against the window a crash can lose.
    private func committedTaken() {
        guard holdingTaken else { return }
        inbox.committed(keepingLast: inBatch)
        holdingTaken = inBatch
    }

    /// Each second: the clock, rule deadlines, expiring windows and silent series;
    /// aggregate windows that are due; acknowledgements from upstream.
    func tick() {
        decode.watchClock(&stats)
        let now = clock.now()
        rules.tick(now: now, stats: &stats)
        do {
            if let t = try upstream?.tick(now: now, buffer, stats: &stats) { rules.add(t) }
            try recordTransitions()
            try rules.saveStates(now: now, buffer)
            // A batch of readings commits at its own time; otherwise commit what the tick wrote.
            if store.batchStartedAt == nil { commitUpkeep() }
        } catch {
            store.failed(error, stats: &stats)
        }
    }

    /// Commits what a tick or the upkeep wrote outside a batch of readings.
    private func commitUpkeep() {
        guard buffer.inTransaction else { return }
        do {
            try buffer.commit()
            upstream?.outbox.committed()
        } catch {
            store.failed(error, stats: &stats)
        }
    }

    /// Copies the counters out for status and metrics.
    func publish() {
        stats.lastProgress = Monotonic.seconds()
        let copy = stats
        published.withLock { $0 = copy }
    }

    private func showProgress(at now: Double) {
        stats.lastProgress = now
        published.withLock { $0.lastProgress = now }
    }

    private func diskPaused(now: Double) -> Bool {
        let paused = store.diskPaused(now: now)
        if paused != stats.diskPaused {
            stats.diskPaused = paused
            if paused { stats.diskPauses += 1 }
            publish()
        }
        return paused
    }

    /// Between batches: the tick, the status record, the series' last-seen times, and a
    /// step of retention and size enforcement.
    private func upkeepTurn(at now: Double) {
        showProgress(at: now)
        if now >= nextTick {
            nextTick = now + 1
            tick()
        }
        if upkeep.statusDue(at: now) {
            publish()
            writeStatus()
        }
        upkeep.checkHotRoom(at: now)
        if flushing || upkeep.flushDue(at: now) { flush() }
        let dropped = upkeep.maintain(at: now, clock: clock, prunableBefore: upstream?.windows.summarisedBefore, stats: &stats)
        if let dropped, dropped > 0, let t = upstream?.outbox.backlogTransition(dropped: dropped, now: clock.now()) {
            rules.add(t)
            do {
                try recordTransitions()
                if store.batchStartedAt == nil { commitUpkeep() }
            } catch {
                store.failed(error, stats: &stats)
            }
        }
    }

    /// While ingest waits for disk space: the watchdog and the status record still see a
    /// daemon that is alive (the status write may fail for want of space; it is retried).
    private func upkeepWhilePaused(at now: Double) {
        showProgress(at: now)
        if upkeep.statusDue(at: now) {
            decode.watchClock(&stats)
            writeStatus()
        }
    }

    /// The status record `vigil status` reads, encoded and written on `statusWriter`'s queue.
    func writeStatus() {
        let (snapshot, depth, backPressure, status) = (stats, inbox.depth, inbox.backPressure, status)
        statusWriter.write { status.json(ingest: snapshot, inboxDepth: depth, backPressure: backPressure) }
    }

    /// The last commit and flush: acknowledgements, series last seen, rule timers, the hot
    /// tier marked empty, and a status record that says the daemon stopped cleanly (so
    /// `vigil status` tells a clean stop from a crash).
    private func finish() {
        do {
            let now = clock.now()
            try upstream?.outbox.markAcknowledged(now: now, buffer)
            try buffer.close { tx throws(SQLiteError) in
                try buffer.readings.flushSeriesSeen(tx)
                try rules.saveStates(now: now, buffer, all: true)
            }
            stats.stopped = true
        } catch {
            logger.error("final commit failed: \(error)")
        }
        publish()
        statusWriter.writeLast(status.json(ingest: stats, inboxDepth: inbox.depth, backPressure: inbox.backPressure))
    }
}
