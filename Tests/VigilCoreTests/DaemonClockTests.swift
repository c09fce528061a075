import Testing

@testable import VigilCore

/// vigil's time line against a manual wall clock and a manual never-stepping clock.
@Suite("Time line: monotonic inside, the wall clock's steps kept out")
struct DaemonClockTests {
    static let start = Timestamp(seconds: 1_763_892_000)
    static func ns(_ s: Double) -> Int64 { Int64(s * 1e9) }

    /// Drives a time line second by second; the wall clock is the monotonic one plus `step`.
    struct Run {
        var line = TimeLine(wall: DaemonClockTests.start, mono: 0)
        var step: Int64 = 0  // micros the wall clock is stepped by
        var events: [TimeLine.Event] = []
        var last = DaemonClockTests.start

        mutating func second(_ s: Int) {
            let m = DaemonClockTests.ns(Double(s))
            let wall = DaemonClockTests.start.adding(.seconds(Int64(s))).adding(TimeSpan(micros: step))
            let before = line.time(mono: m)
            if let e = line.adjust(wall: wall, mono: m) { events.append(e) }
            #expect(line.time(mono: m) == before, "adjust never moves the time line")
            #expect(before >= last, "the time line never goes back")
            last = before
        }
    }

    @Test func stepsBackAndForwardAreKeptOut() {
        var r = Run()
        for s in 1...10 { r.second(s) }
        #expect(r.events.isEmpty)
        r.step = -3_600_000_000  // back an hour
        for s in 11...20 { r.second(s) }
        #expect(r.events == [.stepped(offset: -3_600_000_000)], "one report per step")
        #expect(r.line.stepped)
        // The time line went on as if nothing happened: 20 s after the start, exactly.
        #expect(r.line.time(mono: Self.ns(20)) == Self.start.adding(.seconds(20)))
        r.step = 86_400_000_000  // forward a day
        for s in 21...30 { r.second(s) }
        #expect(r.line.time(mono: Self.ns(30)) == Self.start.adding(.seconds(30)))
        #expect(r.events == [.stepped(offset: -3_600_000_000), .stepped(offset: 86_400_000_000)], "a second step is a second report")
        #expect(r.line.offset == 86_400_000_000)
        r.step = 0  // set right again
        for s in 31...40 { r.second(s) }
        #expect(r.events.last == .back(offset: 0))
        #expect(!r.line.stepped)
    }

    @Test func smallOffsetsAreSlewedAwayNeverStepped() {
        var r = Run()
        r.step = 400_000  // an NTP step of 0.4 s: slewed at 1 ms/s
        for s in 1...10 { r.second(s) }
        #expect(r.events.isEmpty)
        let behind = r.line.offset
        #expect(behind > 380_000 && behind < 400_000, "slews no faster than 1 ms per second: \(behind)")
        for s in 11...500 { r.second(s) }
        #expect(r.line.offset == 0, "caught up within 0.4 s / 1 ms per s: \(r.line.offset)")
        r.step = -400_000  // and back: the time line slows down but never goes back
        for s in 501...1400 { r.second(s) }
        #expect(r.line.offset == 0)
        #expect(r.events.isEmpty)
    }

    /// Long without a look at the wall clock (ingest paused, say): the slew stops at the
    /// offset it had to close, it does not run on past it.
    @Test func theSlewStopsAtTheOffset() {
        var line = TimeLine(wall: Self.start, mono: 0)
        _ = line.adjust(wall: Self.start.adding(.milliseconds(2500)), mono: Self.ns(1))  // 1.5 s ahead
        let day = Self.ns(86_400)
        #expect(line.time(mono: day) == Self.start.adding(.seconds(86_400)).adding(.milliseconds(1500)))
        #expect(line.adjust(wall: Self.start.adding(.seconds(86_400)).adding(.milliseconds(1500)), mono: day) == nil)
        #expect(line.offset == 0)
    }

    @Test func aLeapSecondIsNotAStep() {
        var r = Run()
        r.step = -1_000_001  // read to the microsecond, a hair over a second
        for s in 1...5 { r.second(s) }
        #expect(r.events.isEmpty)
        #expect(!r.line.stepped)
    }

