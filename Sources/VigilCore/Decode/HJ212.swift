/// HJ 212-2017 frames (the national standard for online monitoring data transmission):
/// `##` + four decimal digits (the data segment's length in bytes) + data segment + four
/// hex digits of CRC over the data segment + CRLF. The data segment is
/// `QN=...;ST=..;CN=....;PW=...;MN=...;Flag=.;[PNUM=..;PNO=..;]CP=&&...&&`.
///
/// Pure: no Foundation, no I/O; local times are turned into instants with the
/// `LocalTimeZone` given.
public enum HJ212 {
    /// The largest data segment the four-digit length field can announce.
    public static let maxSegment = 9999
    /// `##`, the length, the largest segment, the CRC and CRLF.
    public static let maxFrameBytes = 2 + 4 + maxSegment + 4 + 2

    /// The standard's CRC (not CRC-16/MODBUS): start 0xFFFF; per byte
    /// `crc = (crc >> 8) ^ byte`, then eight shifts right, xoring 0xA001 when the bit shifted
    /// out is 1.
    public static func crc(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var crc: UInt16 = 0xFFFF
        for b in bytes {
            crc = (crc >> 8) ^ UInt16(b)
            for _ in 0..<8 {
                let out = crc & 1
                crc >>= 1
                if out != 0 { crc ^= 0xA001 }
            }
        }
        return crc
    }

    public static func crc(_ bytes: [UInt8]) -> UInt16 { bytes.withUnsafeBytes { crc($0) } }

    /// A whole frame for a data segment: `##`, length, segment, CRC, CRLF.
    public static func frame(segment: String) -> [UInt8] { frame(segmentBytes: Array(segment.utf8)) }

    /// A whole frame for a data segment of any bytes (tests and the fuzz checks).
    public static func frame(segmentBytes seg: [UInt8]) -> [UInt8] {
        var out: [UInt8] = Array("##".utf8)
        out += Array(pad(seg.count, 4).utf8)
        out += seg
        out += Array(hex4(crc(seg)).utf8)
        out += [13, 10]
        return out
    }

    /// The answer a platform sends back: `CN=9014` (data answer) or `CN=9013`
    /// (notification answer), with the request's QN, PW and MN; `ST=91`, `Flag=4` (no
    /// answer wanted) and an empty CP.
    public static func answer(cn: Int, qn: String, pw: String, mn: String) -> [UInt8] {
        frame(segment: "QN=\(qn);ST=91;CN=\(cn);PW=\(pw);MN=\(mn);Flag=4;CP=&&&&")
    }

    /// `yyyyMMddHHmmss` in local time, as DataTime is written (and QN's first 14 digits).
    public static func localTime(_ t: Timestamp, zone: LocalTimeZone) -> String {
        let local = zone.localSeconds(t)
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let secs = Int(local - days * 86_400)
        let d = LocalDate(daysSinceEpoch: days)
        return pad(Int(d.year), 4) + pad(Int(d.month), 2) + pad(Int(d.day), 2) + pad(secs / 3600, 2) + pad(secs / 60 % 60, 2)
            + pad(secs % 60, 2)
    }

    public static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }

    public static func hex4(_ v: UInt16) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for shift in stride(from: 12, through: 0, by: -4) { out.append(digits[Int((v >> UInt16(shift)) & 0xF)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt16? {
        switch c {
        case 48...57: return UInt16(c - 48)
        case 65...70: return UInt16(c - 55)
        case 97...102: return UInt16(c - 87)
        default: return nil
        }
    }

    // MARK: Framing

    /// Where a frame sits in a byte stream (TCP): see `scan`.
    public enum Scan: Equatable, Sendable {
        /// Not enough bytes yet to tell.
        case needMore
        /// Bytes before the next `##` (or a `#` that starts none): skip them, a reject.
        case garbage(count: Int)
        /// A frame (with its CRLF if it has one) of `count` bytes at the start; decode it.
        case frame(count: Int)
        /// The length field is not four digits: skip `count` bytes (up to the next `##`).
        case badLength(count: Int)
        /// CR and LF between frames: skip them, no reject.
        case lineBreaks(count: Int)
    }

    /// Looks at the start of a stream buffer. A frame is `##` + four digits + that many
    /// bytes + four CRC characters; a CRLF after it is taken with it. Never looks at more
    /// than `maxFrameBytes`, so a peer cannot make one frame cost more.
    public static func scan(_ b: UnsafeRawBufferPointer) -> Scan {
        guard !b.isEmpty else { return .needMore }
        if b[0] == 13 || b[0] == 10 {
            var i = 1
            while i < b.count, b[i] == 13 || b[i] == 10 { i += 1 }
            return .lineBreaks(count: i)
        }
        if b[0] != 35 {
            var i = 1
            while i < b.count, b[i] != 35 { i += 1 }
            return .garbage(count: i)
        }
        guard b.count >= 2 else { return .needMore }
        if b[1] != 35 { return .garbage(count: 1) }
        guard b.count >= 6 else { return .needMore }
        var len = 0
        for i in 2..<6 {
            guard b[i] >= 48, b[i] <= 57 else {
                return .badLength(count: nextStart(b, from: 2))
            }
            len = len * 10 + Int(b[i] - 48)
        }
        let end = 6 + len + 4
        guard b.count >= end else { return .needMore }
        // The CRLF after it, when it has come, goes with it; otherwise it is skipped later.
        if b.count >= end + 2 && b[end] == 13 && b[end + 1] == 10 { return .frame(count: end + 2) }
        return .frame(count: end)
    }

    /// Where the next `##` starts, from `from` (the end when there is none).
    public static func nextStart(_ b: UnsafeRawBufferPointer, from: Int) -> Int {
        var i = from
        while i + 1 < b.count {
            if b[i] == 35 && b[i + 1] == 35 { return i }
            i += 1
        }
        return b.count
    }
}
