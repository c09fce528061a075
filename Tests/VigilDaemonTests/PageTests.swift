import Foundation
import Synchronization
import Testing
import VigilCore

@testable import VigilDaemon

/// A manual monotonic clock for the single-flight cache.
final class ManualSeconds: Sendable {
    let value = Mutex(100.0)
    func advance(_ s: Double) { value.withLock { $0 += s } }
    var now: Double { value.withLock { $0 } }
}

/// A door a build waits at until the test opens it.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))
    func wait() async {
        await withCheckedContinuation { c in
            let go = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiting.append(c)
                return false
            }
            if go { c.resume() }
        }
    }
    func open() {
        let w = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiting = [] }
            return s.waiting
        }
        w.forEach { $0.resume() }
    }
}

@Suite("The page's JSON cache")
struct SingleFlightTests {
    /// N concurrent requests while a build runs cause one build, and all get its result;
    /// within a second the next requests get it without a build; after it, one more build.
    @Test func concurrentRequestsShareOneBuild() async {
        let clock = ManualSeconds()
        let gate = Gate()
        let started = Mutex(0)
        let flight = SingleFlight<Int>(maxAge: 1, now: { clock.now }) {
            let n = started.withLock { $0 += 1; return $0 }
            await gate.wait()
            return n * 10
        }
        let n = 50
        await withTaskGroup(of: Int.self) { group in
            for _ in 0..<n { group.addTask { await flight.get() } }
            // Every request is waiting for the one build; then it may finish.
            while flight.waiting < n { await Task.yield() }
            #expect(started.withLock { $0 } == 1)
            gate.open()
            var results: [Int] = []
            for await r in group { results.append(r) }
            #expect(results == Array(repeating: 10, count: n))
        }
        #expect(flight.builds == 1)
        clock.advance(0.5)
        #expect(await flight.get() == 10)
        #expect(flight.builds == 1)
        clock.advance(0.6)
        #expect(await flight.get() == 20)
        #expect(flight.builds == 2)
    }
}

@Suite("The page's token")
struct PageAuthTests {
    let auth = PageAuth(token: "s3cret-token", session: "abcdef")

    func request(_ path: String = "/", query: String? = nil, headers: [String: String] = [:]) -> HTTPRequest {
        HTTPRequest(method: "GET", path: path, query: query, headers: headers)
    }

    @Test func noTokenFileLetsEveryoneIn() {
        #expect(PageAuth(token: nil).check(request()) == .allowed)
    }

    @Test func withoutTheTokenIs401() {
        guard case .respond(let r) = auth.check(request()) else { Issue.record("allowed without a token"); return }
        #expect(r.status == 401)
        #expect(r.headers.contains { $0.0 == "WWW-Authenticate" })
        for wrong in ["Bearer s3cret-toke", "Bearer s3cret-token2", "Bearer ", "Basic s3cret-token"] {
            #expect(auth.check(request(headers: ["authorization": wrong])) != .allowed, "\(wrong)")
        }
        #expect(auth.check(request(headers: ["cookie": "vigil_session_9464=abcdeF"])) != .allowed)
        #expect(auth.check(request(headers: ["cookie": "vigil_session_9464=s3cret-token"])) != .allowed)
    }

    @Test func bearerAndCookieLetIn() {
        #expect(auth.check(request("/page.json", headers: ["authorization": "Bearer s3cret-token"])) == .allowed)
        #expect(auth.check(request(headers: ["cookie": "theme=dark; vigil_session_9464=abcdef"])) == .allowed)
    }

    /// `?token=` sets the HttpOnly, SameSite=Strict cookie and sends the browser to the
    /// same path without the token; a wrong one is 401 and sets nothing.
    @Test func loginSetsTheCookieAndDropsTheToken() {
        guard case .respond(let r) = auth.check(request(query: "token=s3cret%2Dtoken")) else { Issue.record("no redirect"); return }
        #expect(r.status == 303)
        #expect(r.headers.contains { $0 == ("Location", "/") })
        #expect(r.headers.contains { $0 == ("Set-Cookie", "vigil_session_9464=abcdef; Path=/; HttpOnly; SameSite=Strict") })
        guard case .respond(let bad) = auth.check(request(query: "token=nope")) else { Issue.record("wrong token let in"); return }
        #expect(bad.status == 401 && !bad.headers.contains { $0.0 == "Set-Cookie" })
    }

