import Foundation
import Testing
import VigilTestSupport

@testable import VigilCore

/// HJ 212-2017 frames: framing, CRC, fields, flags, code table, stations, rejects.
@Suite struct HJ212Tests {
    static let zone = LocalTimeZone.shanghai

    static func utc(_ s: String) -> Timestamp { Timestamp.parseRFC3339(s)! }

    static func decode(
        _ bytes: [UInt8], decoder: HJ212Decoder
    ) throws -> ([Reading], HJ212Outcome) {
        var out: [Reading] = []
        let outcome = try bytes.withUnsafeBytes { p in try decoder.decode(p, into: &out) }
        return (out, outcome)
    }

    static func reason(_ bytes: [UInt8], decoder: HJ212Decoder = HJ212Tests.decoder) -> RejectReason? {
        do {
            _ = try decode(bytes, decoder: decoder)
            return nil
        } catch {
            return error as? RejectReason
        }
    }

    static let station = HJ212Station(network: "urban", site: "district-1", device: "aqms-1")
    static let decoder = HJ212Decoder(stations: ["ST001": station], zone: zone)

    static func segment(cn: Int = 2011, mn: String = "ST001", flag: Int = 5, cp: String) -> String {
        "QN=20231008123340461;ST=22;CN=\(cn);PW=123456;MN=\(mn);Flag=\(flag);CP=&&\(cp)&&"
    }

    static func frame(cn: Int = 2011, mn: String = "ST001", flag: Int = 5, cp: String) -> [UInt8] {
        HJ212.frame(segment: segment(cn: cn, mn: mn, flag: flag, cp: cp))
    }

    // MARK: CRC and framing

    /// The standard's CRC, on the corpus's segments (and not MODBUS's).
    @Test func crcOfKnownSegments() {
        let seg = "QN=20220814021304000;ST=22;CN=2011;PW=123456;MN=;Flag=5;CP=&&DataTime=20220814021304;a50001-Rtd=0.00,a50001-Flag=B&&"
        #expect(HJ212.crc(Array(seg.utf8)) == 0x06C0)
        #expect(HJ212.crc([]) == 0xFFFF)
        // CRC-16/MODBUS of "123456789" is 0x4B37; the HJ 212 CRC differs.
        #expect(HJ212.crc(Array("123456789".utf8)) != 0x4B37)
    }

    /// The data answer, byte for byte: its length, segment and CRC.
    @Test func answerFrame() {
        let a = HJ212.answer(cn: 9014, qn: "20160801085857223", pw: "123456", mn: "010000A8900016F000169DC0")
        let seg = "QN=20160801085857223;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&"
        // Length and CRC worked out apart from vigil (the README's algorithm in Python).
        #expect(String(decoding: a, as: UTF8.self) == "##0087\(seg)3240\r\n")
        // It parses as a frame of its own.
        let f = a.withUnsafeBytes { try? HJ212Frame.parse($0, zone: Self.zone) }
        #expect(f?.cn == 9014 && f?.qn == "20160801085857223" && f?.wantsAnswer == false)
    }

    /// The stream scanner: frames, CRLF, garbage, and a frame still coming.
    @Test func scanStream() {
        let f = Self.frame(cp: "DataTime=20231008123340;a34004-Rtd=35.2,a34004-Flag=N")
        func scan(_ b: [UInt8]) -> HJ212.Scan { b.withUnsafeBytes { HJ212.scan($0) } }
        #expect(scan(f) == .frame(count: f.count))
        #expect(scan(Array(f.dropLast(2))) == .frame(count: f.count - 2))
        #expect(scan(Array(f.prefix(20))) == .needMore)
        #expect(scan(Array(f.prefix(1))) == .needMore)
        #expect(scan(Array("xyz".utf8) + f) == .garbage(count: 3))
        #expect(scan(Array("#x".utf8)) == .garbage(count: 1))
        #expect(scan([13, 10] + f) == .lineBreaks(count: 2))
        #expect(scan(Array("##12a4QN=1".utf8) + f) == .badLength(count: 10))
        #expect(scan(Array("##9999".utf8)) == .needMore)
    }

