import SealbakFormat

#if canImport(Glibc)
import Glibc
#endif

/// Where the data of one manifest entry comes from when packing.
package enum EntrySource: Sendable {
    case file(path: String)
    case standardInput
    /// Content prepared in memory (a redacted config file).
    case bytes([UInt8])
    case none
}

/// Turns command-line paths into manifest entries (Spec-independent policy, docs/usage.md).
///
/// Each argument is stored under its last path component; a directory brings its whole tree in sorted order.
/// Regular files, directories and symlinks are packed; device files, FIFOs and sockets are refused.
package struct PackPlan: Sendable {
    package var entries: [ManifestEntry] = []
    package var sources: [EntrySource] = []
    /// Sum of the regular files' sizes when they were listed (for the progress display).
    package private(set) var fileBytes: UInt64 = 0
    /// Each regular file's size, times and inode when it was listed, by entry index: give it to
    /// `SourceReader(_:listed:)` so a file that changes before or while it is read is reported.
    package private(set) var listed: [Int: FileState] = [:]
    /// Leave out files and folders that cannot be read (permission denied) instead of failing; they are listed in
    /// `unreadable` by the entry name they would have had.
    package var skipUnreadable = false
    package private(set) var unreadable: [(name: String, path: String, reason: String)] = []

    package init() {}

    /// Adds the tree at `fsPath` under entry name `name`, asking `filter` about everything below it.
    /// Returns what was packed and what the filter left out.
    @discardableResult
    package mutating func add(
        tree fsPath: String,
        as name: String,
        filter: any TreeFilter
    ) throws(SealbakError) -> TreeStats {
        var stats = TreeStats()
        try addTree(fsPath: fsPath, name: name, rel: "", filter: filter, stats: &stats)
        return stats
    }

    /// Replaces the metadata of entry `index` (a component's root entry).
    package mutating func setMetadata(_ m: Metadata, at index: Int) {
        entries[index].metadata = m
    }

    package mutating func add(path: String) throws(SealbakError) {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        let base = splitPath(trimmed).base
        guard !base.isEmpty, base != ".", base != "..", base != "/" else {
            throw SealbakError(
                .usage,
                "cannot name an entry after \(path); pass the directory by name (e.g. ../data, not ..)"
            )
        }
        var stats = TreeStats()
        try addTree(fsPath: trimmed, name: base, rel: "", filter: nil, stats: &stats)
    }

    package mutating func addStandardInput(name: String) throws(SealbakError) {
        if let problem = EntryName.problem(name) { throw SealbakError(.usage, "--stdin-name \(name): \(problem)") }
        try append(ManifestEntry(kind: .stream, name: name, mode: 0o600, mtimeSeconds: currentTime()), .standardInput)
    }

    /// Adds a directory entry that has no directory on disk (a component's root around a single file).
    package mutating func addDirectory(
        name: String,
        mode: UInt32 = 0o755,
        metadata: Metadata = Metadata()
    ) throws(SealbakError) {
        if let problem = EntryName.problem(name) { throw SealbakError(.usage, "cannot store \(name): \(problem)") }
        try append(
            ManifestEntry(kind: .directory, name: name, mode: mode, mtimeSeconds: currentTime(), metadata: metadata),
            .none
        )
    }

    /// Adds an entry whose bytes a component produces itself (a dump), or with the given source.
    package mutating func add(entry: ManifestEntry, source: EntrySource = .none) throws(SealbakError) {
        if let problem = EntryName.problem(entry.name) {
            throw SealbakError(.usage, "cannot store \(entry.name): \(problem)")
        }
        try append(entry, source)
    }

    /// Replaces what entry `index` is packed from (e.g. a redacted copy of the file).
    package mutating func setSource(_ source: EntrySource, at index: Int) {
        sources[index] = source
    }

    private mutating func append(_ e: ManifestEntry, _ s: EntrySource) throws(SealbakError) {
        if entries.count >= Int(FormatV1.maxEntryCount) {
            throw SealbakError(
                .usage,
                "more than \(FormatV1.maxEntryCount) entries; split the backup into several archives"
            )
        }
        entries.append(e)
        sources.append(s)
    }

    private mutating func addTree(
        fsPath: String,
        name: String,
        rel: String,
        filter: (any TreeFilter)?,
        stats: inout TreeStats
    ) throws(SealbakError) {
        if let problem = EntryName.problem(name) {
            throw SealbakError(.usage, "\(fsPath): cannot be stored (\(problem))")
        }
        var st = stat()
        if lstat(fsPath, &st) != 0 { throw SealbakError.io("cannot read", path: fsPath, errno: errno) }
        let mode = UInt32(st.st_mode) & 0o7777
        let sec = Int64(st.st_mtim.tv_sec)
        let nsec = UInt32(st.st_mtim.tv_nsec)
        switch st.st_mode & S_IFMT {
        case S_IFREG:
            // Opened once now, so that a file sealbak may not read is found before anything is written.
            let probe = open(fsPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
            if probe < 0 {
                let e = errno
                if try skipped(fsPath, name: name, errno: e, what: "cannot read") { return }
                throw SealbakError.io("cannot read", path: fsPath, errno: e)
            }
            close(probe)
            fileBytes += UInt64(st.st_size)
            stats.files += 1
            stats.bytes += UInt64(st.st_size)
            listed[entries.count] = FileState(st)
            try append(
                ManifestEntry(kind: .file, name: name, mode: mode, mtimeSeconds: sec, mtimeNanoseconds: nsec),
                .file(path: fsPath)
            )
        case S_IFLNK:
            stats.symlinks += 1
            var buf = [CChar](repeating: 0, count: 4097)
            let n = readlink(fsPath, &buf, 4096)
            if n < 0 { throw SealbakError.io("cannot read the link", path: fsPath, errno: errno) }
            let raw = buf[0..<n].map { UInt8(bitPattern: $0) }
            guard let target = String(validating: raw, as: UTF8.self) else {
                throw SealbakError(.usage, "\(fsPath): the link target is not valid UTF-8, which sealbak cannot store")
            }
            try append(
                ManifestEntry(
                    kind: .symlink,
                    name: name,
                    mode: 0o777,
                    mtimeSeconds: sec,
                    mtimeNanoseconds: nsec,
                    linkTarget: target
                ),
                .none
            )
        case S_IFDIR:
            try append(
                ManifestEntry(kind: .directory, name: name, mode: mode, mtimeSeconds: sec, mtimeNanoseconds: nsec),
                .none
            )
            stats.directories += 1
            try filter?.enter(directory: rel, fsPath: fsPath)
            guard let dir = opendir(fsPath) else {
                let e = errno
                if try skipped(fsPath, name: name, errno: e, what: "cannot list") { return }
                throw SealbakError.io("cannot list", path: fsPath, errno: e)
            }
            var children: [String] = []
            while let ent = readdir(dir) {
                let child = withUnsafeBytes(of: ent.pointee.d_name) { raw -> [UInt8] in
                    Array(raw.prefix(while: { $0 != 0 }))
                }
                if child == [0x2E] || child == [0x2E, 0x2E] { continue }
                guard let s = String(validating: child, as: UTF8.self) else {
                    closedir(dir)
                    throw SealbakError(
                        .usage,
                        "\(fsPath) holds a file whose name is not valid UTF-8, which sealbak cannot store; rename it"
                    )
                }
                children.append(s)
            }
            closedir(dir)
            children.sort { $0.utf8Precedes($1) }
            for child in children {
                let childRel = rel.isEmpty ? child : rel + "/" + child
                if let filter {
                    var cst = stat()
                    if lstat(fsPath + "/" + child, &cst) != 0 {
                        throw SealbakError.io("cannot read", path: fsPath + "/" + child, errno: errno)
                    }
                    if !filter.keep(childRel, isDirectory: cst.st_mode & S_IFMT == S_IFDIR) {
                        stats.excluded += 1
                        continue
                    }
                }
                try addTree(
                    fsPath: fsPath + "/" + child,
                    name: name + "/" + child,
                    rel: childRel,
                    filter: filter,
                    stats: &stats
                )
            }
        default:
            let what: String
            switch st.st_mode & S_IFMT {
            case S_IFCHR: what = "a character device"
            case S_IFBLK: what = "a block device"
            case S_IFIFO: what = "a FIFO"
            case S_IFSOCK: what = "a socket"
            default: what = "an unsupported file type"
            }
            throw SealbakError(
                .usage,
                "\(fsPath) is \(what); sealbak packs regular files, directories and symlinks only. Exclude it or "
                    + "copy its content to a file"
            )
        }
    }

    /// With `skipUnreadable`, records a file or folder denied to sealbak and returns true (the caller leaves it
    /// out); any other error is the caller's to throw. Without it, a denied path fails with the way out named.
    private mutating func skipped(
        _ fsPath: String,
        name: String,
        errno e: Int32,
        what: String
    ) throws(SealbakError) -> Bool {
        guard e == EACCES || e == EPERM else { return false }
        guard skipUnreadable else {
            throw SealbakError(
                .io,
                "\(what) \(displayName(fsPath)): \(String(cString: strerror(e))). Fix its permissions, exclude it, "
                    + "or give --skip-unreadable to pack the rest and record it"
            )
        }
        unreadable.append((name, fsPath, "\(what) it: \(String(cString: strerror(e)))"))
        return true
    }

    /// The names must be unique across arguments, as byte strings (Spec §7.2): `String` equality treats NFC
    /// "é" and NFD "e\u{301}" as equal, but on Linux they are two different files that both must be packed.
    package func checkUnique() throws(SealbakError) {
        var seen = Set<[UInt8]>()
        for e in entries where !seen.insert(Array(e.name.utf8)).inserted {
            throw SealbakError(
                .usage,
                "two inputs would both be stored as \(displayName(e.name)); rename one or pack its parent directory "
                    + "instead"
            )
        }
    }
}

func currentTime() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec)
}