    /// The cookie is named by the port: two gateways tunnelled to two ports of one laptop's
    /// localhost keep two sessions.
    @Test func cookieNameHasThePort() {
        let other = PageAuth(token: "s3cret-token", port: 9465, session: "abcdef")
        #expect(other.check(request(headers: ["cookie": "vigil_session_9464=abcdef"])) != .allowed)
        #expect(other.check(request(headers: ["cookie": "vigil_session_9465=abcdef"])) == .allowed)
        guard case .respond(let r) = other.check(request(query: "token=s3cret-token")) else { Issue.record("no redirect"); return }
        #expect(r.headers.contains { $0 == ("Set-Cookie", "vigil_session_9465=abcdef; Path=/; HttpOnly; SameSite=Strict") })
    }

    /// DNS rebinding: a page of another site whose name resolves to the gateway sends its
    /// own name as `Host`: refused (421), token or not. IP literals, localhost and the
    /// gateway's names pass.
    @Test func hostMustNameTheGateway() {
        let open = PageAuth(token: nil, hostNames: ["GW-7.lan"])
        for host in ["127.0.0.1:9464", "192.168.1.5", "[::1]:9464", "[fe80::1]", "localhost:9464", "LOCALHOST", "app.localhost:1", "gw-7.lan:9464", "gw-7.lan."] {
            #expect(open.check(request(headers: ["host": host])) == .allowed, "\(host)")
        }
        #expect(open.check(request()) == .allowed, "no Host")
        for host in ["evil.example", "evil.example:9464", "127.0.0.1.evil.example", "[evil]", "gw-7.lan.evil.example", "localhost.evil.example"] {
            guard case .respond(let r) = open.check(request(headers: ["host": host])) else { Issue.record("\(host) let in"); continue }
            #expect(r.status == 421, "\(host)")
        }
        // Before the token: a right token with a foreign Host is refused too.
        guard case .respond(let r) = auth.check(request(headers: ["host": "evil.example", "authorization": "Bearer s3cret-token"])) else {
            Issue.record("foreign host let in"); return
        }
        #expect(r.status == 421)
        #expect(PageAuth.hostNames(listen: ListenAddress(host: "gw.example", port: 1)).contains("gw.example"))
        #expect(!PageAuth.hostNames(listen: ListenAddress(host: "0.0.0.0", port: 1)).contains("0.0.0.0"))
    }

    /// A 401 says how to log in again.
    @Test func deniedSaysHowToLogIn() {
        #expect(String(decoding: PageAuth.denied(wrong: false).body, as: UTF8.self).contains("log in (again) with /?token="))
    }

    @Test func comparison() {
        #expect(PageAuth.equal(Array("abc".utf8), Array("abc".utf8)))
        #expect(!PageAuth.equal(Array("abd".utf8), Array("abc".utf8)))
        #expect(!PageAuth.equal(Array("abcabc".utf8), Array("abc".utf8)))
        #expect(!PageAuth.equal([], Array("abc".utf8)))
        #expect(!PageAuth.equal([], []))
        #expect(PageAuth.randomKey().count == 64 && PageAuth.randomKey() != PageAuth.randomKey())
    }

    @Test func loopback() {
        for (text, loop) in [("127.0.0.1:1", true), ("127.1.2.3:1", true), ("localhost:1", true), ("[::1]:1", true),
                             ("0.0.0.0:1", false), ("[::]:1", false), ("192.168.1.5:1", false), ("gw.lan:1", false)] {
            guard case .success(let a) = ListenAddress.parse(text) else { Issue.record("\(text)"); continue }
            #expect(a.isLoopback == loop, "\(text)")
        }
    }
}

