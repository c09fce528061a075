import ArgumentParser
import Foundation
import Logging
import Synchronization
import VigilCore
import VigilMQTT
import VigilSimulator

/// Set by SIGINT/SIGTERM while `vigil simulate` runs.
let simulateStop = Atomic<Bool>(false)

extension VigilCommand {
    struct Simulate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish realistic, paced, sequence-numbered readings of the three networks.",
            discussion: """
                Topics: {energy|water|city}/{site}/{device} (json), .../{device}/senml (senml) and
                .../{device}/{metric} (number). Each json and senml message carries "seq" and its send
                time. Anomalies: KIND[@TARGET][:START[+DURATION]], TARGET a filter over
                network/site/device, START from the beginning, e.g.
                  --anomaly voltage-sag@energy/substation-1/meter-1:10s+30s
                Kinds:
                \(Anomaly.Kind.allCases.map { "  \($0.rawValue): \($0.summary)" }.joined(separator: "\n"))
                """)

        @Option(help: "The broker, HOST:PORT.") var broker: String = "127.0.0.1:1883"
        @Option(help: "Comma-separated networks.") var networks: String = "energy,water,urban"
        @Option(help: "Sites per network.") var sites: Int = 2
        @Option(help: "Devices per site and network.") var devices: Int = 3
        @Option(help: "Readings per second, paced open loop (0: as fast as possible).") var rate: Double = 100
        @Option(help: "How long to run (30s, 5m); default until interrupted.") var duration: String?
        @Option(help: "Stop after this many readings.") var count: Int?
        @Option(parsing: .singleValue, help: "An anomaly; repeat for several.") var anomaly: [String] = []
        @Option(help: "MQTT QoS, 0 or 1.") var qos: Int32 = 1
        @Option(help: "number, json, senml, mixed (energy and water json, urban senml) or hj212 (HJ 212 frames on hj212/{site}/{device}).")
        var format: String = "mixed"
        @Option(help: "HOST:PORT of an HJ 212 listener (hj212.listen): the air, noise and water-quality stations connect as data loggers and send HJ 212 frames over TCP instead of MQTT.")
        var hj212: String?
        @Option(help: "Random seed: the same seed gives the same values.") var seed: UInt64 = 1
        @Option(help: "Hours east of UTC for daily cycles.") var utcOffset: Double = 8
        @Option(help: "Run the weather, rivers and roads this many times faster than the clock (demos); readings keep the true time.")
        var speedUp: Double = 1
        @Option(help: "MQTT client id (default: vigil-sim-<pid>).") var clientId: String?
        @Flag(help: "No progress line.") var quiet = false

        func validate() throws {
            guard VigilConfig.parseListen(broker) != nil else { throw ValidationError("--broker must be HOST:PORT") }
            guard SimulationFormat(rawValue: format) != nil else {
                throw ValidationError("--format must be one of number, json, senml, mixed, hj212")
            }
            if let hj212, VigilConfig.parseListen(hj212) == nil { throw ValidationError("--hj212 must be HOST:PORT") }
            for n in networks.split(separator: ",") where DeviceKind.kinds(of: String(n)).isEmpty {
                throw ValidationError("--networks: unknown network '\(n)' (energy, water, urban)")
            }
            if let d = duration, TimeSpan(parsing: d) == nil { throw ValidationError("--duration: cannot read '\(d)'") }
            for a in anomaly where Anomaly(parsing: a) == nil {
                throw ValidationError(
                    "--anomaly '\(a)': expected KIND[@TARGET][:START[+DURATION]] with KIND one of \(Anomaly.Kind.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            guard qos == 0 || qos == 1 else { throw ValidationError("--qos must be 0 or 1") }
            guard speedUp >= 1, speedUp <= 10_000 else { throw ValidationError("--speed-up must be from 1 to 10000") }
            guard sites >= 1, devices >= 1, rate >= 0 else { throw ValidationError("--sites and --devices at least 1, --rate at least 0") }
        }

        func run() async throws {
            VigilLogHandler.bootstrap(level: .warning)
            var options = SimulationOptions()
            options.networks = networks.split(separator: ",").map(String.init)
            options.sites = sites
            options.devices = devices
            options.format = SimulationFormat(rawValue: format)!
            options.seed = seed
            options.utcOffsetHours = utcOffset
            options.speedUp = speedUp
            options.anomalies = anomaly.compactMap { Anomaly(parsing: $0) }
            signal(SIGINT) { _ in simulateStop.store(true, ordering: .relaxed) }
            signal(SIGTERM) { _ in simulateStop.store(true, ordering: .relaxed) }
            if let hj212 {
                options.format = .hj212
                let (host, port) = VigilConfig.parseListen(hj212)!
                let report = HJ212SimulationRun(
                    options: options, host: host, port: port, rate: rate, duration: duration.flatMap { TimeSpan(parsing: $0) },
                    count: count
                ).run()
                if !quiet {
                    printError(
                        String(
                            format: "vigil simulate: %d readings in %d HJ 212 frames over TCP over %.1fs, %d answered (CN=9014), %d connections",
                            report.readings, report.frames, report.seconds, report.answers, report.connects))
                }
                if report.frames == 0 { throw ExitCode(1) }
                return
            }
            let (host, port) = VigilConfig.parseListen(broker)!
            var endpoint = MQTTEndpoint(host: host, port: port, clientID: clientId ?? "vigil-sim-\(getpid())")
            endpoint.cleanSession = clientId == nil
            let publisher = try PacedPublisher(endpoint: endpoint, qos: qos, logger: Logger(label: "vigil.simulate"))
            guard publisher.connect(timeout: 15) else {
                printError("vigil simulate: cannot connect to \(broker)")
                throw ExitCode(1)
            }
            let report = SimulationRun(
                options: options, rate: rate, duration: duration.flatMap { TimeSpan(parsing: $0) }, count: count,
                quiet: quiet
            ).run(publisher: publisher)
            if qos == 1 && !publisher.waitForAcknowledgements(report.messages, timeout: 30) {
                printError("vigil simulate: \(report.messages - publisher.acknowledged) messages not acknowledged by the broker")
            }
            publisher.close()
            if !quiet {
                printError(
                    String(
                        format: "vigil simulate: %d readings in %d messages over %.1fs (%.0f readings/s), last seq %d",
                        report.readings, report.messages, report.seconds, Double(report.readings) / max(report.seconds, 0.001),
                        report.lastSequence))
            }
        }
    }
}

