import Foundation
import Testing
import VigilTestSupport

@testable import VigilCore

@Suite("JSON parser")
struct JSONTests {
    func parse(_ text: String, maxDepth: Int = 32) throws(JSONError) -> JSONTape {
        try parse(bytes: Array(text.utf8), maxDepth: maxDepth).get()
    }

    func parse(bytes: [UInt8], maxDepth: Int = 32) -> Result<JSONTape, JSONError> {
        var tape = JSONTape(maxDepth: maxDepth)
        do {
            try bytes.withUnsafeBytes { buf in try tape.parse(buf) }
            return .success(tape)
        } catch let error as JSONError {
            return .failure(error)
        } catch {
            fatalError("\(error)")
        }
    }

    @Test func numbersAreExact() throws {
        let cases: [(String, Double)] = [
            ("0", 0), ("-0", -0.0), ("231.4", 231.4), ("1e3", 1000), ("-12.5e-1", -1.25), ("1E+2", 100),
            ("0.1", 0.1), ("123456789012345678901234567890", 123456789012345678901234567890.0),
            ("1.7976931348623157e308", 1.7976931348623157e308), ("5e-324", Double.leastNonzeroMagnitude), ("4.35", 4.35),
            ("1763892000.123456", 1763892000.123456),
        ]
        for (text, expected) in cases {
            let tape = try parse(text)
            #expect(tape.nodes[0].number == expected, "\(text)")
        }
        #expect(try parse("1e400").nodes[0].number == .infinity)
        #expect(try parse("-1e400").nodes[0].number == -.infinity)
    }

    @Test(arguments: ["01", "1.", ".5", "+1", "1e", "1e+", "-", "NaN", "Infinity", "0x10", "1 2", "[1,]", "{\"a\":1,}",
        "[1 2]", "{\"a\" 1}", "{1:2}", "\"\\x\"", "\"\u{01}\"", "tru", "nul", "[", "{", "\"abc", "", " "])
    func rejectsMalformed(_ text: String) {
        if case .success = parse(bytes: Array(text.utf8)) { Issue.record("accepted \(text.debugDescription)") }
    }

    @Test func depthLimit() throws {
        _ = try parse(String(repeating: "[", count: 32) + String(repeating: "]", count: 32))
        #expect(throws: JSONError.tooDeep(limit: 32)) {
            _ = try parse(String(repeating: "[", count: 33) + String(repeating: "]", count: 33))
        }
        // 100 000 open brackets: rejected at the limit, no stack overflow.
        #expect(throws: JSONError.tooDeep(limit: 32)) { _ = try parse(String(repeating: "[", count: 100_000)) }
    }

    @Test func rejectsInvalidUTF8() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xE2, 0x82]] {
            guard case .failure = parse(bytes: bytes) else {
                Issue.record("accepted \(bytes)")
                continue
            }
        }
        if case .failure(let e) = parse(bytes: Array("\"héllo ✓ 𝄞\"".utf8)) { Issue.record("rejected valid UTF-8: \(e)") }
    }

    @Test func decodesEscapes() throws {
        var bytes = Array(#"{"k\u00e9y":"a\"b\\c\/d\n\ud834\udd1e"}"#.utf8)
        var tape = JSONTape()
        try bytes.withUnsafeMutableBytes { buf in
            let b = UnsafeRawBufferPointer(buf)
            try tape.parse(b)
            #expect(tape.string(1, in: b) == "kéy")
            #expect(tape.string(2, in: b) == "a\"b\\c/d\n𝄞")
        }
    }

    /// JSONTestSuite: every n_ case rejected, every y_ case accepted, no i_ case crashes.
    @Test(.enabled(if: Corpus.isAvailable, "../shared/corpus is absent: JSONTestSuite cases skipped"))
    func jsonTestSuite() throws {
        let files = Corpus.files("jsontestsuite")
        #expect(files.count >= 318)
        var accepted = 0
        var rejected = 0
        for file in files {
            let name = file.lastPathComponent
            let bytes = try [UInt8](Data(contentsOf: file))
            let result = parse(bytes: bytes, maxDepth: 32)
            switch (name.prefix(2), result) {
            case ("n_", .success):
                Issue.record("\(name): accepted invalid JSON")
            case ("y_", .failure(let e)):
                Issue.record("\(name): rejected valid JSON: \(e.message)")
            case (_, .success): accepted += 1
            case (_, .failure): rejected += 1
            }
        }
        #expect(accepted > 90 && rejected > 180)
    }
}
