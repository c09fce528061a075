import Foundation

/// Who may see the page (`/` and `/page.json`) when `http.token_file` is set: a request
/// with `Authorization: Bearer TOKEN`, or with the session cookie a `?token=TOKEN` login
/// set. The login answers 303 to the same path without the query, so the token leaves the
/// address bar (the typed address stays in the browser's history); the cookie is HttpOnly (no script reads it) and
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
    /// `vigil_session_PORT`: a browser keeps cookies by host, not port, so two gateways
    /// tunnelled to two ports of localhost each keep their own.
    let cookieName: String
    /// Host names (lower case) a request's `Host` may carry besides IP literals and
    /// `localhost`: the listen address's name and this machine's.
    let hostNames: Set<String>

    init(token: String?, port: UInt16 = 9464, hostNames: Set<String> = [], session: String = PageAuth.randomKey()) {
        self.token = token.map { Array($0.utf8) }
        self.session = session
        self.cookieName = "vigil_session_\(port)"
        self.hostNames = Set(hostNames.map { $0.lowercased() })
    }

    /// The names the page answers to for a daemon listening on `listen`.
    static func hostNames(listen: ListenAddress?) -> Set<String> {
        var names: Set<String> = []
        if let host = listen?.host, !isIPLiteral(host) { names.insert(host) }
        var buf = [UInt8](repeating: 0, count: 256)
        if gethostname(&buf, buf.count - 1) == 0 {
            let name = String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self).lowercased()
            if !name.isEmpty {
                names.insert(name)
                names.insert(name + ".local")
                if let first = name.split(separator: ".").first { names.insert(String(first)) }
            }
        }
        return names
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Whether `Host` names this gateway: an IP literal (`[v6]` in brackets), `localhost`
    /// (or a name under it), or one of `hostNames`; any port. Anything else is a page of
    /// another site whose name was made to resolve here (DNS rebinding): refused. No
    /// `Host` at all (HTTP/1.0, a script) is let through: browsers always send one.
    func hostAllowed(_ request: HTTPRequest) -> Bool {
        guard let value = request.headers["host"]?.lowercased() else { return true }
        var host = Substring(value)
        if host.hasPrefix("[") {
            guard let end = host.firstIndex(of: "]") else { return false }
            return Self.isIPLiteral(String(host[host.index(after: host.startIndex)..<end]))
        }
        if let colon = host.lastIndex(of: ":") { host = host[..<colon] }
        if host.hasSuffix(".") { host = host.dropLast() }
        let name = String(host)
        return Self.isIPLiteral(name) || name == "localhost" || name.hasSuffix(".localhost") || hostNames.contains(name)
    }

    enum Outcome: Equatable {
        case allowed
        /// The answer instead of the page: a login's redirect, or 401.
        case respond(HTTPResponse)
    }

    func check(_ request: HTTPRequest) -> Outcome {
        guard hostAllowed(request) else {
            return .respond(
                .text(
                    421, "Host \(request.headers["host"] ?? "") is not a name of this gateway: open the page by its IP address, localhost or its host name\n",
                    headers: [("Cache-Control", "no-store")]))
        }
        guard let token else { return .allowed }
        if let given = Self.queryValue("token", in: request.query) {
            guard Self.equal(Array(given.utf8), token) else { return .respond(Self.denied(wrong: true)) }
            return .respond(
                HTTPResponse(
                    status: 303, headers: [
                        ("Location", request.path),
                        ("Set-Cookie", "\(cookieName)=\(session); Path=/; HttpOnly; SameSite=Strict"),
                        ("Cache-Control", "no-store"),
                    ], body: Array("logged in; go to \(request.path)\n".utf8)))
        }
        if let auth = request.headers["authorization"], auth.hasPrefix("Bearer ") {
            let given = Array(auth.dropFirst("Bearer ".count).utf8)
            return Self.equal(given, token) ? .allowed : .respond(Self.denied(wrong: true))
        }
        if let cookie = request.headers["cookie"], let value = Self.cookieValue(cookieName, in: cookie),
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
                + "this page needs the token of http.token_file: log in (again) with /?token=TOKEN (it sets a cookie), or send Authorization: Bearer TOKEN\n",
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
