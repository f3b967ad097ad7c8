import Foundation
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakPostgres

#if canImport(Glibc)
import Glibc
#endif

package struct MySQLRestoreOptions: Sendable {
    /// Replace a non-empty target database (after the restored copy has verified).
    package var replace = false
    /// Keep the replaced tables (and their views, triggers, routines, events) in `TARGET_sbk_old_…`.
    package var keepReplaced = false
    package var finder = MySQLToolFinder()
    package init() {}
}

/// What a restore of one component would do, found without changing anything (`--dry-run` prints it).
package struct MySQLRestorePlan: Sendable {
    package var component: MySQLComponent
    package var facts: MySQLFacts
    package var counts: MySQLCounts?
    package var target: MySQLParameters
    package var targetDatabase: String
    package var targetServer: String
    package var targetExists: Bool
    package var targetObjects: Int
    package var tool: MySQLTool
    package var notes: [String]

    package var description: String {
        var lines: [String] = []
        lines.append(
            "component \(component.name): database \(facts.database) from \(component.source), \(facts.flavour) "
                + "\(facts.serverVersion), \(facts.charset)/\(facts.collation)"
        )
        let fate = targetObjects > 0 ? ", will be replaced after the restored copy verifies" : ", will be filled"
        let state = targetExists ? "database exists with \(targetObjects) object(s)\(fate)" : "database will be created"
        lines.append("  target: \(target.display) (\(targetServer)), \(state)")
        lines.append("  tool: \(tool.path) (\(tool.versionText))")
        let rows =
            counts.map { "\($0.totalRows) row(s) counted in the dump" } ?? "row counts in the archive's counts entry"
        lines.append(
            "  \(facts.tables.count) table(s), \(rows); \(facts.views.count) view(s), \(facts.triggers.count) "
                + "trigger(s), \(facts.routines.count) routine(s), \(facts.events.count) event(s)"
        )
        for t in facts.tables {
            let n = counts?.tables.first { $0.name == t.name }?.rows
            lines.append("    \(t.name): \(n.map { "\($0) row(s)" } ?? "? rows"), \(t.engine)")
        }
        for n in notes { lines.append("  note: \(n)") }
        return lines.joined(separator: "\n")
    }
}

