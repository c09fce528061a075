import VigilCore

/// Timers by level, stored as `yellow=1763892000000000,red=...`.
enum LevelTimes {
    static func encode(_ times: [AlertLevel: Timestamp]) -> String {
        times.sorted { $0.key < $1.key }.map { "\($0.key.name)=\($0.value.micros)" }.joined(separator: ",")
    }

    static func decode(_ text: String) -> [AlertLevel: Timestamp] {
        var out: [AlertLevel: Timestamp] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=")
            if kv.count == 2, let l = AlertLevel(name: String(kv[0])), let t = Int64(kv[1]) { out[l] = Timestamp(micros: t) }
        }
        return out
    }
}

/// An alert transition as the buffer keeps it.
public struct StoredAlertEvent: Sendable, Equatable {
    public var id: Int64
    public var transition: AlertTransition
}

/// The `alert_states` table (one row per raised or pending (rule, series): what a restart
/// restores) and `alert_events` (the history of transitions).
public final class AlertStore {
    private let cold: WriteConnection
    private var db: SQLiteDatabase { cold.db }
    private let deleteState: SQLiteStatement
    private let saveState: SQLiteStatement
    private let insertEvent: SQLiteStatement
    private let lastEvent: SQLiteStatement

    init(_ cold: WriteConnection) throws(SQLiteError) {
        self.cold = cold
        let db = cold.db
        deleteState = try db.prepare("DELETE FROM alert_states WHERE rule = ? AND series = ?")
        saveState = try db.prepare(
            "INSERT OR REPLACE INTO alert_states(rule, series, level, since, pending, absent, last_value, threshold, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        insertEvent = try db.prepare(
            "INSERT INTO alert_events(at, rule, series, state, level, previous_level, value, threshold, since, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        lastEvent = try db.prepare(
            "SELECT at, series, state, level, previous_level, value, threshold, since, message FROM alert_events WHERE rule = ? ORDER BY id DESC LIMIT 1"
        )
    }

    /// Stores one (rule, series) state; an idle one is deleted.
    public func save(_ r: AlertStateRecord, now: Timestamp, _ tx: Transaction) throws(SQLiteError) {
        try cold.begin()
        if r.isIdle {
            deleteState.bind(1, r.rule)
            deleteState.bind(2, r.series.path)
            try deleteState.run()
            return
        }
        let stmt = saveState
        stmt.bind(1, r.rule)
        stmt.bind(2, r.series.path)
        stmt.bind(3, r.level?.name)
        if let s = r.since { stmt.bind(4, s.micros) } else { stmt.bindNull(4) }
        stmt.bind(5, LevelTimes.encode(r.pending))
        stmt.bind(6, LevelTimes.encode(r.absent))
        if let v = r.lastValue { stmt.bind(7, v) } else { stmt.bindNull(7) }
        if let t = r.threshold { stmt.bind(8, t) } else { stmt.bindNull(8) }
        stmt.bind(9, now.micros)
        try stmt.run()
    }

    /// Records a transition in the alert history.
    @discardableResult
    public func record(_ t: AlertTransition, _ tx: Transaction) throws(SQLiteError) -> Int64 {
        try cold.begin()
        let stmt = insertEvent
        stmt.bind(1, t.at.micros)
        stmt.bind(2, t.rule)
        stmt.bind(3, t.series.path)
        stmt.bind(4, t.state.rawValue)
        stmt.bind(5, t.level.name)
        stmt.bind(6, t.previousLevel?.name)
        if let v = t.value { stmt.bind(7, v) } else { stmt.bindNull(7) }
        if let th = t.threshold { stmt.bind(8, th) } else { stmt.bindNull(8) }
        stmt.bind(9, t.since.micros)
        stmt.bind(10, t.message)
        try stmt.run()
        return db.lastInsertRowID
    }

    /// The stored states, to restore the rule engine at start.
    public func loadStates() throws(SQLiteError) -> [AlertStateRecord] {
        try Self.states(db)
    }