    /// A reading's own timestamp is judged against the time line and, after a step, the
    /// stepped wall clock too: a step loses no reading.
    @Test func decoderTakesWhatEitherClockAllows() throws {
        let subs = [
            SubscriptionSpec(
                network: "energy", filter: try TopicFilter("energy/+/+/+"), layout: try TopicLayout("energy/{site}/{device}/{metric}"),
                format: .auto)
        ]
        var d = MessageDecoder(subscriptions: subs, limits: IngestLimits())
        func verdict(_ ts: Timestamp) -> RejectReason.Code? {
            var out: [Reading] = []
            let topic = Array("energy/s/d/v".utf8)
            let payload = Array("{\"value\":1,\"ts\":\(ts.secondsString)}".utf8)
            do {
                try topic.withUnsafeBytes { t in
                    try payload.withUnsafeBytes { p in try d.decode(topic: t, payload: p, receivedAt: Self.start, into: &out) }
                }
                return nil
            } catch { return (error as? RejectReason)?.code }
        }
        let aDayAhead = Self.start.adding(.days(1))
        let eightDaysBack = Self.start.subtracting(.days(8))
        #expect(verdict(aDayAhead) == .futureTimestamp)
        #expect(verdict(eightDaysBack) == .tooOld)
        d.wallOffset = .days(1)  // the wall clock stepped a day ahead
        #expect(verdict(aDayAhead) == nil)
        #expect(d.takeShifted() == 1)
        #expect(verdict(aDayAhead.adding(.minutes(6))) == .futureTimestamp)
        #expect(verdict(eightDaysBack) == .tooOld)
        #expect(verdict(Self.start.subtracting(.seconds(30))) == nil, "a sensor on the time line")
        #expect(d.takeShifted() == 0)
        d.wallOffset = TimeSpan(micros: -TimeSpan.days(1).micros)  // a day behind
        #expect(verdict(eightDaysBack.subtracting(.minutes(1))) == .tooOld, "over seven days before the stepped clock: too old there too")
        #expect(verdict(Self.start.subtracting(.days(1))) == nil)
        #expect(verdict(aDayAhead) == .futureTimestamp)
    }

    /// A sensor that follows the stepped wall clock: its readings land on the time line,
    /// where rules, windows and aggregates expect them.
    @Test func timestampsThatFollowTheSteppedClockAreMovedOntoTheTimeLine() throws {
        let subs = [
            SubscriptionSpec(
                network: "energy", filter: try TopicFilter("energy/+/+/+"), layout: try TopicLayout("energy/{site}/{device}/{metric}"),
                format: .auto)
        ]
        var d = MessageDecoder(subscriptions: subs, limits: IngestLimits())
        d.wallOffset = TimeSpan(micros: -3_600_000_000)  // the wall clock an hour back
        var out: [Reading] = []
        let sent = Self.start.subtracting(.hours(1)).adding(.milliseconds(250))  // the sensor's clock is the stepped one
        let topic = Array("energy/s/d/v".utf8)
        let payload = Array("{\"value\":1,\"ts\":\(sent.secondsString)}".utf8)
        try topic.withUnsafeBytes { t in
            try payload.withUnsafeBytes { p in try d.decode(topic: t, payload: p, receivedAt: Self.start, into: &out) }
        }
        #expect(out.map(\.timestamp) == [Self.start.adding(.milliseconds(250))])
        #expect(d.takeShifted() == 1)
    }

    /// A restart after the wall clock went back: the stored timers lie ahead and start
    /// from now instead of waiting for the difference.
    @Test func storedTimersAheadStartFromNow() throws {
        let series = try #require(SeriesKey(path: "energy/s/d/v"))
        let later = Self.start.adding(.hours(1))
        let r = AlertStateRecord(
            rule: "r", series: series, level: .yellow, since: later, pending: [.red: later], absent: [.yellow: Self.start],
            lastValue: 1, threshold: 2)
        let clamped = try #require(r.timersNotAfter(Self.start))
        #expect(clamped.pending == [.red: Self.start])
        #expect(clamped.absent == [.yellow: Self.start])
        #expect(clamped.since == later, "the alert's since is data: kept")
        #expect(r.timersNotAfter(later) == nil, "nothing ahead: nothing to do")
    }
}
