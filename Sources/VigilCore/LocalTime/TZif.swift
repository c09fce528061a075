/// Reading a TZif file (RFC 8536), the binary form of the IANA time zone database that
/// Debian's tzdata installs in /usr/share/zoneinfo. The daemon reads the bytes; this only
/// decodes them.
extension LocalTimeZone {
    public struct TZifError: Error, Sendable, Equatable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    /// Decodes a TZif file's bytes: the 64-bit data of version 2 and later (the 32-bit
    /// data of a version 1 file), and the footer's POSIX rule for the times after the
    /// last transition. Leap seconds are ignored, as POSIX time ignores them.
    public init(name: String, tzif b: [UInt8]) throws(TZifError) {
        func fail(_ why: String) -> TZifError { TZifError(reason: "not a TZif file: \(why)") }
        guard b.count >= 44, b[0] == 0x54, b[1] == 0x5A, b[2] == 0x69, b[3] == 0x66 else { throw fail("no TZif magic") }
        func u32(_ at: Int) -> Int { Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3]) }
        func i32(_ at: Int) -> Int64 { Int64(Int32(bitPattern: UInt32(u32(at)))) }
        func i64(_ at: Int) -> Int64 {
            var v: UInt64 = 0
            for k in 0..<8 { v = v << 8 | UInt64(b[at + k]) }
            return Int64(bitPattern: v)
        }
        struct Header {
            var isut, isstd, leap, time, type, char: Int
        }
        func header(_ at: Int) throws(TZifError) -> Header {
            guard at + 44 <= b.count, b[at] == 0x54, b[at + 1] == 0x5A, b[at + 2] == 0x69, b[at + 3] == 0x66 else {
                throw fail("truncated header")
            }
            return Header(
                isut: u32(at + 20), isstd: u32(at + 24), leap: u32(at + 28), time: u32(at + 32), type: u32(at + 36),
                char: u32(at + 40))
        }
        let version = b[4]
        var h = try header(0)
        var at = 44
        var timeSize = 4
        if version >= 0x32 {  // '2' or later: skip the 32-bit block
            at += h.time * 5 + h.type * 6 + h.char + h.leap * 8 + h.isstd + h.isut
            h = try header(at)
            at += 44
            timeSize = 8
        }
        let dataSize = h.time * (timeSize + 1) + h.type * 6 + h.char + h.leap * (timeSize + 4) + h.isstd + h.isut
        guard h.type >= 1, at + dataSize <= b.count else { throw fail("truncated data") }
        var transitions: [Int64] = []
        transitions.reserveCapacity(h.time)
        for k in 0..<h.time { transitions.append(timeSize == 8 ? i64(at + k * 8) : i32(at + k * 4)) }
        let indices = at + h.time * timeSize
        let types = indices + h.time
        var typeOffsets: [Int32] = []
        for k in 0..<h.type { typeOffsets.append(Int32(truncatingIfNeeded: i32(types + k * 6))) }
        var offsets: [Int32] = []
        offsets.reserveCapacity(h.time)
        for k in 0..<h.time {
            let idx = Int(b[indices + k])
            guard idx < typeOffsets.count else { throw fail("a transition names time type \(idx) of \(typeOffsets.count)") }
            offsets.append(typeOffsets[idx])
        }
        for k in transitions.indices.dropFirst() where transitions[k] <= transitions[k - 1] {
            throw fail("transitions out of order")
        }
        var rule: PosixTZ?
        let footer = at + dataSize
        if timeSize == 8, footer < b.count, b[footer] == 0x0A {
            var end = footer + 1
            while end < b.count, b[end] != 0x0A { end += 1 }
            let text = String(decoding: b[(footer + 1)..<end], as: UTF8.self)
            if !text.isEmpty {
                guard let r = PosixTZ(parsing: text) else { throw fail("footer '\(text)' is not a TZ rule") }
                rule = r
            }
        }
        self.init(name: name, transitions: transitions, offsets: offsets, initialOffset: typeOffsets[0], rule: rule)
    }
}