    /// The last transition recorded for a rule.
    public func lastTransition(rule: String) throws(SQLiteError) -> AlertTransition? {
        let stmt = lastEvent
        stmt.bind(1, rule)
        defer { stmt.reset() }
        guard try stmt.step(), let series = SeriesKey(path: stmt.text(1) ?? ""),
            let state = AlertTransition.State(rawValue: stmt.text(2) ?? ""), let level = AlertLevel(name: stmt.text(3) ?? "")
        else { return nil }
        return AlertTransition(
            rule: rule, series: series, state: state, level: level, previousLevel: stmt.text(4).flatMap { AlertLevel(name: $0) },
            value: stmt.isNull(5) ? nil : stmt.double(5), threshold: stmt.isNull(6) ? nil : stmt.double(6),
            at: Timestamp(micros: stmt.int(0)), since: Timestamp(micros: stmt.int(7)), message: stmt.text(8) ?? "")
    }

    static func states(_ db: SQLiteDatabase) throws(SQLiteError) -> [AlertStateRecord] {
        let stmt = try db.prepare(
            "SELECT rule, series, level, since, pending, absent, last_value, threshold FROM alert_states ORDER BY rule, series")
        var out: [AlertStateRecord] = []
        while try stmt.step() {
            guard let series = SeriesKey(path: stmt.text(1) ?? "") else { continue }
            out.append(
                AlertStateRecord(
                    rule: stmt.text(0) ?? "", series: series, level: stmt.text(2).flatMap { AlertLevel(name: $0) },
                    since: stmt.isNull(3) ? nil : Timestamp(micros: stmt.int(3)),
                    pending: LevelTimes.decode(stmt.text(4) ?? ""), absent: LevelTimes.decode(stmt.text(5) ?? ""),
                    lastValue: stmt.isNull(6) ? nil : stmt.double(6), threshold: stmt.isNull(7) ? nil : stmt.double(7)))
        }
        return out
    }
}

extension BufferReader {
    /// Stored (rule, series) states: raised alerts and pending timers.
    public func alertStates() throws(SQLiteError) -> [AlertStateRecord] {
        try AlertStore.states(db)
    }

    /// The alert history from `since`, oldest first (or the newest `limit`).
    public func alertEvents(since: Timestamp? = nil, limit: Int = 1000) throws(SQLiteError) -> [StoredAlertEvent] {
        let stmt = try db.prepare(
            "SELECT id, at, rule, series, state, level, previous_level, value, threshold, since, message FROM (SELECT * FROM alert_events WHERE at >= ? ORDER BY id DESC LIMIT ?) ORDER BY id"
        )
        stmt.bind(1, since?.micros ?? Int64.min)
        stmt.bind(2, Int64(limit))
        var out: [StoredAlertEvent] = []
        while try stmt.step() {
            if let e = Self.event(stmt) { out.append(e) }
        }
        return out
    }

    /// The latest event of each (rule, series) asked for: one index lookup each
    /// (`alert_events_rule_series`), however many events the history holds.
    public func latestEvents(of pairs: [(rule: String, series: String)]) throws(SQLiteError) -> [StoredAlertEvent] {
        let stmt = try db.prepare(
            "SELECT id, at, rule, series, state, level, previous_level, value, threshold, since, message FROM alert_events WHERE rule = ? AND series = ? ORDER BY id DESC LIMIT 1"
        )
        var out: [StoredAlertEvent] = []
        for (rule, series) in pairs {
            stmt.bind(1, rule)
            stmt.bind(2, series)
            if try stmt.step(), let e = Self.event(stmt) { out.append(e) }
            stmt.reset()
        }
        return out
    }

    /// A row of `SELECT id, at, rule, series, state, level, previous_level, value, threshold, since, message`.
    static func event(_ stmt: SQLiteStatement) -> StoredAlertEvent? {
        guard let series = SeriesKey(path: stmt.text(3) ?? ""),
            let state = AlertTransition.State(rawValue: stmt.text(4) ?? ""),
            let level = AlertLevel(name: stmt.text(5) ?? "")
        else { return nil }
        return StoredAlertEvent(
            id: stmt.int(0),
            transition: AlertTransition(
                rule: stmt.text(2) ?? "", series: series, state: state, level: level,
                previousLevel: stmt.text(6).flatMap { AlertLevel(name: $0) },
                value: stmt.isNull(7) ? nil : stmt.double(7), threshold: stmt.isNull(8) ? nil : stmt.double(8),
                at: Timestamp(micros: stmt.int(1)), since: Timestamp(micros: stmt.int(9)),
                message: stmt.text(10) ?? ""))
    }
}
