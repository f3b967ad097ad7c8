import Foundation
import SealbakFormat
import SealbakIO
import SealbakMySQL
import SealbakPostgres

/// A MySQL/MariaDB database: facts read first, then `mariadb-dump --single-transaction` streamed into the dump
/// entry with its rows counted on the way; the counts become the component's second entry.
package final class MySQLSource: CaptureSource {
    package let spec: MySQLSourceSpec
    package let allowMissing: Bool
    private let finder: MySQLToolFinder
    private var capture: MySQLCapture?
    private var dumpIndex = -1
    package var kind: String { "mysql" }
    package var name: String { spec.name }
    package var sourceDescription: String { spec.parameters.display }

    package init(_ spec: MySQLSourceSpec, finder: MySQLToolFinder, allowMissing: Bool) {
        self.spec = spec
        self.finder = finder
        self.allowMissing = allowMissing
    }

    package func prepare(into plan: inout PackPlan, log: EngineLog) throws -> String {
        let c = try MySQLCapture(spec, finder: finder)
        capture = c
        dumpIndex = plan.entries.count
        for e in c.entries(mtime: Int64(Date().timeIntervalSince1970)) { try plan.add(entry: e) }
        let f = c.facts
        var line =
            "\(f.flavour) \(f.serverVersion), \(f.tables.count) tables, \(f.views.count) views, \(f.triggers.count) "
            + "triggers, \(f.routines.count) routines; dumping with \(f.dumpTool), rows counted in the dump stream"
        if !f.nonTransactional.isEmpty {
            line +=
                "\nwarning: \(name): table(s) "
                + "\(f.nonTransactional.map { "\($0.name) (\($0.engine))" }.joined(separator: ", ")) are not "
                + "transactional: the dump's transaction cannot make them consistent with the rest (only a "
                + "lock or a stopped application can)"
        }
        return line
    }

    package func stream(for index: Int) throws -> (any CaptureStream)? {
        guard let capture else { throw SealbakError(.internalError, "\(name) was not prepared") }
        if index == dumpIndex {
            let dump = try capture.startDump()
            return ClosureStream { out in try dump.read(into: &out) }
        }
        // The counts entry comes after the dump: the dump stream has ended (cleanly, or the pack failed).
        guard let counts = capture.counts else {
            throw SealbakError(.toolFailed, "the dump of \(name) did not complete, so its rows were not counted")
        }
        return ClosureStream(bytes: counts.encoded())
    }

    package func skippedEntry(reason: String, mtime: Int64) -> ManifestEntry {
        MySQLComponent.skippedEntry(name: name, source: sourceDescription, reason: reason, mtime: mtime)
    }

    package func close() { capture = nil }
}

/// A MySQL/MariaDB component restored into a staging database, verified, then swapped in table by table.
package final class MySQLUnit: RestoreUnit {
    package let component: MySQLComponent
    private let restorer: MySQLRestorer
    private let checks: [SQLCheck]
    private let peek: ((Int) throws -> [UInt8])?
    private var plan_: MySQLRestorePlan?
    private var staged: MySQLStaged?
    private var committed = false
    package var kind: String { "mysql" }
    package var name: String { component.name }
    package var entries: [Int] { [component.entryIndex] + (component.countsIndex.map { [$0] } ?? []) }
    package var reversible: Bool { true }

    package init(
        _ component: MySQLComponent,
        target: MySQLParameters,
        options: MySQLRestoreOptions,
        checks: [SQLCheck],
        peek: ((Int) throws -> [UInt8])?
    ) throws(SealbakError) {
        self.component = component
        restorer = try MySQLRestorer(component: component, target: target, options: options)
        self.checks = checks
        self.peek = peek
    }

    package func plan() throws -> [String] {
        let counts = try component.countsIndex.flatMap { i in
            try peek.map { try MySQLCounts.decode($0(i), what: component.name) }
        }
        let p = try restorer.plan(counts: counts)
        plan_ = p
        var lines = p.description.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for c in checks { lines.append("  check before the swap: \(c.display)") }
        return lines
    }

    package func stage(feed: (any EntrySink) throws -> Void, log: EngineLog) throws {
        guard let plan_ else { throw SealbakError(.internalError, "\(name) was not planned") }
        staged = try restorer.stage(plan_, feed: feed, log: { log.info($0) })
    }

    package func check(log: EngineLog) throws {
        guard let staged else { return }
        for c in checks {
            let got: String?
            do { got = try MySQLConnection(staged.stagedParameters).value(c.sql) } catch {
                throw SealbakError(
                    .restoreMismatch,
                    "the check \(c.display) failed to run on the restored \(name): \(error.message); it was rolled "
                        + "back and nothing was changed"
                )
            }
            guard got == c.expect else {
                throw SealbakError(
                    .restoreMismatch,
                    "the check \(c.display) on the restored \(name) returned \(got ?? "no row"), expected "
                        + "\(c.expect); it was rolled back and nothing was changed"
                )
            }
            log.info("\(name): check \(c.display) passed")
        }
    }

    package func commit(log: EngineLog) throws {
        try staged?.commit()
        committed = true
    }

    package func rollback(log: EngineLog) {
        guard committed, let staged else { return }
        do {
            try staged.rollback()
            committed = false
        } catch {
            log.warning(
                "ROLLBACK OF \(name) FAILED: \(error.message); the previous tables may be in a _sbk_old_ database: "
                    + "move them back by hand"
            )
        }
    }

    package func finalize(log: EngineLog) -> [String] {
        guard committed, let staged, let plan_ else { return [] }
        let kept = staged.finalize()
        let f = plan_.facts
        var line =
            staged.checkReport.table
            + "\nrestored \(name) into \(plan_.target.display): \(f.tables.count) tables, "
            + "\(staged.counts?.totalRows ?? 0) rows, \(f.views.count) views, \(f.triggers.count) triggers, "
            + "\(f.routines.count) routines verified"
        if let kept { line += "; the replaced tables are kept in \(kept)" }
        return [line]
    }

    package func abandon(log: EngineLog) {
        if !committed { staged?.abandon() }
        staged = nil
    }

    package var leftovers: [String] {
        guard let (staged, replaced) = try? restorer.leftovers() else { return [] }
        return staged.map { "database \($0)" }
            + replaced.map { "database \($0) (replaced by an earlier restore; never dropped automatically)" }
    }

    package func recover(log: EngineLog) {
        for n in restorer.dropStagedLeftovers() {
            log.warning("dropped the database \(n), left by a killed restore of \(component.name) (never put in place)")
        }
        if let (_, replaced) = try? restorer.leftovers(), !replaced.isEmpty {
            log.warning(
                "the database(s) \(replaced.joined(separator: ", ")) hold what an earlier restore replaced "
                    + "(--keep-replaced, or a restore killed after its swap); drop them when no longer needed"
            )
        }
    }
}

