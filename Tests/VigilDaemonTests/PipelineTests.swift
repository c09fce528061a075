import Foundation
import Logging
import Testing
import VigilCore
import VigilMQTT
import VigilTestSupport

@testable import VigilDaemon
@testable import VigilStorage

/// The daemon's ingest path in process, on a manual clock: real SQLite, no broker, no
/// thread and no sleep. The test hands batches to the pipeline and moves time itself.
struct PipelineRig {
    static let t0 = Timestamp(seconds: 1_800_000_000)
    let dir: TemporaryDirectory
    let clock: ManualClock
    let buffer: Buffer
    let link: UpstreamLink
    let pipeline: IngestPipeline

    /// - Parameter hot: with a hot tier in `run/` (as the daemon has unless `durability: full`).
    init(
        rules: String, directory: TemporaryDirectory = TemporaryDirectory(), clock: ManualClock = ManualClock(start: t0),
        hot: Bool = false
    ) throws {
        dir = directory
        self.clock = clock
        try rules.write(toFile: dir.file("rules.yaml"), atomically: true, encoding: .utf8)
        let parsed = try RuleFiles.load(files: [dir.file("rules.yaml")])
        var options = BufferOptions(directory: dir.path)
        if hot {
            try FileManager.default.createDirectory(atPath: dir.file("run"), withIntermediateDirectories: true)
            options.runtimeDirectory = dir.file("run")
        }
        buffer = try Buffer(options: options)
        link = UpstreamLink(maxInflight: 10, clock: clock, onAcknowledged: {})
        var aggregate = AggregateConfig()
        aggregate.window = .minutes(1)
        aggregate.allowedLateness = .seconds(10)
        let subscription = SubscriptionSpec(
            network: "energy", filter: try TopicFilter("energy/+/+/+"),
            layout: try TopicLayout("energy/{site}/{device}/{metric}"), format: .auto)
        pipeline = IngestPipeline(
            inbox: Inbox(), buffer: buffer, clock: clock, subscriptions: [subscription], limits: IngestLimits(),
            commit: CommitPolicy(), rules: parsed,
            status: StatusBoard(gateway: "gw-test", localBroker: "127.0.0.1:1883", clock: clock), logger: Logger(label: "test"),
            runtimeDir: directory.file("run"),
            upstream: link, aggregate: aggregate,
            outbox: OutboxStage.Settings(gateway: "gw-test", prefix: "vigil/gw-test", stats: aggregate.stats))
        pipeline.start()
    }

    /// One batch of messages, received now, committed.
    func receive(_ messages: [(String, String)]) {
        var batch = MessageBatch()
        for (topic, payload) in messages { batch.append(topic: topic, payload: Array(payload.utf8), receivedAt: clock.now()) }
        pipeline.handle(batch)
        pipeline.commit()
    }

    /// Moves the clock a second at a time, ticking as the ingest thread does.
    func advance(seconds: Int) {
        for _ in 0..<seconds {
            clock.advance(.seconds(1))
            pipeline.tick()
        }
    }

    func reader() throws -> BufferReader { try BufferReader(options: buffer.options) }

    func outbox() throws -> [(kind: OutboxKind, json: [String: Any], delivered: Bool)] {
        try reader().outbox().map { m, delivered in
            (m.kind, (try JSONSerialization.jsonObject(with: Data(m.payload)) as? [String: Any]) ?? [:], delivered != nil)
        }
    }
}

@Suite("Ingest pipeline on a manual clock")
struct PipelineTests {
    static let rules = """
        rules:
          - id: voltage-low
            match: energy/+/+/voltage
            stat: last
            op: "<"
            levels: { yellow: 198 }
            for: 10s
        """

