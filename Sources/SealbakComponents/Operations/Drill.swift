import Foundation
import SealbakIO
import SealbakMySQL
import SealbakPostgres
import SealbakS3

/// `sealbak drill`: the restore drill, automated. The newest archive of the plan is restored into scratch
/// targets (databases under temporary names on the usual servers, folders and files under a scratch folder),
/// with every check of a real restore and the plan's own checks; the comparison is printed and recorded, and
/// the scratch targets are removed, also when the drill fails. The plan's restore hooks and health check are
/// not run (they act on the live application); command components are left out (their restore command has no
/// scratch target).
package struct Drill {
    package let plan: BackupPlan
    package let log: EngineLog
    /// Where scratch folders go (default: the state folder).
    package var scratchRoot: String

    package init(plan: BackupPlan, log: EngineLog) {
        self.plan = plan
        self.log = log
        scratchRoot = plan.operations.stateDir
    }

    /// The scratch targets of one drill.
    package struct Scratch: Sendable {
        package var folder: String
        /// component → scratch database.
        package var databases: [String: String] = [:]
        package var request: RestoreRequest
        package var leftOut: [String] = []
    }

    /// The request that restores every component of the plan into scratch targets.
    package func scratch(id: String) -> Scratch {
        var drillPlan = plan
        drillPlan.hooks.beforeRestore = []
        drillPlan.hooks.afterRestore = []
        drillPlan.healthCheck = nil
        var r = RestoreRequest()
        r.plan = drillPlan
        let folder = scratchRoot + "/drill-" + id
        r.to = folder + "/files"
        var s = Scratch(folder: folder, request: r)
        for c in plan.components {
            switch c.kind {
            case .command:
                s.leftOut.append(
                    "command component \(c.name) is not drilled (its restore command has no scratch target)"
                )
                continue
            case .postgres, .mysql:
                let db = Self.scratchDatabase(for: c, id: id)
                s.databases[c.name] = db
                s.request.databaseNames[c.name] = db
            default: break
            }
            s.request.only.append(c.name)
        }
        return s
    }

    static func scratchDatabase(for c: BackupPlan.Component, id: String) -> String {
        let base: String?
        if c.kind == .postgres {
            base = (try? ConnectionParameters(c.restoreURL ?? c.url!, what: c.name))?.database
        } else {
            base = (try? MySQLParameters(c.restoreURL ?? c.url!, what: c.name))?.database
        }
        return String((base ?? c.name).prefix(40)) + "_sbk_drill_" + id
    }

    /// Removes the scratch folder and drops the scratch databases; returns what could not be removed.
    package func remove(_ s: Scratch) -> [String] {
        var problems: [String] = []
        if FileManager.default.fileExists(atPath: s.folder) {
            do { try FileManager.default.removeItem(atPath: s.folder) } catch {
                problems.append("cannot remove \(s.folder): \(error.localizedDescription)")
            }
        }
        for (name, db) in s.databases.sorted(by: { $0.key < $1.key }) {
            guard let c = plan.components.first(where: { $0.name == name }) else { continue }
            do {
                if c.kind == .postgres {
                    var p = try ConnectionParameters(c.restoreURL ?? c.url!, what: "the url of \(name)")
                    if let f = c.passwordFile, p["password"] == nil {
                        p["password"] = try PostgresSourceSpec.readPasswordFile(f)
                    }
                    let conn = try Connection(p.with(database: "postgres"))
                    _ = try conn.query("DROP DATABASE IF EXISTS \(quoteIdentifier(db)) WITH (FORCE)")
                } else {
                    var p = try MySQLParameters(c.restoreURL ?? c.url!, what: "the url of \(name)")
                    try p.fillPassword(file: c.passwordFile)
                    let conn = try MySQLConnection(p.with(database: nil))
                    _ = try conn.query("DROP DATABASE IF EXISTS \(quoteMySQLIdentifier(db))")
                }
                log.info("dropped the scratch database \(db)")
            } catch {
                problems.append("cannot drop the scratch database \(db) of \(name): \(error.message)")
            }
        }
        return problems
    }

    /// The newest archive of the plan in its destination.
    package func newestArchive(client: S3Client?) throws(SealbakError) -> String {
        guard let location = plan.operations.location else {
            throw SealbakError(
                .usage,
                "\(plan.file): the plan has no destination:; give the archive to drill with --archive"
            )
        }
        let items = try Catalog.list(location, client: client).filter {
            $0.header != nil && plan.operations.matches($0.name)
        }
        guard let newest = items.max(by: { ($0.time?.unix ?? 0, $0.name) < ($1.time?.unix ?? 0, $1.name) }) else {
            throw SealbakError(
                .notFound,
                "no archive of \(plan.operations.planName) in \(location) (names like "
                    + "\(plan.operations.namePattern)); run sealbak run first"
            )
        }
        return newest.location
    }

    /// The drill: lock, scratch targets, restore and checks, removal, record. Returns the record (in the history)
    /// and the exit status.
    package func perform(archive: String, restore: (RestoreRequest) throws -> [String]) -> (RunRecord, Int32) {
        var record = RunRecord(kind: .drill, plan: plan.operations.planName, start: Date().timeIntervalSince1970)
        record.archive = archive
        let history = RunHistory(stateDir: plan.operations.stateDir)
        let lock: PlanLock
        do {
            try StateDir.create(plan.operations.stateDir)
            lock = try PlanLock(stateDir: plan.operations.stateDir)
        } catch let busy as PlanLock.Busy {
            record.status = .busy
            record.error = busy.message
            record.exitCode = NightlyRun.busyExitStatus
            record.end = Date().timeIntervalSince1970
            try? history.append(record)
            return (record, NightlyRun.busyExitStatus)
        } catch {
            record.status = .failed
            record.error = (error as? SealbakError)?.message ?? "\(error)"
            record.exitCode = (error as? SealbakError)?.code.exitStatus ?? 1
            return (record, record.exitCode!)
        }
        defer { lock.release() }
        var exit: Int32 = 0
        var s = scratch(id: record.id)
        do {
            try cleanLeftovers(history)
            // The scratch names go into the history first: a killed drill's leftovers are removed by the next one.
            record.details =
                ["scratch folder \(s.folder)"]
                + s.databases.sorted { $0.key < $1.key }.map { "scratch database \($0.value) (\($0.key))" }
            try history.append(record)
            guard !s.request.only.isEmpty else {
                throw SealbakError(
                    .usage,
                    "\(plan.file): no component of the plan can be drilled (\(s.leftOut.joined(separator: "; ")))"
                )
            }
            try Fault.point("drill", "before the restore")
            let lines = try restore(s.request)
            record.details = lines + s.leftOut
            record.status = .ok
        } catch {
            let e = error as? SealbakError ?? SealbakError(.internalError, "\(error)")
            record.status = .failed
            record.error = e.message
            exit = e.code.exitStatus
        }
        let problems = remove(s)
        if !problems.isEmpty {
            record.warnings = problems
            for p in problems { log.warning(p) }
        }
        s.databases = [:]
        record.exitCode = exit
        record.end = Date().timeIntervalSince1970
        do { try history.append(record) } catch {
            log.warning("the drill's record could not be written: \(error.message)")
        }
        _ = plan.operations.sendNotifications(record, log: log)
        return (record, exit)
    }

    /// Scratch targets of drills that were killed: their names are in their `running` records. A run may have
    /// marked such a drill interrupted first, so every interrupted drill not yet cleaned up is considered.
    private func cleanLeftovers(_ history: RunHistory) throws(SealbakError) {
        let now = Date().timeIntervalSince1970
        try history.closeInterrupted(except: nil, foundBy: "the drill of \(RunClock.iso(now))", now: now)
        let marker = "scratch targets removed by the drill of "
        let stale = try history.read().records.filter { r in
            r.kind == .drill && r.status == .interrupted && !(r.details ?? []).contains { $0.hasPrefix(marker) }
        }
        for var r in stale {
            var s = Scratch(folder: scratchRoot + "/drill-" + r.id, request: RestoreRequest())
            for line in r.details ?? [] where line.hasPrefix("scratch database ") {
                let rest = line.dropFirst("scratch database ".count)
                guard let sp = rest.firstIndex(of: " ") else { continue }
                let db = String(rest[..<sp])
                let comp = String(rest[sp...].trimmingCharacters(in: CharacterSet(charactersIn: " ()")))
                s.databases[comp] = db
            }
            log.warning("removing the scratch targets of the drill of \(RunClock.iso(r.start)), which was interrupted")
            let problems = remove(s)
            for p in problems { log.warning(p) }
            if problems.isEmpty {
                r.details = (r.details ?? []) + [marker + RunClock.iso(now)]
                try history.append(r)
            }
        }
    }
}
