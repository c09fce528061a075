import Testing

@testable import VigilDaemon

@Suite("Log rate limit")
struct LogTests {
    @Test func repeatedLinesAreCountedNotPrinted() {
        var l = LogRateLimiter()
        let admitted = (0..<20).map { l.admit("connection failed", now: Double($0) * 0.1) }
        #expect(admitted.prefix(5).allSatisfy { $0 == 0 })
        #expect(admitted.dropFirst(5).allSatisfy { $0 == nil })
        // Another message is not held back by this one.
        #expect(l.admit("something else", now: 1.9) == 0)
        // Next period: the first line says how many were suppressed.
        #expect(l.admit("connection failed", now: 10.5) == 15)
        #expect(l.admit("connection failed", now: 10.6) == 0)
    }
}

@Suite("Log level")
struct LogLevelTests {
    /// A logger's own level is its own (swift-log's contract); the configured level, which
    /// a reload changes, applies to every logger that has none.
    @Test func ownLevelStaysOwnConfiguredLevelIsShared() {
        let before = VigilLogHandler.configuredLevel.withLock { $0 }
        defer { VigilLogHandler.setLevel(before) }
        VigilLogHandler.setLevel(.info)
        var a = VigilLogHandler(label: "a", journal: false)
        let b = VigilLogHandler(label: "b", journal: false)
        a.logLevel = .debug
        #expect(a.logLevel == .debug && b.logLevel == .info)
        VigilLogHandler.setLevel(.warning)
        #expect(a.logLevel == .debug && b.logLevel == .warning)
    }
}
