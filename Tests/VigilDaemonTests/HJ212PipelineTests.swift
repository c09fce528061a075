import Foundation
import Logging
import Synchronization
import Testing
import VigilCore
import VigilMQTT
import VigilTestSupport

@testable import VigilDaemon
@testable import VigilStorage

/// Answers as the TCP listener would get them.
final class RecordedAnswers: HJ212AnswerSink {
    let answers = Mutex<[(connection: Int, bytes: [UInt8])]>([])
    func deliver(_ a: [(connection: Int, bytes: [UInt8])]) { answers.withLock { $0 += a } }
    func use(_ decoder: HJ212Decoder?) {}
    var all: [(connection: Int, bytes: [UInt8])] { answers.withLock { $0 } }
}

/// HJ 212 frames through the ingest pipeline in process, on a manual clock: readings
/// stored and judged like MQTT readings, flags kept out of rules and aggregates, data answers
/// only after the commit that holds the readings.
@Suite("HJ 212 in the ingest pipeline")
struct HJ212PipelineTests {
    // 2026-03-01 08:00:00 in Shanghai (a whole minute).
    static let t0 = Timestamp(seconds: 1_772_323_200)
    static let rules = """
        rules:
          - id: pm25-high
            match: urban/+/+/pm25
            stat: last
            op: ">"
            levels: { yellow: 75 }
        """

    struct Rig {
        let dir = TemporaryDirectory()
        let clock = ManualClock(start: HJ212PipelineTests.t0)
        let buffer: Buffer
        let link: UpstreamLink
        let answers = RecordedAnswers()
        let pipeline: IngestPipeline

        init(rules ruleText: String = HJ212PipelineTests.rules, hourlyAsMetric: Bool = false) throws {
            try ruleText.write(toFile: dir.file("rules.yaml"), atomically: true, encoding: .utf8)
            let rules = try RuleFiles.load(files: [dir.file("rules.yaml")])
            buffer = try Buffer(options: BufferOptions(directory: dir.path))
            link = UpstreamLink(maxInflight: 10, clock: clock, onAcknowledged: {})
            var aggregate = AggregateConfig()
            aggregate.window = .minutes(1)
            aggregate.allowedLateness = .seconds(10)
            let decoder = HJ212Decoder(
                stations: [
                    "ST001": HJ212Station(network: "urban", site: "district-1", device: "aqms-1", hourlyAverageAsMetric: hourlyAsMetric)
                ], zone: .shanghai)
            pipeline = IngestPipeline(
                inbox: Inbox(), buffer: buffer, clock: clock,
                subscriptions: [
                    SubscriptionSpec(
                        network: "hj212", filter: try TopicFilter("hj212/+"), layout: try TopicLayout("{site}/{device}/#"),
                        format: .hj212)
                ], limits: IngestLimits(), commit: CommitPolicy(), rules: rules,
                status: StatusBoard(gateway: "gw-test", localBroker: "127.0.0.1:1883", clock: clock), logger: Logger(label: "test"),
                runtimeDir: dir.file("run"), upstream: link, hj212: decoder, hj212Answers: answers, aggregate: aggregate,
                outbox: OutboxStage.Settings(gateway: "gw-test", prefix: "vigil/gw-test", stats: aggregate.stats))
            pipeline.start()
        }

        /// Frames from TCP connection `connection` (nil: over MQTT), handled, not yet committed.
        func handle(_ frames: [[UInt8]], connection: Int? = 3) {
            var batch = MessageBatch()
            for f in frames {
                let topic = connection.map { HJ212Topic.topic(connection: $0) } ?? Array("hj212/gw".utf8)
                topic.withUnsafeBytes { t in f.withUnsafeBytes { batch.append(topic: t, payload: $0, receivedAt: clock.now()) } }
            }
            pipeline.handle(batch)
        }

        func readings() throws -> [String] {
            var out: [String] = []
            try BufferReader(options: buffer.options).readings(matching: nil) { out.append("\($0.series)=\(Rule.formatNumber($0.value))") }
            return out
        }
    }

