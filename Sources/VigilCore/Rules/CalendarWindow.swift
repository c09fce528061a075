#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One series' readings over a local calendar window (the day from local midnight, the
/// hour), judged once, when the window closes, as the standards define their daily and
/// hourly values.
///
/// A window longer than an hour is made of its hours: an hour counts when it holds a
/// reading in `perHour` of its minutes, and the window's value comes from the hours that
/// count: its mean is the mean of their hourly means (its `leq` the energy mean of their
/// hourly levels), the other statistics are over their readings. Its coverage is the
/// number of hours that count. A window of an hour or less counts the minutes that hold a
/// reading. A reading covers the minutes back to the reading before it, when that came at
/// most `readingSpan` before. Without `minimum` coverage, one reading is enough.
///
/// Memory is constant: the open window, the open hour and the reading before them. A
/// reading older than the newest joins the open hour; one from before the open window
/// (already judged) is left out and counted.
public struct CalendarWindow: Sendable {
    /// Running statistics of a set of readings.
    struct Accumulator: Sendable {
        var count = 0
        var sum = 0.0
        var energy = 0.0
        var min = Double.infinity
        var max = -Double.infinity
        var first = 0.0
        var last = 0.0
        var firstT: Int64 = .max
        var lastT: Int64 = .min
        var growth = 0.0

        mutating func add(_ v: Double, at t: Int64, energy e: Double, growth g: Double) {
            count += 1
            sum += v
            energy += e
            min = Swift.min(min, v)
            max = Swift.max(max, v)
            if t < firstT {
                firstT = t
                first = v
            }
            if t >= lastT {
                lastT = t
                last = v
            }
            growth += g
        }

        mutating func merge(_ o: Accumulator) {
            guard o.count > 0 else { return }
            count += o.count
            sum += o.sum
            energy += o.energy
            min = Swift.min(min, o.min)
            max = Swift.max(max, o.max)
            if o.firstT < firstT {
                firstT = o.firstT
                first = o.first
            }
            if o.lastT >= lastT {
                lastT = o.lastT
                last = o.last
            }
            growth += o.growth
        }
    }

    /// The closed window's result.
    public struct Judged: Sendable, Equatable {
        public var start: Timestamp
        public var end: Timestamp
        /// Nil: not enough data (or, for rate, too little time between readings).
        public var value: Double?
        /// Hours (windows over an hour) or minutes with enough data.
        public var covered: Int
        public var enoughData: Bool
    }

    public let length: TimeSpan
    public let stat: RuleStat
    let tracksEnergy: Bool
    /// Hours (over an hour) or minutes (an hour or less) that must count; 0: any reading.
    let needed: Int
    /// Minutes an hour needs (windows over an hour).
    let neededPerHour: Int
    var byHour: Bool { length.micros > 3_600_000_000 }

    /// The open window, UTC microseconds; `start == .min`: none open.
    public private(set) var start: Int64 = .min
    public private(set) var end: Int64 = .min
    /// The end of the last window judged: readings before it come too late.
    public private(set) var judgedUntil: Int64 = .min
    /// Hours that count, folded in.
    private var hours = Accumulator()
    private var hoursCounted = 0
    private var meanOfHours = 0.0
    private var energyOfHours = 0.0
    /// The open hour (windows over an hour) or the whole window (an hour or less).
    private var open = Accumulator()
    private var openHour = -1
    /// Minutes with a reading: of the open hour, or of the window (at most 128, for the
    /// repeated hour when clocks go back).
    private var minutes: (UInt64, UInt64) = (0, 0)
    /// The newest reading, for counter growth across windows.
    private var previous: (t: Int64, v: Double)?

    public init(length: TimeSpan, stat: RuleStat, coverage: Coverage?) {
        self.length = length
        self.stat = stat
        tracksEnergy = stat == .leq
        let byHour = length.micros > 3_600_000_000
        if let c = coverage {
            needed = Int(c.minimum.micros / (byHour ? 3_600_000_000 : 60_000_000))
            neededPerHour = Int((c.perHour?.micros ?? 60_000_000) / 60_000_000)
        } else {
            needed = 0
            neededPerHour = 1
        }
    }

    public var isOpen: Bool { start != .min }

    /// Whether `t` falls in the open window.
    @inline(__always)
    public func holds(_ t: Int64) -> Bool { t >= start && t < end }

