import CSealbakShims
import Foundation
import SealbakFormat
import SealbakIO

/// Restores a folder component (docs, config, vectors, chroma, qdrant), a single-file component, or a group of
/// loose entries, next to its target, and swaps it in.
///
/// The entries are extracted (each authenticated and checked against its SHA-256) into a staging folder
/// `.BASE.sealbak-restore-PID-RAND` beside the target. `commit` first moves the paths that were excluded when
/// packing (ignore rules, default excludes) from the old target into the staged tree, then exchanges the two with
/// `renameat2(RENAME_EXCHANGE)` (or moves the staged tree in with `RENAME_NOREPLACE`). The old tree waits in the
/// staging folder until `finalize` removes it (or keeps it with `--keep-replaced`); `rollback` exchanges back.
/// Every step is first written to a journal in the staging folder, so the next run can finish or undo the
/// commit of a killed run (`FolderUnit.recoverLeftovers`).
package final class FolderUnit: RestoreUnit {
    package struct Options: Sendable {
        package var replace = false
        package var keepReplaced = false
        /// Commands run in the staged folder before the swap (a failure rolls the restore back).
        package var checks: [CommandSpec] = []
        /// Asked before replacing a non-empty target without `replace` (the CLI asks on a terminal).
        package var confirm: (@Sendable (String) -> Bool)?
        package init() {}
    }

    package let component: TreeComponent
    package let target: String
    private let manifest: Manifest
    private let options: Options
    /// Reads a small entry (an ignore file) for the dry run's preview; nil when the archive is a pipe.
    private let peek: ((Int) throws -> [UInt8])?
    package var kind: String { component.kind }
    package var name: String { component.name }
    package var entries: [Int] { component.indices.sorted() }
    package var reversible: Bool { true }

    private let parent: String
    private let base: String
    private var staging: String?
    private var interruptToken: Int?
    private var journal = Journal()
    private var targetExisted = false

    package init(
        _ component: TreeComponent,
        target: String,
        manifest: Manifest,
        options: Options,
        peek: ((Int) throws -> [UInt8])?
    ) {
        self.component = component
        var t = target
        while t.count > 1 && t.hasSuffix("/") { t.removeLast() }
        self.target = t
        self.manifest = manifest
        self.options = options
        self.peek = peek
        let p = (t as NSString).deletingLastPathComponent
        parent = p.isEmpty ? "." : p
        base = (t as NSString).lastPathComponent
    }

    deinit { abandon(log: .silent) }

    /// Where the staged tree (or file) lies inside the staging folder.
    private var stagedPath: String {
        let tree = staging! + "/" + component.rootName
        return component.isFile && !component.fileName.isEmpty ? tree + "/" + component.fileName : tree
    }

    // MARK: plan

    package func plan() throws -> [String] {
        var lines = [
            "component \(displayName(name)): \(kind) \(component.isFile ? "file" : "tree") from "
                + "\(displayName(component.source)), \(component.files) file(s), \(formatBytes(component.bytes))"
        ]
        var st = stat()
        targetExisted = lstat(target, &st) == 0
        try checkParentWritable()
        guard targetExisted else {
            lines.append("  target: \(displayName(target)) (will be created)")
            return lines
        }
        let isDir = st.st_mode & S_IFMT == S_IFDIR
        if component.isFile {
            guard st.st_mode & S_IFMT == S_IFREG else {
                throw SealbakError(
                    .targetExists,
                    "\(target) exists and is not a regular file; \(name) was not restored. Move it away or choose "
                        + "another target"
                )
            }
        } else if !isDir {
            throw SealbakError(
                .targetExists,
                "\(target) exists and is not a directory; \(name) was not restored. Move it away or choose another "
                    + "target"
            )
        }
        let nonEmpty =
            component.isFile || !((try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []).isEmpty
        if nonEmpty && !options.replace {
            if let confirm = options.confirm,
                confirm(
                    "\(target) exists. Replace it with \(name) from the archive (what it replaces is kept until the "
                        + "restore has succeeded)?"
                )
            {
                // Confirmed on the terminal: the commit replaces it as with --replace.
            } else {
                throw SealbakError(
                    .targetExists,
                    "\(target) exists\(component.isFile ? "" : " and is not empty"); nothing was changed. Give "
                        + "--replace (the old \(component.isFile ? "file" : "folder") is kept aside until every "
                        + "component is in place, and put back on failure) or choose another target"
                )
            }
        }
        if component.isFile {
            lines.append(
                "  target: \(displayName(target)) (exists: will be "
                    + "replaced\(options.keepReplaced ? "; the old file is kept as \(base).sbk-replaced-…" : ""))"
            )
            return lines
        }
        let diff = try self.diff(ignoreText: { rel in
            // The dry run reads the archive's ignore files (the real run reads the staged copies).
            guard let peek = self.peek,
                let i = self.manifest.entries.firstIndex(where: { $0.name == self.component.rootName + "/" + rel })
            else {
                return FileManager.default.contents(atPath: self.target + "/" + rel).map { [UInt8]($0) }
            }
            return try peek(i)
        })
        lines.append(
            "  target: \(displayName(target)) (exists: \(diff.added.count) added, \(diff.replaced.count) replaced, "
                + "\(diff.deleted.count) deleted, \(diff.kept.count) kept because they were excluded when "
                + "packing\(options.keepReplaced ? "; the old folder is kept as \(base).sbk-replaced-…" : ""))"
        )
        for (label, list) in [
            ("add", diff.added), ("replace", diff.replaced), ("delete", diff.deleted), ("keep", diff.kept),
        ] {
            for p in list.prefix(20) { lines.append("    \(label) \(displayName(p))") }
            if list.count > 20 { lines.append("    … and \(list.count - 20) more to \(label)") }
        }
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

    struct Diff { var added: [String] = [], replaced: [String] = [], deleted: [String] = [], kept: [String] = [] }

    /// Compares the target with the component: what the restore adds, replaces, deletes and keeps.
    private func diff(ignoreText: @escaping (String) throws -> [UInt8]?) throws -> Diff {
        var archived: [String: EntryKind] = [:]
        let prefix = component.rootName + "/"
        for i in component.indices where manifest.entries[i].name.hasPrefix(prefix) {
            archived[String(manifest.entries[i].name.dropFirst(prefix.count))] = manifest.entries[i].kind
        }
        var d = Diff()
        let filter = try component.preserveFilter(manifest: manifest, ignoreText: ignoreText)
        var present = Set<String>()
        try walk(rel: "", filter: filter) { rel, isDir, keep in
            if !keep {
                d.kept.append(rel)
                return
            }
            present.insert(rel)
            if let k = archived[rel] {
                if !(isDir && k == .directory) { d.replaced.append(rel) }
            } else {
                d.deleted.append(rel)
            }
        }
        d.added = archived.keys.filter { !present.contains($0) }.sorted()
        // A folder that holds a kept path stays (the commit recreates it around what it keeps).
        d.deleted.removeAll { del in d.kept.contains { $0.hasPrefix(del + "/") } }
        return d
    }

    /// Walks the target below `rel`, telling `visit` whether each path is part of the component (`keep`) or was
    /// excluded when packing (not descended into).
    private func walk(rel: String, filter: (any TreeFilter)?, visit: (String, Bool, Bool) throws -> Void) throws {
        let dir = rel.isEmpty ? target : target + "/" + rel
        try filter?.enter(directory: rel, fsPath: dir)
        let names =
            (try? FileManager.default.contentsOfDirectory(atPath: dir))?.sorted { $0.utf8Precedes($1) } ?? []
        for n in names {
            let childRel = rel.isEmpty ? n : rel + "/" + n
            var st = stat()
            guard lstat(dir + "/" + n, &st) == 0 else { continue }
            let isDir = st.st_mode & S_IFMT == S_IFDIR
            let keep = filter?.keep(childRel, isDirectory: isDir) ?? true
            try visit(childRel, isDir, keep)
            if keep && isDir { try walk(rel: childRel, filter: filter, visit: visit) }
        }
    }

    // MARK: stage and check

    /// Finishes or undoes what a killed restore into this target left (before anything is planned).
    package func recover(log: EngineLog) {
        for line in FolderUnit.recoverLeftovers(in: parent, base: base) { log.warning(line) }
    }

    /// Staging folders of dead processes next to this target (for the dry run, which changes nothing).
    package var leftovers: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).filter { n in
            guard n.hasPrefix("." + base + ".sealbak-restore-"),
                let pid = Int32(
                    n.dropFirst(base.count + ".sealbak-restore-".count + 1).split(separator: "-").first ?? ""
                )
            else { return false }
            return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
        }.map { parent + "/" + $0 }
    }

    package func stage(feed: (any EntrySink) throws -> Void, log: EngineLog) throws {
        for line in FolderUnit.recoverLeftovers(in: parent, base: base) { log.warning(line) }
        do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
            throw SealbakError(.io, "cannot create \(parent) for \(name): \(error.localizedDescription)")
        }
        let s =
            parent + "/." + base
            + ".sealbak-restore-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        if mkdir(s, 0o700) != 0 { throw SealbakError.io("cannot create the staging folder", path: s, errno: errno) }
        staging = s
        interruptToken = Interrupts.register { try? FileManager.default.removeItem(atPath: s) }
        journal = Journal(target: target, staged: stagedPath, keepReplaced: options.keepReplaced)
        try writeJournal()
        let extractor = try Extractor(root: s, manifest: manifest, selected: Set(component.indices), force: false)
        do {
            try feed(extractor)
            try extractor.commit()
        } catch {
            extractor.abort()
            throw error
        }
    }

    package func check(log: EngineLog) throws {
        // The extracted tree must hold the recorded number of files (the reader already checked every checksum).
        let tree = staging! + "/" + component.rootName
        var files = 0
        var st = stat()
        if component.isFile && component.fileName.isEmpty {
            files = lstat(tree, &st) == 0 && st.st_mode & S_IFMT == S_IFREG ? 1 : 0
        } else if let walk = FileManager.default.enumerator(
            at: URL(fileURLWithPath: tree),
            includingPropertiesForKeys: [.isRegularFileKey]
        ) {
            for case let url as URL in walk
            where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true { files += 1 }
        }
        if files != component.fileEntries || (component.recordsFiles && files != component.files) {
            throw SealbakError(
                .corrupt,
                "restored \(name) holds \(files) files, the archive records \(component.files); nothing was changed"
            )
        }
        let problems = ComponentKinds.restoreCheck(kind)?(tree, manifest, component) ?? []
        if !problems.isEmpty {
            throw SealbakError(
                .restoreMismatch,
                "restored \(kind) component \(name) does not match what was packed; nothing was changed: "
                    + "\(problems.joined(separator: "; "))"
            )
        }
        for c in options.checks {
            let r = try c.run(
                workingDirectory: component.isFile ? (stagedPath as NSString).deletingLastPathComponent : stagedPath,
                environment: ["SEALBAK_STAGED": stagedPath],
                input: nil,
                what: "check of \(name)"
            )
            guard r.status.succeeded else {
                throw SealbakError(
                    .restoreMismatch,
                    "the check \(c.display) of \(name) failed "
                        + "(\(r.status))\(r.errorText.isEmpty ? "" : ": " + r.errorText); nothing was changed"
                )
            }
            log.info("\(name): check \(c.display) passed")
        }
    }

    // MARK: commit, rollback, finalize

    package func commit(log: EngineLog) throws {
        guard let staging else { throw SealbakError(.internalError, "\(name) was not staged") }
        var st = stat()
        targetExisted = lstat(target, &st) == 0
        journal.targetExisted = targetExisted
        var sst = stat()
        if lstat(stagedPath, &sst) == 0 { journal.stagedInode = UInt64(sst.st_ino) }
        // Paths excluded when packing move from the old target into the new tree, so that the swap keeps them.
        if targetExisted && !component.isFile {
            var keep: [String] = []
            let filter = try component.preserveFilter(manifest: manifest) { rel in
                FileManager.default.contents(atPath: self.stagedPath + "/" + rel).map { [UInt8]($0) }
            }
            try walk(rel: "", filter: filter) { rel, _, k in if !k { keep.append(rel) } }
            journal.preserved = keep
        }
        journal.phase = "committing"
        try writeJournal()
        for rel in journal.preserved {
            let from = target + "/" + rel
            let to = stagedPath + "/" + rel
            try FileManager.default.createDirectory(
                atPath: (to as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true
            )
            try Fault.point("restore", "keep \(rel)")
            if sealbak_rename_noreplace(AT_FDCWD, from, AT_FDCWD, to) != 0 {
                throw SealbakError.io(
                    "cannot keep \(rel) (excluded when packing) in the restored \(name): moving it failed for",
                    path: to,
                    errno: errno
                )
            }
        }
        try Fault.point("restore", "swap \(target)")
        if targetExisted {
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
        _ = staging
    }

    package func rollback(log: EngineLog) {
        guard journal.phase == "committed" || journal.phase == "committing" else { return }
        do {
            if journal.phase == "committed" {
                try Fault.point("restore", "swap back \(target)")
                let ok =
                    targetExisted
                    ? sealbak_exchange(stagedPath, target) == 0
                    : sealbak_rename_noreplace(AT_FDCWD, target, AT_FDCWD, stagedPath) == 0
                if !ok { throw SealbakError.io("cannot put the previous \(name) back at", path: target, errno: errno) }
                journal.phase = "committing"
            }
            try movePreservedBack()
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

    private func movePreservedBack() throws {
        for rel in journal.preserved.reversed() {
            let from = stagedPath + "/" + rel
            let to = target + "/" + rel
            var st = stat()
            guard lstat(from, &st) == 0, lstat(to, &st) != 0 else { continue }
            try Fault.point("restore", "put back \(rel)")
            if sealbak_rename_noreplace(AT_FDCWD, from, AT_FDCWD, to) != 0 {
                throw SealbakError.io("cannot put \(rel) back into", path: target, errno: errno)
            }
        }
    }

    package func finalize(log: EngineLog) -> [String] {
        guard let staging, journal.phase == "committed" else { return [] }
        var lines = ["restored \(displayName(name)) into \(displayName(target)): \(component.files) file(s) verified"]
        if targetExisted {
            if options.keepReplaced {
                let kept = parent + "/" + base + ".sbk-replaced-" + FolderUnit.stamp()
                if (try? Fault.point("restore", "keep old \(target)")) != nil, rename(stagedPath, kept) == 0 {
                    lines.append(
                        "  the replaced \(component.isFile ? "file" : "folder") is kept as \(displayName(kept))"
                    )
                } else {
                    log.warning(
                        "could not keep the replaced \(name) as \(kept) (\(String(cString: strerror(errno)))); it is "
                            + "left in \(staging)"
                    )
                    journal.phase = "done"
                    try? writeJournal()
                    return lines
                }
            } else if journal.preserved.isEmpty {
                lines.append("  the previous \(component.isFile ? "file" : "folder") was replaced")
            } else {
                lines.append(
                    "  the previous folder was replaced; \(journal.preserved.count) path(s) excluded when packing "
                        + "were kept"
                )
            }
        }
        journal.phase = "done"
        try? writeJournal()
        removeStaging()
        return lines
    }

    package func abandon(log: EngineLog) {
        guard staging != nil else { return }
        if journal.phase == "committing" {
            // A commit that failed half way: put the kept paths back before the staging folder goes.
            do { try movePreservedBack() } catch {
                log.warning(
                    "could not put the excluded paths of \(name) back: "
                        + "\((error as? SealbakError)?.message ?? "\(error)"); they are in \(staging!)"
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

    /// The file whose existence says that every component of this restore is in place (one file for all units,
    /// created by the restore job after the last commit): `recoverLeftovers` then finishes instead of undoing.
    package var completionMarker: String {
        get { journal.marker }
        set { journal.marker = newValue }
    }

    private func writeJournal() throws(SealbakError) {
        guard let staging else { return }
        try Fault.point("restore", "journal \(journal.phase) \(target)")
        try journal.write(to: staging + "/" + Journal.fileName)
    }

    static func stamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: Date())
    }

    // MARK: leftovers of killed runs

    /// Recovers what killed restores left beside this unit's target (before it is planned).
    package func recoverLeftovers() -> [String] { FolderUnit.recoverLeftovers(in: parent, base: base) }

    /// Finishes or undoes what a killed restore left next to `parent/base` (all targets in `parent` when `base`
    /// is nil), then removes its staging folder. Returns one line per action, for the log.
    package static func recoverLeftovers(in parent: String, base: String? = nil) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return [] }
        var out: [String] = []
        for n in names where n.hasPrefix(".sealbak-complete-") {
            // Completion markers of killed restores outlive their staging folders (which may lie in other folders);
            // they are tiny and removed after a week.
            var st = stat()
            if lstat(parent + "/" + n, &st) == 0, Int(time(nil)) - st.st_mtim.tv_sec > 7 * 86400 {
                unlink(parent + "/" + n)
            }
        }
        for n in names where n.hasPrefix(".") && n.contains(".sealbak-restore-") {
            if let base, !n.hasPrefix("." + base + ".sealbak-restore-") { continue }
            guard let pidText = n.components(separatedBy: ".sealbak-restore-").last?.split(separator: "-").first,
                let pid = Int32(pidText), pid > 0,
                pid != getpid(), kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            let dir = parent + "/" + n
            out.append(recover(dir))
        }
        return out
    }

    private static func recover(_ dir: String) -> String {
        guard let j = Journal.read(dir + "/" + Journal.fileName) else {
            try? FileManager.default.removeItem(atPath: dir)
            return "removed \(dir), left by a restore that was killed before it changed anything"
        }
        var st = stat()
        let committed = j.stagedInode != 0 && lstat(j.target, &st) == 0 && UInt64(st.st_ino) == j.stagedInode
        func putBack() -> Bool {
            for rel in j.preserved.reversed() {
                var s2 = stat()
                let from = j.staged + "/" + rel
                let to = j.target + "/" + rel
                if lstat(from, &s2) == 0 && lstat(to, &s2) != 0
                    && sealbak_rename_noreplace(AT_FDCWD, from, AT_FDCWD, to) != 0
                {
                    return false
                }
            }
            return true
        }
        if committed && (j.phase == "done" || (!j.marker.isEmpty && FileManager.default.fileExists(atPath: j.marker))) {
            if j.targetExisted && j.keepReplaced {
                let kept =
                    (j.target as NSString).deletingLastPathComponent + "/" + (j.target as NSString).lastPathComponent
                    + ".sbk-replaced-" + stamp()
                if rename(j.staged, kept) == 0 {
                    try? FileManager.default.removeItem(atPath: dir)
                    return
                        "finished the restore into \(j.target) that was killed after it completed; the replaced copy "
                        + "is kept as \(kept)"
                }
            }
            try? FileManager.default.removeItem(atPath: dir)
            return
                "finished the restore into \(j.target) that was killed after it completed (removed the replaced copy "
                + "in \(dir))"
        }
        if committed {
            let ok =
                j.targetExisted
                ? sealbak_exchange(j.staged, j.target) == 0
                : sealbak_rename_noreplace(AT_FDCWD, j.target, AT_FDCWD, j.staged) == 0
            guard ok else {
                return
                    "could not undo the killed restore into \(j.target) (\(String(cString: strerror(errno)))); "
                    + "\(dir) holds the previous copy: move it back by hand"
            }
        }
        guard putBack() else {
            return
                "could not put back the excluded paths of \(j.target) from \(dir) "
                + "(\(String(cString: strerror(errno)))); move them back by hand"
        }
        try? FileManager.default.removeItem(atPath: dir)
        return committed
            ? "undid the restore into \(j.target) that was killed before every component was in place: the previous "
                + "copy is back (removed \(dir))"
            : "removed \(dir), left by a killed restore; \(j.target) was not "
                + "changed\(j.preserved.isEmpty ? "" : " (excluded paths put back)")"
    }
}

/// The commit journal of a folder restore, kept in its staging folder.
struct Journal: Codable {
    static let fileName = "journal.json"
    var target = ""
    var staged = ""
    var stagedInode: UInt64 = 0
    var targetExisted = false
    var keepReplaced = false
    var preserved: [String] = []
    /// staged, committing, committed, rolled-back, done
    var phase = "staged"
    /// A file that exists once every component of the restore is in place and the after-restore hooks passed.
    var marker = ""

    init() {}
    init(target: String, staged: String, keepReplaced: Bool) {
        self.target = target
        self.staged = staged
        self.keepReplaced = keepReplaced
    }

    func write(to path: String) throws(SealbakError) {
        var j = self
        j.target = absolutePath(target)
        j.staged = absolutePath(staged)
        j.marker = absolutePath(marker)
        try writeJournalFile(j, to: path)
    }

    static func read(_ path: String) -> Journal? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(Journal.self, from: $0) }
    }
}

/// An absolute path for a journal: the run that recovers a killed restore may start in another working directory.
package func absolutePath(_ p: String) -> String {
    p.isEmpty || p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
}

/// Writes a restore journal durably: a temporary file, fsync, rename over the old one, fsync of the folder.
func writeJournalFile(_ journal: some Encodable, to path: String) throws(SealbakError) {
    let data = (try? JSONEncoder().encode(journal)) ?? Data()
    let tmp = path + ".tmp"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    if fd < 0 { throw SealbakError.io("cannot write the restore journal", path: tmp, errno: errno) }
    let ok = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) == $0.count } && fsync(fd) == 0
    close(fd)
    if !ok || rename(tmp, path) != 0 {
        throw SealbakError.io("cannot write the restore journal", path: path, errno: errno)
    }
    fsyncDirectory((path as NSString).deletingLastPathComponent)
}
