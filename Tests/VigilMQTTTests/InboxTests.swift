import Dispatch
import Foundation
import Synchronization
import Testing
import VigilCore
import VigilTestSupport

@testable import VigilMQTT

private let t0 = Timestamp(seconds: 1_763_892_000)

extension Inbox {
    func push(_ topic: String, _ payload: String) {
        var t = topic
        var p = payload
        t.withUTF8 { tb in p.withUTF8 { pb in push(topic: UnsafeRawBufferPointer(tb), payload: UnsafeRawBufferPointer(pb), receivedAt: t0) } }
    }
}

extension MessageBatch {
    var messages: [(String, String)] {
        var out: [(String, String)] = []
        forEach { t, p, _ in out.append((String(decoding: t, as: UTF8.self), String(decoding: p, as: UTF8.self))) }
        return out
    }
}

/// A consumer on a thread of its own: one `take` with a deadline of 10 s; `count` is what
/// it got (-1 until it returns).
final class TakenCount: Sendable {
    private let value = Atomic<Int>(-1)
    var count: Int { value.load(ordering: .acquiring) }

    init(_ inbox: Inbox, wakeAt: Int) {
        Thread { [self] in
            var batch = MessageBatch()
            _ = inbox.take(into: &batch, deadline: .after(10), wakeAt: wakeAt)
            self.value.store(batch.count, ordering: .releasing)
        }.start()
    }
}

@Suite("Inbox")
struct InboxTests {
    @Test func batchKeepsTopicsAndPayloadsApart() {
        var b = MessageBatch()
        b.append(topic: "a/b", payload: Array("1".utf8), receivedAt: t0)
        b.append(topic: "", payload: [], receivedAt: t0)
        b.append(topic: "c", payload: Array("{\"v\":2}".utf8), receivedAt: t0.adding(.seconds(1)))
        #expect(b.messages.map(\.0) == ["a/b", "", "c"])
        #expect(b.messages.map(\.1) == ["1", "", "{\"v\":2}"])
        b.clear()
        #expect(b.isEmpty && b.bytes.isEmpty)
    }

    @Test func takeReturnsWhatWasPushedInOrder() {
        let inbox = Inbox()
        for i in 0..<5 { inbox.push("t/\(i)", "\(i)") }
        var batch = MessageBatch()
        #expect(inbox.take(into: &batch, deadline: .after(0)))
        #expect(batch.messages.map(\.1) == ["0", "1", "2", "3", "4"])
        #expect(inbox.depth == 0)
        // Nothing waits: the deadline ends the wait.
        let start = MonotonicDeadline.now()
        #expect(!inbox.take(into: &batch, deadline: .after(0.05)))
        #expect(MonotonicDeadline.now().nanos - start.nanos >= 45_000_000)
        #expect(batch.isEmpty)
    }

    /// A full inbox holds the producer (back-pressure) until the consumer takes a batch;
    /// nothing is dropped.
    @Test func fullInboxBlocksTheProducerAndDropsNothing() {
        let inbox = Inbox(maxMessages: 4)
        let pushed = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        Thread {
            for i in 0..<10 {
                inbox.push("t", "\(i)")
                pushed.add(1, ordering: .relaxed)
            }
            done.signal()
        }.start()
        #expect(eventually { inbox.producerIsWaiting })
        #expect(pushed.load(ordering: .relaxed) == 4)
        #expect(inbox.depth == 4)
        var got: [String] = []
        var batch = MessageBatch()
        while got.count < 10 {
            if inbox.take(into: &batch, deadline: .after(1)) { got += batch.messages.map(\.1) }
        }
        #expect(done.wait(timeout: .now() + 5) == .success)
        #expect(got == (0..<10).map(String.init))
        let bp = inbox.backPressure
        #expect(bp.count >= 1 && bp.pushed == 10 && bp.seconds > 0)
    }

