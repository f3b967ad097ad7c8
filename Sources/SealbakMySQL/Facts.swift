import Foundation
import SealbakFormat
import SealbakIO

/// The metadata keys of a `mysql` component (Spec/COMPONENTS.md).
extension ComponentKeys {
    package static let myFlavour = "mysql.flavour"
    package static let myServerVersion = "mysql.server-version"
    package static let myDatabase = "mysql.database"
    package static let myCharset = "mysql.charset"
    package static let myCollation = "mysql.collation"
    package static let myTables = "mysql.tables"
    package static let myDumpTool = "mysql.dump-tool"
    /// The facts as JSON (`MySQLFacts`), split over `mysql.facts`, `mysql.facts.2`, … when over 1 MiB.
    package static let myFacts = "mysql.facts"
    /// On the dump entry: the name of the entry holding the row counts made from the dump stream.
    package static let myCountsEntry = "mysql.counts-entry"
    /// `dump` or `counts`: which of the component's two entries this is.
    package static let myRole = "mysql.role"
}

/// What sealbak records about a MySQL/MariaDB database before dumping it. Row counts are not here: they are
/// counted in the dump stream and stored in the component's counts entry (`MySQLCounts`), written after the dump.
package struct MySQLFacts: Codable, Sendable, Equatable {
    package struct Table: Codable, Sendable, Equatable {
        package var name: String
        package var engine: String
        /// False for MyISAM, Aria, MEMORY, CSV…: the dump's transaction does not make them consistent.
        package var transactional: Bool
        /// data + index length as the server estimates it.
        package var bytes: Int64
    }

    package var database: String
    /// `MariaDB` or `MySQL`.
    package var flavour: String
    package var serverVersion: String
    package var charset: String
    package var collation: String
    package var tables: [Table]
    package var views: [String]
    /// `trigger on table`.
    package var triggers: [String]
    /// `PROCEDURE p`, `FUNCTION f`.
    package var routines: [String]
    package var events: [String]
    package var dumpTool: String

    package var nonTransactional: [Table] { tables.filter { !$0.transactional } }
    package var totalBytes: Int64 { tables.reduce(0) { $0 + $1.bytes } }

    /// Reads the facts of the connection's database (cheap catalog queries).
    static func inspect(_ c: MySQLConnection, database: String) throws(SealbakError) -> MySQLFacts {
        let version = try c.value("SELECT VERSION()") ?? c.serverInfo
        let lit = quoteMySQLLiteral(database)
        guard
            let schema = try c.query(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE "
                    + "SCHEMA_NAME = \(lit)"
            ).first
        else {
            throw SealbakError(
                .unavailable,
                "\(c.parameters.place): database \(database) does not exist or the user cannot see it. Check the "
                    + "database name and the user's rights"
            )
        }
        let tables = try c.query(
            """
            SELECT t.TABLE_NAME, COALESCE(t.ENGINE, ''), COALESCE(e.TRANSACTIONS, 'NO'),
                   COALESCE(t.DATA_LENGTH, 0) + COALESCE(t.INDEX_LENGTH, 0)
            FROM information_schema.TABLES t LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE
            WHERE t.TABLE_SCHEMA = \(lit) AND t.TABLE_TYPE = 'BASE TABLE' ORDER BY t.TABLE_NAME
            """
        ).map {
            Table(
                name: $0[0] ?? "",
                engine: $0[1] ?? "",
                transactional: $0[2] == "YES",
                bytes: Int64($0[3] ?? "0") ?? 0
            )
        }
        let views = try c.query(
            "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = \(lit) ORDER BY 1"
        ).map { $0[0] ?? "" }
        let triggers = try c.query(
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = \(lit) "
                + "ORDER BY 1"
        ).map { "\($0[0] ?? "") on \($0[1] ?? "")" }
        let routines = try c.query(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = \(lit) ORDER "
                + "BY 2, 1"
        ).map { "\($0[0] ?? "") \($0[1] ?? "")" }
        let events = try c.query(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = \(lit) ORDER BY 1"
        ).map { $0[0] ?? "" }
        return MySQLFacts(
            database: database,
            flavour: version.contains("MariaDB") ? "MariaDB" : "MySQL",
            serverVersion: version,
            charset: schema[0] ?? "utf8mb4",
            collation: schema[1] ?? "",
            tables: tables,
            views: views,
            triggers: triggers,
            routines: routines,
            events: events,
            dumpTool: ""
        )
    }
}