/// One run of the simulator over a publisher: paced in readings per second.
struct SimulationRun {
    let options: SimulationOptions
    let rate: Double
    let duration: TimeSpan?
    let count: Int?
    let quiet: Bool

    struct Report {
        var readings = 0
        var messages = 0
        var seconds = 0.0
        var lastSequence = 0
    }

    func run(publisher: PacedPublisher) -> Report {
        var sim = Simulator(options: options)
        let start = Timestamp.now()
        sim.begin(at: start)
        let perMessage = sim.readingsPerMessage
        let messageRate = rate > 0 ? rate / perMessage : 0
        let deadline = duration.map { start.adding($0) }
        var report = Report()
        var lastPrint = DispatchTime.now().uptimeNanoseconds
        var lastReadings = 0
        let began = lastPrint
        let limit = count.map { Int((Double($0) / perMessage).rounded(.up)) } ?? Int.max
        let result = publisher.run(
            count: limit, rate: messageRate,
            shouldStop: {
                if simulateStop.load(ordering: .relaxed) { return true }
                if let deadline, Timestamp.now() >= deadline { return true }
                if let count, report.readings >= count { return true }
                return false
            }
        ) { i, t in
            let next = sim.next(at: t)
            if next != nil { report.messages += 1 }
            if !quiet {
                let now = DispatchTime.now().uptimeNanoseconds
                if now - lastPrint >= 1_000_000_000 {
                    let dt = Double(now - lastPrint) / 1e9
                    let elapsed = Double(now - began) / 1e9
                    let behind = messageRate > 0 ? max(0, elapsed - Double(i) / messageRate) : 0
                    var line = String(
                        format: "simulate: %d readings, %.0f/s, seq %d", report.readings,
                        Double(report.readings - lastReadings) / dt, sim.sequence)
                    if behind > 0.5 {
                        line += String(format: "; BEHIND schedule by %.1fs: the broker or network cannot take %.0f readings/s", behind, rate)
                    }
                    printError(line)
                    lastPrint = now
                    lastReadings = report.readings
                }
            }
            guard let m = next else { return nil }
            report.readings += m.readings
            return (m.topic, m.payload)
        }
        report.seconds = result.seconds
        report.lastSequence = sim.sequence
        return report
    }
}

/// `vigil simulate --hj212 HOST:PORT`: each station a data logger with its own TCP
/// connection to the listener, paced in readings per second; answers (CN=9014) are read and
/// counted. A connection that fails is opened again on the station's next frame.
struct HJ212SimulationRun {
    let options: SimulationOptions
    let host: String
    let port: Int
    let rate: Double
    let duration: TimeSpan?
    let count: Int?

    struct Report {
        var readings = 0
        var frames = 0
        var answers = 0
        var connects = 0
        var seconds = 0.0
    }

    func run() -> Report {
        var sim = Simulator(options: options)
        let start = Timestamp.now()
        sim.begin(at: start)
        let frameRate = rate > 0 ? rate / sim.readingsPerMessage : 0
        var report = Report()
        var sockets: [String: Int32] = [:]
        var buffer = [UInt8](repeating: 0, count: 4096)
        defer { for (_, fd) in sockets { close(fd) } }
        let began = Monotonic.seconds()
        var sent = 0
        while !simulateStop.load(ordering: .relaxed) {
            if let duration, Timestamp.now() >= start.adding(duration) { break }
            if let count, report.readings >= count { break }
            if frameRate > 0 {
                let due = began + Double(sent) / frameRate
                let wait = due - Monotonic.seconds()
                if wait > 0 { usleep(UInt32(min(wait, 0.5) * 1_000_000)) }
                if Monotonic.seconds() < due { continue }
            }
            sent += 1
            guard let m = sim.next(at: Timestamp.now()) else { continue }
            if sockets[m.topic] == nil, let fd = Self.connect(host: host, port: port) {
                sockets[m.topic] = fd
                report.connects += 1
            }
            guard let fd = sockets[m.topic] else { continue }
            let ok = m.payload.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) == $0.count }
            if ok {
                report.frames += 1
                report.readings += m.readings
            } else {
                close(fd)
                sockets[m.topic] = nil
            }
            // Answers so far, without waiting.
            for (_, fd) in sockets {
                while true {
                    let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                    if n <= 0 { break }
                    report.answers += buffer[0..<n].filter { $0 == 10 }.count
                }
            }
        }
        // The last answers: they come after the listener's commit.
        let end = Monotonic.seconds() + 2
        while report.answers < report.frames && Monotonic.seconds() < end {
            var got = false
            for (_, fd) in sockets {
                let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if n > 0 {
                    report.answers += buffer[0..<n].filter { $0 == 10 }.count
                    got = true
                }
            }
            if !got { usleep(10_000) }
        }
        report.seconds = Monotonic.seconds() - began
        return report
    }

    static func connect(host: String, port: Int) -> Int32? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(first) }
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let a = p {
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 {
                    var one: Int32 = 1
                    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    return fd
                }
                close(fd)
            }
            p = a.pointee.ai_next
        }
        return nil
    }
}
