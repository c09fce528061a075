#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Readings of one series over a sliding window, kept so that every statistic of a rule is
/// maintained incrementally: a new reading and an expiry each cost O(1) amortised (min and
/// max through monotonic queues of slots).
///
/// The window at time `now` holds the readings with `now - window < t <= now`. It is exact
/// while readings are sparser than `window / 256`; denser readings share a slot (count,
/// sum, min, max, first, last and counter growth of the slot are exact), and a slot leaves
/// the window with its newest reading. So memory per window is bounded by 257 slots
/// whatever the rate (a ring of at most 512). A reading older than the newest one joins the
/// newest slot. A window for `leq` also keeps the sum of each reading's sound energy, 10^(L/10).
///
/// The slots are a ring in memory of its own, reached through a pointer kept in the window:
/// a reading that starts a slot writes it without first reading the ring's header or its
/// last slot, and the times an expiry and a merge compare with are kept beside the totals.
/// With some 60,000 windows in a gateway's engine those reads were cache misses, most of
/// the cost of a reading. A copy shares the ring until either is changed through `add` or
/// `expire` (copy on write); the engine, which never copies its windows, changes them
/// through the `Unshared` methods, which skip the check (it reads the ring's reference count).
public struct SlidingWindow {
    struct Slot {
        var firstT: Int64
        var lastT: Int64
        var count: Int
        var sum: Double
        /// Sum of 10^(v/10), for `leq` (0 when the window does not track it).
        var energy: Double
        var min: Double
        var max: Double
        var first: Double
        var last: Double
        /// Counter growth of this slot's readings, each against the reading before it.
        var growth: Double
        /// The growth its first reading contributed (against a reading that may have left the window).
        var firstGrowth: Double
    }

    /// The ring's memory; the window reaches it through `ring`, not through this object.
    final class Storage {
        let base: UnsafeMutablePointer<Slot>
        init(capacity: Int) { base = .allocate(capacity: capacity) }
        deinit { base.deallocate() }  // Slot is trivial: nothing to deinitialize
    }

    // The fields a reading touches first, the min and max queues (only for those stats) last.
    private var ring: UnsafeMutablePointer<Slot>?
    /// The ring's capacity - 1 (a power of two; -1: no ring yet).
    private var mask = -1
    /// The absolute number of the oldest slot (slot k lives at `ring[k & mask]`), and how many there are.
    private var first = 0
    private var n = 0
    /// The oldest slot's newest reading (when it expires) and the newest slot's first one
    /// (whether a reading joins it), kept here so that neither needs a look at the ring.
    private var headLastT: Int64 = 0
    private var tailFirstT: Int64 = 0
    private var count = 0
    private var sum = 0.0
    private var energy = 0.0
    private var growth = 0.0
    /// The newest reading ever seen, for counter growth across expiry.
    private var previous: (t: Int64, v: Double)?
    public let window: Int64
    let resolution: Int64
    private var evictions = 0
    /// Whether it keeps sound energy (its rule's stat is `leq`).
    let tracksEnergy: Bool
    /// Whether it keeps the monotonic queues for min and max (without them, min and max
    /// scan the slots): a rule of another stat saves two buffers to touch per reading.
    let tracksExtrema: Bool
    private var storage: Storage?
    /// Monotonic queues of absolute slot numbers: maxima decreasing, minima increasing, so the
    /// window's max and min are at their fronts, whatever expires.
    private var maxQueue: [Int] = []
    private var maxHead = 0
    private var minQueue: [Int] = []
    private var minHead = 0

    public init(window: TimeSpan, energy: Bool = false, extrema: Bool = true) {
        self.window = max(0, window.micros)
        self.resolution = max(1, self.window / 256)
        self.tracksEnergy = energy
        self.tracksExtrema = extrema
    }

    /// The sound energy of a level in dB, relative to 0 dB.
    @inline(__always)
    public static func energy(_ level: Double) -> Double { exp(level * (0.1 * 2.302_585_092_994_046)) }

