/// One value of a frame's CP segment.
public struct HJ212Value: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case rtd = "Rtd", avg = "Avg", min = "Min", max = "Max", cou = "Cou"
    }
    public var code: String
    public var kind: Kind
    public var value: Double
}

/// A parsed frame.
public struct HJ212Frame: Sendable, Equatable {
    public var qn: String?
    public var st: String
    public var cn: Int
    public var pw: String
    public var mn: String
    /// The Flag field: bit 0 (A) asks for an answer, bit 1 (D) says the frame is one packet
    /// of several; the upper bits are the protocol version.
    public var flag: Int
    public var dataTime: Timestamp?
    public var values: [HJ212Value]
    /// `code-Flag` per code, as the frame wrote it (one byte).
    public var flags: [String: UInt8]
    /// `code-SampleTime` per code.
    public var sampleTimes: [String: Timestamp]

    /// The frame asks for an answer (Flag bit 0).
    public var wantsAnswer: Bool { flag & 1 == 1 }
}

/// A data flag (`code-Flag`): N is valid data; the standard's others are F (stopped),
/// M (maintenance), S (manual), D (fault), C (calibration), T (over range), B
/// (communication fault). Lower case is the same letter; anything else is `other`.
public enum HJ212Flag: String, Sendable, CaseIterable {
    case n = "N", f = "F", m = "M", s = "S", d = "D", c = "C", t = "T", b = "B", other

    public init(byte: UInt8) {
        let upper = byte >= 97 && byte <= 122 ? byte - 32 : byte
        self = upper >= 65 && upper <= 90 ? HJ212Flag(rawValue: String(UnicodeScalar(upper))) ?? .other : .other
    }

    /// The counter label: the letter, or `other`.
    public var label: String { rawValue }
}

extension HJ212Frame {
    /// Parses one whole frame (as an MQTT payload carries it: the CRLF may be left out).
    /// - Throws: the reason, with a reject code of its own for each kind of mistake.
    public static func parse(_ p: UnsafeRawBufferPointer, zone: LocalTimeZone) throws(RejectReason) -> HJ212Frame {
        guard p.count <= HJ212.maxFrameBytes else {
            throw RejectReason(.hj212TooLarge, "the frame has \(p.count) bytes; HJ 212 frames have at most \(HJ212.maxFrameBytes)")
        }
        guard p.count >= 2, p[0] == 35, p[1] == 35 else {
            let at = HJ212.nextStart(p, from: 0)
            throw RejectReason(
                .hj212Garbage,
                at < p.count ? "\(at) bytes before the frame's ##" : "the payload does not start with ## (no HJ 212 frame)")
        }
        guard p.count >= 6 else { throw RejectReason(.hj212Truncated, "the frame ends after \(p.count) bytes, inside its length") }
        var len = 0
        for i in 2..<6 {
            guard p[i] >= 48, p[i] <= 57 else {
                throw RejectReason(.hj212BadLength, "the length field \(Self.text(p, 2, 6)) is not four decimal digits")
            }
            len = len * 10 + Int(p[i] - 48)
        }
        var n = p.count
        if n >= 2, p[n - 2] == 13, p[n - 1] == 10 { n -= 2 }
        let end = 6 + len + 4
        if n < end {
            // The length is larger than what came: either the frame is cut short, or the
            // field lies. A complete tail (CRLF) says the field lies.
            if n < p.count {
                throw RejectReason(.hj212BadLength, "the length field says \(len) bytes, but the data segment has \(max(0, n - 10))")
            }
            throw RejectReason(.hj212Truncated, "the frame ends after \(p.count) bytes; its length field says \(end)")
        }
        if n > end {
            throw RejectReason(.hj212BadLength, "the length field says \(len) bytes, but the data segment has \(n - 10)")
        }
        var expected: UInt16 = 0
        for i in (6 + len)..<end {
            guard let h = HJ212.hexValue(p[i]) else {
                throw RejectReason(.hj212BadCRC, "the CRC \(Self.text(p, 6 + len, end)) is not four hex digits")
            }
            expected = expected << 4 | h
        }
        let segment = UnsafeRawBufferPointer(rebasing: p[6..<(6 + len)])
        let actual = HJ212.crc(segment)
        guard actual == expected else {
            throw RejectReason(
                .hj212BadCRC, "CRC \(Self.text(p, 6 + len, end)) does not match the data segment (its CRC is \(HJ212.hex4(actual)))")
        }
        return try parseSegment(segment, zone: zone)
    }

