import Foundation
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakSync

#if canImport(Glibc)
import Glibc
#endif

package struct PostgresRestoreOptions: Sendable {
    /// Replace a non-empty target database (after the restored copy has verified).
    package var replace = false
    /// Keep the replaced database under its `_sbk_old_` name instead of dropping it.
    package var keepReplaced = false
    /// pg_restore --no-owner: objects belong to the restoring role (for a server without the original roles).
    package var noOwner = false
    package var finder = ToolFinder()
    /// End other sessions on an existing target just before the swap (instead of refusing).
    package var terminateConnections = false
    /// `--restore-memory`: the most the restore's sessions together may use for index builds (bytes; nil: a safe
    /// share of the server host's memory, or 512 MiB when that cannot be read).
    package var restoreMemory: Int64?
    /// `--restore-jobs`: pg_restore sessions at once (nil: one per core of the server's host, at most 4, when that
    /// saves more than writing the temporary copy costs and the temporary folder has room; 1: straight from the
    /// archive).
    package var jobs: Int?
    /// Where a parallel restore keeps its temporary copy of the dump (default TMPDIR, else /tmp).
    package var temporaryDirectory: String?

    package init() {}
}

/// What a restore of one component would do, found without changing anything (`--dry-run` prints it).
package struct RestorePlan: Sendable {
    package var component: PostgresComponent
    package var facts: DatabaseFacts
    package var target: ConnectionParameters
    package var targetDatabase: String
    package var targetServerVersion: String
    package var targetExists: Bool
    /// Objects (tables, views, functions, extensions, large objects, …) already in the target.
    package var targetObjects: Int
    package var restoreTool: Tool
    /// Extension name → version the target server would install (nil: not available).
    package var availableExtensions: [String: String]
    /// The settings the restore sessions get, and the restore-time estimate.
    package var sizing: SessionSizing
    /// The folder for the dump's temporary copy when restoring with several sessions (nil: one session, from the
    /// archive).
    package var parallelDirectory: String?
    package var notes: [String]

    package var description: String {
        var lines: [String] = []
        lines.append(
            "component \(component.name): database \(facts.database) from \(component.source), PostgreSQL "
                + "\(facts.serverVersion), \(facts.encoding)"
        )
        let fate = targetObjects > 0 ? ", will be replaced after the restored copy verifies" : ", will be replaced"
        let state = targetExists ? "database exists with \(targetObjects) object(s)\(fate)" : "database will be created"
        lines.append("  target: \(target.display) (PostgreSQL \(targetServerVersion)), \(state)")
        lines.append("  tool: \(restoreTool.path) (\(restoreTool.versionText))")
        for e in facts.requiredExtensions {
            let avail = availableExtensions[e.name].map { "available \($0)" } ?? "NOT AVAILABLE"
            lines.append("  extension \(e.name) \(e.version) (schema \(e.schema)): \(avail)")
        }
        for v in facts.vectorColumns {
            lines.append(
                "  vector column \(v.schema).\(v.table).\(v.column): "
                    + "\(v.type)(\(v.dimensions.map(String.init) ?? "any"))"
            )
        }
        lines.append(
            "  \(facts.tables.count) table(s), \(facts.totalRows) row(s), "
                + "\(formatBytes(UInt64(max(0, facts.totalBytes)))) on the source; "
                + "\(facts.largeObjects) large object(s)"
        )
        for t in facts.tables {
            lines.append("    \(t.display): \(t.rows) row(s), \(formatBytes(UInt64(max(0, t.bytes))))")
        }
        lines += sizing.planLines.map { "  " + $0 }
        if let d = parallelDirectory {
            lines.append(
                "  parallel restore: pg_restore -j \(sizing.jobs) from a temporary copy of the dump in \(d) "
                    + "(owner-only, removed afterwards)"
            )
        }
        for n in notes { lines.append("  note: \(n)") }
        return lines.joined(separator: "\n")
    }
}

/// One row of the post-restore comparison.
package struct RestoreCheck: Sendable {
    package var what: String
    package var expected: String
    package var actual: String
    package var ok: Bool

    package init(what: String, expected: String, actual: String, ok: Bool) {
        self.what = what
        self.expected = expected
        self.actual = actual
        self.ok = ok
    }
}