    public var isEmpty: Bool { n == 0 }
    public var readings: Int { count }
    /// How many slots its ring has room for (memory, for tests).
    var slotCapacity: Int { mask + 1 }

    /// Slot `k` (an absolute number of a slot in the window).
    @inline(__always)
    private func slot(_ k: Int) -> UnsafeMutablePointer<Slot> { ring.unsafelyUnwrapped + (k & mask) }

    @inline(__always)
    private var tail: UnsafeMutablePointer<Slot> { slot(first + n - 1) }

    public mutating func add(_ value: Double, at t: Timestamp) {
        makeUnique()
        addUnshared(value, at: t)
    }

    /// Drops what has left the window at `now`.
    public mutating func expire(now: Timestamp) {
        makeUnique()
        expireUnshared(now: now)
    }

    /// A copy shares the ring: the first change takes a ring of its own.
    private mutating func makeUnique() {
        if storage != nil, !isKnownUniquelyReferenced(&storage) { moveRing(capacity: mask + 1) }
    }

    /// The slots into a new ring of `capacity` (a power of two, at least `n`).
    private mutating func moveRing(capacity: Int) {
        let new = Storage(capacity: capacity)
        for k in first..<(first + n) { (new.base + (k & (capacity - 1))).initialize(to: slot(k).pointee) }
        storage = new
        ring = new.base
        mask = capacity - 1
    }

    /// `add` for a window that is never copied (the engine's): no uniqueness check.
    mutating func addUnshared(_ value: Double, at t: Timestamp) {
        let ts = t.micros
        let e = tracksEnergy ? Self.energy(value) : 0
        let g: Double
        if let p = previous {
            if ts < p.t {
                // Late: it joins the newest slot; counter growth is left alone.
                if n > 0 {
                    let s = tail
                    s.pointee.count += 1
                    s.pointee.sum += value
                    s.pointee.energy += e
                    s.pointee.min = Swift.min(s.pointee.min, value)
                    s.pointee.max = Swift.max(s.pointee.max, value)
                    count += 1
                    sum += value
                    energy += e
                    tailChanged()
                }
                return
            }
            g = value >= p.v ? value - p.v : value  // a drop is a reset: the counter grew from 0
        } else {
            g = 0
        }
        previous = (ts, value)
        count += 1
        sum += value
        energy += e
        growth += g
        if window > 0, n > 0, ts - tailFirstT < resolution {
            let s = tail
            s.pointee.lastT = ts
            s.pointee.count += 1
            s.pointee.sum += value
            s.pointee.energy += e
            s.pointee.min = Swift.min(s.pointee.min, value)
            s.pointee.max = Swift.max(s.pointee.max, value)
            s.pointee.last = value
            s.pointee.growth += g
            if n == 1 { headLastT = ts }
            tailChanged()
            return
        }
        if n > mask { moveRing(capacity: Swift.max(4, 2 * (mask + 1))) }
        slot(first + n).initialize(
            to: Slot(
                firstT: ts, lastT: ts, count: 1, sum: value, energy: e, min: value, max: value, first: value, last: value,
                growth: g, firstGrowth: g))
        n += 1
        tailFirstT = ts
        if n == 1 { headLastT = ts }
        tailChanged()
        if window == 0 {
            // Only the latest reading matters.
            if n > 1 { dropFront() }
        }
    }

    /// The newest slot was added or grew: it goes to the back of both queues, past every
    /// older slot it outdoes (those can never be the max or min again while it is there).
    private mutating func tailChanged() {
        guard tracksExtrema else { return }
        let k = first + n - 1
        let t = slot(k).pointee
        while maxQueue.count > maxHead, slot(maxQueue[maxQueue.count - 1]).pointee.max <= t.max { maxQueue.removeLast() }
        maxQueue.append(k)
        while minQueue.count > minHead, slot(minQueue[minQueue.count - 1]).pointee.min >= t.min { minQueue.removeLast() }
        minQueue.append(k)
    }

