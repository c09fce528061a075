import Foundation
import Logging
import Testing
import VigilCore
import VigilMQTT
import VigilTestSupport

@testable import VigilDaemon
@testable import VigilStorage

@Suite("HTTP requests and responses")
struct HTTPHeadTests {
    func parse(_ s: String) -> HTTPHead.Outcome { HTTPHead.parse(Array(s.utf8)) }

    func status(_ s: String) -> Int? {
        if case .reject(let r) = parse(s) { return r.status }
        return nil
    }

    /// CRLF is one Character in Swift: the head must still split into lines (it did not,
    /// and every request was a 400).
    @Test func aRequestWithCRLFParses() {
        let outcome = parse("GET /metrics?x=1 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer t\r\n\r\n")
        #expect(outcome == .request(HTTPRequest(method: "GET", path: "/metrics", query: "x=1", headers: ["host": "gw", "authorization": "Bearer t"])))
        #expect(parse("HEAD / HTTP/1.0\n\n") == .request(HTTPRequest(method: "HEAD", path: "/", query: nil)))
    }

    @Test func halfARequestWaitsForMore() {
        #expect(parse("") == .incomplete)
        #expect(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n") == .incomplete)
    }

    @Test func whatIsNotASmallGETIsRefused() {
        #expect(status("GARBAGE\r\n\r\n") == 400)
        #expect(status("GET metrics HTTP/1.1\r\n\r\n") == 400)
        #expect(status("GET / HTTP/2.0\r\n\r\n") == 505)
        #expect(status("GET / HTTP/1.1\r\nno colon here\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello") == 400)
        #expect(status("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello") == 405)
        // A target over the limit is 414 as soon as the line is that long, before its end arrives.
        #expect(status("GET /" + String(repeating: "a", count: HTTPHead.maxTarget + 100)) == 414)
        #expect(status("GET /" + String(repeating: "a", count: HTTPHead.maxTarget + 1) + " HTTP/1.1\r\n\r\n") == 414)
        // Headers without end.
        #expect(status("GET / HTTP/1.1\r\n" + String(repeating: "X-A: b\r\n", count: 2000)) == 431)
    }

    @Test func headHasTheHeadersOfGetAndNoBody() async throws {
        var router = HTTPRouter()
        router.get("/metrics") { _ in .text(200, "vigil_up 1\n") }
        let get = await router.respond(to: HTTPRequest(method: "GET", path: "/metrics"))
        let head = await router.respond(to: HTTPRequest(method: "HEAD", path: "/metrics"))
        let getBytes = String(decoding: get.serialized(head: false), as: UTF8.self)
        let headBytes = String(decoding: head.serialized(head: true), as: UTF8.self)
        #expect(getBytes.hasSuffix("\r\n\r\nvigil_up 1\n"))
        #expect(headBytes.hasSuffix("\r\n\r\n"))
        #expect(headBytes.contains("Content-Length: 11\r\n"))
        #expect(getBytes.hasPrefix(headBytes))
        let post = await router.respond(to: HTTPRequest(method: "DELETE", path: "/metrics"))
        #expect(post.status == 405 && post.headers.contains { $0 == ("Allow", "GET, HEAD") })
        #expect(await router.respond(to: HTTPRequest(method: "GET", path: "/nope")).status == 404)
    }
}

@Suite("http.listen addresses")
struct ListenAddressTests {
    func parsed(_ s: String) -> ListenAddress? { try? ListenAddress.parse(s).get() }

    func problem(_ s: String) -> String? {
        if case .failure(let p) = ListenAddress.parse(s) { return p.message }
        return nil
    }

    @Test func whatOperatorsWrite() {
        #expect(parsed("127.0.0.1:9464") == ListenAddress(host: "127.0.0.1", port: 9464))
        #expect(parsed("localhost:9464") == ListenAddress(host: "localhost", port: 9464))
        #expect(parsed("gateway-7.lan:9464") == ListenAddress(host: "gateway-7.lan", port: 9464))
        #expect(parsed("[::1]:9464") == ListenAddress(host: "::1", port: 9464))
        #expect(parsed("[::]:80")?.description == "[::]:80")
        #expect(parsed("0.0.0.0:9464")?.description == "0.0.0.0:9464")
    }

    @Test func malformedAddressesSayWhy() {
        #expect(problem("::1:9464")?.contains("[::1]:9464") == true)
        #expect(problem("9464")?.contains("no port") == true)
        #expect(problem(":9464")?.contains("no host") == true)
        #expect(problem("localhost:0")?.contains("1 to 65535") == true)
        #expect(problem("localhost:70000")?.contains("1 to 65535") == true)
        #expect(problem("999.1.1.1:80")?.contains("not an IPv4 address") == true)
        #expect(problem("bad_host:80")?.contains("neither an IP address nor a host name") == true)
        #expect(problem("[::1:80")?.contains("never closes") == true)
        #expect(problem("[nope]:80")?.contains("not an IPv6 address") == true)
    }

    /// `localhost` resolves (it did not: inet_pton was given it, and the daemon exited).
    @Test func localhostResolves() throws {
        let addresses = try ListenAddress(host: "localhost", port: 9464).resolve()
        #expect(addresses.contains { $0.text == "127.0.0.1" || $0.text == "::1" })
    }

