import VigilCore

/// The JSON tape (`JSONTape`): well formed whatever the input, and the payload decoder's JSON
/// verdict is its own.
extension FuzzCheck.Checker {
    /// Parses `b` and checks the tape; returns the parse error, if any.
    mutating func checkTape(_ b: UnsafeRawBufferPointer, maxDepth: Int) -> JSONError? {
        context = "tape"
        var tape = JSONTape(maxDepth: maxDepth)
        do {
            try tape.parse(b)
        } catch {
            switch error {
            case .syntax(let offset, _):
                if offset < 0 || offset > b.count { fail("syntax error offset \(offset) of \(b.count)") }
                outcome.verdicts.append(.rejected("syntax"))
            case .invalidUTF8(let offset):
                if offset < 0 || offset >= b.count { fail("invalid UTF-8 offset \(offset) of \(b.count)") }
                outcome.verdicts.append(.rejected("invalid_utf8"))
            case .tooDeep(let limit):
                if limit != maxDepth { fail("too deep for \(limit), the limit is \(maxDepth)") }
                outcome.verdicts.append(.rejected("too_deep"))
            }
            return error
        }
        let nodes = tape.nodes
        if nodes.isEmpty {
            fail("accepted with no nodes")
        } else if walk(tape, b, 0, depth: 1) != nodes.count {
            fail("the root does not span the tape")
        }
        outcome.verdicts.append(.accepted(nodes.count))
        return nil
    }

    /// Checks the value at `i` and everything inside it; returns the index after it.
    mutating func walk(_ tape: JSONTape, _ b: UnsafeRawBufferPointer, _ i: Int, depth: Int) -> Int {
        let nodes = tape.nodes
        guard i < nodes.count else {
            fail("node \(i) is past the end \(nodes.count)")
            return nodes.count
        }
        let node = nodes[i]
        let end = Int(node.end)
        switch node.kind {
        case .object, .array:
            if depth > tape.maxDepth { fail("depth \(depth) beyond \(tape.maxDepth)") }
            guard end > i, end <= nodes.count, node.count >= 0 else {
                fail("container \(i) ends at \(end) of \(nodes.count)")
                return nodes.count
            }
            var j = i + 1
            for _ in 0..<Int(node.count) {
                guard j < end else {
                    fail("container \(i) holds fewer than \(node.count) members")
                    return end
                }
                if node.kind == .object {
                    if nodes[j].kind != .string { fail("key \(j) is not a string") }
                    j = walk(tape, b, j, depth: depth + 1)
                }
                j = walk(tape, b, j, depth: depth + 1)
            }
            if j != end { fail("container \(i) ends at \(end), its members at \(j)") }
            return end
        case .string:
            if end != i + 1 { fail("string \(i) ends at \(end)") }
            let start = Int(node.start)
            let stop = start + Int(node.length)
            guard start >= 1, node.length >= 0, stop < b.count, b[start - 1] == UInt8(ascii: "\""),
                b[stop] == UInt8(ascii: "\"")
            else {
                fail("string \(i) at \(start)..<\(stop) is not between quotes")
                return i + 1
            }
            let raw = tape.rawBytes(i, in: b)
            if raw.contains(where: { $0 < 0x20 }) { fail("control character in string \(i)") }
            if node.escaped {
                if !raw.contains(UInt8(ascii: "\\")) { fail("string \(i) marked escaped has no escape") }
                let decoded = tape.string(i, in: b)
                if decoded.utf8.count > 3 * raw.count { fail("string \(i) decodes to more than it holds") }
            } else {
                if raw.contains(UInt8(ascii: "\\")) { fail("string \(i) has an escape not marked") }
                if String(validating: raw, as: UTF8.self) == nil { fail("string \(i) is not UTF-8") }
            }
            return i + 1
        case .number:
            if end != i + 1 { fail("number \(i) ends at \(end)") }
            let start = Int(node.start)
            let stop = start + Int(node.length)
            guard start >= 0, node.length > 0, stop <= b.count else {
                fail("number \(i) at \(start)..<\(stop) is outside the input")
                return i + 1
            }
            let raw = UnsafeRawBufferPointer(rebasing: b[start..<stop])
            let hasFraction = raw.contains {
                $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E")
            }
            if node.isInteger == hasFraction { fail("number \(i) isInteger is \(node.isInteger)") }
            let text = String(decoding: raw, as: UTF8.self)
            if let expected = Double(text) {
                if expected.bitPattern != node.number.bitPattern {
                    fail("number \(text.prefix(80)) parsed as \(node.number), correctly rounded \(expected)")
                }
            } else {
                fail("number \(text.prefix(80)) is not a number")
            }
            return i + 1
        case .true, .false, .null:
            if end != i + 1 { fail("literal \(i) ends at \(end)") }
            return i + 1
        }
    }

    /// The payload decoder's JSON verdict is the tape's.
    mutating func checkAgreesWithTape(
        _ result: Result<[DecodedValue], RejectReason>, _ tape: JSONError?
    ) {
        let expected: RejectReason.Code?
        switch tape {
        case nil: expected = nil
        case .syntax?: expected = .invalidJSON
        case .tooDeep?: expected = .tooDeep
        case .invalidUTF8?: expected = .invalidUTF8
        }
        let jsonCodes: Set<RejectReason.Code> = [.invalidJSON, .tooDeep, .invalidUTF8]
        switch result {
        case .success:
            if let expected { fail("accepted a payload the tape rejects as \(expected)") }
        case .failure(let reason):
            if let expected, reason.code != expected {
                fail("rejected with \(reason.code), the tape says \(expected)")
            }
            if expected == nil, jsonCodes.contains(reason.code) {
                fail("rejected as \(reason.code) JSON the tape accepts")
            }
        }
    }
}
