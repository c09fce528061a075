import Foundation
import Testing
import VigilTestSupport

@testable import VigilCore

/// The clock reading used as the time of receipt throughout.
let now = Timestamp(micros: 1_763_892_000_000_000)  // 2025-11-23T10:00:00Z

func decodePayload(
    _ text: String, format: PayloadFormat = .auto, metric: String? = nil, receivedAt: Timestamp = now
) throws -> [DecodedValue] {
    try decodePayload(bytes: Array(text.utf8), format: format, metric: metric, receivedAt: receivedAt)
}

func decodePayload(
    bytes: [UInt8], format: PayloadFormat = .auto, metric: String? = nil, receivedAt: Timestamp = now
) throws -> [DecodedValue] {
    var decoder = PayloadDecoder()
    var out: [DecodedValue] = []
    try bytes.withUnsafeBytes { buf in
        try decoder.decode(buf, format: format, topicMetric: metric, receivedAt: receivedAt, into: &out)
    }
    return out
}

func rejection(_ body: () throws -> Void) -> RejectReason.Code? {
    do {
        try body()
        return nil
    } catch let error as RejectReason {
        return error.code
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite("Payload decoders")
struct DecoderTests {
    @Test func numberFormat() throws {
        #expect(try decodePayload("231.4", format: .number, metric: "voltage") == [DecodedValue(metric: nil, value: 231.4, timestamp: nil, unit: nil)])
        #expect(try decodePayload(" -3e2\n", format: .auto, metric: "x")[0].value == -300)
        for bad in ["NaN", "nan", "inf", "Infinity", "\"231.4\"", "231.4V", "", "0x1F", "1,5"] {
            #expect(rejection { _ = try decodePayload(bad, format: .number, metric: "v") } != nil, "\(bad)")
        }
        #expect(rejection { _ = try decodePayload("1e400", format: .number, metric: "v") } == .nonFinite)
        #expect(rejection { _ = try decodePayload("5", format: .number) } == .noReadings)
    }

    @Test func jsonSingleReading() throws {
        let d = try decodePayload(#"{"value": 231.4, "ts": 1763892000.5, "unit": "V"}"#, metric: "voltage")
        #expect(d == [DecodedValue(metric: nil, value: 231.4, timestamp: Timestamp(micros: 1_763_892_000_500_000), unit: "V")])
        // A field named like the topic's metric stands in for "value".
        #expect(try decodePayload(#"{"voltage": 230}"#, metric: "voltage")[0].value == 230)
        #expect(rejection { _ = try decodePayload(#"{"value": "231.4"}"#, metric: "v") } == .notANumber)
        #expect(rejection { _ = try decodePayload(#"{"value": 1e400}"#, metric: "v") } == .nonFinite)
        #expect(rejection { _ = try decodePayload(#"{"other": 1}"#, metric: "v") } == .noReadings)
        #expect(rejection { _ = try decodePayload(#"{"value": NaN}"#, metric: "v") } == .invalidJSON)
    }

    @Test func jsonFieldPerReading() throws {
        let d = try decodePayload(#"{"ts": 1763892000, "voltage": 231.4, "current": 12.1, "seq": 7, "status": "ok"}"#)
        let t = Timestamp(seconds: 1_763_892_000)
        #expect(d == [DecodedValue(metric: "voltage", value: 231.4, timestamp: t, unit: nil), DecodedValue(metric: "current", value: 12.1, timestamp: t, unit: nil)])
        #expect(rejection { _ = try decodePayload(#"{"voltage": "231.4"}"#) } == .notANumber)
        #expect(rejection { _ = try decodePayload(#"{"bad name": 1}"#) } == .badName)
        #expect(rejection { _ = try decodePayload(#"{"ts": 5}"#) } == .noReadings)
        #expect(rejection { _ = try decodePayload(#"[1, 2]"#, format: .json) } == .noReadings)
    }

    @Test func timestamps() throws {
        func ts(_ json: String) throws -> Timestamp? {
            try decodePayload("{\"value\": 1, \"ts\": \(json)}", metric: "m")[0].timestamp
        }
        #expect(try ts("1763892000") == Timestamp(seconds: 1_763_892_000))
        #expect(try ts("1763892000.123456") == Timestamp(micros: 1_763_892_000_123_456))
        #expect(try ts("1763892000123") == Timestamp(micros: 1_763_892_000_123_000))
        #expect(try ts("\"2025-11-23T10:00:12.120Z\"") == Timestamp(micros: 1_763_892_012_120_000))
        #expect(try ts("\"2025-11-23T18:00:12+08:00\"") == Timestamp(seconds: 1_763_892_012))
        #expect(try ts("1.763892e9") == Timestamp(seconds: 1_763_892_000))
        for bad in [
            "-5", "0", "\"yesterday\"", "\"2025-13-01T00:00:00Z\"", "true", "\"2025-02-30T00:00:00Z\"",
            "\"0001-01-01T00:00:00Z\"", "\"1970-01-01T00:00:00Z\"", "\"1969-12-31T23:59:59Z\"",
        ] {
            #expect(rejection { _ = try ts(bad) } == .badTimestamp, "\(bad)")
        }
    }

    @Test func rfc3339RoundTrip() {
        for micros: Int64 in [0, 1_763_892_012_120_000, 1_763_892_012_000_000, 1_763_892_012_123_456, 951_782_400_000_001] {
            let t = Timestamp(micros: micros)
            #expect(Timestamp.parseRFC3339(t.rfc3339) == t, "\(t.rfc3339)")
        }
        #expect(Timestamp(micros: 1_763_892_012_120_000).rfc3339 == "2025-11-23T10:00:12.120Z")
        #expect(Timestamp(micros: 1_763_892_000_500_000).secondsString == "1763892000.5")
    }

    @Test func senmlShapes() throws {
        let d = try decodePayload(#"[{"bn":"urn:dev:ow:10e2073a01080063:","bt":1.320067464e+09,"bu":"%RH","bv":40,"n":"humidity","v":0.5},{"n":"humidity","t":60,"v":1.5}]"#, format: .senml)
        #expect(d.map(\.value) == [40.5, 41.5])
        #expect(d.map(\.metric) == ["humidity", "humidity"])
        #expect(d.map(\.timestamp) == [Timestamp(seconds: 1_320_067_464), Timestamp(seconds: 1_320_067_524)])
        // Relative times below 2^28 count from the time of receipt.
        let r = try decodePayload(#"[{"n":"v","v":1,"t":-10}]"#, format: .senml)
        #expect(r[0].timestamp == now.subtracting(.seconds(10)))
        // The topic's metric wins over the record's name.
        #expect(try decodePayload(#"[{"n":"x:y","v":1}]"#, metric: "level")[0].metric == nil)
        #expect(rejection { _ = try decodePayload(#"[]"#, format: .senml) } == .invalidSenML)
        #expect(rejection { _ = try decodePayload(#"[{"n":"a","v":"1"}]"#, format: .senml) } == .invalidSenML)
        #expect(rejection { _ = try decodePayload(#"[{"n":"a","v":1,"foo_":1}]"#, format: .senml) } == .invalidSenML)
        #expect(rejection { _ = try decodePayload(#"[{"n":"a","vs":"x"}]"#, format: .senml) } == .noReadings)
        #expect(rejection { _ = try decodePayload(#"[{"n":"bad name","v":1}]"#, format: .senml) } == .badName)
        #expect(rejection { _ = try decodePayload(#"[{"n":"a","v":1e999}]"#, format: .senml) } == .nonFinite)
        #expect(rejection { _ = try decodePayload(#"{"n":"a","v":1}"#, format: .senml) } == .invalidSenML)
    }

    /// The corpus packs decode to what their README says.
    @Test(.enabled(if: Corpus.isAvailable, "../shared/corpus is absent: SenML corpus skipped"))
    func senmlCorpus() throws {
        func pack(_ name: String) throws -> [DecodedValue] {
            let url = try #require(Corpus.files("senml").first { $0.lastPathComponent == name }, "\(name) missing")
            return try decodePayload(bytes: [UInt8](Data(contentsOf: url)), format: .senml)
        }
        #expect(try pack("single.json") == [DecodedValue(metric: "10e2073a01080063", value: 23.1, timestamp: nil, unit: "Cel")])
        #expect(try pack("multiple.json") == [
            DecodedValue(metric: "voltage", value: 120.1, timestamp: nil, unit: "V"),
            DecodedValue(metric: "current", value: 1.2, timestamp: nil, unit: "A"),
        ])
        let rel = try pack("relative-times.json")
        #expect(rel.count == 7)
        #expect(rel[0] == DecodedValue(metric: "voltage", value: 120.1, timestamp: Timestamp(micros: 1_276_020_076_001_000), unit: "V"))
        #expect(rel.dropFirst().map(\.value) == [1.2, 1.3, 1.4, 1.5, 1.6, 1.7])
        #expect(rel.dropFirst().allSatisfy { $0.metric == "current" && $0.unit == "A" })
        let base: Int64 = 1_276_020_076_001_000
        let expectedTimes: [Int64] = (-5...0).map { (k: Int) -> Int64 in base + Int64(k) * 1_000_000 }
        let times: [Int64] = rel.dropFirst().map { $0.timestamp?.micros ?? 0 }
        #expect(times == expectedTimes)
        let sum = try pack("base-value-sum.json")
        #expect(sum == [
            DecodedValue(metric: "humidity", value: 40.5, timestamp: Timestamp(seconds: 1_320_067_464), unit: "%RH"),
            DecodedValue(metric: "humidity", value: 41.5, timestamp: Timestamp(seconds: 1_320_067_524), unit: "%RH"),
        ])
        var decoder = PayloadDecoder()
        var out: [DecodedValue] = []
        let mixed = try [UInt8](Data(contentsOf: Corpus.files("senml").first { $0.lastPathComponent == "mixed-kinds.json" }!))
        try mixed.withUnsafeBytes { buf in try decoder.decode(buf, format: .senml, topicMetric: nil, receivedAt: now, into: &out) }
        #expect(out == [
            DecodedValue(metric: "temp", value: 23.5, timestamp: Timestamp(seconds: 1_276_020_076), unit: "Cel"),
            DecodedValue(metric: "pressure", value: 101325, timestamp: Timestamp(seconds: 1_276_020_076), unit: "Pa"),
        ])
        #expect(decoder.skippedRecords == 2)
        // A pack rejected for having no number at all counts nothing as skipped.
        let onlyStrings = Array(#"[{"n":"state","vs":"on"},{"n":"door","vb":true}]"#.utf8)
        #expect(rejection { try onlyStrings.withUnsafeBytes { try decoder.decode($0, format: .senml, topicMetric: nil, receivedAt: now, into: &out) } } == .noReadings)
        #expect(decoder.skippedRecords == 2)
    }
}
