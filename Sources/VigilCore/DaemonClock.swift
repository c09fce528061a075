#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// vigil's own time line: the wall clock as read at start, carried forward by the clock
/// that never steps (`CLOCK_BOOTTIME`: like `CLOCK_MONOTONIC`, slewed by NTP together with
/// the wall clock, and still running while the machine is suspended).
///
/// Everything inside the daemon runs on it: rule timers (`for`, `clear_for`, stale),
/// rule windows, the closing of aggregate windows, retention, and the time given to a
/// reading that carries none. So a wall clock stepped while vigil runs (back an hour, on a
/// day) neither fires a timer early nor holds it late, and aggregate windows neither close
/// all at once nor repeat.
///
/// The time line follows the wall clock where that is smooth: an offset up to `stepLimit`
/// (2 s: an NTP step of a few hundred milliseconds, a leap second) is slewed away at most
/// `maxSlew` (1 ms per second), so the time line never goes back. A larger offset is a step:
/// reported once, kept out of the time line, and taken over when vigil restarts.
public struct TimeLine: Sendable {
    /// A wall clock further than this from the time line has been stepped. Above a leap
    /// second (which a clock read to the microsecond can measure a hair over 1 s) and the
    /// steps NTP clients make when they are nearly in sync.
    public static let stepLimit: Int64 = 2_000_000
    /// The fastest the time line catches up with the wall clock: 1,000 ppm.
    public static let maxSlew = 0.001

    private var baseTime: Int64  // micros on the time line at baseMono
    private var baseMono: Int64  // nanoseconds of the never-stepping clock
    /// What is left to slew away, micros: the correction grows at maxSlew and stops there,
    /// however long until the next `adjust`.
    private var slew: Int64 = 0
    /// The wall clock minus the time line, microseconds, at the last `adjust`.
    public private(set) var offset: Int64 = 0
    /// Whether the wall clock is stepped away from the time line (by `offset`).
    public private(set) var stepped = false
    /// The offset last reported as a step.
    private var reported: Int64 = 0

    public init(wall: Timestamp, mono: Int64) {
        baseTime = wall.micros
        baseMono = mono
    }

    /// The time line at a reading of the never-stepping clock (nanoseconds, not before the last `adjust`).
    public func time(mono: Int64) -> Timestamp {
        let elapsed = (mono - baseMono) / 1000
        let correction = min(abs(slew), Int64(Double(elapsed) * Self.maxSlew))
        return Timestamp(micros: baseTime + elapsed + (slew < 0 ? -correction : correction))
    }

    /// What `adjust` saw: the wall clock stepped away from the time line (again), or came back.
    public enum Event: Sendable, Equatable {
        case stepped(offset: Int64)
        case back(offset: Int64)
    }

    /// Compares the time line with the wall clock (each second or so): slews towards a small
    /// offset, reports each step once.
    public mutating func adjust(wall: Timestamp, mono: Int64) -> Event? {
        let now = time(mono: mono)
        baseTime = now.micros
        baseMono = mono
        offset = wall.micros - now.micros
        if abs(offset) > Self.stepLimit {
            slew = 0
            // A step while already stepped counts when it moves the wall clock again.
            if stepped && abs(offset - reported) <= Self.stepLimit { return nil }
            stepped = true
            reported = offset
            return .stepped(offset: offset)
        }
        slew = offset
        if stepped {
            stepped = false
            reported = 0
            return .back(offset: offset)
        }
        return nil
    }
}

/// Where the daemon's parts read the time. `DaemonClock` in the daemon; tests pass a
/// manual clock (`VigilTestSupport.ManualClock`) and move it themselves, so that ingest,
/// rules and windows run in-process without sleeping.
public protocol VigilClock: Sendable {
    /// Now on the daemon's time line.
    func now() -> Timestamp
    /// Compares the time line with the wall clock; see `TimeLine.adjust`.
    func adjust() -> TimeLine.Event?
    /// The wall clock minus the time line at the last `adjust`, and whether that is a step.
    var offset: (micros: Int64, stepped: Bool) { get }
}

/// The process's time line (see `TimeLine`) on the real clocks, read by any thread. The
/// daemon makes one at start and hands it to each part.
public final class DaemonClock: VigilClock {
    private let line: Mutex<TimeLine>

    /// A time line that starts at the wall clock's now.
    public init() { line = Mutex(TimeLine(wall: .now(), mono: Self.mono())) }

    /// The never-stepping clock, nanoseconds.
    public static func mono() -> Int64 {
        var ts = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_BOOTTIME, &ts)
        #else
        clock_gettime(CLOCK_MONOTONIC, &ts)
        #endif
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Now on the time line.
    public func now() -> Timestamp {
        line.withLock { $0.time(mono: Self.mono()) }
    }

    /// Compares with the wall clock; see `TimeLine.adjust`.
    public func adjust() -> TimeLine.Event? {
        line.withLock { $0.adjust(wall: .now(), mono: Self.mono()) }
    }

    /// The wall clock minus the time line at the last `adjust`, and whether that is a step.
    public var offset: (micros: Int64, stepped: Bool) { line.withLock { ($0.offset, $0.stepped) } }
}
