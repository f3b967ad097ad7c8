import CSQLite
import Foundation
import SealbakFormat
import SealbakIO
import SealbakPostgres

/// The metadata keys of an SQLite component (Spec/COMPONENTS.md "SQLite"), defined once.
package enum SQLiteKeys {
    /// Number of tables counted (ordinary tables of `sqlite_schema`, `sqlite_%` left out).
    package static let tables = "sqlite.tables"
    /// Sum of their row counts.
    package static let rows = "sqlite.rows"
    package static let userVersion = "sqlite.user-version"
    package static let applicationID = "sqlite.application-id"
    package static let pageSize = "sqlite.page-size"
    /// The source's journal mode when it was packed (`wal`, `delete`, …).
    package static let journalMode = "sqlite.journal-mode"
    /// The SQLite library that made the copy (`sqlite3_libversion()`).
    package static let version = "sqlite.version"
    /// Size of the database file in the entry.
    package static let bytes = "sqlite.bytes"
    /// The complete facts as JSON (the source of truth), split like `postgres.facts` when over 1 MiB.
    package static let facts = "sqlite.facts"
}

/// What a capture records about an SQLite database; a restore proves the staged copy against it.
package struct SQLiteFacts: Codable, Sendable, Equatable {
    package struct Table: Codable, Sendable, Equatable {
        package var name: String
        /// `count(*)`; nil for a virtual table (its module may be missing; its shadow tables are counted).
        package var rows: Int64?
    }

    package var tables: [Table] = []
    package var userVersion: Int64 = 0
    package var applicationID: Int64 = 0
    package var pageSize: Int64 = 0
    package var pageCount: Int64 = 0
    package var journalMode = ""
    package var sqliteVersion = ""
    package var bytes: UInt64 = 0

    package var totalRows: Int64 { tables.reduce(0) { $0 + ($1.rows ?? 0) } }
}

/// One open SQLite database: the only owner of its handle (closed in `deinit`).
final class SQLiteDatabase {
    private let handle: OpaquePointer
    let what: String

    /// Opens `path` (a plain path, or a `file:` URI when `uri` is set) for `what` (named in errors).
    init(_ path: String, flags: Int32, uri: Bool = false, what: String) throws(SealbakError) {
        var h: OpaquePointer?
        let rc = sqlite3_open_v2(path, &h, flags | (uri ? SQLITE_OPEN_URI : 0), nil)
        guard rc == SQLITE_OK, let h else {
            let message = h.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(h)
            throw SQLiteDatabase.error(rc, "cannot open \(what): \(message)")
        }
        handle = h
        self.what = what
        sqlite3_extended_result_codes(h, 1)
    }

    /// Opens a file that nothing else may change while it is open (a private copy, a staged restore) read-only,
    /// without locks, side files or WAL replay.
    static func immutable(_ path: String, what: String) throws(SealbakError) -> SQLiteDatabase {
        try SQLiteDatabase(
            "file:" + uriEscaped(path) + "?immutable=1",
            flags: SQLITE_OPEN_READONLY,
            uri: true,
            what: what
        )
    }

    deinit { sqlite3_close_v2(handle) }

    var message: String { String(cString: sqlite3_errmsg(handle)) }

    /// Maps an SQLite result code to sealbak's error codes in one place.
    static func error(_ rc: Int32, _ message: String) -> SealbakError {
        switch rc & 0xff {
        case SQLITE_CORRUPT, SQLITE_NOTADB: SealbakError(.corrupt, message)
        case SQLITE_BUSY, SQLITE_LOCKED: SealbakError(.unavailable, message)
        case SQLITE_NOMEM: SealbakError(.internalError, message)
        case SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_FULL, SQLITE_READONLY, SQLITE_PERM: SealbakError(.io, message)
        default: SealbakError(.io, message)
        }
    }

