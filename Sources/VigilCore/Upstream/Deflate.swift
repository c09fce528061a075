/// A zlib stream (RFC 1950) of DEFLATE data (RFC 1951): LZ77 over a 32 KiB window with
/// hash chains, coded with the fixed Huffman codes. What `upstream.compress: deflate`
/// sends; any zlib reads it (`zlib.decompress(payload)` in Python).
///
/// Fixed codes need no code tables in the stream, which suits messages of a few KiB: on a
/// pack of 100 aggregates they come within a quarter of zlib's best (dynamic codes).
public enum Deflate {
    /// Compresses `input` into a zlib stream.
    public static func zlib(_ input: [UInt8]) -> [UInt8] {
        var out = BitWriter()
        // CMF: deflate with a 32 KiB window; FLG: no dictionary, check bits for CMF*256+FLG % 31 == 0.
        out.bytes = [0x78, 0x01]
        // One final block with the fixed codes.
        out.write(1, bits: 1)
        out.write(1, bits: 2)
        compress(input, into: &out)
        writeLiteral(256, &out)
        out.flush()
        let a = adler32(input)
        out.bytes += [UInt8(a >> 24), UInt8(a >> 16 & 0xFF), UInt8(a >> 8 & 0xFF), UInt8(a & 0xFF)]
        return out.bytes
    }

    /// Adler-32 of `bytes` (RFC 1950 section 8).
    public static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        var i = 0
        while i < bytes.count {
            // 5552 bytes is the most that cannot overflow before the modulo.
            let end = min(bytes.count, i + 5552)
            while i < end {
                a &+= UInt32(bytes[i])
                b &+= a
                i += 1
            }
            a %= 65521
            b %= 65521
        }
        return b << 16 | a
    }

    static let window = 32_768
    static let minMatch = 3
    static let maxMatch = 258
    /// How many earlier positions with the same three bytes are tried per position.
    static let maxChain = 64

    private static func compress(_ input: [UInt8], into out: inout BitWriter) {
        let n = input.count
        guard n > 0 else { return }
        let hashBits = 15
        var head = [Int32](repeating: -1, count: 1 << hashBits)
        var prev = [Int32](repeating: -1, count: n)
        func hash(_ i: Int) -> Int {
            let h = (UInt32(input[i]) << 16) ^ (UInt32(input[i + 1]) << 8) ^ UInt32(input[i + 2])
            return Int((h &* 2_654_435_761) >> (32 - UInt32(hashBits)))
        }
        func insert(_ i: Int) {
            guard i + minMatch <= n else { return }
            let h = hash(i)
            prev[i] = head[h]
            head[h] = Int32(i)
        }
        func longest(at i: Int) -> (length: Int, distance: Int) {
            guard i + minMatch <= n else { return (0, 0) }
            var best = 0
            var bestDistance = 0
            var candidate = Int(head[hash(i)])
            var chain = maxChain
            let limit = min(maxMatch, n - i)
            while candidate >= 0 && i - candidate <= window && chain > 0 {
                if input[candidate + best] == input[i + best] {
                    var l = 0
                    while l < limit && input[candidate + l] == input[i + l] { l += 1 }
                    if l > best {
                        best = l
                        bestDistance = i - candidate
                        if l == limit { break }
                    }
                }
                candidate = Int(prev[candidate])
                chain -= 1
            }
            return best >= minMatch ? (best, bestDistance) : (0, 0)
        }
        var i = 0
        while i < n {
            var match = longest(at: i)
            // Lazy matching: a longer match one byte on wins over this one.
            if match.length > 0 && match.length < 32 && i + 1 < n {
                insert(i)
                let next = longest(at: i + 1)
                if next.length > match.length {
                    writeLiteral(Int(input[i]), &out)
                    i += 1
                    match = next
                } else {
                    writeMatch(match.length, match.distance, &out)
                    for k in (i + 1)..<(i + match.length) { insert(k) }
                    i += match.length
                    continue
                }
            }
            if match.length > 0 {
                writeMatch(match.length, match.distance, &out)
                for k in i..<(i + match.length) { insert(k) }
                i += match.length
            } else {
                writeLiteral(Int(input[i]), &out)
                insert(i)
                i += 1
            }
        }
    }

    /// A literal/length symbol with the fixed code (RFC 1951 section 3.2.6).
    private static func writeLiteral(_ symbol: Int, _ out: inout BitWriter) {
        switch symbol {
        case 0...143: out.writeReversed(0x30 + symbol, bits: 8)
        case 144...255: out.writeReversed(0x190 + symbol - 144, bits: 9)
        case 256...279: out.writeReversed(symbol - 256, bits: 7)
        default: out.writeReversed(0xC0 + symbol - 280, bits: 8)
        }
    }

    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase: [Int] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
        8193, 12289, 16385, 24577,
    ]
    static let distanceExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    private static func writeMatch(_ length: Int, _ distance: Int, _ out: inout BitWriter) {
        var l = lengthBase.count - 1
        while lengthBase[l] > length { l -= 1 }
        writeLiteral(257 + l, &out)
        if lengthExtra[l] > 0 { out.write(length - lengthBase[l], bits: lengthExtra[l]) }
        var d = distanceBase.count - 1
        while distanceBase[d] > distance { d -= 1 }
        out.writeReversed(d, bits: 5)
        if distanceExtra[d] > 0 { out.write(distance - distanceBase[d], bits: distanceExtra[d]) }
    }
}

/// Bits into bytes, least significant first, as DEFLATE packs them.
struct BitWriter {
    var bytes: [UInt8] = []
    private var buffer: UInt32 = 0
    private var count = 0

    /// The low `bits` of `value`, least significant bit first (extra bits, headers).
    mutating func write(_ value: Int, bits: Int) {
        buffer |= UInt32(value) << UInt32(count)
        count += bits
        while count >= 8 {
            bytes.append(UInt8(buffer & 0xFF))
            buffer >>= 8
            count -= 8
        }
    }

    /// A Huffman code, most significant bit first.
    mutating func writeReversed(_ code: Int, bits: Int) {
        var r = 0
        var c = code
        for _ in 0..<bits {
            r = (r << 1) | (c & 1)
            c >>= 1
        }
        write(r, bits: bits)
    }

    mutating func flush() {
        if count > 0 { bytes.append(UInt8(buffer & 0xFF)) }
        buffer = 0
        count = 0
    }
}
