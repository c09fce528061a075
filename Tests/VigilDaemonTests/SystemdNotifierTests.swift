import Testing
import VigilTestSupport

@testable import VigilDaemon

@Suite("systemd notify")
struct SystemdNotifierTests {
    @Test func notifierAbstractAndPathSockets() throws {
        let listener = try NotifyListener()
        let n = SystemdNotifier(environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "30000000"])
        #expect(n.watchdogInterval == 15)
        #expect(n.notify("READY=1\nSTATUS=test"))
        #expect(eventually { listener.messages.contains { $0.1 == ["READY=1", "STATUS=test"] } })
        #expect(SystemdNotifier(environment: [:]).notify("READY=1") == false)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"]).watchdogInterval == nil)
    }
}
