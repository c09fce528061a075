/// The page's sparklines: per series, the mean of each minute of the last hour and the
/// latest reading, kept up to date from the readings stored since the last pass.
///
/// A pass reads the span from `rewind` before where the last one ended (rounded down to a
/// whole minute) to `lag` before now, and its minutes replace those held: a reading stored
/// up to `rewind` after its own timestamp (a lagging clock, interval data, a batch, a
/// replayed session) is drawn at the next pass, and none is counted twice. A pass bounded
/// by its reader (it read only the newest readings of the span) replaces only the minutes
/// it read whole, and of the oldest minute it read keeps whichever holds more readings.
/// The clock going back (its span ends before the last one did) starts over from the hour.
public struct Sparklines: Sendable {
    public let bucket: TimeSpan
    public let buckets: Int
    public let lag: TimeSpan

    typealias Sum = (sum: Double, count: Int)

    struct Series: Sendable {
        var sums: [Int64: Sum] = [:]
        var latest: (ts: Int64, value: Double)?
    }

    private var series: [Int64: Series] = [:]
    /// The sums of the pass under way, by series and bucket.
    private var pass: [Int64: [Int64: Sum]] = [:]
    private var passLatest: [Int64: (ts: Int64, value: Double)] = [:]
    /// Where the next pass starts: everything before it has been read.
    public private(set) var readUntil: Timestamp?

    public init(bucket: TimeSpan = .minutes(1), buckets: Int = 60, lag: TimeSpan = .seconds(2)) {
        self.bucket = bucket
        self.buckets = buckets
        self.lag = lag
    }

    /// The span the next pass reads, `[from, to)`: from `rewind` before where the last one
    /// ended, down to a whole bucket (at most the drawn hour back; the hour at the first
    /// pass and after the clock went back) to `lag` before `now`.
    public func nextSpan(now: Timestamp, rewind: TimeSpan = .minutes(2)) -> (from: Timestamp, to: Timestamp) {
        let to = now.subtracting(lag)
        let oldest = Timestamp(micros: (to.micros / bucket.micros - Int64(buckets) + 1) * bucket.micros)
        guard let readUntil, readUntil <= to else { return (oldest, to) }
        let back = readUntil.micros - Swift.max(0, rewind.micros)
        let from = Timestamp(micros: Self.floorDiv(back, bucket.micros) * bucket.micros)
        return (Swift.max(from, oldest), to)
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    public mutating func add(series id: Int64, ts: Int64, value: Double) {
        add(series: id, bucket: Self.floorDiv(ts, bucket.micros), sum: value, count: 1, latestTS: ts, latestValue: value)
    }

    /// Readings of one series and bucket (`ts / bucket`) of this pass, summed already (by
    /// SQLite). A sum that is not finite (readings near ±1.8e308 overflow it) is left
    /// out; the latest reading still counts when it is finite.
    public mutating func add(series id: Int64, bucket b: Int64, sum: Double, count: Int, latestTS: Int64, latestValue: Double) {
        if sum.isFinite, count > 0 {
            let old = pass[id]?[b] ?? (0, 0)
            let total = old.sum + sum
            if total.isFinite { pass[id, default: [:]][b] = (total, old.count + count) }
        }
        if latestValue.isFinite, passLatest[id].map({ latestTS >= $0.ts }) ?? true { passLatest[id] = (latestTS, latestValue) }
    }

    /// Ends a pass over `[from, to)` (the span `nextSpan` gave): its minutes replace those
    /// held from `from` on. `complete` is false when the reader read only the newest
    /// readings of the span: then only the minutes after the oldest one it saw are
    /// replaced. Minutes older than the drawn hour go.
    public mutating func read(from: Timestamp, until to: Timestamp, complete: Bool = true) {
        if let readUntil, to < readUntil {
            // The clock went back: what was drawn lies ahead of the new now.
            series = [:]
        }
        defer {
            pass = [:]
            passLatest = [:]
            readUntil = to
        }
        let fromBucket = Self.floorDiv(from.micros, bucket.micros)
        let oldestRead = complete ? nil : pass.values.compactMap { $0.keys.min() }.min()
        let first = to.micros / bucket.micros - Int64(buckets) + 1
        for id in Set(series.keys).union(pass.keys).union(passLatest.keys) {
            var s = series[id] ?? Series()
            if let l = passLatest[id], s.latest.map({ l.ts >= $0.ts }) ?? true { s.latest = l }
            let fresh = pass[id] ?? [:]
            var sums = s.sums.filter { $0.key >= first }
            if complete {
                sums = sums.filter { $0.key < fromBucket }
                sums.merge(fresh) { $1 }
            } else if let oldestRead {
                sums = sums.filter { $0.key <= oldestRead }
                for (b, v) in fresh {
                    if b == oldestRead, let held = sums[b], held.count > v.count { continue }
                    sums[b] = v
                }
            }
            s.sums = sums
            series[id] = s
        }
    }

    /// The means of the last `buckets` minutes up to `now`, oldest first; nil for a minute
    /// without a reading.
    public func points(series id: Int64, now: Timestamp) -> [Double?] {
        let last = now.subtracting(lag).micros / bucket.micros
        let sums = series[id]?.sums ?? [:]
        return (0..<Int64(buckets)).map { i in
            sums[last - Int64(buckets) + 1 + i].map { $0.sum / Double($0.count) }
        }
    }

    /// The newest reading read so far of a series.
    public func latest(series id: Int64) -> (timestamp: Timestamp, value: Double)? {
        series[id]?.latest.map { (Timestamp(micros: $0.ts), $0.value) }
    }

    /// Forgets series that are gone from the buffer.
    public mutating func keep(only ids: Set<Int64>) {
        series = series.filter { ids.contains($0.key) }
    }
}