@Suite("The page's JSON")
struct PageSnapshotTests {
    static func data(series: Int, urgent: Set<Int> = []) -> PageData {
        let health = PageData.Health(
            localBroker: "127.0.0.1:1883", localConnected: true, publishToStoredMs: Percentiles(LatencyHistogram()), readingsStored: 0,
            bufferRows: 0, bufferBytes: 0, bufferMaxBytes: 1, ingestPaused: false, clockOffsetSeconds: 0, uptimeSeconds: 1,
            version: "0", commit: "c", rules: 0)
        var d = PageData(
            gateway: "gw", generatedAt: "2026-12-02T10:00:00Z", buildMs: 1, buildCpuMs: 1, builds: 1, health: health, alerts: [],
            transitions: [], rejects: .init(byReason: [:], latest: []), sparkSampled: false)
        d.series = (0..<series).map { i in
            PageData.Series(
                path: String(format: "water/site-%04d/g/level", i), network: "water", site: String(format: "site-%04d", i), latest: Double(i),
                spark: Array(repeating: nil, count: 59) + [Double(i)], alert: urgent.contains(i) && i % 2 == 0 ? "red" : nil,
                stale: urgent.contains(i) && i % 2 == 1)
        }
        return d
    }

    static func object(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    static func paths(_ o: [String: Any]) -> [String] {
        (o["series"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
    }

    /// Each series is encoded once and joined: the answer is the data as JSON, filtered by
    /// path (any case) without encoding again.
    @Test func piecesJoinToTheData() throws {
        let snap = PageSnapshot(Self.data(series: 30))
        let all = try Self.object(snap.json)
        #expect(all["gateway"] as? String == "gw" && all["error"] == nil)
        #expect(Self.paths(all) == snap.data.series.map(\.path))
        #expect(all["series_total"] as? Int == 30 && all["series_more"] as? Int == 0)
        let first = try #require((all["series"] as? [[String: Any]])?.first)
        #expect(first["latest"] as? Double == 0 && (first["spark"] as? [Any])?.count == 60 && first["stale"] as? Bool == false)
        let some = try Self.object(snap.answer(filter: "SITE-001"))
        #expect(Self.paths(some) == (10...19).map { String(format: "water/site-%04d/g/level", $0) })
        #expect(some["series_total"] as? Int == 10 && some["health"] != nil)
        #expect(Self.paths(try Self.object(snap.answer(filter: "nothing"))).isEmpty)
    }

    /// At most 500 series go out: alerting and stale ones first, `series_more` counts the
    /// rest, and the filter reaches those left out.
    @Test func seriesAreCappedUrgentFirst() throws {
        let urgent: Set<Int> = [700, 701, 998, 999]
        let snap = PageSnapshot(Self.data(series: 1000, urgent: urgent))
        let all = try Self.object(snap.json)
        let paths = Self.paths(all)
        #expect(paths.count == PageSnapshot.seriesShown)
        #expect(all["series_more"] as? Int == 500 && all["series_total"] as? Int == 1000)
        for i in urgent { #expect(paths.contains(String(format: "water/site-%04d/g/level", i)), "\(i)") }
        #expect(paths == paths.sorted(), "in path order")
        #expect(paths.prefix(496) == ArraySlice((0..<496).map { String(format: "water/site-%04d/g/level", $0) }))
        // A series left out is found by the filter.
        #expect(Self.paths(try Self.object(snap.answer(filter: "site-0800/"))) == ["water/site-0800/g/level"])
    }

    /// A number JSON cannot hold never empties the answer: a series that has one is left
    /// out and named in `error`; one in the head goes as a string, and `error` says so.
    @Test func nonFiniteNeverEmptiesTheAnswer() throws {
        var d = Self.data(series: 3)
        d.series[1].latest = .infinity
        var logged: [String] = []
        let snap = PageSnapshot(d) { logged.append($0) }
        let o = try Self.object(snap.json)
        #expect(Self.paths(o) == ["water/site-0000/g/level", "water/site-0002/g/level"])
        #expect((o["error"] as? String)?.contains("water/site-0001/g/level") == true, "\(o)")
        #expect(logged.count == 1)
        d = Self.data(series: 2)
        d.health.clockOffsetSeconds = .nan
        let head = try Self.object(PageSnapshot(d).json)
        #expect(Self.paths(head).count == 2 && (head["error"] as? String)?.contains("not a number") == true, "\(head)")
        #expect((head["health"] as? [String: Any])?["clock_offset_seconds"] as? String == "nan")
    }
}

@Suite("The page's build thread")
struct PageThreadTests {
    /// A build runs at nice 10: on busy cores ingest goes first.
    @Test func buildsRunNiced() async {
        let nice = await PageService.onThread { getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) }
        #expect(nice == PageService.buildNice)
        #expect(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) != PageService.buildNice, "the caller's thread is left alone")
    }
}
