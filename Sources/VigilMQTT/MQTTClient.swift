import CMosquitto
import Foundation
import Logging
import Synchronization
import VigilCore

enum MosquittoLibrary {
    /// `mosquitto_lib_init` is not thread safe: run it once, before any client exists.
    static let initialized: Bool = {
        mosquitto_lib_init()
        return true
    }()
}

/// One MQTT connection over libmosquitto, with its own network thread.
///
/// The thread runs `mosquitto_loop` itself rather than `mosquitto_loop_forever`, which gives
/// up on TLS, authentication and DNS errors: here every failure is logged and retried with
/// exponential backoff and jitter until `stop()`. On each (re)connect the subscriptions are
/// sent again, so they survive a broker that lost its session.
///
/// - Important: `@unchecked Sendable` for the libmosquitto handle: libmosquitto serialises
///   its callbacks on the network thread and `mosquitto_publish` is thread safe; the Swift
///   side's mutable state is in `state`, reachable only with its lock held.
public final class MQTTClient: @unchecked Sendable {
    public let endpoint: MQTTEndpoint
    public let subscriptions: [String]
    /// Filters a persistent session may still hold from an earlier config: unsubscribed on connect.
    public let staleSubscriptions: [String]
    public let qos: Int32
    let logger: Logger
    private let handle: OpaquePointer
    private weak let delegate: MQTTClientDelegate?

    private struct State {
        var connected = false
        var stopping = false
        var started = false
        var connects = 0
        var lastError: String?
        var failures = 0
        var lastLogAt = MonotonicDeadline(nanos: .min / 2)
        var suppressed = 0
        /// The last failure (a refused CONNECT, a lost connection) was logged already.
        var failureReported = false
    }

    private let state = ConditionLock(State())
    /// Monotonic seconds of the network loop's last turn (for the watchdog).
    private let loopBeat = Atomic<UInt64>(0)

    /// When the network thread last turned (monotonic seconds); it turns at least every second.
    public var lastLoop: Double { Double(loopBeat.load(ordering: .relaxed)) / 1e9 }

