import Foundation
import Testing
import VigilCore
import VigilDaemon
import VigilSimulator
import VigilTestSupport

/// The shipped config's subscriptions, which the simulator's topics must fit.
private func shippedDecoder() throws -> MessageDecoder {
    let config = try VigilConfig.load(file: Repository.root.appendingPathComponent("config/vigil.yaml").path, environment: [:])
    var limits = IngestLimits()
    limits.maxAge = nil
    return MessageDecoder(subscriptions: config.subscriptions, limits: limits)
}

private func decode(_ decoder: inout MessageDecoder, _ topicText: String, _ payload: [UInt8], at t: Timestamp) throws -> [Reading] {
    var out: [Reading] = []
    let topic = Array(topicText.utf8)
    try topic.withUnsafeBytes { tb in
        try payload.withUnsafeBytes { pb in
            try decoder.decode(topic: tb, payload: pb, receivedAt: t, into: &out)
        }
    }
    return out
}

extension Integration {
    /// `vigil simulate` holds its paced rate: what a subscriber receives, timed by the send
    /// times in the payloads, is within 5 % of the rate asked for, with no seq missing.
    @Suite("Simulator rate") struct SimulatorRate {
        @Test(arguments: [1_000.0, 20_000.0]) func rateHolds(rate: Double) throws {
            let broker = try Broker()
            let collector = try UpstreamCollector(broker: broker, filter: "#", clientID: "rate-counter")
            defer { collector.close() }
            let seconds = 4.0
            let run = try ChildProcess.run(
                DaemonProcess.binary,
                ["simulate", "--broker", "127.0.0.1:\(broker.port)", "--rate", "\(Int(rate))", "--duration", "\(Int(seconds))s", "--qos", "1"])
            #expect(run.status == 0, "\(run.stderr)")
            // "vigil simulate: R readings in M messages over ..." once the broker acknowledged all.
            let words = run.stderr.split(separator: " ")
            let sent = try #require(words.firstIndex(of: "messages").flatMap { Int(words[$0 - 1]) }, "\(run.stderr)")
            #expect(eventually { collector.all.count >= sent }, "\(collector.all.count) of \(sent) received")
            #expect(collector.all.count == sent)
            var decoder = try shippedDecoder()
            var first: Timestamp?
            var last: Timestamp?
            var readings = 0
            var lastReadings = 0
            var seqs = Set<Int64>()
            for m in collector.all {
                let rs = try decode(&decoder, m.topic, m.payload, at: Timestamp.now())
                let t = try #require(rs.first?.timestamp)
                if first == nil || t < first! { first = t }
                if last == nil || t > last! {
                    last = t
                    lastReadings = rs.count
                }
                readings += rs.count
                seqs.insert(m.seq)
            }
            let span = Double(last!.micros - first!.micros) / 1e6
            let achieved = Double(readings - lastReadings) / span
            #expect(abs(achieved / rate - 1) < 0.05, "asked \(rate)/s, got \(achieved)/s over \(span)s")
            #expect(span > seconds * 0.9)
            #expect(seqs.count == collector.all.count && seqs.min() == 1 && seqs.max() == Int64(seqs.count), "seq gaps: \(seqs.count) of \(seqs.max() ?? 0)")
        }
    }
}
