import Foundation

/// `http.listen` as operators write it: `127.0.0.1:9464`, `localhost:9464`,
/// `gateway.lan:9464`, `[::1]:9464`, `0.0.0.0:9464` or `[::]:9464`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// An IP address or a host name, without brackets.
    public var host: String
    public var port: UInt16

    /// What is wrong with an address, in words for `vigil check`.
    public struct Problem: Error, Equatable {
        public var message: String
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `HOST:PORT`; an IPv6 address goes in brackets.
    public static func parse(_ text: String) -> Result<ListenAddress, Problem> {
        func problem(_ m: String) -> Result<ListenAddress, Problem> { .failure(Problem(message: m)) }
        let s = text.trimmingCharacters(in: .whitespaces)
        let host: String
        let portText: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return problem("'\(text)' opens [ for an IPv6 address but never closes it") }
            host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":") else { return problem("'\(text)' needs :PORT after the bracketed address, such as [::1]:9464") }
            portText = rest.dropFirst()
            guard isIPv6(host) else { return problem("'\(host)' in brackets is not an IPv6 address") }
        } else {
            guard let colon = s.lastIndex(of: ":") else { return problem("'\(text)' has no port: write HOST:PORT, such as 127.0.0.1:9464") }
            host = String(s[..<colon])
            portText = s[s.index(after: colon)...]
            if host.contains(":") { return problem("an IPv6 address goes in brackets: [\(host)]:\(portText)") }
            if host.isEmpty {
                return problem("'\(text)' has no host: 127.0.0.1:\(portText) for this machine only, 0.0.0.0:\(portText) for every address")
            }
            if let p = hostProblem(host) { return problem(p) }
        }
        guard let port = UInt16(portText), port > 0 else { return problem("port '\(portText)' is not a number from 1 to 65535") }
        return .success(ListenAddress(host: host, port: port))
    }

    static func isIPv6(_ s: String) -> Bool {
        var a = in6_addr()
        return inet_pton(AF_INET6, s, &a) == 1
    }

    static func isIPv4(_ s: String) -> Bool {
        var a = in_addr()
        return inet_pton(AF_INET, s, &a) == 1
    }

    /// A dotted IPv4 address or a host name of RFC 1123 labels.
    static func hostProblem(_ host: String) -> String? {
        if host.allSatisfy({ $0.isNumber || $0 == "." }) {
            return isIPv4(host) ? nil : "'\(host)' is not an IPv4 address"
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        let ok =
            host.utf8.count <= 253
            && labels.allSatisfy { l in
                !l.isEmpty && l.utf8.count <= 63 && !l.hasPrefix("-") && !l.hasSuffix("-")
                    && l.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil)) || $0 == "-" }
            }
        return ok ? nil : "'\(host)' is neither an IP address nor a host name"
    }

    /// One address to bind, as `getaddrinfo` gives it.
    struct Resolved: @unchecked Sendable {
        // A plain C value copied out of getaddrinfo's list: nothing in it points elsewhere.
        var family: Int32
        var storage: sockaddr_storage
        var length: socklen_t

        /// The numeric form, for the log.
        var text: String {
            var s = storage
            var buf = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let rc = withUnsafePointer(to: &s) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    getnameinfo($0, length, &buf, socklen_t(buf.count), nil, 0, NI_NUMERICHOST)
                }
            }
            return rc == 0 ? String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
        }
    }

    /// Looks the host up (`/etc/hosts`, then DNS) for addresses to listen on.
    /// - Throws: `ListenError.resolve` with getaddrinfo's message.
    func resolve() throws(ListenError) -> [Resolved] {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else { throw .resolve(host: host, message: String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(first) }
        var out: [Resolved] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            if let addr = ai.pointee.ai_addr, ai.pointee.ai_family == AF_INET || ai.pointee.ai_family == AF_INET6 {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { dst in
                    dst.copyMemory(from: UnsafeRawBufferPointer(start: addr, count: Int(ai.pointee.ai_addrlen)))
                }
                let r = Resolved(family: ai.pointee.ai_family, storage: storage, length: ai.pointee.ai_addrlen)
                if !out.contains(where: { $0.text == r.text }) { out.append(r) }
            }
            p = ai.pointee.ai_next
        }
        if out.isEmpty { throw .resolve(host: host, message: "no IPv4 or IPv6 address") }
        return out
    }

    /// What `vigil check` can say without starting anything: whether the host resolves and
    /// the port can be bound now (it is closed again at once).
    /// - Returns: a warning for each address that cannot be had now, empty when all is well.
    public func availability() -> [String] {
        let addresses: [Resolved]
        do {
            addresses = try resolve()
        } catch {
            return ["\(error.description); vigil will keep trying while ingest runs"]
        }
        var warnings: [String] = []
        for a in addresses {
            let fd = socket(a.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if a.family == AF_INET6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) }
            var s = a.storage
            let rc = withUnsafePointer(to: &s) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, a.length) } }
            if rc != 0 {
                let what = errno == EADDRINUSE ? "is in use" : "cannot be bound (\(String(cString: strerror(errno))))"
                warnings.append("\(description): port \(port) on \(a.text) \(what) now; vigil will keep trying while ingest runs")
            }
        }
        return warnings
    }
}

/// Why the HTTP listener is not listening.
enum ListenError: Error, CustomStringConvertible {
    case resolve(host: String, message: String)
    case bind(address: String, errno: Int32)
    /// The listener's loop ended without an error of its own.
    case stopped

    var description: String {
        switch self {
        case .resolve(let host, let message): return "cannot resolve '\(host)': \(message)"
        case .bind(let address, let e): return "cannot listen on \(address): \(String(cString: strerror(e)))"
        case .stopped: return "the listener stopped"
        }
    }
}

extension ListenAddress {
    /// Whether only this machine can reach it: `localhost`, 127.0.0.0/8 or `::1`. A name
    /// other than `localhost` counts as a LAN address (it may resolve to one).
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" { return true }
        var a = in_addr()
        guard inet_pton(AF_INET, host, &a) == 1 else { return false }
        return UInt32(bigEndian: a.s_addr) >> 24 == 127
    }
}
