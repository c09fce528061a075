import Testing

@testable import VigilCore

@Suite("Durations, sizes, filters")
struct QuantityTests {
    @Test func durations() {
        #expect(TimeSpan(parsing: "30s") == .seconds(30))
        #expect(TimeSpan(parsing: "5m") == .minutes(5))
        #expect(TimeSpan(parsing: "7d") == .days(7))
        #expect(TimeSpan(parsing: "1h30m") == .minutes(90))
        #expect(TimeSpan(parsing: "250ms") == .milliseconds(250))
        #expect(TimeSpan(parsing: "0") == .zero)
        #expect(TimeSpan(parsing: "0s") == .zero)
        #expect(TimeSpan(parsing: "1.5h") == .minutes(90))
        for bad in ["", "5", "5x", "m", "-5s", "s5"] { #expect(TimeSpan(parsing: bad) == nil, "\(bad)") }
        #expect(TimeSpan.minutes(90).description == "1h30m")
    }

    @Test func sizes() {
        #expect(ByteSize(parsing: "512MiB")?.bytes == 512 << 20)
        #expect(ByteSize(parsing: "1GiB")?.bytes == 1 << 30)
        #expect(ByteSize(parsing: "64KiB")?.bytes == 65536)
        #expect(ByteSize(parsing: "10MB")?.bytes == 10_000_000)
        #expect(ByteSize(parsing: "4096")?.bytes == 4096)
        #expect(ByteSize(parsing: "12 parsecs") == nil)
        #expect(ByteSize(bytes: 1 << 30).description == "1GiB")
    }

    @Test func filters() throws {
        let f = try TopicFilter("water/+/+/water_level")
        #expect(f.matches("water/station-07/gauge-1/water_level"))
        #expect(!f.matches("water/station-07/gauge-1/rainfall"))
        #expect(!f.matches("water/station-07/water_level"))
        #expect(try TopicFilter("urban/#").matches("urban/a/b/c"))
        #expect(try TopicFilter("#").matches("a"))
        #expect(throws: TopicFilter.FilterError.self) { try TopicFilter("a/#/b") }
        #expect(throws: TopicFilter.FilterError.self) { try TopicFilter("a/b+") }
        let l = try TopicLayout("city/{site}/{device}/senml")
        let x = try #require(l.extract(levels: "city/d2/aq/senml".split(separator: "/")))
        #expect(x.site == "d2" && x.device == "aq" && x.metric == nil)
        #expect(l.extract(levels: "city/d2/aq/json".split(separator: "/")) == nil)
        #expect(throws: TopicFilter.FilterError.self) { try TopicLayout("a/{site}") }
        #expect(throws: TopicFilter.FilterError.self) { try TopicLayout("a/{site}/{device}/{bogus}") }
    }
}

@Suite("Latency histogram")
struct LatencyHistogramTests {
    @Test func percentilesWithinResolution() {
        var h = LatencyHistogram()
        for v in 1...10_000 { h.add(micros: Int64(v)) }
        for (q, expected) in [(0.5, 5000.0), (0.99, 9900.0), (0.999, 9990.0)] {
            let p = Double(h.percentile(q))
            #expect(abs(p - expected) / expected < 0.04, "p\(q) = \(p)")
        }
        #expect(h.percentile(1) == 10_000)
        #expect(h.count == 10_000)
        #expect(h.count(atMost: 31) == 31)
        var other = LatencyHistogram()
        other.add(micros: 1_000_000)
        h.merge(other)
        #expect(h.maxMicros == 1_000_000 && h.count == 10_001)
        #expect(LatencyHistogram().percentile(0.5) == 0)
    }

    @Test func bucketBoundsAreConsistent() {
        for v: UInt64 in [0, 1, 31, 32, 33, 63, 64, 65, 1000, 123_456, 10_000_000] {
            let i = LatencyHistogram.index(v)
            #expect(LatencyHistogram.upperBound(i) >= v)
            if i > 0 { #expect(LatencyHistogram.upperBound(i - 1) < v) }
        }
    }
}
