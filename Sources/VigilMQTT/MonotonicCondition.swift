#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on `CLOCK_MONOTONIC`, which the wall clock's steps do not move.
public struct MonotonicDeadline: Comparable, Sendable {
    public var nanos: Int64

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

/// A lock with a condition whose timed waits run on `CLOCK_MONOTONIC`.
///
/// Foundation's `NSCondition.wait(until:)` waits for a `Date`, on the wall clock: a clock
/// stepped back an hour during the wait makes a half-second wait last an hour. This one
/// sets the condition's clock to `CLOCK_MONOTONIC` (`pthread_condattr_setclock`).
///
/// - Important: used like `NSCondition`: `lock()`, waits and signals, `unlock()`.
public final class MonotonicCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
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

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }
    public func signal() { pthread_cond_signal(cond) }
    public func broadcast() { pthread_cond_broadcast(cond) }

    /// Waits for a signal (the lock held).
    public func wait() { pthread_cond_wait(cond, mutex) }

    /// Waits for a signal or the deadline (the lock held); false once the deadline has passed.
    @discardableResult
    public func wait(until deadline: MonotonicDeadline) -> Bool {
        var ts = timespec(tv_sec: Int(deadline.nanos / 1_000_000_000), tv_nsec: Int(deadline.nanos % 1_000_000_000))
        let rc = pthread_cond_timedwait(cond, mutex, &ts)
        return rc != ETIMEDOUT
    }

    /// Runs `body` with the lock held.
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
