import Foundation

/// A hostile peer in a process of its own: opens `count` TCP connections to a loopback port,
/// sends each half a request and holds them (raw sockets with poll, no select(), which
/// fails past 1,024 descriptors), until `stop()` or `seconds`. Python 3's standard library.
public final class SocketFlood: @unchecked Sendable {
    // Immutable after init; `process` is stopped once.
    private let process: ChildProcess
    private let directory = TemporaryDirectory("vigil-flood")
    public let reportPath: String

    static let script = #"""
        import resource, socket, sys, time, json
        port, count, seconds, report = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 100), hard))
        held, refused = [], 0
        start = time.time()
        for _ in range(count):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", port))
                s.send(b"GET /metrics HTTP/1.1\r\nHost: flood\r\n")
                held.append(s)
            except OSError:
                refused += 1
                s.close()
        connected = time.time() - start
        def closed():
            n = 0
            for s in held:
                s.setblocking(False)
                try:
                    if s.recv(1) == b"": n += 1
                except BlockingIOError:
                    pass
                except OSError:
                    n += 1
            return n
        with open(report, "w") as f:
            json.dump({"connected": len(held), "refused": refused, "seconds": connected}, f)
        deadline = start + seconds
        while time.time() < deadline:
            time.sleep(0.2)
        with open(report, "w") as f:
            json.dump({"connected": len(held), "refused": refused, "seconds": connected, "closed_by_server": closed()}, f)
        """#

    /// - Parameters: the port, how many connections, how long to hold them at most.
    public init(port: Int, count: Int, seconds: Double) throws {
        let path = directory.file("flood.py")
        reportPath = directory.file("report.json")
        try Self.script.write(toFile: path, atomically: true, encoding: .utf8)
        process = try ChildProcess("/usr/bin/env", ["python3", path, "\(port)", "\(count)", "\(seconds)", reportPath])
    }

    /// What the flood has seen: connected, refused, and (once it ends) closed_by_server.
    public var report: [String: Double] {
        guard let data = FileManager.default.contents(atPath: reportPath),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return obj.compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }

    /// Waits for it to end by itself (after `seconds`), then returns its last report.
    @discardableResult
    public func wait() -> [String: Double] {
        process.wait()
        return report
    }

    /// Ends it now: every connection it holds is closed.
    public func stop() {
        if process.isRunning { process.signal(SIGKILL) }
        process.wait()
    }

    deinit { stop() }
}