    /// DataTime as the simulator and tests write it, and back.
    @Test func localTimeRoundTrip() throws {
        let t = Self.utc("2026-02-28T16:30:05Z")
        #expect(HJ212.localTime(t, zone: Self.zone) == "20260301003005")
        #expect(try HJ212Frame.localTime("20260301003005", zone: Self.zone, what: "DataTime") == t)
        #expect(HJ212.localTime(Self.utc("1970-01-01T00:00:00Z"), zone: .utc) == "19700101000000")
    }

    // MARK: The corpus

    /// Each frame of ../shared/corpus/hj212 decodes as its README says.
    @Test(.enabled(if: Corpus.isAvailable, "../shared/corpus is absent: HJ 212 corpus skipped"))
    func corpus() throws {
        let url = try #require(Corpus.directory?.appendingPathComponent("hj212/frames.txt"))
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { Array($0.utf8) }
        #expect(lines.count == 4)
        let stations = [
            "2019031801100018": HJ212Station(network: "urban", site: "s1", device: "aq"),
            "010000A8900016F000169DC0": HJ212Station(network: "water", site: "s2", device: "wq"),
            "": HJ212Station(network: "urban", site: "s3", device: "noise"),
            "MYHJ00000000000080011129": HJ212Station(network: "urban", site: "s4", device: "x"),
        ]
        let d = HJ212Decoder(stations: stations, zone: Self.zone)

        // 1: air station, real time, weather with flag N; R01 is no code the table knows.
        let (r1, o1) = try Self.decode(lines[0], decoder: d)
        #expect(o1.frame.cn == 2011 && o1.frame.st == "22" && o1.frame.flag == 5 && o1.frame.wantsAnswer)
        #expect(o1.frame.qn == "20190814170100001" && o1.frame.pw == "123456")
        // R01 (a status code the table does not know) is kept under its own name, no unit.
        #expect(r1.map(\.series.metric) == ["wind_speed", "wind_direction", "air_temperature", "humidity", "air_pressure", "R01"])
        #expect(r1.map(\.value) == [1.7, 199.1, 22.9, 85.8, 98.7, 0])
        #expect(r1.last?.unit == nil)
        #expect(r1.allSatisfy { $0.timestamp == Self.utc("2019-08-14T09:01:00Z") && $0.series.site == "s1" })
        #expect(o1.unknownCodes == ["R01"])
        #expect(o1.flagged.isEmpty)

        // 2: a water sample with SampleTime before its Rtd; w01008 is not built in: stored
        // under its code, no unit, at its SampleTime, until the config names it.
        let (r2u, o2u) = try Self.decode(lines[1], decoder: d)
        #expect(o2u.unknownCodes == ["w01008"])
        #expect(r2u == [
            Reading(
                series: SeriesKey(network: "water", site: "s2", device: "wq", metric: "w01008"), value: 123.456,
                timestamp: Self.utc("2023-10-08T04:33:40Z"), unit: nil),
        ])
        var d2 = d
        d2.codes["w01008"] = HJ212Code(metric: "suspended_solids", unit: "mg/L")
        let (r2, o2) = try Self.decode(lines[1], decoder: d2)
        #expect(o2.frame.sampleTimes["w01008"] == Self.utc("2023-10-08T04:33:40Z"))
        #expect(r2 == [
            Reading(
                series: SeriesKey(network: "water", site: "s2", device: "wq", metric: "suspended_solids"), value: 123.456,
                timestamp: Self.utc("2023-10-08T04:33:40Z"), unit: "mg/L"),
        ])

        // 3: noise code with flag B (communication fault): no reading, counted by flag.
        let (r3, o3) = try Self.decode(lines[2], decoder: d)
        #expect(r3.isEmpty)
        #expect(o3.flagged == [.b: 1])
        #expect(o3.frame.mn == "")

        // 4: a wrong CRC.
        let bad = try #require(Self.reason(lines[3], decoder: d))
        #expect(bad.code == .hj212BadCRC)
        #expect(bad.detail.contains("33EC") && bad.detail.contains("D801"))
    }

    // MARK: Every command and code

    /// Real-time data for every code of the table: metric, unit, scale, DataTime.
    @Test func everyCodeRealtime() throws {
        let codes = HJ212Code.defaults.keys.sorted()
        let cp = "DataTime=20260301080000;" + codes.enumerated().map { "\($1)-Rtd=\($0).5,\($1)-Flag=N" }.joined(separator: ";")
        let (readings, outcome) = try Self.decode(Self.frame(cp: cp), decoder: Self.decoder)
        #expect(outcome.unknownCodes.isEmpty)
        #expect(readings.count == codes.count)
        for (i, code) in codes.enumerated() {
            let c = HJ212Code.defaults[code]!
            #expect(readings[i].series == SeriesKey(network: "urban", site: "district-1", device: "aqms-1", metric: c.metric))
            #expect(readings[i].value == Double(i) + 0.5)
            #expect(readings[i].unit == c.unit)
            #expect(readings[i].timestamp == Self.utc("2026-03-01T00:00:00Z"))
        }
        // The scale turns mg/m3 into ug/m3.
        var d = Self.decoder
        d.codes["a34004"] = HJ212Code(metric: "pm25", unit: "ug/m3", scale: 1000)
        let (scaled, _) = try Self.decode(Self.frame(cp: "DataTime=20260301080000;a34004-Rtd=0.035"), decoder: d)
        #expect(scaled.map(\.value) == [35])
    }

    /// Minute, hourly and daily data: statistics of the interval that starts at DataTime,
    /// stamped at its end, as metrics of their own.
    @Test func intervalCommands() throws {
        let cp = "DataTime=20260301080000;a34004-Avg=40.1,a34004-Min=30,a34004-Max=50.5,a34004-Cou=12,a34004-Flag=N;w01001-Avg=7.2"
        let cases: [(Int, String, String)] = [
            (2051, "1m", "2026-03-01T00:01:00Z"), (2061, "1h", "2026-03-01T01:00:00Z"), (2031, "1d", "2026-03-02T00:00:00Z"),
        ]
        for (cn, suffix, end) in cases {
            let (readings, outcome) = try Self.decode(Self.frame(cn: cn, cp: cp), decoder: Self.decoder)
            #expect(readings.map(\.series.metric) == [
                "pm25_avg_\(suffix)", "pm25_min_\(suffix)", "pm25_max_\(suffix)", "pm25_cou_\(suffix)", "ph_avg_\(suffix)",
            ])
            #expect(readings.map(\.value) == [40.1, 30, 50.5, 12, 7.2])
            #expect(readings.allSatisfy { $0.timestamp == Self.utc(end) })
            #expect(outcome.intervalReadings == 5)
        }
        // A ten-minute minute interval.
        var d = Self.decoder
        d.minuteInterval = .minutes(10)
        let (ten, _) = try Self.decode(Self.frame(cn: 2051, cp: cp), decoder: d)
        #expect(ten.first?.series.metric == "pm25_avg_10m")
        #expect(ten.first?.timestamp == Self.utc("2026-03-01T00:10:00Z"))
        // Real-time data ignores statistics; interval data ignores Rtd.
        let (mixed, _) = try Self.decode(Self.frame(cn: 2011, cp: cp + ";a34002-Rtd=80"), decoder: Self.decoder)
        #expect(mixed.map(\.series.metric) == ["pm10"])
    }

    // MARK: Flags

    /// Only N makes a reading; lower case is the same letter; other letters count as other.
    @Test func flags() throws {
        let letters = ["N", "F", "M", "S", "D", "C", "T", "B", "n", "c", "X", "1"]
        var flagged: [HJ212Flag: Int] = [:]
        var taken = 0
        for l in letters {
            let (r, o) = try Self.decode(
                Self.frame(cp: "DataTime=20260301080000;a34004-Rtd=12,a34004-Flag=\(l);a34002-Rtd=80"), decoder: Self.decoder)
            taken += r.filter { $0.series.metric == "pm25" }.count
            #expect(r.contains { $0.series.metric == "pm10" }, "a value without a flag is valid")
            for (k, v) in o.flagged { flagged[k, default: 0] += v }
        }
        #expect(taken == 2)  // N and n
        #expect(flagged == [.f: 1, .m: 1, .s: 1, .d: 1, .c: 2, .t: 1, .b: 1, .other: 2])
        #expect(HJ212Flag(byte: UInt8(ascii: "c")) == .c)
        #expect(HJ212Flag(byte: UInt8(ascii: "Z")) == .other)
        // A flag of more than one letter is a malformed frame.
        #expect(Self.reason(Self.frame(cp: "DataTime=20260301080000;a34004-Rtd=12,a34004-Flag=NN"))?.code == .hj212Malformed)
    }

    // MARK: Rejects

    /// Each kind of bad frame is a reject with a code of its own and a reason.
    @Test func rejects() throws {
        let good = Self.frame(cp: "DataTime=20260301080000;a34004-Rtd=35.2,a34004-Flag=N")
        #expect(Self.reason(good) == nil)
        let body = Array(good.dropLast(2))
        func code(_ b: [UInt8], decoder: HJ212Decoder = Self.decoder) -> RejectReason.Code? { Self.reason(b, decoder: decoder)?.code }

        // Bad length: the field is larger or smaller than the segment, or not digits.
        var longer = body
        longer.replaceSubrange(2..<6, with: Array(HJ212.pad(body.count - 10 + 1, 4).utf8))
        #expect(code(longer + [13, 10]) == .hj212BadLength)
        var shorter = body
        shorter.replaceSubrange(2..<6, with: Array(HJ212.pad(body.count - 10 - 1, 4).utf8))
        #expect(code(shorter) == .hj212BadLength)
        var letters = body
        letters.replaceSubrange(2..<6, with: Array("00x1".utf8))
        #expect(code(letters) == .hj212BadLength)
        // Truncated: cut short, without its CRLF.
        #expect(code(Array(body.prefix(body.count - 7))) == .hj212Truncated)
        #expect(code(Array(body.prefix(4))) == .hj212Truncated)
        // Garbage before ##.
        #expect(code(Array("junk".utf8) + good) == .hj212Garbage)
        #expect(code(Array("{\"value\": 1}".utf8)) == .hj212Garbage)
        // Oversize: more than a four-digit length can say.
        #expect(code(Array("##9999".utf8) + [UInt8](repeating: 65, count: 10_010)) == .hj212TooLarge)
        // A bad CRC, and one that is not hex.
        var crc = body
        crc[crc.count - 1] = crc[crc.count - 1] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        #expect(code(crc) == .hj212BadCRC)
        crc[crc.count - 1] = UInt8(ascii: "G")
        #expect(code(crc) == .hj212BadCRC)
        // Missing CP.
        #expect(code(HJ212.frame(segment: "QN=1;ST=22;CN=2011;PW=1;MN=ST001;Flag=5")) == .hj212MissingCP)
        #expect(code(HJ212.frame(segment: "QN=1;ST=22;CN=2011;PW=1;MN=ST001;Flag=5;CP=&&DataTime=20260301080000")) == .hj212MissingCP)
        // Unknown code (all of the frame's values): not a reject of the frame (it is answered),
        // stored under the code; the pipeline keeps the reject (HJ212PipelineTests).
        #expect(Self.reason(Self.frame(cp: "DataTime=20260301080000;zz9999-Rtd=1")) == nil)
        let (unknownReadings, unknown) = try Self.decode(Self.frame(cp: "DataTime=20260301080000;zz9999-Rtd=1"), decoder: Self.decoder)
        #expect(unknown.unknownCodes == ["zz9999"] && unknownReadings.map(\.series.metric) == ["zz9999"])
        // Non-numeric values.
        for v in ["abc", "1.2.3", "", "-", "1e5", "nan", "inf", "0x10"] {
            #expect(code(Self.frame(cp: "DataTime=20260301080000;a34004-Rtd=\(v)")) == .notANumber, "\(v)")
        }
        // Bad DataTime, and none.
        for t in ["2026030108000", "20261301080000", "20260230080000", "20260301250000", "2026030108000x", "19600101000000"] {
            #expect(code(Self.frame(cp: "DataTime=\(t);a34004-Rtd=1")) == .badTimestamp, "\(t)")
        }
        #expect(code(Self.frame(cp: "a34004-Rtd=1")) == .badTimestamp)
        // Unknown station, wrong password, commands that carry no data.
        #expect(code(Self.frame(mn: "NOPE", cp: "DataTime=20260301080000;a34004-Rtd=1")) == .hj212UnknownStation)
        let guarded = HJ212Decoder(
            stations: ["ST001": HJ212Station(network: "urban", site: "a", device: "b", password: "secret")], zone: Self.zone)
        #expect(code(good, decoder: guarded) == .hj212BadPassword)
        #expect(code(Self.frame(cn: 9014, cp: "")) == .hj212UnsupportedCommand)
        // Fields that are not key=value, and bytes that are not ASCII.
        #expect(code(HJ212.frame(segment: "QN=1;ST=22;CN=2011;PW=1;MN=ST001;Flag;CP=&&&&")) == .hj212Malformed)
        #expect(code(HJ212.frame(segment: "QN=1;ST=22;CN=2011;PW=1;MN=ST\u{e9}1;Flag=5;CP=&&&&")) == .hj212Malformed)
        #expect(code(HJ212.frame(segment: "QN=1;ST=22;PW=1;MN=ST001;Flag=5;CP=&&&&")) == .hj212Malformed)
    }

    /// A known code beside unknown ones: the known values are taken, the unknown named.
    @Test func unknownBesideKnown() throws {
        let (r, o) = try Self.decode(
            Self.frame(cp: "DataTime=20260301080000;zz1-Rtd=1;a34004-Rtd=35;zz1-Rtd=2;zz2-Rtd=3"), decoder: Self.decoder)
        #expect(r.map(\.series.metric) == ["zz1", "pm25", "zz1", "zz2"])
        #expect(r.map(\.unit) == [nil, "ug/m3", nil, nil])
        #expect(o.unknownCodes == ["zz1", "zz2"])
        // Interval data of an unknown code: its own suffixes; a code too long for a name with
        // them is named and not stored.
        let long = String(repeating: "q", count: 60)
        let (ri, oi) = try Self.decode(
            Self.frame(cn: 2061, cp: "DataTime=20260301080000;zz1-Avg=4;\(long)-Avg=5"), decoder: Self.decoder)
        #expect(ri.map(\.series.metric) == ["zz1_avg_1h"])
        #expect(oi.unknownCodes == ["zz1", long])
    }

    /// A large frame with many values decodes in one pass (dictionary lookups, no rescans).
    @Test func largeFrame() throws {
        var cp = "DataTime=20260301080000"
        var i = 0
        while cp.utf8.count < 9000 {
            cp += ";a34004-Rtd=\(i),a34004-Flag=N"
            i += 1
        }
        let (r, _) = try Self.decode(Self.frame(cp: cp), decoder: Self.decoder)
        #expect(r.count == i)
    }
}
