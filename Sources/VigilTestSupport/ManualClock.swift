import Synchronization
import VigilCore

/// A daemon clock that moves only when the test says: the same `TimeLine` as the daemon's,
/// on a never-stepping clock and a wall clock that the test sets.
public final class ManualClock: VigilClock {
    private struct State {
        var line: TimeLine
        var mono: Int64 = 0
        var wall: Timestamp
    }

    private let state: Mutex<State>

    public init(start: Timestamp) {
        state = Mutex(State(line: TimeLine(wall: start, mono: 0), wall: start))
    }

    /// Moves both clocks forward.
    public func advance(_ span: TimeSpan) {
        state.withLock {
            $0.mono += span.micros * 1000
            $0.wall = $0.wall.adding(span)
        }
    }

    /// Steps the wall clock alone (as `date -s` would); the time line notices at the next `adjust`.
    public func stepWall(_ span: TimeSpan) {
        state.withLock { $0.wall = $0.wall.adding(span) }
    }

    public func now() -> Timestamp {
        state.withLock { $0.line.time(mono: $0.mono) }
    }

    public func adjust() -> TimeLine.Event? {
        state.withLock { s in s.line.adjust(wall: s.wall, mono: s.mono) }
    }

    public var offset: (micros: Int64, stepped: Bool) {
        state.withLock { ($0.line.offset, $0.line.stepped) }
    }
}
