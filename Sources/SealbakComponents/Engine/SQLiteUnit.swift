import CSealbakShims
import Foundation
import SealbakFormat
import SealbakIO

/// Restores an SQLite component (`kind: sqlite`) over its target file, all or nothing.
///
/// The verified entry is written into a staging folder `.BASE.sealbak-sqlite-PID-RAND` beside the target
/// (`new/BASE`), checked there (`PRAGMA integrity_check`, every recorded table recounted, the plan's SQL checks),
/// then put in place:
///
/// 1. the old database's side files (`-wal`, `-shm`, `-journal`) are moved into the staging folder (`old/BASE-wal`
///    …): a stale `-wal` or hot `-journal` left beside the new file would be replayed into it by the next
///    connection;
/// 2. the staged file and the target are exchanged with `renameat2(RENAME_EXCHANGE)` (the path never lacks a
///    database), or the staged file is moved in with `RENAME_NOREPLACE`.
///
/// The old database and its side files wait in the staging folder until `finalize` drops them, or keeps them as
/// `BASE.sbk-replaced-TIME` with `-wal`/`-shm`/`-journal` beside it (`--keep-replaced`, a pair SQLite opens as one);
/// `rollback` exchanges back and returns the side files. Each step is journaled first (`journal.json` in the
/// staging folder), so the next run finishes or undoes the commit of a killed run (`recoverLeftovers`).
///
/// A target that another process holds a lock on (SQLite's lock bytes in the file, or in the `-shm` of a WAL
/// database, which every open WAL connection holds) is refused at planning and again just before the swap,
/// unless `ignoreLocks` is set.
package final class SQLiteUnit: RestoreUnit, JournaledUnit {
    package struct Options: Sendable {
        package var replace = false
        package var keepReplaced = false
        /// Put the database in place even while another process holds a lock on the target.
        package var ignoreLocks = false
        /// SQL assertions run on the staged copy before the swap.
        package var checks: [SQLCheck] = []
        /// Asked before replacing an existing database without `replace` (the CLI asks on a terminal).
        package var confirm: (@Sendable (String) -> Bool)?
        package init() {}
    }

    /// The side files SQLite keeps beside a database, moved and kept with it.
    static let sideSuffixes = ["-wal", "-shm", "-journal"]
    static let stagingInfix = ".sealbak-sqlite-"

    package let component: SQLiteComponent.Stored
    package let target: String
    private let options: Options
    private let facts: SQLiteFacts
    package var kind: String { "sqlite" }
    package var name: String { component.name }
    package var entries: [Int] { [component.entryIndex] }
    package var reversible: Bool { true }

    private let parent: String
    private let base: String
    private var staging: String?
    private var interruptToken: Int?
    private var journal = SQLiteJournal()
    private var replaceConfirmed = false

    package init(_ component: SQLiteComponent.Stored, target: String, options: Options) throws(SealbakError) {
        guard let facts = component.facts else {
            throw SealbakError(
                .corrupt,
                "the SQLite component \(component.name) has no readable \(SQLiteKeys.facts) record"
            )
        }
        self.component = component
        self.facts = facts
        self.options = options
        self.target = target
        let p = (target as NSString).deletingLastPathComponent
        parent = p.isEmpty ? "." : p
        base = (target as NSString).lastPathComponent
    }

    deinit { abandon(log: .silent) }

    private var stagedPath: String { staging! + "/new/" + base }
    private func aside(_ suffix: String) -> String { staging! + "/old/" + base + suffix }

    // MARK: plan

    package func plan() throws -> [String] {
        var lines = [
            "component \(displayName(name)): sqlite database from \(displayName(component.source)), "
                + "\(facts.tables.count) tables, \(facts.totalRows) rows, user_version \(facts.userVersion), journal "
                + "mode \(facts.journalMode), \(formatBytes(facts.bytes))"
        ]
        guard !base.isEmpty, base != ".", base != ".." else {
            throw SealbakError(
                .usage,
                "\(target) cannot be the target of the SQLite component \(name): give a file path"
            )
        }
        try checkParentWritable()
        var st = stat()
        let exists = lstat(target, &st) == 0
        let sides = Self.sideSuffixes.filter { Self.exists(target + $0) }
        let sideText =
            sides.isEmpty ? "" : "; its \(sides.map { base + $0 }.joined(separator: ", ")) move aside with it"
        if exists {
            guard st.st_mode & S_IFMT == S_IFREG else {
                throw SealbakError(
                    .targetExists,
                    "\(target) exists and is not a regular file; \(name) was not restored. Move it away or choose "
                        + "another target"
                )
            }
            if !options.replace && !replaceConfirmed {
                if let confirm = options.confirm,
                    confirm(
                        "\(target) exists. Replace it with the database \(name) from the archive (the old one is "
                            + "kept until the restore has succeeded)?"
                    )
                {
                    replaceConfirmed = true
                } else {
                    throw SealbakError(
                        .targetExists,
                        "\(target) exists; nothing was changed. Give --replace (the old database and its -wal/-shm "
                            + "are kept aside until every component is in place, and put back on failure) or choose "
                            + "another target"
                    )
                }
            }
            let keptText = options.keepReplaced ? "; the old database is kept as \(base).sbk-replaced-…" : ""
            lines.append("  target: \(displayName(target)) (exists: will be replaced\(sideText)\(keptText))")
        } else {
            let strays = sides.map { base + $0 }.joined(separator: ", ")
            let strayText = sides.isEmpty ? "" : "; the stray \(strays) of a missing database move aside"
            lines.append("  target: \(displayName(target)) (will be created\(strayText))")
        }
        if let held = SQLiteLocks.holder(target) {
            guard options.ignoreLocks else { throw SQLiteLocks.refusal(target, held, name: name) }
            lines.append(
                "  WARNING: \(held.description) on \(displayName(target)); --ignore-locks: it is replaced anyway "
                    + "(that process goes on using the old file)"
            )
        }
        lines.append(
            "  check before the swap: integrity_check, \(facts.tables.filter { $0.rows != nil }.count) table counts"
        )
        for c in options.checks { lines.append("  check before the swap: \(c.display)") }
        return lines
    }

    private func checkParentWritable() throws(SealbakError) {
        var dir = parent
        while true {
            var st = stat()
            if stat(dir, &st) == 0 {
                guard st.st_mode & S_IFMT == S_IFDIR else {
                    throw SealbakError(.targetExists, "\(dir) is not a directory; \(name) cannot be restored below it")
                }
                guard access(dir, W_OK) == 0 else {
                    throw SealbakError.io("cannot restore \(name) into", path: dir, errno: EACCES)
                }
                return
            }
            let up = (dir as NSString).deletingLastPathComponent
            if up.isEmpty || up == dir { return }
            dir = up
        }
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    // MARK: stage and check

    package func stage(feed: (any EntrySink) throws -> Void, log: EngineLog) throws {
        for line in Self.recoverLeftovers(in: parent, base: base) { log.warning(line) }
        do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
            throw SealbakError(.io, "cannot create \(parent) for \(name): \(error.localizedDescription)")
        }
        let s =
            parent + "/." + base + Self.stagingInfix
            + "\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        if mkdir(s, 0o700) != 0 { throw SealbakError.io("cannot create the staging folder", path: s, errno: errno) }
        staging = s
        interruptToken = Interrupts.register { try? FileManager.default.removeItem(atPath: s) }
        for d in [s + "/new", s + "/old"] where mkdir(d, 0o700) != 0 {
            throw SealbakError.io("cannot create the staging folder", path: d, errno: errno)
        }
        journal = SQLiteJournal(
            target: target,
            staged: stagedPath,
            oldDir: s + "/old",
            keepReplaced: options.keepReplaced
        )
        try writeJournal()
        // The new file gets the old one's mode (and owner, when sealbak may set it); 0600 when there is none.
        var st = stat()
        let old = stat(target, &st) == 0 ? st : nil
        let sink = try StagedFileSink(
            path: stagedPath,
            index: component.entryIndex,
            mode: old.map { mode_t($0.st_mode & 0o7777) } ?? 0o600
        )
        do {
            try feed(sink)
            try sink.finish()
        } catch {
            sink.close()
            throw error
        }
        if let old, getuid() == 0 { _ = chown(stagedPath, old.st_uid, old.st_gid) }
        fsyncDirectory(s + "/new")
    }

    package func check(log: EngineLog) throws {
        guard staging != nil else { return }
        let db = try SQLiteDatabase.immutable(stagedPath, what: "the restored \(name)")
        var problems: [String] = []
        do {
            if let (count, first) = try db.integrityProblem() {
                problems.append("integrity_check found \(count) problem(s), the first: \(first)")
            }
        } catch {
            problems.append("integrity_check failed: \(error.message)")
        }
        if problems.isEmpty {
            let now = try db.facts()
            let counted = Dictionary(now.tables.map { ($0.name, $0.rows) }, uniquingKeysWith: { a, _ in a })
            for t in facts.tables {
                guard let have = counted[t.name] else {
                    problems.append("table \(t.name) is missing")
                    continue
                }
                if have != t.rows {
                    problems.append(
                        "table \(t.name): \(have.map(String.init) ?? "virtual") rows, recorded "
                            + "\(t.rows.map(String.init) ?? "virtual")"
                    )
                }
            }
            for t in now.tables where !facts.tables.contains(where: { $0.name == t.name }) {
                problems.append("table \(t.name) was not recorded")
            }
            if now.userVersion != facts.userVersion {
                problems.append("user_version \(now.userVersion), recorded \(facts.userVersion)")
            }
            if now.applicationID != facts.applicationID {
                problems.append("application_id \(now.applicationID), recorded \(facts.applicationID)")
            }
        }
        if !problems.isEmpty {
            throw SealbakError(
                .restoreMismatch,
                "the restored SQLite database \(name) does not match what was packed; nothing was changed: "
                    + "\(problems.joined(separator: "; "))"
            )
        }
        log.info("\(name): integrity_check ok, \(facts.tables.count) tables and \(facts.totalRows) rows as recorded")
        for c in options.checks {
            let got: String?
            do { got = try db.value(c.sql) } catch {
                throw SealbakError(
                    .restoreMismatch,
                    "the check \(c.display) on the restored \(name) failed to run: \(error.message); nothing was "
                        + "changed"
                )
            }
            guard got == c.expect else {
                throw SealbakError(
                    .restoreMismatch,
                    "the check \(c.display) on the restored \(name) returned \(got ?? "no row"), expected "
                        + "\(c.expect); nothing was changed"
                )
            }
            log.info("\(name): check \(c.display) passed")
        }
    }

    // MARK: commit, rollback, finalize

    package func commit(log: EngineLog) throws {
        guard let staging else { throw SealbakError(.internalError, "\(name) was not staged") }
        // A process may have opened the database since the plan was made.
        if !options.ignoreLocks, let held = SQLiteLocks.holder(target) {
            throw SQLiteLocks.refusal(target, held, name: name)
        }
        var st = stat()
        journal.targetExisted = lstat(target, &st) == 0
        var sst = stat()
        if lstat(stagedPath, &sst) == 0 { journal.stagedInode = UInt64(sst.st_ino) }
        journal.phase = "committing"
        try writeJournal()
        for suffix in Self.sideSuffixes where Self.exists(target + suffix) {
            try Fault.point("restore", "move aside \(target)\(suffix)")
            if sealbak_rename_noreplace(AT_FDCWD, target + suffix, AT_FDCWD, aside(suffix)) != 0 {
                throw SealbakError.io("cannot move the old \(base)\(suffix) aside into", path: staging, errno: errno)
            }
        }
        try Fault.point("restore", "swap \(target)")
        if journal.targetExisted {
            if sealbak_exchange(stagedPath, target) != 0 {
                throw SealbakError.io("cannot swap the restored \(name) into", path: target, errno: errno)
            }
        } else {
            if sealbak_rename_noreplace(AT_FDCWD, stagedPath, AT_FDCWD, target) != 0 {
                throw SealbakError.io("cannot move the restored \(name) to", path: target, errno: errno)
            }
        }
        journal.phase = "committed"
        fsyncDirectory(parent)
    }

    package func rollback(log: EngineLog) {
        guard journal.phase == "committed" || journal.phase == "committing" else { return }
        do {
            if journal.phase == "committed" {
                try Fault.point("restore", "swap back \(target)")
                let ok =
                    journal.targetExisted
                    ? sealbak_exchange(stagedPath, target) == 0
                    : sealbak_rename_noreplace(AT_FDCWD, target, AT_FDCWD, stagedPath) == 0
                if !ok { throw SealbakError.io("cannot put the previous \(name) back at", path: target, errno: errno) }
                journal.phase = "committing"
            }
            try moveSideFilesBack()
            journal.phase = "rolled-back"
            try writeJournal()
            fsyncDirectory(parent)
        } catch {
            log.warning(
                "ROLLBACK OF \(name) FAILED: \((error as? SealbakError)?.message ?? "\(error)"). The staging folder "
                    + "\(staging ?? "?") holds the other copy; the next sealbak restore into \(parent) finishes the "
                    + "rollback"
            )
        }
    }

    private func moveSideFilesBack() throws {
        for suffix in Self.sideSuffixes where Self.exists(aside(suffix)) && !Self.exists(target + suffix) {
            try Fault.point("restore", "put back \(target)\(suffix)")
            if sealbak_rename_noreplace(AT_FDCWD, aside(suffix), AT_FDCWD, target + suffix) != 0 {
                throw SealbakError.io("cannot put \(base)\(suffix) back beside", path: target, errno: errno)
            }
        }
    }

    package func finalize(log: EngineLog) -> [String] {
        guard let staging, journal.phase == "committed" else { return [] }
        var lines = [
            "restored \(displayName(name)) into \(displayName(target)): integrity_check ok, \(facts.tables.count) "
                + "tables and \(facts.totalRows) rows verified"
        ]
        let replaced = journal.targetExisted || Self.sideSuffixes.contains { Self.exists(aside($0)) }
        if replaced && options.keepReplaced {
            let kept = parent + "/" + base + ".sbk-replaced-" + FolderUnit.stamp()
            journal.keptAs = kept
            do {
                try writeJournal()
                try Self.keep(
                    staged: stagedPath,
                    oldDir: staging + "/old",
                    base: base,
                    as: kept,
                    targetExisted: journal.targetExisted
                )
                let sideText = Self.sideSuffixes.contains { Self.exists(kept + $0) } ? " (with its side files)" : ""
                lines.append("  the replaced database is kept as \(displayName(kept))\(sideText)")
            } catch {
                log.warning(
                    "could not keep the replaced \(name) as \(kept) (\(error.message)); it is left in \(staging)"
                )
                journal.phase = "done"
                try? writeJournal()
                return lines
            }
        } else if replaced {
            let sideText = Self.sideSuffixes.contains { Self.exists(aside($0)) } ? " (its side files with it)" : ""
            lines.append("  the previous database was replaced\(sideText)")
        }
        journal.phase = "done"
        try? writeJournal()
        removeStaging()
        return lines
    }

    /// Moves the replaced database (at `staged` after the exchange) and its side files to `kept` and `kept-wal` ….
    private static func keep(
        staged: String,
        oldDir: String,
        base: String,
        as kept: String,
        targetExisted: Bool
    ) throws(SealbakError) {
        if targetExisted && exists(staged) {
            try Fault.point("restore", "keep old \(kept)")
            if sealbak_rename_noreplace(AT_FDCWD, staged, AT_FDCWD, kept) != 0 {
                throw SealbakError.io("cannot keep the replaced database as", path: kept, errno: errno)
            }
        }
        for suffix in sideSuffixes where exists(oldDir + "/" + base + suffix) {
            try Fault.point("restore", "keep old \(kept)\(suffix)")
            if sealbak_rename_noreplace(AT_FDCWD, oldDir + "/" + base + suffix, AT_FDCWD, kept + suffix) != 0 {
                throw SealbakError.io("cannot keep the replaced side file as", path: kept + suffix, errno: errno)
            }
        }
    }

    package func abandon(log: EngineLog) {
        guard staging != nil else { return }
        if journal.phase == "committing" {
            // A commit that failed half way: the side files go back before the staging folder goes.
            do { try moveSideFilesBack() } catch {
                log.warning(
                    "could not put the side files of \(name) back: "
                        + "\((error as? SealbakError)?.message ?? "\(error)"); they are in \(staging!)/old"
                )
                return
            }
        }
        if journal.phase == "committed" { return }
        removeStaging()
    }

    private func removeStaging() {
        if let interruptToken { Interrupts.unregister(interruptToken) }
        interruptToken = nil
        if let staging { try? FileManager.default.removeItem(atPath: staging) }
        staging = nil
    }

    package var completionMarker: String {
        get { journal.marker }
        set { journal.marker = newValue }
    }

    private func writeJournal() throws(SealbakError) {
        guard let staging else { return }
        try Fault.point("restore", "journal \(journal.phase) \(target)")
        try journal.write(to: staging + "/" + SQLiteJournal.fileName)
    }

    // MARK: leftovers of killed runs

    package func recover(log: EngineLog) {
        for line in recoverLeftovers() { log.warning(line) }
    }

    package func recoverLeftovers() -> [String] { Self.recoverLeftovers(in: parent, base: base) }

    package var leftovers: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).filter {
            Self.deadStaging($0, base: base)
        }.map { parent + "/" + $0 }
    }

    /// Whether `n` is the staging folder of a restore into `base` by a process that is gone.
    private static func deadStaging(_ n: String, base: String) -> Bool {
        guard n.hasPrefix("." + base + stagingInfix),
            let pid = Int32(n.dropFirst(base.count + 1 + stagingInfix.count).split(separator: "-").first ?? ""), pid > 0
        else { return false }
        return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
    }

    /// Finishes or undoes what killed restores left beside `parent/base`, then removes their staging folders.
    /// Returns one line per action, for the log.
    package static func recoverLeftovers(in parent: String, base: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return [] }
        return names.filter { deadStaging($0, base: base) }.map { recover(parent + "/" + $0) }
    }

    private static func recover(_ dir: String) -> String {
        guard let j = SQLiteJournal.read(dir + "/" + SQLiteJournal.fileName) else {
            try? FileManager.default.removeItem(atPath: dir)
            return "removed \(dir), left by a restore that was killed before it changed anything"
        }
        let base = (j.target as NSString).lastPathComponent
        var st = stat()
        let committed = j.stagedInode != 0 && lstat(j.target, &st) == 0 && UInt64(st.st_ino) == j.stagedInode
        if committed && (j.phase == "done" || (!j.marker.isEmpty && exists(j.marker))) {
            if j.keepReplaced {
                let kept = j.keptAs.isEmpty ? (j.target + ".sbk-replaced-" + FolderUnit.stamp()) : j.keptAs
                do {
                    try keep(staged: j.staged, oldDir: j.oldDir, base: base, as: kept, targetExisted: j.targetExisted)
                } catch {
                    return
                        "finished the restore into \(j.target) that was killed after it completed, but could not "
                        + "keep the replaced database (\(error.message)); it is in \(dir)"
                }
                try? FileManager.default.removeItem(atPath: dir)
                return
                    "finished the restore into \(j.target) that was killed after it completed; the replaced database "
                    + "is kept as \(kept)"
            }
            try? FileManager.default.removeItem(atPath: dir)
            return
                "finished the restore into \(j.target) that was killed after it completed (removed the replaced "
                + "database in \(dir))"
        }
        if committed {
            if let held = SQLiteLocks.holder(j.target) {
                return
                    "could not undo the killed restore into \(j.target): \(held.description); stop it and run "
                    + "sealbak restore again (\(dir) holds the previous database)"
            }
            let ok =
                j.targetExisted
                ? sealbak_exchange(j.staged, j.target) == 0
                : sealbak_rename_noreplace(AT_FDCWD, j.target, AT_FDCWD, j.staged) == 0
            guard ok else {
                return
                    "could not undo the killed restore into \(j.target) (\(String(cString: strerror(errno)))); "
                    + "\(dir) holds the previous database: move it back by hand"
            }
        }
        for suffix in sideSuffixes where exists(j.oldDir + "/" + base + suffix) {
            if exists(j.target + suffix)
                || sealbak_rename_noreplace(AT_FDCWD, j.oldDir + "/" + base + suffix, AT_FDCWD, j.target + suffix) != 0
            {
                return
                    "could not put \(base)\(suffix) back beside \(j.target) from \(dir)/old "
                    + "(\(exists(j.target + suffix) ? "a new one exists" : String(cString: strerror(errno)))); "
                    + "move it back by hand"
            }
        }
        fsyncDirectory((j.target as NSString).deletingLastPathComponent.nonEmpty)
        try? FileManager.default.removeItem(atPath: dir)
        return committed
            ? "undid the restore into \(j.target) that was killed before every component was in place: the previous "
                + "database is back with its side files (removed \(dir))"
            : "removed \(dir), left by a killed restore; \(j.target) was not changed"
    }
}

