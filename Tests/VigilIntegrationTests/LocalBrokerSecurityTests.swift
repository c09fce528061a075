import Foundation
import Testing
import VigilCore
import VigilMQTT
import VigilTestSupport

extension Integration {
    /// The local broker behind TLS, mutual TLS and a password: vigil connects with what the
    /// config names, reads the password from its file, and refuses a broker it cannot verify.
    @Suite("Local broker: TLS and passwords")
    struct LocalSecurity {
        func config(port: Int, pki: TestPKI, passwordFile: String, host: String = "localhost", ca: String? = nil) -> String {
            DaemonProcess.config(localPort: port)
                .replacingOccurrences(of: "host: 127.0.0.1", with: "host: \(host)")
                .replacingOccurrences(
                    of: "  qos: 1\n",
                    with: """
                          qos: 1
                          username: vigil
                          password_file: \(passwordFile)
                          tls: { ca_file: \(ca ?? pki.caCert), cert_file: \(pki.clientCert), key_file: \(pki.clientKey) }

                        """)
        }

        @Test func mutualTLSWithPassword() throws {
            let pki = try TestPKI()
            let secrets = TemporaryDirectory("vigil-secrets")
            let passwd = try TestPKI.passwordFile(in: secrets, user: "vigil", password: "s3cret pass")
            try "s3cret pass\n".write(toFile: secrets.file("local.pass"), atomically: true, encoding: .utf8)
            let broker = try Broker(
                listenerConfig: pki.brokerConfig(requireClientCertificate: true), allowAnonymous: false,
                extraConfig: "password_file \(passwd)")
            let daemon = try DaemonProcess(config: config(port: broker.port, pki: pki, passwordFile: secrets.file("local.pass")))
            try daemon.start()
            // Publish over the same TLS listener with a plain client of our own.
            var e = MQTTEndpoint(host: "localhost", port: broker.port, clientID: "pub-tls")
            e.username = "vigil"
            e.password = "s3cret pass"
            e.tls = TLSOptions(caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey)
            let p = try PacedPublisher(endpoint: e, qos: 1)
            #expect(p.connect())
            _ = p.run(count: 10, rate: 0) { i, t in ("energy/s/m/v", TestPublisher.payload(seq: i, at: t)) }
            #expect(p.waitForAcknowledgements(10))
            p.close()
            #expect(eventually { daemon.storedCount() == 10 })
            #expect(daemon.stop() == 0)
        }

        @Test func wrongPasswordOrCAIsRefusedAndLogged() throws {
            let pki = try TestPKI()
            let secrets = TemporaryDirectory("vigil-secrets")
            let passwd = try TestPKI.passwordFile(in: secrets, user: "vigil", password: "right")
            try "wrong\n".write(toFile: secrets.file("local.pass"), atomically: true, encoding: .utf8)
            let broker = try Broker(
                listenerConfig: pki.brokerConfig(requireClientCertificate: true), allowAnonymous: false,
                extraConfig: "password_file \(passwd)")
            let daemon = try DaemonProcess(config: config(port: broker.port, pki: pki, passwordFile: secrets.file("local.pass")))
            try daemon.start(waitConnected: false)
            #expect(eventually { daemon.log.contains("refused the connection: Connection Refused: not authorised") }, "\(daemon.log)")
            // One refusal, one line: not also "connection lost" and "connection failed" for it.
            #expect(!daemon.log.contains("MQTT connection lost"))
            daemon.stop()

            try "right\n".write(toFile: secrets.file("local.pass"), atomically: true, encoding: .utf8)
            let wrongCA = try DaemonProcess(config: config(port: broker.port, pki: pki, passwordFile: secrets.file("local.pass"), ca: pki.otherCACert))
            try wrongCA.start(waitConnected: false)
            #expect(eventually { wrongCA.log.contains("certificate verify failed") }, "\(wrongCA.log)")
            #expect(wrongCA.isRunning, "a TLS failure is retried, not fatal")
            wrongCA.stop()

            // A broker whose certificate, signed by the right CA, names another host.
            let elsewhere = try TestPKI(serverNames: "DNS:broker.elsewhere.example")
            let misnamed = try Broker(listenerConfig: elsewhere.brokerConfig(requireClientCertificate: false))
            let wrongHost = try DaemonProcess(config: config(port: misnamed.port, pki: elsewhere, passwordFile: secrets.file("local.pass")))
            try wrongHost.start(waitConnected: false)
            #expect(eventually { wrongHost.log.contains("host name verification failed") }, "\(wrongHost.log)")
            #expect(wrongHost.status()?.local.connected != true)
            wrongHost.stop()
        }
    }
}
