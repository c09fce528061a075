/// Reading values off the tape: strings compared and decoded in place, numbers, siblings.
extension JSONTape {
    // MARK: Reading the tape

    /// The index of the value that follows the value at `index` among its siblings.
    @inline(__always)
    public func next(after index: Int) -> Int { Int(nodes[index].end) }

    /// Whether the string node at `index` equals `literal`.
    public func string(_ index: Int, equals literal: StaticString, in b: UnsafeRawBufferPointer) -> Bool {
        let node = nodes[index]
        guard node.kind == .string else { return false }
        if node.escaped { return string(index, in: b) == literal.description }
        let len = literal.utf8CodeUnitCount
        guard Int(node.length) == len else { return false }
        let p = literal.utf8Start
        let s = Int(node.start)
        for k in 0..<len where b[s + k] != p[k] { return false }
        return true
    }

    /// The raw bytes of a string node (escapes not decoded).
    public func rawBytes(_ index: Int, in b: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let node = nodes[index]
        return UnsafeRawBufferPointer(rebasing: b[Int(node.start)..<Int(node.start + node.length)])
    }

    /// The decoded text of a string node.
    public func string(_ index: Int, in b: UnsafeRawBufferPointer) -> String {
        let node = nodes[index]
        let raw = rawBytes(index, in: b)
        if !node.escaped { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        var pendingHigh: UInt32? = nil
        func flushHigh() {
            if pendingHigh != nil {
                out.append(contentsOf: [0xEF, 0xBF, 0xBD])
                pendingHigh = nil
            }
        }
        while i < raw.count {
            let c = raw[i]
            guard c == UInt8(ascii: "\\") else {
                flushHigh()
                out.append(c)
                i += 1
                continue
            }
            let e = raw[i + 1]
            i += 2
            var scalar: UInt32
            switch e {
            case UInt8(ascii: "b"): scalar = 8
            case UInt8(ascii: "f"): scalar = 12
            case UInt8(ascii: "n"): scalar = 10
            case UInt8(ascii: "r"): scalar = 13
            case UInt8(ascii: "t"): scalar = 9
            case UInt8(ascii: "u"):
                scalar = 0
                for k in 0..<4 { scalar = scalar << 4 | (Self.hexValue(raw[i + k]) ?? 0) }
                i += 4
            default: scalar = UInt32(e)
            }
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                flushHigh()
                pendingHigh = scalar
                continue
            }
            if scalar >= 0xDC00 && scalar <= 0xDFFF {
                if let high = pendingHigh {
                    scalar = 0x10000 + ((high - 0xD800) << 10) + (scalar - 0xDC00)
                    pendingHigh = nil
                } else {
                    scalar = 0xFFFD
                }
            } else {
                flushHigh()
            }
            let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
            out.append(contentsOf: Array(String(u).utf8))
        }
        flushHigh()
        return String(decoding: out, as: UTF8.self)
    }
}
