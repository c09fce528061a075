import Foundation
import VigilCore

/// A data logger's side of an HJ 212 TCP connection, for tests and the benchmark: connects
/// to a listener on loopback, sends bytes as it is told (whole, split, byte by byte) and
/// reads the platform's answers, one frame at a time, with a deadline.
public final class HJ212Client {
    public private(set) var fd: Int32
    private var received: [UInt8] = []

    public init?(port: Int, from source: String = "127.0.0.1") {
        guard let fd = FreePort.connectLoopback(port, from: source) else { return nil }
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Sends all of `bytes`. - Returns: false when the connection is gone.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool { Self.sendAll(fd, bytes) }

    /// Sends all of `bytes` on `fd`; false when the connection is gone or a send timed out.
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    public func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Closes with a reset (SO_LINGER 0), as a logger that loses power does; later calls fail.
    public func reset() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        close(fd)
        fd = -1
    }

    /// The next answer frame (with its CRLF), or nil when none came within `timeout` or the
    /// connection closed.
    public func answer(timeout: Double = 5) -> [UInt8]? {
        let end = Date().timeIntervalSince1970 + timeout
        while true {
            if let r = received.firstRange(of: [13, 10]) {
                let frame = Array(received[..<r.upperBound])
                received.removeSubrange(..<r.upperBound)
                return frame
            }
            let left = end - Date().timeIntervalSince1970
            guard left > 0, readSome(timeout: left) > 0 else { return nil }
        }
    }

    /// Whether the listener closed the connection within `timeout` (reads and drops what comes).
    public func closedByPeer(timeout: Double) -> Bool {
        let end = Date().timeIntervalSince1970 + timeout
        while true {
            let left = end - Date().timeIntervalSince1970
            if left <= 0 { return false }
            let n = readSome(timeout: left)
            if n == 0 { return true }
            if n < 0 { return false }
        }
    }

    /// - Returns: bytes read; 0 at end of stream (or an error); -1 on timeout.
    private func readSome(timeout: Double) -> Int {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, Int32(max(1, timeout * 1000)))
        if r == 0 { return -1 }
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { return 0 }
        received += buf[0..<n]
        return n
    }

    /// A data frame from station `mn`: real-time data (2011) at `at` (its DataTime, in
    /// `zone`), each value flagged N unless `flags` says otherwise; Flag=5 asks for an answer.
    public static func frame(
        mn: String, qn: String, at: Timestamp, values: [(code: String, value: Double)], flags: [String: String] = [:],
        cn: Int = 2011, flag: Int = 5, pw: String = "123456", zone: LocalTimeZone = .shanghai
    ) -> [UInt8] {
        let suffix = cn == 2011 ? "Rtd" : "Avg"
        let items = values.map { "\($0.code)-\(suffix)=\($0.value),\($0.code)-Flag=\(flags[$0.code] ?? "N")" }
        let cp = (["DataTime=\(HJ212.localTime(at, zone: zone))"] + items).joined(separator: ";")
        return HJ212.frame(segment: "QN=\(qn);ST=22;CN=\(cn);PW=\(pw);MN=\(mn);Flag=\(flag);CP=&&\(cp)&&")
    }
}
