/// The page's sparklines: per series, the mean of each minute of the last hour and the
/// latest reading, kept up to date from the readings stored since the last pass.
///
/// Each pass reads only the span it has not read yet (`nextSpan`), so a page polled every
/// second reads about a second of readings, not an hour. The span ends `lag` before now: a
/// reading committed later than `lag` after its own timestamp falls behind the span
/// already read and is not drawn (it is stored and exported all the same).
public struct Sparklines: Sendable {
    public let bucket: TimeSpan
    public let buckets: Int
    public let lag: TimeSpan

    struct Series: Sendable {
        var sums: [Int64: (sum: Double, count: Int)] = [:]
        var latest: (ts: Int64, value: Double)?
    }

    private var series: [Int64: Series] = [:]
    /// Where the next pass starts: everything before it has been read.
    public private(set) var readUntil: Timestamp?

    public init(bucket: TimeSpan = .minutes(1), buckets: Int = 60, lag: TimeSpan = .seconds(2)) {
        self.bucket = bucket
        self.buckets = buckets
        self.lag = lag
    }

    /// The span the next pass reads, `[from, to)`: from where the last one ended (at most
    /// the drawn hour back) to `lag` before `now`. Empty (from >= to) when there is nothing new.
    public func nextSpan(now: Timestamp) -> (from: Timestamp, to: Timestamp) {
        let to = now.subtracting(lag)
        let oldest = Timestamp(micros: (to.micros / bucket.micros - Int64(buckets) + 1) * bucket.micros)
        return (max(readUntil ?? oldest, oldest), to)
    }

    public mutating func add(series id: Int64, ts: Int64, value: Double) {
        guard value.isFinite else { return }
        add(series: id, bucket: ts / bucket.micros, sum: value, count: 1, latestTS: ts, latestValue: value)
    }

    /// Readings of one series and bucket (`ts / bucket`), summed already (by SQLite).
    public mutating func add(series id: Int64, bucket b: Int64, sum: Double, count: Int, latestTS: Int64, latestValue: Double) {
        var s = series[id] ?? Series()
        if sum.isFinite {
            let old = s.sums[b] ?? (0, 0)
            s.sums[b] = (old.sum + sum, old.count + count)
        }
        if latestValue.isFinite, s.latest.map({ latestTS >= $0.ts }) ?? true { s.latest = (latestTS, latestValue) }
        series[id] = s
    }

    /// Ends a pass that read up to `to`; minutes older than the drawn hour go.
    public mutating func read(until to: Timestamp) {
        readUntil = to
        let first = to.micros / bucket.micros - Int64(buckets) + 1
        for (id, s) in series where s.sums.keys.contains(where: { $0 < first }) {
            series[id]?.sums = s.sums.filter { $0.key >= first }
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
