import Foundation
import Testing
import VigilCore
import VigilTestSupport

extension Integration {
    @Suite("Reload")
    struct Reload {
        static let first = """
            rules:
              - id: level-high
                match: water/+/+/level
                op: ">"
                levels: { yellow: 5 }
            """

        /// SIGHUP under load: a bad rule file is refused with file:line:column and the old rules
        /// go on; a good one is applied, alerts of rules that stay keep their state, alerts of
        /// removed rules are resolved; no reading is lost on the way.
        @Test func reloadUnderLoad() throws {
            let rig = try AlertRig(rules: Self.first)
            let rulesFile = rig.daemon.directory.file("rules.d/test.yaml")
            let publisher = try TestPublisher(broker: rig.broker, topics: (0..<10).map { "energy/s\($0)/m/v" })
            let n = 12_000
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                publisher.publish(count: n, rate: 1000)
                done.signal()
            }
            try rig.send("st-1", level: 6)
            #expect(eventually { (try? rig.history()) == ["level-high water/st-1/g/level raised yellow"] })

            // A mistake: the old rules stay in force.
            try "rules:\n  - id: level-high\n    match: water/+/+/level\n    op: '>'\n    levels: { yellow: 5, orange: 4 }\n"
                .write(toFile: rulesFile, atomically: true, encoding: .utf8)
            rig.daemon.signal(SIGHUP)
            #expect(eventually { rig.daemon.log.contains("reload failed") }, "\(rig.daemon.log)")
            #expect(rig.daemon.log.contains("reload: \(rulesFile):5:13: rule level-high: levels must grow more extreme"))
            try rig.send("st-1", level: 4)
            #expect(eventually { (try? rig.history())?.last == "level-high water/st-1/g/level resolved yellow" })
            try rig.send("st-1", level: 6)
            #expect(eventually { (try? rig.history())?.count == 3 })

            // A good change: level-high stays (its alert keeps its state), a rule is added.
            try """
                rules:
                  - id: level-high
                    match: water/+/+/level
                    op: ">"
                    levels: { yellow: 5, orange: 8 }
                  - id: level-low
                    match: water/+/+/level
                    op: "<"
                    levels: { yellow: 0 }
                """.write(toFile: rulesFile, atomically: true, encoding: .utf8)
            rig.daemon.signal(SIGHUP)
            #expect(eventually { rig.daemon.log.contains("msg=\"reloaded\" rules=2") }, "\(rig.daemon.log)")
            try rig.send("st-1", level: 9)
            #expect(eventually { (try? rig.history())?.count == 4 })
            #expect(try rig.history().last == "level-high water/st-1/g/level escalated orange", "the new threshold, no new raise")
            try rig.send("st-2", level: -1)
            #expect(eventually { (try? rig.history())?.last == "level-low water/st-2/g/level raised yellow" })

            // level-high goes: its alert is resolved.
            try "rules:\n  - id: level-low\n    match: water/+/+/level\n    op: '<'\n    levels: { yellow: 0 }\n"
                .write(toFile: rulesFile, atomically: true, encoding: .utf8)
            rig.daemon.signal(SIGHUP)
            #expect(eventually { (try? rig.history())?.contains("level-high water/st-1/g/level resolved orange") == true })
            let resolved = try rig.events().last { $0.rule == "level-high" }
            #expect(resolved?.message.contains("removed") == true)
            #expect(try rig.daemon.reader().alertStates().map(\.rule) == ["level-low"])

            done.wait()
            #expect(publisher.publisher.waitForAcknowledgements(n))
            #expect(eventually(timeout: 30) { (try? storedValues(rig.daemon, "energy/#").count) == n }, "every reading published during the reloads is stored")
            publisher.close()
            #expect(rig.daemon.stop() == 0)
        }
    }
}
