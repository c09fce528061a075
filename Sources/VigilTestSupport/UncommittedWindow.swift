import Foundation

/// The crash window the README documents: readings acknowledged to the broker but not yet
/// committed. In steady state that is one commit interval of readings; the test allows 10 ms
/// of scheduling slack on top (the ingest thread may be descheduled on a loaded machine).
public enum UncommittedWindow {
    public static func readings(rate: Double, commitInterval: Double) -> Int {
        Int((rate * (commitInterval + 0.010)).rounded(.up))
    }
}