    /// Every row of `sql`, each column as text (nil for NULL).
    func rows(_ sql: String) throws(SealbakError) -> [[String?]] {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK else { throw SQLiteDatabase.error(rc, "\(what): \(message)") }
        defer { sqlite3_finalize(stmt) }
        var out: [[String?]] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw SQLiteDatabase.error(rc, "\(what): \(message)") }
            out.append(
                (0..<sqlite3_column_count(stmt)).map { i in sqlite3_column_text(stmt, i).map { String(cString: $0) } }
            )
        }
        return out
    }

    /// The first column of the first row (nil: no row, or NULL).
    func value(_ sql: String) throws(SealbakError) -> String? { try rows(sql).first?.first ?? nil }

    func integer(_ sql: String) throws(SealbakError) -> Int64 { Int64(try value(sql) ?? "") ?? 0 }

    /// `PRAGMA integrity_check`: nil when the database is sound, else the number of problems and the first.
    func integrityProblem() throws(SealbakError) -> (count: Int, first: String)? {
        let problems: [String]
        do { problems = try rows("PRAGMA integrity_check").compactMap { $0.first ?? nil } } catch {
            // A page so broken that the check itself stops (SQLITE_CORRUPT) is a problem too.
            guard error.code == .corrupt else { throw error }
            return (1, error.message)
        }
        if problems == ["ok"] { return nil }
        // One row may hold several problems, one a line, under a "*** in database main ***" heading.
        let lines = problems.flatMap { $0.split(separator: "\n").map(String.init) }.filter {
            !$0.hasPrefix("*** in database")
        }
        return (max(lines.count, 1), lines.first ?? problems.first ?? "?")
    }

    /// The facts of this database: tables with row counts, header values, the library version.
    func facts() throws(SealbakError) -> SQLiteFacts {
        var f = SQLiteFacts()
        let tables = try rows(
            "SELECT name, sql LIKE 'CREATE VIRTUAL TABLE%' FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE "
                + "'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
        for t in tables {
            guard let name = t[0] else { continue }
            if t[1] == "1" {
                f.tables.append(.init(name: name, rows: nil))
            } else {
                f.tables.append(
                    .init(name: name, rows: try integer("SELECT count(*) FROM " + SQLiteDatabase.quote(name)))
                )
            }
        }
        f.userVersion = try integer("PRAGMA user_version")
        f.applicationID = try integer("PRAGMA application_id")
        f.pageSize = try integer("PRAGMA page_size")
        f.pageCount = try integer("PRAGMA page_count")
        f.sqliteVersion = String(cString: sqlite3_libversion())
        return f
    }

    /// Copies this database into `dest` with SQLite's online backup API: one step over all pages inside one read
    /// transaction, so the copy is a consistent snapshot while other processes write. A busy source is polled
    /// every half millisecond (a busy writer in rollback-journal mode leaves short gaps between its exclusive
    /// locks, which SQLite's own sleeping busy timeout keeps missing) for up to 10 s, `attempts` times, before
    /// the capture fails.
    func backup(to dest: SQLiteDatabase, attempts: Int = 3) throws(SealbakError) {
        sqlite3_busy_handler(
            handle,
            { _, tries in
                guard tries < 20_000 else { return 0 }
                usleep(500)
                return 1
            },
            nil
        )
        guard let b = sqlite3_backup_init(dest.handle, "main", handle, "main") else {
            throw SealbakError(.io, "cannot copy \(what): \(dest.message)")
        }
        var rc: Int32
        var busy = 0
        repeat {
            rc = sqlite3_backup_step(b, -1)
            if rc & 0xff == SQLITE_BUSY || rc & 0xff == SQLITE_LOCKED {
                busy += 1
                sqlite3_sleep(100)
            }
        } while (rc == SQLITE_OK || rc & 0xff == SQLITE_BUSY || rc & 0xff == SQLITE_LOCKED) && busy < attempts
        sqlite3_backup_finish(b)
        guard rc == SQLITE_DONE else {
            if busy >= attempts {
                throw SealbakError(
                    .unavailable,
                    "\(what) stayed locked by another process through \(attempts) attempts "
                        + "(\(String(cString: sqlite3_errstr(rc)))); a writer holds it: try again when it is quieter"
                )
            }
            throw SQLiteDatabase.error(
                rc,
                "the online backup of \(what) failed: \(String(cString: sqlite3_errstr(rc)))"
            )
        }
    }

    /// An identifier in double quotes (embedded quotes doubled).
    static func quote(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    /// A path as the path part of a `file:` URI (`%`, `?` and `#` escaped).
    static func uriEscaped(_ path: String) -> String {
        var out = ""
        for c in path.unicodeScalars {
            switch c {
            case "%": out += "%25"
            case "?": out += "%3f"
            case "#": out += "%23"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}

/// An SQLite database file (`--sqlite [NAME=]PATH`, `kind: sqlite`): copied through the online backup API into a
/// private temporary file, checked and counted there, and packed as one entry `sqlite/NAME.sqlite3`.
package enum SQLiteComponent {
    /// The 16 bytes every SQLite 3 database file starts with.
    package static let magic = Array("SQLite format 3\u{0}".utf8)

    package static func entryName(_ name: String) -> String { "sqlite/\(name).sqlite3" }

    /// Copies, checks and counts `path`; adds the entry to `plan`. Returns the facts and the copy to remove
    /// after packing.
    static func add(
        name: String,
        path: String,
        to plan: inout PackPlan
    ) throws(SealbakError) -> (SQLiteFacts, ChromaComponent.Snapshot) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT { throw SealbakError(.notFound, "--sqlite \(path): no such file") }
            throw SealbakError.io("cannot read the SQLite database", path: path, errno: errno)
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw SealbakError(.usage, "--sqlite \(path) is not a file (give the database file, e.g. app.db)")
        }
        if st.st_size > 0 {
            let head = readHead(path)
            guard head == magic else {
                throw SealbakError(
                    .corrupt,
                    "\(path) is not an SQLite 3 database: it does not start with \"SQLite format 3\"; nothing was "
                        + "written"
                )
            }
        }
        // Read-write (with query_only) where sealbak may write the file: as the last connection it then removes the
        // -wal and -shm it had to create, as the application would, and it can roll back the hot journal of a
        // crashed writer. A read-only connection would leave them behind; it is the fallback.
        let source: SQLiteDatabase
        do { source = try SQLiteDatabase(path, flags: SQLITE_OPEN_READWRITE, what: path) } catch {
            source = try SQLiteDatabase(path, flags: SQLITE_OPEN_READONLY, what: path)
        }
        _ = try? source.rows("PRAGMA query_only = 1")
        let copyPath =
            NSTemporaryDirectory()
            + "sealbak-sqlite-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16)).sqlite3"
        let snapshot = ChromaComponent.Snapshot(path: copyPath)
        var facts: SQLiteFacts
        do throws(SealbakError) {
            do {
                let copy = try SQLiteDatabase(
                    copyPath,
                    flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                    what: "the copy of \(path)"
                )
                chmod(copyPath, 0o600)
                try source.backup(to: copy)
            }
            let copy = try SQLiteDatabase.immutable(copyPath, what: "the copy of \(path)")
            if let (count, first) = try copy.integrityProblem() {
                let problems = count >= 100 ? "100 or more problems" : count == 1 ? "1 problem" : "\(count) problems"
                throw SealbakError(
                    .corrupt,
                    "\(path) fails SQLite's integrity check (\(problems)); the first: \(first). It was not packed: "
                        + "repair it (sqlite3 \(path) \".recover\") or restore an older backup"
                )
            }
            facts = try copy.facts()
        } catch {
            snapshot.remove()
            if error.code == .corrupt && !error.message.hasPrefix(path) {
                throw SealbakError(.corrupt, "\(path) is damaged: \(error.message). It was not packed")
            }
            throw error
        }
        // The file records WAL mode (header bytes 18 and 19 are 2); the rollback modes (delete, truncate, persist)
        // are settings of each connection, so a file not in WAL mode is reported as delete, SQLite's default.
        let header = readHead(copyPath, count: 20)
        facts.journalMode = header.count == 20 && header[18] == 2 && header[19] == 2 ? "wal" : "delete"
        var cst = stat()
        if stat(copyPath, &cst) == 0 { facts.bytes = UInt64(cst.st_size) }

        let first = plan.entries.count
        try plan.add(tree: copyPath, as: entryName(name), filter: KeepEverything())
        var m = Component.metadata(
            kind: "sqlite",
            name: name,
            source: URL(fileURLWithPath: path).standardizedFileURL.path
        )
        m[SQLiteKeys.tables] = String(facts.tables.count)
        m[SQLiteKeys.rows] = String(facts.totalRows)
        m[SQLiteKeys.userVersion] = String(facts.userVersion)
        m[SQLiteKeys.applicationID] = String(facts.applicationID)
        m[SQLiteKeys.pageSize] = String(facts.pageSize)
        m[SQLiteKeys.journalMode] = facts.journalMode
        m[SQLiteKeys.version] = facts.sqliteVersion
        m[SQLiteKeys.bytes] = String(facts.bytes)
        writeChunked(&m, SQLiteKeys.facts, encode(facts))
        plan.setMetadata(m, at: first)
        return (facts, snapshot)
    }

    private static func readHead(_ path: String, count: Int = 16) -> [UInt8] {
        guard let h = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? h.close() }
        return [UInt8]((try? h.read(upToCount: count)) ?? Data())
    }

    static func encode(_ facts: SQLiteFacts) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(facts)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// An SQLite component as found in a manifest.
    package struct Stored: Sendable {
        package var name: String
        package var source: String
        package var entryIndex: Int
        /// nil for a skipped component.
        package var facts: SQLiteFacts?
        package var skippedReason: String?
    }

    package static func all(in manifest: Manifest) -> [Stored] {
        manifest.entries.enumerated().compactMap { i, e in
            guard e.metadata[ComponentKeys.kind] == "sqlite" else { return nil }
            let name = e.metadata[ComponentKeys.name] ?? e.name
            let skipped = e.metadata[ComponentKeys.status] == "skipped"
            let facts = readChunked(e.metadata, SQLiteKeys.facts).flatMap {
                try? JSONDecoder().decode(SQLiteFacts.self, from: Data($0.utf8))
            }
            return Stored(
                name: name,
                source: e.metadata[ComponentKeys.source] ?? "",
                entryIndex: i,
                facts: skipped ? nil : facts,
                skippedReason: skipped ? e.metadata[ComponentKeys.reason] ?? "" : nil
            )
        }
    }

    /// One line for `list`: tables, rows, user_version, journal mode.
    package static func summary(_ m: Metadata) -> String {
        "\(m[SQLiteKeys.tables] ?? "?") tables, \(m[SQLiteKeys.rows] ?? "?") rows, user_version "
            + "\(m[SQLiteKeys.userVersion] ?? "?"), journal mode \(m[SQLiteKeys.journalMode] ?? "?"), page size "
            + "\(m[SQLiteKeys.pageSize] ?? "?"), \(formatBytes(UInt64(m[SQLiteKeys.bytes] ?? "") ?? 0)), SQLite "
            + "\(m[SQLiteKeys.version] ?? "?")"
    }

    /// The per-table lines of `list`.
    package static func tableLines(_ m: Metadata) -> [String] {
        guard let json = readChunked(m, SQLiteKeys.facts),
            let f = try? JSONDecoder().decode(SQLiteFacts.self, from: Data(json.utf8))
        else { return [] }
        return f.tables.map { "\($0.name): \($0.rows.map { "\($0) rows" } ?? "virtual table (not counted)")" }
    }
}

/// Packs the one file it is given.
final class KeepEverything: TreeFilter {
    func enter(directory rel: String, fsPath: String) throws(SealbakError) {}
    func keep(_ rel: String, isDirectory: Bool) -> Bool { true }
}

/// The capture side of the `sqlite` kind.
package final class SQLiteSource: CaptureSource {
    package let name: String
    package let path: String
    package let allowMissing: Bool
    private var snapshot: ChromaComponent.Snapshot?
    package var kind: String { "sqlite" }
    package var sourceDescription: String { URL(fileURLWithPath: path).standardizedFileURL.path }

    package init(name: String, path: String, allowMissing: Bool) {
        self.name = name
        self.path = path
        self.allowMissing = allowMissing
    }

    /// `--sqlite [NAME=]PATH`: the name defaults to the file's name without its extension (`app.db` → `app`).
    package convenience init(argument: String, allowMissing: (String) -> Bool) throws(SealbakError) {
        let (name, path) = try Component.argument(argument, flag: "--sqlite") { ($0 as NSString).deletingPathExtension }
        self.init(name: name, path: path, allowMissing: allowMissing(name))
    }

    package func prepare(into plan: inout PackPlan, log: EngineLog) throws -> String {
        let (f, snap) = try SQLiteComponent.add(name: name, path: path, to: &plan)
        snapshot = snap
        return
            "SQLite database, online backup of \(path): integrity ok, \(f.tables.count) tables, \(f.totalRows) rows "
            + "counted in the copy, user_version \(f.userVersion), journal mode \(f.journalMode), "
            + "\(formatBytes(f.bytes))"
    }

    package func skippedEntry(reason: String, mtime: Int64) -> ManifestEntry {
        var m = Component.metadata(kind: kind, name: name, source: sourceDescription)
        m[ComponentKeys.status] = "skipped"
        m[ComponentKeys.reason] = reason
        return ManifestEntry(
            kind: .file,
            name: SQLiteComponent.entryName(name),
            mode: 0o600,
            mtimeSeconds: mtime,
            metadata: m
        )
    }

    package func close() {
        snapshot?.remove()
        snapshot = nil
    }
}