/// Decides what a tree walk packs (docs trees with ignore rules, config folders, vector stores).
package protocol TreeFilter: AnyObject {
    /// Called on entering each directory (`rel` is "" for the tree's root), before its children are asked about.
    func enter(directory rel: String, fsPath: String) throws(SealbakError)
    /// Whether to pack `rel` (relative to the tree's root); an excluded directory is not entered.
    func keep(_ rel: String, isDirectory: Bool) -> Bool
}

/// What a tree walk packed and left out.
package struct TreeStats: Sendable, Equatable {
    package var files = 0
    package var directories = 0
    package var symlinks = 0
    package var bytes: UInt64 = 0
    package var excluded = 0
    package init() {}
}

/// What a regular file looked like at one moment: enough to tell that it changed (tar's "file changed as we
/// read it"). The change time catches rewrites that keep size and mtime (`touch -d`), within the file system's
/// timestamp granularity; a size change is always caught.
package struct FileState: Sendable, Equatable {
    package var size: UInt64
    package var mtimeSeconds: Int64
    package var mtimeNanoseconds: Int64
    package var ctimeSeconds: Int64
    package var ctimeNanoseconds: Int64
    package var inode: UInt64
    package var device: UInt64

    /// All zero (filled in field by field by a reader of a saved state).
    package init() {
        size = 0
        mtimeSeconds = 0
        mtimeNanoseconds = 0
        ctimeSeconds = 0
        ctimeNanoseconds = 0
        inode = 0
        device = 0
    }

    package init(_ st: stat) {
        size = UInt64(max(0, st.st_size))
        mtimeSeconds = Int64(st.st_mtim.tv_sec)
        mtimeNanoseconds = Int64(st.st_mtim.tv_nsec)
        ctimeSeconds = Int64(st.st_ctim.tv_sec)
        ctimeNanoseconds = Int64(st.st_ctim.tv_nsec)
        inode = UInt64(st.st_ino)
        device = UInt64(st.st_dev)
    }

    /// How `later` differs from this state, in words; nil when it does not.
    package func change(to later: FileState) -> String? {
        if later.inode != inode || later.device != device { return "was replaced by another file" }
        if later.size != size { return "changed size from \(size) to \(later.size) bytes" }
        if later.mtimeSeconds != mtimeSeconds || later.mtimeNanoseconds != mtimeNanoseconds { return "was modified" }
        if later.ctimeSeconds != ctimeSeconds || later.ctimeNanoseconds != ctimeNanoseconds {
            return "was changed (its change time moved)"
        }
        return nil
    }
}