package struct RestoreReport: Sendable {
    package var checks: [RestoreCheck]
    package var replacedKeptAs: String?

    package init(checks: [RestoreCheck], replacedKeptAs: String?) {
        self.checks = checks
        self.replacedKeptAs = replacedKeptAs
    }

    package var mismatches: [RestoreCheck] { checks.filter { !$0.ok } }

    package var table: String {
        let w0 = max(5, checks.map { $0.what.count }.max() ?? 0)
        let w1 = max(8, checks.map { $0.expected.count }.max() ?? 0)
        let w2 = max(8, checks.map { $0.actual.count }.max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        var lines = [pad("check", w0) + "  " + pad("expected", w1) + "  " + pad("restored", w2) + "  "]
        for c in checks {
            lines.append(
                pad(c.what, w0) + "  " + pad(c.expected, w1) + "  " + pad(c.actual, w2) + "  "
                    + (c.ok ? "ok" : "MISMATCH")
            )
        }
        return lines.joined(separator: "\n")
    }
}

/// Restores a PostgreSQL component into a live server, all or nothing.
///
/// The dump goes into a new database with a temporary name (`pg_restore --single-transaction --exit-on-error`);
/// rows are recounted there and compared with the manifest. Only then is the target replaced, by renaming in
/// one transaction. Any failure drops the temporary database and leaves the target as it was.
package final class PostgresRestorer {
    package let component: PostgresComponent
    private let facts: DatabaseFacts
    private let target: ConnectionParameters
    private let targetDatabase: String
    private let options: PostgresRestoreOptions

    package init(
        component: PostgresComponent,
        target: ConnectionParameters,
        options: PostgresRestoreOptions
    ) throws(SealbakError) {
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
                "--postgres-target \(target.display): name the target database in the URL (postgresql://HOST/DATABASE)"
            )
        }
        self.component = component
        self.facts = facts
        self.target = target
        targetDatabase = db
        self.options = options
    }

    /// A connection to the target server outside the target database (postgres, else template1).
    private func maintenance() throws(SealbakError) -> Connection {
        var firstError: SealbakError? = nil
        for db in ["postgres", "template1"] where db != targetDatabase {
            do { return try Connection(target.with(database: db)) } catch {
                if firstError == nil { firstError = error }
            }
        }
        throw firstError!
    }

    /// Checks everything that can be checked without changing anything.
    package func plan() throws(SealbakError) -> RestorePlan {
        let m = try maintenance()
        let version = try m.value("SELECT current_setting('server_version')") ?? "?"
        let role = try m.query("SELECT rolsuper, rolcreatedb, current_user FROM pg_roles WHERE rolname = current_user")
        let isSuper = role.first?[0] == "t"
        let canCreate = role.first?[1] == "t"
        let user = role.first?[2] ?? "?"
        if !isSuper && !canCreate {
            throw SealbakError(
                .unavailable,
                "\(target.display): role \(user) cannot create databases, which a restore needs (it restores into a "
                    + "new database, then swaps names). Grant CREATEDB or use another role"
            )
        }
        let tool = try options.finder.find(
            "pg_restore",
            forServerMajor: m.serverVersionNumber / 10000,
            atLeast: ToolFinder.major(facts.dumpTool) ?? 0
        )
        var available: [String: String] = [:]
        for row in try m.query("SELECT name, default_version FROM pg_available_extensions") {
            if let n = row[0] { available[n] = row[1] ?? "" }
        }
        let missing = facts.requiredExtensions.filter { available[$0.name] == nil }
        if !missing.isEmpty {
            let list = missing.map { "\($0.name) \($0.version)" }.joined(separator: ", ")
            let hint =
                missing.contains { $0.name == "vector" }
                ? " For pgvector install the package for the server's version (e.g. "
                    + "postgresql-\(m.serverVersionNumber / 10000)-pgvector) or build it from source."
                : ""
            throw SealbakError(
                .unavailable,
                "\(target.display): the target server lacks the extension(s) \(list) that \(component.name) needs; "
                    + "nothing was changed.\(hint)"
            )
        }
        // A role that may create databases may still be unable to create an extension the dump needs: only
        // trusted extensions can be created without superuser rights.
        if !isSuper {
            var untrusted: [String] = []
            for e in facts.requiredExtensions {
                let trusted = try m.value(
                    "SELECT bool_or(trusted)::text FROM pg_available_extension_versions WHERE name = $1",
                    [e.name]
                )
                if trusted != "true" { untrusted.append(e.name) }
            }
            if !untrusted.isEmpty {
                throw SealbakError(
                    .unavailable,
                    "\(target.display): role \(user) may create databases but not the extension(s) "
                        + "\(untrusted.joined(separator: ", ")) that \(component.name) needs (they are not marked "
                        + "trusted, so creating them takes a superuser); nothing was changed. Restore as a "
                        + "superuser, or have a superuser create the extension in template1 first"
                )
            }
        }
        var notes: [String] = []
        let exists = try m.value("SELECT count(*) FROM pg_database WHERE datname = $1", [targetDatabase]) != "0"
        var objects = 0
        if exists {
            let owner =
                try m.value("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", [targetDatabase])
                ?? ""
            if !isSuper && owner != user {
                throw SealbakError(
                    .unavailable,
                    "\(target.display): database \(targetDatabase) belongs to \(owner); role \(user) cannot replace "
                        + "it. Restore as its owner or a superuser, or choose another target database"
                )
            }
            objects = try countObjects()
            if objects > 0 && !options.replace {
                throw SealbakError(
                    .targetExists,
                    "\(target.display): database \(targetDatabase) is not empty (\(objects) object(s)); nothing was "
                        + "changed. Give --replace to replace it once the restored copy has verified, or restore into "
                        + "another database"
                )
            }
            let sessions = try otherSessions(m, targetDatabase)
            if sessions > 0 {
                guard options.terminateConnections else {
                    throw SealbakError(
                        .unavailable,
                        "\(target.display): database \(targetDatabase) has \(sessions) open session(s); it cannot be "
                            + "replaced while in use. Stop the application (a before-restore hook can), or give "
                            + "--terminate-connections to end them just before the swap; nothing was changed"
                    )
                }
                notes.append(
                    "\(sessions) open session(s) on \(targetDatabase) will be ended just before the swap "
                        + "(--terminate-connections)"
                )
            }
        }
        for e in facts.requiredExtensions where available[e.name] != e.version {
            notes.append("the target installs \(e.name) \(available[e.name] ?? "?"), the source had \(e.version)")
        }
        if m.serverVersionNumber / 10000 < facts.serverMajor {
            notes.append(
                "the target server (\(version)) is older than the source (\(facts.serverVersion)); pg_restore may "
                    + "reject newer syntax"
            )
        }
        let host = hostResources(m)
        let limits = try ServerLimits.read(m)
        let (jobs, directory) = parallelJobs(host: host, server: limits, notes: &notes)
        let sizing = SessionSizing.choose(
            facts: facts,
            server: limits,
            host: host,
            userLimit: options.restoreMemory,
            jobs: jobs
        )
        return RestorePlan(
            component: component,
            facts: facts,
            target: target,
            targetDatabase: targetDatabase,
            targetServerVersion: version,
            targetExists: exists,
            targetObjects: objects,
            restoreTool: tool,
            availableExtensions: available,
            sizing: sizing,
            parallelDirectory: directory,
            notes: notes
        )
    }

    /// An upper bound of the dump's size: the tables without their indexes, plus the text form of every vector
    /// (COPY writes each float as up to 12 characters where the table holds 4 bytes), plus 256 MiB.
    static func dumpBound(_ facts: DatabaseFacts) -> Int64 {
        let heap = max(0, facts.totalBytes - (facts.indexes ?? []).reduce(0) { $0 + $1.bytes })
        var rows: [String: Int64] = [:]
        for t in facts.tables { rows[t.schema + "\u{0}" + t.name] = t.rows }
        let vectorText = facts.vectorColumns.reduce(Int64(0)) { sum, v in
            sum + max(0, rows[v.schema + "\u{0}" + v.table] ?? 0) * Int64(v.dimensions ?? 0) * 12
        }
        return heap + vectorText + (256 << 20)
    }

    /// How many pg_restore sessions, and where the dump's temporary copy goes (nil: one session from the archive).
    ///
    /// pg_restore -j needs a seekable file; the staging database and the rename keep the restore all or nothing
    /// without --single-transaction. That copy is the database in plaintext on this machine's disk, so sealbak makes
    /// it only when asked (`--restore-jobs N`); by default it says what asking would save (when the estimate says that
    /// loading and building side by side saves more than writing the copy costs) and restores straight from the
    /// archive. The copy also needs room in the temporary folder.
    private func parallelJobs(host: HostResources?, server: ServerLimits, notes: inout [String]) -> (Int, String?) {
        let need = Self.dumpBound(facts)
        var jobs = max(1, options.jobs ?? min(4, max(1, host?.cpus ?? 1)))
        if options.jobs == nil, jobs > 1 {
            let one = SessionSizing.choose(
                facts: facts,
                server: server,
                host: host,
                userLimit: options.restoreMemory,
                jobs: 1
            ).estimatedSeconds
            let many = SessionSizing.choose(
                facts: facts,
                server: server,
                host: host,
                userLimit: options.restoreMemory,
                jobs: jobs
            ).estimatedSeconds
            let copy = Double(need) / SessionSizing.temporaryCopyBytesPerSecond
            if one - many <= copy + 1 {
                if one >= 10 {
                    notes.append(
                        "one pg_restore session: \(jobs) in parallel would save about "
                            + "\(formatSeconds(max(0, one - many))), not more than writing a temporary copy of the "
                            + "dump takes (about \(formatSeconds(copy))); --restore-jobs \(jobs) forces it"
                    )
                }
            } else {
                notes.append(
                    "one pg_restore session, straight from the archive: --restore-jobs \(jobs) would save about "
                        + "\(formatSeconds(one - many - copy)) by loading and indexing side by side, but needs a "
                        + "temporary plaintext copy of the verified dump in \(temporaryDirectory) (owner-only, "
                        + "removed afterwards), which sealbak writes only when asked"
                )
            }
            jobs = 1
        }
        guard jobs > 1 else { return (1, nil) }
        let dir = temporaryDirectory
        var st = statvfs()
        guard statvfs(dir, &st) == 0 else {
            notes.append(
                "cannot use \(dir) for a temporary copy of the dump (\(String(cString: strerror(errno)))); restoring "
                    + "with one session straight from the archive"
            )
            return (1, nil)
        }
        let free = Int64(st.f_bavail) * Int64(st.f_frsize)
        guard free >= need else {
            notes.append(
                "\(dir) has \(formatBytes(UInt64(max(0, free)))) free, a temporary copy of the dump needs up to "
                    + "\(formatBytes(UInt64(need))); restoring with one session straight from the archive (set TMPDIR "
                    + "elsewhere for a parallel restore)"
            )
            return (1, nil)
        }
        return (jobs, dir)
    }

    /// The memory and cores of the server's host: read by the server itself when the role may read files
    /// (`pg_read_file`, superusers and pg_read_server_files), else this machine's when the server is on it
    /// (a Unix socket or a loopback address); nil when sealbak cannot tell.
    private func hostResources(_ m: Connection) -> HostResources? {
        if let text = try? m.value("SELECT pg_read_file('/proc/meminfo')") {
            let cpus =
                (try? m.value("SELECT count(*) FROM regexp_matches(pg_read_file('/proc/cpuinfo'), '^processor', 'gm')"))
                .flatMap { $0.flatMap { Int($0) } }
            if let h = HostResources.meminfo(
                text,
                cpus: cpus.flatMap { $0 > 0 ? $0 : nil },
                source: "the server's /proc/meminfo"
            ) {
                return h
            }
        }
        if isLocalHost(target), let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
            return HostResources.meminfo(
                text,
                cpus: ProcessInfo.processInfo.activeProcessorCount,
                source: "/proc/meminfo of this machine, where the server runs"
            )
        }
        return nil
    }

    /// Databases next to the target left by a restore that was killed: `TARGET_sbk_new_…` (staged, never put in
    /// place; no session uses them) and `TARGET_sbk_old_…` (what a committed restore replaced, or kept on purpose).
    package func leftovers() throws(SealbakError) -> (staged: [String], replaced: [String]) {
        let m = try maintenance()
        let prefix = shortened(targetDatabase)
        let like = prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "_", with: "\\_")
            .replacingOccurrences(of: "%", with: "\\%")
        let rows = try m.query(
            """
            SELECT d.datname, (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname) FROM pg_database d
            WHERE d.datname LIKE $1 OR d.datname LIKE $2 ORDER BY 1
            """,
            [like + "\\_sbk\\_new\\_%", like + "\\_sbk\\_old\\_%"]
        )
        var staged: [String] = []
        var replaced: [String] = []
        for r in rows {
            guard let name = r[0], r[1] == "0" else { continue }
            if name.hasPrefix(prefix + "_sbk_new_") { staged.append(name) } else { replaced.append(name) }
        }
        return (staged, replaced)
    }

    /// The folder for a parallel restore's temporary copy of the dump.
    private var temporaryDirectory: String {
        options.temporaryDirectory ?? ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "/tmp"
    }

    /// Temporary copies of dumps left by killed parallel restores (of any target: they hold plaintext).
    package var temporaryLeftovers: [String] { TemporaryDump.leftovers(in: temporaryDirectory) }

    /// Removes those copies; returns what was removed.
    package func removeTemporaryLeftovers() -> [String] { TemporaryDump.removeLeftovers(in: temporaryDirectory) }

    /// Drops staged databases of killed restores of this target; returns what was dropped.
    package func dropStagedLeftovers() -> [String] {
        guard let (staged, _) = try? leftovers(), !staged.isEmpty, let m = try? maintenance() else { return [] }
        var out: [String] = []
        for name in staged where (try? Self.drop(m, name)) != nil { out.append(name) }
        return out
    }

    /// User objects in the target database (extension members not counted); the connection is closed on return.
    private func countObjects() throws(SealbakError) -> Int {
        let t = try Connection(target)
        return Int(
            try t.value(
                """
                SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND \(DatabaseFacts.userSchemaFilter))
                     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                         WHERE \(DatabaseFacts.userSchemaFilter)
                       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                       AND d.objid = p.oid AND d.deptype = 'e'))
                     + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')
                     + (SELECT count(*) FROM pg_largeobject_metadata)
                """
            ) ?? "0"
        ) ?? 0
    }

    /// Sessions on `database` other than ours, waiting up to 3 s for ones that are just closing (a backend
    /// outlives its client's disconnect by a moment).
    private func otherSessions(_ m: Connection, _ database: String) throws(SealbakError) -> Int {
        var n = 0
        for attempt in 0..<15 {
            n =
                Int(
                    try m.value(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                        [database]
                    ) ?? "0"
                ) ?? 0
            if n == 0 { return 0 }
            if attempt < 14 { usleep(200_000) }
        }
        return n
    }

    /// Restores into a new database and verifies it; the target is not touched until `commit`.
    /// `feed` writes the dump's verified bytes into the given sink.
    package func stage(
        _ plan: RestorePlan,
        feed: (any EntrySink) throws -> Void,
        log: @escaping (String) -> Void
    ) throws -> StagedRestore {
        let m = try maintenance()
        let suffix = hex(SystemRandom().bytes(4))
        let temp = shortened(targetDatabase) + "_sbk_new_" + suffix
        let staged = StagedRestore(restorer: self, plan: plan, maintenance: m, temp: temp, suffix: suffix, log: log)
        try createDatabase(m, temp, log: log)
        staged.created = true
        let tempParams = target.with(database: temp)
        // Extensions first (those in public, whose schema exists in a new database): a missing or broken
        // extension fails here, with its own message, before any data moves.
        do {
            let t = try Connection(tempParams)
            for e in facts.requiredExtensions where e.schema == "public" {
                try t.query("CREATE EXTENSION IF NOT EXISTS \(quoteIdentifier(e.name)) WITH SCHEMA public")
            }
        }
        log(
            "restoring \(component.name) into \(temp) with "
                + "\(plan.restoreTool.path)\(plan.parallelDirectory == nil ? "" : " -j \(plan.sizing.jobs)")"
        )
        var args = ["--exit-on-error", "--no-password", "--dbname=" + dbnameConninfo(temp)]
        args += plan.parallelDirectory == nil ? ["--single-transaction"] : ["--jobs=\(plan.sizing.jobs)"]
        if options.noOwner { args += ["--no-owner", "--no-privileges"] }
        var env = tempParams.childEnvironment(base: ProcessInfo.processInfo.environment)
        let sessionOptions = self.sessionOptions(plan.sizing, tempParams, inherited: env["PGOPTIONS"] ?? "", log: log)
        if !sessionOptions.isEmpty { env["PGOPTIONS"] = sessionOptions }
        if let dir = plan.parallelDirectory {
            // The verified dump goes into an owner-only folder first; pg_restore -j reads it from there.
            let copy = try TemporaryDump(in: dir)
            staged.temporaryDump = copy
            defer {
                copy.remove()
                staged.temporaryDump = nil
            }
            let sink = try FileSink(copy.file, index: component.entryIndex)
            try feed(sink)
            try sink.close()
            // In its own process group, so that an interrupt ends pg_restore's worker processes too (a negative
            // pid for kill(2) names the group).
            let p = try Subprocess(
                executable: plan.restoreTool.path,
                arguments: args + [copy.file],
                environment: env,
                stdin: .null,
                stdout: .null,
                processGroup: true
            )
            staged.pidBox.pid = -p.pid
            if !p.wait().succeeded { throw restoreFailed(p) }
            staged.pidBox.pid = nil
            if !p.errorOutput.isEmpty { log("pg_restore said: \(p.errorOutput)") }
        } else {
            let p = try Subprocess(
                executable: plan.restoreTool.path,
                arguments: args,
                environment: env,
                stdin: .pipe,
                stdout: .null
            )
            staged.pidBox.pid = p.pid
            let sink = PipeSink(p, index: component.entryIndex)
            do {
                try feed(sink)
            } catch {
                p.kill()
                p.wait()
                if sink.brokenPipe { throw restoreFailed(p) }
                throw error
            }
            p.closeStdin()
            if !p.wait().succeeded || sink.brokenPipe { throw restoreFailed(p) }
            staged.pidBox.pid = nil
            if !p.errorOutput.isEmpty { log("pg_restore said: \(p.errorOutput)") }
        }

        let report = try verify(tempParams)
        if !report.mismatches.isEmpty {
            throw SealbakError(
                .restoreMismatch,
                "the restored \(component.name) does not match the archive; it was rolled back and \(target.display) "
                    + "is unchanged:\n\(report.table)"
            )
        }
        staged.report = report
        return staged
    }

    /// Swaps a verified database into place, keeping the replaced one as `NAME_sbk_old_…` until `finalize`.
    fileprivate func commit(_ s: StagedRestore) throws(SealbakError) {
        let m = s.maintenance
        // Swap names in one transaction: the target is either the old database or the verified new one.
        _ = try otherSessions(m, s.temp)
        if s.plan.targetExists {
            if options.terminateConnections {
                let n = try m.query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> "
                        + "pg_backend_pid()",
                    [targetDatabase]
                ).count
                if n > 0 { s.log("ended \(n) session(s) on \(targetDatabase) (--terminate-connections)") }
            }
            let sessions = try otherSessions(m, targetDatabase)
            if sessions > 0 {
                throw SealbakError(
                    .unavailable,
                    "\(target.display): database \(targetDatabase) has \(sessions) open session(s); it cannot be "
                        + "replaced while in use. Stop the application or give --terminate-connections"
                )
            }
            let old = shortened(targetDatabase) + "_sbk_old_" + s.suffix
            do {
                try m.query("BEGIN")
                try m.query("ALTER DATABASE \(quoteIdentifier(targetDatabase)) RENAME TO \(quoteIdentifier(old))")
                try m.query("ALTER DATABASE \(quoteIdentifier(s.temp)) RENAME TO \(quoteIdentifier(targetDatabase))")
                try m.query("COMMIT")
            } catch {
                _ = try? m.query("ROLLBACK")
                throw SealbakError(
                    error.code,
                    "cannot swap the restored database into place: \(error.message); \(target.display) is unchanged"
                )
            }
            s.old = old
        } else {
            try m.query("ALTER DATABASE \(quoteIdentifier(s.temp)) RENAME TO \(quoteIdentifier(targetDatabase))")
        }
        s.committed = true
    }

    /// Puts the replaced database back under its name (the restored one gets its temporary name back and is dropped).
    fileprivate func rollback(_ s: StagedRestore) throws(SealbakError) {
        let m = s.maintenance
        _ = try? m.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            [targetDatabase]
        )
        if let old = s.old {
            try m.query("BEGIN")
            do {
                try m.query("ALTER DATABASE \(quoteIdentifier(targetDatabase)) RENAME TO \(quoteIdentifier(s.temp))")
                try m.query("ALTER DATABASE \(quoteIdentifier(old)) RENAME TO \(quoteIdentifier(targetDatabase))")
                try m.query("COMMIT")
            } catch {
                _ = try? m.query("ROLLBACK")
                throw error
            }
            s.old = nil
        } else {
            try m.query("ALTER DATABASE \(quoteIdentifier(targetDatabase)) RENAME TO \(quoteIdentifier(s.temp))")
        }
        s.committed = false
    }

    /// Drops the replaced database unless `--keep-replaced`; returns its kept name.
    fileprivate func finalize(_ s: StagedRestore) -> String? {
        guard let old = s.old else { return nil }
        if options.keepReplaced { return old }
        do { try Self.drop(s.maintenance, old) } catch {
            s.log("warning: the replaced database is kept as \(old) because dropping it failed: \(error.message)")
            return old
        }
        return nil
    }

    /// Drops `database`, ending its sessions (a killed pg_restore's backend may linger a moment) and retrying for 3 s.
    static func drop(_ m: Connection, _ database: String) throws(SealbakError) {
        var last: SealbakError? = nil
        for _ in 0..<10 {
            do {
                try m.query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> "
                        + "pg_backend_pid()",
                    [database]
                )
                try m.query("DROP DATABASE IF EXISTS \(quoteIdentifier(database))")
                return
            } catch {
                last = error
                usleep(300_000)
            }
        }
        throw last!
    }

    /// Drops `database` through a fresh connection, ending its sessions first; errors are ignored (best effort).
    static func dropQuietly(_ target: ConnectionParameters, _ database: String) {
        for db in ["postgres", "template1"] {
            guard let c = try? Connection(target.with(database: db), timeoutSeconds: 5) else { continue }
            _ = try? c.query("SET lock_timeout = '5s'")
            _ = try? c.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                [database]
            )
            for _ in 0..<10 {
                if (try? c.query("DROP DATABASE IF EXISTS \(quoteIdentifier(database))")) != nil { return }
                usleep(300_000)
            }
            return
        }
    }

    /// The `PGOPTIONS` for the restore sessions: the user's own, then the chosen settings that the server accepts.
    ///
    /// A session is opened on the staged database with exactly these options and the settings are read back
    /// from it, so the log shows what pg_restore's sessions get. A setting the server refuses (a connection
    /// pooler that forbids startup options, a value out of range) is left out, and the restore goes on with the
    /// server's own value. Fault injection: `SEALBAK_FAULT=pg-session:N:fail` sends the N-th setting with a value
    /// the server must refuse.
    private func sessionOptions(
        _ sizing: SessionSizing,
        _ params: ConnectionParameters,
        inherited: String,
        log: (String) -> Void
    ) -> String {
        var settings = sizing.settings
        guard !settings.isEmpty else {
            log("restore sessions: the server's maintenance settings suffice for \(sizing.builds.count) index build(s)")
            return ""
        }
        for i in settings.indices {
            do { try Fault.point("pg-session", settings[i].name) } catch {
                settings[i].value = "refused-by-injected-fault"
            }
        }
        func text(_ s: [(name: String, value: String)]) -> String {
            ([inherited] + s.map { "-c \($0.name)=\($0.value)" }).filter { !$0.isEmpty }.joined(separator: " ")
        }
        /// The settings as a session opened with these options reports them; nil (and the reason) when refused.
        func open(_ s: [(name: String, value: String)]) -> Result<[String], SealbakError> {
            var p = params
            p["options"] = text(s)
            do {
                let c = try Connection(p)
                var got: [String] = []
                for x in s { got.append("\(x.name)=\(try c.value("SELECT current_setting($1)", [x.name]) ?? "?")") }
                return .success(got)
            } catch { return .failure(error) }
        }
        var accepted = settings
        var readBack: [String]
        switch open(settings) {
        case .success(let got): readBack = got
        case .failure:
            accepted = []
            readBack = []
            for x in settings {
                switch open([x]) {
                case .success: accepted.append(x)
                case .failure(let e):
                    log(
                        "warning: the server refused \(x.name)=\(x.value) for the restore sessions (\(e.message)); "
                            + "restoring with the server's own value"
                    )
                }
            }
            if case .success(let got) = open(accepted), !accepted.isEmpty { readBack = got }
        }
        guard !accepted.isEmpty else { return inherited }
        let why =
            sizing.builds.max { $0.memory < $1.memory }.map {
                "; the largest index build, \($0.display) (\($0.method)), needs about \(formatBytes(UInt64($0.memory)))"
            } ?? ""
        log(
            "restore sessions: \(readBack.joined(separator: ", ")) (read back from a session opened with the options "
                + "pg_restore gets)\(why); limit \(formatBytes(UInt64(sizing.budget))) from \(sizing.budgetSource)"
        )
        return text(accepted)
    }

    private func restoreFailed(_ p: Subprocess) -> SealbakError {
        // Ended by the interrupt handler: its cleanups run and it exits with 128 + the signal; wait for that.
        if Interrupts.pending { return SealbakError(.interrupted, "pg_restore was ended by an interrupt") }
        let said = p.errorOutput
        return SealbakError(
            .toolFailed,
            "pg_restore failed for \(component.name) (\(p.wait()))\(said.isEmpty ? "" : ": " + said). The restore "
                + "was rolled back; \(target.display) is unchanged"
        )
    }

    private func createDatabase(_ m: Connection, _ name: String, log: (String) -> Void) throws(SealbakError) {
        let base =
            "CREATE DATABASE \(quoteIdentifier(name)) TEMPLATE template0 ENCODING \(quoteLiteral(facts.encoding))"
        do {
            try m.query(
                base
                    + (facts.collate.isEmpty
                        ? "" : " LC_COLLATE \(quoteLiteral(facts.collate)) LC_CTYPE \(quoteLiteral(facts.ctype))")
            )
        } catch {
            // The source's locale may not exist on the target: fall back to the server's default, and say so.
            log(
                "note: the source collation \(facts.collate)/\(facts.ctype) is not usable here (\(error.message)); "
                    + "using the target's default"
            )
            try m.query(base)
        }
    }

    /// Recounts rows, large objects and extension versions in the restored database.
    private func verify(_ params: ConnectionParameters) throws(SealbakError) -> RestoreReport {
        let c = try Connection(params)
        var checks: [RestoreCheck] = []
        let present = Set(
            try c.query(
                """
                SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r'
                """
            ).map { ($0[0] ?? "") + "\u{0}" + ($0[1] ?? "") }
        )
        for t in facts.tables {
            guard present.contains(t.schema + "\u{0}" + t.name) else {
                checks.append(RestoreCheck(what: t.display, expected: "\(t.rows) rows", actual: "missing", ok: false))
                continue
            }
            let n = try DatabaseFacts.count(t, c)
            checks.append(
                RestoreCheck(what: t.display, expected: "\(t.rows) rows", actual: "\(n) rows", ok: n == t.rows)
            )
        }
        let lo = Int64(try c.value("SELECT count(*) FROM pg_largeobject_metadata") ?? "0") ?? 0
        checks.append(
            RestoreCheck(
                what: "large objects",
                expected: String(facts.largeObjects),
                actual: String(lo),
                ok: lo == facts.largeObjects
            )
        )
        var installed: [String: String] = [:]
        for row in try c.query("SELECT extname, extversion FROM pg_extension") {
            installed[row[0] ?? ""] = row[1] ?? ""
        }
        for e in facts.requiredExtensions {
            let v = installed[e.name]
            // A newer extension version is an upgrade the target chose; a missing one is a failure.
            checks.append(
                RestoreCheck(what: "extension \(e.name)", expected: e.version, actual: v ?? "missing", ok: v != nil)
            )
        }
        return RestoreReport(checks: checks, replacedKeptAs: nil)
    }
}

