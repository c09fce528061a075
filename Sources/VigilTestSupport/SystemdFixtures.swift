import Foundation

/// A test-owned `NOTIFY_SOCKET`: a datagram socket that records what the daemon sends.
/// `@unchecked Sendable`: `received` is read and written only under `lock`.
public final class NotifyListener: @unchecked Sendable {
    // `messages` is guarded by `lock`; the rest is immutable after init.
    public let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [(Date, String)] = []
    private let directory = TemporaryDirectory("vigil-notify")

    public init() throws {
        path = directory.file("notify.sock")
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { dst in
            for (i, b) in path.utf8.enumerated() { dst[i] = b }
        }
        let ok = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
        guard ok else { throw NSError(domain: "NotifyListener", code: Int(errno)) }
        let t = Thread { [self] in
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(fd, &buf, buf.count, 0)
                if n <= 0 { break }
                let text = String(decoding: buf[0..<n], as: UTF8.self)
                lock.lock()
                received.append((Date(), text))
                lock.unlock()
            }
        }
        t.start()
    }

    /// Every datagram so far, each split into its `KEY=value` lines.
    public var messages: [(Date, [String])] {
        lock.lock()
        defer { lock.unlock() }
        return received.map { ($0.0, $0.1.split(separator: "\n").map(String.init)) }
    }

    /// When each message containing `line` arrived.
    public func times(of line: String) -> [Date] { messages.filter { $0.1.contains(line) }.map(\.0) }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

/// Every byte `fd` receives until its peer closes (or its receive timeout passes).
public func receiveUntilClosed(_ fd: Int32) -> [UInt8] {
    var data = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { break }
        data += buf[0..<n]
    }
    return data
}

/// A plain HTTP/1.1 GET over a socket: status code and body.
public func httpGet(port: Int, path: String) -> (status: Int, body: String)? {
    guard let fd = FreePort.connectLoopback(port) else { return nil }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    let data = receiveUntilClosed(fd)
    let text = String(decoding: data, as: UTF8.self)
    guard let headEnd = text.range(of: "\r\n\r\n") else { return nil }
    let statusLine = text[..<headEnd.lowerBound].split(separator: "\r\n").first ?? ""
    let code = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return (code, String(text[headEnd.upperBound...]))
}
