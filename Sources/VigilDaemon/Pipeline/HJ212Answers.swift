import VigilCore

/// Where the ingest thread hands the answers (CN=9014) of committed HJ 212 frames: the TCP
/// listener writes them to their connections.
///
/// - Important: called on the ingest thread; it must not block.
protocol HJ212AnswerSink: Sendable {
    func deliver(_ answers: [(connection: Int, bytes: [UInt8])])
    /// The decoder ingest runs (at start and after each reload): the listener screens frames
    /// with it (CRC, fields, station, PW) before they take room in the inbox.
    func use(_ decoder: HJ212Decoder?)
}

/// The inbox topic of a frame from the TCP listener: a NUL byte (no MQTT topic holds one),
/// `hj212/`, the peer's address, `/`, the connection's number; `vigil rejects` shows it as
/// `tcp:hj212/192.168.1.20:40112/7`.
enum HJ212Topic {
    static func topic(connection: Int, peer: String? = nil) -> [UInt8] {
        MessageDecoder.hj212TopicPrefix + (peer.map { Array($0.utf8.filter { $0 != UInt8(ascii: "/") }) + [UInt8(ascii: "/")] } ?? [])
            + Array(String(connection).utf8)
    }

    /// The connection of a listener topic (the digits after its last `/`); nil for MQTT topics.
    static func connection(_ topic: UnsafeRawBufferPointer) -> Int? {
        let prefix = MessageDecoder.hj212TopicPrefix
        guard topic.count > prefix.count, topic.prefix(prefix.count).elementsEqual(prefix) else { return nil }
        let digits = topic.reversed().prefix { $0 != UInt8(ascii: "/") }.reversed()
        guard !digits.isEmpty else { return nil }
        var n = 0
        for b in digits {
            guard b >= 48, b <= 57, n < Int.max / 10 - 10 else { return nil }
            n = n * 10 + Int(b - 48)
        }
        return n
    }
}
