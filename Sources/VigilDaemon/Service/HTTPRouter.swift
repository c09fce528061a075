/// A request's head, as far as vigil reads it: one small GET.
struct HTTPRequest: Sendable, Equatable {
    var method: String
    /// The path, without the query.
    var path: String
    var query: String?
    /// Header names in lower case (`authorization`, `host`); the last one of a name wins.
    var headers: [String: String] = [:]

    /// HEAD is answered as GET, without the body.
    var isHead: Bool { method == "HEAD" }
}

/// A response as a value: the router's handlers return one, the connection writes it.
struct HTTPResponse: Sendable, Equatable {
    var status: Int
    var contentType = "text/plain; charset=utf-8"
    var headers: [(String, String)] = []
    var body: [UInt8]

    static func text(_ status: Int, _ body: String, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: headers, body: Array(body.utf8))
    }

    static func == (a: HTTPResponse, b: HTTPResponse) -> Bool {
        a.status == b.status && a.contentType == b.contentType && a.body == b.body
            && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }

    static let reasons: [Int: String] = [
        200: "OK", 303: "See Other", 401: "Unauthorized", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
        414: "URI Too Long", 431: "Request Header Fields Too Large", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
    ]

    /// The bytes on the wire. A response to HEAD has the headers of GET's, Content-Length
    /// included, and no body.
    func serialized(head: Bool) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(Self.reasons[status] ?? "Status")\r\nContent-Type: \(contentType)\r\n"
        text += "Content-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + (head ? [] : body)
    }
}

/// Reads a request head from the bytes received so far.
enum HTTPHead {
    /// The longest request target (path and query) vigil reads; longer is 414.
    static let maxTarget = 2048
    /// The longest head, request line and headers; longer is 431.
    static let maxHead = 8192

    enum Outcome: Equatable {
        /// More bytes are needed.
        case incomplete
        case request(HTTPRequest)
        /// What to answer before closing: the request is not one vigil serves.
        case reject(HTTPResponse)
    }

    static func parse(_ bytes: [UInt8]) -> Outcome {
        let lineEnd = bytes.firstIndex(of: 10)
        // The request line alone is too long once it passes the target's limit.
        if (lineEnd ?? bytes.count) > maxTarget + 32 { return .reject(.text(414, "the request target is longer than \(maxTarget) bytes\n")) }
        guard let end = headEnd(bytes) else {
            return bytes.count > maxHead ? .reject(.text(431, "the request head is longer than \(maxHead) bytes\n")) : .incomplete
        }
        guard end <= maxHead else { return .reject(.text(431, "the request head is longer than \(maxHead) bytes\n")) }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        // "\r\n" is one Character in Swift: split on newlines, which it is one of.
        var lines = head.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let first = lines.first else { return .reject(.text(400, "no request line\n")) }
        let parts = first.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isASCII && $0.isUppercase }),
            parts[1].hasPrefix("/") || parts[1] == "*"
        else { return .reject(.text(400, "the request line must be METHOD /path HTTP/1.1\n")) }
        guard parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0" else {
            return parts[2].hasPrefix("HTTP/") ? .reject(.text(505, "HTTP/1.1 only\n")) : .reject(.text(400, "the request line must end in HTTP/1.1\n"))
        }
        guard parts[1].utf8.count <= maxTarget else { return .reject(.text(414, "the request target is longer than \(maxTarget) bytes\n")) }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, !line[..<colon].contains(" ") else {
                return .reject(.text(400, "a header line without a name and a colon\n"))
            }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        // What vigil serves is small GETs: a request that carries a body is not one.
        if headers["transfer-encoding"] != nil || (headers["content-length"].map { $0 != "0" } ?? false) {
            let method = String(parts[0])
            return method == "GET" || method == "HEAD"
                ? .reject(.text(400, "a \(method) request carries no body\n"))
                : .reject(.text(405, "GET or HEAD only\n", headers: [("Allow", "GET, HEAD")]))
        }
        let target = parts[1]
        let question = target.firstIndex(of: "?")
        return .request(
            HTTPRequest(
                method: String(parts[0]), path: String(target[..<(question ?? target.endIndex)]),
                query: question.map { String(target[target.index(after: $0)...]) }, headers: headers))
    }

    /// The index just past the blank line that ends the head, if it has arrived.
    static func headEnd(_ b: [UInt8]) -> Int? {
        var i = 0
        while i + 1 < b.count {
            if b[i] == 10 {
                if b[i + 1] == 10 { return i + 2 }
                if b[i + 1] == 13, i + 2 < b.count, b[i + 2] == 10 { return i + 3 }
            }
            i += 1
        }
        return nil
    }
}

/// Paths to handlers; GET and HEAD only. A new page (`GET /`) is one more `get` line.
struct HTTPRouter: Sendable {
    typealias Handler = @Sendable (HTTPRequest) async -> HTTPResponse
    private var routes: [(path: String, handler: Handler)] = []

    mutating func get(_ path: String, _ handler: @escaping Handler) {
        routes.append((path, handler))
    }

    var paths: [String] { routes.map(\.path) }

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return .text(405, "GET or HEAD only\n", headers: [("Allow", "GET, HEAD")])
        }
        guard let route = routes.first(where: { $0.path == request.path }) else {
            return .text(404, paths.joined(separator: ", ") + "\n")
        }
        return await route.handler(request)
    }
}
