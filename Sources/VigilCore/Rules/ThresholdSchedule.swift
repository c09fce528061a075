/// Thresholds that change with the local time: by hours of the day (`periods`, such as the
/// day and night limits of a noise standard) and from local dates on (`effective`, the
/// phases of a standard that tightens). Read in the rule's time zone.
public struct ThresholdSchedule: Sendable, Equatable {
    /// Hours of the local day with thresholds of their own.
    public struct Period: Sendable, Equatable {
        public var name: String
        /// Minutes after local midnight: from (inclusive) to (exclusive). `to <= from` wraps
        /// past midnight (22:00-06:00); 00:00-24:00 is the whole day.
        public var from: Int
        public var to: Int
        public var thresholds: Thresholds

        public init(name: String, from: Int, to: Int, thresholds: Thresholds) {
            self.name = name
            self.from = from
            self.to = to
            self.thresholds = thresholds
        }

        public func contains(minute m: Int) -> Bool {
            if from == to { return true }
            return from < to ? (m >= from && m < to) : (m >= from || m < to)
        }

        /// `06:00-22:00`.
        public var hours: String {
            func hm(_ m: Int) -> String { "\(m / 60 < 10 ? "0" : "")\(m / 60):\(m % 60 < 10 ? "0" : "")\(m % 60)" }
            return "\(hm(from))-\(hm(to == 0 && from != 0 ? 1440 : to))"
        }

        /// Whether two periods share a minute.
        public func overlaps(_ o: Period) -> Bool {
            // Minute boundaries are where either changes; a minute is shared iff some start is inside both.
            for m in [from, o.from] where contains(minute: m) && o.contains(minute: m) { return true }
            return false
        }
    }

    /// What applies from a local date on.
    public struct Phase: Sendable, Equatable {
        /// The local date it starts; nil for the first phase, which has no start.
        public var from: LocalDate?
        /// Outside every period (or all day when there are none); nil: the rule is off there.
        public var thresholds: Thresholds?
        public var periods: [Period]

        public init(from: LocalDate?, thresholds: Thresholds?, periods: [Period] = []) {
            self.from = from
            self.thresholds = thresholds
            self.periods = periods
        }
    }

    /// In date order; the first has no `from`.
    public var phases: [Phase]

    public init(phases: [Phase]) { self.phases = phases }

    /// What is in force at a local time (local seconds).
    public struct InForce: Sendable, Equatable {
        public var thresholds: Thresholds?
        /// The period's name, nil outside periods.
        public var period: String?
        /// The phase's start, nil for the first phase.
        public var phaseFrom: LocalDate?
        /// The local second at which this may next change; .max: never.
        public var until: Int64
    }

    public func inForce(atLocal local: Int64) -> InForce {
        let day = LocalTimeZone.floorDiv(local, 86_400)
        var p = 0
        for (i, ph) in phases.enumerated() {
            if let f = ph.from, f.daysSinceEpoch > day { break }
            p = i
        }
        let phase = phases[p]
        var until = Int64.max
        if p + 1 < phases.count, let next = phases[p + 1].from { until = next.localMidnight }
        guard !phase.periods.isEmpty else {
            return InForce(thresholds: phase.thresholds, period: nil, phaseFrom: phase.from, until: until)
        }
        let second = local - day * 86_400
        let minute = Int(second / 60)
        // The next period boundary after this minute (today or tomorrow).
        var nextBoundary = Int64.max
        for q in phase.periods {
            for b in [q.from, q.to] {
                var at = day * 86_400 + Int64(b) * 60
                if at <= local { at += 86_400 }
                nextBoundary = min(nextBoundary, at)
            }
        }
        until = min(until, nextBoundary)
        if let q = phase.periods.first(where: { $0.contains(minute: minute) }) {
            return InForce(thresholds: q.thresholds, period: q.name, phaseFrom: phase.from, until: until)
        }
        return InForce(thresholds: phase.thresholds, period: nil, phaseFrom: phase.from, until: until)
    }

    /// Every threshold set it can give, for checks that hold for all of them.
    public var allThresholds: [Thresholds] {
        phases.flatMap { ph in (ph.thresholds.map { [$0] } ?? []) + ph.periods.map(\.thresholds) }
    }
}