/// The commit journal of an SQLite restore, kept in its staging folder.
struct SQLiteJournal: Codable {
    static let fileName = "journal.json"
    var target = ""
    /// The staged database; after the exchange, the replaced one.
    var staged = ""
    /// Where the old database's side files wait.
    var oldDir = ""
    var stagedInode: UInt64 = 0
    var targetExisted = false
    var keepReplaced = false
    /// The name the replaced database is kept under (`--keep-replaced`), once chosen.
    var keptAs = ""
    /// staged, committing, committed, rolled-back, done
    var phase = "staged"
    var marker = ""

    init() {}
    init(target: String, staged: String, oldDir: String, keepReplaced: Bool) {
        self.target = target
        self.staged = staged
        self.oldDir = oldDir
        self.keepReplaced = keepReplaced
    }

    func write(to path: String) throws(SealbakError) {
        var j = self
        j.target = absolutePath(target)
        j.staged = absolutePath(staged)
        j.oldDir = absolutePath(oldDir)
        j.marker = absolutePath(marker)
        j.keptAs = absolutePath(keptAs)
        try writeJournalFile(j, to: path)
    }

    static func read(_ path: String) -> SQLiteJournal? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(SQLiteJournal.self, from: $0) }
    }
}

/// Writes one entry's verified plaintext into a new file (fsynced at the end).
final class StagedFileSink: EntrySink {
    let index: Int
    let path: String
    private var fd: Int32

