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
        #expect(auth.check(request(headers: ["cookie": "vigil_session=abcdeF"])) != .allowed)
        #expect(auth.check(request(headers: ["cookie": "vigil_session=s3cret-token"])) != .allowed)
    }

    @Test func bearerAndCookieLetIn() {
        #expect(auth.check(request("/page.json", headers: ["authorization": "Bearer s3cret-token"])) == .allowed)
        #expect(auth.check(request(headers: ["cookie": "theme=dark; vigil_session=abcdef"])) == .allowed)
    }

    /// `?token=` sets the HttpOnly, SameSite=Strict cookie and sends the browser to the
    /// same path without the token; a wrong one is 401 and sets nothing.
    @Test func loginSetsTheCookieAndDropsTheToken() {
        guard case .respond(let r) = auth.check(request(query: "token=s3cret%2Dtoken")) else { Issue.record("no redirect"); return }
        #expect(r.status == 303)
        #expect(r.headers.contains { $0 == ("Location", "/") })
        #expect(r.headers.contains { $0 == ("Set-Cookie", "vigil_session=abcdef; Path=/; HttpOnly; SameSite=Strict") })
        guard case .respond(let bad) = auth.check(request(query: "token=nope")) else { Issue.record("wrong token let in"); return }
        #expect(bad.status == 401 && !bad.headers.contains { $0.0 == "Set-Cookie" })
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
