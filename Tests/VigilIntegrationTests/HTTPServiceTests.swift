import Foundation
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilDaemon

/// A listening socket on 127.0.0.1:`port`, as another program holding the port would have.
final class PortHolder {
    let fd: Int32

    init?(port: Int) {
        // CLOEXEC: a daemon started after it must not inherit the port.
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard ok, listen(fd, 16) == 0 else {
            close(fd)
            return nil
        }
    }

    func release() { close(fd) }
}

/// The raw bytes of one request's response, read until the server closes.
func rawRequest(port: Int, _ request: String) -> String? {
    guard let fd = FreePort.connectLoopback(port) else { return nil }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    let data = receiveUntilClosed(fd)
    return String(decoding: data, as: UTF8.self)
}

/// `vigil.yaml:LINE:11`, where the test config's `http.listen` value sits.
func listenPlace(_ daemon: DaemonProcess) throws -> String {
    let text = try String(contentsOfFile: daemon.configPath, encoding: .utf8)
    let line = (text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("  listen:") } ?? -2) + 1
    return "vigil.yaml:\(line):11"
}

extension Integration {
    /// The HTTP endpoints are optional: nothing they meet may stop ingest.
    @Suite("HTTP endpoints, optional")
    struct HTTPServiceSuite {
        static func rig(listen: String, extra: String = "") throws -> (Broker, DaemonProcess) {
            let broker = try Broker()
            let daemon = try DaemonProcess(
                config: DaemonProcess.config(localPort: broker.port, extra: "http:\n  listen: \(listen)\n" + extra))
            return (broker, daemon)
        }

        /// A host name passes `vigil check` and works at run time (it ended the daemon with
        /// "inet_pton AF_INET(0)"); a port in use is a warning for `vigil check` with its
        /// place, and at run time a retried error on `vigil status` while ingest goes on.
        @Test func aHostNameAndABusyPortDoNotStopIngest() throws {
            let port = FreePort.next()
            let holder = try #require(PortHolder(port: port))
            let (broker, daemon) = try Self.rig(listen: "localhost:\(port)")
            let check = try daemon.command(["check"])
            #expect(check.status == 0, "\(check.stderr)")
            #expect(
                check.stderr.contains("\(try listenPlace(daemon)): warning: http.listen localhost:\(port): port \(port) on 127.0.0.1 is in use"),
                "\(check.stderr)")
            try daemon.start()
            let publisher = try TestPublisher(broker: broker, topics: ["energy/s1/m/v"])
            publisher.publish(count: 200, rate: 1000)
            publisher.close()
            #expect(eventually { daemon.storedCount() == 200 }, "\(daemon.log)")
            #expect(daemon.isRunning)
            let status = try daemon.command(["status"]).stdout
            #expect(status.contains("http localhost:\(port): NOT LISTENING (retrying; ingest goes on)"), "\(status)")
            #expect(status.contains("Address already in use"), "\(status)")
            #expect(daemon.log.contains("msg=\"HTTP endpoints are not serving; ingest goes on, retrying\""))
            // The port comes free: the next retry listens (backoff from 0.5 s doubling, at most 30 s).
            holder.release()
            #expect(eventually(timeout: 40) { httpGet(port: port, path: "/readyz")?.status == 200 }, "\(daemon.log.suffix(2000))")
            #expect(daemon.stop() == 0)
        }

        /// A malformed address is a mistake with its file:line:column, and the daemon refuses it.
        @Test func aMalformedAddressIsAMistake() throws {
            let (_, daemon) = try Self.rig(listen: "\"::1:9464\"")
            let check = try daemon.command(["check"])
            #expect(check.status == 1)
            #expect(check.stderr.contains("\(try listenPlace(daemon)): http.listen: an IPv6 address goes in brackets: [::1]:9464"), "\(check.stderr)")
        }

