import Foundation
import Logging
import VigilCore

/// Compares vigil's time line with the wall clock, each second and when a reading's time
/// is rejected: says so when the wall clock is stepped (vigil keeps its time line until it
/// restarts), and gives the decoder the offset of a stepped wall clock, so that timestamps
/// that follow it move onto the time line.
struct ClockWatch {
    let clock: any VigilClock
    let logger: Logger

    /// Looks at the clocks; returns the offset the decoder should apply (zero unless stepped).
    mutating func look(_ stats: inout IngestSnapshot) -> TimeSpan {
        let event = clock.adjust()
        let (offset, stepped) = clock.offset
        stats.clockOffset = TimeSpan(micros: offset)
        stats.clockStepped = stepped
        switch event {
        case .stepped(let o):
            stats.clockSteps += 1
            logger.warning(
                "the wall clock was stepped; vigil keeps its own time line (timers, windows and the time of readings without one) until it restarts",
                metadata: ["offset_seconds": "\(Self.seconds(o))"])
        case .back(let o):
            logger.notice("the wall clock is back on vigil's time line", metadata: ["offset_seconds": "\(Self.seconds(o))"])
        case nil:
            break
        }
        return stepped ? TimeSpan(micros: offset) : .zero
    }

    static func seconds(_ micros: Int64) -> String { String(format: "%+.3f", Double(micros) / 1e6) }
}
