import VigilCore

/// The bounds that keep a hostile or careless logger from holding the listener.
struct HJ212Limits: Sendable {
    /// Open connections at most; one more is accepted and closed at once (refused): the
    /// loggers already connected are never closed to make room.
    var maxConnections = 64
    /// Open connections from one address at most; one more from it is refused.
    var maxConnectionsPerPeer = 4
    /// A connection that sends nothing for this long is closed (a half frame with it).
    var idleTimeout = 1200.0
    /// A new connection that sends no valid frame within this is closed, and so is one that
    /// starts a frame and does not finish it within `frameTimeout`.
    var firstFrameTimeout = 30.0
    var frameTimeout = 30.0
    /// Bytes a connection may send in a row without a frame before it is closed.
    var maxGarbage = 2 * HJ212.maxFrameBytes
    /// Frames in a row that fail the screen (CRC, fields, station, PW) before it is closed.
    var maxBadFrames = 16
    /// Frames a connection may send per second, and the burst (in seconds of them) it may
    /// send at once; past it the listener reads nothing from it until tokens come back.
    var framesPerSecond = 20.0
    var burstSeconds = 5.0
    /// Answers a peer that does not read may have waiting before it is closed.
    var maxPendingOutput = 64 * 1024
    /// Bytes taken from one connection per turn, so that none starves the others.
    var readChunk = 16 * 1024
}

/// The HJ 212 listener's state for `vigil status` and `/metrics`.
public struct HJ212ListenerStatus: Codable, Sendable, Equatable {
    public var listen: String
    public var listening = false
    public var addresses: [String] = []
    public var lastError: String?
    public var lastErrorAt: String?
    /// Failed attempts to listen, failed accepts.
    public var errors: UInt64 = 0
    public var connections = 0
    public var accepted: UInt64 = 0
    /// Connections closed at once because `max_connections` were open.
    public var refused: UInt64 = 0
    /// Of those, refused because `max_connections_per_peer` were open from its address.
    public var refusedPerPeer: UInt64 = 0
    /// Connections closed for no valid frame within 30 s, or a frame not finished in 30 s.
    public var closedSlow: UInt64 = 0
    /// Frames that failed the listener's screen (CRC, fields, station, PW).
    public var badFrames: UInt64 = 0
    public var timedOut: UInt64 = 0
    /// Connections closed for sending bytes that are no frames, or not reading their answers.
    public var closedHostile: UInt64 = 0
    /// Frames (and runs of bytes that are none) handed to ingest.
    public var frames: UInt64 = 0
    /// Data answers (CN=9014) written, and those whose connection had gone.
    public var answers: UInt64 = 0
    public var answersDropped: UInt64 = 0
}

/// One logger's connection, owned by the listener's poll thread.
struct HJ212Connection {
    let fd: Int32
    /// `host:port`, and the host alone (the per-address bound counts it).
    let peer: String
    let host: String
    let openedAt: Double
    /// The inbox topic of its frames (`hj212/<peer>/<id>`).
    let topic: [UInt8]
    var input: [UInt8] = []
    var output: [UInt8] = []
    var lastActive: Double
    /// Bytes in a row that were no frame, and whether that run was handed on (once).
    var garbage = 0
    var garbageReported = false
    /// Frames in a row that failed the screen (CRC, fields, station, PW); the first of a run
    /// is handed on as a reject, the others are counted.
    var badFrames = 0
    /// Frames that passed the screen since the connection opened.
    var goodFrames = 0
    /// The frames-per-second bucket: frames this connection may send now.
    var tokens: Double
    var refilledAt: Double
    /// Since when `input` holds the start of a frame whose rest has not come (nil: none).
    var partialSince: Double?

    init(fd: Int32, peer: String, host: String, now: Double, burst: Double, id: Int = 0) {
        self.fd = fd
        topic = HJ212Topic.topic(connection: id, peer: peer)
        self.peer = peer
        self.host = host
        openedAt = now
        lastActive = now
        tokens = burst
        refilledAt = now
    }

