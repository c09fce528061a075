import Foundation
import Testing
import VigilTestSupport

@testable import VigilCore

@Suite("Message decoder: topics, names, limits")
struct MessageDecoderTests {
    static let subscriptions = [
        SubscriptionSpec(network: "energy", filter: try! TopicFilter("energy/+/+/+"), layout: try! TopicLayout("energy/{site}/{device}/{metric}"), format: .auto),
        SubscriptionSpec(network: "water", filter: try! TopicFilter("water/+/+"), layout: try! TopicLayout("water/{site}/{device}"), format: .json),
        SubscriptionSpec(network: "urban", filter: try! TopicFilter("city/+/+/senml"), layout: try! TopicLayout("city/{site}/{device}/senml"), format: .senml),
    ]

    var decoder = MessageDecoder(subscriptions: subscriptions, limits: IngestLimits())

    mutating func decode(_ topic: String, _ payload: String) throws -> [Reading] {
        try decode(topic, bytes: Array(payload.utf8))
    }

    mutating func decode(_ topic: String, bytes: [UInt8]) throws -> [Reading] {
        var out: [Reading] = []
        let t = Array(topic.utf8)
        var d = decoder
        defer { decoder = d }
        try t.withUnsafeBytes { tb in
            try bytes.withUnsafeBytes { pb in
                try d.decode(topic: tb, payload: pb, receivedAt: now, into: &out)
            }
        }
        return out
    }

    @Test mutating func threeNetworks() throws {
        let e = try decode("energy/sub-3/meter-12/voltage", "231.4")
        #expect(e == [Reading(series: SeriesKey(path: "energy/sub-3/meter-12/voltage")!, value: 231.4, timestamp: now, unit: nil, timestampFromPayload: false)])
        let w = try decode("water/station-07/gauge-1", #"{"ts":1763891990,"water_level":4.2,"flow":12}"#)
        #expect(w.map(\.series.path) == ["water/station-07/gauge-1/water_level", "water/station-07/gauge-1/flow"])
        #expect(w.allSatisfy { $0.timestamp == Timestamp(seconds: 1_763_891_990) })
        let u = try decode("city/district-2/aq-9/senml", #"[{"bn":"aq-9:","n":"pm25","u":"ug/m3","v":35},{"n":"no2","v":40}]"#)
        #expect(u.map(\.series.path) == ["urban/district-2/aq-9/pm25", "urban/district-2/aq-9/no2"])
        #expect(u.map(\.unit) == ["ug/m3", nil])
    }

    @Test mutating func rejects() throws {
        func code(_ topic: String, _ payload: String) -> RejectReason.Code? {
            do {
                _ = try decode(topic, payload)
                return nil
            } catch { return (error as? RejectReason)?.code }
        }
        #expect(code("energy/bad site/m/voltage", "1") == .badName)
        #expect(code("energy/s/d/volt$", "1") == .badName)
        #expect(code("energy/s/d/" + String(repeating: "x", count: 65), "1") == .badName)
        #expect(code("other/s/d", "1") == .noSubscription)
        #expect(code("energy/s/d/" + String(repeating: "a", count: 300), "1") == .topicTooLong)
        #expect(code("energy/s/d/v", String(repeating: " ", count: 70_000) + "1") == .payloadTooLarge)
        #expect(code("energy/s/d/v", #"{"value":1,"ts":1863892000}"#) == .futureTimestamp)
        #expect(code("energy/s/d/v", #"{"value":1,"ts":1663892000}"#) == .tooOld)
        #expect(code("energy/s/d/v", String(repeating: "[", count: 40) + String(repeating: "]", count: 40)) == .tooDeep)
        #expect(code("energy/s/d/v", #"{"value": 1, "unit": "\u0007"}"#) == .badUnit)
        // The cached route gives the same verdict the second time.
        #expect(code("energy/bad site/m/voltage", "1") == .badName)
    }

    /// Every JSONTestSuite file as a payload: n_ rejected with a reason, nothing crashes.
    @Test(.enabled(if: Corpus.isAvailable, "../shared/corpus is absent: JSONTestSuite cases skipped"))
    mutating func jsonTestSuiteAsPayloads() throws {
        var readings = 0
        for file in Corpus.files("jsontestsuite") {
            let bytes = try [UInt8](Data(contentsOf: file))
            for topic in ["water/s/d", "energy/s/d/m"] {
                do {
                    readings += try decode(topic, bytes: bytes).count
                    #expect(!file.lastPathComponent.hasPrefix("n_"), "\(file.lastPathComponent) gave readings")
                } catch {
                    let detail = (error as? RejectReason)?.detail ?? ""
                    #expect(!detail.isEmpty)
                }
            }
        }
        #expect(readings > 0)
    }
}