    static func frame(qn: String = "20260301080000001", flag: Int = 5, cn: Int = 2011, cp: String) -> [UInt8] {
        HJ212.frame(segment: "QN=\(qn);ST=22;CN=\(cn);PW=123456;MN=ST001;Flag=\(flag);CP=&&\(cp)&&")
    }

    /// A status code the table does not know (R01, every cycle): stored under its own name and
    /// answered, so the logger deleting it loses nothing; counted by code; one reject per
    /// station and code an hour, not one per frame.
    @Test func unknownCodesStoredAnsweredRejectedOnceAnHour() throws {
        let rig = try Rig()
        for minute in 0..<61 {
            let qn = "202603010800" + HJ212.pad(minute, 2) + "001"
            let local = "2026030108" + HJ212.pad(minute % 60, 2) + "00"
            let hour = minute == 60 ? "2026030109" + "0000" : local
            rig.handle([Self.frame(qn: qn, cp: "DataTime=\(hour);R01-Rtd=\(minute),R01-Flag=N;a34004-Rtd=30")])
            rig.pipeline.commit()
            if minute < 60 { rig.clock.advance(.minutes(1)) }
        }
        #expect(rig.answers.all.count == 61, "every frame answered")
        let stored = try rig.readings()
        #expect(stored.filter { $0.hasPrefix("urban/district-1/aqms-1/R01=") }.count == 61)
        #expect(stored.filter { $0.hasPrefix("urban/district-1/aqms-1/pm25=") }.count == 61)
        #expect(rig.pipeline.snapshot.hj212UnknownCodes == ["R01": 61])
        let rejects = try BufferReader(options: rig.buffer.options).rejects(limit: 100)
        let unknown = rejects.filter { $0.reason.code == .hj212UnknownCode }
        #expect(unknown.count == 2, "minute 0 and, an hour later, minute 60: \(unknown.map(\.at))")
        #expect(unknown.first?.reason.detail.contains("R01") == true)
    }

    /// A frame's topic names the peer and the connection: the answer goes to the connection,
    /// a reject shows the address (`tcp:hj212/<addr>/<id>`).
    @Test func peerAddressInTheTopic() throws {
        let rig = try Rig()
        var batch = MessageBatch()
        let topic = HJ212Topic.topic(connection: 5, peer: "10.0.0.7:4000")
        let good = Self.frame(cp: "DataTime=20260301080000;a34004-Rtd=35")
        let bad = Array(good.dropLast(3))
        for f in [good, bad] {
            topic.withUnsafeBytes { t in f.withUnsafeBytes { batch.append(topic: t, payload: $0, receivedAt: rig.clock.now()) } }
        }
        rig.pipeline.handle(batch)
        rig.pipeline.commit()
        #expect(rig.answers.all.map(\.connection) == [5])
        let rejects = try BufferReader(options: rig.buffer.options).rejects(limit: 10)
        #expect(rejects.map(\.topic) == ["tcp:hj212/10.0.0.7:4000/5"])
    }

    /// The answer comes after the commit, byte for byte; a frame that does not ask gets none.
    @Test func answerAfterCommit() throws {
        let rig = try Rig()
        rig.handle([
            Self.frame(qn: "20260301080000001", cp: "DataTime=20260301080000;a34004-Rtd=35.2,a34004-Flag=N"),
            Self.frame(qn: "20260301080000002", flag: 4, cp: "DataTime=20260301080000;a34002-Rtd=80,a34002-Flag=N"),
        ])
        #expect(rig.answers.all.isEmpty, "nothing is answered before the commit")
        rig.pipeline.commit()
        let a = rig.answers.all
        #expect(a.count == 1)
        #expect(a.first?.connection == 3)
        // Length and CRC worked out apart from vigil (the corpus README's algorithm in Python).
        let answer = String(decoding: a.first?.bytes ?? [], as: UTF8.self)
        #expect(answer == "##0068QN=20260301080000001;ST=91;CN=9014;PW=123456;MN=ST001;Flag=4;CP=&&&&3E80\r\n")
        #expect(try rig.readings().sorted() == ["urban/district-1/aqms-1/pm10=80", "urban/district-1/aqms-1/pm25=35.2"])
        // Over MQTT nobody is answered; a rejected frame is not answered either.
        rig.handle([Self.frame(cp: "DataTime=20260301080000;a34004-Rtd=36")], connection: nil)
        rig.handle([Array(Self.frame(cp: "DataTime=20260301080000;a34004-Rtd=36").dropLast(3))])
        rig.pipeline.commit()
        #expect(rig.answers.all.count == 1)
    }

