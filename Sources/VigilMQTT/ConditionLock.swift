#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on `CLOCK_MONOTONIC`, which the wall clock's steps do not move.
public struct MonotonicDeadline: Comparable, Sendable {
    public var nanos: Int64

    public init(nanos: Int64) { self.nanos = nanos }

    public static func now() -> MonotonicDeadline {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicDeadline(nanos: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }

    /// `seconds` from now.
    public static func after(_ seconds: Double) -> MonotonicDeadline {
        MonotonicDeadline(nanos: now().nanos + Int64(max(0, seconds) * 1e9))
    }

    public var isPast: Bool { self <= .now() }

    public static func < (a: MonotonicDeadline, b: MonotonicDeadline) -> Bool { a.nanos < b.nanos }
}

/// State reachable only with its lock held, and a condition to wait on for it to change,
/// whose timed waits run on `CLOCK_MONOTONIC`.
///
/// Like swift-service-lifecycle's `LockedValueBox` or NIO's `NIOLockedValueBox`, with
/// waits: `withLock` hands the state to a closure, `wait` re-checks a condition on it after
/// every wake-up. Foundation's `NSCondition.wait(until:)` waits for a `Date`, on the wall
/// clock: a clock stepped back an hour during the wait makes a half-second wait last an
/// hour. This one sets the condition's clock to `CLOCK_MONOTONIC` (`pthread_condattr_setclock`).
///
/// - Important: `@unchecked Sendable`: `state` is touched only between
///   `pthread_mutex_lock` and `pthread_mutex_unlock`.
public final class ConditionLock<State>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var state: State

    public init(_ state: State) {
        self.state = state
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        #if os(Linux)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the lock held.
    public func withLock<T>(_ body: (inout State) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }

    /// Runs `body` with the lock held, then wakes every waiter.
    public func withLockBroadcasting<T>(_ body: (inout State) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(cond)
            pthread_mutex_unlock(mutex)
        }
        return try body(&state)
    }

    /// Waits, the lock released meanwhile, while `waiting` says so (it is asked again after
    /// every wake-up, and may note on the state that someone waits), or until `deadline`;
    /// then runs `body` with the lock held.
    /// - Parameter deadline: nil waits for as long as `waiting` says.
    public func wait<T>(
        until deadline: MonotonicDeadline? = nil, while waiting: (inout State) -> Bool, then body: (inout State) throws -> T
    ) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var ts = deadline.map { timespec(tv_sec: Int($0.nanos / 1_000_000_000), tv_nsec: Int($0.nanos % 1_000_000_000)) }
        while waiting(&state) {
            if ts != nil {
                if pthread_cond_timedwait(cond, mutex, &ts!) == ETIMEDOUT { break }
            } else {
                pthread_cond_wait(cond, mutex)
            }
        }
        return try body(&state)
    }

    /// Wakes every waiter, from inside a `wait`'s `waiting` closure (the lock is held
    /// there: `broadcast()` would deadlock). The waiters run once the caller waits.
    public func broadcastFromWait() {
        pthread_cond_broadcast(cond)
    }

    /// Wakes every waiter (they look at the state again).
    public func broadcast() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }
}