    /// A reading under the limit raises only after `for`; the window closes at its end
    /// plus the lateness, with the stats of what arrived; both reach the outbox with seqs in
    /// order, and an acknowledgement from upstream marks them delivered.
    @Test func readingsRulesWindowsAndOutbox() throws {
        let rig = try PipelineRig(rules: Self.rules)
        rig.receive([("energy/s1/m1/voltage", "230"), ("energy/s1/m1/current", "{\"value\":12,\"unit\":\"A\"}")])
        rig.advance(seconds: 5)
        rig.receive([("energy/s1/m1/voltage", "190")])
        rig.advance(seconds: 9)
        #expect(try rig.reader().alertEvents().isEmpty, "raised before for: 10s")
        rig.advance(seconds: 1)
        let events = try rig.reader().alertEvents()
        #expect(events.map(\.transition.state) == [.raised])
        #expect(events.first?.transition.at == PipelineRig.t0.adding(.seconds(15)))
        #expect(rig.pipeline.stats.activeAlerts[.yellow] == 1)

        // 1,800,000,000 is a whole minute: the window [t0, t0+60 s) closes at t0+70 s.
        rig.advance(seconds: 54)
        #expect(try rig.outbox().filter { $0.kind == .aggregate }.isEmpty)
        rig.advance(seconds: 1)
        let out = try rig.outbox()
        #expect(out.map(\.kind) == [.alert, .aggregate, .aggregate])
        #expect(out.map { $0.json["seq"] as? Int } == [1, 2, 3])
        let voltage = try #require(out.first { $0.json["series"] as? String == "energy/s1/m1/voltage" && $0.kind == .aggregate })
        #expect(voltage.json["count"] as? Int == 2)
        #expect(voltage.json["min"] as? Double == 190 && voltage.json["max"] as? Double == 230)
        #expect(voltage.json["window_start"] as? String == PipelineRig.t0.rfc3339)
        #expect(out.allSatisfy { !$0.delivered })

        // Upstream acknowledges seq 1 and 3: the next tick marks them delivered.
        rig.link.state.withLock { s in
            for (mid, seq) in [(Int32(7), Int64(1)), (8, 3)] {
                let m = OutboxMessage(seq: seq, kind: .alert, topic: "", payload: [], created: PipelineRig.t0)
                s.inflight[mid] = UpstreamLink.Inflight(seq: seq, kind: .alert, sentAt: 0, message: m)
            }
        }
        rig.link.mqttPublished(mid: 7)
        rig.link.mqttPublished(mid: 8)
        rig.advance(seconds: 1)
        #expect(try rig.outbox().map(\.delivered) == [true, false, true])
        #expect(try rig.reader().counters()[CounterName.outboxDelivered] == 2)
    }

    /// A restart on the same buffer neither forgets the raised alert nor raises it again,
    /// and carries on the seq and the watermark.
    @Test func restartKeepsAlertsSeqAndWatermark() throws {
        let first = try PipelineRig(rules: Self.rules)
        first.receive([("energy/s1/m1/voltage", "190")])
        first.advance(seconds: 75)
        let before = try first.outbox()
        #expect(before.map(\.kind) == [.alert, .aggregate])

        let again = try PipelineRig(reusing: first)
        #expect(again.pipeline.stats.activeAlerts[.yellow] == 1)
        again.receive([("energy/s1/m1/voltage", "189")])
        again.advance(seconds: 60)
        let after = try again.outbox()
        #expect(after.filter { $0.kind == .alert }.count == 1, "raised once across the restart")
        #expect(after.map { $0.json["seq"] as? Int } == [1, 2, 3])
        // The first window was not sent again; the second one was.
        #expect(after.filter { $0.kind == .aggregate }.map { $0.json["window_start"] as? String } == [
            PipelineRig.t0.rfc3339, PipelineRig.t0.adding(.minutes(1)).rfc3339,
        ])
    }

    /// The wall clock stepped back an hour: the time line does not move, so a `for` timer
    /// neither fires early nor waits an hour; the step is counted.
    @Test func wallClockStepDoesNotMoveTimers() throws {
        let rig = try PipelineRig(rules: Self.rules)
        rig.receive([("energy/s1/m1/voltage", "190")])
        rig.advance(seconds: 3)
        rig.clock.stepWall(.hours(-1))
        rig.advance(seconds: 6)
        #expect(try rig.reader().alertEvents().isEmpty)
        rig.advance(seconds: 1)
        #expect(try rig.reader().alertEvents().first?.transition.at == PipelineRig.t0.adding(.seconds(10)))
        #expect(rig.pipeline.stats.clockSteps == 1 && rig.pipeline.stats.clockStepped)
    }
}