/// Restores a MySQL/MariaDB component into a live server, all or nothing.
///
/// The dump goes into a new database `TARGET_sbk_new_XXXXXXXX` (the `mariadb` client, `--binary-mode`, fed the
/// verified entry on standard input); every table is recounted there and compared with the counts made from the
/// dump stream. Only then is the target changed: one `RENAME TABLE` statement moves the target's tables to
/// `TARGET_sbk_old_XXXXXXXX` and the restored ones into the target (atomic on both servers). Views, triggers,
/// routines and events cannot move between databases, so they are re-created from the staged copy's definitions
/// right after that statement (and the old ones, saved first, are re-created by a rollback).
package final class MySQLRestorer {
    package let component: MySQLComponent
    let facts: MySQLFacts
    let target: MySQLParameters
    let targetDatabase: String
    let options: MySQLRestoreOptions

    package init(component: MySQLComponent, target: MySQLParameters, options: MySQLRestoreOptions) throws(SealbakError)
    {
        guard let facts = component.facts else {
            throw SealbakError(
                .notFound,
                "component \(component.name) was skipped when packing (\(component.skippedReason ?? "")); there is "
                    + "nothing to restore"
            )
        }
        guard let db = target.database, !db.isEmpty else {
            throw SealbakError(
                .usage,
                "--mysql-target \(target.display): name the target database in the URL "
                    + "(mysql://USER@HOST:PORT/DATABASE)"
            )
        }
        self.component = component
        self.facts = facts
        self.target = target
        targetDatabase = db
        self.options = options
    }

    /// A connection to the target server with no database selected.
    func admin() throws(SealbakError) -> MySQLConnection { try MySQLConnection(target.with(database: nil)) }

    /// Rights a restore needs on the target, the staging and the kept database.
    var neededRights: [String] {
        var r = ["SELECT", "INSERT", "CREATE", "DROP", "ALTER", "INDEX", "REFERENCES", "LOCK TABLES"]
        if !facts.views.isEmpty { r += ["CREATE VIEW", "SHOW VIEW"] }
        if !facts.triggers.isEmpty { r += ["TRIGGER"] }
        if !facts.routines.isEmpty { r += ["CREATE ROUTINE", "ALTER ROUTINE"] }
        if !facts.events.isEmpty { r += ["EVENT"] }
        return r
    }

    /// Checks everything that can be checked without changing anything.
    package func plan(counts: MySQLCounts?) throws(SealbakError) -> MySQLRestorePlan {
        let m = try admin()
        let version = try m.value("SELECT VERSION()") ?? m.serverInfo
        let tool = try options.finder.find(.client, flavour: version.contains("MariaDB") ? "MariaDB" : "MySQL")
        // Rights: global ones, plus those granted on database patterns covering the target and the temporary names.
        let current = try m.value("SELECT CURRENT_USER()") ?? ""
        let parts = current.split(separator: "@", omittingEmptySubsequences: false)
        let userPart = parts.dropLast().joined(separator: "@")
        let hostPart = String(parts.last ?? "")
        let grantee = quoteMySQLLiteral("'" + userPart + "'@'" + hostPart + "'")
        var granted = Set(
            try m.query("SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = \(grantee)")
                .compactMap { $0[0] }
        )
        if !granted.contains("ALL PRIVILEGES") {
            let prefix = shortened(targetDatabase)
            var perDB: Set<String>?
            for db in [targetDatabase, prefix + "_sbk_new_00000000", prefix + "_sbk_old_00000000"] {
                let rows = Set(
                    try m.query(
                        "SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = \(grantee) "
                            + "AND \(quoteMySQLLiteral(db)) LIKE TABLE_SCHEMA"
                    ).compactMap { $0[0] }
                )
                perDB = perDB.map { $0.intersection(rows) } ?? rows
            }
            granted.formUnion(perDB ?? [])
        }
        let missing = granted.contains("ALL PRIVILEGES") ? [] : neededRights.filter { !granted.contains($0) }
        if !missing.isEmpty {
            throw SealbakError(
                .unavailable,
                "\(target.place): user \(current) lacks \(missing.joined(separator: ", ")) on \(targetDatabase) and "
                    + "on \(shortened(targetDatabase))_sbk_new_%/_sbk_old_% (a restore creates a database beside the "
                    + "target, then swaps tables); nothing was changed. Grant them, e.g. GRANT ALL ON "
                    + "`\(shortened(targetDatabase).replacingOccurrences(of: "_", with: "\\_"))%`.* TO …"
            )
        }
        let lit = quoteMySQLLiteral(targetDatabase)
        let exists = try m.value("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = \(lit)") != "0"
        var objects = 0
        if exists {
            objects =
                Int(
                    try m.value(
                        """
                        SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = \(lit))
                             + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = \(lit))
                             + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = \(lit))
                        """
                    ) ?? "0"
                ) ?? 0
            if objects > 0 && !options.replace {
                throw SealbakError(
                    .targetExists,
                    "\(target.display): database \(targetDatabase) is not empty (\(objects) object(s)); nothing was "
                        + "changed. Give --replace to replace it once the restored copy has verified, or restore into "
                        + "another database"
                )
            }
        }
        var notes: [String] = []
        if !facts.nonTransactional.isEmpty {
            notes.append(
                "table(s) \(facts.nonTransactional.map { "\($0.name) (\($0.engine))" }.joined(separator: ", ")) were "
                    + "not transactional when packed: their dump may not be consistent with the rest"
            )
        }
        if facts.flavour == "MariaDB" && !version.contains("MariaDB") {
            notes.append(
                "the dump was made from MariaDB and the target is MySQL \(version): MariaDB-only syntax may be refused"
            )
        }
        return MySQLRestorePlan(
            component: component,
            facts: facts,
            counts: counts,
            target: target,
            targetDatabase: targetDatabase,
            targetServer: version,
            targetExists: exists,
            targetObjects: objects,
            tool: tool,
            notes: notes
        )
    }

    /// Databases beside the target left by killed restores: staged (`_sbk_new_`, never put in place) and replaced
    /// (`_sbk_old_`, kept on purpose or by a restore killed after its swap).
    package func leftovers() throws(SealbakError) -> (staged: [String], replaced: [String]) {
        let m = try admin()
        let like = shortened(targetDatabase).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(
            of: "_",
            with: "\\_"
        ).replacingOccurrences(of: "%", with: "\\%")
        let rows = try m.query(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE "
                + "\(quoteMySQLLiteral(like + "\\_sbk\\_new\\_%")) OR SCHEMA_NAME LIKE "
                + "\(quoteMySQLLiteral(like + "\\_sbk\\_old\\_%")) ORDER BY 1"
        )
        var staged: [String] = []
        var replaced: [String] = []
        for r in rows {
            guard let n = r[0] else { continue }
            if n.hasPrefix(shortened(targetDatabase) + "_sbk_new_") { staged.append(n) } else { replaced.append(n) }
        }
        return (staged, replaced)
    }

    /// Drops staged databases of killed restores of this target; returns what was dropped.
    package func dropStagedLeftovers() -> [String] {
        guard let (staged, _) = try? leftovers(), !staged.isEmpty, let m = try? admin() else { return [] }
        return staged.filter { (try? m.query("DROP DATABASE IF EXISTS \(quoteMySQLIdentifier($0))")) != nil }
    }

    /// Restores into a new database and verifies it; the target is not touched until `commit`.
    package func stage(
        _ plan: MySQLRestorePlan,
        feed: (any EntrySink) throws -> Void,
        log: @escaping (String) -> Void
    ) throws -> MySQLStaged {
        let m = try admin()
        let suffix = hex(SystemRandom().bytes(4))
        let temp = shortened(targetDatabase) + "_sbk_new_" + suffix
        let staged = MySQLStaged(restorer: self, plan: plan, admin: m, temp: temp, suffix: suffix, log: log)
        let collation = facts.collation.isEmpty ? "" : " COLLATE \(quoteMySQLLiteral(facts.collation))"
        try m.query(
            "CREATE DATABASE \(quoteMySQLIdentifier(temp)) CHARACTER SET "
                + "\(quoteMySQLLiteral(facts.charset))\(collation)"
        )
        staged.created = true
        log("restoring \(component.name) into \(temp) with \(plan.tool.path)")
        let options = try OptionFile(password: target.password)
        defer { options.remove() }
        let args =
            ["--defaults-extra-file=" + options.path] + target.toolArguments + [
                "--binary-mode", "--default-character-set=utf8mb4", "--batch", "--database=" + temp,
            ]
        let p = try Subprocess(
            executable: plan.tool.path,
            arguments: args,
            environment: ProcessInfo.processInfo.environment,
            stdin: .pipe,
            stdout: .null
        )
        staged.pidBox.pid = p.pid
        let sink = MySQLFeedSink(p, dump: component.entryIndex, counts: component.countsIndex)
        do {
            try feed(sink)
        } catch {
            p.kill()
            p.wait()
            if sink.brokenPipe { throw restoreFailed(p, plan) }
            throw error
        }
        p.closeStdin()
        if !p.wait().succeeded || sink.brokenPipe { throw restoreFailed(p, plan) }
        staged.pidBox.pid = nil
        let counts = try plan.counts ?? MySQLCounts.decode(sink.countsBytes, what: component.name)
        let report = try verify(temp, counts: counts, streamed: sink.counter, admin: m)
        if !report.mismatches.isEmpty {
            throw SealbakError(
                .restoreMismatch,
                "the restored \(component.name) does not match the archive; it was rolled back and \(target.display) "
                    + "is unchanged:\n\(report.table)"
            )
        }
        staged.report = report
        staged.counts = counts
        return staged
    }

    private func restoreFailed(_ p: Subprocess, _ plan: MySQLRestorePlan) -> SealbakError {
        let said = p.errorOutput
        return SealbakError(
            .toolFailed,
            "\((plan.tool.path as NSString).lastPathComponent) failed restoring \(component.name) "
                + "(\(p.wait()))\(said.isEmpty ? "" : ": " + said). The restore was rolled back; \(target.display) is "
                + "unchanged"
        )
    }

    /// Recounts every table of the staged database and compares with the counts made when packing; the dump fed
    /// in was counted again on its way (it must hold what the counts say), and the schema objects are checked by name.
    private func verify(
        _ db: String,
        counts: MySQLCounts,
        streamed: DumpRowCounter,
        admin m: MySQLConnection
    ) throws(SealbakError) -> RestoreReport {
        var checks: [RestoreCheck] = []
        let lit = quoteMySQLLiteral(db)
        let present = Set(
            try m.query(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = \(lit) AND TABLE_TYPE = 'BASE "
                    + "TABLE'"
            ).compactMap { $0[0] }
        )
        for t in counts.tables {
            let inStream = streamed.rows[t.name] ?? 0
            if inStream != t.rows {
                checks.append(
                    RestoreCheck(
                        what: t.name + " (dump)",
                        expected: "\(t.rows) rows",
                        actual: "\(inStream) rows",
                        ok: false
                    )
                )
            }
            guard present.contains(t.name) else {
                checks.append(RestoreCheck(what: t.name, expected: "\(t.rows) rows", actual: "missing", ok: false))
                continue
            }
            let n =
                Int64(
                    try m.value("SELECT COUNT(*) FROM \(quoteMySQLIdentifier(db)).\(quoteMySQLIdentifier(t.name))")
                        ?? "-1"
                ) ?? -1
            checks.append(RestoreCheck(what: t.name, expected: "\(t.rows) rows", actual: "\(n) rows", ok: n == t.rows))
        }
        func names(_ sql: String) throws(SealbakError) -> [String] { try m.query(sql).map { $0[0] ?? "" }.sorted() }
        let views = try names("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = \(lit)")
        let triggers = try names(
            "SELECT CONCAT(TRIGGER_NAME, ' on ', EVENT_OBJECT_TABLE) FROM information_schema.TRIGGERS WHERE "
                + "TRIGGER_SCHEMA = \(lit)"
        )
        let routines = try names(
            "SELECT CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = "
                + "\(lit)"
        )
        let events = try names("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = \(lit)")
        for (what, want, got) in [
            ("views", facts.views, views), ("triggers", facts.triggers, triggers),
            ("routines", facts.routines, routines), ("events", facts.events, events),
        ] {
            // Objects created after the facts were read may be in the dump too: every recorded one must be there.
            let missing = Set(want).subtracting(got)
            checks.append(
                RestoreCheck(
                    what: what,
                    expected: String(want.count),
                    actual: missing.isEmpty ? String(got.count) : "missing \(missing.sorted().joined(separator: ", "))",
                    ok: missing.isEmpty
                )
            )
        }
        return RestoreReport(checks: checks, replacedKeptAs: nil)
    }
}