    /// While held (ingest in an fsync), the network thread waits at its next message,
    /// however much room there is, and goes on at the release; nothing is dropped.
    @Test func aHoldStopsThePushesUntilReleased() {
        let inbox = Inbox(maxMessages: 100)
        inbox.hold()
        let pushed = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        Thread {
            for i in 0..<3 {
                inbox.push("t", "\(i)")
                pushed.add(1, ordering: .relaxed)
            }
            done.signal()
        }.start()
        #expect(eventually { inbox.producerIsWaiting })
        #expect(pushed.load(ordering: .relaxed) == 0 && inbox.depth == 0)
        inbox.release()
        #expect(done.wait(timeout: .now() + 5) == .success)
        var batch = MessageBatch()
        #expect(inbox.take(into: &batch, deadline: .after(1)))
        #expect(batch.messages.map(\.1) == ["0", "1", "2"])
        #expect(inbox.backPressure.count == 1)
    }

    /// The window in time: once the oldest message not committed is older than it, the
    /// producer waits (whether that message was taken or still waits in the inbox) until
    /// the consumer commits; a commit in the middle of a batch keeps its rest counting.
    @Test func theWindowHoldsThePushesUntilACommit() {
        let clock = Atomic<UInt64>(1_000_000_000)
        let ms: UInt64 = 1_000_000
        let inbox = Inbox(maxMessages: 100, window: 0.015, now: { clock.load(ordering: .relaxed) })
        let pushes = Atomic<Int>(0)
        /// Pushes on a thread of its own: true when the push returned, false once it waits.
        func pushed(_ payload: String) -> Bool {
            let done = DispatchSemaphore(value: 0)
            Thread {
                inbox.push("t", payload)
                pushes.add(1, ordering: .relaxed)
                done.signal()
            }.start()
            var returned = false
            _ = eventually(timeout: 5) {
                returned = done.wait(timeout: .now()) == .success
                return returned || inbox.producerIsWaiting
            }
            return returned
        }
        inbox.push("t", "a")
        clock.add(15 * ms, ordering: .relaxed)
        #expect(pushed("b"), "15 ms old is within the window")
        var batch = MessageBatch()
        #expect(inbox.take(into: &batch, deadline: .after(0)))
        clock.add(1 * ms, ordering: .relaxed)
        // "a", taken and not committed, is 16 ms old: the producer waits.
        #expect(!pushed("c"))
        #expect(inbox.producerIsWaiting && inbox.isHeldByWindow && inbox.depth == 0)
        #expect(inbox.windowHolds == 1)
        inbox.committed()
        #expect(eventually { pushes.load(ordering: .relaxed) == 2 && inbox.depth == 1 })
        #expect(!inbox.isHeldByWindow)

        // Not taken at all (the consumer is late): the inbox's own oldest counts.
        clock.add(16 * ms, ordering: .relaxed)
        #expect(!pushed("d"))
        #expect(inbox.take(into: &batch, deadline: .after(0)))
        #expect(batch.messages.map(\.1) == ["c"])
        #expect(inbox.isHeldByWindow, "taken is not committed")
        // A commit in the middle of the batch: the rest of it still counts from its first.
        inbox.committed(keepingLast: true)
        #expect(inbox.isHeldByWindow)
        inbox.committed()
        #expect(eventually { pushes.load(ordering: .relaxed) == 3 })
        #expect(inbox.windowHolds == 2)

        // Without a window, age holds nothing.
        inbox.setWindow(nil)
        clock.add(1_000 * ms, ordering: .relaxed)
        #expect(pushed("e"))
        #expect(inbox.take(into: &batch, deadline: .after(0)))
        #expect(batch.messages.map(\.1) == ["d", "e"])
    }

