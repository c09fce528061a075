import Foundation
import Testing
import VigilCore
import VigilFuzzCheck

/// Every input in `Fuzz/regressions/` (each once crashed the fuzz target) and in the seed corpus
/// `Fuzz/corpus/`, through the fuzz target's checker (`VigilFuzzCheck`), in the normal build: no crash, no
/// broken invariant, and the same verdicts every time.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    /// `regressions/NAME` and `corpus/NAME` for every input file (not the README).
    static let inputs: [String] = ["regressions", "corpus"].flatMap { folder in
        let path = fuzzDirectory.appendingPathComponent(folder).path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.sorted().map { "\(folder)/\($0)" }
    }

    @Test func foldersHoldInputs() {
        #expect(Self.inputs.contains { $0.hasPrefix("regressions/") })
        #expect(Self.inputs.filter { $0.hasPrefix("corpus/") }.count >= 30)
    }

    @Test(arguments: inputs)
    func input(_ name: String) throws {
        let bytes = [UInt8](try Data(contentsOf: Self.fuzzDirectory.appendingPathComponent(name)))
        let outcome = bytes.withUnsafeBytes { FuzzCheck.check($0) }
        #expect(outcome.violations.isEmpty, "\(name): \(outcome)")
        #expect(!outcome.verdicts.isEmpty || bytes.isEmpty, "\(name) was not decoded")
        let again = bytes.withUnsafeBytes { FuzzCheck.check($0) }
        #expect(again == outcome, "\(name) decoded twice: \(outcome) then \(again)")
    }

    /// `regressions/senml-no-numeric-record-into-filled-out`: a SenML pack without a numeric
    /// record was accepted, with no values, when `out` already held values.
    @Test func senmlPackWithoutNumbersIsRejectedWhenAppending() {
        var decoder = PayloadDecoder()
        let earlier = DecodedValue(metric: "earlier", value: 1, timestamp: nil, unit: nil)
        var out = [earlier]
        let payload = Array(#"[{"n":"s","vs":"x"},{"n":"b","vb":false}]"#.utf8)
        var code: RejectReason.Code?
        do {
            try payload.withUnsafeBytes {
                try decoder.decode(
                    $0, format: .senml, topicMetric: nil, receivedAt: Timestamp(seconds: 1_763_892_000), into: &out)
            }
        } catch {
            code = (error as? RejectReason)?.code
        }
        #expect(code == .noReadings)
        #expect(out == [earlier])
    }
}