    /// Opens the window that holds `t`.
    public mutating func open(at t: Timestamp, zone: LocalTimeZone) {
        (start, end) = zone.calendarWindow(containing: t, length: length)
        hours = Accumulator()
        hoursCounted = 0
        meanOfHours = 0
        energyOfHours = 0
        open = Accumulator()
        openHour = -1
        minutes = (0, 0)
    }

    /// How long a reading stands for at most: the time since the reading before it, up to
    /// this (a sensor that reports every 5 minutes covers its hour with 12 readings).
    public static let readingSpan: Int64 = 10 * 60_000_000

    /// Adds a reading of the open window (the caller checks `holds`).
    public mutating func add(_ v: Double, at t: Int64) {
        let e = tracksEnergy ? SlidingWindow.energy(v) : 0
        var g = 0.0
        // The minutes it covers: back to the reading before it, if that is recent.
        var from = t
        if let p = previous {
            if t >= p.t {
                g = v >= p.v ? v - p.v : v
                if t - p.t <= Self.readingSpan { from = p.t + 1 }
                previous = (t, v)
            }
        } else {
            previous = (t, v)
        }
        let elapsed = t - start
        if byHour {
            let hour = Int(elapsed / 3_600_000_000)
            if hour > openHour {
                foldHour()
                openHour = hour
            }
            // A late one (from an earlier hour) joins the open hour, without minutes of its own.
            if hour == openHour {
                let hourStart = start + Int64(hour) * 3_600_000_000
                mark(from: max(from, hourStart) - hourStart, to: t - hourStart)
            }
        } else {
            mark(from: max(from, start) - start, to: elapsed)
        }
        open.add(v, at: t, energy: e, growth: g)
    }

    /// Marks the minutes from `a` to `b` (microseconds into the hour or window).
    private mutating func mark(from a: Int64, to b: Int64) {
        let last = Int(b / 60_000_000)
        var m = Int(max(0, a) / 60_000_000)
        while m <= last {
            mark(m)
            m += 1
        }
    }

    private mutating func mark(_ minute: Int) {
        if minute < 64 {
            minutes.0 |= 1 << UInt64(minute)
        } else if minute < 128 {
            minutes.1 |= 1 << UInt64(minute - 64)
        }
    }

    private var minutesMarked: Int { minutes.0.nonzeroBitCount + minutes.1.nonzeroBitCount }

    /// Closes the open hour: it counts if it has enough minutes with data.
    private mutating func foldHour() {
        guard open.count > 0 else { return }
        if minutesMarked >= neededPerHour {
            hours.merge(open)
            hoursCounted += 1
            meanOfHours += open.sum / Double(open.count)
            energyOfHours += open.energy / Double(open.count)
        }
        open = Accumulator()
        minutes = (0, 0)
    }

    /// Closes the window and gives its value; no window is open after it.
    public mutating func close() -> Judged {
        var acc: Accumulator
        var covered: Int
        var meanValue: Double?
        var leqValue: Double?
        if byHour {
            foldHour()
            acc = hours
            covered = hoursCounted
            if hoursCounted > 0 {
                meanValue = meanOfHours / Double(hoursCounted)
                leqValue = SlidingWindow.level(energy: energyOfHours, count: hoursCounted)
            }
        } else {
            acc = open
            covered = minutesMarked
            if acc.count > 0 {
                meanValue = acc.sum / Double(acc.count)
                leqValue = SlidingWindow.level(energy: acc.energy, count: acc.count)
            }
        }
        let enough = acc.count > 0 && covered >= needed
        var value: Double?
        if enough {
            switch stat {
            case .last: value = acc.last
            case .mean: value = meanValue
            case .leq: value = leqValue
            case .min: value = acc.min
            case .max: value = acc.max
            case .sum: value = acc.sum
            case .count: value = Double(acc.count)
            case .increase: value = acc.growth
            case .rate:
                let dt = Double(acc.lastT - acc.firstT) / 3_600_000_000
                value = dt > 0 ? (acc.last - acc.first) / dt : nil
            }
        }
        let judged = Judged(
            start: Timestamp(micros: start), end: Timestamp(micros: end), value: value, covered: covered, enoughData: enough)
        judgedUntil = end
        start = .min
        end = .min
        return judged
    }

    /// Drops the open window unjudged (rebuilding windows at start: only the open one matters).
    public mutating func discard() {
        start = .min
        end = .min
    }
}
