import VigilCore

extension FuzzCheck {
    /// The stations of the HJ 212 checks: the MNs of the seeds and of the shared corpus.
    static let hj212Decoder = HJ212Decoder(
        stations: [
            "ST001": HJ212Station(network: "urban", site: "site-1", device: "aqms-1"),
            "2019031801100018": HJ212Station(network: "urban", site: "s1", device: "aq"),
            "010000A8900016F000169DC0": HJ212Station(network: "water", site: "s2", device: "wq"),
            "": HJ212Station(network: "urban", site: "s3", device: "noise"),
            "PWST": HJ212Station(network: "water", site: "s4", device: "wq", password: "123456"),
        ], zone: .shanghai)
}

extension FuzzCheck.Checker {
    /// An HJ 212 payload: as it is, and its bytes as the data segment of a frame with the right
    /// length and CRC (so that mutations reach the fields, past the CRC check). Checked: the
    /// stream scanner and the frame parser agree; decoding again gives the same; a reject leaves
    /// `out` as it was and has a known code; readings are finite with valid names and units; the
    /// data answer to an accepted frame is a frame that parses, with the same QN; the message
    /// decoder (format hj212, and the TCP listener's topic) gives the decoder's readings or
    /// rejects them for their time.
    mutating func checkHJ212(_ payload: UnsafeRawBufferPointer, limits: IngestLimits) {
        let decoder = FuzzCheck.hj212Decoder
        var inputs = [Array(payload)]
        if payload.count <= HJ212.maxSegment { inputs.append(HJ212.frame(segmentBytes: Array(payload))) }
        var messages = MessageDecoder(
            subscriptions: [
                SubscriptionSpec(
                    network: "hj212", filter: try! TopicFilter("hj/#"), layout: try! TopicLayout("{site}/{device}/#"),
                    format: .hj212)
            ], limits: limits, hj212: decoder)
        for (i, bytes) in inputs.enumerated() {
            context = i == 0 ? "hj212/raw" : "hj212/framed"
            bytes.withUnsafeBytes { b in
                // The scanner never claims more than there is, nor nothing.
                switch HJ212.scan(b) {
                case .garbage(let n), .frame(let n), .badLength(let n), .lineBreaks(let n):
                    if n <= 0 || n > b.count { fail("scan claims \(n) of \(b.count) bytes") }
                case .needMore:
                    if b.count > HJ212.maxFrameBytes { fail("scan wants more after \(b.count) bytes") }
                }
                let sentinel = Reading(
                    series: SeriesKey(network: "s", site: "s", device: "s", metric: "s"), value: -1,
                    timestamp: Timestamp(micros: 1))
                func run() -> (Result<HJ212Outcome, RejectReason>, [Reading]) {
                    var out = [sentinel]
                    do {
                        let o = try decoder.decode(b, into: &out)
                        return (.success(o), out)
                    } catch {
                        return (.failure(error), out)
                    }
                }
                let (first, out) = run()
                let (again, outAgain) = run()
                if first != again || out != outAgain { fail("decoding again differs") }
                if out.first != sentinel { fail("the decoder changed what was in out") }
                let readings = Array(out.dropFirst())
                switch first {
                case .failure(let reason):
                    outcome.verdicts.append(.rejected(reason.code.rawValue))
                    if !readings.isEmpty { fail("a rejected frame left \(readings.count) readings") }
                    if !RejectReason.Code.all.contains(reason.code) { fail("unknown reject code \(reason.code)") }
                case .success(let o):
                    outcome.verdicts.append(.accepted(readings.count))
                    if case .frame(let n) = HJ212.scan(b), n == b.count {
                    } else {
                        fail("a frame the parser accepts is not one frame to the scanner")
                    }
                    for r in readings {
                        if !r.series.levels.allSatisfy(Names.isValid) { fail("series \(r.series.path) has an invalid name") }
                        if !r.value.isFinite { fail("reading value \(r.value) is not finite") }
                        if let u = r.unit, u.isEmpty || u.utf8.count > 32 { fail("unit \(u) is not 1 to 32 bytes") }
                    }
                    for code in o.unknownCodes where Names.isValid(code + "_avg_60m") && !readings.contains(where: { $0.series.metric == code || $0.series.metric.hasPrefix(code + "_") }) {
                        fail("unknown code \(code) not stored under its own name")
                    }
                    let answer = HJ212.answer(cn: 9014, qn: o.frame.qn ?? "", pw: o.frame.pw, mn: o.frame.mn)
                    let parsed = answer.withUnsafeBytes { try? HJ212Frame.parse($0, zone: .shanghai) }
                    if parsed?.qn != (o.frame.qn ?? "") || parsed?.cn != 9014 { fail("the answer does not parse back") }
                }
                // The message decoder, on an MQTT topic and on the listener's.
                for topic in ["hj/x", "\u{0}hj212/7"] {
                    var got: [Reading] = []
                    let error: RejectReason? = Array(topic.utf8).withUnsafeBytes { t -> RejectReason? in
                        do throws(RejectReason) {
                            try messages.decode(topic: t, payload: b, receivedAt: FuzzCheck.receivedAt, into: &got)
                            return nil
                        } catch {
                            return error
                        }
                    }
                    switch (first, error) {
                    case (.success, nil):
                        if got != readings { fail("the message decoder gives other readings than the frame's") }
                    case (.success, let e?):
                        if e.code != .futureTimestamp && e.code != .tooOld { fail("the message decoder rejects a good frame: \(e)") }
                    case (.failure(let r), let e):
                        if e?.code != r.code && !(r.code == .hj212TooLarge && e?.code == .payloadTooLarge) {
                            fail("the message decoder says \(String(describing: e)), the frame decoder \(r)")
                        }
                    }
                }
            }
        }
    }
}