    private func beat() { loopBeat.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed) }
    private let finished = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - subscriptions: filters subscribed at `qos` on every connect.
    ///   - will: a last will, set before the first connect.
    public init(
        endpoint: MQTTEndpoint, subscriptions: [String] = [], staleSubscriptions: [String] = [], qos: Int32 = 1,
        will: LastWill? = nil, delegate: MQTTClientDelegate, logger: Logger
    ) throws(MQTTError) {
        _ = MosquittoLibrary.initialized
        self.endpoint = endpoint
        self.subscriptions = subscriptions
        self.staleSubscriptions = staleSubscriptions
        self.qos = qos
        self.delegate = delegate
        self.logger = logger
        guard let h = mosquitto_new(endpoint.clientID, endpoint.cleanSession, nil) else {
            throw MQTTError(code: MOSQ_ERR_ERRNO.rawValue, operation: "mosquitto_new")
        }
        handle = h
        mosquitto_user_data_set(h, Unmanaged.passUnretained(self).toOpaque())
        do {
            try check(mosquitto_threaded_set(h, true), "mosquitto_threaded_set")
            try check(
                mosquitto_int_option(h, MOSQ_OPT_PROTOCOL_VERSION, Int32(MQTT_PROTOCOL_V311)), "protocol version")
            try check(mosquitto_int_option(h, MOSQ_OPT_TCP_NODELAY, 1), "TCP_NODELAY")
            if endpoint.maxInflight > 0 {
                try check(mosquitto_max_inflight_messages_set(h, UInt32(endpoint.maxInflight)), "max inflight")
            }
            if let user = endpoint.username {
                try check(mosquitto_username_pw_set(h, user, endpoint.password), "username")
            }
            if let tls = endpoint.tls {
                try check(mosquitto_tls_set(h, tls.caFile, nil, tls.certFile, tls.keyFile, nil), "TLS files")
                try check(mosquitto_tls_insecure_set(h, false), "TLS host name check")
            }
            if let will {
                let rc = will.payload.withUnsafeBytes { p in
                    mosquitto_will_set(h, will.topic, Int32(p.count), p.baseAddress, will.qos, will.retain)
                }
                try check(rc, "last will")
            }
        } catch {
            mosquitto_destroy(h)
            throw error
        }
        mosquitto_connect_with_flags_callback_set(h, onConnect)
        mosquitto_disconnect_callback_set(h, onDisconnect)
        mosquitto_message_callback_set(h, onMessage)
        mosquitto_publish_callback_set(h, onPublish)
        mosquitto_subscribe_callback_set(h, onSubscribe)
        mosquitto_log_callback_set(h, onLog)
    }

    deinit {
        mosquitto_destroy(handle)
    }

    private func check(_ rc: Int32, _ op: String) throws(MQTTError) {
        if rc != MOSQ_ERR_SUCCESS.rawValue { throw MQTTError(code: rc, operation: op) }
    }

    public var isConnected: Bool { state.withLock { $0.connected } }

    /// How many times the connection was established.
    public var connectCount: Int { state.withLock { $0.connects } }

    public var lastError: String? { state.withLock { $0.lastError } }

    /// Starts the network thread, which connects and keeps reconnecting.
    public func start() {
        let first = state.withLock { s in
            defer { s.started = true }
            return !s.started
        }
        guard first else { return }
        let t = Thread { [self] in
            runLoop()
            finished.signal()
        }
        t.name = "mqtt \(endpoint.clientID)@\(endpoint.address)"
        t.start()
    }

    /// Disconnects cleanly and ends the network thread.
    /// - Parameter timeout: how long to wait for the thread.
    public func stop(timeout: TimeInterval = 10) {
        let wasStarted = state.withLockBroadcasting { s in
            defer { s.stopping = true }
            return s.started && !s.stopping
        }
        guard wasStarted else { return }
        mosquitto_disconnect(handle)
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            logger.warning("MQTT network thread did not stop in time", metadata: ["mqtt.broker": "\(endpoint.address)"])
        }
    }

    /// Publishes a message.
    /// - Returns: the message id, which `mqttPublished` reports once the broker acknowledged it (QoS 1).
    /// - Throws: when libmosquitto refuses it (no connection is not an error: it is queued).
    @discardableResult
    public func publish(topic: String, payload: [UInt8], qos: Int32, retain: Bool = false) throws(MQTTError) -> Int32 {
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes { p in
            mosquitto_publish(handle, &mid, topic, Int32(p.count), p.baseAddress, qos, retain)
        }
        if rc != MOSQ_ERR_SUCCESS.rawValue && rc != MOSQ_ERR_NO_CONN.rawValue {
            throw MQTTError(code: rc, operation: "publish \(topic)")
        }
        return mid
    }

    private var stopping: Bool { state.withLock { $0.stopping } }

    /// Sleeps up to `seconds`, waking early on `stop()`, and showing life each second.
    private func pause(_ seconds: Double) {
        let deadline = MonotonicDeadline.after(seconds)
        while !stopping {
            let slice = min(deadline, .after(1))
            if slice.isPast { break }
            state.wait(until: slice, while: { !$0.stopping }, then: { _ in })
            beat()
        }
    }

    private func backoff() -> Double {
        let n = state.withLock { s in
            s.failures += 1
            return s.failures
        }
        let base = endpoint.reconnectMin.seconds * pow(2, Double(min(n - 1, 20)))
        let capped = min(base, endpoint.reconnectMax.seconds)
        // Full jitter in the upper half, so a fleet that lost its broker does not return in step.
        return capped / 2 + Double.random(in: 0...(capped / 2))
    }

    private func runLoop() {
        var needConnect = true
        var first = true
        while !stopping {
            beat()
            if needConnect {
                let rc =
                    first
                    ? mosquitto_connect(handle, endpoint.host, Int32(endpoint.port), Int32(endpoint.keepalive))
                    : mosquitto_reconnect(handle)
                if rc != MOSQ_ERR_SUCCESS.rawValue {
                    failed(MQTTError(code: rc, operation: "connect to \(endpoint.address)").description)
                    pause(backoff())
                    continue
                }
                first = false
                needConnect = false
            }
            let rc = mosquitto_loop(handle, 100, 1)
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                if stopping { break }
                let (wasConnected, reported) = markDisconnected()
                // A refusal was logged by the CONNACK handler and a lost connection by the
                // disconnect handler: only what neither saw is logged here.
                if !wasConnected && !reported {
                    failed(MQTTError(code: rc, operation: "connection to \(endpoint.address)").description)
                }
                needConnect = true
                pause(backoff())
            }
        }
        // Let a DISCONNECT that stop() queued go out.
        for _ in 0..<20 where mosquitto_loop(handle, 50, 1) == MOSQ_ERR_SUCCESS.rawValue {}
        markDisconnected()
    }

    /// Returns whether it was connected, and whether the failure was already reported.
    @discardableResult
    private func markDisconnected() -> (wasConnected: Bool, failureReported: Bool) {
        state.withLock { s in
            defer {
                s.connected = false
                s.failureReported = false
            }
            return (s.connected, s.failureReported)
        }
    }

    /// Logs a connection failure, at most once every 10 s after the first few (with a count of what was suppressed).
    private func failed(_ message: String) {
        let now = MonotonicDeadline.now()
        let (log, suppressed) = state.withLock { s in
            s.lastError = message
            let log = s.failures < 3 || now.nanos - s.lastLogAt.nanos >= 10_000_000_000
            defer {
                if log {
                    s.lastLogAt = now
                    s.suppressed = 0
                } else {
                    s.suppressed += 1
                }
            }
            return (log, s.suppressed)
        }
        if log {
            var meta: Logger.Metadata = ["mqtt.broker": "\(endpoint.address)", "mqtt.client_id": "\(endpoint.clientID)"]
            if suppressed > 0 { meta["suppressed"] = "\(suppressed)" }
            logger.warning("MQTT connection failed: \(message)", metadata: meta)
        }
    }

    // MARK: Callbacks (network thread)

    fileprivate func connected(rc: Int32, flags: Int32) {
        guard rc == 0 else {
            let reason = String(cString: mosquitto_connack_string(rc))
            failed("broker \(endpoint.address) refused the connection: \(reason)")
            state.withLock { $0.failureReported = true }
            return
        }
        let connects = state.withLock { s in
            s.connected = true
            s.connects += 1
            s.failures = 0
            s.lastError = nil
            return s.connects
        }
        let sessionPresent = flags & 1 == 1
        logger.info(
            "MQTT connected",
            metadata: [
                "mqtt.broker": "\(endpoint.address)", "mqtt.client_id": "\(endpoint.clientID)",
                "mqtt.session_present": "\(sessionPresent)", "mqtt.connects": "\(connects)",
            ])
        if sessionPresent && !staleSubscriptions.isEmpty {
            var cStrings = staleSubscriptions.map { strdup($0) }
            defer { cStrings.forEach { free($0) } }
            let rc = cStrings.withUnsafeMutableBufferPointer { buf in
                buf.withMemoryRebound(to: UnsafeMutablePointer<CChar>?.self) { p in
                    mosquitto_unsubscribe_multiple(handle, nil, Int32(p.count), p.baseAddress, nil)
                }
            }
            logger.info(
                "MQTT unsubscribed filters no longer in the config",
                metadata: ["mqtt.filters": "\(staleSubscriptions.joined(separator: " "))", "rc": "\(rc)"])
        }
        if !subscriptions.isEmpty {
            var cStrings = subscriptions.map { strdup($0) }
            defer { cStrings.forEach { free($0) } }
            let rc = cStrings.withUnsafeMutableBufferPointer { buf in
                buf.withMemoryRebound(to: UnsafeMutablePointer<CChar>?.self) { p in
                    mosquitto_subscribe_multiple(handle, nil, Int32(p.count), p.baseAddress, qos, 0, nil)
                }
            }
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                logger.error("MQTT subscribe failed: \(MQTTError(code: rc, operation: "subscribe"))")
            }
        }
        delegate?.mqttConnected(sessionPresent: sessionPresent)
    }

    fileprivate func disconnected(rc: Int32) {
        let wasConnected = state.withLock { s in
            defer {
                if s.connected { s.failureReported = true }
                s.connected = false
            }
            return s.connected
        }
        let reason = rc == 0 ? "disconnected" : MQTTError(code: rc, operation: "connection lost").description
        if rc != 0 && !stopping && wasConnected {
            logger.warning("MQTT connection lost", metadata: ["mqtt.broker": "\(endpoint.address)", "error": "\(reason)"])
        }
        delegate?.mqttDisconnected(reason: reason)
    }

    fileprivate func message(_ msg: UnsafePointer<mosquitto_message>) {
        let m = msg.pointee
        let topic = UnsafeRawBufferPointer(start: m.topic, count: m.topic.map { strlen($0) } ?? 0)
        let payload = UnsafeRawBufferPointer(start: m.payload, count: Int(m.payloadlen))
        delegate?.mqttMessage(topic: topic, payload: payload, qos: m.qos, retained: m.retain)
    }

    fileprivate func subscribed(granted: UnsafeBufferPointer<Int32>) {
        for (i, q) in granted.enumerated() where q == 0x80 || q < 0 {
            let filter = i < subscriptions.count ? subscriptions[i] : "#\(i)"
            logger.error("broker refused subscription", metadata: ["mqtt.filter": "\(filter)"])
        }
        delegate?.mqttSubscribed()
    }

    fileprivate func published(mid: Int32) {
        delegate?.mqttPublished(mid: mid)
    }

    fileprivate func log(level: Int32, _ text: String) {
        if level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING) != 0 {
            logger.warning("libmosquitto: \(text)", metadata: ["mqtt.broker": "\(endpoint.address)"])
        }
    }

    fileprivate static func from(_ obj: UnsafeMutableRawPointer?) -> MQTTClient? {
        obj.map { Unmanaged<MQTTClient>.fromOpaque($0).takeUnretainedValue() }
    }
}

private func onConnect(_ mosq: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ rc: Int32, _ flags: Int32) {
    MQTTClient.from(obj)?.connected(rc: rc, flags: flags)
}

private func onDisconnect(_ mosq: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ rc: Int32) {
    MQTTClient.from(obj)?.disconnected(rc: rc)
}

private func onMessage(_ mosq: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ msg: UnsafePointer<mosquitto_message>?) {
    guard let msg else { return }
    MQTTClient.from(obj)?.message(msg)
}

private func onPublish(_ mosq: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ mid: Int32) {
    MQTTClient.from(obj)?.published(mid: mid)
}

private func onSubscribe(
    _ mosq: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ mid: Int32, _ count: Int32, _ granted: UnsafePointer<Int32>?
) {
    guard let granted else { return }
    MQTTClient.from(obj)?.subscribed(granted: UnsafeBufferPointer(start: granted, count: Int(count)))
}

private func onLog(_ mosq: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ level: Int32, _ text: UnsafePointer<CChar>?) {
    guard let text else { return }
    MQTTClient.from(obj)?.log(level: level, String(cString: text))
}
