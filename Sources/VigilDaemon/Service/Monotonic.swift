import Dispatch

/// The never-stepping clock the daemon schedules its own work on (commit intervals, ticks,
/// the watchdog); vigil's time line for data is the `VigilClock`.
enum Monotonic {
    static func nanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    static func seconds() -> Double { Double(nanos()) / 1e9 }
}
