/// Why a payload is not acceptable JSON.
public enum JSONError: Error, Equatable, Sendable {
    case syntax(offset: Int, message: String)
    case tooDeep(limit: Int)
    case invalidUTF8(offset: Int)

    public var message: String {
        switch self {
        case .syntax(let offset, let message): return "\(message) at byte \(offset)"
        case .tooDeep(let limit): return "nested deeper than \(limit)"
        case .invalidUTF8(let offset): return "invalid UTF-8 at byte \(offset)"
        }
    }
}

/// A strict RFC 8259 parser that writes a flat tape of nodes instead of a tree.
///
/// One parser is reused for every message, so the hot path allocates nothing once the
/// tape has grown to the largest payload seen. Nodes refer to the input bytes by offset:
/// read them only while the buffer passed to `parse` is alive.
///
/// - Important: not thread safe; one owner calls it.
public struct JSONTape {
    public enum Kind: UInt8, Sendable {
        case object, array, string, number, `true`, `false`, null
    }

    public struct Node: Sendable {
        public var kind: Kind
        /// A string whose bytes contain escapes (decode with `string(_:)`).
        public var escaped: Bool = false
        /// A number written without fraction or exponent.
        public var isInteger: Bool = false
        /// Strings: offset of the first byte after the quote. Numbers: offset of the text.
        public var start: Int32 = 0
        /// Strings: byte length between the quotes. Numbers: length of the text.
        public var length: Int32 = 0
        /// Containers: members (pairs for objects).
        public var count: Int32 = 0
        /// Index of the node after this value and everything inside it.
        public var end: Int32 = 0
        public var number: Double = 0
    }

    public private(set) var nodes: [Node] = []
    public var maxDepth: Int

    public init(maxDepth: Int = 32) {
        self.maxDepth = maxDepth
        nodes.reserveCapacity(64)
    }

