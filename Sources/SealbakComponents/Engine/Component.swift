import Foundation
import SealbakFormat
import SealbakIO

/// The component engine (Spec/COMPONENTS.md): every source and target of sealbak is a component kind with one
/// capture side (`CaptureSource`) and one restore side (`RestoreUnit`), registered in `ComponentKinds`.
/// `PackJob` and `RestoreJob` drive them with one set of failure rules for every kind:
///
/// 1. A capture that fails fails the pack, naming the component and the cause; with allow-missing it is recorded
///    as skipped or failed (also mid-capture) in the archive's outcome record and never restored.
/// 2. A restore stages every selected component, checks every staged copy, then commits all; a failed commit
///    rolls back those already committed (what they replaced is kept until every commit has succeeded).
/// 3. `--dry-run` runs exactly the checks of the real run (`RestoreUnit.plan`) and gives its exit code.
/// 4. Folder restores replace only what the component holds (paths excluded when packing are kept).
/// 5. Every entry is restorable: entries outside components are restored as loose files or reported.
///
/// Adding a kind means one `CaptureSource`, one `RestoreUnit` factory in `ComponentKinds.restorers`, and its keys.

/// The kind-independent keys of Spec/COMPONENTS.md beyond those every component carries.
extension ComponentKeys {
    /// `folder` (the default) or `file`: a component made from one file restores to that file's path.
    package static let shape = "component.shape"

    /// Archive metadata: application name, description and version (`app:` in a plan).
    package static let appName = "app.name"
    package static let appDescription = "app.description"
    package static let appVersion = "app.version"
    /// Archive metadata: the name of the outcome entry (written last; Spec/COMPONENTS.md "Capture outcome").
    package static let outcomeEntry = "outcome-entry"
    /// Entry metadata that marks the outcome entry (value `1`).
    package static let outcomeMarker = "sealbak.outcome"

    /// `KIND.files`, `KIND.bytes`: counts every folder kind records on its root entry.
    package static func files(_ kind: String) -> String { kind + ".files" }
    package static func bytes(_ kind: String) -> String { kind + ".bytes" }
}

/// How a capture ended, as recorded in the outcome entry.
package enum CaptureStatus: String, Codable, Sendable {
    /// Captured completely.
    case ok
    /// Not captured: unreachable before the pack began (the manifest says so too); the entry is empty.
    case skipped
    /// Failed during the capture; its entries hold partial bytes that MUST NOT be restored.
    case failed
}

/// Where a pack writes its progress and notes (stderr in the CLI; collected in tests).
package struct EngineLog: Sendable {
    package var info: @Sendable (String) -> Void
    package var warning: @Sendable (String) -> Void

    package init(info: @escaping @Sendable (String) -> Void, warning: @escaping @Sendable (String) -> Void) {
        self.info = info
        self.warning = warning
    }

    package static let silent = EngineLog(info: { _ in }, warning: { _ in })
}

/// The data of one entry produced by a component while the archive is written (a dump's output).
package protocol CaptureStream: AnyObject {
    /// Appends the next bytes to `out` (at least one while any is left); nothing at the end. Throws when the capture
    /// failed (the tool's exit status, a timeout…).
    func read(into out: inout OutputSpan<UInt8>) throws
}

/// The pack side of a component kind.
package protocol CaptureSource: AnyObject {
    var kind: String { get }
    var name: String { get }
    /// Recorded as `component.source` (never a secret).
    var sourceDescription: String { get }
    /// Whether the plan or `--allow-missing` lets this component be skipped or fail without failing the pack.
    var allowMissing: Bool { get }

    /// Opens what the capture needs (a snapshot, a walk of the folder) and adds the component's entries to
    /// `plan`; the first added entry carries the component keys. Returns a summary line for the log.
    /// Throws when the source cannot be reached (the engine then skips it under allow-missing).
    func prepare(into plan: inout PackPlan, log: EngineLog) throws -> String

    /// The stream of entry `index` when the component produces it itself (a dump); nil when the entry's
    /// `EntrySource` in the plan says where its bytes are.
    func stream(for index: Int) throws -> (any CaptureStream)?

    /// The entry recorded when the component is skipped before the pack starts (`component.status` = `skipped`).
    func skippedEntry(reason: String, mtime: Int64) -> ManifestEntry

    /// Releases snapshots and temporary files (after the last entry was written, or on failure).
    func close()
}

extension CaptureSource {
    package func stream(for index: Int) throws -> (any CaptureStream)? { nil }
    package func close() {}
}

/// One component (or group of loose entries) being restored. The engine calls, for every unit of a restore:
/// `plan` (all units; the dry run stops here), `stage` and `check` (all units), `commit` (all units, in order),
/// then `finalize` for all, or `rollback` for the committed ones in reverse order and `abandon` for all.
package protocol RestoreUnit: AnyObject {
    var kind: String { get }
    var name: String { get }
    /// The entries whose bytes `stage` consumes (in archive order).
    var entries: [Int] { get }
    /// Whether `rollback` can undo a commit. Units that cannot (a restore command) are committed last.
    var reversible: Bool { get }

    /// Every check that can be made without changing anything; the lines describe what the restore will do.
    /// Throws exactly what the real run would throw at this point.
    func plan() throws -> [String]
    /// Restores into a temporary place (a new database, a staging folder); `feed` drives the verified bytes of
    /// `entries` into the sink it is given.
    func stage(feed: (any EntrySink) throws -> Void, log: EngineLog) throws
    /// Checks the staged copy (counts, parses, declared checks); throws `.restoreMismatch` on a difference.
    func check(log: EngineLog) throws
    /// Puts the staged copy in place, keeping what it replaces until `finalize`.
    func commit(log: EngineLog) throws
    /// Undoes `commit` (the replaced state is back). Must not throw; reports problems through `log`.
    func rollback(log: EngineLog)
    /// Drops or keeps (`--keep-replaced`) what the commit replaced; returns lines for the summary.
    func finalize(log: EngineLog) -> [String]
    /// Removes everything staged and not committed. Safe to call more than once.
    func abandon(log: EngineLog)

    /// What killed restores of this target left (staging folders, temporary databases), for the dry run.
    var leftovers: [String] { get }
    /// Finishes, undoes or removes what killed restores of this target left, saying what it did (real run only,
    /// before the plan is made).
    func recover(log: EngineLog)
}

extension RestoreUnit {
    package var leftovers: [String] { [] }
    package func recover(log: EngineLog) {}
}

/// A unit whose commit is journaled beside its target (folders, SQLite files): the next run finishes or undoes a
/// killed restore, and one completion marker for the whole restore says which.
package protocol JournaledUnit: RestoreUnit {
    var target: String { get }
    /// The file that exists once every component of the restore is in place (set by the restore job).
    var completionMarker: String { get set }
    /// Finishes or undoes what killed restores into this target left; one line per action (also in a dry run).
    func recoverLeftovers() -> [String]
}

extension FolderUnit: JournaledUnit {}
