import ArgumentParser
import Foundation
import VigilCore
import Yams

extension VigilCommand {
    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rule unit tests, offline: input series through the real rule engine on a simulated clock.",
            discussion: "Each file names its rule_files and lists tests with input series and the transitions expected. Exit 1 on any difference.")

        @Argument(help: "Test files (YAML).") var files: [String]

        func run() async throws {
            var failed = 0
            var passed = 0
            for path in files {
                let file: RuleTestFile
                let rules: [Rule]
                do {
                    file = try RuleTestFile.load(path)
                    rules = try RuleFiles.load(files: file.ruleFiles, zone: file.zone)
                } catch {
                    for d in error.diagnostics { printError(d.description) }
                    failed += 1
                    continue
                }
                for c in file.cases {
                    let actual = RuleTestFile.localized(RuleTestFile.run(c, rules: rules), c, zone: file.zone)
                    let diff = RuleTestFile.diff(expected: RuleTestFile.localized(c.expected, c, zone: file.zone), actual: actual)
                    if diff.isEmpty {
                        passed += 1
                        print("ok    \(path): \(c.name) (\(actual.count) transition(s))")
                    } else {
                        failed += 1
                        print("FAIL  \(path): \(c.name)")
                        for line in diff { print("      \(line)") }
                    }
                }
            }
            print("\(passed) passed, \(failed) failed")
            if failed > 0 { throw ExitCode(1) }
        }
    }
}
