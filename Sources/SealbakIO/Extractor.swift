import CSealbakShims
import Foundation
import SealbakFormat

#if canImport(Glibc)
import Glibc
#endif

/// Writes verified entries under a target directory, all-or-nothing (docs/usage.md "Unpack safety").
///
/// Before anything is written, every name conflict is found: inside the archive (an entry below a file or
/// symlink entry) and with the target (an existing file where a directory must go, a symlink on the way, a name
/// taken without `--force`). Data goes to a private, locked staging directory inside the target; each file's
/// write-back starts as soon as it verified, and the staged files are fsynced on a few threads before the move
/// (`FlushPool`; no `syncfs`, which would wait for other programs' writes too). Only after the whole archive (or every
/// selected entry) verified does `commit()` stage new directories
/// and symlinks, write the move plan (`MovePlan`) and carry it out with one `renameat2` per top item; an error
/// during the move undoes what was moved, and a killed run is finished or undone by the next unpack into the same
/// target (`recoverInterrupted(in:)`). `abort()` removes the staging directory. Paths are resolved one component
/// at a time with `O_NOFOLLOW`, so no entry can be written through a symlink or outside the target.
package final class Extractor: EntrySink {
    private let manifest: Manifest
    private let selected: Set<Int>
    private let force: Bool
    private let root: String
    private let rootFD: Int32
    private let stagingName: String
    private let stagingFD: Int32
    private var currentFD: Int32 = -1
    private var currentOffset: Int64 = 0
    private var currentSparse = false
    private var staged: Set<Int> = []
    private let phase = PhaseGuard()
    private var interruptToken: Int?
    private let flusher = FlushPool(threads: 8)
    package private(set) var skippedSymlinks: [String] = []
    package private(set) var bytesWritten: UInt64 = 0
    /// What `recoverInterrupted(in:)` did before this unpack (one line each), for the caller to show.
    package private(set) var recovered: [String] = []
    /// Called with the byte count of every verified chunk written (progress display).
    package var progress: ((Int) -> Void)?

    /// Creates the target directory if needed, finishes or removes what killed unpacks left there, checks every
    /// name conflict (none may exist; `force` allows replacing files and symlinks only), and makes the staging dir.
    package init(root: String, manifest: Manifest, selected: Set<Int>, force: Bool) throws(SealbakError) {
        self.manifest = manifest
        self.selected = selected
        self.force = force
        self.root = root
        try Extractor.checkArchiveConflicts(manifest)
        if mkdir(root, 0o755) != 0 && errno != EEXIST {
            throw SealbakError.io("cannot create the target directory", path: root, errno: errno)
        }
        recovered = try Extractor.recoverInterrupted(in: root)
        rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if rootFD < 0 { throw SealbakError.io("cannot open the target directory", path: root, errno: errno) }
        do {
            _ = try Extractor.targetPlan(
                rootFD: rootFD,
                root: root,
                manifest: manifest,
                selected: selected,
                force: force
            )
        } catch {
            close(rootFD)
            throw error
        }
        var template = Array("\(root)/.sealbak-unpack-\(getpid())-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            let e = errno
            close(rootFD)
            throw SealbakError.io("cannot create a staging directory in", path: root, errno: e)
        }
        let staging = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        stagingName = splitPath(staging).base
        stagingFD = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if stagingFD < 0 {
            close(rootFD)
            throw SealbakError.io("cannot open", path: staging, errno: errno)
        }
        // Held until this process ends: a later run sees a live unpack even if our PID is reused.
        flock(stagingFD, LOCK_EX | LOCK_NB)
        let phase = self.phase
        interruptToken = Interrupts.register { phase.interrupt(removing: staging) }
    }

    deinit {
        abort()
        close(stagingFD)
        close(rootFD)
    }

    package func wants(_ index: Int) -> Bool { selected.contains(index) }

    package func begin(_ index: Int) throws {
        let e = manifest.entries[index]
        guard e.kind == .file || e.kind == .stream else { return }
        currentFD = openat(stagingFD, "\(index)", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if currentFD < 0 { throw SealbakError.io("cannot create a staging file in", path: root, errno: errno) }
        currentOffset = 0
        currentSparse = false
    }

    /// Writes a verified chunk; whole zero blocks (4 KiB, aligned in the file) are skipped with a seek and left
    /// as holes, so sparse files stay sparse (the size is set by `ftruncate` at the end).
    package func write(_ index: Int, _ bytes: [UInt8]) throws {
        guard currentFD >= 0 else {
            throw SealbakError(
                .corrupt,
                "\(manifest.entries[index].kind.name) \(displayName(manifest.entries[index].name)) carries data; the "
                    + "archive is invalid"
            )
        }
        let path = displayName("\(root)/\(manifest.entries[index].name)")
        let block = 4096
        try bytes.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
            var i = 0
            var runStart = 0  // start of bytes not yet written
            while i < b.count {
                // The next block boundary in the file.
                let misalign = Int((currentOffset + Int64(i)) % Int64(block))
                let next = min(b.count, i + block - misalign)
                if misalign == 0 && next - i == block && sealbak_is_zero(b.baseAddress! + i, block) != 0 {
                    if runStart < i {
                        try pwriteAll(
                            UnsafeRawBufferPointer(rebasing: b[runStart..<i]),
                            at: currentOffset + Int64(runStart),
                            path: path
                        )
                    }
                    runStart = next
                    currentSparse = true
                }
                i = next
            }
            if runStart < b.count {
                try pwriteAll(
                    UnsafeRawBufferPointer(rebasing: b[runStart...]),
                    at: currentOffset + Int64(runStart),
                    path: path
                )
            }
        }
        currentOffset += Int64(bytes.count)
        bytesWritten += UInt64(bytes.count)
        progress?(bytes.count)
    }

    private func pwriteAll(_ bytes: UnsafeRawBufferPointer, at offset: Int64, path: String) throws(SealbakError) {
        var done = 0
        while done < bytes.count {
            let n = pwrite(currentFD, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SealbakError.io("cannot write", path: path, errno: errno)
            }
            done += n
        }
    }

    package func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws {
        if currentFD >= 0 {
            let e = manifest.entries[index]
            let fd = currentFD
            currentFD = -1
            if currentSparse && ftruncate(fd, off_t(currentOffset)) != 0 {
                let err = errno
                close(fd)
                throw SealbakError.io("cannot write", path: displayName("\(root)/\(e.name)"), errno: err)
            }
            fchmod(fd, mode_t(e.mode & 0o1777))
            var times = Extractor.times(e)
            futimens(fd, &times)
            // Write-back starts now; the fsync comes in commit, for all staged files at once.
            try flusher.submit(fd, name: "\(index)")
        }
        staged.insert(index)
        Faults.point("unpack: verified entry \(index)")
    }

    /// Moves everything into place. Call only after the reader verified the whole archive.
    ///
    /// Waits for the staged files to be durable, stages new directories and symlinks, checks the target again,
    /// commits the move plan and carries it out. If a step fails, every step done is undone before the error is
    /// thrown (the target is as it was); if the process is killed, the next unpack into the target finishes it.
    package func commit() throws {
        let entries = manifest.entries
        let root = self.root
        try flusher.finish(in: stagingFD) { name in
            displayName(root + "/" + (Int(name).map { entries[$0].name } ?? name))
        }
        let plan = try buildPlan()
        if fsync(stagingFD) != 0 { throw SealbakError.io("cannot flush", path: root, errno: errno) }
        Faults.point("unpack: staged")
        try writeFile("plan.tmp", plan.encoded())
        Faults.point("unpack: plan written")
        guard phase.begin() else { throw SealbakError(.interrupted, "interrupted") }
        if renameat(stagingFD, "plan.tmp", stagingFD, "plan") != 0 || fsync(stagingFD) != 0 {
            phase.back()
            throw SealbakError.io("cannot write the move plan in", path: root, errno: errno)
        }
        // The commit point: from here on a killed run is finished by the next one.
        let mover = Mover(root: root, rootFD: rootFD, stagingFD: stagingFD)
        mover.shouldStop = { [phase] in phase.interrupted || Interrupts.pending }
        do {
            try mover.forward(plan)
        } catch {
            // Undo, and say so in the staging directory first: a run killed while undoing is undone by the next.
            try? writeFile("rollback", [])
            Faults.point("unpack: rolling back")
            do { try mover.backward(plan) } catch let undo {
                phase.finish()  // the staging directory stays: the next unpack into root finishes undoing
                throw SealbakError(
                    undo.code,
                    "\(error.message); undoing the move failed too (\(undo.message)); the next sealbak unpack into "
                        + "\(root) finishes undoing it"
                )
            }
            finishStaging()
            throw error
        }
        Faults.point("unpack: moved")
        finishStaging()
    }

    /// Removes the plan (the target is final now), then the staging directory with the files it replaced.
    private func finishStaging() {
        unlinkat(stagingFD, "plan", 0)
        fsync(stagingFD)
        Faults.point("unpack: plan removed")
        skippedSymlinks = skippedSymlinks.sorted { $0.utf8Precedes($1) }
        interruptToken.map(Interrupts.unregister)
        interruptToken = nil
        try? FileManager.default.removeItem(atPath: root + "/" + stagingName)
        phase.finish()
    }

    private func writeFile(_ name: String, _ bytes: [UInt8]) throws {
        let fd = openat(stagingFD, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 { throw SealbakError.io("cannot write the move plan in", path: root, errno: errno) }
        defer { close(fd) }
        try writeAll(fd: fd, bytes.span.bytes, path: root + "/" + stagingName + "/" + name)
        if fsync(fd) != 0 { throw SealbakError.io("cannot flush the move plan in", path: root, errno: errno) }
    }

    /// Checks the target again (it may have changed while the archive was read) and stages what has no data:
    /// new directories (empty, moved with their children after them) and symlinks.
    private func buildPlan() throws(SealbakError) -> MovePlan {
        for i in selected where !staged.contains(i) {
            throw SealbakError(.internalError, "entry \(i) was not verified before commit")
        }
        let items = try Extractor.targetPlan(
            rootFD: rootFD,
            root: root,
            manifest: manifest,
            selected: selected,
            force: force
        )
        var plan = MovePlan()
        for item in items {
            var stagedName: String
            var kind: MovePlan.Kind = item.exists ? .exchange : .new
            switch item.entry.map({ manifest.entries[$0].kind }) {
            case .file?, .stream?:
                stagedName = "\(item.entry!)"
            case .symlink?:
                let e = manifest.entries[item.entry!]
                guard Extractor.symlinkStaysInside(name: e.name, target: e.linkTarget) else {
                    skippedSymlinks.append(e.name)
                    continue
                }
                stagedName = "\(item.entry!).link"
                if symlinkat(e.linkTarget, stagingFD, stagedName) != 0 {
                    throw SealbakError.io(
                        "cannot create the symlink",
                        path: displayName("\(root)/\(e.name)"),
                        errno: errno
                    )
                }
                var times = Extractor.times(e)
                utimensat(stagingFD, stagedName, &times, AT_SYMLINK_NOFOLLOW)
            case .directory?, nil:
                if let i = item.entry {
                    let e = manifest.entries[i]
                    plan.attributes.append(
                        .init(target: e.name, mode: e.mode, seconds: e.mtimeSeconds, nanoseconds: e.mtimeNanoseconds)
                    )
                }
                if item.exists { continue }
                stagedName = "d\(plan.steps.count).dir"
                kind = .directory
                if mkdirat(stagingFD, stagedName, 0o755) != 0 {
                    throw SealbakError.io("cannot create a staging directory in", path: root, errno: errno)
                }
            }
            var st = stat()
            if fstatat(stagingFD, stagedName, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                throw SealbakError.io("cannot inspect the staging directory in", path: root, errno: errno)
            }
            plan.steps.append(
                MovePlan.Step(kind: kind, staged: stagedName, target: item.name, inode: UInt64(st.st_ino))
            )
        }
        return plan
    }

    static func times(_ e: ManifestEntry) -> [timespec] {
        let t = timespec(tv_sec: Int(e.mtimeSeconds), tv_nsec: Int(e.mtimeNanoseconds))
        return [t, t]
    }

    /// Removes the staging directory and everything in it. Nothing was placed in the target yet.
    package func abort() {
        if currentFD >= 0 {
            close(currentFD)
            currentFD = -1
        }
        flusher.cancel()
        guard phase.finish() else { return }
        interruptToken.map(Interrupts.unregister)
        interruptToken = nil
        try? FileManager.default.removeItem(atPath: root + "/" + stagingName)
    }

    // MARK: - Conflicts, found before anything is written

    /// An entry below a file, stream or symlink entry of the same archive cannot be placed without writing
    /// through it or replacing it (`a` then `a/b`; a symlink `a` -> `.` then `a/b`; entries under a symlink that
    /// the symlink rule skips): the whole archive is refused.
    package static func checkArchiveConflicts(_ manifest: Manifest) throws(SealbakError) {
        var nonDirectories: [[UInt8]: EntryKind] = [:]
        for e in manifest.entries where e.kind != .directory { nonDirectories[Array(e.name.utf8)] = e.kind }
        guard !nonDirectories.isEmpty else { return }
        for e in manifest.entries {
            let name = Array(e.name.utf8)
            for (i, b) in name.enumerated() where b == UInt8(ascii: "/") {
                if let kind = nonDirectories[Array(name[..<i])] {
                    let parent = String(decoding: name[..<i], as: UTF8.self)
                    throw SealbakError(
                        .corrupt,
                        "the archive holds \(displayName(e.name)) below \(kind.name) \(displayName(parent)); "
                            + "it cannot be unpacked without writing through or replacing an entry of its own (the "
                            + "archive may be hostile); nothing was written"
                    )
                }
            }
        }
    }

    /// One name to place in the target, parents before children.
    struct TargetItem {
        var name: String
        /// The manifest entry, or nil for a parent directory the archive does not list.
        var entry: Int?
        /// Whether the name exists in the target now (a directory for directories, a non-directory otherwise).
        var exists: Bool
    }

    /// Looks at every selected name and every directory on its way in the target, without following symlinks;
    /// throws on the first conflict. Returns the names to place, sorted by bytes (parents first).
    static func targetPlan(
        rootFD: Int32,
        root: String,
        manifest: Manifest,
        selected: Set<Int>,
        force: Bool
    ) throws(SealbakError) -> [TargetItem] {
        let slash = UInt8(ascii: "/")
        let order = selected.map { (index: $0, name: Array(manifest.entries[$0].name.utf8)) }.sorted {
            $0.name.bytesPrecede($1.name)
        }
        var implied = Set<[UInt8]>()
        /// What each directory on the way is: true = exists as a directory, false = missing (will be created).
        var directories: [[UInt8]: Bool] = [:]
        var items: [TargetItem] = []
        var listed = Set<[UInt8]>()
        func describe(_ st: stat) -> String {
            switch st.st_mode & S_IFMT {
            case S_IFDIR: "a directory"
            case S_IFLNK: "a symlink"
            case S_IFREG: "a file"
            default: "a special file"
            }
        }
        func look(_ name: [UInt8]) throws(SealbakError) -> stat? {
            var st = stat()
            if fstatat(rootFD, String(decoding: name, as: UTF8.self), &st, AT_SYMLINK_NOFOLLOW) == 0 { return st }
            if errno == ENOENT { return nil }
            throw SealbakError.io(
                "cannot inspect",
                path: displayName(root + "/" + String(decoding: name, as: UTF8.self)),
                errno: errno
            )
        }
        for (i, name) in order where manifest.entries[i].kind == .directory {
            listed.insert(name)
        }
        for (i, name) in order {
            let e = manifest.entries[i]
            // Every directory on the way: must be a real directory or missing (then it is created first).
            var parentMissing = false
            for (k, b) in name.enumerated() where b == slash {
                let dir = Array(name[..<k])
                if let known = directories[dir] {
                    parentMissing = !known
                    continue
                }
                if parentMissing {
                    directories[dir] = false
                } else if let st = try look(dir) {
                    guard st.st_mode & S_IFMT == S_IFDIR else {
                        throw SealbakError(
                            .targetExists,
                            "\(displayName(root + "/" + String(decoding: dir, as: UTF8.self))) is \(describe(st)), "
                                + "and the archive "
                                + "has \(displayName(e.name)) inside it; sealbak never writes through or replaces "
                                + "it, even with --force; move it away first. Nothing was written"
                        )
                    }
                    directories[dir] = true
                } else {
                    directories[dir] = false
                    parentMissing = true
                }
                if directories[dir] == false && !listed.contains(dir) && implied.insert(dir).inserted {
                    items.append(TargetItem(name: String(decoding: dir, as: UTF8.self), entry: nil, exists: false))
                }
            }
            let existing = parentMissing ? nil : try look(name)
            if e.kind == .directory { directories[name] = existing != nil }
            if let st = existing {
                let isDir = st.st_mode & S_IFMT == S_IFDIR
                if e.kind == .directory && isDir {
                    items.append(TargetItem(name: e.name, entry: i, exists: true))
                    continue
                }
                let kindClash =
                    isDir != (e.kind == .directory)
                    || (st.st_mode & S_IFMT != S_IFREG && st.st_mode & S_IFMT != S_IFLNK && !isDir)
                if !force || kindClash {
                    let what = describe(st)
                    let hint =
                        kindClash
                        ? "sealbak will not replace \(what) with \(e.kind == .directory ? "a directory" : "a file"), "
                            + "even with --force; move it away first"
                        : "use --force to replace it, or unpack into an empty directory"
                    throw SealbakError(
                        .targetExists,
                        "\(displayName(root + "/" + e.name)) already exists (\(what)); " + hint
                            + ". Nothing was written"
                    )
                }
            }
            items.append(TargetItem(name: e.name, entry: i, exists: existing != nil))
        }
        // Parents first: implied directories were appended when first met, so sort everything by bytes.
        return items.map { (Array($0.name.utf8), $0) }.sorted { $0.0.bytesPrecede($1.0) }.map(\.1)
    }

    // MARK: - What killed unpacks left

    /// Finishes or removes what unpacks into `root` that were killed (`kill -9`, power cut) left behind: a
    /// staging directory `.sealbak-unpack-PID-…` whose process is gone. Without a committed move plan nothing of
    /// it had reached `root`, and it is removed; with one, its remaining moves are carried out (or, if it was
    /// undoing an error, undone). Returns one line per leftover saying what was done, for the caller to show.
    @discardableResult
    package static func recoverInterrupted(in root: String) throws(SealbakError) -> [String] {
        var lines: [String] = []
        for name in Leftovers.stale(prefix: ".sealbak-unpack-", in: root) {
            let path = root + "/" + name
            let stagingFD = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard stagingFD >= 0 else { continue }
            defer { close(stagingFD) }
            guard flock(stagingFD, LOCK_EX | LOCK_NB) == 0 else { continue }
            let planBytes = readSmallFile(stagingFD, "plan")
            guard let planBytes else {
                try? FileManager.default.removeItem(atPath: path)
                lines.append(
                    "removed \(displayName(path)), left by an unpack that was killed before it placed anything in "
                        + "\(displayName(root))"
                )
                continue
            }
            guard let plan = MovePlan(decoding: planBytes) else {
                throw SealbakError(
                    .corrupt,
                    "\(displayName(path)) holds a damaged move plan of a killed unpack; "
                        + "compare \(displayName(root)) with the archive, then remove that folder"
                )
            }
            let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if rootFD < 0 { throw SealbakError.io("cannot open the target directory", path: root, errno: errno) }
            defer { close(rootFD) }
            let mover = Mover(root: root, rootFD: rootFD, stagingFD: stagingFD)
            if readSmallFile(stagingFD, "rollback") != nil {
                let n = try mover.backward(plan)
                lines.append(
                    "undid an unpack into \(displayName(root)) that was killed while undoing a failed move (\(n) of "
                        + "\(plan.steps.count) moves undone); \(displayName(root)) is as it was before it"
                )
            } else {
                let n = try mover.forward(plan)
                lines.append(
                    "finished an unpack into \(displayName(root)) that was killed after every entry had verified "
                        + "(\(n) of \(plan.steps.count) moves were left); "
                        + "\(displayName(root)) now holds the whole unpack"
                )
            }
            mover.closeAll()
            unlinkat(stagingFD, "plan", 0)
            fsync(stagingFD)
            try? FileManager.default.removeItem(atPath: path)
        }
        return lines
    }

    private static func readSmallFile(_ dirFD: Int32, _ name: String) -> [UInt8]? {
        let fd = openat(dirFD, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(fd, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
            if out.count > 1 << 30 { break }
        }
        return out
    }

    /// A symlink is restored only when its target is relative, its ".." components all come first, and they
    /// climb no higher than the link's own directory depth: then no chain of restored links can leave the root.
    package static func symlinkStaysInside(name: String, target: String) -> Bool {
        // Bytes, not Characters: a combining mark after "/" must not hide the separator.
        let slash = UInt8(ascii: "/")
        let dot = UInt8(ascii: ".")
        let t = Array(target.utf8)
        if t.first == slash || t.isEmpty || t.contains(0) { return false }
        let depth = name.utf8.split(separator: slash).count - 1
        var climbs = 0
        var descended = false
        for c in t.split(separator: slash, omittingEmptySubsequences: true) {
            if c.elementsEqual([dot]) { continue }
            if c.elementsEqual([dot, dot]) {
                if descended { return false }
                climbs += 1
            } else {
                descended = true
            }
        }
        return climbs <= depth
    }
}