/// A restored and verified database under its temporary name. Until `commit`, dropping it (`abandon`, or an
/// interrupt) leaves the target exactly as it was; several components are all staged before any is committed.
package final class StagedRestore {
    fileprivate let restorer: PostgresRestorer
    fileprivate let plan: RestorePlan
    fileprivate let maintenance: Connection
    fileprivate let temp: String
    fileprivate let suffix: String
    fileprivate let log: (String) -> Void
    fileprivate let pidBox = PidBox()
    /// The dump's temporary copy of a parallel restore (removed by an interrupt too).
    fileprivate var temporaryDump: TemporaryDump? {
        get { dumpBox.value }
        set { dumpBox.value = newValue }
    }
    private let dumpBox = DumpBox()
    fileprivate var created = false
    fileprivate var committed = false
    fileprivate var old: String?
    fileprivate var report = RestoreReport(checks: [], replacedKeptAs: nil)
    private var token: Int?

    fileprivate init(
        restorer: PostgresRestorer,
        plan: RestorePlan,
        maintenance: Connection,
        temp: String,
        suffix: String,
        log: @escaping (String) -> Void
    ) {
        self.restorer = restorer
        self.plan = plan
        self.maintenance = maintenance
        self.temp = temp
        self.suffix = suffix
        self.log = log
        // An interruption (SIGINT, SIGTERM, SIGHUP) drops the new database from the signal-handling thread,
        // through its own connection, before the process exits.
        let target = plan.target
        let box = pidBox
        let dumps = dumpBox
        token = Interrupts.register {
            if let pid = box.pid { _ = Glibc.kill(pid, SIGKILL) }
            dumps.value?.remove()
            PostgresRestorer.dropQuietly(target, temp)
        }
    }

    /// Renames the verified database into place (the old target renamed aside in the same transaction).
    package func commit() throws(SealbakError) {
        try restorer.commit(self)
    }

    /// Undoes `commit`: the replaced database is back under its name.
    package func rollback() throws(SealbakError) {
        try restorer.rollback(self)
    }

    /// Drops the replaced database (or keeps it with `--keep-replaced`); returns the kept name.
    package func finalize() -> String? {
        restorer.finalize(self)
    }

    package var checkReport: RestoreReport { report }
    /// The temporary database the restore went into (for declared checks).
    package var stagedParameters: ConnectionParameters { plan.target.with(database: temp) }

    /// Drops the temporary database unless committed.
    package func abandon() {
        if let token { Interrupts.unregister(token) }
        token = nil
        guard created && !committed else { return }
        created = false
        do { try PostgresRestorer.drop(maintenance, temp) } catch {
            log("warning: could not drop the temporary database \(temp): \(error.message). Drop it by hand")
        }
    }

    deinit { abandon() }
}

