import Foundation
import SealbakArchive
import SealbakFormat
import SealbakIO
import SealbakPostgres

/// What `sealbak restore` was asked to do (flags and plan merged by the CLI).
package struct RestoreRequest: Sendable {
    package var only: [String] = []
    /// Folder components into DIR/NAME; loose entries into DIR.
    package var to: String?
    /// `--target NAME=PATH`.
    package var folderTargets: [String: String] = [:]
    /// `--postgres-target URL|NAME=URL`.
    package var postgresTargets: [String] = []
    package var postgresPasswordFile: String?
    package var pgBin: [String] = []
    /// `--mysql-target URL|NAME=URL`, `--mysql-password-file`, `--mysql-bin`.
    package var mysqlTargets: [String] = []
    package var mysqlPasswordFile: String?
    package var mysqlBin: [String] = []
    package var replace = false
    package var keepReplaced = false
    package var noOwner = false
    package var terminateConnections = false
    /// `--restore-memory`: the most a database restore's sessions may use for index builds (bytes).
    package var restoreMemory: Int64?
    /// `--restore-jobs`: pg_restore sessions per database (nil: sealbak chooses; 1: straight from the archive).
    package var restoreJobs: Int?
    /// Replace SQLite databases even while another process holds a lock on them.
    package var ignoreLocks = false
    package var dryRun = false
    package var plan: BackupPlan?
    /// `sealbak drill`: component name → the database to restore a PostgreSQL or MySQL component into, on the
    /// server of its usual target (a scratch database).
    package var databaseNames: [String: String] = [:]
    /// Asked before replacing a non-empty folder without `replace` (nil: refuse).
    package var confirm: (@Sendable (String) -> Bool)?
    /// Told each entry's name as it starts (`entry`, with 0 bytes) and every verified chunk's size (`entry` nil).
    package var progress: (@Sendable (_ entry: String?, _ bytes: Int) -> Void)?
    package init() {}
}

