import Foundation

/// A real mosquitto broker on a free loopback port, with its own config and persistence
/// folder. It can be stopped and started again on the same port, to make outages.
/// `@unchecked Sendable`: `process` is read and written only under `lock`.
public final class Broker: @unchecked Sendable {
    // `process` is only touched by the test that owns the broker, one call at a time.
    public let port: Int
    public let directory: TemporaryDirectory
    public let extraConfig: String
    public let listenerConfig: String
    public let allowAnonymous: Bool
    private var process: ChildProcess?
    private let lock = NSLock()

    public enum BrokerError: Error, CustomStringConvertible {
        case notInstalled
        case didNotStart(String)
        public var description: String {
            switch self {
            case .notInstalled: return "mosquitto is not installed (apt-get install mosquitto)"
            case .didNotStart(let log): return "mosquitto did not start: \(log)"
            }
        }
    }

    /// Where mosquitto is, if installed.
    public static var executable: String? {
        for p in ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto"]
        where FileManager.default.isExecutableFile(atPath: p) {
            return p
        }
        return nil
    }

    public static var isAvailable: Bool { executable != nil }

    /// Starts a broker.
    /// - Parameters:
    ///   - listenerConfig: lines for the listener (TLS files, say).
    ///   - allowAnonymous: false requires a user (give `password_file` in `extraConfig`).
    ///   - extraConfig: lines appended to the config.
    public init(port: Int? = nil, listenerConfig: String = "", allowAnonymous: Bool = true, extraConfig: String = "") throws {
        self.port = port ?? FreePort.next()
        self.directory = TemporaryDirectory("vigil-broker")
        self.listenerConfig = listenerConfig
        self.allowAnonymous = allowAnonymous
        self.extraConfig = extraConfig
        try start()
    }

    public var address: String { "127.0.0.1:\(port)" }
    public var host: String { "127.0.0.1" }
    public var logPath: String { directory.file("mosquitto.log") }

    private func writeConfig() throws {
        // Run as root, mosquitto would switch to the `mosquitto` user, which cannot write
        // to this test's private folder: stay the user the tests run as.
        let user = geteuid() == 0 ? "user root\n" : ""
        let config = """
            \(user)listener \(port) 127.0.0.1
            \(listenerConfig)
            allow_anonymous \(allowAnonymous)
            persistence true
            persistence_location \(directory.path)/
            max_queued_messages 10000000
            max_inflight_messages 100
            set_tcp_nodelay true
            log_dest file \(logPath)
            log_type error
            log_type warning
            log_type notice
            log_type information
            connection_messages true
            \(extraConfig)

            """
        try config.write(toFile: directory.file("mosquitto.conf"), atomically: true, encoding: .utf8)
    }

    /// Starts (or restarts) the broker and waits until it accepts connections.
    public func start() throws {
        lock.lock()
        defer { lock.unlock() }
        guard process == nil else { return }
        guard let exe = Broker.executable else { throw BrokerError.notInstalled }
        try writeConfig()
        let p = try ChildProcess(exe, ["-c", directory.file("mosquitto.conf")])
        process = p
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if FreePort.accepts(port) { return }
            if !p.isRunning { break }
            usleep(20_000)
        }
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        p.terminate()
        process = nil
        throw BrokerError.didNotStart(String(log.suffix(2000)))
    }

    /// Stops the broker: SIGTERM (it saves its persistence file) and waits.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard let p = process else { return }
        p.terminate()
        process = nil
    }

    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return process?.isRunning ?? false
    }

    /// The broker's log so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        stop()
    }
}

/// Free loopback ports.
public enum FreePort {
    /// A port nothing listens on now (the kernel's choice for an ephemeral bind).
    public static func next() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                bind(fd, sp, len) == 0 && getsockname(fd, sp, &len) == 0
            }
        }
        precondition(ok, "could not bind an ephemeral port")
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Whether something accepts TCP connections on the loopback port.
    public static func accepts(_ port: Int) -> Bool {
        guard let fd = connectLoopback(port) else { return false }
        close(fd)
        return true
    }

    /// A TCP socket connected to the loopback port, or nil; the caller closes it.
    /// - Parameter source: the local address to connect from (any of 127.0.0.0/8), so a test
    ///   can be two hosts.
    public static func connectLoopback(_ port: Int, from source: String = "127.0.0.1") -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        if source != "127.0.0.1" {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            guard bound else {
                close(fd)
                return nil
            }
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        if !connected { close(fd) }
        return connected ? fd : nil
    }
}

/// Polls `condition` until it holds or the deadline passes. Tests wait with this, never with a fixed sleep.
/// - Returns: whether the condition held.
@discardableResult
public func eventually(timeout: TimeInterval = 10, interval: TimeInterval = 0.02, _ condition: () throws -> Bool) rethrows
    -> Bool
{
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(useconds_t(interval * 1_000_000))
    }
    return try condition()
}