    init(path: String, index: Int, mode: mode_t) throws(SealbakError) {
        self.path = path
        self.index = index
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd < 0 { throw SealbakError.io("cannot create", path: path, errno: errno) }
        fchmod(fd, mode)
    }

    deinit { close() }

    func wants(_ i: Int) -> Bool { i == index }
    func begin(_ i: Int) throws {}
    func write(_ i: Int, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SealbakError.io("cannot write", path: path, errno: errno)
            }
            off += n
        }
    }
    func end(_ i: Int, size: UInt64, sha256: [UInt8]) throws {}

    func finish() throws(SealbakError) {
        if fsync(fd) != 0 { throw SealbakError.io("cannot write", path: path, errno: errno) }
        close()
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}

/// SQLite's advisory locks as seen from another process (`fcntl(F_GETLK)`, the locks SQLite's unix VFS takes):
/// the lock bytes of the database file (PENDING, RESERVED and the SHARED range at 1 GiB) and of the WAL index
/// (`-shm` bytes 120…128: the WAL write, checkpoint, recover and read-mark locks, and the DMS byte that every
/// open WAL connection holds).
enum SQLiteLocks {
    struct Holder: CustomStringConvertible {
        var pid: Int32
        var write: Bool
        var description: String {
            let who = pid > 0 ? "process \(pid)" : "another process"
            return write ? "\(who) holds a write lock on it" : "\(who) has it open (it holds a read lock)"
        }
    }

