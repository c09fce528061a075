import CMosquitto
import Foundation
import VigilCore

/// A libmosquitto failure: the raw result code and the call that failed.
public struct MQTTError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    public var message: String {
        if code == MOSQ_ERR_ERRNO.rawValue { return String(cString: strerror(errno)) }
        return String(cString: mosquitto_strerror(code))
    }

    public var description: String { "\(operation): \(message) (mosquitto code \(code))" }
}

/// TLS settings of a connection: the CA that signs the broker, and for mutual TLS a client certificate and key.
public struct TLSOptions: Sendable, Hashable {
    public var caFile: String
    public var certFile: String?
    public var keyFile: String?

    public init(caFile: String, certFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }
}

/// Where and how to connect.
public struct MQTTEndpoint: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var clientID: String
    public var username: String?
    public var password: String?
    public var tls: TLSOptions?
    public var keepalive: Int = 30
    /// false: a persistent session, so the broker keeps QoS 1 messages while vigil is away.
    public var cleanSession = false
    public var reconnectMin: TimeSpan = .milliseconds(500)
    public var reconnectMax: TimeSpan = .seconds(30)
    /// Unacknowledged QoS 1 publishes allowed at once (0: libmosquitto's default, 20).
    public var maxInflight = 20

    public init(host: String, port: Int, clientID: String) {
        self.host = host
        self.port = port
        self.clientID = clientID
    }

    public var address: String { "\(host):\(port)" }
}

/// A retained message the broker publishes for us when the connection dies.
public struct LastWill: Sendable, Hashable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: Int32
    public var retain: Bool

    public init(topic: String, payload: [UInt8], qos: Int32 = 1, retain: Bool = true) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }
}

/// What the client reports. Called on the network thread.
///
/// - Important: `message` gets pointers that are valid only during the call: copy what you keep.
public protocol MQTTClientDelegate: AnyObject, Sendable {
    func mqttMessage(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, qos: Int32, retained: Bool)
    func mqttConnected(sessionPresent: Bool)
    func mqttDisconnected(reason: String)
    func mqttPublished(mid: Int32)
    /// The broker acknowledged the subscriptions sent on connect (refused filters are logged).
    func mqttSubscribed()
}

extension MQTTClientDelegate {
    public func mqttMessage(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, qos: Int32, retained: Bool) {}
    public func mqttConnected(sessionPresent: Bool) {}
    public func mqttDisconnected(reason: String) {}
    public func mqttPublished(mid: Int32) {}
    public func mqttSubscribed() {}
}