/// A view, trigger, routine or event: its kind, name and the statement that creates it (with its sql_mode).
struct SchemaObject {
    enum Kind: String {
        case view = "VIEW"
        case trigger = "TRIGGER"
        case procedure = "PROCEDURE"
        case function = "FUNCTION"
        case event = "EVENT"
    }
    var kind: Kind
    var name: String
    var sqlMode: String?
    var create: String

    /// Every object of `db`, read with `db` selected (so that view definitions name their tables unqualified).
    static func all(in db: String, _ m: MySQLConnection) throws(SealbakError) -> [SchemaObject] {
        let lit = quoteMySQLLiteral(db)
        let q = quoteMySQLIdentifier(db)
        try m.query("USE \(q)")
        var out: [SchemaObject] = []
        for r in try m.query("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = \(lit) ORDER BY 1") {
            let n = r[0] ?? ""
            if let row = try m.query("SHOW CREATE VIEW \(quoteMySQLIdentifier(n))").first {
                out.append(SchemaObject(kind: .view, name: n, sqlMode: nil, create: row[1] ?? ""))
            }
        }
        for r in try m.query(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = \(lit) ORDER "
                + "BY 2"
        ) {
            let kind: Kind = r[0] == "FUNCTION" ? .function : .procedure
            let n = r[1] ?? ""
            if let row = try m.query("SHOW CREATE \(kind.rawValue) \(quoteMySQLIdentifier(n))").first {
                out.append(SchemaObject(kind: kind, name: n, sqlMode: row[1], create: row[2] ?? ""))
            }
        }
        for r in try m.query("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = \(lit) ORDER BY 1")
        {
            let n = r[0] ?? ""
            if let row = try m.query("SHOW CREATE EVENT \(quoteMySQLIdentifier(n))").first {
                out.append(SchemaObject(kind: .event, name: n, sqlMode: row[1], create: row[3] ?? ""))
            }
        }
        for r in try m.query(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = \(lit) ORDER BY "
                + "EVENT_OBJECT_TABLE, ACTION_ORDER"
        ) {
            let n = r[0] ?? ""
            if let row = try m.query("SHOW CREATE TRIGGER \(quoteMySQLIdentifier(n))").first {
                out.append(SchemaObject(kind: .trigger, name: n, sqlMode: row[1], create: row[2] ?? ""))
            }
        }
        return out
    }

