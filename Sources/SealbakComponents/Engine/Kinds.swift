import Foundation
import SealbakFormat
import SealbakIO
import SealbakMySQL
import SealbakPostgres

/// The registry of component kinds: what each kind checks on a restored copy, and how restore units are made
/// for the components of a manifest.
package enum ComponentKinds {
    /// Every kind this sealbak packs and restores.
    package static let names = [
        "postgres", "mysql", "docs", "config", "vectors", "chroma", "qdrant", "command", "sqlite",
    ]

    /// Finds each kind's components in a manifest for a restore. A new kind adds its finder here.
    static let restoreFinders: [@Sendable (RestoreContext) throws -> [RestoreCandidate]] = [
        PostgresUnit.candidates, MySQLUnit.candidates, FolderUnit.candidates, CommandUnit.candidates,
        SQLiteUnit.candidates, LooseEntries.candidates,
    ]

    /// What a folder kind checks on its staged copy before it is put in place (problems; empty when fine).
    static func restoreCheck(_ kind: String) -> (@Sendable (String, Manifest, TreeComponent) -> [String])? {
        switch kind {
        case "config": ConfigComponent.checkRestored
        case "vectors": VectorsComponent.checkRestored
        case "chroma": ChromaComponent.checkRestored
        case "qdrant": QdrantComponent.checkRestored
        default: nil
        }
    }
}

// MARK: capture sources

/// A folder or file component (docs, config, vectors, chroma, qdrant): its entries are the files of a walk.
package final class FolderSource: CaptureSource {
    package let kind: String
    package let name: String
    package let path: String
    package let allowMissing: Bool
    package var sourceDescription: String { URL(fileURLWithPath: path).standardizedFileURL.path }
    private let add: (inout PackPlan) throws -> String
    private var chromaSnapshot: ChromaComponent.Snapshot?

    private init(
        kind: String,
        name: String,
        path: String,
        allowMissing: Bool,
        add: @escaping (inout PackPlan) throws -> String
    ) {
        self.kind = kind
        self.name = name
        self.path = path
        self.allowMissing = allowMissing
        self.add = add
    }

    package static func docs(_ spec: DocsSpec, allowMissing: Bool = false) -> FolderSource {
        FolderSource(kind: "docs", name: spec.name, path: spec.path, allowMissing: allowMissing) { plan in
            let s = try DocsComponent.add(spec, to: &plan)
            return
                "\(s.files) files, \(formatBytes(s.bytes)) from \(spec.path); \(s.excluded) left out by the ignore "
                + "rules"
        }
    }

    package static func config(_ spec: ConfigSpec, allowMissing: Bool = false) -> FolderSource {
        FolderSource(kind: "config", name: spec.name, path: spec.path, allowMissing: allowMissing) { plan in
            let s = try ConfigComponent.add(spec, to: &plan)
            var line = "\(s.configs) config file(s) of \(s.files), \(s.secretKeys) secret-looking key(s)"
            if spec.redactSecrets { line += ", \(s.redacted) value(s) redacted" }
            for b in s.broken { line += "\nwarning: \(spec.name)/\(b) (packed anyway, flagged as broken)" }
            return line
        }
    }

    package static func vectors(name: String, path: String, allowMissing: Bool = false) -> FolderSource {
        FolderSource(kind: "vectors", name: name, path: path, allowMissing: allowMissing) { plan in
            let (_, s) = try VectorsComponent.add(argument: name + "=" + path, to: &plan)
            var line = "\(s.vectorFiles) vector file(s), \(s.vectors) vectors, \(formatBytes(s.bytes))"
            for b in s.broken { line += "\nwarning: \(b) (packed anyway, flagged as broken)" }
            return line
        }
    }

    package static func chroma(name: String, path: String, allowMissing: Bool = false) -> FolderSource {
        // Weak: the closure is owned by the source it reports the snapshot to.
        weak var me: FolderSource?
        let source = FolderSource(kind: "chroma", name: name, path: path, allowMissing: allowMissing) { plan in
            let (_, collections, snapshot) = try ChromaComponent.add(argument: name + "=" + path, to: &plan)
            me?.chromaSnapshot = snapshot
            let list = collections.map {
                "\($0.name) (\($0.embeddings) embeddings, dimension \($0.dimension.map(String.init) ?? "?"))"
            }.joined(separator: ", ")
            return "Chroma store, online backup of chroma.sqlite3; \(collections.count) collection(s): \(list)"
        }
        me = source
        return source
    }

    package static func qdrant(name: String, path: String, allowMissing: Bool = false) -> FolderSource {
        FolderSource(kind: "qdrant", name: name, path: path, allowMissing: allowMissing) { plan in
            let (_, collections) = try QdrantComponent.add(argument: name + "=" + path, to: &plan)
            return
                "Qdrant, \(collections.count) collection(s): "
                + "\(collections.map { "\($0.name) (\(formatBytes($0.bytes)))" }.joined(separator: ", "))"
        }
    }

    package func prepare(into plan: inout PackPlan, log: EngineLog) throws -> String {
        let first = plan.entries.count
        let line = try add(&plan)
        // A single file restores to its own path: say so on the root entry.
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
            first < plan.entries.count
        {
            var m = plan.entries[first].metadata
            m[ComponentKeys.shape] = "file"
            plan.setMetadata(m, at: first)
        }
        return line
    }

    package func skippedEntry(reason: String, mtime: Int64) -> ManifestEntry {
        var m = Component.metadata(kind: kind, name: name, source: sourceDescription)
        m[ComponentKeys.status] = "skipped"
        m[ComponentKeys.reason] = reason
        return ManifestEntry(kind: .directory, name: "\(kind)/\(name)", mode: 0o755, mtimeSeconds: mtime, metadata: m)
    }

    package func close() {
        chromaSnapshot?.remove()
        chromaSnapshot = nil
    }
}