    mutating func refill(now: Double, rate: Double, burst: Double) {
        tokens = min(burst, tokens + (now - refilledAt) * rate)
        refilledAt = now
    }
}

/// What cutting a connection's bytes came to.
enum HJ212Cut {
    case ok
    /// The inbox refused a frame (the listener's share is full): the rest stays in `input`.
    case inboxFull
    /// Close the connection: why.
    case hostile(String)
}

/// Cutting bytes into frames: pure apart from `offer`, which hands a message to the inbox
/// and says whether it took it.
struct HJ212Cutter {
    var limits: HJ212Limits
    var decoder: HJ212Decoder?

    /// Cuts what a connection sent into frames. Each frame is screened (CRC, fields, station,
    /// PW) first: one that passes goes to the inbox and costs a token; one that fails is
    /// counted, the first of a run is handed on (the decoder rejects it, visibly), and
    /// `maxBadFrames` in a row close the connection. Bytes that are no frame are handed on
    /// once per run and count toward `maxGarbage`. Stops when the bucket is empty or the
    /// inbox refuses; what is left stays in `input` for a later turn.
    func cut(
        _ c: inout HJ212Connection, now: Double, counts: inout (handed: UInt64, bad: UInt64),
        offer: (UnsafeRawBufferPointer) -> Bool
    ) -> HJ212Cut {
        var consumed = 0
        var result = HJ212Cut.ok
        var waiting = false
        c.input.withUnsafeBytes { all in
            scanning: while consumed < all.count {
                let rest = UnsafeRawBufferPointer(rebasing: all[consumed...])
                switch HJ212.scan(rest) {
                case .needMore:
                    waiting = true
                    break scanning
                case .lineBreaks(let n):
                    consumed += n
                case .frame(let n):
                    guard c.tokens >= 1 else { break scanning }
                    let frame = UnsafeRawBufferPointer(rebasing: rest[0..<n])
                    var reason: RejectReason?
                    if let decoder {
                        do throws(RejectReason) { try decoder.screen(frame) } catch { reason = error }
                    }
                    if let reason {
                        if c.badFrames == 0 {
                            guard offer(frame) else {
                                result = .inboxFull
                                break scanning
                            }
                            counts.handed += 1
                        }
                        c.badFrames += 1
                        counts.bad += 1
                        c.tokens -= 1
                        // After a bad CRC the length may be what is wrong: look for the next
                        // frame right after this one's `##`, not past what it announced.
                        consumed += reason.code == .hj212BadCRC ? min(n, HJ212.nextStart(rest, from: 2)) : n
                        if c.badFrames >= limits.maxBadFrames {
                            result = .hostile("\(c.badFrames) bad frames in a row")
                            break scanning
                        }
                    } else {
                        guard offer(frame) else {
                            result = .inboxFull
                            break scanning
                        }
                        counts.handed += 1
                        c.tokens -= 1
                        c.badFrames = 0
                        c.goodFrames += 1
                        c.garbage = 0
                        c.garbageReported = false
                        consumed += n
                    }
                case .garbage(let n), .badLength(let n):
                    if !c.garbageReported {
                        guard offer(UnsafeRawBufferPointer(rebasing: rest[0..<min(n, 256)])) else {
                            result = .inboxFull
                            break scanning
                        }
                        counts.handed += 1
                        c.garbageReported = true
                    }
                    c.garbage += n
                    consumed += n
                    if c.garbage > limits.maxGarbage {
                        result = .hostile("sends no frames")
                        break scanning
                    }
                }
            }
        }
        if consumed > 0 { c.input.removeFirst(consumed) }
        if !waiting || c.input.isEmpty {
            c.partialSince = nil
        } else if consumed > 0 || c.partialSince == nil {
            c.partialSince = now
        }
        return result
    }
}