    func drop(in db: String, _ m: MySQLConnection) throws(SealbakError) {
        try m.query("DROP \(kind.rawValue) IF EXISTS \(quoteMySQLIdentifier(db)).\(quoteMySQLIdentifier(name))")
    }

    /// Creates the objects in `db` (selected first); views that depend on views are retried until all exist.
    static func create(_ objects: [SchemaObject], in db: String, _ m: MySQLConnection) throws(SealbakError) {
        try m.query("USE \(quoteMySQLIdentifier(db))")
        let mode = try m.value("SELECT @@SESSION.sql_mode") ?? ""
        defer { _ = try? m.query("SET SESSION sql_mode = \(quoteMySQLLiteral(mode))") }
        var pending = objects.filter { $0.kind == .view }
        while !pending.isEmpty {
            var failed: [SchemaObject] = []
            var last: SealbakError?
            for v in pending {
                do { try m.query(v.create) } catch {
                    failed.append(v)
                    last = error
                }
            }
            if failed.count == pending.count, let last { throw last }
            pending = failed
        }
        for o in objects where o.kind != .view {
            if let s = o.sqlMode { try m.query("SET SESSION sql_mode = \(quoteMySQLLiteral(s))") }
            try m.query(o.create)
        }
    }
}

/// A restored and verified database under its temporary name. Until `commit`, dropping it (`abandon`, or an
/// interrupt) leaves the target exactly as it was.
package final class MySQLStaged {
    let restorer: MySQLRestorer
    let plan: MySQLRestorePlan
    let admin: MySQLConnection
    let temp: String
    let suffix: String
    let log: (String) -> Void
    let pidBox = PidBox()
    var created = false
    package private(set) var committed = false
    var report = RestoreReport(checks: [], replacedKeptAs: nil)
    package var counts: MySQLCounts?
    private var token: Int?
    // What the commit did, for rollback and finalize.
    private var old: String?
    private var createdTarget = false
    private var movedOld: [String] = []
    private var movedNew: [String] = []
    private var oldObjects: [SchemaObject] = []
    private var newObjects: [SchemaObject] = []

    init(
        restorer: MySQLRestorer,
        plan: MySQLRestorePlan,
        admin: MySQLConnection,
        temp: String,
        suffix: String,
        log: @escaping (String) -> Void
    ) {
        self.restorer = restorer
        self.plan = plan
        self.admin = admin
        self.temp = temp
        self.suffix = suffix
        self.log = log
        let target = plan.target
        let box = pidBox
        token = Interrupts.register {
            if let pid = box.pid { _ = Glibc.kill(pid, SIGKILL) }
            if let c = try? MySQLConnection(target.with(database: nil), connectTimeout: 5, readTimeout: 30) {
                _ = try? c.query("DROP DATABASE IF EXISTS \(quoteMySQLIdentifier(temp))")
            }
        }
    }

    package var checkReport: RestoreReport { report }
    /// The staged database (for declared checks).
    package var stagedParameters: MySQLParameters { plan.target.with(database: temp) }

    private var targetDB: String { restorer.targetDatabase }

    private func tables(_ db: String) throws(SealbakError) -> [String] {
        try admin.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = \(quoteMySQLLiteral(db)) AND "
                + "TABLE_TYPE = 'BASE TABLE' ORDER BY 1"
        ).compactMap { $0[0] }
    }

    private func createDatabase(_ name: String) throws(SealbakError) {
        let f = plan.facts
        let collation = f.collation.isEmpty ? "" : " COLLATE \(quoteMySQLLiteral(f.collation))"
        try admin.query(
            "CREATE DATABASE \(quoteMySQLIdentifier(name)) CHARACTER SET "
                + "\(quoteMySQLLiteral(f.charset))\(collation)"
        )
    }

    /// Swaps the verified tables into place in one `RENAME TABLE` statement (the target's own tables move to
    /// `TARGET_sbk_old_…` in the same statement), then re-creates views, triggers, routines and events.
    package func commit() throws(SealbakError) {
        let q = quoteMySQLIdentifier
        newObjects = try SchemaObject.all(in: temp, admin)
        let present = try admin.value(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = \(quoteMySQLLiteral(targetDB))"
        )
        let exists = present != "0"
        if exists {
            oldObjects = try SchemaObject.all(in: targetDB, admin)
        } else {
            try createDatabase(targetDB)
            createdTarget = true
        }
        let oldName = shortened(targetDB) + "_sbk_old_" + suffix
        let oldTables = exists ? try tables(targetDB) : []
        let newTables = try tables(temp)
        do {
            try createDatabase(oldName)
            old = oldName
            // Triggers cannot move between databases, and a view may hold a name a restored table needs.
            for o in newObjects where o.kind == .trigger { try o.drop(in: temp, admin) }
            for o in oldObjects where o.kind == .trigger || o.kind == .view { try o.drop(in: targetDB, admin) }
            var pairs = oldTables.map { "\(q(targetDB)).\(q($0)) TO \(q(oldName)).\(q($0))" }
            pairs += newTables.map { "\(q(temp)).\(q($0)) TO \(q(targetDB)).\(q($0))" }
            if !pairs.isEmpty { try admin.query("RENAME TABLE " + pairs.joined(separator: ", ")) }
            movedOld = oldTables
            movedNew = newTables
            for o in oldObjects where o.kind != .trigger && o.kind != .view { try o.drop(in: targetDB, admin) }
            try SchemaObject.create(newObjects, in: targetDB, admin)
            committed = true
        } catch {
            let why = error
            undo()
            throw SealbakError(
                why.code,
                "cannot swap the restored tables into place: \(why.message); \(restorer.target.display) is unchanged"
            )
        }
        // The replaced objects go with the replaced tables (best effort: they are only kept, never used).
        do { try SchemaObject.create(oldObjects, in: oldName, admin) } catch {
            log(
                "warning: the replaced views, triggers or routines could not be re-created in \(oldName): "
                    + "\(error.message)"
            )
        }
    }

    /// Puts the replaced tables and objects back (the restored tables return to the staging database, which
    /// `abandon` then drops).
    package func rollback() throws(SealbakError) {
        undo()
        committed = false
    }

    /// Reverses whatever part of `commit` ran; every step is attempted (errors are reported, not thrown).
    private func undo() {
        let q = quoteMySQLIdentifier
        func attempt(_ what: String, _ body: () throws -> Void) {
            do { try body() } catch {
                log(
                    "warning: rollback of \(restorer.component.name): \(what) failed: "
                        + "\((error as? SealbakError)?.message ?? "\(error)")"
                )
            }
        }
        attempt("dropping the restored objects") {
            for o in newObjects { try o.drop(in: targetDB, admin) }
        }
        if !movedOld.isEmpty || !movedNew.isEmpty, let old {
            attempt("moving the tables back") {
                var pairs = movedNew.map { "\(q(targetDB)).\(q($0)) TO \(q(temp)).\(q($0))" }
                pairs += movedOld.map { "\(q(old)).\(q($0)) TO \(q(targetDB)).\(q($0))" }
                try admin.query("RENAME TABLE " + pairs.joined(separator: ", "))
            }
            movedOld = []
            movedNew = []
        }
        attempt("re-creating the replaced views, triggers and routines") {
            for o in oldObjects { try o.drop(in: targetDB, admin) }
            try SchemaObject.create(oldObjects, in: targetDB, admin)
        }
        attempt("re-creating the staged triggers") {
            try SchemaObject.create(newObjects.filter { $0.kind == .trigger }, in: temp, admin)
        }
        if let old {
            attempt("dropping \(old)") { try admin.query("DROP DATABASE IF EXISTS \(q(old))") }
            self.old = nil
        }
        if createdTarget {
            attempt("dropping the created \(targetDB)") { try admin.query("DROP DATABASE IF EXISTS \(q(targetDB))") }
            createdTarget = false
        }
    }

    /// Drops the staging database (now without tables) and the replaced tables unless `--keep-replaced`;
    /// returns the kept database's name.
    package func finalize() -> String? {
        if let token { Interrupts.unregister(token) }
        token = nil
        _ = try? admin.query("DROP DATABASE IF EXISTS \(quoteMySQLIdentifier(temp))")
        created = false
        guard let old else { return nil }
        if restorer.options.keepReplaced { return old }
        do { try admin.query("DROP DATABASE IF EXISTS \(quoteMySQLIdentifier(old))") } catch {
            log("warning: the replaced tables are kept in \(old) because dropping it failed: \(error.message)")
            return old
        }
        return nil
    }

    /// Drops the staging database unless committed.
    package func abandon() {
        if let token { Interrupts.unregister(token) }
        token = nil
        guard created && !committed else { return }
        created = false
        do { try admin.query("DROP DATABASE IF EXISTS \(quoteMySQLIdentifier(temp))") } catch {
            log("warning: could not drop the temporary database \(temp): \(error.message). Drop it by hand")
        }
    }

    deinit { abandon() }
}

