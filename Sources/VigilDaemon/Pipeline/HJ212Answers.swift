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
/// `hj212/`, the connection's number.
enum HJ212Topic {
    static func topic(connection: Int) -> [UInt8] { MessageDecoder.hj212TopicPrefix + Array(String(connection).utf8) }

    /// The connection of a listener topic; nil for MQTT topics.
    static func connection(_ topic: UnsafeRawBufferPointer) -> Int? {
        let prefix = MessageDecoder.hj212TopicPrefix
        guard topic.count > prefix.count, topic.prefix(prefix.count).elementsEqual(prefix) else { return nil }
        var n = 0
        for b in topic.dropFirst(prefix.count) {
            guard b >= 48, b <= 57, n < Int.max / 10 - 10 else { return nil }
            n = n * 10 + Int(b - 48)
        }
        return n
    }
}
