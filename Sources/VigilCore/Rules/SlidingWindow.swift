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
/// whatever the rate. A reading older than the newest one joins the newest slot. A window
/// for `leq` also keeps the sum of each reading's sound energy, 10^(L/10).
public struct SlidingWindow: Sendable {
    struct Slot: Sendable {
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

    // The fields a reading touches first, the min and max queues (only for those stats) last.
    private var slots: [Slot] = []
    private var head = 0
    /// The absolute number of `slots[0]` (slots dropped from the front before it).
    private var base = 0
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

    public var isEmpty: Bool { head == slots.count }
    public var readings: Int { count }

    public mutating func add(_ value: Double, at t: Timestamp) {
        let ts = t.micros
        let e = tracksEnergy ? Self.energy(value) : 0
        let g: Double
        if let p = previous {
            if ts < p.t {
                // Late: it joins the newest slot; counter growth is left alone.
                if !isEmpty {
                    let i = slots.count - 1
                    slots[i].count += 1
                    slots[i].sum += value
                    slots[i].energy += e
                    slots[i].min = Swift.min(slots[i].min, value)
                    slots[i].max = Swift.max(slots[i].max, value)
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
        if window > 0, !isEmpty, ts - slots[slots.count - 1].firstT < resolution {
            let i = slots.count - 1
            slots[i].lastT = ts
            slots[i].count += 1
            slots[i].sum += value
            slots[i].energy += e
            slots[i].min = Swift.min(slots[i].min, value)
            slots[i].max = Swift.max(slots[i].max, value)
            slots[i].last = value
            slots[i].growth += g
            tailChanged()
            return
        }
        slots.append(
            Slot(
                firstT: ts, lastT: ts, count: 1, sum: value, energy: e, min: value, max: value, first: value, last: value,
                growth: g, firstGrowth: g))
        tailChanged()
        if window == 0 {
            // Only the latest reading matters.
            if slots.count - head > 1 { dropFront() }
        }
    }

    /// The newest slot was added or grew: it goes to the back of both queues, past every
    /// older slot it outdoes (those can never be the max or min again while it is there).
    private mutating func tailChanged() {
        guard tracksExtrema else { return }
        let tail = base + slots.count - 1
        let t = slots[slots.count - 1]
        while maxQueue.count > maxHead, slots[maxQueue[maxQueue.count - 1] - base].max <= t.max { maxQueue.removeLast() }
        maxQueue.append(tail)
        while minQueue.count > minHead, slots[minQueue[minQueue.count - 1] - base].min >= t.min { minQueue.removeLast() }
        minQueue.append(tail)
    }

    /// `add` then `expire`, in one access (an element of an array: one uniqueness check).
    @inline(__always)
    mutating func add(_ value: Double, at t: Timestamp, expiring now: Timestamp) {
        add(value, at: t)
        expire(now: now)
    }

    /// When the oldest slot leaves the window (and the statistics change without a reading).
    public var nextExpiry: Int64? {
        guard window > 0, !isEmpty else { return nil }
        return slots[head].lastT + window
    }

    /// Drops what has left the window at `now`.
    public mutating func expire(now: Timestamp) {
        guard window > 0 else { return }
        let edge = now.micros - window
        while !isEmpty, slots[head].lastT <= edge { dropFront() }
    }

    private mutating func dropFront() {
        let s = slots[head]
        let gone = base + head
        count -= s.count
        sum -= s.sum
        energy -= s.energy
        growth -= s.growth
        head += 1
        evictions += 1
        if tracksExtrema {
            if maxQueue.count > maxHead && maxQueue[maxHead] == gone { maxHead += 1 }
            if minQueue.count > minHead && minQueue[minHead] == gone { minHead += 1 }
        }
        if head == slots.count {
            base += slots.count
            slots.removeAll(keepingCapacity: true)
            head = 0
            sum = 0
            energy = 0
            growth = 0
            count = 0
            maxQueue.removeAll(keepingCapacity: true)
            maxHead = 0
            minQueue.removeAll(keepingCapacity: true)
            minHead = 0
        } else if head > 64 && head * 2 > slots.count {
            slots.removeFirst(head)
            base += head
            head = 0
        }
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
            for i in head..<slots.count {
                sum += slots[i].sum
                energy += slots[i].energy
                growth += slots[i].growth
            }
        }
    }

    /// The level of a mean sound energy: 10 log10(energy / count).
    /// Rounded to a millionth of a dB, so that a steady 60 dB(A) is 60, not 60.000000000000014.
    static func level(energy: Double, count: Int) -> Double? {
        guard count > 0, energy > 0 else { return nil }
        return (10 * log10(energy / Double(count)) * 1e6).rounded() / 1e6
    }

    /// `value(_:)`, read in place: through a mutating access, an array element's window is
    /// not copied (a copy costs a reference count on each of its buffers).
    @inline(__always)
    mutating func valueInPlace(_ stat: RuleStat) -> Double? { value(stat) }

    /// The statistic over what is in the window now; nil where it is undefined (no reading;
    /// for rate, fewer than two readings apart in time).
    public func value(_ stat: RuleStat) -> Double? {
        switch stat {
        case .count: return Double(count)
        case .sum: return isEmpty ? 0 : sum
        default: break
        }
        guard !isEmpty else { return nil }
        switch stat {
        case .last: return slots[slots.count - 1].last
        case .mean: return sum / Double(count)
        case .min:
            guard tracksExtrema else { return slots[head...].lazy.map(\.min).min() }
            return slots[minQueue[minHead] - base].min
        case .max:
            guard tracksExtrema else { return slots[head...].lazy.map(\.max).max() }
            return slots[maxQueue[maxHead] - base].max
        case .rate:
            let f = slots[head]
            let l = slots[slots.count - 1]
            let dt = Double(l.lastT - f.firstT) / 3_600_000_000
            guard dt > 0 else { return nil }
            return (l.last - f.first) / dt
        case .increase:
            return growth - slots[head].firstGrowth
        case .leq:
            return Self.level(energy: energy, count: count)
        case .count, .sum:
            return nil
        }
    }
}