    /// The window in count: at 10,000 messages a second, a 15 ms window holds 150; a burst
    /// (all at one instant, as after a stall) waits at the 151st until a commit.
    @Test func theWindowCountsABurstAtTheSteadyRate() {
        let clock = Atomic<UInt64>(1_000_000_000)
        let inbox = Inbox(maxMessages: 10_000, window: 0.015, now: { clock.load(ordering: .relaxed) })
        var batch = MessageBatch()
        for i in 0..<10_000 {
            inbox.push("t", "\(i)")
            if i % 32 == 31 {
                #expect(inbox.take(into: &batch, deadline: .after(0)))
                inbox.committed()
            }
            clock.add(100_000, ordering: .relaxed)
        }
        #expect(inbox.take(into: &batch, deadline: .after(0)))
        inbox.committed()
        #expect(inbox.windowHolds == 0)
        clock.store(2_000_000_000 + 1_000, ordering: .relaxed)
        for i in 0..<150 { inbox.push("t", "b\(i)") }
        #expect(!inbox.producerIsWaiting)
        // A consumer asleep until its commit is due (10 s here) is woken by the hold.
        let taken = TakenCount(inbox, wakeAt: 1000)
        let done = DispatchSemaphore(value: 0)
        Thread {
            inbox.push("t", "b150")
            done.signal()
        }.start()
        #expect(eventually(timeout: 5) { taken.count == 150 }, "the consumer slept on")
        #expect(inbox.producerIsWaiting && inbox.isHeldByWindow, "taken is not committed")
        inbox.committed()
        #expect(done.wait(timeout: .now() + 5) == .success)
        #expect(inbox.depth == 1)
    }

    /// The steady rate is the median of ten buckets: a burst in one bucket does not move
    /// it, a new rate shows once it fills half of them, a silence empties it.
    @Test func theSteadyRateIgnoresABurst() {
        var rate = ArrivalRate()
        let bucket = ArrivalRate.bucketNanos
        let perSecond = Int(1_000_000_000 / bucket)
        var t: UInt64 = 5_000_000_000
        func run(_ perBucket: Int, buckets: Int) {
            for _ in 0..<buckets {
                for i in 0..<perBucket { rate.count(at: t + UInt64(i) * (bucket / UInt64(perBucket))) }
                t += bucket
            }
            rate.count(at: t)  // closes the last bucket
        }
        run(100, buckets: 10)
        #expect(rate.perSecond == 100 * perSecond)
        #expect(rate.messages(in: 15_000_000) == Int((Double(100 * perSecond) * 0.015).rounded(.up)))
        run(1000, buckets: 1)
        #expect(rate.perSecond == 100 * perSecond, "one bucket of a burst")
        run(400, buckets: 6)
        #expect(rate.perSecond == 400 * perSecond)
        t += 2_000_000_000
        rate.count(at: t)
        #expect(rate.perSecond == 0)
    }

    /// A message larger than the byte bound still goes into an empty inbox.
    @Test func oversizeMessageIntoAnEmptyInbox() {
        let inbox = Inbox(maxMessages: 10, maxBytes: 8)
        inbox.push("topic", String(repeating: "x", count: 100))
        #expect(inbox.depth == 1)
        #expect(!inbox.producerIsWaiting)
    }

    /// A consumer that asks for many messages sleeps until they come or its deadline.
    @Test func wakeAtHoldsTheConsumerUntilEnoughArrive() {
        let inbox = Inbox()
        let taken = TakenCount(inbox, wakeAt: 3)
        inbox.push("t", "1")
        inbox.push("t", "2")
        Thread.sleep(forTimeInterval: 0.05)
        #expect(taken.count == -1, "woke before three messages")
        inbox.push("t", "3")
        #expect(eventually { taken.count == 3 })
    }

    /// After close the producer no longer blocks, and the consumer gets what is left, then false.
    @Test func closeDrainsThenEnds() {
        let inbox = Inbox(maxMessages: 2)
        inbox.push("t", "1")
        inbox.push("t", "2")
        inbox.close()
        inbox.push("t", "3")
        var batch = MessageBatch()
        #expect(inbox.take(into: &batch, deadline: nil))
        #expect(batch.messages.map(\.1) == ["1", "2", "3"])
        #expect(!inbox.take(into: &batch, deadline: nil))
        #expect(inbox.isClosed)
    }
}