/// A PostgreSQL database: counted in an exported snapshot that `pg_dump --snapshot` then dumps.
package final class PostgresSource: CaptureSource {
    package let spec: PostgresSourceSpec
    package let allowMissing: Bool
    private let finder: ToolFinder
    private var snapshot: PostgresSnapshot?
    package var kind: String { "postgres" }
    package var name: String { spec.name }
    package var sourceDescription: String { spec.parameters.display }

    package init(_ spec: PostgresSourceSpec, finder: ToolFinder, allowMissing: Bool) {
        self.spec = spec
        self.finder = finder
        self.allowMissing = allowMissing
    }

    package func prepare(into plan: inout PackPlan, log: EngineLog) throws -> String {
        let snap = try PostgresSnapshot(spec, finder: finder)
        snapshot = snap
        try plan.add(entry: snap.entry(mtime: Int64(Date().timeIntervalSince1970)))
        let f = snap.facts
        return
            "PostgreSQL \(f.serverVersion), \(f.tables.count) tables, \(f.totalRows) rows counted in the dump's "
            + "snapshot; dumping with \(f.dumpTool)"
    }

    package func stream(for index: Int) throws -> (any CaptureStream)? {
        guard let snapshot else { throw SealbakError(.internalError, "\(name) was not prepared") }
        let dump = try snapshot.startDump()
        return ClosureStream { out in
            try dump.read(into: &out)
        } onEnd: {
            snapshot.close()
        }
    }

    package func skippedEntry(reason: String, mtime: Int64) -> ManifestEntry {
        PostgresComponent.skippedEntry(name: name, source: sourceDescription, reason: reason, mtime: mtime)
    }

    package func close() {
        snapshot?.close()
    }
}

/// A stream over a read function, with an action at its end.
package final class ClosureStream: CaptureStream {
    private let body: (inout OutputSpan<UInt8>) throws -> Void
    private let onEnd: () -> Void
    package init(_ body: @escaping (inout OutputSpan<UInt8>) throws -> Void, onEnd: @escaping () -> Void = {}) {
        self.body = body
        self.onEnd = onEnd
    }

    /// A stream of bytes already in memory.
    package convenience init(bytes: [UInt8]) {
        var offset = 0
        self.init { out in offset += out.appendPrefix(of: bytes.span.extracting(offset...)) }
    }

    package func read(into out: inout OutputSpan<UInt8>) throws {
        let before = out.count
        try body(&out)
        if out.count == before { onEnd() }
    }
}

