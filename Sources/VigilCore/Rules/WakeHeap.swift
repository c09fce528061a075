/// A 4-ary min-heap of (time, state index); ties go by index, so ticks are deterministic.
///
/// Four children a node: half the levels of a binary heap, and each level's children side
/// by side, so a pop through some 50,000 entries costs about half the cache misses.
struct WakeHeap {
    struct Entry {
        var time: Int64
        var index: Int
    }

    private var items: [Entry] = []

    var peek: (Int64, Int)? { items.isEmpty ? nil : (items[0].time, items[0].index) }

    var count: Int { items.count }

    @inline(__always)
    static func less(_ a: Entry, _ b: Entry) -> Bool { a.time < b.time || (a.time == b.time && a.index < b.index) }

    mutating func push(_ time: Int64, _ index: Int) {
        let e = Entry(time: time, index: index)
        items.append(e)
        items.withUnsafeMutableBufferPointer { b in
            var c = b.count - 1
            while c > 0 {
                let p = (c - 1) / 4
                guard Self.less(e, b[p]) else { break }
                b[c] = b[p]
                c = p
            }
            b[c] = e
        }
    }

    mutating func pop() {
        guard let last = items.popLast() else { return }
        if !items.isEmpty { siftDown(last) }
    }

    /// Pops the earliest entry and pushes (time, index): one pass down instead of two.
    mutating func replaceTop(_ time: Int64, _ index: Int) {
        guard !items.isEmpty else { return push(time, index) }
        siftDown(Entry(time: time, index: index))
    }

    /// Puts `e` at the root's place and moves it down to where it belongs.
    private mutating func siftDown(_ e: Entry) {
        items.withUnsafeMutableBufferPointer { b in
            let n = b.count
            var p = 0
            while true {
                let first = 4 * p + 1
                guard first < n else { break }
                let end = Swift.min(first + 4, n)
                var m = first
                var c = first + 1
                while c < end {
                    if Self.less(b[c], b[m]) { m = c }
                    c += 1
                }
                guard Self.less(b[m], e) else { break }
                b[p] = b[m]
                p = m
            }
            b[p] = e
        }
    }
}

extension WakeHeap {
    /// Every entry, in no order; the heap is left empty.
    mutating func removeAll() -> [Entry] {
        defer { items.removeAll() }
        return items
    }
}

/// When each state next needs a look, as a timing wheel: 65,536 buckets of 2^16 µs (65.5 ms),
/// 71 minutes ahead; what lies further ahead waits in a heap until the wheel comes near.
///
/// A push appends to its time's bucket; a tick takes the buckets it has passed, each sorted
/// by (time, index), so the order is a heap's. Most wakes of a busy engine are queued and
/// found settled again (see `RuleEngine.tick`): an append and a sort of a small bucket cost
/// less than a heap's way down through 50,000 entries, a cache miss a level.
struct WakeWheel {
    typealias Entry = WakeHeap.Entry
    static let shift: Int64 = 16
    static let size: Int64 = 1 << 16

    private var buckets: [[Entry]] = []
    /// Entries of buckets at or beyond `cursor + size`.
    private var far = WakeHeap()
    /// The earliest bucket that may hold entries: every bucket before it has been taken. An
    /// entry of an earlier time goes into it.
    private var cursor: Int64 = 0
    private(set) var count = 0

    @inline(__always)
    private static func slot(_ bucket: Int64) -> Int { Int(bucket & (size - 1)) }

    mutating func push(_ time: Int64, _ index: Int) {
        let b = time >> Self.shift
        if buckets.isEmpty {
            buckets = Array(repeating: [], count: Int(Self.size))
            cursor = b
        }
        count += 1
        if b >= cursor + Self.size {
            far.push(time, index)
        } else {
            buckets[Self.slot(Swift.max(b, cursor))].append(Entry(time: time, index: index))
        }
    }

    /// Takes the entries due at `t` (time <= t) of the earliest bucket that has any, in
    /// (time, index) order, into `batch`; false when nothing is due. Entries pushed while a
    /// batch is handled are found by the next call if they are due.
    mutating func takeDue(upTo t: Int64, into batch: inout [Entry]) -> Bool {
        batch.removeAll(keepingCapacity: true)
        guard !buckets.isEmpty else { return false }
        let last = t >> Self.shift
        if last - cursor >= Self.size { return takeAll(upTo: t, into: &batch) }
        while true {
            let s = Self.slot(cursor)
            if !buckets[s].isEmpty {
                if cursor < last {
                    // A bucket the time has passed: all of it is due.
                    batch.append(contentsOf: buckets[s])
                    buckets[s] = []
                } else if buckets[s].contains(where: { $0.time <= t }) {
                    // The bucket of `t` (or a tick before the cursor): what is due, the rest stays.
                    var rest: [Entry] = []
                    for e in buckets[s] {
                        if e.time <= t { batch.append(e) } else { rest.append(e) }
                    }
                    buckets[s] = rest
                }
                if !batch.isEmpty {
                    count -= batch.count
                    batch.sort(by: WakeHeap.less)
                    return true
                }
            }
            guard cursor < last else { return false }
            cursor += 1
            // The wheel reaches one bucket further: its entries come from the heap.
            let reach = cursor + Self.size - 1
            while let (time, index) = far.peek, time >> Self.shift <= reach {
                far.pop()
                buckets[Self.slot(time >> Self.shift)].append(Entry(time: time, index: index))
            }
        }
    }

    /// The clock jumped past the whole wheel: everything queued anew from `t` (what is due
    /// then lands in the bucket of `t`), then taken as usual.
    private mutating func takeAll(upTo t: Int64, into batch: inout [Entry]) -> Bool {
        var all = far.removeAll()
        for s in buckets.indices where !buckets[s].isEmpty {
            all.append(contentsOf: buckets[s])
            buckets[s] = []
        }
        cursor = t >> Self.shift
        count = 0
        for e in all { push(e.time, e.index) }
        return takeDue(upTo: t, into: &batch)
    }
}