extension PipelineTests {
    /// With a hot tier: rules and windows see each reading at once; the alert and the
    /// aggregate are on flash at once; the readings reach flash at the flush, once.
    @Test func hotTierHoldsReadingsUntilAFlush() throws {
        let rig = try PipelineRig(rules: Self.rules, hot: true)
        rig.receive([("energy/s1/m1/voltage", "190"), ("energy/s1/m1/voltage", "191")])
        rig.advance(seconds: 10)
        let flash = try SQLiteDatabase(path: rig.buffer.options.databasePath, readOnly: true)
        #expect(try flash.scalarInt("SELECT count(*) FROM readings") == 0)
        #expect(try flash.scalarInt("SELECT count(*) FROM alert_events") == 1, "the alert is on flash at once")
        #expect(try rig.reader().alertEvents().count == 1)
        var seen = 0
        try rig.reader().readings(matching: nil) { _ in seen += 1 }
        #expect(seen == 2, "the reader sees the hot tier")
        rig.advance(seconds: 60)
        #expect(try flash.scalarInt("SELECT count(*) FROM outbox WHERE kind = 1") == 1, "the aggregate is on flash at once")
        rig.pipeline.flush()
        #expect(try flash.scalarInt("SELECT count(*) FROM readings") == 2)
        #expect(rig.pipeline.stats.flushes == 1 && rig.pipeline.stats.flushedReadings == 2)
    }

    /// A flush of more than a step's readings goes a step per call (the loop takes the
    /// inbox in between); a batch that comes in between goes to the hot tier and moves with
    /// the last step, which counts the flush.
    @Test func aLargeFlushGoesInSteps() throws {
        let rig = try PipelineRig(rules: Self.rules, hot: true)
        let step = IngestPipeline.flushStepReadings
        let n = step * 2 + 500
        rig.receive((0..<n).map { ("energy/s1/m\($0 % 10)/voltage", "{\"value\": 230, \"ts\": \(1_800_000_000 + Double($0) / 1000)}") })
        let flash = try SQLiteDatabase(path: rig.buffer.options.databasePath, readOnly: true)
        rig.pipeline.flush()
        #expect(try flash.scalarInt("SELECT count(*) FROM readings") == Int64(step))
        #expect(rig.pipeline.stats.flushes == 0)
        // A late reading, older than all that moved: it waits in the hot tier for the next step.
        rig.receive([("energy/s1/m1/voltage", "{\"value\": 231, \"ts\": 1799999999}")])
        rig.pipeline.flush()
        #expect(try flash.scalarInt("SELECT count(*) FROM readings") == Int64(2 * step))
        rig.pipeline.flush()
        #expect(try flash.scalarInt("SELECT count(*) FROM readings") == Int64(n + 1))
        #expect(rig.pipeline.stats.flushes == 1 && rig.pipeline.stats.flushedReadings == UInt64(n + 1))
        #expect(try rig.buffer.tiers.hot!.rowCount() == 0)
    }
}

extension PipelineRig {
    /// A second daemon on the first one's buffer and clock, as after a restart.
    init(reusing other: PipelineRig, rules: String = PipelineTests.rules) throws {
        self = try PipelineRig(rules: rules, directory: other.dir, clock: other.clock)
    }
}
