import Foundation
import VigilMQTT

/// Runs blocking work (SQLite, libmosquitto) on a thread of its own, so that it never
/// holds one of the few threads of Swift's cooperative pool.
enum DedicatedThread {
    static func run(name: String, _ body: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let t = Thread {
                body()
                done.resume()
            }
            t.name = name
            t.start()
        }
    }
}

/// A flag a thread can sleep on.
final class StopFlag: Sendable {
    private let state = ConditionLock(false)

    func set() { state.withLockBroadcasting { $0 = true } }

    var isSet: Bool { state.withLock { $0 } }

    /// Sleeps up to `seconds`; returns true once the flag is set.
    func wait(seconds: Double) -> Bool {
        state.wait(until: .after(seconds), while: { !$0 }, then: { $0 })
    }
}
