/// Latencies in microseconds, in log-linear buckets (32 per power of two, about 3 %
/// resolution), cheap to add to and to merge. Percentiles are read from bucket tops.
public struct LatencyHistogram: Sendable, Equatable {
    static let subBits = 5
    static let subCount = 1 << subBits
    public private(set) var buckets: [UInt64]
    public private(set) var count: UInt64 = 0
    public private(set) var sumMicros: UInt64 = 0
    public private(set) var maxMicros: UInt64 = 0

    public init() {
        buckets = Array(repeating: 0, count: (64 - Self.subBits + 1) * Self.subCount)
    }

    @inline(__always)
    static func index(_ v: UInt64) -> Int {
        if v < UInt64(subCount) { return Int(v) }
        let msb = 63 - v.leadingZeroBitCount
        let shift = msb - subBits
        let sub = Int((v >> UInt64(shift)) & UInt64(subCount - 1))
        return (shift + 1) * subCount + sub
    }

    /// The largest value that falls in bucket `i`.
    static func upperBound(_ i: Int) -> UInt64 {
        if i < subCount { return UInt64(i) }
        let shift = i / subCount - 1
        let sub = UInt64(i % subCount)
        return ((UInt64(subCount) + sub + 1) << UInt64(shift)) - 1
    }

    @inline(__always)
    public mutating func add(micros: Int64) {
        let v = UInt64(max(0, micros))
        buckets[Self.index(v)] += 1
        count += 1
        sumMicros &+= v
        if v > maxMicros { maxMicros = v }
    }

    public mutating func merge(_ other: LatencyHistogram) {
        for i in buckets.indices { buckets[i] += other.buckets[i] }
        count += other.count
        sumMicros &+= other.sumMicros
        maxMicros = max(maxMicros, other.maxMicros)
    }

    /// The value below which `q` (0...1) of the samples fall, in microseconds.
    public func percentile(_ q: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = UInt64((Double(count) * q).rounded(.up))
        var seen: UInt64 = 0
        for (i, n) in buckets.enumerated() where n > 0 {
            seen += n
            if seen >= max(rank, 1) { return min(Self.upperBound(i), maxMicros) }
        }
        return maxMicros
    }

    /// How many samples are at most `micros` (counting whole buckets).
    public func count(atMost micros: UInt64) -> UInt64 {
        var total: UInt64 = 0
        for (i, n) in buckets.enumerated() where n > 0 {
            if Self.upperBound(i) <= micros { total += n } else { break }
        }
        return total
    }

    public var meanMicros: Double { count > 0 ? Double(sumMicros) / Double(count) : 0 }
}