    static let pendingByte: off_t = 0x4000_0000

    /// The process holding a lock on `path` (a write lock if any), or nil.
    static func holder(_ path: String) -> Holder? {
        for (file, start, length) in [(path, pendingByte, off_t(2 + 510)), (path + "-shm", off_t(120), off_t(9))] {
            // A read-lock probe conflicts with write locks only; a write-lock probe with any lock.
            if let pid = probe(file, start, length, type: F_RDLCK) { return Holder(pid: pid, write: true) }
            if let pid = probe(file, start, length, type: F_WRLCK) { return Holder(pid: pid, write: false) }
        }
        return nil
    }

    private static func probe(_ path: String, _ start: off_t, _ length: off_t, type: Int32) -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var fl = flock()
        fl.l_type = Int16(type)
        fl.l_whence = Int16(SEEK_SET)
        fl.l_start = start
        fl.l_len = length
        guard fcntl(fd, F_GETLK, &fl) == 0, fl.l_type != Int16(F_UNLCK) else { return nil }
        return fl.l_pid
    }

    static func refusal(_ target: String, _ held: Holder, name: String) -> SealbakError {
        SealbakError(
            .unavailable,
            "\(target) is in use: \(held.description); \(name) was not restored and nothing was changed. Stop the "
                + "application (a before-restore hook can), or give --ignore-locks to replace it anyway (that process "
                + "goes on using the replaced file, and what it writes there is lost)"
        )
    }
}

