import Foundation
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilDaemon

/// The `hj212` section: stations, codes, listener bounds; every mistake as file:line:column.
@Suite("HJ 212 configuration")
struct HJ212ConfigTests {
    func diagnostics(_ text: String, file: String = "bad.yaml") -> [String] {
        do {
            _ = try VigilConfig.parse(text, file: file)
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    @Test func goodSection() throws {
        let dir = TemporaryDirectory()
        try "secret\n".write(toFile: dir.file("st.pass"), atomically: true, encoding: .utf8)
        let text = """
            gateway_id: g
            subscriptions:
              - topic: hj212/+
                format: hj212
            hj212:
              listen: 0.0.0.0:9212
              max_connections: 8
              idle_timeout: 30s
              minute_interval: 10m
              stations:
                "010000A8900016F000169DC0": { network: water, site: station-07, device: wq-1, password_file: st.pass }
                "399435XYGD0001": { network: urban, site: district-1, device: aqms-1 }
              codes:
                w01008: { metric: suspended_solids, unit: mg/L }
                a34004: { metric: pm25, unit: ug/m3, scale: 1000 }
            """
        let c = try VigilConfig.parse(text, file: dir.file("vigil.yaml"))
        let h = try #require(c.hj212)
        #expect(h.listen == "0.0.0.0:9212")
        #expect(h.maxConnections == 8 && h.idleTimeout == .seconds(30) && h.minuteInterval == .minutes(10))
        #expect(h.stations["010000A8900016F000169DC0"] == HJ212Station(network: "water", site: "station-07", device: "wq-1", password: "secret"))
        #expect(h.stations["399435XYGD0001"]?.password == nil)
        #expect(h.codes["w01008"] == HJ212Code(metric: "suspended_solids", unit: "mg/L"))
        #expect(h.codes["a34004"]?.scale == 1000)
        #expect(h.codes["w01001"]?.metric == "ph", "the built-in codes stay")
        #expect(c.subscriptions.map(\.format) == [.hj212])
    }

    /// An empty password file is a config error (a PW of nothing would let any frame in);
    /// `interval_as` is metric or own.
    @Test func emptyPasswordAndIntervalAs() throws {
        let dir = TemporaryDirectory()
        try "\n".write(toFile: dir.file("empty.pass"), atomically: true, encoding: .utf8)
        let text = """
            gateway_id: g
            subscriptions: [{ topic: hj212/+, format: hj212 }]
            hj212:
              stations:
                "ST1": { network: urban, site: s, device: d, password_file: empty.pass }
                "ST2": { network: urban, site: s, device: d, interval_as: hourly }
            """
        let file = dir.file("vigil.yaml")
        #expect(diagnostics(text, file: file) == [
            "\(file):5:65: hj212.stations.ST1.password_file '\(dir.file("empty.pass"))' is empty: put the station's PW (one line) in it",
            "\(file):6:63: hj212.stations.ST2.interval_as must be metric (hourly averages under the plain metric) or own (pm25_avg_1h)",
        ])
        let good = try VigilConfig.parse(
            "gateway_id: g\nsubscriptions: [{ topic: hj212/+, format: hj212 }]\nhj212:\n  stations:\n    \"ST1\": { network: urban, site: s, device: d, interval_as: metric }\n",
            file: dir.file("ok.yaml"))
        #expect(good.hj212?.stations["ST1"]?.hourlyAverageAsMetric == true)
        #expect(good.hj212?.decoder(zone: .shanghai).stations["ST1"]?.hourlyAverageAsMetric == true)
    }