// MARK: restore units

/// A PostgreSQL component restored into a new database, verified, then swapped in by renaming.
package final class PostgresUnit: RestoreUnit {
    package let component: PostgresComponent
    private let restorer: PostgresRestorer
    private let checks: [SQLCheck]
    private var plan_: RestorePlan?
    private var staged: StagedRestore?
    private var committed = false
    package var kind: String { "postgres" }
    package var name: String { component.name }
    package var entries: [Int] { [component.entryIndex] }
    package var reversible: Bool { true }

    package init(
        _ component: PostgresComponent,
        target: ConnectionParameters,
        options: PostgresRestoreOptions,
        checks: [SQLCheck]
    ) throws(SealbakError) {
        self.component = component
        restorer = try PostgresRestorer(component: component, target: target, options: options)
        self.checks = checks
    }

    package func plan() throws -> [String] {
        let p = try restorer.plan()
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
            let got = try c.run(on: staged.stagedParameters)
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
                "ROLLBACK OF \(name) FAILED: \(error.message); the previous database may be kept under a _sbk_old_ "
                    + "name: rename it back by hand"
            )
        }
    }

    package func finalize(log: EngineLog) -> [String] {
        guard committed, let staged, let plan_ else { return [] }
        let kept = staged.finalize()
        let f = plan_.facts
        var line =
            staged.checkReport.table
            + "\nrestored \(name) into \(plan_.target.display): \(f.tables.count) tables, \(f.totalRows) rows and "
            + "\(f.largeObjects) large objects verified"
        if let kept { line += "; the replaced database is kept as \(kept)" }
        return [line]
    }

    package func abandon(log: EngineLog) {
        if !committed { staged?.abandon() }
        staged = nil
    }

    package var leftovers: [String] {
        let copies = restorer.temporaryLeftovers.map { "temporary copy of a dump \($0)" }
        guard let (staged, replaced) = try? restorer.leftovers() else { return copies }
        return staged.map { "database \($0)" }
            + replaced.map { "database \($0) (replaced by an earlier restore; never dropped automatically)" } + copies
    }

    package func recover(log: EngineLog) {
        for folder in restorer.removeTemporaryLeftovers() {
            log.warning("removed \(folder), the temporary copy of a dump left by a killed parallel restore")
        }
        for name in restorer.dropStagedLeftovers() {
            log.warning(
                "dropped the database \(name), left by a killed restore of \(component.name) (never put in place)"
            )
        }
        if let (_, replaced) = try? restorer.leftovers(), !replaced.isEmpty {
            log.warning(
                "the database(s) \(replaced.joined(separator: ", ")) hold what an earlier restore replaced "
                    + "(--keep-replaced, or a restore killed after its swap); drop them when no longer needed"
            )
        }
    }
}

/// A SQL assertion from a plan, run on the staged database before the swap: the first column of the first row
/// must equal `expect` (e.g. `select count(*) from chunks where document_id is null` → `0`).
package struct SQLCheck: Sendable, Equatable {
    package var sql: String
    package var expect: String
    package init(sql: String, expect: String) {
        self.sql = sql
        self.expect = expect
    }
    package var display: String { "\"\(sql)\" = \(expect)" }

    func run(on params: ConnectionParameters) throws(SealbakError) -> String? {
        let c = try Connection(params)
        do { return try c.value(sql) } catch {
            throw SealbakError(
                .restoreMismatch,
                "the check \(display) failed to run: \(error.message); it was rolled back and nothing was changed"
            )
        }
    }
}

