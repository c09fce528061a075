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
    private static func less(_ a: Entry, _ b: Entry) -> Bool { a.time < b.time || (a.time == b.time && a.index < b.index) }

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