// MARK: registration

extension ComponentKinds {
    /// Components of kinds other than folders that take `--target NAME=PATH` (SQLite files).
    static func fileTargetNames(_ manifest: Manifest) -> Set<String> {
        Set(SQLiteComponent.all(in: manifest).map(\.name))
    }
}

extension SQLiteUnit {
    static func candidates(_ ctx: RestoreContext) throws -> [RestoreCandidate] {
        let r = ctx.request
        let all = SQLiteComponent.all(in: ctx.manifest)
        let live = all.filter { ctx.selected($0.name) && ctx.status($0.name, skipped: $0.skippedReason != nil) == .ok }
        let targets = try RestoreTargets.sqlite(live, r)
        return all.map { c in
            var options = Options()
            options.replace = r.replace
            options.keepReplaced = r.keepReplaced
            options.ignoreLocks = r.ignoreLocks
            options.confirm = r.dryRun ? nil : r.confirm
            options.checks = r.plan?.components.first { $0.name == c.name && $0.kind == .sqlite }?.sqlChecks ?? []
            return RestoreCandidate(
                name: c.name,
                kind: "sqlite",
                status: ctx.status(c.name, skipped: c.skippedReason != nil),
                reason: c.skippedReason ?? ctx.failed[c.name]?.reason,
                make: {
                    guard let target = targets[c.name] else {
                        throw SealbakError(.usage, "no target for SQLite component \(c.name)")
                    }
                    return try SQLiteUnit(c, target: target, options: options)
                }
            )
        }
    }
}

extension RestoreTargets {
    /// SQLite components go to `--target NAME=FILE`, else `--to DIR` as `DIR/NAME.sqlite3`, else the plan's
    /// `restore.path` or `path`.
    static func sqlite(
        _ components: [SQLiteComponent.Stored],
        _ r: RestoreRequest
    ) throws(SealbakError) -> [String: String] {
        var out: [String: String] = [:]
        for c in r.plan?.components ?? [] where c.kind == .sqlite && components.contains(where: { $0.name == c.name }) {
            out[c.name] = r.to.map { $0 + "/" + c.name + ".sqlite3" } ?? c.restorePath ?? c.path
        }
        for c in components {
            if let t = r.folderTargets[c.name] { out[c.name] = t }
            if out[c.name] == nil, let to = r.to { out[c.name] = to + "/" + c.name + ".sqlite3" }
            guard out[c.name] != nil else {
                throw SealbakError(
                    .usage,
                    "no target for sqlite component \(c.name): give --target \(c.name)=FILE or --to DIR (restores "
                        + "into DIR/\(c.name).sqlite3)"
                )
            }
        }
        return out
    }
}