/// Restores the selected components of an archive, all or nothing: every unit is planned (the dry run stops
/// there), staged and checked; then all are committed, the after-restore hooks and the health check run, and
/// only then is what they replaced dropped. A failure at any point rolls back what was committed.
package final class RestoreJob {
    private let reader: ArchiveReader
    private let archive: String
    private let request: RestoreRequest
    package private(set) var units: [any RestoreUnit] = []
    /// Things the restore leaves out, said once (skipped components, loose entries without --to).
    package private(set) var notes: [String] = []
    private var outcome: CaptureOutcome?
    private var outcomeIndex: Int?
    private var recovered = false
    /// What the job finished or undid of killed restores before planning (also in a dry run: like a file system
    /// replaying its journal, the plan must see the targets as the real run will).
    package private(set) var recoveredLeftovers: [String] = []

    package init(reader: ArchiveReader, archive: String, request: RestoreRequest) {
        self.reader = reader
        self.archive = archive
        self.request = request
    }

    private var manifest: Manifest { reader.manifest }
    private var seekable: Bool { reader.input.isSeekable }

    /// Finds the components and their targets; throws what the real run would throw for a bad selection.
    package func select() throws {
        outcomeIndex = CaptureOutcome.index(in: manifest)
        if let oi = outcomeIndex, seekable {
            let sink = CaptureSink(index: oi)
            try reader.readEntry(oi, into: sink)
            outcome = try CaptureOutcome.decode(sink.bytes)
        }
        let failed = Dictionary((outcome?.incomplete ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let peek: ((Int) throws -> [UInt8])? =
            seekable
            ? { [reader] i in
                let s = CaptureSink(index: i, limit: 1 << 20)
                try reader.readEntry(i, into: s)
                return s.bytes
            } : nil
        let context = RestoreContext(manifest: manifest, archive: archive, request: request, failed: failed, peek: peek)
        var candidates: [RestoreCandidate] = []
        for find in ComponentKinds.restoreFinders { candidates += try find(context) }
        for c in candidates where c.make == nil && (request.only.isEmpty || request.only.contains(c.name)) {
            if request.only.contains(c.name) { throw SealbakError(.usage, c.note ?? "\(c.name) cannot be restored") }
            if let note = c.note { notes.append(note) }
        }
        candidates = candidates.filter { $0.make != nil }
        let allNames = candidates.map(\.name)
        if allNames.isEmpty {
            // Only entries outside components, and no --to: say what they are and how to restore them.
            if !notes.isEmpty {
                throw SealbakError(.usage, "\(archive) holds no components: " + notes.joined(separator: "; "))
            }
            throw SealbakError(.notFound, "\(archive) holds nothing to restore")
        }
        for name in request.only where !allNames.contains(name) {
            throw SealbakError(
                .notFound,
                "\(archive): no component named \(name) (components: \(allNames.joined(separator: ", ")))"
            )
        }
        for c in candidates where request.only.isEmpty || request.only.contains(c.name) {
            guard c.status == .ok else {
                let what =
                    c.status == .skipped
                    ? "was skipped when packing" : "FAILED while it was packed (its partial data is never restored)"
                if request.only.contains(c.name) {
                    throw SealbakError(.notFound, "component \(c.name) \(what): \(c.reason ?? "no reason recorded")")
                }
                notes.append("\(c.name) is not restored: it \(what): \(c.reason ?? "no reason recorded")")
                continue
            }
            units.append(try c.make!())
        }
        if units.isEmpty {
            throw SealbakError(
                .notFound,
                "\(archive): every selected component was skipped or failed when packing; nothing to restore"
            )
        }
        if units.count > 1 && !seekable {
            throw SealbakError(
                .usage,
                "restoring several components needs a seekable archive, not a pipe; save it to a file or use --only "
                    + "NAME"
            )
        }
    }

    /// Plans every unit (nothing changes). Returns the plan's lines and the first error the real run would hit
    /// (all units are planned, so the dry run shows every problem).
    package func planAll() -> (lines: [String], error: SealbakError?) {
        // A killed restore's leftovers are finished or undone first (the dry run too: it must plan against the
        // state the real run will find, and name what it recovered).
        if !recovered {
            recovered = true
            for case let f as any JournaledUnit in units {
                for line in f.recoverLeftovers() {
                    notes.append(line)
                    recoveredLeftovers.append(line)
                }
            }
        }
        var lines: [String] = []
        var first: SealbakError?
        for u in units {
            do { lines += try u.plan() } catch {
                let e = (error as? SealbakError) ?? SealbakError(.internalError, "\(error)")
                lines.append("component \(u.name): REFUSED: \(e.message)")
                if first == nil { first = e }
            }
        }
        if let plan = request.plan {
            for h in plan.hooks.beforeRestore { lines.append("before the swap: run \(h.display)") }
            for h in plan.hooks.afterRestore { lines.append("after the swap: run \(h.display)") }
            if let hc = plan.healthCheck {
                lines.append("then health check: \(hc.display) (a failure rolls everything back)")
            }
        }
        for n in notes { lines.append("note: " + n) }
        for u in units {
            for l in u.leftovers {
                lines.append(
                    "note: \(displayName(l)) was left by a killed restore; the real run finishes, undoes or removes "
                        + "it first"
                )
            }
        }
        return (lines, first)
    }

    /// Runs the restore (after `select`; `planAll` is run again here, as the real run's first step).
    package func run(log: EngineLog) throws -> [String] {
        // A restore killed before: finish or undo it first, so that the plan sees the targets as they are.
        for u in units { u.recover(log: log) }
        let (_, planError) = planAll()
        if let planError { throw planError }
        for n in notes { log.warning("note: " + n) }
        defer { for u in units { u.abandon(log: log) } }
        // Stage every unit, then check every staged copy.
        let manifest = self.manifest
        let progress = request.progress
        for u in units {
            try u.stage(
                feed: { target in
                    let sink: any EntrySink =
                        progress.map { p in
                            ProgressTap(target, begin: { p(manifest.entries[$0].name, 0) }, bytes: { p(nil, $0) })
                        } ?? target
                    if seekable {
                        for i in u.entries { try reader.readEntry(i, into: sink) }
                    } else {
                        let capture = outcomeIndex.map { CaptureSink(index: $0) }
                        _ = try reader.readAll(into: TeeSink(sink, capture))
                        if let capture { outcome = try CaptureOutcome.decode(capture.bytes) }
                    }
                },
                log: log
            )
            if let o = outcome?.incomplete.first(where: { $0.name == u.name }) {
                throw SealbakError(
                    .notFound,
                    "component \(u.name) FAILED while it was packed; its partial data is not restored: "
                        + "\(o.reason ?? "")"
                )
            }
        }
        for u in units { try u.check(log: log) }
        // Commit: reversible units first, so that a unit that cannot be undone runs only when the rest is in place.
        let order = units.filter(\.reversible) + units.filter { !$0.reversible }
        let folders = units.compactMap { $0 as? any JournaledUnit }
        let marker = folders.first.map { f in
            (f.target as NSString).deletingLastPathComponent.nonEmpty
                + "/.sealbak-complete-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        }
        if let marker { for f in folders { f.completionMarker = marker } }
        return try Interrupts.deferring { () throws -> [String] in
            var committed: [any RestoreUnit] = []
            func undo(_ why: String) -> String {
                for u in committed.reversed() { u.rollback(log: log) }
                let irreversible = committed.filter { !$0.reversible }.map(\.name)
                var s =
                    committed.isEmpty
                    ? "nothing was changed"
                    : "rolled back \(committed.filter(\.reversible).map(\.name).joined(separator: ", "))"
                if !irreversible.isEmpty {
                    s += "; \(irreversible.joined(separator: ", ")) could not be undone (its restore command ran)"
                }
                return why + "; " + s
            }
            if let hooks = request.plan?.hooks.beforeRestore {
                for h in hooks { try Hook.run(h, "before-restore", log: log) }
            }
            for u in order {
                do {
                    try u.commit(log: log)
                    committed.append(u)
                } catch {
                    let e = (error as? SealbakError) ?? SealbakError(.internalError, "\(error)")
                    throw SealbakError(e.code, undo("\(u.name) could not be put in place: \(e.message)"))
                }
            }
            do {
                for h in request.plan?.hooks.afterRestore ?? [] { try Hook.run(h, "after-restore", log: log) }
                if let hc = request.plan?.healthCheck { try hc.wait(log: log) }
            } catch {
                let e = (error as? SealbakError) ?? SealbakError(.internalError, "\(error)")
                throw SealbakError(e.code == .toolFailed ? .restoreMismatch : e.code, undo(e.message))
            }
            if let marker {
                let fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
                if fd >= 0 {
                    fsync(fd)
                    close(fd)
                }
                fsyncDirectory((marker as NSString).deletingLastPathComponent)
            }
            var lines: [String] = []
            for u in order.reversed() { lines = u.finalize(log: log) + lines }
            if let marker { unlink(marker) }
            return lines
        }
    }

}

extension String {
    var nonEmpty: String { isEmpty ? "." : self }
}

/// What the restore finds in the manifest for each kind: one candidate per component (or group of loose
/// entries), with a way to make its unit once it is selected.
package struct RestoreCandidate {
    package var name: String
    package var kind: String
    package var status: CaptureStatus
    package var reason: String?
    /// nil when the candidate cannot be restored with these options (`note` says why).
    package var make: (() throws -> any RestoreUnit)?
    package var note: String?
}

/// What a kind's restore finder gets.
package struct RestoreContext {
    package var manifest: Manifest
    package var archive: String
    package var request: RestoreRequest
    /// Components the outcome record marks as failed or skipped, by name.
    package var failed: [String: CaptureOutcome.Component]
    /// Reads a small entry (seekable archives only).
    package var peek: ((Int) throws -> [UInt8])?

    func status(_ name: String, skipped: Bool) -> CaptureStatus { skipped ? .skipped : failed[name]?.status ?? .ok }
    func selected(_ name: String) -> Bool { request.only.isEmpty || request.only.contains(name) }
}

/// Keeps the bytes of one entry (the outcome record, a small file for the dry run).
final class CaptureSink: EntrySink {
    let index: Int
    let limit: Int
    private(set) var bytes: [UInt8] = []
    init(index: Int, limit: Int = 16 << 20) {
        self.index = index
        self.limit = limit
    }
    func wants(_ i: Int) -> Bool { i == index }
    func begin(_ i: Int) throws {}
    func write(_ i: Int, _ b: [UInt8]) throws {
        guard bytes.count + b.count <= limit else {
            throw SealbakError(.corrupt, "entry \(i) is larger than \(limit) bytes")
        }
        bytes += b
    }
    func end(_ i: Int, size: UInt64, sha256: [UInt8]) throws {}
}

/// Sends each entry to the sink that wants it.
final class TeeSink: EntrySink {
    let a: any EntrySink
    let b: (any EntrySink)?
    init(_ a: any EntrySink, _ b: (any EntrySink)?) {
        self.a = a
        self.b = b
    }
    func wants(_ i: Int) -> Bool { a.wants(i) || (b?.wants(i) ?? false) }
    func begin(_ i: Int) throws { if a.wants(i) { try a.begin(i) } else { try b?.begin(i) } }
    func write(_ i: Int, _ bytes: [UInt8]) throws {
        if a.wants(i) { try a.write(i, bytes) } else { try b?.write(i, bytes) }
    }
    func end(_ i: Int, size: UInt64, sha256: [UInt8]) throws {
        if a.wants(i) { try a.end(i, size: size, sha256: sha256) } else { try b?.end(i, size: size, sha256: sha256) }
    }
}
