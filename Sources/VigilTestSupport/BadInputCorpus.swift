import VigilCore

// The bad-input corpus (SPEC section 2; docs/configuration.md#payload-formats): malformed,
// oversized, deep, non-finite, mis-encoded and misnamed messages, each with the reject
// reason vigil must give it, and a shorter list of suspicious-looking messages that vigil
// rightly accepts, with the exact readings they must store. Generated in code, for the
// shipped config's subscriptions; checked in process by VigilDaemonTests and end to end
// by VigilIntegrationTests.

// MARK: - The corpus

/// The kinds of bad input the issue lists, plus two neighbours that belong with them
/// (malformed bare numbers; timestamps and units).
public enum BadInputCategory: String, CaseIterable, Sendable {
    case malformedJSON = "malformed JSON"
    case truncatedJSON = "truncated JSON"
    case malformedNumbers = "malformed bare numbers"
    case nonFinite = "NaN, Infinity, 1e400"
    case bigIntegers = "integers over 2^53"
    case wrongTypes = "wrong types"
    case duplicateKeys = "duplicate keys"
    case manyKeys = "100,000 keys"
    case deepNesting = "nesting 100,000 deep"
    case invalidUTF8 = "invalid UTF-8"
    case nul = "NUL"
    case bom = "BOM"
    case oversize = "64 KiB + 1 and 16 MiB"
    case topics = "topics: + # .. 300 bytes"
    case senmlBase = "SenML bad base fields"
    case timestampsAndUnits = "timestamps and units"
}

/// A message vigil must reject, with the reason it must give.
public struct BadInputCase: Sendable {
    public var category: BadInputCategory
    public var label: String
    /// The topic as sent (bytes: some are not UTF-8).
    public var topic: [UInt8]
    /// The topic with the generated site name left out, to tell distinct inputs apart.
    public var template: String
    public var payload: [UInt8]
    public var expected: RejectReason.Code

    public var topicText: String { String(decoding: topic, as: UTF8.self) }
    public var summary: String {
        "[\(category.rawValue)] \(label) on \(topicText.prefix(80)) (\(payload.count) bytes)"
    }
}

/// A message vigil accepts, rightly, and the readings it must store.
public struct AcceptedInputCase: Sendable {
    public struct Expected: Hashable, Sendable, CustomStringConvertible {
        public var series: String
        public var value: Double
        /// Checked when given; nil means the time of receipt.
        public var timestamp: Timestamp? = nil
        public var description: String { "\(series)=\(value)" + (timestamp.map { "@\($0.rfc3339)" } ?? "") }

        public init(series: String, value: Double, timestamp: Timestamp? = nil) {
            self.series = series
            self.value = value
            self.timestamp = timestamp
        }
    }

    public var category: BadInputCategory
    public var label: String
    public var topic: String
    public var payload: [UInt8]
    public var readings: [Expected]
    /// The unit the series must carry afterwards, when checked.
    public var unit: String? = nil
}

/// The corpus, generated in code: the same `now` gives the same messages.
public struct BadInputCorpus: Sendable {
    public let now: Timestamp
    public private(set) var bad: [BadInputCase] = []
    public private(set) var accepted: [AcceptedInputCase] = []
    private var serial = 0

    /// The topic shapes of the shipped config that generated cases use.
    enum Shape: String {
        /// `energy/+/+/+`, format auto, the topic names the metric.
        case metric = "energy/{site}/meter-1/voltage"
        /// `water/+/+`, format json, one reading per numeric field.
        case fields = "water/{site}/gauge-1"
        /// `city/+/+/senml`, format senml, metrics from the records' names.
        case senml = "city/{site}/aq-1/senml"
    }

    /// A well-formed timestamp, in whole seconds, a minute before `now`.
    var t: Int64 { now.micros / 1_000_000 - 60 }

    private mutating func topic(_ shape: Shape, prefix: String = "bad") -> String {
        serial += 1
        return shape.rawValue.replacingOccurrences(of: "{site}", with: "\(prefix)-\(serial)")
    }

    mutating func reject(
        _ category: BadInputCategory, _ label: String, _ shape: Shape, _ payload: [UInt8], _ expected: RejectReason.Code
    ) {
        bad.append(
            BadInputCase(
                category: category, label: label, topic: Array(topic(shape).utf8), template: shape.rawValue,
                payload: payload, expected: expected))
    }

    mutating func reject(
        _ category: BadInputCategory, _ label: String, _ shape: Shape, _ payload: String, _ expected: RejectReason.Code
    ) {
        reject(category, label, shape, Array(payload.utf8), expected)
    }

    /// A case whose topic is the point: sent as given.
    mutating func rejectTopic(
        _ category: BadInputCategory, _ label: String, _ topic: [UInt8], _ payload: String, _ expected: RejectReason.Code
    ) {
        bad.append(
            BadInputCase(
                category: category, label: label, topic: topic, template: String(decoding: topic, as: UTF8.self),
                payload: Array(payload.utf8), expected: expected))
    }

    mutating func rejectTopic(
        _ category: BadInputCategory, _ label: String, _ topic: String, _ payload: String, _ expected: RejectReason.Code
    ) {
        rejectTopic(category, label, Array(topic.utf8), payload, expected)
    }

    /// An accepted case on a generated topic; `readings` are (metric, value) for the topic's device.
    mutating func accept(
        _ category: BadInputCategory, _ label: String, _ shape: Shape, _ payload: [UInt8],
        _ readings: [(String, Double)], timestamp: Timestamp? = nil, unit: String? = nil
    ) {
        let topic = topic(shape, prefix: "odd")
        let parts = topic.split(separator: "/").map(String.init)
        let base: String
        switch shape {
        case .metric: base = "energy/\(parts[1])/\(parts[2])/"
        case .fields: base = "water/\(parts[1])/\(parts[2])/"
        case .senml: base = "urban/\(parts[1])/\(parts[2])/"
        }
        accepted.append(
            AcceptedInputCase(
                category: category, label: label, topic: topic, payload: payload,
                readings: readings.map { .init(series: base + $0.0, value: $0.1, timestamp: timestamp) }, unit: unit))
    }

    mutating func accept(
        _ category: BadInputCategory, _ label: String, _ shape: Shape, _ payload: String,
        _ readings: [(String, Double)], timestamp: Timestamp? = nil, unit: String? = nil
    ) {
        accept(category, label, shape, Array(payload.utf8), readings, timestamp: timestamp, unit: unit)
    }

    /// An accepted case whose topic is the point.
    mutating func acceptTopic(
        _ category: BadInputCategory, _ label: String, _ topic: String, _ payload: String, series: String, value: Double
    ) {
        accepted.append(
            AcceptedInputCase(
                category: category, label: label, topic: topic, payload: Array(payload.utf8),
                readings: [.init(series: series, value: value)]))
    }