@Suite("ConditionLock")
struct ConditionLockTests {
    @Test func waitsForTheConditionOrTheDeadline() {
        let lock = ConditionLock(0)
        let start = MonotonicDeadline.now()
        let value = lock.wait(until: .after(0.05), while: { $0 < 1 }, then: { $0 })
        #expect(value == 0)
        #expect(MonotonicDeadline.now().nanos - start.nanos >= 45_000_000)
        Thread {
            Thread.sleep(forTimeInterval: 0.02)
            lock.withLockBroadcasting { $0 = 5 }
        }.start()
        #expect(lock.wait(until: .after(5), while: { $0 < 5 }, then: { $0 }) == 5)
        #expect(lock.withLock { $0 } == 5)
    }
}

extension Inbox {
    func offer(_ topic: String, _ payload: String) -> Bool {
        var t = topic
        var p = payload
        return t.withUTF8 { tb in
            p.withUTF8 { pb in offer(topic: UnsafeRawBufferPointer(tb), payload: UnsafeRawBufferPointer(pb), receivedAt: t0) }
        }
    }
}

/// The second producer (the HJ 212 listener) offers: it never blocks, holds at most a quarter
/// of the inbox, and leaves the MQTT thread's bookkeeping alone.
@Suite("Inbox with two producers")
struct InboxTwoProducerTests {
    @Test func offersHoldAQuarterAndMQTTKeepsTheRest() {
        let inbox = Inbox(maxMessages: 8)
        #expect(inbox.offer("\0hj212/1", "a"))
        #expect(inbox.offer("\0hj212/1", "b"))
        #expect(!inbox.offer("\0hj212/1", "c"), "a quarter of 8 is 2")
        for i in 0..<6 { inbox.push("t/\(i)", "\(i)") }  // MQTT's six places: none blocks
        #expect(inbox.depth == 8)
        #expect(inbox.offers.waiting == 2 && inbox.offers.refused == 1)
        var batch = MessageBatch()
        #expect(inbox.take(into: &batch, deadline: .after(0)))
        #expect(batch.messages.map(\.1) == ["a", "b", "0", "1", "2", "3", "4", "5"])
        #expect(inbox.offers.waiting == 0)
        #expect(inbox.offer("\0hj212/1", "c"), "room again after the take")
    }

    @Test func aByteShareToo() {
        let inbox = Inbox(maxMessages: 100, maxBytes: 400)
        let big = String(repeating: "x", count: 60)
        #expect(inbox.offer("h", big))
        #expect(!inbox.offer("h", big), "two of 61 bytes are over a quarter of 400")
        inbox.push("t", String(repeating: "y", count: 200))
        #expect(inbox.depth == 2)
    }

    /// MQTT held by back-pressure while the listener's offers are refused: the wait is counted
    /// once, for as long as it lasted (not the uptime), and only MQTT counts as waiting.
    @Test func backPressureIsMQTTsOwn() {
        let inbox = Inbox(maxMessages: 2)
        inbox.push("t/0", "0")
        inbox.push("t/1", "1")
        let done = Atomic<Bool>(false)
        let pusher = Thread {
            inbox.push("t/2", "2")
            done.store(true, ordering: .releasing)
        }
        pusher.start()
        #expect(eventually(timeout: 5) { inbox.producerIsWaiting })
        for _ in 0..<10 { #expect(!inbox.offer("\0hj212/1", "x")) }
        #expect(inbox.producerIsWaiting)
        var batch = MessageBatch()
        #expect(inbox.take(into: &batch, deadline: .after(0)))
        #expect(eventually(timeout: 5) { done.load(ordering: .acquiring) })
        #expect(!inbox.producerIsWaiting)
        let bp = inbox.backPressure
        #expect(bp.count == 1)
        #expect(bp.seconds > 0 && bp.seconds < 5, "\(bp.seconds) s")
    }
}