    static func text(_ p: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> String {
        PayloadDecoder.quoted(String(decoding: UnsafeRawBufferPointer(rebasing: p[from..<min(to, p.count)]), as: UTF8.self))
    }

    /// The fields of a data segment whose CRC was right.
    static func parseSegment(_ s: UnsafeRawBufferPointer, zone: LocalTimeZone) throws(RejectReason) -> HJ212Frame {
        guard s.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw RejectReason(.hj212Malformed, "the data segment holds bytes that are not printable ASCII")
        }
        let text = String(decoding: s, as: UTF8.self)
        guard let cpRange = text.firstRange(of: "CP=&&") else {
            throw RejectReason(.hj212MissingCP, "the data segment has no CP=&&...&& part")
        }
        let afterCP = text[cpRange.upperBound...]
        guard afterCP.hasSuffix("&&") else {
            throw RejectReason(.hj212MissingCP, "the CP part does not end with &&")
        }
        let cp = afterCP.dropLast(2)
        var fields: [Substring: Substring] = [:]
        for part in text[..<cpRange.lowerBound].split(separator: ";") {
            guard let eq = part.firstIndex(of: "=") else {
                throw RejectReason(.hj212Malformed, "field \(PayloadDecoder.quoted(String(part))) has no =")
            }
            fields[part[..<eq]] = part[part.index(after: eq)...]
        }
        for key in ["ST", "CN", "MN", "Flag"] where fields[Substring(key)] == nil {
            throw RejectReason(.hj212Malformed, "the data segment has no \(key) field")
        }
        guard let cn = Int(fields["CN"]!), fields["CN"]!.count == 4 else {
            throw RejectReason(.hj212Malformed, "CN=\(fields["CN"]!) is not a four-digit command")
        }
        guard let flag = Int(fields["Flag"]!), flag >= 0, flag < 256 else {
            throw RejectReason(.hj212Malformed, "Flag=\(fields["Flag"]!) is not a number from 0 to 255")
        }
        var frame = HJ212Frame(
            qn: fields["QN"].map(String.init), st: String(fields["ST"]!), cn: cn, pw: String(fields["PW"] ?? ""),
            mn: String(fields["MN"]!), flag: flag, dataTime: nil, values: [], flags: [:], sampleTimes: [:])
        for group in cp.split(separator: ";") {
            for item in group.split(separator: ",") {
                guard let eq = item.firstIndex(of: "=") else {
                    throw RejectReason(.hj212Malformed, "CP item \(PayloadDecoder.quoted(String(item))) has no =")
                }
                let key = item[..<eq]
                let value = item[item.index(after: eq)...]
                if key == "DataTime" {
                    frame.dataTime = try localTime(value, zone: zone, what: "DataTime")
                    continue
                }
                guard let dash = key.lastIndex(of: "-") else { continue }  // PolId, RestartTime...: not readings
                let code = String(key[..<dash])
                let suffix = key[key.index(after: dash)...]
                if suffix == "Flag" {
                    guard value.utf8.count == 1 else {
                        throw RejectReason(.hj212Malformed, "\(key)=\(value) is not a one-letter flag")
                    }
                    frame.flags[code] = value.utf8.first!
                } else if suffix == "SampleTime" {
                    frame.sampleTimes[code] = try localTime(value, zone: zone, what: String(key))
                } else if let kind = HJ212Value.Kind(rawValue: String(suffix)) {
                    frame.values.append(HJ212Value(code: code, kind: kind, value: try number(value, String(key))))
                }
                // Other suffixes (ZsRtd, EFlag...) are not readings vigil keeps.
            }
        }
        return frame
    }

    /// A decimal number as HJ 212 writes them: optional sign, digits, optional fraction.
    static func number(_ v: Substring, _ key: String) throws(RejectReason) -> Double {
        var digits = 0
        var dots = 0
        for (i, c) in v.utf8.enumerated() {
            if c >= 48 && c <= 57 {
                digits += 1
            } else if c == 46 {
                dots += 1
            } else if !(i == 0 && (c == 45 || c == 43)) {
                digits = 0
                break
            }
        }
        guard digits > 0, dots <= 1, v.utf8.count <= 32, let d = Double(v) else {
            throw RejectReason(.notANumber, "\(key)=\(PayloadDecoder.quoted(String(v.prefix(40)))) is not a number")
        }
        guard d.isFinite else { throw RejectReason(.nonFinite, "\(key) is out of range") }
        return d
    }

    /// `yyyyMMddHHmmss` in local time.
    static func localTime(_ v: Substring, zone: LocalTimeZone, what: String) throws(RejectReason) -> Timestamp {
        let b = Array(v.utf8)
        guard b.count == 14, b.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw RejectReason(.badTimestamp, "\(what)=\(PayloadDecoder.quoted(String(v.prefix(40)))) is not yyyyMMddHHmmss")
        }
        func num(_ from: Int, _ count: Int) -> Int64 {
            var n: Int64 = 0
            for i in from..<(from + count) { n = n * 10 + Int64(b[i] - 48) }
            return n
        }
        let (y, mo, d, h, mi, s) = (num(0, 4), num(4, 2), num(6, 2), num(8, 2), num(10, 2), num(12, 2))
        guard y >= 1970, (1...12).contains(mo), d >= 1, d <= Timestamp.daysIn(month: mo, year: y), h < 24, mi < 60, s < 60
        else {
            throw RejectReason(.badTimestamp, "\(what)=\(v) is not a valid date and time")
        }
        let local = Timestamp.days(year: y, month: mo, day: d) * 86_400 + h * 3600 + mi * 60 + s
        return Timestamp(micros: zone.utcSeconds(forLocal: local) * 1_000_000)
    }
}
