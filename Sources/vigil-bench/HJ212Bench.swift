import Foundation
import Synchronization
import VigilCore
import VigilTestSupport

/// HJ 212 over TCP: `loggers` data loggers (one air station each, four values a frame) send
/// real-time frames asking for answers to vigil's listener, each keeping `window` frames in
/// flight (it reads that many answers before it sends more, as a logger with a send queue
/// would). An answer comes only after the commit that holds the frame, so frames answered per
/// second are frames stored per second. Measured from the first frame sent to the last
/// answer read, and the readings checked in the buffer afterwards.
enum HJ212Bench {
    struct Result {
        var loggers: Int
        var frames: Int
        var readings: Int
        var seconds: Double
        var stored: Int64
        var framesPerSecond: Double { Double(frames) / seconds }
        var readingsPerSecond: Double { Double(readings) / seconds }
    }

    static func run(loggers: Int = 10, framesPerLogger: Int, window: Int = 50) throws -> Result {
        let broker = try Broker()
        let port = FreePort.next()
        let stations = (0..<loggers).map { "\"BENCH\($0)\": { network: urban, site: site-\($0), device: aqms-1 }" }
        let daemon = try DaemonProcess(
            config: DaemonProcess.config(
                localPort: broker.port,
                extra: "hj212:\n  listen: 127.0.0.1:\(port)\n"
                    // All loggers are on loopback, one address; each sends as fast as answers come.
                    + "  max_connections_per_peer: \(loggers + 4)\n  max_frames_per_second: 1000000\n  stations:\n"
                    + stations.map { "    " + $0 }.joined(separator: "\n")))
        try daemon.start()
        defer { daemon.stop() }
        guard eventually(timeout: 10, { FreePort.connectLoopback(port).map { close($0) } != nil }) else {
            throw BenchError.notListening
        }
        // Frames made before the clock starts: each its own second (DataTime has whole seconds).
        let now = Timestamp.now()
        let frames: [[[UInt8]]] = (0..<loggers).map { l in
            (0..<framesPerLogger).map { k in
                HJ212Client.frame(
                    mn: "BENCH\(l)", qn: "2026030108000" + HJ212.pad(k % 10000, 4), at: now.subtracting(.seconds(Int64(k + 1))),
                    values: [("a34004", 35 + Double(k % 10)), ("a34002", 70), ("a21004", 40), ("a05024", 90)])
            }
        }
        let answered = Mutex(0)
        let start = Date()
        // One thread per logger, all at once (concurrentPerform would run only as many as there
        // are cores).
        let group = DispatchGroup()
        for l in 0..<loggers {
            group.enter()
            Thread {
                defer { group.leave() }
                logger(l)
            }.start()
        }
        @Sendable func logger(_ l: Int) {
            guard let c = HJ212Client(port: port) else { return }
            var sent = 0
            var got = 0
            while sent < framesPerLogger {
                let n = min(window, framesPerLogger - sent)
                _ = c.send(frames[l][sent..<(sent + n)].flatMap { $0 })
                for _ in 0..<n where c.answer(timeout: 10) != nil { got += 1 }
                sent += n
            }
            answered.withLock { $0 += got }
        }
        group.wait()
        let seconds = Date().timeIntervalSince(start)
        let total = answered.withLock { $0 }
        let stored = (try? daemon.readings("urban/#").count) ?? 0
        // Answered means stored: anything else is a broken row, not a figure.
        guard stored == total * 4, total == loggers * framesPerLogger else {
            throw BenchError.mismatch("\(total) of \(loggers * framesPerLogger) frames answered, \(stored) readings stored, \(total * 4) expected")
        }
        return Result(
            loggers: loggers, frames: total, readings: total * 4, seconds: seconds, stored: Int64(stored))
    }

    enum BenchError: Error { case notListening, mismatch(String) }
}
