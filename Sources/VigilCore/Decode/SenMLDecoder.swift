/// SenML packs (RFC 8428): base name, time, unit, value and sum; records without a
/// number are skipped and counted.
extension PayloadDecoder {
    // MARK: SenML (RFC 8428)

    mutating func decodeSenML(
        _ b: UnsafeRawBufferPointer, topicMetric: String?, receivedAt: Timestamp, into out: inout [DecodedValue]
    ) throws(RejectReason) {
        let root = tape.nodes[0]
        guard root.kind == .array else {
            throw RejectReason(.invalidSenML, "a SenML pack is a JSON array, found \(Self.kindName(root.kind))")
        }
        guard root.count > 0 else { throw RejectReason(.invalidSenML, "the pack is empty") }
        let mark = out.count
        var baseName = ""
        var baseTime = 0.0
        var baseUnit: String?
        var baseValue = 0.0
        var baseSum = 0.0
        var r = 1
        var skipped = 0
        for recordNumber in 0..<Int(root.count) {
            let record = tape.nodes[r]
            guard record.kind == .object else {
                throw RejectReason(.invalidSenML, "record \(recordNumber) is \(Self.kindName(record.kind)), not an object")
            }
            var name: String?
            var time: Double?
            var unit: String?
            var value: Double?
            var sum: Double?
            var k = r + 1
            for _ in 0..<Int(record.count) {
                let v = k + 1
                let key = tape.rawBytes(k, in: b)
                let keyText = tape.nodes[k].escaped ? tape.string(k, in: b) : String(decoding: key, as: UTF8.self)
                switch keyText {
                case "bn": baseName = try senmlString(v, b, keyText)
                case "bt": baseTime = try senmlNumber(v, keyText)
                case "bu": baseUnit = try Self.unit(tape, v, b)
                case "bv": baseValue = try senmlNumber(v, keyText)
                case "bs": baseSum = try senmlNumber(v, keyText)
                case "bver": _ = try senmlNumber(v, keyText)
                case "n": name = try senmlString(v, b, keyText)
                case "t": time = try senmlNumber(v, keyText)
                case "u": unit = try Self.unit(tape, v, b)
                case "v": value = try senmlNumber(v, keyText)
                case "s": sum = try senmlNumber(v, keyText)
                case "ut": _ = try senmlNumber(v, keyText)
                case "vs", "vd":
                    guard tape.nodes[v].kind == .string else {
                        throw RejectReason(.invalidSenML, "\"\(keyText)\" in record \(recordNumber) must be a string")
                    }
                case "vb":
                    guard tape.nodes[v].kind == .true || tape.nodes[v].kind == .false else {
                        throw RejectReason(.invalidSenML, "\"vb\" in record \(recordNumber) must be a boolean")
                    }
                default:
                    if keyText.hasSuffix("_") {
                        throw RejectReason(
                            .invalidSenML, "record \(recordNumber) has must-understand field \(Self.quoted(keyText))")
                    }
                }
                k = tape.next(after: v)
            }
            r = tape.next(after: r)
            let fullName = baseName + (name ?? "")
            let numeric: Double?
            if let v = value {
                numeric = baseValue + v
            } else if let s = sum {
                numeric = baseSum + s
            } else {
                numeric = nil
            }
            guard let number = numeric else {
                // vs, vb, vd or no value at all: not a reading, and not an error for the pack.
                skipped += 1
                continue
            }
            guard number.isFinite else {
                throw RejectReason(.nonFinite, "record \(recordNumber) has a value out of range")
            }
            let metric: String?
            if topicMetric != nil {
                metric = nil
            } else {
                guard !fullName.isEmpty else {
                    throw RejectReason(.invalidSenML, "record \(recordNumber) has no name")
                }
                let last = Self.lastNamePart(fullName)
                guard Names.isValid(last) else {
                    throw RejectReason(
                        .badName, "SenML name \(Self.quoted(fullName)) does not end in a valid metric name")
                }
                metric = last
            }
            let timestamp: Timestamp?
            let t = baseTime + (time ?? 0)
            if baseTime == 0 && time == nil {
                timestamp = nil
            } else if abs(t) < 268_435_456 {  // 2^28: relative to now
                timestamp = receivedAt.adding(TimeSpan(micros: Int64((t * 1_000_000).rounded())))
            } else {
                guard let ts = Timestamp(secondsValue: t), ts.micros > 0 else {
                    throw RejectReason(.badTimestamp, "record \(recordNumber) has time \(t)")
                }
                timestamp = ts
            }
            out.append(DecodedValue(metric: metric, value: number, timestamp: timestamp, unit: unit ?? baseUnit))
        }
        if out.count == mark {
            throw RejectReason(.noReadings, "the pack has no record with a numeric value")
        }
        skippedRecords += skipped  // only for a pack that is taken
    }

    func senmlNumber(_ v: Int, _ key: String) throws(RejectReason) -> Double {
        let node = tape.nodes[v]
        guard node.kind == .number else {
            throw RejectReason(.invalidSenML, "\"\(key)\" must be a number, found \(Self.kindName(node.kind))")
        }
        guard node.number.isFinite else { throw RejectReason(.nonFinite, "\"\(key)\" is out of range") }
        return node.number
    }

    func senmlString(_ v: Int, _ b: UnsafeRawBufferPointer, _ key: String) throws(RejectReason) -> String {
        guard tape.nodes[v].kind == .string else {
            throw RejectReason(.invalidSenML, "\"\(key)\" must be a string")
        }
        return tape.string(v, in: b)
    }

    /// The last part of a SenML name, after its final `:` or `/`.
    public static func lastNamePart(_ name: String) -> String {
        if let i = name.lastIndex(where: { $0 == ":" || $0 == "/" }) {
            return String(name[name.index(after: i)...])
        }
        return name
    }

    static func kindName(_ kind: JSONTape.Kind) -> String {
        switch kind {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .true, .false: return "a boolean"
        case .null: return "null"
        }
    }

    package static func quoted(_ s: String) -> String {
        let limited = s.count > 70 ? String(s.prefix(67)) + "..." : s
        return "\"" + limited + "\""
    }
}