/// Entries outside any component (PATH arguments, `--stdin-name`), grouped by their first path component.
package enum LooseEntries {
    package static func groups(in manifest: Manifest) -> [TreeComponent] {
        var owned = Set<Int>()
        for t in TreeComponent.all(in: manifest) { owned.formUnion(t.indices) }
        for (i, e) in manifest.entries.enumerated()
        where e.metadata[ComponentKeys.kind] != nil || e.metadata[ComponentKeys.outcomeMarker] != nil {
            owned.insert(i)
        }
        if let outcome = manifest.metadata[ComponentKeys.outcomeEntry],
            let i = manifest.entries.firstIndex(where: { $0.name == outcome })
        {
            owned.insert(i)
        }
        var order: [String] = []
        var groups: [String: [Int]] = [:]
        for (i, e) in manifest.entries.enumerated() where !owned.contains(i) {
            let top = String(decoding: e.name.utf8.split(separator: UInt8(ascii: "/")).first ?? [], as: UTF8.self)
            if groups[top] == nil { order.append(top) }
            groups[top, default: []].append(i)
        }
        return order.map { top in
            let idx = groups[top]!
            let root = idx.first { manifest.entries[$0].name == top }
            let files = idx.filter { manifest.entries[$0].kind == .file || manifest.entries[$0].kind == .stream }.count
            var t = TreeComponent(
                kind: "files",
                name: top,
                source: "",
                rootIndex: root ?? idx[0],
                rootName: top,
                indices: idx,
                fileEntries: files,
                files: files,
                bytes: 0,
                recordsFiles: false
            )
            if let root, manifest.entries[root].kind != .directory {
                t.isFile = true
            }
            return t
        }
    }
}

/// Pack flags that modify the plan's components (flags win or add).
package struct PlanOverrides: Sendable {
    package var exclude: [String] = []
    package var include: [String] = []
    package var noDefaultExcludes = false
    package var redactSecrets = false
    package var postgresPasswordFile: String?
    package var allowMissing: Set<String> = []
    package var pgBin: [String] = []
    package var mysqlPasswordFile: String?
    package var mysqlBin: [String] = []
    package init() {}
}

extension BackupPlan {
    /// One capture source per component of the plan.
    package func captureSources(_ flags: PlanOverrides) throws -> [any CaptureSource] {
        let finder = ToolFinder(extra: flags.pgBin + pgBin)
        return try components.map { c throws -> any CaptureSource in
            let missing = c.allowMissing || flags.allowMissing.contains(c.name)
            switch c.kind {
            case .docs:
                var d = DocsSpec(name: c.name, path: c.path!)
                d.excludes = c.exclude + flags.exclude
                d.includes = c.include + flags.include
                d.defaultExcludes = c.defaultExcludes && !flags.noDefaultExcludes
                return FolderSource.docs(d, allowMissing: missing)
            case .config:
                var cs = ConfigSpec(name: c.name, path: c.path!)
                cs.redactSecrets = c.redactSecrets || flags.redactSecrets
                return FolderSource.config(cs, allowMissing: missing)
            case .vectors: return FolderSource.vectors(name: c.name, path: c.path!, allowMissing: missing)
            case .chroma: return FolderSource.chroma(name: c.name, path: c.path!, allowMissing: missing)
            case .qdrant: return FolderSource.qdrant(name: c.name, path: c.path!, allowMissing: missing)
            case .postgres:
                let spec = try PostgresSourceSpec(
                    name: c.name,
                    url: c.url!,
                    passwordFile: c.passwordFile ?? flags.postgresPasswordFile
                )
                return PostgresSource(spec, finder: finder, allowMissing: missing)
            case .mysql:
                return MySQLSource(
                    try MySQLSourceSpec(
                        name: c.name,
                        url: c.url!,
                        passwordFile: c.passwordFile ?? flags.mysqlPasswordFile
                    ),
                    finder: MySQLToolFinder(extra: flags.mysqlBin),
                    allowMissing: missing
                )
            case .command:
                return CommandSource(
                    name: c.name,
                    dump: c.dump!,
                    restore: c.restoreCommand,
                    check: c.check,
                    allowEmpty: c.allowEmpty,
                    allowMissing: missing
                )
            case .sqlite: return SQLiteSource(name: c.name, path: c.path!, allowMissing: missing)
            }
        }
    }
}

