import Foundation
import GRDB

/// Container metadata in SQLite (`<root>/db.sqlite`, WAL). Each row holds the record as JSON plus the columns
/// that must be unique (id, name). SQLite's own journal makes each write atomic and durable.
final class Store: Sendable {
    private let db: DatabaseQueue
    private static let encoder: JSONEncoder = {
        let e = JSONEncoder(); e.dateEncodingStrategy = .iso8601WithFraction; return e
    }()
    private static let decoder: JSONDecoder = {
        let d = JSONDecoder(); d.dateDecodingStrategy = .iso8601WithFraction; return d
    }()

    init(path: String) throws(EngineError) {
        do {
            var config = Configuration()
            config.busyMode = .timeout(5)
            db = try DatabaseQueue(path: path, configuration: config)
            try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode=WAL") }
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.execute(sql: """
                    CREATE TABLE containers (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL UNIQUE, record BLOB NOT NULL)
                    """)
            }
            try migrator.migrate(db)
        } catch {
            throw EngineError(.system, "open the metadata database \(path): \(error)")
        }
    }

    func all() throws(EngineError) -> [ContainerRecord] {
        do {
            let rows = try db.read { db in try Row.fetchAll(db, sql: "SELECT record FROM containers") }
            return try rows.map { try Store.decoder.decode(ContainerRecord.self, from: $0["record"] as Data) }
        } catch { throw EngineError(.system, "read the metadata database: \(error)") }
    }

    /// Inserts a new container; a taken name is a conflict (the caller checks first; the UNIQUE index decides).
    func insert(_ r: ContainerRecord) throws(EngineError) {
        do {
            let data = try Store.encoder.encode(r)
            try db.write { db in
                try db.execute(sql: "INSERT INTO containers (id, name, record) VALUES (?, ?, ?)", arguments: [r.id, r.name, data])
            }
        } catch let e as DatabaseError where e.resultCode == .SQLITE_CONSTRAINT {
            throw EngineError(.conflict, "Conflict. The container name \"/\(r.name)\" is already in use.")
        } catch { throw EngineError(.system, "write the metadata database: \(error)") }
    }

    func update(_ r: ContainerRecord) throws(EngineError) {
        do {
            let data = try Store.encoder.encode(r)
            try db.write { db in
                try db.execute(sql: "UPDATE containers SET name = ?, record = ? WHERE id = ?", arguments: [r.name, data, r.id])
            }
        } catch let e as DatabaseError where e.resultCode == .SQLITE_CONSTRAINT {
            throw EngineError(.conflict, "Conflict. The container name \"/\(r.name)\" is already in use.")
        } catch { throw EngineError(.system, "write the metadata database: \(error)") }
    }

    func delete(_ id: String) throws(EngineError) {
        do { try db.write { db in try db.execute(sql: "DELETE FROM containers WHERE id = ?", arguments: [id]) } }
        catch { throw EngineError(.system, "write the metadata database: \(error)") }
    }

    func count() -> Int {
        (try? db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM containers") }) ?? 0
    }
}

extension JSONEncoder.DateEncodingStrategy {
    static let iso8601WithFraction = JSONEncoder.DateEncodingStrategy.custom { date, enc in
        var c = enc.singleValueContainer()
        try c.encode(Timestamp.rfc3339Nano(date))
    }
}

extension JSONDecoder.DateDecodingStrategy {
    static let iso8601WithFraction = JSONDecoder.DateDecodingStrategy.custom { dec in
        let s = try dec.singleValueContainer().decode(String.self)
        guard let d = Timestamp.parse(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: dec.codingPath, debugDescription: "bad time \(s)"))
        }
        return d
    }
}

/// RFC 3339 with nanoseconds, UTC, as Docker writes times ("2026-12-01T23:59:59.123456789Z").
public enum Timestamp {
    public static let zero = "0001-01-01T00:00:00Z"

    public static func rfc3339Nano(_ d: Date?) -> String {
        guard let d else { return zero }
        let t = d.timeIntervalSince1970
        var secs = time_t(t.rounded(.down))
        var nanos = Int(((t - Double(secs)) * 1e9).rounded())
        if nanos >= 1_000_000_000 { secs += 1; nanos -= 1_000_000_000 }
        return format(secs: Int(secs), nanos: nanos)
    }

    public static func format(secs: Int, nanos: Int) -> String {
        var s = time_t(secs)
        var tm = tm()
        gmtime_r(&s, &tm)
        var frac = String(nanos)
        frac = String(repeating: "0", count: 9 - frac.count) + frac
        while frac.hasSuffix("0") { frac.removeLast() }
        func p(_ v: Int32, _ w: Int) -> String { let x = String(v); return String(repeating: "0", count: max(0, w - x.count)) + x }
        return "\(p(tm.tm_year + 1900, 4))-\(p(tm.tm_mon + 1, 2))-\(p(tm.tm_mday, 2))T\(p(tm.tm_hour, 2)):\(p(tm.tm_min, 2)):\(p(tm.tm_sec, 2))"
            + (frac.isEmpty ? "" : "." + frac) + "Z"
    }

    /// Parses RFC 3339 (Z or ±hh:mm offsets, optional fraction) and Unix seconds ("1700000000.5").
    public static func parse(_ s: String) -> Date? {
        if let v = Double(s) { return Date(timeIntervalSince1970: v) }
        let b = Array(s.utf8)
        guard b.count >= 19 else { return nil }
        func num(_ r: Range<Int>) -> Int? { Int(String(decoding: b[r], as: UTF8.self)) }
        guard let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10), let h = num(11..<13), let mi = num(14..<16),
              let se = num(17..<19) else { return nil }
        var i = 19
        var frac = 0.0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            var j = i + 1
            while j < b.count, b[j] >= 48, b[j] <= 57 { j += 1 }
            frac = Double("0." + String(decoding: b[(i + 1)..<j], as: UTF8.self)) ?? 0
            i = j
        }
        var offset = 0
        if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard b.count >= i + 6, let oh = num((i + 1)..<(i + 3)), let om = num((i + 4)..<(i + 6)) else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
        }
        var tm = tm()
        tm.tm_year = Int32(y - 1900); tm.tm_mon = Int32(mo - 1); tm.tm_mday = Int32(d)
        tm.tm_hour = Int32(h); tm.tm_min = Int32(mi); tm.tm_sec = Int32(se)
        let secs = timegm(&tm)
        return Date(timeIntervalSince1970: Double(secs - offset) + frac)
    }
}