/// The pid of a running restore tool (pg_restore, the mariadb client), for the interrupt handler (set once, read
/// from another thread; guarded by its lock). A negative pid names a process group, as for kill(2).
package final class PidBox: Sendable {
    private let value = Locked<pid_t?>(nil)
    package init() {}
    package var pid: pid_t? {
        get { value.current }
        set { value.withLock { $0 = newValue } }
    }
}

/// The temporary copy of a dump for pg_restore -j: `DIR/sealbak-pgrestore-PID-RANDOM/dump`, the folder owner-only.
/// Copies left by killed restores (their process is gone) are removed when the next one starts.
/// `remove` may run on the signal-handling thread; it is idempotent.
final class TemporaryDump: Sendable {
    let folder: String
    var file: String { folder + "/dump" }

    init(in dir: String) throws(SealbakError) {
        Self.removeLeftovers(in: dir)
        let path = dir + "/sealbak-pgrestore-\(getpid())-" + hex(SystemRandom().bytes(4))
        guard mkdir(path, 0o700) == 0 else {
            throw SealbakError.io("cannot create a folder for the dump's temporary copy", path: path, errno: errno)
        }
        folder = path
    }

    func remove() {
        unlink(file)
        rmdir(folder)
    }

    /// `sealbak-pgrestore-PID-…` folders in `dir` whose process no longer runs.
    static func leftovers(in dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().compactMap { name in
            let parts = name.split(separator: "-")
            guard name.hasPrefix("sealbak-pgrestore-"), parts.count == 4, let pid = pid_t(parts[2]), pid != getpid(),
                Glibc.kill(pid, 0) != 0, errno == ESRCH
            else { return nil }
            return dir + "/" + name
        }
    }

