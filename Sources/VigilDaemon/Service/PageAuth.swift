import Foundation

/// Who may see the page (`/` and `/page.json`) when `http.token_file` is set: a request
/// with `Authorization: Bearer TOKEN`, or with the session cookie a `?token=TOKEN` login
/// set. The login answers 303 to the same path without the query, so the token leaves the
/// address bar and the history; the cookie is HttpOnly (no script reads it) and
/// SameSite=Strict (no other site's page sends it). The cookie holds a random session key
/// made at start, not the token: a restart of vigil asks for the token again.
///
/// `/metrics`, `/healthz` and `/readyz` stay open: they carry counts and states, no
/// series names, values, topics or payloads, and scrapers and systemd probes use them.
struct PageAuth: Sendable {
    /// The token's bytes; nil when no token is required.
    let token: [UInt8]?
    /// The session key the login cookie carries.
    let session: String

    static let cookieName = "vigil_session"

    init(token: String?, session: String = PageAuth.randomKey()) {
        self.token = token.map { Array($0.utf8) }
        self.session = session
    }

    enum Outcome: Equatable {
        case allowed
        /// The answer instead of the page: a login's redirect, or 401.
        case respond(HTTPResponse)
    }

    func check(_ request: HTTPRequest) -> Outcome {
        guard let token else { return .allowed }
        if let given = Self.queryValue("token", in: request.query) {
            guard Self.equal(Array(given.utf8), token) else { return .respond(Self.denied(wrong: true)) }
            return .respond(
                HTTPResponse(
                    status: 303, headers: [
                        ("Location", request.path),
                        ("Set-Cookie", "\(Self.cookieName)=\(session); Path=/; HttpOnly; SameSite=Strict"),
                        ("Cache-Control", "no-store"),
                    ], body: Array("logged in; go to \(request.path)\n".utf8)))
        }
        if let auth = request.headers["authorization"], auth.hasPrefix("Bearer ") {
            let given = Array(auth.dropFirst("Bearer ".count).utf8)
            return Self.equal(given, token) ? .allowed : .respond(Self.denied(wrong: true))
        }
        if let cookie = request.headers["cookie"], let value = Self.cookieValue(Self.cookieName, in: cookie),
            Self.equal(Array(value.utf8), Array(session.utf8))
        {
            return .allowed
        }
        return .respond(Self.denied(wrong: false))
    }

    static func denied(wrong: Bool) -> HTTPResponse {
        .text(
            401,
            (wrong ? "wrong token\n" : "")
                + "this page needs the token of http.token_file: open /?token=TOKEN once (it sets a cookie), or send Authorization: Bearer TOKEN\n",
            headers: [("WWW-Authenticate", "Bearer realm=\"vigil\""), ("Cache-Control", "no-store")])
    }

    /// Equal bytes, in a time that depends on the length of `given` alone (not on where
    /// it first differs from `secret`).
    static func equal(_ given: [UInt8], _ secret: [UInt8]) -> Bool {
        guard !secret.isEmpty else { return false }
        var diff: UInt8 = given.count == secret.count ? 0 : 1
        for i in 0..<given.count { diff |= given[i] ^ secret[i % secret.count] }
        return diff == 0
    }

    /// A query parameter's value, percent-decoded; the first of its name.
    static func queryValue(_ name: String, in query: String?) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if kv.first == Substring(name) { return percentDecoded(kv.count > 1 ? kv[1] : "") }
        }
        return nil
    }

    static func percentDecoded(_ s: Substring) -> String {
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if b == UInt8(ascii: "%"), bytes.count >= 2,
                let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16)
            {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func cookieValue(_ name: String, in header: String) -> String? {
        for part in header.split(separator: ";") {
            let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == Substring(name) { return String(kv[1]) }
        }
        return nil
    }

    /// 32 random bytes as hex (SystemRandomNumberGenerator: getrandom on Linux).
    static func randomKey() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in
            let b = UInt8.random(in: 0...255, using: &g)
            return String(b >> 4, radix: 16) + String(b & 15, radix: 16)
        }.joined()
    }
}