extension FileState {
    /// The current state of the regular file at `path` (not following a final symlink); nil if it is not one.
    package static func current(_ path: String) -> FileState? {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return FileState(st)
    }
}

/// Reads an entry's source in chunks for `ArchiveWriter.writeEntry`.
///
/// A regular file is checked at open (against `listed`, its state when the plan listed it) and again at end of
/// file (`fstat`), and the bytes read are compared with its size: if anything differs, `changed` says how, and the
/// caller must warn by name (the entry holds what was read, which may match neither state).
package final class SourceReader {
    private let fd: Int32
    private let owns: Bool
    private let path: String

    private var memory: [UInt8] = []
    private var memoryOffset = 0
    /// The state the bytes are compared with: the listed one, else the one at open.
    private var reference: FileState?
    private var bytesRead: UInt64 = 0
    private var checkedAtEnd = false

    /// Nil while the file is unchanged; otherwise what changed ("changed size from 10 to 4 bytes while it was
    /// read"). Final once `read` returned 0.
    package private(set) var changed: String?

    /// The state of a regular file that stayed the same from before it was opened to its end (read to the end,
    /// with as many bytes as its size); nil for anything else.
    package var unchangedState: FileState? {
        guard checkedAtEnd, changed == nil, let reference, bytesRead == reference.size else { return nil }
        return reference
    }

    /// - Parameter listed: the file's state when it was listed (`PackPlan.listed`); nil compares with the state
    ///   at open only.
    package init(_ source: EntrySource, listed: FileState? = nil) throws(SealbakError) {
        switch source {
        case .none:
            fd = -1
            owns = false
            path = ""
        case .bytes(let b):
            fd = -1
            owns = false
            path = "memory"
            memory = b
        case .standardInput:
            fd = 0
            owns = false
            path = "standard input"
        case .file(let p):
            let d = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            if d < 0 { throw SealbakError.io("cannot open", path: p, errno: errno) }
            fd = d
            owns = true
            path = p
            var st = stat()
            if fstat(d, &st) == 0 {
                let now = FileState(st)
                if let listed, let what = listed.change(to: now) { changed = "\(what) after it was listed" }
                reference = listed ?? now
            }
        }
    }

    deinit { if owns { close(fd) } }

    /// Appends the next bytes of the entry to `out`; nothing at its end.
    package func read(into out: inout OutputSpan<UInt8>) throws(SealbakError) {
        if fd < 0 {
            memoryOffset += out.appendPrefix(of: memory.span.extracting(memoryOffset...))
            return
        }
        if reference != nil, seekHoles, let n = try readSkippingHoles(into: &out) {
            bytesRead += UInt64(n)
            if n == 0 { checkAtEnd() }
            return
        }
        let n = out.appendRead(from: fd)
        if n < 0 { throw SealbakError.io("cannot read", path: path, errno: errno) }
        bytesRead += UInt64(n)
        if n == 0 { checkAtEnd() }
    }

    /// Plain sequential reads from `position` on (pread left the file offset at 0).
    private func fallBack(at position: UInt64) -> Int? {
        seekHoles = false
        lseek(fd, off_t(position), SEEK_SET)
        return nil
    }

    /// lseek's SEEK_DATA and SEEK_HOLE (Linux values; Glibc does not export them without _GNU_SOURCE).
    private let seekData: Int32 = 3
    private let seekHole: Int32 = 4

    /// Whether SEEK_DATA/SEEK_HOLE still work on this file (turned off at the first EINVAL).
    private var seekHoles = true
    /// The data run `[dataStart, holeStart)` that covers or follows the read position (`bytesRead`).
    private var dataStart: UInt64 = 0
    private var holeStart: UInt64 = 0

    /// Reads a regular file without reading its holes: zeros are produced for them (a 4 GiB image with 8 KiB of
    /// data costs no 4 GiB of reads). Returns nil when the file system cannot tell where holes are.
    private func readSkippingHoles(into out: inout OutputSpan<UInt8>) throws(SealbakError) -> Int? {
        let position = bytesRead
        if position >= holeStart {
            let data = lseek(fd, off_t(position), seekData)
            if data < 0 {
                guard errno == ENXIO else { return fallBack(at: position) }
                // No data after position: the rest, up to the current size, is a hole.
                var st = stat()
                guard fstat(fd, &st) == 0 else { return fallBack(at: position) }
                dataStart = max(position, UInt64(st.st_size))
                holeStart = dataStart
            } else {
                let hole = lseek(fd, data, seekHole)
                guard hole >= data else { return fallBack(at: position) }
                dataStart = UInt64(data)
                holeStart = UInt64(hole)
            }
        }
        if position < dataStart {
            return out.appendZeros(upTo: Int(min(UInt64(out.freeCapacity), dataStart - position)))
        }
        if position >= holeStart { return 0 }  // end of file
        let want = Int(min(UInt64(out.freeCapacity), holeStart - position))
        let n = out.appendRead(from: fd, at: position, limit: want)
        if n < 0 { throw SealbakError.io("cannot read", path: path, errno: errno) }
        // A file that shrank under us: the next call looks again (and reports end of file).
        if n < want { holeStart = position + UInt64(n) }
        return n
    }

    /// At end of file: the state again, and the byte count against the size.
    private func checkAtEnd() {
        guard let reference, !checkedAtEnd else { return }
        checkedAtEnd = true
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        let now = FileState(st)
        if changed == nil, let what = reference.change(to: now) { changed = "\(what) while it was read" }
        if bytesRead != reference.size && changed == nil {
            changed = "gave \(bytesRead) bytes, but its size was \(reference.size) when it was listed"
        }
    }
}