/// Row counts made from the dump stream as it passed through (`DumpRowCounter`), stored as the component's
/// second entry (`mysql/NAME.counts.json`), after the dump itself.
package struct MySQLCounts: Codable, Sendable, Equatable {
    package struct Table: Codable, Sendable, Equatable {
        package var name: String
        package var rows: Int64
    }
    package var version = 1
    package var tables: [Table]
    /// The dump's first line (its header).
    package var header: String
    package var dumpBytes: UInt64

    package var totalRows: Int64 { tables.reduce(0) { $0 + $1.rows } }

    /// Every table of `facts` (0 rows when the dump held no INSERT for it), then tables only the dump had.
    package init(counter: DumpRowCounter, facts: MySQLFacts) {
        var out = facts.tables.map { Table(name: $0.name, rows: counter.rows[$0.name] ?? 0) }
        for t in counter.tableOrder where !facts.tables.contains(where: { $0.name == t }) {
            out.append(Table(name: t, rows: counter.rows[t] ?? 0))
        }
        tables = out
        header = Self.headerLine(counter.firstBytes) ?? ""
        dumpBytes = counter.byteCount
    }

    package func encoded() -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return Array((try? e.encode(self)) ?? Data())
    }

    package static func decode(_ bytes: [UInt8], what: String) throws(SealbakError) -> MySQLCounts {
        do { return try JSONDecoder().decode(MySQLCounts.self, from: Data(bytes)) } catch {
            throw SealbakError(
                .corrupt,
                "\(what): the row counts of the dump cannot be read (\(bytes.count) bytes); the archive was not "
                    + "written by this sealbak or is damaged"
            )
        }
    }

    /// The header line of a dump (`-- MariaDB dump …`, `-- MySQL dump …`) among its first two lines (MariaDB
    /// 10.11.8+ writes a sandbox-mode comment first), or nil.
    package static func headerLine(_ head: [UInt8]) -> String? {
        let lines = String(decoding: head.prefix(1024), as: UTF8.self).split(separator: "\n", maxSplits: 3).prefix(2)
        return lines.first { $0.hasPrefix("-- MariaDB dump") || $0.hasPrefix("-- MySQL dump") }.map(String.init)
    }
}

