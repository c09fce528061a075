import Foundation

/// The crash window the README documents: readings acknowledged to the broker but not yet
/// committed, at most those of one commit interval and 10 ms at the steady rate (the inbox
/// holds the MQTT thread beyond it; see `Inbox`). For a publisher at `rate`: the daemon's
/// own estimate of the rate (a median of 20 ms buckets) may read up to 5 % higher, and the
/// message whose hand-off waits at the bound was acknowledged too: one more.
public enum UncommittedWindow {
    public static func readings(rate: Double, commitInterval: Double) -> Int {
        Int((rate * 1.05 * (commitInterval + 0.010)).rounded(.up)) + 1
    }
}