    /// Parses `bytes` as one JSON text.
    /// - Throws: `JSONError` for anything RFC 8259 does not allow, for depth beyond `maxDepth`
    ///   and for invalid UTF-8 in strings.
    public mutating func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) {
        nodes.removeAll(keepingCapacity: true)
        var i = 0
        let n = bytes.count
        i = Self.skipWhitespace(bytes, i)
        i = try parseValue(bytes, i, depth: 0)
        i = Self.skipWhitespace(bytes, i)
        if i != n { throw .syntax(offset: i, message: "unexpected data after the JSON value") }
    }

    @inline(__always)
    static func skipWhitespace(_ b: UnsafeRawBufferPointer, _ start: Int) -> Int {
        var i = start
        while i < b.count {
            let c = b[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { break }
            i += 1
        }
        return i
    }

    private mutating func parseValue(_ b: UnsafeRawBufferPointer, _ start: Int, depth: Int) throws(JSONError) -> Int {
        guard start < b.count else { throw .syntax(offset: start, message: "unexpected end of input") }
        switch b[start] {
        case UInt8(ascii: "{"): return try parseObject(b, start, depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(b, start, depth: depth + 1)
        case UInt8(ascii: "\""): return try parseString(b, start)
        case UInt8(ascii: "t"): return try parseLiteral(b, start, "true", .true)
        case UInt8(ascii: "f"): return try parseLiteral(b, start, "false", .false)
        case UInt8(ascii: "n"): return try parseLiteral(b, start, "null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            var node = Node(kind: .number)
            let end = try Self.scanNumber(b, start, into: &node)
            node.end = Int32(nodes.count + 1)
            nodes.append(node)
            return end
        default:
            throw .syntax(offset: start, message: "unexpected character \(Self.describe(b[start]))")
        }
    }

    private mutating func parseLiteral(
        _ b: UnsafeRawBufferPointer, _ start: Int, _ word: StaticString, _ kind: Kind
    ) throws(JSONError) -> Int {
        let len = word.utf8CodeUnitCount
        guard start + len <= b.count else { throw .syntax(offset: start, message: "truncated literal") }
        let w = word.utf8Start
        for k in 0..<len where b[start + k] != w[k] {
            throw .syntax(offset: start + k, message: "invalid literal")
        }
        nodes.append(Node(kind: kind, end: Int32(nodes.count + 1)))
        return start + len
    }

    private mutating func parseObject(_ b: UnsafeRawBufferPointer, _ start: Int, depth: Int) throws(JSONError) -> Int {
        if depth > maxDepth { throw .tooDeep(limit: maxDepth) }
        let index = nodes.count
        nodes.append(Node(kind: .object))
        var i = Self.skipWhitespace(b, start + 1)
        var count: Int32 = 0
        if i < b.count, b[i] == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                guard i < b.count else { throw .syntax(offset: i, message: "unterminated object") }
                guard b[i] == UInt8(ascii: "\"") else {
                    throw .syntax(offset: i, message: "expected a string key, found \(Self.describe(b[i]))")
                }
                i = try parseString(b, i)
                i = Self.skipWhitespace(b, i)
                guard i < b.count, b[i] == UInt8(ascii: ":") else {
                    throw .syntax(offset: i, message: "expected ':' after key")
                }
                i = Self.skipWhitespace(b, i + 1)
                i = try parseValue(b, i, depth: depth)
                count += 1
                i = Self.skipWhitespace(b, i)
                guard i < b.count else { throw .syntax(offset: i, message: "unterminated object") }
                if b[i] == UInt8(ascii: ",") {
                    i = Self.skipWhitespace(b, i + 1)
                    continue
                }
                if b[i] == UInt8(ascii: "}") {
                    i += 1
                    break
                }
                throw .syntax(offset: i, message: "expected ',' or '}' in object, found \(Self.describe(b[i]))")
            }
        }
        nodes[index].count = count
        nodes[index].end = Int32(nodes.count)
        return i
    }

    private mutating func parseArray(_ b: UnsafeRawBufferPointer, _ start: Int, depth: Int) throws(JSONError) -> Int {
        if depth > maxDepth { throw .tooDeep(limit: maxDepth) }
        let index = nodes.count
        nodes.append(Node(kind: .array))
        var i = Self.skipWhitespace(b, start + 1)
        var count: Int32 = 0
        if i < b.count, b[i] == UInt8(ascii: "]") {
            i += 1
        } else {
            while true {
                i = try parseValue(b, i, depth: depth)
                count += 1
                i = Self.skipWhitespace(b, i)
                guard i < b.count else { throw .syntax(offset: i, message: "unterminated array") }
                if b[i] == UInt8(ascii: ",") {
                    i = Self.skipWhitespace(b, i + 1)
                    continue
                }
                if b[i] == UInt8(ascii: "]") {
                    i += 1
                    break
                }
                throw .syntax(offset: i, message: "expected ',' or ']' in array, found \(Self.describe(b[i]))")
            }
        }
        nodes[index].count = count
        nodes[index].end = Int32(nodes.count)
        return i
    }

    private mutating func parseString(_ b: UnsafeRawBufferPointer, _ start: Int) throws(JSONError) -> Int {
        var node = Node(kind: .string)
        let end = try Self.scanString(b, start, into: &node)
        node.end = Int32(nodes.count + 1)
        nodes.append(node)
        return end
    }

    /// Scans a string starting at its opening quote; returns the offset after the closing quote.
    static func scanString(_ b: UnsafeRawBufferPointer, _ start: Int, into node: inout Node) throws(JSONError) -> Int {
        var i = start + 1
        node.start = Int32(i)
        let n = b.count
        while true {
            guard i < n else { throw .syntax(offset: i, message: "unterminated string") }
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                node.length = Int32(i) - node.start
                return i + 1
            }
            if c == UInt8(ascii: "\\") {
                node.escaped = true
                guard i + 1 < n else { throw .syntax(offset: i, message: "unterminated escape") }
                switch b[i + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    guard i + 6 <= n else { throw .syntax(offset: i, message: "truncated \\u escape") }
                    for k in 2..<6 where hexValue(b[i + k]) == nil {
                        throw .syntax(offset: i + k, message: "invalid \\u escape")
                    }
                    i += 6
                default:
                    throw .syntax(offset: i + 1, message: "invalid escape \(describe(b[i + 1]))")
                }
                continue
            }
            if c < 0x20 { throw .syntax(offset: i, message: "control character in string") }
            if c < 0x80 {
                i += 1
                continue
            }
            i = try scanUTF8(b, i)
        }
    }

    /// Validates one multi-byte UTF-8 sequence at `i` (RFC 3629: no overlongs, no surrogates).
    @inline(__always)
    static func scanUTF8(_ b: UnsafeRawBufferPointer, _ i: Int) throws(JSONError) -> Int {
        let n = b.count
        let c = b[i]
        func cont(_ k: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> Bool {
            i + k < n && b[i + k] >= lo && b[i + k] <= hi
        }
        switch c {
        case 0xC2...0xDF:
            if cont(1) { return i + 2 }
        case 0xE0:
            if cont(1, 0xA0, 0xBF) && cont(2) { return i + 3 }
        case 0xE1...0xEC, 0xEE...0xEF:
            if cont(1) && cont(2) { return i + 3 }
        case 0xED:
            if cont(1, 0x80, 0x9F) && cont(2) { return i + 3 }
        case 0xF0:
            if cont(1, 0x90, 0xBF) && cont(2) && cont(3) { return i + 4 }
        case 0xF1...0xF3:
            if cont(1) && cont(2) && cont(3) { return i + 4 }
        case 0xF4:
            if cont(1, 0x80, 0x8F) && cont(2) && cont(3) { return i + 4 }
        default:
            break
        }
        throw .invalidUTF8(offset: i)
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    private static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// Scans a number per the JSON grammar; returns the offset after it.
    ///
    /// The value is exact where it can be computed exactly from at most 15 significant digits
    /// and a power of ten up to 22 (Clinger's fast path); otherwise the correctly rounded
    /// conversion of the standard library decides. Out-of-range numbers become infinities,
    /// which the decoders reject as non-finite.
    static func scanNumber(_ b: UnsafeRawBufferPointer, _ start: Int, into node: inout Node) throws(JSONError) -> Int {
        var i = start
        let n = b.count
        var negative = false
        if b[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard i < n else { throw .syntax(offset: i, message: "truncated number") }
        var mantissa: UInt64 = 0
        var digits = 0
        var exponent = 0
        var isInteger = true
        if b[i] == UInt8(ascii: "0") {
            i += 1
            if i < n, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                throw .syntax(offset: i, message: "leading zero in number")
            }
        } else if b[i] >= UInt8(ascii: "1"), b[i] <= UInt8(ascii: "9") {
            while i < n, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                if digits < 19 {
                    mantissa = mantissa * 10 + UInt64(b[i] - UInt8(ascii: "0"))
                    digits += 1
                } else {
                    exponent += 1
                    digits += 1
                }
                i += 1
            }
        } else {
            throw .syntax(offset: i, message: "invalid number")
        }
        if i < n, b[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            let fracStart = i
            while i < n, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                if digits < 19 {
                    if mantissa != 0 || b[i] != UInt8(ascii: "0") { digits += 1 }
                    mantissa = mantissa * 10 + UInt64(b[i] - UInt8(ascii: "0"))
                    exponent -= 1
                }
                i += 1
            }
            if i == fracStart { throw .syntax(offset: i, message: "expected digits after '.'") }
        }
        if i < n, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            var expNegative = false
            if i < n, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                expNegative = b[i] == UInt8(ascii: "-")
                i += 1
            }
            let expStart = i
            var e = 0
            while i < n, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                if e < 100_000 { e = e * 10 + Int(b[i] - UInt8(ascii: "0")) }
                i += 1
            }
            if i == expStart { throw .syntax(offset: i, message: "expected digits in exponent") }
            exponent += expNegative ? -e : e
        }
        node.start = Int32(start)
        node.length = Int32(i - start)
        node.isInteger = isInteger
        var value: Double
        if mantissa == 0 {
            value = 0
        } else if digits <= 15, exponent >= -22, exponent <= 22 {
            value = Double(mantissa)
            if exponent < 0 { value /= powersOfTen[-exponent] } else { value *= powersOfTen[exponent] }
        } else {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: b[(negative ? start + 1 : start)..<i]), as: UTF8.self)
            value = Double(text) ?? .infinity
        }
        node.number = negative ? -value : value
        return i
    }

    static func describe(_ c: UInt8) -> String {
        if c >= 0x20 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return "byte 0x\(String(c, radix: 16))"
    }
}
