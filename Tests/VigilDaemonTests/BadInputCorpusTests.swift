import Foundation
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilDaemon

// The bad-input corpus (VigilTestSupport.BadInputCorpus) in process: every message through
// a MessageDecoder built from the shipped config/vigil.yaml gets exactly its reason. The
// end-to-end half is in VigilIntegrationTests/BadInputTests.swift.

/// The shipped config/vigil.yaml.
private func shippedConfig() throws -> VigilConfig {
    try VigilConfig.load(file: Repository.root.appendingPathComponent("config/vigil.yaml").path, environment: [:])
}

/// Runs one message through the decoder: its readings, or why it was rejected.
private func decodeMessage(
    _ decoder: inout MessageDecoder, topic: [UInt8], payload: [UInt8], at t: Timestamp
) -> Result<[Reading], RejectReason> {
    var out: [Reading] = []
    do {
        try topic.withUnsafeBytes { tb in
            try payload.withUnsafeBytes { pb in
                try decoder.decode(topic: tb, payload: pb, receivedAt: t, into: &out)
            }
        }
    } catch let reason as RejectReason {
        #expect(out.isEmpty, "a rejected message left readings behind")
        return .failure(reason)
    } catch {
        Issue.record("the decoder threw \(error), not a RejectReason")
        return .failure(RejectReason(RejectReason.Code(rawValue: "?"), "\(error)"))
    }
    return .success(out)
}

@Suite("Bad input corpus, in process")
struct BadInputCorpusTests {
    /// The corpus is what the issue asks for: at least 200 distinct bad messages, every category.
    @Test func corpusCoversTheIssue() {
        let corpus = BadInputCorpus.make(now: .now())
        #expect(corpus.bad.count >= 200, "only \(corpus.bad.count) bad messages")
        var byCategory: [BadInputCategory: Int] = [:]
        for c in corpus.bad { byCategory[c.category, default: 0] += 1 }
        for category in BadInputCategory.allCases {
            #expect(byCategory[category, default: 0] > 0, "no bad message in \(category.rawValue)")
        }
        var seen: [[UInt8]: String] = [:]
        for c in corpus.bad {
            let key = Array(c.template.utf8) + [0xFF, 0x00, 0xFF] + c.payload
            #expect(seen[key] == nil, "\(c.summary) repeats \(seen[key] ?? "")")
            seen[key] = c.summary
        }
        var acceptedByCategory: [BadInputCategory: Int] = [:]
        for c in corpus.accepted { acceptedByCategory[c.category, default: 0] += 1 }
        let counts = BadInputCategory.allCases.map {
            "\($0.rawValue): \(byCategory[$0, default: 0])" + (acceptedByCategory[$0].map { " (+\($0) accepted)" } ?? "")
        }
        print("bad-input corpus: \(corpus.bad.count) rejected, \(corpus.accepted.count) accepted; \(counts.joined(separator: ", "))")
    }

    /// Every bad message gets exactly its reason from the shipped config's decoder, leaves
    /// nothing behind, and spoils nothing for the good reading after it; every accepted one
    /// gives exactly its readings. A second pass (routes cached) gives the same verdicts.
    @Test func everyMessageGetsItsReason() throws {
        let config = try shippedConfig()
        let now = Timestamp.now()
        let corpus = BadInputCorpus.make(now: now)
        var decoder = MessageDecoder(subscriptions: config.subscriptions, limits: config.limits)
        for pass in 1...2 {
            for (i, c) in corpus.bad.enumerated() {
                switch decodeMessage(&decoder, topic: c.topic, payload: c.payload, at: now) {
                case .success(let readings):
                    Issue.record("pass \(pass): \(c.summary) was accepted: \(readings.prefix(3).map { "\($0.series)=\($0.value)" })")
                case .failure(let reason):
                    #expect(reason.code == c.expected, "pass \(pass): \(c.summary): \(reason)")
                    #expect(!reason.detail.isEmpty, "\(c.summary)")
                }
                let good = decodeMessage(&decoder, topic: Array("energy/good/m1/v".utf8), payload: Array("\(i)".utf8), at: now)
                #expect((try? good.get())?.map(\.value) == [Double(i)], "the good reading after \(c.summary)")
            }
            for c in corpus.accepted {
                switch decodeMessage(&decoder, topic: Array(c.topic.utf8), payload: c.payload, at: now) {
                case .failure(let reason):
                    Issue.record("pass \(pass): [\(c.category.rawValue)] \(c.label) was rejected: \(reason)")
                case .success(let readings):
                    let got = readings.map {
                        AcceptedInputCase.Expected(
                            series: $0.series.path, value: $0.value,
                            timestamp: $0.timestampFromPayload ? $0.timestamp : nil)
                    }
                    #expect(got == c.readings, "[\(c.category.rawValue)] \(c.label)")
                    if let unit = c.unit { #expect(readings.allSatisfy { $0.unit == unit }, "\(c.label): unit") }
                }
            }
        }
    }

    /// Past the 64 KiB limit nothing is parsed; with the limit at its configurable maximum
    /// (16 MiB) the parser itself takes 100,000 keys and refuses 100,000 levels of nesting
    /// without exhausting the stack.
    @Test func beyondTheSizeLimit() {
        var limits = IngestLimits()
        limits.maxPayloadBytes = 16 << 20
        let subscriptions = (try? shippedConfig())?.subscriptions ?? []
        #expect(!subscriptions.isEmpty)
        var decoder = MessageDecoder(subscriptions: subscriptions, limits: limits)
        let now = Timestamp.now()
        let keys = "{" + (0..<100_000).map { #""k\#($0)":\#($0)"# }.joined(separator: ",") + "}"
        let readings = try? decodeMessage(&decoder, topic: Array("water/s/g".utf8), payload: Array(keys.utf8), at: now).get()
        #expect(readings?.count == 100_000)
        #expect(readings?.last?.series.path == "water/s/g/k99999" && readings?.last?.value == 99_999)
        let cases: [(String, String)] = [
            ("100,000 arrays", String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)),
            ("100,000 objects", String(repeating: #"{"a":"#, count: 100_000) + "1" + String(repeating: "}", count: 100_000)),
            ("1,000,000 unclosed arrays", String(repeating: "[", count: 1_000_000)),
        ]
        for (label, text) in cases {
            for topic in ["water/s/g", "energy/s/d/v", "city/s/d/senml"] {
                let r = decodeMessage(&decoder, topic: Array(topic.utf8), payload: Array(text.utf8), at: now)
                #expect(throws: RejectReason.self, "\(label) on \(topic)") { try r.get() }
                if case .failure(let reason) = r { #expect(reason.code == .tooDeep, "\(label) on \(topic)") }
            }
        }
    }
}
