import Testing
import VigilCore

@testable import VigilDaemon

/// The listener's cutting of a connection's bytes, in process: the screen, the bad-frame run,
/// the bucket, the inbox refusing, the resync after a bad CRC.
@Suite("HJ 212 listener cutting")
struct HJ212CutterTests {
    static let decoder = HJ212Decoder(
        stations: ["ST001": HJ212Station(network: "urban", site: "s", device: "d")], zone: .shanghai)

    static func good(_ i: Int) -> [UInt8] {
        HJ212.frame(segment: "QN=2026030108000000\(i % 10);ST=22;CN=2011;PW=1;MN=ST001;Flag=5;CP=&&DataTime=20260301080000;a34004-Rtd=\(i)&&")
    }

    struct Run {
        var cutter = HJ212Cutter(limits: HJ212Limits(), decoder: HJ212CutterTests.decoder)
        var connection = HJ212Connection(fd: -1, peer: "p", host: "h", now: 0, burst: 100)
        var offered: [[UInt8]] = []
        var refuse = false

        mutating func feed(_ bytes: [UInt8]) -> HJ212Cut {
            connection.input += bytes
            var counts: (handed: UInt64, bad: UInt64) = (0, 0)
            var got: [[UInt8]] = []
            let refuse = self.refuse
            let r = cutter.cut(&connection, now: 0, counts: &counts) { b in
                if refuse { return false }
                got.append(Array(b))
                return true
            }
            offered += got
            return r
        }
    }

    /// A frame whose announced length is wrong (so its CRC is): the next frame, inside what
    /// the length announced, is still found (resync at the next `##`, not past the length).
    @Test func resyncAfterABadCRC() {
        var run = Run()
        let inner = Self.good(1)
        // "##0200" announces 200 bytes; the real frame starts 20 bytes later.
        let liar = Array("##0200QN=1;ST=22;CN=20".utf8)
        let filler = [UInt8](repeating: UInt8(ascii: "x"), count: 300)
        guard case .ok = run.feed(liar + inner + filler + Self.good(2)) else {
            Issue.record("not ok")
            return
        }
        #expect(run.offered.first.map { $0.starts(with: Array("##0200".utf8)) } == true, "the bad frame kept as a reject")
        #expect(run.offered.contains(inner), "the frame inside the liar's announced length is read")
        #expect(run.offered.contains(Self.good(2)))
    }

    /// `##0000AAAA` again and again: the first is handed on (a reject), then counted, and the
    /// 16th in a row closes; a good frame in between resets the run.
    @Test func badFramesInARow() {
        var run = Run()
        let bad = Array("##0000AAAA".utf8)
        #expect({ if case .ok = run.feed(Array(repeating: bad, count: 15).flatMap { $0 }) { true } else { false } }())
        #expect(run.offered == [bad])
        #expect({ if case .ok = run.feed(Self.good(1)) { true } else { false } }())
        #expect(run.connection.badFrames == 0)
        let r = run.feed(Array(repeating: bad, count: 20).flatMap { $0 })
        #expect({ if case .hostile = r { true } else { false } }(), "\(r)")
        #expect(run.offered == [bad, Self.good(1), bad])
    }

    /// The bucket: frames past it stay in the input; the inbox refusing leaves them too.
    @Test func bucketAndRefusal() {
        var run = Run()
        run.connection.tokens = 2
        _ = run.feed((0..<5).flatMap { Self.good($0) })
        #expect(run.offered.count == 2)
        #expect(run.connection.input.count == 3 * Self.good(0).count)
        run.connection.tokens = 10
        run.refuse = true
        #expect({ if case .inboxFull = run.feed([]) { true } else { false } }())
        #expect(run.connection.input.count == 3 * Self.good(0).count, "nothing lost when refused")
        run.refuse = false
        _ = run.feed([])
        #expect(run.offered.count == 5 && run.connection.input.isEmpty)
    }
}
