import Foundation
import VigilCore

/// The listener's sockets: binding, the peer's name, descriptor flags.
extension HJ212Listener {
    enum ListenerError: Error, CustomStringConvertible {
        case system(String, Int32)
        case resolve(String)
        var description: String {
            switch self {
            case .system(let call, let code): return "\(call): \(String(cString: strerror(code))) (errno \(code))"
            case .resolve(let m): return m
            }
        }
    }

    /// Binds every address the host resolves to.
    func listen() throws -> [(Int32, String)] {
        let resolved: [ListenAddress.Resolved]
        do {
            resolved = try address.resolve()
        } catch {
            throw ListenerError.resolve("\(error)")
        }
        var out: [(Int32, String)] = []
        var firstError: Error?
        for a in resolved {
            let fd = socket(a.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                firstError = firstError ?? ListenerError.system("socket", errno)
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if a.family == AF_INET6 {
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            var storage = a.storage
            let bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, a.length) }
            }
            guard bound == 0, Glibc.listen(fd, 128) == 0 else {
                firstError = firstError ?? ListenerError.system("bind \(a.text):\(address.port)", errno)
                close(fd)
                continue
            }
            out.append((fd, a.family == AF_INET6 ? "[\(a.text)]:\(address.port)" : "\(a.text):\(address.port)"))
        }
        guard !out.isEmpty else { throw firstError ?? ListenerError.resolve("\(address.host) resolves to no address") }
        let bound = out.map(\.1)
        status.withLock {
            $0.listening = true
            $0.addresses = bound
        }
        logger.info("HJ 212 listener listening", metadata: ["hj212.listen": "\(address)", "addresses": "\(bound.joined(separator: ","))"])
        return out
    }


    /// `host:port` of the peer, and the host alone.
    static func peerName(_ fd: Int32) -> (String, String) {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
        }
        guard ok == 0 else { return ("?", "?") }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var serv = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let r = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, len, &host, socklen_t(host.count), &serv, socklen_t(serv.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard r == 0 else { return ("?", "?") }
        func text(_ c: [CChar]) -> String { String(decoding: c.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return (text(host) + ":" + text(serv), text(host))
    }

    /// Non-blocking and closed on exec.
    static func nonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }
}