extension MySQLUnit {
    static func candidates(_ ctx: RestoreContext) throws -> [RestoreCandidate] {
        let r = ctx.request
        let all = try MySQLComponent.all(in: ctx.manifest, archive: ctx.archive)
        let targets = try mysqlTargets(all.filter { ctx.selected($0.name) }, r) {
            $0.skippedReason == nil && ctx.failed[$0.name] == nil
        }
        return all.map { c in
            var options = MySQLRestoreOptions()
            options.replace = r.replace
            options.keepReplaced = r.keepReplaced
            options.finder = MySQLToolFinder(extra: r.mysqlBin)
            let checks = r.plan?.components.first { $0.name == c.name }?.sqlChecks ?? []
            return RestoreCandidate(
                name: c.name,
                kind: "mysql",
                status: ctx.status(c.name, skipped: c.skippedReason != nil),
                reason: c.skippedReason ?? ctx.failed[c.name]?.reason,
                make: {
                    guard let target = targets[c.name] else {
                        throw SealbakError(.usage, "no target for MySQL component \(c.name)")
                    }
                    return try MySQLUnit(c, target: target, options: options, checks: checks, peek: ctx.peek)
                }
            )
        }
    }

    /// Targets: `--mysql-target` flags win over the plan's `restore: {url}` (or the component's own url).
    static func mysqlTargets(
        _ components: [MySQLComponent],
        _ r: RestoreRequest,
        needed: (MySQLComponent) -> Bool
    ) throws(SealbakError) -> [String: MySQLParameters] {
        var out: [String: MySQLParameters] = [:]
        func parameters(_ text: String, what: String, file: String?) throws(SealbakError) -> MySQLParameters {
            var p = try MySQLParameters(text, what: what)
            try p.fillPassword(file: file ?? r.mysqlPasswordFile)
            return p
        }
        for c in r.plan?.components ?? [] where c.kind == .mysql && components.contains(where: { $0.name == c.name }) {
            out[c.name] = try parameters(
                c.restoreURL ?? c.url!,
                what: "the restore url of \(c.name) in \(r.plan!.file)",
                file: c.passwordFile
            )
        }
        var bare: [String] = []
        for t in r.mysqlTargets {
            if let eq = t.firstIndex(of: "="), let scheme = t.range(of: "://"), eq < scheme.lowerBound {
                let name = String(t[..<eq])
                guard components.contains(where: { $0.name == name }) else {
                    throw SealbakError(
                        .usage,
                        "--mysql-target \(name)=…: no selected component has that name (components: "
                            + "\(components.map(\.name).joined(separator: ", ")))"
                    )
                }
                out[name] = try parameters(
                    String(t[t.index(after: eq)...]),
                    what: "--mysql-target \(name)=URL",
                    file: nil
                )
            } else {
                bare.append(t)
            }
        }
        if bare.count > 1 { throw SealbakError(.usage, "give each --mysql-target as NAME=URL when there are several") }
        if let url = bare.first {
            var open = components.filter { out[$0.name] == nil && needed($0) }
            if open.isEmpty { open = components.filter { out[$0.name] == nil } }
            guard open.count == 1 else {
                throw SealbakError(
                    .usage,
                    "--mysql-target URL is ambiguous: \(open.count) components "
                        + "(\(open.map(\.name).joined(separator: ", "))) have no target; give NAME=URL for each or use "
                        + "--only NAME"
                )
            }
            out[open[0].name] = try parameters(url, what: "--mysql-target URL", file: nil)
        }
        for c in components where out[c.name] == nil && needed(c) {
            throw SealbakError(
                .usage,
                "no target for MySQL component \(c.name): give --mysql-target \(c.name)=mysql://USER@HOST:PORT/DATABASE"
            )
        }
        for (name, db) in r.databaseNames { if let p = out[name] { out[name] = p.with(database: db) } }
        return out
    }
}