        /// Under systemd's default file limit (1,024), 5,000 connections that send half a
        /// request used to exhaust the descriptors (EMFILE), end the HTTP service and with it
        /// the daemon. Now the oldest idle connection goes at the bound, slow ones at the
        /// deadline; ingest and /metrics go on.
        @Test func idleConnectionsCannotHoldTheListener() throws {
            let port = FreePort.next()
            let (broker, daemon) = try Self.rig(listen: "127.0.0.1:\(port)")
            try daemon.start(fileLimit: 1024)
            let flood = try SocketFlood(port: port, count: 5000, seconds: 60)
            #expect(eventually(timeout: 30) { flood.report["connected"] != nil }, "the flood never finished connecting")
            let publisher = try TestPublisher(broker: broker, topics: ["energy/s1/m/v", "energy/s2/m/v"])
            publisher.publish(count: 500, rate: 1000)
            publisher.close()
            #expect(eventually { daemon.storedCount() == 500 }, "ingest stopped under the flood")
            var metrics = try PrometheusText("")
            #expect(eventually(timeout: 15) {
                guard let body = httpGet(port: port, path: "/metrics")?.body, let m = try? PrometheusText(body) else { return false }
                metrics = m
                return true
            }, "/metrics did not answer under the flood")
            #expect(metrics.samples["vigil_readings_stored_total"] == 500)
            #expect((metrics.samples["vigil_http_connections_closed_total{why=\"bound\"}"] ?? 0) > 0)
            #expect((metrics.samples["vigil_http_connections"] ?? 1e9) <= Double(HTTPLimits().maxConnections))
            #expect((metrics.samples["process_open_fds"] ?? 1e9) < 200)
            #expect(daemon.isRunning, "\(daemon.log.suffix(2000))")
            flood.stop()
            // HEAD: the headers of GET, with its Content-Length, and no body.
            let head = try #require(rawRequest(port: port, "HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n"))
            #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n") && head.contains("Content-Length: ") && head.hasSuffix("\r\n\r\n"), "\(head)")
            #expect(rawRequest(port: port, "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")?.hasPrefix("HTTP/1.1 405") == true)
            #expect(rawRequest(port: port, "GET /\(String(repeating: "x", count: 5000)) HTTP/1.1\r\n\r\n")?.hasPrefix("HTTP/1.1 414") == true)
            #expect(rawRequest(port: port, "nonsense\r\n\r\n")?.hasPrefix("HTTP/1.1 400") == true)
            #expect(daemon.stop() == 0)
        }

        /// With fewer descriptors than the connection bound, accept meets EMFILE: it is
        /// logged, counted, shown on `vigil status`, and retried with backoff; ingest goes on
        /// and /metrics answers once the flood is gone.
        @Test func emfileIsRetriedNotFatal() throws {
            let port = FreePort.next()
            let (broker, daemon) = try Self.rig(listen: "127.0.0.1:\(port)")
            try daemon.start(fileLimit: 56)
            let flood = try SocketFlood(port: port, count: 400, seconds: 60)
            #expect(eventually(timeout: 30) { daemon.log.contains("msg=\"HTTP: cannot accept a connection; closed the oldest idle one, ingest goes on\"") },
                "\(daemon.log.suffix(2000))")
            let publisher = try TestPublisher(broker: broker, topics: ["energy/s1/m/v"])
            publisher.publish(count: 200, rate: 1000)
            publisher.close()
            #expect(eventually { daemon.storedCount() == 200 }, "ingest stopped on EMFILE")
            #expect(daemon.log.contains("errno=24"))
            #expect(eventually { (try? daemon.command(["status"]).stdout.contains("accept: Too many open files (errno 24)")) == true })
            flood.stop()
            #expect(eventually(timeout: 15) { httpGet(port: port, path: "/healthz")?.status == 200 })
            #expect(daemon.isRunning)
            #expect(daemon.stop() == 0)
        }

        /// No series for what is not configured (vigil_upstream_connected 0 fired alerts on
        /// every local-only gateway); the build and the process are there; promtool, where
        /// it is installed (CI), accepts a live scrape.
        @Test func metricsForWhatIsConfigured() throws {
            let port = FreePort.next()
            let (localBroker, local) = try Self.rig(listen: "127.0.0.1:\(port)")
            try local.start()
            var body = ""
            #expect(eventually { body = httpGet(port: port, path: "/metrics")?.body ?? ""; return !body.isEmpty })
            let m = try PrometheusText(body)
            #expect(!body.contains("vigil_upstream_connected") && !body.contains("vigil_outbox_"))
            #expect(m.samples["vigil_build_info{version=\"\(BuildInfo.version)\",commit=\"\(BuildInfo.commit)\"}"] == 1)
            for name in ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "process_max_fds", "process_start_time_seconds"] {
                #expect((m.samples[name] ?? 0) > 0, "\(name)")
            }
            #expect(abs((m.samples["process_start_time_seconds"] ?? 0) - Date().timeIntervalSince1970) < 120)
            #expect(m.types["process_cpu_seconds_total"] == "counter")
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") {
                let dir = TemporaryDirectory("vigil-promtool")
                try body.write(toFile: dir.file("scrape"), atomically: true, encoding: .utf8)
                let r = try ChildProcess.run("/bin/sh", ["-c", "/usr/bin/promtool check metrics < \(dir.file("scrape"))"])
                #expect(r.status == 0, "promtool check metrics: \(r.stdout) \(r.stderr)")
            } else {
                print("skipped: promtool check metrics (no /usr/bin/promtool; scripts/deps ci installs it)")
            }
            local.stop()
            let upstream = try Broker()
            let (upBroker, withUpstream) = try Self.rig(listen: "127.0.0.1:\(port)", extra: DaemonProcess.upstreamSection(port: upstream.port))
            try withUpstream.start()
            #expect(eventually { httpGet(port: port, path: "/metrics")?.body.contains("vigil_upstream_connected 1") == true })
            withUpstream.stop()
            _ = (localBroker, upBroker)
        }
    }

    @Suite("Commands for operators")
    struct OperatorCommandSuite {
        /// `vigil --version`: the version of VERSION and the commit (or a plain "unknown").
        @Test func version() throws {
            let r = try DaemonProcess.run(DaemonProcess.binary, ["--version"])
            let version = try String(contentsOf: Repository.root.appendingPathComponent("VERSION"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(r.status == 0)
            #expect(r.stdout.hasPrefix("vigil \(version) (commit "), "\(r.stdout)")
            #expect(r.stdout.range(of: #"\(commit ([0-9a-f]{7,40}(-dirty)?|unknown: [^)]+)\)"#, options: .regularExpression) != nil, "\(r.stdout)")
        }

        /// `vigil check --topic T --payload P`: the subscription, the readings with series and
        /// time, or the reject reason and exit 1; `-` reads the payload from stdin.
        @Test func checkOneMessage() throws {
            let daemon = try DaemonProcess(config: DaemonProcess.config(localPort: 1))
            try "rules:\n  - id: volts\n    match: energy/+/+/voltage\n    op: '>'\n    levels: { red: 250 }\n"
                .write(toFile: daemon.directory.file("rules.d/r.yaml"), atomically: true, encoding: .utf8)
            let good = try daemon.command(["check", "--topic", "energy/sub-3/meter-12/voltage", "--payload", #"{"value": 231.4, "ts": 1796000000.5, "unit": "V"}"#])
            #expect(good.status == 0, "\(good.stderr)")
            #expect(good.stdout.contains("subscription 1 of 3: energy/+/+/+ (network energy, layout energy/{site}/{device}/{metric}, format auto)"), "\(good.stdout)")
            #expect(good.stdout.contains("energy/sub-3/meter-12/voltage = 231.4 V at 2026-11-30T00:53:20.500Z (from the payload)"), "\(good.stdout)")
            #expect(good.stdout.contains("rules: volts"))
            let multi = try DaemonProcess.run(
                "/bin/sh", ["-c", "printf '{\"level\": 4.2, \"flow\": 12}' | \(DaemonProcess.binary) check --config \(daemon.configPath) --topic water/station-7/gauge-1 --payload -"])
            #expect(multi.status == 0 && multi.stdout.contains("2 reading(s):") && multi.stdout.contains("water/station-7/gauge-1/flow = 12"), "\(multi)")
            #expect(multi.stdout.contains("(the time of receipt)"))
            let bad = try daemon.command(["check", "--topic", "energy/sub-3/meter-12/voltage", "--payload", "NaN"])
            #expect(bad.status == 1 && bad.stdout.contains("rejected: not_a_number"), "\(bad)")
            let nowhere = try daemon.command(["check", "--topic", "gas/a/b/c", "--payload", "1"])
            #expect(nowhere.status == 1 && nowhere.stdout.contains("rejected: no_subscription"), "\(nowhere)")
        }

        /// What ends the daemon goes through the logger at critical: priority 2 in the
        /// journal (ArgumentParser used to print it with no priority).
        @Test func fatalErrorsAreCritical() throws {
            let daemon = try DaemonProcess(config: DaemonProcess.config(localPort: 1).replacingOccurrences(of: "state_dir: ./state", with: "state_dir: /proc/vigil-cannot-be-here"))
            try daemon.start(environment: ["JOURNAL_STREAM": "8:1"], waitConnected: false)
            #expect(eventually { !daemon.isRunning })
            #expect(daemon.stop() == 1)
            #expect(daemon.log.contains("<2>level=critical msg=\"cannot start: "), "\(daemon.log)")
            #expect(daemon.log.split(separator: "\n").allSatisfy { $0.hasPrefix("<") }, "\(daemon.log)")
            let broken = try DaemonProcess(config: "gateway_id: gw\n")
            try broken.start(environment: ["JOURNAL_STREAM": "8:1"], waitConnected: false)
            #expect(eventually { !broken.isRunning })
            #expect(broken.log.contains("<2>level=critical msg=\"cannot start: \(broken.configPath):1:1: subscriptions is required"), "\(broken.log)")
        }
    }
}
