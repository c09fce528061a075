import Foundation
import Testing
import VigilCore
import VigilMQTT
import VigilStorage
import VigilTestSupport

/// A daemon with one rule file, and helpers to read what it raised.
struct AlertRig {
    let broker: Broker
    let daemon: DaemonProcess

    static let rules = """
        rules:
          - id: level-high
            match: water/+/+/level
            op: ">"
            levels: { yellow: 5, red: 8 }
            hysteresis: 0.5
            for: 3s
            message: "{site} level {value} over {level} line {threshold}"
        """

    init(rules: String = AlertRig.rules) throws {
        broker = try Broker()
        daemon = try DaemonProcess(config: DaemonProcess.config(localPort: broker.port))
        try rules.write(toFile: daemon.directory.file("rules.d/test.yaml"), atomically: true, encoding: .utf8)
        try daemon.start()
    }

    func send(_ site: String, level: Double) throws {
        try publishAll(broker, [("water/\(site)/g", json("{\"level\": \(level)}"))])
    }

    /// The alert history as "rule series state level" lines, from `vigil alerts --json`.
    func history() throws -> [String] {
        let out = try daemon.command(["alerts", "--json"])
        return out.stdout.split(separator: "\n").compactMap { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return "\(o["rule"]!) \(o["series"]!) \(o["state"]!) \(o["level"]!)"
        }
    }

    func events() throws -> [AlertTransition] { try daemon.reader().alertEvents().map(\.transition) }
}

extension Integration {
    @Suite("Alerts end to end")
    struct Alerts {
        /// Readings through a real broker raise and resolve alerts, recorded with value,
        /// threshold and time, and shown by `vigil alerts`.
        @Test func readingsRaiseAndResolve() throws {
            let rig = try AlertRig()
            try rig.send("st-1", level: 6)
            #expect(eventually { (try? rig.history())?.count == 1 })
            let raised = try #require(try rig.events().first)
            #expect(raised.state == .raised && raised.level == .yellow && raised.value == 6 && raised.threshold == 5)
            #expect(raised.message == "st-1 level 6 over yellow line 5")
            let active = try rig.daemon.command(["alerts", "--active"])
            #expect(active.stdout.contains("YELLOW level-high  water/st-1/g/level  value 6 threshold 5"), "\(active.stdout)")
            try rig.send("st-1", level: 9)
            #expect(eventually { (try? rig.history())?.count == 2 })
            try rig.send("st-1", level: 4.4)
            #expect(eventually { (try? rig.history())?.count == 3 })
            #expect(try rig.history() == [
                "level-high water/st-1/g/level raised yellow",
                "level-high water/st-1/g/level escalated red",
                "level-high water/st-1/g/level resolved red",
            ])
            #expect(eventually { (try? rig.daemon.command(["status"]))?.stdout.contains("alerts: none active") == true })
            rig.daemon.stop()
        }

        /// kill -9 while a `for` timer is pending, and again while the alert is active: the
        /// timer goes on from its start, the alert is raised once and resolved once.
        @Test func restartsNeitherForgetNorRepeat() throws {
            let rig = try AlertRig()
            let sentAt = Timestamp.now()
            try rig.send("st-2", level: 6)  // pending: 3 s to hold
            #expect(eventually { (try? rig.daemon.reader().alertStates())?.first?.pending[.yellow] != nil })
            rig.daemon.kill()
            try rig.daemon.start()
            #expect(eventually(timeout: 15) { (try? rig.history())?.count == 1 }, "raised after the restart, from the stored timer")
            let raised = try #require(try rig.events().first)
            let held = Double(raised.at.micros - sentAt.micros) / 1e6
            #expect(held >= 3 && held < 6, "the pending timer counted from the reading, not the restart: \(held) s")
            // Active now: kill again, and the same value again after the restart. A forgotten
            // state would show as no level and a fresh pending timer once that reading is in.
            rig.daemon.kill()
            try rig.daemon.start()
            let before = rig.daemon.storedCount()
            try rig.send("st-2", level: 6.5)
            #expect(eventually { rig.daemon.storedCount() > before })
            let state = try #require(try rig.daemon.reader().alertStates().first)
            #expect(state.level == .yellow && state.since == raised.since)
            #expect(try rig.history() == ["level-high water/st-2/g/level raised yellow"], "no second raise")
            try rig.send("st-2", level: 1)
            #expect(eventually { (try? rig.history())?.count == 2 })
            #expect(try rig.history() == [
                "level-high water/st-2/g/level raised yellow",
                "level-high water/st-2/g/level resolved yellow",
            ])
            rig.daemon.stop()
        }
    }
}