/// Feeds the dump entry into the client's standard input, counting its rows again on the way, and keeps the
/// counts entry.
final class MySQLFeedSink: EntrySink {
    private let process: Subprocess
    private let dump: Int
    private let counts: Int?
    private(set) var brokenPipe = false
    private(set) var counter = DumpRowCounter()
    private(set) var countsBytes: [UInt8] = []

    init(_ p: Subprocess, dump: Int, counts: Int?) {
        process = p
        self.dump = dump
        self.counts = counts
    }

    func wants(_ i: Int) -> Bool { i == dump || i == counts }
    func begin(_ i: Int) throws {}

    func write(_ i: Int, _ bytes: [UInt8]) throws {
        if i == counts {
            guard countsBytes.count + bytes.count <= 64 << 20 else {
                throw SealbakError(.corrupt, "the counts entry is larger than 64 MiB")
            }
            countsBytes += bytes
            return
        }
        counter.feed(bytes)
        let ok = try process.writeInput(bytes.span.bytes)
        if !ok {
            brokenPipe = true
            throw SealbakError(.toolFailed, "the mariadb client stopped reading")
        }
    }

    func end(_ i: Int, size: UInt64, sha256: [UInt8]) throws {}
}

/// At most 40 bytes of a database name (whole characters), so that a suffix keeps it within 64.
func shortened(_ name: String) -> String {
    var out = ""
    for ch in name {
        if out.utf8.count + ch.utf8.count > 40 { break }
        out.append(ch)
    }
    return out
}
