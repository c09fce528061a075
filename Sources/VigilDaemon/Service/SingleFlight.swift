import Synchronization

/// A value built at most once per `maxAge` however many ask for it: the first request
/// after the value aged starts one build; requests that come while it runs wait for that
/// build instead of starting their own; requests within `maxAge` of the last build get
/// its result at once. The page's JSON is built this way, so ten browsers polling cost
/// what one does.
final class SingleFlight<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var builtAt = 0.0
        var building = false
        var waiters: [CheckedContinuation<Value, Never>] = []
        var builds: UInt64 = 0
    }

    private enum Role {
        case fresh(Value)
        case leader
        case follower
    }

    private let state = Mutex(State())
    private let maxAge: Double
    private let now: @Sendable () -> Double
    private let build: @Sendable () async -> Value

    /// - Parameters:
    ///   - maxAge: seconds a built value is served before the next request builds anew.
    ///   - now: monotonic seconds (a test passes its own clock).
    ///   - build: makes the value; never runs twice at once.
    init(maxAge: Double, now: @escaping @Sendable () -> Double, build: @escaping @Sendable () async -> Value) {
        self.maxAge = maxAge
        self.now = now
        self.build = build
    }

    /// Builds since start.
    var builds: UInt64 { state.withLock { $0.builds } }
    /// Requests waiting for the build under way.
    var waiting: Int { state.withLock { $0.waiters.count } }

    func get() async -> Value {
        return await withCheckedContinuation { (c: CheckedContinuation<Value, Never>) in
            let t = now()
            let role = state.withLock { s -> Role in
                if !s.building, let v = s.value, t - s.builtAt < maxAge { return .fresh(v) }
                s.waiters.append(c)
                if s.building { return .follower }
                s.building = true
                s.builds += 1
                return .leader
            }
            switch role {
            case .fresh(let v): c.resume(returning: v)
            case .follower: break
            case .leader:
                // A task of its own: a leader whose connection is cancelled (a deadline, a
                // peer gone) must not leave its followers waiting.
                Task { await self.runBuild() }
            }
        }
    }

    private func runBuild() async {
        let v = await build()
        let t = now()
        let waiters = state.withLock { s -> [CheckedContinuation<Value, Never>] in
            s.value = v
            s.builtAt = t
            s.building = false
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in waiters { w.resume(returning: v) }
    }
}