/// A MySQL/MariaDB component as recorded in an archive: the dump entry and its counts entry.
package struct MySQLComponent: Sendable {
    package var entryIndex: Int
    package var countsIndex: Int?
    package var name: String
    package var source: String
    package var skippedReason: String?
    package var facts: MySQLFacts?

    package static func entryName(_ component: String) -> String { "mysql/\(component).sql" }
    package static func countsName(_ component: String) -> String { "mysql/\(component).counts.json" }

    /// The MySQL components of a manifest, in entry order.
    package static func all(in manifest: Manifest, archive: String) throws(SealbakError) -> [MySQLComponent] {
        var out: [MySQLComponent] = []
        for (i, e) in manifest.entries.enumerated()
        where e.metadata[ComponentKeys.kind] == "mysql" && e.metadata[ComponentKeys.myRole] != "counts" {
            let name = e.metadata[ComponentKeys.name] ?? e.name
            var c = MySQLComponent(
                entryIndex: i,
                countsIndex: nil,
                name: name,
                source: e.metadata[ComponentKeys.source] ?? "",
                skippedReason: nil,
                facts: nil
            )
            if e.metadata[ComponentKeys.status] == "skipped" {
                c.skippedReason = e.metadata[ComponentKeys.reason] ?? "no reason recorded"
            } else {
                guard let json = readChunked(e.metadata, ComponentKeys.myFacts),
                    let facts = try? JSONDecoder().decode(MySQLFacts.self, from: Data(json.utf8)),
                    let countsName = e.metadata[ComponentKeys.myCountsEntry],
                    let ci = manifest.entries.firstIndex(where: { $0.name == countsName })
                else {
                    throw SealbakError(
                        .corrupt,
                        "\(archive): the MySQL component \(name) has no readable \(ComponentKeys.myFacts) record or "
                            + "counts entry; it was not written by sealbak or is from an incompatible version"
                    )
                }
                c.facts = facts
                c.countsIndex = ci
            }
            out.append(c)
        }
        return out
    }

    static func baseMetadata(name: String, source: String, status: String) -> Metadata {
        var m = Metadata()
        m[ComponentKeys.kind] = "mysql"
        m[ComponentKeys.name] = name
        m[ComponentKeys.status] = status
        m[ComponentKeys.source] = source
        return m
    }

    /// The two manifest entries of a dumped database: the dump, then its counts.
    package static func entries(name: String, source: String, facts: MySQLFacts, mtime: Int64) -> [ManifestEntry] {
        var m = baseMetadata(name: name, source: source, status: "ok")
        m[ComponentKeys.myRole] = "dump"
        m[ComponentKeys.myFlavour] = facts.flavour
        m[ComponentKeys.myServerVersion] = facts.serverVersion
        m[ComponentKeys.myDatabase] = facts.database
        m[ComponentKeys.myCharset] = facts.charset
        m[ComponentKeys.myCollation] = facts.collation
        m[ComponentKeys.myTables] = String(facts.tables.count)
        m[ComponentKeys.myDumpTool] = facts.dumpTool
        m[ComponentKeys.myCountsEntry] = countsName(name)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        writeChunked(&m, ComponentKeys.myFacts, String(decoding: (try? encoder.encode(facts)) ?? Data(), as: UTF8.self))
        var cm = Metadata()
        cm[ComponentKeys.kind] = "mysql"
        cm[ComponentKeys.name] = name
        cm[ComponentKeys.myRole] = "counts"
        return [
            ManifestEntry(kind: .stream, name: entryName(name), mode: 0o600, mtimeSeconds: mtime, metadata: m),
            ManifestEntry(kind: .stream, name: countsName(name), mode: 0o600, mtimeSeconds: mtime, metadata: cm),
        ]
    }

    /// The manifest entry of a component that could not be captured (allow-missing).
    package static func skippedEntry(name: String, source: String, reason: String, mtime: Int64) -> ManifestEntry {
        var m = baseMetadata(name: name, source: source, status: "skipped")
        m[ComponentKeys.reason] = reason
        return ManifestEntry(kind: .stream, name: entryName(name), mode: 0o600, mtimeSeconds: mtime, metadata: m)
    }
}

/// Splits a long value over KEY, KEY.2, … (each within the metadata value limit, cut at UTF-8 boundaries).
func writeChunked(_ m: inout Metadata, _ key: String, _ value: String) {
    let limit = Int(FormatV1.maxMetadataValueByteCount)
    let bytes = Array(value.utf8)
    var start = 0
    var part = 1
    repeat {
        var end = min(bytes.count, start + limit)
        while end < bytes.count && bytes[end] & 0xC0 == 0x80 { end -= 1 }
        m[part == 1 ? key : "\(key).\(part)"] = String(decoding: bytes[start..<end], as: UTF8.self)
        start = end
        part += 1
    } while start < bytes.count
}

func readChunked(_ m: Metadata, _ key: String) -> String? {
    guard var value = m[key] else { return nil }
    var part = 2
    while let more = m["\(key).\(part)"] {
        value += more
        part += 1
    }
    return value
}
