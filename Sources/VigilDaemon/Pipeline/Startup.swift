import Logging
import VigilCore
import VigilStorage

extension IngestPipeline {
    /// At start: the outbox's seq and watermark, the rule engine from the stored states,
    /// and one pass over the buffer that rebuilds the rule windows and the open aggregate
    /// windows, before the first message is taken.
    func start() {
        reportHotTier()
        restore(previous: [], reason: "")
    }

    /// What the buffer found in the runtime directory when it opened.
    private func reportHotTier() {
        let found = buffer.hotStart
        stats.hotStart = found
        stats.hotInUse = buffer.hotInUse
        let dir = ["runtime_dir": Logger.MetadataValue.string(buffer.options.runtimeDirectory ?? "")]
        switch found {
        case .moved(let n):
            logger.notice("moved into the buffer the readings a crash left in the hot tier", metadata: dir.merging(["readings": "\(n)"]) { $1 })
        case .lost(let last):
            logger.error(
                "the hot tier is gone though vigil did not stop cleanly (a reboot or a power cut?): the readings it held since the last flush, at most buffer.flush_interval, are lost",
                metadata: dir.merging(["last_flushed": "\(last?.rfc3339 ?? "never")", "flush_interval": "\(buffer.options.flushInterval)"]) { $1 })
        case .foreign(let n):
            logger.warning(
                "the runtime directory held the hot tier of another buffer (was state_dir replaced?): discarded",
                metadata: dir.merging(["readings": "\(n)"]) { $1 })
        case .empty, .unused:
            break
        }
    }

    /// Applies a reload between batches: new rules keep the state of the alerts whose rule
    /// still exists; alerts of removed rules are resolved.
    func apply(_ reload: Reload) {
        commit()
        let previous = rules.reload(reload.rules)
        decode.reload(subscriptions: reload.subscriptions, limits: reload.limits, hj212: reload.hj212)
        hj212Answers?.use(reload.hj212)
        store.policy = reload.commit
        inbox.setWindow(reload.commit.window)
        buffer.setLimits(retention: reload.retention, maxSize: reload.maxSize)
        restore(previous: previous, reason: "its rule was removed or changed its match in a reload")
        tick()
        logger.notice("reloaded", metadata: ["rules": "\(reload.rules.count)"])
    }

    /// Brings the rule engine up: stored states (or, on reload, the running engine's),
    /// known series for the stale rules, and the windows rebuilt from the buffer. At start
    /// (`reason` empty) also the outbox: seq, the aggregation watermark, the open windows.
    private func restore(previous: [AlertStateRecord], reason: String) {
        let now = clock.now()
        do {
            if reason.isEmpty, upstream != nil {
                try upstream!.outbox.start(alerts: buffer.alerts)
                upstream!.windows.start(watermark: upstream!.outbox.watermark.map { Timestamp(micros: $0) })
            }
            let stored = previous.isEmpty && reason.isEmpty ? try buffer.alerts.loadStates() : previous
            let ahead = try rules.restore(
                stored, knownSeries: buffer.readings.knownSeries, now: now,
                orphanReason: reason.isEmpty ? "its rule is gone" : reason, try buffer.transaction())
            if ahead > 0 {
                logger.warning(
                    "the stored rule timers and last-seen times lie ahead of the clock (it went back since they were stored): started from now",
                    metadata: ["count": "\(ahead)"])
            }
            // One pass over the buffer rebuilds the rule windows and, at start, the open
            // aggregate windows (the readings from the watermark on).
            let window = rules.engine.longestWindow
            let rulesFrom = window.micros > 0 ? now.subtracting(window) : nil
            let aggregatesFrom = reason.isEmpty ? upstream?.windows.replayFrom : nil
            var replayed = 0
            if let from = [rulesFrom, aggregatesFrom].compactMap({ $0 }).min() {
                let engine = rules.engine
                try buffer.readings.forEach(since: from) { r, id in
                    if let rf = rulesFrom, r.timestamp >= rf { engine.replay(r) }
                    if let af = aggregatesFrom, r.timestamp >= af { _ = upstream?.windows.add(r, seriesID: id) }
                    replayed += 1
                }
            }
            stats.activeAlerts = rules.activeByLevel
            try recordTransitions()
            try rules.saveStates(now: now, buffer)
            try buffer.commit()
            logger.info(
                "rules loaded",
                metadata: [
                    "rules": "\(rules.engine.rules.count)", "active_alerts": "\(stats.activeAlerts.values.reduce(0, +))",
                    "replayed_readings": "\(replayed)", "window": "\(window)",
                ])
        } catch {
            logger.error("restoring the rule state failed: \(error)")
            buffer.rollback()
        }
    }
}
