/// A binary min-heap of (time, state index); ties go by index, so ticks are deterministic.
struct WakeHeap {
    private var items: [(Int64, Int)] = []

    var peek: (Int64, Int)? { items.first }

    private static func less(_ a: (Int64, Int), _ b: (Int64, Int)) -> Bool { a.0 < b.0 || (a.0 == b.0 && a.1 < b.1) }

    mutating func push(_ time: Int64, _ index: Int) {
        items.append((time, index))
        var c = items.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard Self.less(items[c], items[p]) else { break }
            items.swapAt(c, p)
            c = p
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var p = 0
        while true {
            let l = 2 * p + 1
            let r = l + 1
            var m = p
            if l < items.count && Self.less(items[l], items[m]) { m = l }
            if r < items.count && Self.less(items[r], items[m]) { m = r }
            if m == p { break }
            items.swapAt(p, m)
            p = m
        }
    }
}
