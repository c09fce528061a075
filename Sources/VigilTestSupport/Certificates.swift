import Foundation

/// A throwaway certificate authority made with openssl: a CA, a server certificate for
/// `localhost` and 127.0.0.1, and a client certificate, for tests of TLS and mutual TLS.
public final class TestPKI: Sendable {
    // Immutable after init.
    public let directory: TemporaryDirectory
    public var caCert: String { directory.file("ca.crt") }
    public var serverCert: String { directory.file("server.crt") }
    public var serverKey: String { directory.file("server.key") }
    public var clientCert: String { directory.file("client.crt") }
    public var clientKey: String { directory.file("client.key") }
    /// A second CA that signed nothing here: using it must fail.
    public var otherCACert: String { directory.file("other-ca.crt") }

    /// - Parameter serverNames: the server certificate's subjectAltName entries.
    public init(serverNames: String = "DNS:localhost,IP:127.0.0.1") throws {
        directory = TemporaryDirectory("vigil-pki")
        let d = directory.path
        try Self.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=vigil test CA", "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.crt"])
        try Self.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA", "-keyout", "\(d)/other-ca.key", "-out", "\(d)/other-ca.crt"])
        for (name, subject, ext) in [
            ("server", "/CN=localhost", "subjectAltName=\(serverNames)\nextendedKeyUsage=serverAuth"),
            ("client", "/CN=gw-test", "extendedKeyUsage=clientAuth"),
        ] {
            try ext.write(toFile: "\(d)/\(name).ext", atomically: true, encoding: .utf8)
            try Self.openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", "\(d)/\(name).key", "-out", "\(d)/\(name).csr"])
            try Self.openssl(["x509", "-req", "-in", "\(d)/\(name).csr", "-CA", "\(d)/ca.crt", "-CAkey", "\(d)/ca.key", "-CAcreateserial", "-days", "2", "-extfile", "\(d)/\(name).ext", "-out", "\(d)/\(name).crt"])
        }
        // mosquitto reads the key files; keep them private but readable by this user.
        for f in ["server.key", "client.key"] { chmod("\(d)/\(f)", 0o600) }
    }

    static func openssl(_ args: [String]) throws {
        let r = try ChildProcess.run("/usr/bin/openssl", args)
        if r.status != 0 {
            throw NSError(domain: "openssl", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: "openssl \(args.first ?? ""): \(r.stderr)"])
        }
    }

    /// mosquitto listener lines for this PKI; `requireClientCertificate` makes it mutual TLS.
    public func brokerConfig(requireClientCertificate: Bool) -> String {
        """
        cafile \(caCert)
        certfile \(serverCert)
        keyfile \(serverKey)
        require_certificate \(requireClientCertificate)
        """
    }

    /// A mosquitto password file with one user.
    public static func passwordFile(in dir: TemporaryDirectory, user: String, password: String) throws -> String {
        let path = dir.file("mosquitto.passwd")
        let r = try ChildProcess.run("/usr/bin/mosquitto_passwd", ["-b", "-c", path, user, password])
        if r.status != 0 { throw NSError(domain: "mosquitto_passwd", code: Int(r.status)) }
        return path
    }
}