    @Test func mistakesWithTheirPlace() throws {
        let dir = TemporaryDirectory()
        // Not UTF-8: a config error, never a password silently ignored.
        try Data([0xFF, 0xFE, 0x00, 0x41]).write(to: URL(fileURLWithPath: dir.file("bad.pass")))
        let text = """
            gateway_id: g
            subscriptions:
              - topic: hj212/+
                format: hj212
                layout: hj212/{site}/{device}
            hj212:
              listen: nowhere
              idle_timeout: 0s
              minute_interval: 90s
              stations:
                "A;B": { network: urban, site: s, device: d }
                "ST1": { network: urban, site: "bad site", device: d }
                "ST2": { network: urban, site: s }
                "ST3": { network: urban, site: s, device: d, password_file: /nonexistent/st.pass }
                "ST4": { network: urban, site: s, device: d, password_file: bad.pass }
              codes:
                a34004: { unit: ug/m3 }
                "a-1": { metric: x }
                w01001: { metric: ph, scale: zero }
              colour: blue
            """
        let file = dir.file("vigil.yaml")
        let d = diagnostics(text, file: file)
        let expected = [
            "\(file):5:5: subscriptions[0]: format hj212 takes network, site and device from hj212.stations; leave out network and layout",
            "\(file):7:11: hj212.listen: 'nowhere' has no port: write HOST:PORT, such as 127.0.0.1:9464",
            "\(file):8:17: hj212.idle_timeout must be between 1s and 24h",
            "\(file):9:20: hj212.minute_interval must be whole minutes from 1m to 1h (the data loggers' minute data interval)",
            "\(file):11:5: hj212.stations: an MN is 1 to 64 printable ASCII characters without ; = & or spaces",
            "\(file):12:36: hj212.stations.ST1.site 'bad site' must be 1 to 64 of A-Z a-z 0-9 _ . -",
            "\(file):13:12: hj212.stations.ST2 needs network, site and device",
            "\(file):14:65: hj212.stations.ST3.password_file '/nonexistent/st.pass' cannot be read",
            "\(file):15:65: hj212.stations.ST4.password_file '\(dir.file("bad.pass"))' is not UTF-8 text",
            "\(file):17:13: hj212.codes.a34004 needs metric: the reading's name",
            "\(file):18:5: hj212.codes: a pollutant code is letters and digits, such as a34004",
            "\(file):19:34: hj212.codes.w01001.scale must be a number other than 0 (1000 turns mg/m3 into ug/m3)",
            "\(file):20:3: unknown key 'colour' in hj212",
        ]
        #expect(d == expected)
        // A subscription in format hj212 needs the stations.
        #expect(diagnostics("gateway_id: g\nsubscriptions:\n  - { topic: h/+, format: hj212 }\n").contains(
            "bad.yaml:3:3: subscription h/+ has format hj212, but there is no hj212 section with its stations"))
        #expect(diagnostics("gateway_id: g\nsubscriptions:\n  - { topic: h/+, format: hj212 }\nhj212: { listen: 127.0.0.1:9212 }\n").contains(
            "bad.yaml:4:8: hj212 needs stations: the MN of each station and where its readings go"))
    }

    /// `vigil check --topic --payload` shows what a frame becomes, its flags and its answer.
    @Test func checkShowsAFrame() throws {
        let dir = TemporaryDirectory()
        let text = """
            gateway_id: g
            subscriptions:
              - topic: hj212/+
                format: hj212
            hj212:
              stations:
                "ST001": { network: urban, site: district-1, device: aqms-1 }
            """
        let c = try VigilConfig.parse(text, file: dir.file("vigil.yaml"))
        // 2026-03-01 08:00:00 in Shanghai.
        let now = Timestamp(seconds: 1_772_323_200)
        let frame = HJ212.frame(
            segment: "QN=20260301080000123;ST=22;CN=2011;PW=123456;MN=ST001;Flag=5;CP=&&DataTime=20260301080000;a34004-Rtd=35.2,a34004-Flag=N;a34002-Rtd=80,a34002-Flag=C;zz1-Rtd=1&&")
        for topic in ["hj212/x", "tcp:"] {
            let (out, stored) = MessageCheck.describe(topic: topic, payload: frame, config: c, rules: [], now: now)
            #expect(stored)
            #expect(out.contains("urban/district-1/aqms-1/pm25 = 35.2 ug/m3 at 2026-03-01T00:00:00Z"), "\(out)")
            #expect(!out.contains("pm10 ="))
            #expect(out.contains("1 value(s) flagged C"))
            #expect(out.contains("hj212_unknown_code: zz1"))
            #expect(out.contains("answer after the commit: ##0068QN=20260301080000123;ST=91;CN=9014;PW=123456;MN=ST001;Flag=4;CP=&&&&"))
        }
        let (bad, stored) = MessageCheck.describe(topic: "tcp:", payload: Array(frame.dropLast(3)), config: c, rules: [], now: now)
        #expect(!stored && bad.contains("rejected: hj212_"))
    }
}