    /// A malformed address in vigil.yaml is a diagnostic with its place.
    @Test func configSaysWhereTheMistakeIs() {
        let text = "gateway_id: gw\nsubscriptions:\n  - network: energy\n    topic: energy/+/+/+\n    layout: energy/{site}/{device}/{metric}\nhttp:\n  listen: \"::1:9464\"\n"
        do {
            _ = try VigilConfig.parse(text, file: "/etc/vigil/vigil.yaml")
            Issue.record("a malformed http.listen passed")
        } catch {
            #expect(error.diagnostics.map(\.description) == ["/etc/vigil/vigil.yaml:7:11: http.listen: an IPv6 address goes in brackets: [::1]:9464"])
        }
    }
}

@Suite("HTTP connections")
struct HTTPConnectionTests {
    func sleeper() -> Task<Void, Never> { Task { try? await Task.sleep(for: .seconds(60)) } }

    /// At the bound, the oldest connection still waiting for its request goes; one that is
    /// writing its response stays.
    @Test func theOldestIdleGoesAtTheBound() async {
        let board = HTTPStatusBoard(listen: "127.0.0.1:1")
        let table = HTTPConnections(limits: HTTPLimits(maxConnections: 3), status: board)
        var tasks: [Int: Task<Void, Never>] = [:]
        for t in 0..<3 {
            let id = table.open(now: Double(t))
            let task = sleeper()
            table.attach(id, task)
            tasks[id] = task
        }
        table.writing(0, now: 3)  // the oldest is busy answering
        let newest = table.open(now: 4)
        table.attach(newest, sleeper())
        #expect(table.count == 3)
        #expect(tasks[1]!.isCancelled && !tasks[0]!.isCancelled && !tasks[2]!.isCancelled)
        #expect(board.current.evicted == 1)
        table.cancelAll()
    }

    /// A peer that sends half a request is cut off at the read deadline.
    @Test func theDeadlineCutsSlowPeers() {
        let board = HTTPStatusBoard(listen: "127.0.0.1:1")
        let table = HTTPConnections(limits: HTTPLimits(maxConnections: 10, readDeadline: 5, writeDeadline: 10), status: board)
        let slow = table.open(now: 0)
        let task = sleeper()
        table.attach(slow, task)
        table.sweep(now: 4.9)
        #expect(!task.isCancelled)
        table.sweep(now: 5.1)
        #expect(task.isCancelled && table.count == 0 && board.current.timedOut == 1)
    }

    /// Out of descriptors: the oldest idle connection is closed to make room.
    @Test func outOfDescriptorsClosesTheOldestIdle() {
        let table = HTTPConnections(limits: HTTPLimits(), status: HTTPStatusBoard(listen: "x:1"))
        #expect(!table.evictOldestIdle())
        let a = table.open(now: 0)
        let ta = sleeper()
        table.attach(a, ta)
        #expect(table.evictOldestIdle() && ta.isCancelled)
    }
}

@Suite("Log lines")
struct LogLineTests {
    /// logfmt: the message in msg="...", the level as a field; under the journal a priority
    /// prefix and no time; metadata named like a field of the line is renamed.
    @Test func logfmtWithMsg() {
        let plain = VigilLogHandler(label: "t", journal: false)
        let line = plain.render(level: .warning, message: "rejected message", metadata: ["reason": "not_a_number", "level": "red"], time: "2026-12-01T00:00:00.000Z")
        #expect(line == "ts=2026-12-01T00:00:00.000Z level=warning msg=\"rejected message\" meta.level=red reason=not_a_number\n")
        let journal = VigilLogHandler(label: "t", journal: true)
        #expect(journal.render(level: .critical, message: "cannot start: \"x\"", metadata: [:], time: "") == "<2>level=critical msg=\"cannot start: \\\"x\\\"\"\n")
        #expect(journal.render(level: .info, message: "ready", metadata: [:], time: "") == "<6>level=info msg=\"ready\"\n")
    }
}

@Suite("Counters")
struct CounterTests {
    /// vigil_readings_stored_total counts what is committed: nothing while a batch is open,
    /// and a failed batch takes nothing back (it used to count at insert and subtract).
    @Test func storedOnlyCountsUpAfterTheCommit() throws {
        let rig = try PipelineRig(rules: "rules: []\n")
        var seen: [UInt64] = []
        func look() {
            rig.pipeline.publish()
            seen.append(rig.pipeline.snapshot.readingsStored)
        }
        var batch = MessageBatch()
        for i in 0..<3 { batch.append(topic: "energy/s1/m1/v", payload: Array("\(i)".utf8), receivedAt: rig.clock.now()) }
        rig.pipeline.handle(batch)
        look()
        #expect(seen.last == 0, "counted before the commit")
        rig.pipeline.commit()
        look()
        #expect(seen.last == 3)
        var more = MessageBatch()
        for i in 0..<2 { more.append(topic: "energy/s1/m2/v", payload: Array("\(i)".utf8), receivedAt: rig.clock.now()) }
        rig.pipeline.handle(more)
        look()
        // The batch fails (an I/O error): rolled back, nothing counted.
        rig.pipeline.store.failed(SQLiteError(code: 10, operation: "commit", message: "disk I/O error"), stats: &rig.pipeline.stats)
        look()
        #expect(seen == seen.sorted(), "the counter went down: \(seen)")
        #expect(seen.last == 3)
    }
}