    /// A failed write answers nothing: the logger keeps the data and sends it again.
    @Test func failedWriteYieldsNoAnswer() throws {
        let rig = try Rig()
        let db = try SQLiteDatabase(path: rig.buffer.options.databasePath)
        try db.execute("CREATE TRIGGER fail_readings BEFORE INSERT ON readings BEGIN SELECT RAISE(ABORT, 'injected'); END")
        rig.handle([Self.frame(qn: "20260301080000011", cp: "DataTime=20260301080000;a34004-Rtd=35.2")])
        rig.pipeline.commit()
        #expect(rig.answers.all.isEmpty, "the write failed: no 9014")
        #expect(try rig.readings().isEmpty)
        try db.execute("DROP TRIGGER fail_readings")
        rig.handle([Self.frame(qn: "20260301080000012", cp: "DataTime=20260301080000;a34004-Rtd=35.2")])
        rig.pipeline.commit()
        let a = rig.answers.all
        #expect(a.count == 1)
        let answer = String(decoding: a.first?.bytes ?? [], as: UTF8.self)
        #expect(answer.contains("QN=20260301080000012;"))
        #expect(try rig.readings() == ["urban/district-1/aqms-1/pm25=35.2"])
    }

    /// Calibration values never raise an alert nor enter an aggregate; they are counted by flag.
    @Test func flaggedValuesStayOutOfRulesAndAggregates() throws {
        let rig = try Rig()
        // 300 ug/m3 while the analyser calibrates (C), and lower-case maintenance (m).
        rig.handle([
            Self.frame(cp: "DataTime=20260301080000;a34004-Rtd=300,a34004-Flag=C"),
            Self.frame(cp: "DataTime=20260301080001;a34004-Rtd=310,a34004-Flag=m"),
            Self.frame(cp: "DataTime=20260301080002;a34004-Rtd=40,a34004-Flag=N"),
        ])
        rig.pipeline.commit()
        for _ in 0..<75 {
            rig.clock.advance(.seconds(1))
            rig.pipeline.tick()
        }
        #expect(try BufferReader(options: rig.buffer.options).alertEvents().isEmpty, "calibration must not page anyone")
        #expect(try rig.readings() == ["urban/district-1/aqms-1/pm25=40"])
        #expect(rig.pipeline.stats.hj212Flagged == [.c: 1, .m: 1])
        #expect(try BufferReader(options: rig.buffer.options).counters()[CounterName.hj212Flagged("C")] == 1)
        let aggregates = try BufferReader(options: rig.buffer.options).outbox().compactMap { m, _ -> [String: Any]? in
            guard m.kind == .aggregate else { return nil }
            return try JSONSerialization.jsonObject(with: Data(m.payload)) as? [String: Any]
        }
        #expect(aggregates.count == 1)
        #expect(aggregates.first?["count"] as? Int == 1)
        #expect(aggregates.first?["max"] as? Double == 40)
        // The same value flagged N raises.
        rig.handle([Self.frame(cp: "DataTime=20260301080116;a34004-Rtd=300,a34004-Flag=N")])
        rig.pipeline.commit()
        rig.clock.advance(.seconds(1))
        rig.pipeline.tick()
        #expect(try BufferReader(options: rig.buffer.options).alertEvents().map(\.transition.state) == [.raised])
    }