    /// Bad input, generated for `now` (timestamps in the future or past the retention are
    /// relative to it, with margins of an hour or a day).
    public static func make(now: Timestamp) -> BadInputCorpus {
        var c = BadInputCorpus(now: now)
        c.malformedJSON()
        c.truncatedJSON()
        c.malformedNumbers()
        c.nonFinite()
        c.bigIntegers()
        c.wrongTypes()
        c.duplicateKeys()
        c.manyKeys()
        c.deepNesting()
        c.invalidUTF8()
        c.nul()
        c.bom()
        c.oversize()
        c.topics()
        c.senmlBase()
        c.timestampsAndUnits()
        return c
    }

    // MARK: Categories

    private mutating func malformedJSON() {
        let cat = BadInputCategory.malformedJSON
        // On `water/+/+` (format json): each text breaks RFC 8259 somewhere.
        let texts: [(String, String)] = [
            ("empty payload", ""),
            ("whitespace only", " \n\t "),
            ("lone close brace", "}"),
            ("unquoted key", "{level:1}"),
            ("single-quoted key", "{'level':1}"),
            ("missing colon", #"{"level" 1}"#),
            ("missing value", #"{"level":}"#),
            ("leading zero", #"{"level":01}"#),
            ("no digits after the point", #"{"level":1.}"#),
            ("no digit before the point", #"{"level":.5}"#),
            ("plus sign", #"{"level":+1}"#),
            ("empty exponent", #"{"level":1e}"#),
            ("signed empty exponent", #"{"level":1e+}"#),
            ("lone minus", #"{"level":-}"#),
            ("minus then space", #"{"level":- 1}"#),
            ("hex number", #"{"level":0x10}"#),
            ("two points", #"{"level":1.5.2}"#),
            ("truncated true", #"{"ok":tru,"level":1}"#),
            ("truncated null", #"{"ok":nul,"level":1}"#),
            ("capitalised True", #"{"ok":True,"level":1}"#),
            ("Python None", #"{"ok":None,"level":1}"#),
            ("extra close brace", #"{"level":1}}"#),
            ("trailing word", #"{"level":1} x"#),
            ("two objects", #"{"level":1}{"flow":2}"#),
            ("array closed by a brace", #"{"level":[1,2}}"#),
            ("invalid escape", #"{"level":1,"note":"\x"}"#),
            ("short unicode escape", #"{"level":1,"note":"\u12"}"#),
            ("non-hex unicode escape", #"{"level":1,"note":"\u12G4"}"#),
            ("unterminated string", #"{"level":1,"note":"abc}"#),
            ("missing comma", #"{"level":1 "flow":2}"#),
            ("semicolon separator", #"{"level":1;"flow":2}"#),
            ("line comment", "{\"level\"://c\n1}"),
            ("block comment", #"{"level":1/*c*/}"#),
            ("trailing comma", #"{"level":1,}"#),
            ("leading comma", #"{,"level":1}"#),
            ("double comma", #"{"level":1,,"flow":2}"#),
            ("trailing comma in array", #"{"level":1,"list":[1,]}"#),
            ("raw tab in string", "{\"level\":1,\"note\":\"a\tb\"}"),
            ("raw newline in string", "{\"level\":1,\"note\":\"a\nb\"}"),
            ("form feed is not whitespace", "\u{0C}{\"level\":1}"),
            ("vertical tab is not whitespace", "{\"level\":\u{0B}1}"),
            ("non-breaking space is not whitespace", "{\"level\":\u{A0}1}"),
        ]
        for (label, text) in texts { reject(cat, label, .fields, text, .invalidJSON) }
        // The same mistakes where auto sees an object or a pack.
        reject(cat, "unclosed object, topic metric", .metric, #"{"value":1"#, .invalidJSON)
        reject(cat, "trailing comma, topic metric", .metric, #"{"value":1,}"#, .invalidJSON)
        reject(cat, "single quotes, topic metric", .metric, "{'value':1}", .invalidJSON)
        reject(cat, "unclosed pack", .senml, #"[{"n":"pm25","v":1}"#, .invalidJSON)
        reject(cat, "trailing comma in pack", .senml, #"[{"n":"pm25","v":1},]"#, .invalidJSON)
        reject(cat, "pack with garbage after it", .senml, #"[{"n":"pm25","v":1}] ]"#, .invalidJSON)
        reject(cat, "empty payload on a SenML topic", .senml, "", .invalidJSON)
    }

    private mutating func truncatedJSON() {
        let cat = BadInputCategory.truncatedJSON
        // Every third prefix of an object: none is a whole JSON text.
        let fields = #"{"ts":\#(t),"water_level":4.61,"rainfall":0.5,"unit":"m","seq":7,"status":"ok"}"#
        let fb = Array(fields.utf8)
        for cut in stride(from: 1, to: fb.count, by: 3) {
            reject(cat, "object cut at \(cut) of \(fb.count)", .fields, Array(fb[..<cut]), .invalidJSON)
        }
        reject(cat, "object missing its last brace", .fields, Array(fb.dropLast()), .invalidJSON)
        let pack = #"[{"bn":"urn:dev:aq-1:","bt":\#(t),"bu":"ug/m3","n":"pm25","v":35.5},{"n":"pm10","t":1,"v":80}]"#
        let pb = Array(pack.utf8)
        for cut in stride(from: 1, to: pb.count, by: 8) {
            reject(cat, "pack cut at \(cut) of \(pb.count)", .senml, Array(pb[..<cut]), .invalidJSON)
        }
        reject(cat, "pack missing its last bracket", .senml, Array(pb.dropLast()), .invalidJSON)
        let single = #"{"value":231.4,"ts":\#(t),"unit":"V"}"#
        let sb = Array(single.utf8)
        for cut in stride(from: 1, to: sb.count, by: 6) {
            reject(cat, "value object cut at \(cut) of \(sb.count)", .metric, Array(sb[..<cut]), .invalidJSON)
        }
    }

    private mutating func malformedNumbers() {
        let cat = BadInputCategory.malformedNumbers
        // On `energy/+/+/+` (auto): anything not starting with `{` or `[` must be one JSON number.
        let texts: [(String, String)] = [
            ("empty payload", ""),
            ("spaces only", "   "),
            ("a word", "abc"),
            ("hex", "0x1F"),
            ("decimal comma", "231,4"),
            ("two numbers", "1 2"),
            ("double minus", "--1"),
            ("two points", "1..2"),
            ("no leading digit", ".5"),
            ("plus sign", "+1"),
            ("leading zero", "01"),
            ("empty exponent", "1e"),
            ("signed empty exponent", "1e+"),
            ("lone minus", "-"),
            ("trailing point", "1."),
            ("digit separators", "1_000"),
            ("unit suffix", "231.4V"),
            ("fraction", "1/2"),
            ("fullwidth digit", "\u{FF11}"),
            ("Arabic-Indic digit", "\u{0661}"),
            ("binary literal", "0b101"),
            ("a number then a comma", "231.4,"),
        ]
        for (label, text) in texts { reject(cat, label, .metric, text, .notANumber) }
    }

    private mutating func nonFinite() {
        let cat = BadInputCategory.nonFinite
        // Bare: the words are not JSON numbers (not_a_number); overflow is non_finite.
        for word in ["NaN", "nan", "-NaN", "Infinity", "-Infinity", "inf", "+Inf", "Inf", "1.#INF"] {
            reject(cat, "bare \(word)", .metric, word, .notANumber)
        }
        let huge = "1" + String(repeating: "0", count: 400)
        for text in ["1e400", "-1e400", "1E309", "2e308", "1.8e308", huge, "-" + huge, "0.1e310"] {
            reject(cat, "bare \(text.prefix(12))\(text.count > 12 ? "... (\(text.count) chars)" : "")", .metric, text, .nonFinite)
        }
        // In objects, NaN and Infinity are not JSON at all; overflow is non_finite.
        reject(cat, "value NaN", .metric, #"{"value":NaN}"#, .invalidJSON)
        reject(cat, "value Infinity", .metric, #"{"value":Infinity}"#, .invalidJSON)
        reject(cat, "value -Infinity", .metric, #"{"value":-Infinity}"#, .invalidJSON)
        reject(cat, "value 1e400", .metric, #"{"value":1e400}"#, .nonFinite)
        reject(cat, "value -1e400", .metric, #"{"value":-1e400}"#, .nonFinite)
        reject(cat, "metric field 1e400", .metric, #"{"voltage":1e400}"#, .nonFinite)
        reject(cat, "field NaN", .fields, #"{"level":NaN}"#, .invalidJSON)
        reject(cat, "field 1e400", .fields, #"{"level":1e400}"#, .nonFinite)
        reject(cat, "one good field, one -1e999", .fields, #"{"level":4.2,"flow":-1e999}"#, .nonFinite)
        reject(cat, "400-digit field", .fields, #"{"level":\#(huge)}"#, .nonFinite)
        reject(cat, "SenML v 1e400", .senml, #"[{"n":"pm25","v":1e400}]"#, .nonFinite)
        reject(cat, "SenML v NaN", .senml, #"[{"n":"pm25","v":NaN}]"#, .invalidJSON)
        reject(cat, "SenML s 1e400", .senml, #"[{"n":"rain","s":1e400}]"#, .nonFinite)
        reject(cat, "SenML second record 1e400", .senml, #"[{"n":"pm25","v":1},{"n":"pm10","v":1e400}]"#, .nonFinite)
        reject(cat, "SenML t 1e400", .senml, #"[{"n":"pm25","t":1e400,"v":1}]"#, .nonFinite)
        // Underflow is not an error: the nearest double is zero or a subnormal.
        accept(cat, "1e-400 underflows to 0", .metric, "1e-400", [("voltage", 0)])
        accept(cat, "smallest subnormal", .metric, "4.9e-324", [("voltage", Double.leastNonzeroMagnitude)])
        accept(cat, "largest finite", .metric, "1.7976931348623157e308", [("voltage", Double.greatestFiniteMagnitude)])
    }

    private mutating func bigIntegers() {
        let cat = BadInputCategory.bigIntegers
        // Values are doubles (SPEC section 2): an integer past 2^53 is rounded to the nearest
        // double, as every JSON reader that maps numbers to IEEE 754 does (RFC 8259 section 6).
        accept(cat, "2^53 + 1, bare", .metric, "9007199254740993", [("voltage", 9_007_199_254_740_992)])
        accept(cat, "-(2^53 + 1), bare", .metric, "-9007199254740993", [("voltage", -9_007_199_254_740_992)])
        accept(cat, "2^53 + 1 in value", .metric, #"{"value":9007199254740993}"#, [("voltage", 9_007_199_254_740_992)])
        accept(cat, "2^53 + 3 rounds to even", .senml, #"[{"n":"count","v":9007199254740995}]"#, [("count", 9_007_199_254_740_996)])
        accept(cat, "2^64", .metric, "18446744073709551616", [("voltage", 18_446_744_073_709_551_616.0)])
        accept(cat, "20 nines", .metric, "99999999999999999999", [("voltage", 1e20)])
        accept(cat, "30 digits in a field", .fields, #"{"counter":123456789012345678901234567890}"#, [("counter", 1.2345678901234568e29)])
        // As timestamps they are instants far away, or not instants at all.
        reject(cat, "ts 2^50 (milliseconds: year 37,648)", .metric, #"{"value":1,"ts":1125899906842624}"#, .futureTimestamp)
        // Past year 287,000 (9e12 s) vigil cannot represent the instant at all.
        reject(cat, "ts 2^53 + 1 (milliseconds: year 287,000)", .metric, #"{"value":1,"ts":9007199254740993}"#, .badTimestamp)
        reject(cat, "ts 20 nines", .metric, #"{"value":1,"ts":99999999999999999999}"#, .badTimestamp)
        reject(cat, "ts 2^63", .fields, #"{"level":1,"ts":9223372036854775808}"#, .badTimestamp)
        reject(cat, "SenML bt 2^53 + 1", .senml, #"[{"n":"pm25","bt":9007199254740993,"v":1}]"#, .badTimestamp)
    }

    private mutating func wrongTypes() {
        let cat = BadInputCategory.wrongTypes
        // The topic names the metric.
        reject(cat, "bare true", .metric, "true", .notANumber)
        reject(cat, "bare false", .metric, "false", .notANumber)
        reject(cat, "bare null", .metric, "null", .notANumber)
        reject(cat, "bare string number", .metric, #""231.4""#, .notANumber)
        reject(cat, "value as string", .metric, #"{"value":"231.4"}"#, .notANumber)
        reject(cat, "value true", .metric, #"{"value":true}"#, .notANumber)
        reject(cat, "value null", .metric, #"{"value":null}"#, .notANumber)
        reject(cat, "value array", .metric, #"{"value":[231.4]}"#, .notANumber)
        reject(cat, "value object", .metric, #"{"value":{"v":231.4}}"#, .notANumber)
        reject(cat, "metric field as string", .metric, #"{"voltage":"231.4"}"#, .notANumber)
        reject(cat, "empty object", .metric, "{}", .noReadings)
        reject(cat, "only a unit", .metric, #"{"unit":"V"}"#, .noReadings)
        reject(cat, "only a timestamp", .metric, #"{"ts":\#(t)}"#, .noReadings)
        reject(cat, "another metric's field", .metric, #"{"current":12.5}"#, .noReadings)
        reject(cat, "array of numbers (auto reads SenML)", .metric, "[231.4]", .invalidSenML)
        // One reading per numeric field.
        reject(cat, "field as string", .fields, #"{"level":"4.2"}"#, .notANumber)
        // README: not_a_number "when a field holds a number written as a string"; vigil says so
        // for any string field when nothing numeric is left (see the report).
        reject(cat, "only a status string", .fields, #"{"status":"ok"}"#, .notANumber)
        reject(cat, "field true", .fields, #"{"level":true}"#, .noReadings)
        reject(cat, "field null", .fields, #"{"level":null}"#, .noReadings)
        reject(cat, "field array", .fields, #"{"level":[4.2]}"#, .noReadings)
        reject(cat, "field object", .fields, #"{"level":{"v":4.2}}"#, .noReadings)
        reject(cat, "top-level array", .fields, "[4.2]", .noReadings)
        reject(cat, "top-level string", .fields, #""4.2""#, .noReadings)
        reject(cat, "top-level number without a metric", .fields, "4.2", .noReadings)
        reject(cat, "top-level true", .fields, "true", .noReadings)
        reject(cat, "top-level null", .fields, "null", .noReadings)
        reject(cat, "empty object", .fields, "{}", .noReadings)
        reject(cat, "only metadata", .fields, #"{"ts":\#(t),"seq":3,"unit":"m"}"#, .noReadings)
        // SenML.
        reject(cat, "object, not a pack", .senml, #"{"n":"pm25","v":1}"#, .invalidSenML)
        reject(cat, "string, not a pack", .senml, #""pm25""#, .invalidSenML)
        reject(cat, "number, not a pack", .senml, "42", .invalidSenML)
        reject(cat, "empty pack", .senml, "[]", .invalidSenML)
        reject(cat, "record is a number", .senml, "[1]", .invalidSenML)
        reject(cat, "record is null", .senml, "[null]", .invalidSenML)
        reject(cat, "record is an array", .senml, #"[[{"n":"pm25","v":1}]]"#, .invalidSenML)
        reject(cat, "second record a string", .senml, #"[{"n":"pm25","v":1},"x"]"#, .invalidSenML)
        reject(cat, "v as string", .senml, #"[{"n":"pm25","v":"35"}]"#, .invalidSenML)
        reject(cat, "v true", .senml, #"[{"n":"pm25","v":true}]"#, .invalidSenML)
        reject(cat, "v null", .senml, #"[{"n":"pm25","v":null}]"#, .invalidSenML)
        reject(cat, "n a number", .senml, #"[{"n":25,"v":1}]"#, .invalidSenML)
        reject(cat, "s as string", .senml, #"[{"n":"rain","s":"1"}]"#, .invalidSenML)
        reject(cat, "t as string", .senml, #"[{"n":"pm25","t":"0","v":1}]"#, .invalidSenML)
        reject(cat, "ut as string", .senml, #"[{"n":"pm25","ut":"60","v":1}]"#, .invalidSenML)
        reject(cat, "vs a number", .senml, #"[{"n":"label","vs":1}]"#, .invalidSenML)
        reject(cat, "vb a string", .senml, #"[{"n":"door","vb":"true"}]"#, .invalidSenML)
        reject(cat, "vd a number", .senml, #"[{"n":"blob","vd":5}]"#, .invalidSenML)
        reject(cat, "u a number", .senml, #"[{"n":"pm25","u":5,"v":1}]"#, .badUnit)
        reject(cat, "record with no name", .senml, #"[{"v":1}]"#, .invalidSenML)
        reject(cat, "only string values", .senml, #"[{"n":"label","vs":"x"},{"n":"door","vb":true}]"#, .noReadings)
        reject(cat, "must-understand field", .senml, #"[{"n":"pm25","v":1,"foo_":1}]"#, .invalidSenML)
    }

    private mutating func duplicateKeys() {
        let cat = BadInputCategory.duplicateKeys
        // RFC 8259 section 4: names SHOULD be unique; with duplicates, many readers take the last
        // one (JavaScript, Python, Go). vigil does for a single value and for SenML fields.
        accept(cat, "value twice: the last", .metric, #"{"value":1.5,"value":2.5}"#, [("voltage", 2.5)])
        accept(cat, "a bad value then a good one: the last", .metric, #"{"value":"x","value":4.5}"#, [("voltage", 4.5)])
        accept(
            cat, "ts twice: the last", .metric, #"{"value":6.5,"ts":\#(t - 30),"ts":\#(t)}"#, [("voltage", 6.5)],
            timestamp: Timestamp(seconds: t))
        accept(cat, "unit twice: the last", .metric, #"{"unit":"V","unit":"kV","value":7.5}"#, [("voltage", 7.5)], unit: "kV")
        accept(cat, "SenML v twice: the last", .senml, #"[{"n":"pm25","v":1,"v":8.5}]"#, [("pm25", 8.5)])
        accept(cat, "SenML bn twice: the last", .senml, #"[{"bn":"a:","bn":"b:","n":"pm10","v":9.5}]"#, [("pm10", 9.5)])
        // One reading per numeric field: a field given twice is still one field, and the last
        // one wins as it does for "value" above.
        accept(cat, "field twice: the last", .fields, #"{"level":1.25,"level":2.25}"#, [("level", 2.25)])
        reject(cat, "a good value then a bad one: the last", .metric, #"{"value":5.5,"value":"x"}"#, .notANumber)
        reject(cat, "a good ts then a bad one", .metric, #"{"value":1,"ts":\#(t),"ts":"never"}"#, .badTimestamp)
        reject(cat, "SenML n twice, the last invalid", .senml, #"[{"n":"pm25","n":"pm 25","v":1}]"#, .badName)
    }

    private mutating func manyKeys() {
        let cat = BadInputCategory.manyKeys
        func object(_ n: Int, _ member: (Int) -> String) -> String {
            "{" + (0..<n).map(member).joined(separator: ",") + "}"
        }
        // 100,000 keys do not fit in 64 KiB: refused before parsing (the in-process test also
        // parses them with the limit raised, see `beyondTheSizeLimit`).
        reject(cat, "100,000 numeric keys", .fields, object(100_000) { #""k\#($0)":\#($0)"# }, .payloadTooLarge)
        reject(cat, "100,000 times the same key", .fields, object(100_000) { _ in #""a":1"# }, .payloadTooLarge)
        reject(cat, "100,000 keys and a value", .metric, object(100_000) { #""k\#($0)":null"# }, .payloadTooLarge)
        reject(
            cat, "100,000 SenML records", .senml,
            "[" + (0..<100_000).map { #"{"n":"m\#($0)","v":1}"# }.joined(separator: ",") + "]", .payloadTooLarge)
        // As many keys as fit: the message is still judged whole.
        reject(cat, "4,000 null keys", .fields, object(4000) { #""k\#($0)":null"# }, .noReadings)
        reject(cat, "4,000 string keys", .fields, object(4000) { #""k\#($0)":"x""# }, .notANumber)
        reject(cat, "4,000 numeric keys, the last misnamed", .fields, object(4000) { $0 == 3999 ? #""bad key":1"# : #""k\#($0)":1"# }, .badName)
        reject(cat, "4,000 numeric keys, the last 1e400", .fields, object(4000) { $0 == 3999 ? #""k\#($0)":1e400"# : #""k\#($0)":1"# }, .nonFinite)
        reject(cat, "4,000 keys, none the metric", .metric, object(4000) { #""k\#($0)":1"# }, .noReadings)
        // Every field a reading, as the SPEC says: 300 series from one message.
        accept(cat, "300 numeric keys", .fields, object(300) { #""k\#($0)":\#($0)"# }, (0..<300).map { ("k\($0)", Double($0)) })
    }

    private mutating func deepNesting() {
        let cat = BadInputCategory.deepNesting
        func nested(_ depth: Int, open: String, close: String, inner: String = "") -> String {
            String(repeating: open, count: depth) + inner + String(repeating: close, count: depth)
        }
        // 100,000 deep does not fit in 64 KiB (see `beyondTheSizeLimit` for the parser itself).
        reject(cat, "100,000 arrays", .fields, nested(100_000, open: "[", close: "]"), .payloadTooLarge)
        reject(cat, "100,000 objects", .fields, nested(100_000, open: #"{"a":"#, close: "}", inner: "1"), .payloadTooLarge)
        reject(cat, "100,000 arrays, auto", .metric, nested(100_000, open: "[", close: "]"), .payloadTooLarge)
        // Deep but small: refused at depth 33, whatever follows.
        reject(cat, "60,000 unclosed arrays", .fields, String(repeating: "[", count: 60_000), .tooDeep)
        reject(cat, "10,000 unclosed objects, auto", .metric, String(repeating: #"{"a":"#, count: 10_000), .tooDeep)
        reject(cat, "33 arrays", .fields, nested(33, open: "[", close: "]"), .tooDeep)
        reject(cat, "33 objects", .fields, nested(33, open: #"{"a":"#, close: "}", inner: "1"), .tooDeep)
        reject(cat, "33 arrays, auto reads SenML", .metric, nested(33, open: "[", close: "]"), .tooDeep)
        reject(cat, "33 levels on a SenML topic", .senml, nested(33, open: "[", close: "]"), .tooDeep)
        reject(cat, "alternating arrays and objects", .fields, nested(20, open: #"[{"a":"#, close: "}]", inner: "1"), .tooDeep)
        reject(
            cat, "a good field beside a deep one", .fields,
            #"{"level":4.2,"deep":\#(nested(33, open: "[", close: "]"))}"#, .tooDeep)
        reject(cat, "deep value", .metric, #"{"value":\#(nested(40, open: "[", close: "]"))}"#, .tooDeep)
        // Exactly the limit parses; what it holds is then judged.
        reject(cat, "32 objects, nothing numeric at the top", .fields, nested(32, open: #"{"a":"#, close: "}", inner: "1"), .noReadings)
        reject(cat, "32 arrays on a SenML topic", .senml, nested(32, open: "[", close: "]"), .invalidSenML)
        accept(
            cat, "depth 32 beside a number: the nested value is ignored", .fields,
            #"{"level":9.5,"meta":\#(nested(31, open: #"{"a":"#, close: "}", inner: "1"))}"#, [("level", 9.5)])
    }

    private mutating func invalidUTF8() {
        let cat = BadInputCategory.invalidUTF8
        let sequences: [(String, [UInt8])] = [
            ("0xFF", [0xFF]),
            ("0xFE", [0xFE]),
            ("lone continuation byte", [0x80]),
            ("overlong slash (C0 AF)", [0xC0, 0xAF]),
            ("overlong (C1 BF)", [0xC1, 0xBF]),
            ("overlong 3-byte (E0 80 AF)", [0xE0, 0x80, 0xAF]),
            ("overlong 4-byte (F0 80 80 AF)", [0xF0, 0x80, 0x80, 0xAF]),
            ("UTF-16 surrogate (ED A0 80)", [0xED, 0xA0, 0x80]),
            ("beyond U+10FFFF (F4 90 80 80)", [0xF4, 0x90, 0x80, 0x80]),
            ("F5 lead byte", [0xF5, 0x80, 0x80, 0x80]),
            ("5-byte sequence", [0xF8, 0x88, 0x80, 0x80, 0x80]),
            ("truncated 3-byte", [0xE2, 0x82]),
            ("truncated 2-byte", [0xC3]),
            ("truncated 4-byte", [0xF0, 0x9F, 0x98]),
            ("Latin-1 e-acute", [0xE9]),
        ]
        let b = { (s: String) in Array(s.utf8) }
        for (label, seq) in sequences {
            reject(cat, "\(label) in a string", .fields, b(#"{"level":1,"note":""#) + seq + b(#""}"#), .invalidUTF8)
        }
        reject(cat, "0xFF in a key", .fields, b(#"{""#) + [0xFF] + b(#"":1}"#), .invalidUTF8)
        reject(cat, "Latin-1 micro sign in a unit", .metric, b(#"{"value":1,"unit":""#) + [0xB5] + b(#"g"}"#), .invalidUTF8)
        reject(cat, "Latin-1 in a SenML name", .senml, b(#"[{"n":"caf"#) + [0xE9] + b(#"","v":1}]"#), .invalidUTF8)
        reject(cat, "surrogate in a SenML base name", .senml, b(#"[{"bn":"a"#) + [0xED, 0xB0, 0x80] + b(#":","n":"pm25","v":1}]"#), .invalidUTF8)
        // Outside strings a stray byte is a syntax error, or not a number.
        reject(cat, "0xFF after the object", .fields, b(#"{"level":1}"#) + [0xFF], .invalidJSON)
        reject(cat, "0xFF alone, json", .fields, [0xFF], .invalidJSON)
        reject(cat, "0xFF alone, auto", .metric, [0xFF], .notANumber)
        reject(cat, "0xFF after a number", .metric, b("231.4") + [0xFF], .notANumber)
        // Escaped lone surrogates are valid JSON; they decode to U+FFFD, which no name allows.
        reject(cat, "escaped lone surrogate as a field name", .fields, #"{"\uD800":1}"#, .badName)
        reject(cat, "escaped lone low surrogate as a SenML name", .senml, #"[{"n":"\uDC00","v":1}]"#, .badName)
        // Topics that are not UTF-8 cannot be published (MQTT 1.5.3): in process only.
        rejectTopic(cat, "0xFF as the site (in process)", b("energy/") + [0xFF] + b("/meter-1/voltage"), "1", .badName)
        rejectTopic(cat, "overlong bytes as the device (in process)", b("energy/s/") + [0xC0, 0xAF] + b("/voltage"), "1", .badName)
        rejectTopic(cat, "surrogate as the site (in process)", b("water/") + [0xED, 0xA0, 0x80] + b("/g"), #"{"level":1}"#, .badName)
        rejectTopic(cat, "0xFF as the network (in process)", [0xFF] + b("/s/d/v"), "1", .noSubscription)
    }

    private mutating func nul() {
        let cat = BadInputCategory.nul
        let b = { (s: String) in Array(s.utf8) }
        reject(cat, "raw NUL in a string", .fields, b(#"{"level":1,"note":"a"#) + [0] + b(#"b"}"#), .invalidJSON)
        reject(cat, "NUL after the object", .fields, b(#"{"level":1}"#) + [0], .invalidJSON)
        reject(cat, "NUL before the object", .fields, [0] + b(#"{"level":1}"#), .invalidJSON)
        reject(cat, "NUL inside a number", .fields, b(#"{"level":4"#) + [0] + b(#"2}"#), .invalidJSON)
        reject(cat, "NUL alone", .metric, [0], .notANumber)
        reject(cat, "NUL after a number (C string)", .metric, b("231.4") + [0], .notANumber)
        reject(cat, "NUL before a number", .metric, [0] + b("231.4"), .notANumber)
        reject(cat, "64 KiB of NULs", .metric, [UInt8](repeating: 0, count: 64 * 1024), .notANumber)
        reject(cat, "escaped NUL in a field name", .fields, #"{"le\u0000vel":1}"#, .badName)
        reject(cat, "escaped NUL in a unit", .fields, #"{"level":1,"unit":"m\u0000"}"#, .badUnit)
        reject(cat, "escaped NUL in a timestamp", .metric, #"{"value":1,"ts":"2026-01-01T00:00:00Z\u0000"}"#, .badTimestamp)
        reject(cat, "escaped NUL in a SenML name", .senml, #"[{"n":"pm\u000025","v":1}]"#, .badName)
        reject(cat, "escaped NUL in a SenML base unit", .senml, #"[{"bu":"\u0000","n":"pm25","v":1}]"#, .badUnit)
        // An ignored string may hold anything JSON allows.
        accept(cat, "escaped NUL in an ignored string", .fields, #"{"level":4.25,"note":"a\u0000b"}"#, [("level", 4.25)])
        // U+0000 is not allowed in an MQTT topic (1.5.3): in process only.
        rejectTopic(cat, "NUL in the site (in process)", b("energy/s") + [0] + b("/meter-1/voltage"), "1", .badName)
        rejectTopic(cat, "NUL ending the topic (in process)", b("water/s/g") + [0], #"{"level":1}"#, .badName)
        rejectTopic(cat, "NUL as the topic (in process)", [0], "1", .noSubscription)
    }

    private mutating func bom() {
        let cat = BadInputCategory.bom
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let b = { (s: String) in Array(s.utf8) }
        // RFC 8259 section 8.1: senders MUST NOT add a BOM; a reader MAY ignore one. vigil does not.
        reject(cat, "BOM before a number", .metric, bom + b("231.4"), .notANumber)
        reject(cat, "BOM before a value object (auto sees no brace)", .metric, bom + b(#"{"value":1}"#), .notANumber)
        reject(cat, "BOM before an object", .fields, bom + b(#"{"level":1}"#), .invalidJSON)
        reject(cat, "BOM before a pack", .senml, bom + b(#"[{"n":"pm25","v":1}]"#), .invalidJSON)
        reject(cat, "BOM after an object", .fields, b(#"{"level":1}"#) + bom, .invalidJSON)
        reject(cat, "UTF-16 LE BOM before a number", .metric, [0xFF, 0xFE] + b("1"), .notANumber)
        reject(cat, "UTF-16 BE BOM before an object", .fields, [0xFE, 0xFF] + b(#"{"level":1}"#), .invalidJSON)
        reject(
            cat, "UTF-16 LE text", .fields, b(#"{"level":1}"#).flatMap { [$0, 0] }, .invalidJSON)
        reject(cat, "BOM inside a field name", .fields, b("{\"\u{FEFF}level\":1}"), .badName)
        reject(cat, "BOM inside a SenML name", .senml, b("[{\"n\":\"\u{FEFF}pm25\",\"v\":1}]"), .badName)
        accept(cat, "BOM inside an ignored string", .fields, b("{\"level\":3.25,\"note\":\"\u{FEFF}x\"}"), [("level", 3.25)])
    }

    private mutating func oversize() {
        let cat = BadInputCategory.oversize
        func padded(_ json: String, to size: Int) -> [UInt8] {
            let b = Array(json.utf8)
            return b + [UInt8](repeating: 0x20, count: size - b.count)
        }
        let limit = 64 * 1024
        reject(cat, "64 KiB + 1, value object", .metric, padded(#"{"value":1}"#, to: limit + 1), .payloadTooLarge)
        reject(cat, "64 KiB + 1, fields", .fields, padded(#"{"level":1}"#, to: limit + 1), .payloadTooLarge)
        reject(cat, "64 KiB + 1, pack", .senml, padded(#"[{"n":"pm25","v":1}]"#, to: limit + 1), .payloadTooLarge)
        reject(cat, "64 KiB + 1 digits", .metric, [UInt8](repeating: UInt8(ascii: "7"), count: limit + 1), .payloadTooLarge)
        reject(cat, "1 MiB", .fields, padded(#"{"level":1}"#, to: 1 << 20), .payloadTooLarge)
        // mosquitto's default message_size_limit (0: the MQTT maximum, 256 MiB) lets it through.
        reject(cat, "16 MiB", .metric, padded(#"{"value":1}"#, to: 16 << 20), .payloadTooLarge)
        // The limit itself is allowed.
        accept(cat, "exactly 64 KiB", .metric, padded(#"{"value":8.25}"#, to: limit), [("voltage", 8.25)])
        accept(cat, "exactly 64 KiB of fields", .fields, padded(#"{"level":8.5}"#, to: limit), [("level", 8.5)])
    }

    private mutating func topics() {
        let cat = BadInputCategory.topics
        let a = { (n: Int) in String(repeating: "a", count: n) }
        // Too long: counted in bytes, before anything else.
        rejectTopic(cat, "300 bytes", "energy/\(a(300 - 7 - 16))/meter-1/voltage", "1", .topicTooLong)
        rejectTopic(cat, "257 bytes", "energy/\(a(257 - 7 - 16))/meter-1/voltage", "1", .topicTooLong)
        rejectTopic(cat, "300 bytes, water", "water/\(a(300 - 6 - 8))/gauge-1", #"{"level":1}"#, .topicTooLong)
        rejectTopic(cat, "300 bytes, city", "city/s/\(a(300 - 7 - 6))/senml", #"[{"n":"pm25","v":1}]"#, .topicTooLong)
        rejectTopic(cat, "302 bytes of CJK characters", "energy/s/d/" + String(repeating: "\u{7AD9}", count: 97), "1", .topicTooLong)
        rejectTopic(cat, "256 bytes, a site of 233", "energy/\(a(256 - 7 - 16))/meter-1/voltage", "1", .badName)
        // Names: [A-Za-z0-9_.-]{1,64}.
        rejectTopic(cat, "site of 65", "energy/\(a(65))/meter-1/voltage", "1", .badName)
        rejectTopic(cat, "metric of 65", "energy/s/meter-1/\(a(65))", "1", .badName)
        rejectTopic(cat, "empty site", "energy//meter-1/voltage", "1", .badName)
        rejectTopic(cat, "empty device", "energy/s//voltage", "1", .badName)
        rejectTopic(cat, "empty metric", "energy/s/meter-1/", "1", .badName)
        rejectTopic(cat, "empty device, water", "water/s/", #"{"level":1}"#, .badName)
        rejectTopic(cat, "space in the site", "energy/sub station/meter-1/voltage", "1", .badName)
        rejectTopic(cat, "dollar in the metric", "energy/s/meter-1/volt$", "1", .badName)
        rejectTopic(cat, "Chinese site", "energy/\u{7AD9}\u{70B9}/meter-1/voltage", "1", .badName)
        rejectTopic(cat, "percent-encoded dots", "energy/s/meter-1/%2e%2e", "1", .badName)
        rejectTopic(cat, "backslash", "energy/s/meter\\1/voltage", "1", .badName)
        rejectTopic(cat, "colon in the device", "city/s/aq:1/senml", #"[{"n":"pm25","v":1}]"#, .badName)
        rejectTopic(cat, "tilde", "water/~/gauge-1", #"{"level":1}"#, .badName)
        // `.` and `..` are names by the SPEC's own pattern; they are accepted as they are.
        acceptTopic(cat, "site ..", "energy/../meter-1/voltage", "1.5", series: "energy/../meter-1/voltage", value: 1.5)
        acceptTopic(cat, "device ..", "energy/s-dots/../voltage", "2.5", series: "energy/s-dots/../voltage", value: 2.5)
        acceptTopic(cat, "metric ..", "energy/s-dots/meter-1/..", "3.5", series: "energy/s-dots/meter-1/..", value: 3.5)
        acceptTopic(cat, ". and ..", "water/./..", #"{"level":4.5}"#, series: "water/./../level", value: 4.5)
        // Wildcards cannot be published (MQTT 4.7.1): in process only.
        rejectTopic(cat, "+ as the site (in process)", "energy/+/meter-1/voltage", "1", .badName)
        rejectTopic(cat, "+ as the metric (in process)", "energy/s/meter-1/+", "1", .badName)
        rejectTopic(cat, "# as the metric (in process)", "energy/s/meter-1/#", "1", .badName)
        rejectTopic(cat, "+ inside a name (in process)", "energy/s+1/meter-1/voltage", "1", .badName)
        rejectTopic(cat, "# inside a name (in process)", "water/s/g#1", #"{"level":1}"#, .badName)
        rejectTopic(cat, "+ and + on water (in process)", "water/+/+", #"{"level":1}"#, .badName)
        rejectTopic(cat, "+ on a SenML topic (in process)", "city/+/aq-1/senml", #"[{"n":"pm25","v":1}]"#, .badName)
        // Topics no subscription matches never reach vigil through the broker: in process only.
        rejectTopic(cat, "# alone (in process)", "#", "1", .noSubscription)
        rejectTopic(cat, "energy/# (in process)", "energy/#", "1", .noSubscription)
        rejectTopic(cat, "+ as the network (in process)", "+/s/meter-1/voltage", "1", .noSubscription)
        rejectTopic(cat, "one level too many (in process)", "energy/s/meter-1/voltage/x", "1", .noSubscription)
        rejectTopic(cat, "trailing slash (in process)", "energy/s/meter-1/voltage/", "1", .noSubscription)
        rejectTopic(cat, "leading slash (in process)", "/energy/s/meter-1/voltage", "1", .noSubscription)
        rejectTopic(cat, "too few levels (in process)", "energy/s", "1", .noSubscription)
        rejectTopic(cat, "network in capitals (in process)", "Energy/s/meter-1/voltage", "1", .noSubscription)
        rejectTopic(cat, "another network (in process)", "gas/s/meter-1/flow", "1", .noSubscription)
        rejectTopic(cat, "$SYS (in process)", "$SYS/broker/uptime", "1", .noSubscription)
        rejectTopic(cat, "empty topic (in process)", "", "1", .noSubscription)
        rejectTopic(cat, ".. as the network (in process)", "../s/meter-1/voltage", "1", .noSubscription)
    }

    private mutating func senmlBase() {
        let cat = BadInputCategory.senmlBase
        let x33 = String(repeating: "x", count: 33)
        reject(cat, "bn a number", .senml, #"[{"bn":5,"n":"pm25","v":1}]"#, .invalidSenML)
        reject(cat, "bn null", .senml, #"[{"bn":null,"n":"pm25","v":1}]"#, .invalidSenML)
        reject(cat, "bn an array", .senml, #"[{"bn":["a:"],"n":"pm25","v":1}]"#, .invalidSenML)
        reject(cat, "bn ending in a separator, no n", .senml, #"[{"bn":"urn:dev:aq-1:","v":1}]"#, .badName)
        reject(cat, "bn with a space, no n", .senml, #"[{"bn":"bad name","v":1}]"#, .badName)
        reject(cat, "bn then a misnamed n", .senml, #"[{"bn":"urn:dev:aq-1:","n":"pm 25","v":1}]"#, .badName)
        reject(cat, "bn too long a last part", .senml, #"[{"bn":"urn:\#(String(repeating: "m", count: 65))","v":1}]"#, .badName)
        reject(cat, "bt an RFC 3339 string", .senml, #"[{"bt":"2026-01-01T00:00:00Z","n":"pm25","v":1}]"#, .invalidSenML)
        reject(cat, "bt null", .senml, #"[{"bt":null,"n":"pm25","v":1}]"#, .invalidSenML)
        reject(cat, "bt true", .senml, #"[{"bt":true,"n":"pm25","v":1}]"#, .invalidSenML)
        reject(cat, "bt 1e400", .senml, #"[{"bt":1e400,"n":"pm25","v":1}]"#, .nonFinite)
        reject(cat, "bt before 1970", .senml, #"[{"bt":-1e10,"n":"pm25","v":1}]"#, .badTimestamp)
        reject(cat, "bt out of range", .senml, #"[{"bt":1e15,"n":"pm25","v":1}]"#, .badTimestamp)
        reject(cat, "bt in the year 33658", .senml, #"[{"bt":1e12,"n":"pm25","v":1}]"#, .futureTimestamp)
        reject(cat, "bt an hour ahead", .senml, #"[{"bt":\#(t + 3660),"n":"pm25","v":1}]"#, .futureTimestamp)
        reject(cat, "bt eight days ago", .senml, #"[{"bt":\#(t - 8 * 86400),"n":"pm25","v":1}]"#, .tooOld)
        reject(cat, "relative bt eleven days back", .senml, #"[{"bt":-1e6,"n":"pm25","v":1}]"#, .tooOld)
        reject(cat, "relative bt 1000 s ahead", .senml, #"[{"bt":1000,"n":"pm25","v":1}]"#, .futureTimestamp)
        reject(cat, "bu a number", .senml, #"[{"bu":5,"n":"pm25","v":1}]"#, .badUnit)
        reject(cat, "bu of 33 bytes", .senml, #"[{"bu":"\#(x33)","n":"pm25","v":1}]"#, .badUnit)
        reject(cat, "bu a control character", .senml, #"[{"bu":"\u0001","n":"pm25","v":1}]"#, .badUnit)
        reject(cat, "bu true", .senml, #"[{"bu":true,"n":"pm25","v":1}]"#, .badUnit)
        reject(cat, "bv a string", .senml, #"[{"bv":"1","n":"pm25","v":1}]"#, .invalidSenML)
        reject(cat, "bv 1e400", .senml, #"[{"bv":1e400,"n":"pm25","v":1}]"#, .nonFinite)
        reject(cat, "bv + v overflows", .senml, #"[{"bv":1e308,"n":"pm25","v":1e308}]"#, .nonFinite)
        reject(cat, "bs a string", .senml, #"[{"bs":"0","n":"rain","s":1}]"#, .invalidSenML)
        reject(cat, "bs + s overflows", .senml, #"[{"bs":-1e308,"n":"rain","s":-1e308}]"#, .nonFinite)
        reject(cat, "bver a string", .senml, #"[{"bver":"10","n":"pm25","v":1}]"#, .invalidSenML)
        reject(cat, "bver 1e400", .senml, #"[{"bver":1e400,"n":"pm25","v":1}]"#, .nonFinite)
        reject(cat, "must-understand base field", .senml, #"[{"bn_":"x","n":"pm25","v":1}]"#, .invalidSenML)
        reject(cat, "bad base field in the second record", .senml, #"[{"n":"pm25","v":1},{"bn":7,"n":"pm10","v":2}]"#, .invalidSenML)
        reject(cat, "base fields and no value", .senml, #"[{"bn":"urn:dev:aq-1:","bt":\#(t),"bu":"ug/m3"}]"#, .noReadings)
        // Base fields used as RFC 8428 means them.
        accept(
            cat, "bv added to v, bt and bu applied", .senml,
            #"[{"bn":"urn:dev:ow:10e2073a01080063:","bt":\#(t),"bu":"V","bv":100,"n":"voltage","v":20.5}]"#,
            [("voltage", 120.5)], timestamp: Timestamp(seconds: t), unit: "V")
    }

    private mutating func timestampsAndUnits() {
        let cat = BadInputCategory.timestampsAndUnits
        let texts: [(String, String, RejectReason.Code)] = [
            ("ts true", #"{"value":1,"ts":true}"#, .badTimestamp),
            ("ts null", #"{"value":1,"ts":null}"#, .badTimestamp),
            ("ts an array", #"{"value":1,"ts":[\#(t)]}"#, .badTimestamp),
            ("ts an object", #"{"value":1,"ts":{"s":\#(t)}}"#, .badTimestamp),
            ("ts a word", #"{"value":1,"ts":"yesterday"}"#, .badTimestamp),
            ("ts empty", #"{"value":1,"ts":""}"#, .badTimestamp),
            ("ts seconds as a string", #"{"value":1,"ts":"\#(t)"}"#, .badTimestamp),
            ("ts 30 February", #"{"value":1,"ts":"2026-02-30T00:00:00Z"}"#, .badTimestamp),
            ("ts month 13", #"{"value":1,"ts":"2026-13-01T00:00:00Z"}"#, .badTimestamp),
            ("ts 25 o'clock", #"{"value":1,"ts":"2026-01-01T25:00:00Z"}"#, .badTimestamp),
            ("ts without a zone", #"{"value":1,"ts":"2026-01-01T00:00:00"}"#, .badTimestamp),
            ("ts negative", #"{"value":1,"ts":-5}"#, .badTimestamp),
            ("ts zero", #"{"value":1,"ts":0}"#, .badTimestamp),
            ("ts 1e400", #"{"value":1,"ts":1e400}"#, .badTimestamp),
            ("time a word", #"{"value":1,"time":"noon"}"#, .badTimestamp),
            ("timestamp false", #"{"value":1,"timestamp":false}"#, .badTimestamp),
            ("ts an hour ahead", #"{"value":1,"ts":\#(t + 3660)}"#, .futureTimestamp),
            ("ts an hour ahead, milliseconds", #"{"value":1,"ts":\#((t + 3660) * 1000)}"#, .futureTimestamp),
            ("ts an hour ahead, RFC 3339", #"{"value":1,"ts":"\#(Timestamp(seconds: t + 3660).rfc3339)"}"#, .futureTimestamp),
            ("ts in 2100", #"{"value":1,"ts":4102444800}"#, .futureTimestamp),
            ("ts eight days ago", #"{"value":1,"ts":\#(t - 8 * 86400)}"#, .tooOld),
            ("ts eight days ago, milliseconds", #"{"value":1,"ts":\#((t - 8 * 86400) * 1000)}"#, .tooOld),
            ("ts eight days ago, RFC 3339", #"{"value":1,"ts":"\#(Timestamp(seconds: t - 8 * 86400).rfc3339)"}"#, .tooOld),
            ("ts in 1971", #"{"value":1,"ts":31536000}"#, .tooOld),
            ("unit a number", #"{"value":1,"unit":5}"#, .badUnit),
            ("unit true", #"{"value":1,"unit":true}"#, .badUnit),
            ("unit an array", #"{"value":1,"unit":["V"]}"#, .badUnit),
            ("unit an object", #"{"value":1,"unit":{"si":"V"}}"#, .badUnit),
            ("unit of 33 bytes", #"{"value":1,"unit":"\#(String(repeating: "V", count: 33))"}"#, .badUnit),
            ("unit with a bell", #"{"value":1,"unit":"V\u0007"}"#, .badUnit),
            ("unit with a newline", #"{"value":1,"unit":"V\n"}"#, .badUnit),
            ("unit with DEL", #"{"value":1,"unit":"V\u007f"}"#, .badUnit),
        ]
        for (label, text, code) in texts { reject(cat, label, .metric, text, code) }
        // JSON escapes are part of the string: "\u005A" is "Z".
        accept(
            cat, "RFC 3339 with an escaped Z", .metric,
            #"{"value":1,"ts":"\#(Timestamp(seconds: t).rfc3339.dropLast())\u005A"}"#, [("voltage", 1)],
            timestamp: Timestamp(seconds: t))
        reject(cat, "one record an hour ahead spoils the pack", .senml, #"[{"n":"pm25","v":1},{"n":"pm10","t":3660,"v":2}]"#, .futureTimestamp)
        reject(cat, "one field's unit bad spoils the object", .fields, #"{"level":1,"flow":2,"unit":7}"#, .badUnit)
        reject(cat, "SenML t relative, eleven days back", .senml, #"[{"n":"pm25","t":-1e6,"v":1}]"#, .tooOld)
    }
}
