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
        let taken = Atomic<Int>(-1)
        Thread {
            var batch = MessageBatch()
            _ = inbox.take(into: &batch, deadline: .after(10), wakeAt: 3)
            taken.store(batch.count, ordering: .releasing)
        }.start()
        inbox.push("t", "1")
        inbox.push("t", "2")
        Thread.sleep(forTimeInterval: 0.05)
        #expect(taken.load(ordering: .acquiring) == -1, "woke before three messages")
        inbox.push("t", "3")
        #expect(eventually { taken.load(ordering: .acquiring) == 3 })
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
