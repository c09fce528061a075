import Foundation
import Logging
import VigilCore
import VigilStorage
import Yams

/// `hj212:` (docs/hj212.md): the listener's bounds, the stations and the code table.
extension ConfigParser {
    mutating func hj212(_ node: Node) {
        guard let hm = r.mapping(
            node, "hj212", allowed: [
                "listen", "stations", "codes", "max_connections", "max_connections_per_peer", "max_frames_per_second",
                "idle_timeout", "frame_timeout", "minute_interval",
            ])
        else { return }
        var h = HJ212Config()
        if let x = hm["listen"], let s = r.string(x.value, "hj212.listen") {
            switch ListenAddress.parse(s) {
            case .failure(let problem): r.error(x.value, "hj212.listen: \(problem.message)")
            case .success: h.listen = s
            }
        }
        if let x = hm["max_connections"], let n = r.int(x.value, "hj212.max_connections", 1...10_000) { h.maxConnections = n }
        if let x = hm["max_connections_per_peer"], let n = r.int(x.value, "hj212.max_connections_per_peer", 1...10_000) {
            h.maxConnectionsPerPeer = n
        }
        if let x = hm["max_frames_per_second"], let n = r.int(x.value, "hj212.max_frames_per_second", 1...1_000_000) {
            h.maxFramesPerSecond = n
        }
        if let x = hm["idle_timeout"], let d = r.duration(x.value, "hj212.idle_timeout") {
            if d < .seconds(1) || d > .hours(24) {
                r.error(x.value, "hj212.idle_timeout must be between 1s and 24h")
            } else {
                h.idleTimeout = d
            }
        }
        if let x = hm["frame_timeout"], let d = r.duration(x.value, "hj212.frame_timeout") {
            if d < .seconds(1) || d > .minutes(10) {
                r.error(x.value, "hj212.frame_timeout must be between 1s and 10m")
            } else {
                h.frameTimeout = d
            }
        }
        if let x = hm["minute_interval"], let d = r.duration(x.value, "hj212.minute_interval") {
            if d < .minutes(1) || d > .hours(1) || d.micros % 60_000_000 != 0 {
                r.error(x.value, "hj212.minute_interval must be whole minutes from 1m to 1h (the data loggers' minute data interval)")
            } else {
                h.minuteInterval = d
            }
        }
        if let x = hm["codes"] {
            if case .mapping(let cm) = x.value {
                for (keyNode, value) in cm {
                    guard let code = keyNode.string, !code.isEmpty, code.utf8.count <= 32,
                        code.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) })
                    else {
                        r.error(keyNode, "hj212.codes: a pollutant code is letters and digits, such as a34004")
                        continue
                    }
                    let what = "hj212.codes.\(code)"
                    guard let em = r.mapping(value, what, allowed: ["metric", "unit", "scale"]) else { continue }
                    guard let mn = em["metric"], let metric = r.name(mn.value, "\(what).metric") else {
                        if em["metric"] == nil { r.error(value, "\(what) needs metric: the reading's name") }
                        continue
                    }
                    if metric.utf8.count > 54 {
                        r.error(mn.value, "\(what).metric must be at most 54 bytes (interval data add _avg_10m)")
                        continue
                    }
                    var entry = HJ212Code(metric: metric, unit: nil)
                    if let u = em["unit"], let us = r.string(u.value, "\(what).unit") {
                        if us.utf8.count > 32 || us.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                            r.error(u.value, "\(what).unit must be at most 32 printable bytes")
                        } else {
                            entry.unit = us.isEmpty ? nil : us
                        }
                    }
                    if let sc = em["scale"] {
                        if let d = sc.value.string.flatMap(Double.init), d.isFinite, d != 0 {
                            entry.scale = d
                        } else {
                            r.error(sc.value, "\(what).scale must be a number other than 0 (1000 turns mg/m3 into ug/m3)")
                        }
                    }
                    h.codes[code] = entry
                }
            } else {
                r.error(x.value, "hj212.codes must be a mapping of pollutant codes to {metric, unit, scale}")
            }
        }
        if let x = hm["stations"] {
            if case .mapping(let sm) = x.value {
                for (keyNode, value) in sm {
                    guard let mn = keyNode.string, !mn.isEmpty, mn.utf8.count <= 64,
                        mn.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ";") && $0 != UInt8(ascii: "=") && $0 != UInt8(ascii: "&") })
                    else {
                        r.error(keyNode, "hj212.stations: an MN is 1 to 64 printable ASCII characters without ; = & or spaces")
                        continue
                    }
                    let what = "hj212.stations.\(mn)"
                    guard let em = r.mapping(value, what, allowed: ["network", "site", "device", "password_file", "interval_as"])
                    else { continue }
                    guard let n = em["network"], let s = em["site"], let d = em["device"] else {
                        r.error(value, "\(what) needs network, site and device")
                        continue
                    }
                    guard let network = r.name(n.value, "\(what).network"), let site = r.name(s.value, "\(what).site"),
                        let device = r.name(d.value, "\(what).device")
                    else { continue }
                    var station = HJ212Station(network: network, site: site, device: device)
                    if let p = em["password_file"], let path = secret(p.value, "\(what).password_file") {
                        // An unreadable file is reported by `secret`; one that is not UTF-8 here.
                        if FileManager.default.isReadableFile(atPath: path) {
                            do {
                                let password = try Secrets.read(path)
                                if password.isEmpty {
                                    r.error(p.value, "\(what).password_file '\(path)' is empty: put the station's PW (one line) in it")
                                } else {
                                    station.password = password
                                }
                            } catch {
                                r.error(p.value, "\(what).password_file '\(path)' is not UTF-8 text")
                            }
                        }
                    }
                    if let x = em["interval_as"], let v = r.string(x.value, "\(what).interval_as") {
                        switch v {
                        case "metric": station.hourlyAverageAsMetric = true
                        case "own": station.hourlyAverageAsMetric = false
                        default: r.error(x.value, "\(what).interval_as must be metric (hourly averages under the plain metric) or own (pm25_avg_1h)")
                        }
                    }
                    h.stations[mn] = station
                }
            } else {
                r.error(x.value, "hj212.stations must be a mapping of MN to {network, site, device}")
            }
        }
        if h.stations.isEmpty { r.error(node, "hj212 needs stations: the MN of each station and where its readings go") }
        c.hj212 = h
    }
}
