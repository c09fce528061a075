import Foundation
import Testing
import VigilTestSupport

@testable import VigilCore

@Suite("Deflate")
struct DeflateTests {
    @Test func adler32OfKnownText() {
        #expect(Deflate.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        #expect(Deflate.adler32([]) == 1)
    }

    static var inputs: [(String, [UInt8])] {
        var rng = SeededGenerator(seed: 7)
        let random = (0..<20_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let text = Array(String(repeating: "{\"series\":\"energy/substation-1/meter-1/voltage\",\"count\":60,\"mean\":221.5},", count: 400).utf8)
        return [
            ("empty", []), ("one byte", [65]), ("short", Array("hello, hello, hello".utf8)), ("random", random),
            ("repetitive JSON", text), ("a long run", [UInt8](repeating: 0, count: 70_000)),
            ("every byte", (0...255).map { UInt8($0) } + (0...255).reversed().map { UInt8($0) }),
        ]
    }

    /// What vigil compresses, Python's zlib (what a platform uses) gives back exactly.
    @Test(.enabled(if: Zlib.isAvailable, "python3 reads the streams"), arguments: inputs.map(\.0))
    func pythonReadsItBack(_ name: String) throws {
        let input = Self.inputs.first { $0.0 == name }!.1
        let z = Deflate.zlib(input)
        let (back, error) = try Zlib.decompress(z)
        #expect(back == input, "\(name): \(error)")
    }

    @Test func repetitiveTextShrinks() {
        let text = Array(String(repeating: "{\"series\":\"energy/substation-1/meter-1/voltage\",\"count\":60}", count: 100).utf8)
        #expect(Deflate.zlib(text).count * 20 < text.count)
    }
}