    /// A 2061 frame for the hour 07:00-08:00 local, received at 08:05 (five minutes after it
    /// ended), committed, then 80 s of ticks.
    static func receiveHourlyFrame(_ rig: Rig) {
        rig.clock.advance(.minutes(5))
        rig.handle([
            Self.frame(cn: 2061, cp: "DataTime=20260301070000;a34004-Avg=90,a34004-Min=60,a34004-Max=130,a34004-Flag=N")
        ])
        rig.pipeline.commit()
        for _ in 0..<80 {
            rig.clock.advance(.seconds(1))
            rig.pipeline.tick()
        }
    }

    /// Hourly data: DataTime is the hour's start; the values are stamped at its end, stored
    /// and judged by a rule on their own metric, and not aggregated again (not counted late).
    @Test func intervalDataIsJudgedNotAggregatedAgain() throws {
        let rig = try Rig()
        Self.receiveHourlyFrame(rig)
        #expect(try rig.readings().sorted() == [
            "urban/district-1/aqms-1/pm25_avg_1h=90", "urban/district-1/aqms-1/pm25_max_1h=130",
            "urban/district-1/aqms-1/pm25_min_1h=60",
        ])
        var stamps: [Timestamp] = []
        try BufferReader(options: rig.buffer.options).readings(matching: nil) { stamps.append($0.timestamp) }
        #expect(stamps.allSatisfy { $0 == HJ212PipelineTests.t0 }, "stamped at the interval's end, 08:00 local")
        #expect(rig.pipeline.stats.hj212IntervalReadings == 3)
        #expect(rig.pipeline.stats.aggregateLate == 0)
        #expect(try BufferReader(options: rig.buffer.options).counters()[CounterName.aggregatesLate] ?? 0 == 0)
        let aggregates = try BufferReader(options: rig.buffer.options).outbox().filter { $0.0.kind == .aggregate }
        #expect(aggregates.isEmpty)
        // The real-time pm25 rule does not see them; a rule on pm25_avg_1h would.
        #expect(try BufferReader(options: rig.buffer.options).alertEvents().isEmpty)
    }

    /// `interval_as: metric`: the hourly average is stored under the plain metric, stamped at
    /// the hour's end, so the shipped rules on `pm25` judge it; min and max keep their names;
    /// none of it enters an aggregate.
    @Test func hourlyAverageAsThePlainMetric() throws {
        let rig = try Rig(hourlyAsMetric: true)
        Self.receiveHourlyFrame(rig)
        #expect(try rig.readings().sorted() == [
            "urban/district-1/aqms-1/pm25=90", "urban/district-1/aqms-1/pm25_max_1h=130",
            "urban/district-1/aqms-1/pm25_min_1h=60",
        ])
        var stamps: [Timestamp] = []
        try BufferReader(options: rig.buffer.options).readings(matching: nil) { stamps.append($0.timestamp) }
        #expect(stamps.allSatisfy { $0 == HJ212PipelineTests.t0 }, "stamped at the hour's end, 08:00 local")
        let aggregates = try BufferReader(options: rig.buffer.options).outbox().filter { $0.0.kind == .aggregate }
        #expect(aggregates.isEmpty)
        #expect(rig.pipeline.stats.aggregateLate == 0)
        // The rule on plain pm25 (> 75) raises from the hourly average.
        #expect(try BufferReader(options: rig.buffer.options).alertEvents().map { "\($0.transition.rule) \($0.transition.series)" } == ["pm25-high urban/district-1/aqms-1/pm25"])
    }

    /// A rule on the hourly mean raises from interval data.
    @Test func ruleOnIntervalMetric() throws {
        let rig = try Rig(rules: """
            rules:
              - id: pm25-hourly
                match: urban/+/+/pm25_avg_1h
                stat: last
                op: ">"
                levels: { yellow: 75 }
            """)
        rig.clock.advance(.minutes(5))
        rig.handle([Self.frame(cn: 2061, cp: "DataTime=20260301070000;a34004-Avg=90,a34004-Flag=N")])
        rig.pipeline.commit()
        rig.clock.advance(.seconds(1))
        rig.pipeline.tick()
        #expect(try BufferReader(options: rig.buffer.options).alertEvents().map(\.transition.rule) == ["pm25-hourly"])
    }
}