extension PostgresUnit {
    static func candidates(_ ctx: RestoreContext) throws -> [RestoreCandidate] {
        let r = ctx.request
        let pgs = try PostgresComponent.all(in: ctx.manifest, archive: ctx.archive)
        // Skipped and failed components are never restored: their targets may be given (a plan names them all),
        // but are not required.
        let targets = try RestoreTargets.postgres(pgs.filter { ctx.selected($0.name) }, r) {
            $0.skippedReason == nil && ctx.failed[$0.name] == nil
        }
        return pgs.map { c in
            var options = PostgresRestoreOptions()
            options.replace = r.replace
            options.keepReplaced = r.keepReplaced
            options.noOwner = r.noOwner
            options.terminateConnections = r.terminateConnections
            options.restoreMemory = r.restoreMemory
            options.jobs = r.restoreJobs
            options.finder = ToolFinder(extra: r.pgBin + (r.plan?.pgBin ?? []))
            let checks = r.plan?.components.first { $0.name == c.name }?.sqlChecks ?? []
            return RestoreCandidate(
                name: c.name,
                kind: "postgres",
                status: ctx.status(c.name, skipped: c.skippedReason != nil),
                reason: c.skippedReason ?? ctx.failed[c.name]?.reason,
                make: {
                    guard let target = targets[c.name] else {
                        throw SealbakError(.usage, "no target for PostgreSQL component \(c.name)")
                    }
                    return try PostgresUnit(c, target: target, options: options, checks: checks)
                }
            )
        }
    }
}

extension FolderUnit {
    static func candidates(_ ctx: RestoreContext) throws -> [RestoreCandidate] {
        let r = ctx.request
        let trees = TreeComponent.all(in: ctx.manifest)
        let live = trees.filter { ctx.status($0.name, skipped: $0.status == .skipped) == .ok && ctx.selected($0.name) }
        let targets = try RestoreTargets.folders(live, r, others: ComponentKinds.fileTargetNames(ctx.manifest))
        return trees.map { t in
            var options = Options()
            options.replace = r.replace
            options.keepReplaced = r.keepReplaced
            options.confirm = r.dryRun ? nil : r.confirm
            options.checks = r.plan?.components.first { $0.name == t.name }?.commandChecks ?? []
            return RestoreCandidate(
                name: t.name,
                kind: t.kind,
                status: ctx.status(t.name, skipped: t.status == .skipped),
                reason: t.reason ?? ctx.failed[t.name]?.reason,
                make: {
                    FolderUnit(t, target: targets[t.name]!, manifest: ctx.manifest, options: options, peek: ctx.peek)
                }
            )
        }
    }
}

extension CommandUnit {
    static func candidates(_ ctx: RestoreContext) throws -> [RestoreCandidate] {
        CommandComponent.all(in: ctx.manifest).map { c in
            let spec = ctx.request.plan?.components.first { $0.name == c.name && $0.kind == .command }
            return RestoreCandidate(
                name: c.name,
                kind: "command",
                status: ctx.status(c.name, skipped: c.skippedReason != nil),
                reason: c.skippedReason ?? ctx.failed[c.name]?.reason,
                make: {
                    try CommandUnit(c, spec: spec)
                }
            )
        }
    }
}

extension LooseEntries {
    /// Entries outside components go to `--to DIR`; without it they are named in a note.
    static func candidates(_ ctx: RestoreContext) throws -> [RestoreCandidate] {
        let r = ctx.request
        return groups(in: ctx.manifest).map { g in
            guard let to = r.to else {
                let n = g.indices.count
                return RestoreCandidate(
                    name: g.name,
                    kind: "files",
                    status: .ok,
                    reason: nil,
                    make: nil,
                    note:
                        "\(displayName(g.name)) (\(n) entr\(n == 1 ? "y" : "ies") outside any component) is not "
                        + "restored: give --to DIR to restore it into DIR/\(displayName(g.name)), or use sealbak "
                        + "unpack"
                )
            }
            var options = FolderUnit.Options()
            options.replace = r.replace
            options.keepReplaced = r.keepReplaced
            options.confirm = r.dryRun ? nil : r.confirm
            return RestoreCandidate(
                name: g.name,
                kind: "files",
                status: .ok,
                reason: nil,
                make: {
                    FolderUnit(g, target: to + "/" + g.name, manifest: ctx.manifest, options: options, peek: nil)
                }
            )
        }
    }
}