    /// `addUnshared` then `expireUnshared`, in one access (an element of an array: one exclusivity check).
    @inline(__always)
    mutating func addUnshared(_ value: Double, at t: Timestamp, expiring now: Timestamp) {
        addUnshared(value, at: t)
        expireUnshared(now: now)
    }

    /// When the oldest slot leaves the window (and the statistics change without a reading).
    public var nextExpiry: Int64? {
        guard window > 0, n > 0 else { return nil }
        return headLastT + window
    }

    /// `expire` for a window that is never copied (the engine's): no uniqueness check.
    @inline(__always)
    mutating func expireUnshared(now: Timestamp) {
        guard window > 0 else { return }
        let edge = now.micros - window
        while n > 0, headLastT <= edge { dropFront() }
    }

    private mutating func dropFront() {
        let s = slot(first).pointee
        let gone = first
        count -= s.count
        sum -= s.sum
        energy -= s.energy
        growth -= s.growth
        first += 1
        n -= 1
        evictions += 1
        if tracksExtrema {
            if maxQueue.count > maxHead && maxQueue[maxHead] == gone { maxHead += 1 }
            if minQueue.count > minHead && minQueue[minHead] == gone { minHead += 1 }
        }
        if n == 0 {
            sum = 0
            energy = 0
            growth = 0
            count = 0
            maxQueue.removeAll(keepingCapacity: true)
            maxHead = 0
            minQueue.removeAll(keepingCapacity: true)
            minHead = 0
            return
        }
        headLastT = slot(first).pointee.lastT
        if maxHead > 64 && maxHead * 2 > maxQueue.count {
            maxQueue.removeFirst(maxHead)
            maxHead = 0
        }
        if minHead > 64 && minHead * 2 > minQueue.count {
            minQueue.removeFirst(minHead)
            minHead = 0
        }
        if evictions >= 4096 {
            // Re-add from the slots so that float drift of add-and-subtract cannot build up.
            evictions = 0
            sum = 0
            energy = 0
            growth = 0
            for k in first..<(first + n) {
                let s = slot(k)
                sum += s.pointee.sum
                energy += s.pointee.energy
                growth += s.pointee.growth
            }
        }
    }

    /// The level of a mean sound energy: 10 log10(energy / count).
    /// Rounded to a millionth of a dB, so that a steady 60 dB(A) is 60, not 60.000000000000014.
    static func level(energy: Double, count: Int) -> Double? {
        guard count > 0, energy > 0 else { return nil }
        return (10 * log10(energy / Double(count)) * 1e6).rounded() / 1e6
    }

    /// The statistic over what is in the window now; nil where it is undefined (no reading;
    /// for rate, fewer than two readings apart in time). Inlined: called on an element of
    /// the engine's arrays, a call copied the window (176 bytes) to pass it.
    @inline(__always)
    public func value(_ stat: RuleStat) -> Double? {
        switch stat {
        case .count: return Double(count)
        case .sum: return n == 0 ? 0 : sum
        default: break
        }
        guard n > 0 else { return nil }
        switch stat {
        case .last: return tail.pointee.last
        case .mean: return sum / Double(count)
        case .min:
            guard tracksExtrema else { return (first..<(first + n)).lazy.map { slot($0).pointee.min }.min() }
            return slot(minQueue[minHead]).pointee.min
        case .max:
            guard tracksExtrema else { return (first..<(first + n)).lazy.map { slot($0).pointee.max }.max() }
            return slot(maxQueue[maxHead]).pointee.max
        case .rate:
            let f = slot(first).pointee
            let l = tail.pointee
            let dt = Double(l.lastT - f.firstT) / 3_600_000_000
            guard dt > 0 else { return nil }
            return (l.last - f.first) / dt
        case .increase:
            return growth - slot(first).pointee.firstGrowth
        case .leq:
            return Self.level(energy: energy, count: count)
        case .count, .sum:
            return nil
        }
    }
}