    /// Removes the leftovers of killed restores; returns the folders removed.
    @discardableResult
    static func removeLeftovers(in dir: String) -> [String] {
        leftovers(in: dir).filter { folder in
            unlink(folder + "/dump")
            return rmdir(folder) == 0
        }
    }
}

/// The temporary dump of a running restore, for the interrupt handler (guarded by its lock).
final class DumpBox: Sendable {
    private let dump = Locked<TemporaryDump?>(nil)
    var value: TemporaryDump? {
        get { dump.current }
        set { dump.withLock { $0 = newValue } }
    }
}

/// Writes verified plaintext of one entry into a file.
final class FileSink: EntrySink {
    private let fd: Int32
    private let path: String
    private let index: Int
    private var closed = false

    init(_ path: String, index: Int) throws(SealbakError) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw SealbakError.io("cannot create the dump's temporary copy", path: path, errno: errno)
        }
        self.path = path
        self.index = index
    }

    func wants(_ i: Int) -> Bool { i == index }
    func begin(_ i: Int) throws {}

    func write(_ i: Int, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { b in Glibc.write(fd, b.baseAddress! + off, b.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SealbakError.io("cannot write the dump's temporary copy", path: path, errno: errno)
            }
            off += n
        }
    }

    func end(_ i: Int, size: UInt64, sha256: [UInt8]) throws {}

    func close() throws(SealbakError) {
        guard !closed else { return }
        closed = true
        if Glibc.close(fd) != 0 {
            throw SealbakError.io("cannot write the dump's temporary copy", path: path, errno: errno)
        }
    }

    deinit { if !closed { _ = Glibc.close(fd) } }
}

/// Feeds verified plaintext of one entry into a child's standard input.
final class PipeSink: EntrySink {
    private let process: Subprocess
    private let index: Int
    private(set) var brokenPipe = false

    init(_ p: Subprocess, index: Int) {
        process = p
        self.index = index
    }

    func wants(_ i: Int) -> Bool { i == index }
    func begin(_ i: Int) throws {}

    func write(_ i: Int, _ bytes: [UInt8]) throws {
        let ok = try process.writeInput(bytes.span.bytes)
        if !ok {
            brokenPipe = true
            throw SealbakError(.toolFailed, "pg_restore stopped reading")
        }
    }

    func end(_ i: Int, size: UInt64, sha256: [UInt8]) throws {}
}

/// At most 40 bytes of a database name (whole characters), so that a suffix keeps it within 63 bytes.
func shortened(_ name: String) -> String {
    var out = ""
    for ch in name {
        if out.utf8.count + ch.utf8.count > 40 { break }
        out.append(ch)
    }
    return out
}
