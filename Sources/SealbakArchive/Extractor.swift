#if canImport(Glibc)
import Glibc
#endif
import Foundation
import CSealbakShims
import SealbakFormat

/// Writes verified entries under a target directory, all-or-nothing (docs/usage.md "Unpack safety").
///
/// Data goes to a private staging directory inside the target. Only after the whole archive (or every selected
/// entry) verified does `commit()` move each file into place with `renameat`, create directories and
/// symlinks, and apply modes and mtimes. `abort()` removes the staging directory. Paths are resolved one
/// component at a time with `O_NOFOLLOW`, so no entry can be written through a symlink or outside the target.
package final class Extractor: EntrySink {
    private let manifest: Manifest
    private let selected: Set<Int>
    private let force: Bool
    private let root: String
    private let rootFD: Int32
    private let stagingName: String
    private let stagingFD: Int32
    private var currentFD: Int32 = -1
    private var staged: Set<Int> = []
    private var finished = false
    private var interruptToken: Int?
    package private(set) var skippedSymlinks: [String] = []
    package private(set) var bytesWritten: UInt64 = 0
    /// Called with the byte count of every verified chunk written (progress display).
    package var progress: ((Int) -> Void)?

    /// Creates the target directory if needed, refuses existing names unless `force`, and makes the staging dir.
    package init(root: String, manifest: Manifest, selected: Set<Int>, force: Bool) throws(SealbakError) {
        self.manifest = manifest
        self.selected = selected
        self.force = force
        self.root = root
        if mkdir(root, 0o755) != 0 && errno != EEXIST { throw SealbakError.io("cannot create the target directory", path: root, errno: errno) }
        rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if rootFD < 0 { throw SealbakError.io("cannot open the target directory", path: root, errno: errno) }
        for i in selected.sorted() {
            let e = manifest.entries[i]
            var st = stat()
            if fstatat(rootFD, e.name, &st, AT_SYMLINK_NOFOLLOW) == 0 {
                let isDir = (st.st_mode & S_IFMT) == S_IFDIR
                if e.kind == .directory && isDir { continue }
                let kindClash = isDir != (e.kind == .directory)
                if !force || kindClash {
                    close(rootFD)
                    let what = isDir ? "a directory" : "a file"
                    let hint = kindClash
                        ? "sealbak will not replace \(what) with \(e.kind == .directory ? "a directory" : "a file"), even with --force; move it away first"
                        : "use --force to replace it, or unpack into an empty directory"
                    throw SealbakError(.targetExists, "\(root)/\(e.name) already exists (\(what)); " + hint)
                }
            }
        }
        Extractor.removeStaleStaging(in: root)
        var template = Array("\(root)/.sealbak-unpack-\(getpid())-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            let e = errno
            close(rootFD)
            throw SealbakError.io("cannot create a staging directory in", path: root, errno: e)
        }
        let staging = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        stagingName = splitPath(staging).base
        stagingFD = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if stagingFD < 0 { close(rootFD); throw SealbakError.io("cannot open", path: staging, errno: errno) }
        interruptToken = Interrupts.register { try? FileManager.default.removeItem(atPath: staging) }
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
    }

    package func write(_ index: Int, _ bytes: [UInt8]) throws {
        guard currentFD >= 0 else {
            throw SealbakError(.corrupt, "\(manifest.entries[index].kind.name) \(manifest.entries[index].name) carries data; the archive is invalid")
        }
        let path = "\(root)/\(manifest.entries[index].name)"
        try bytes.withUnsafeBytes { b in try writeAll(fd: currentFD, b, path: path) }
        bytesWritten += UInt64(bytes.count)
        progress?(bytes.count)
    }

    package func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws {
        if currentFD >= 0 {
            let e = manifest.entries[index]
            fchmod(currentFD, mode_t(e.mode & 0o1777))
            var times = [timespec(tv_sec: Int(e.mtimeSeconds), tv_nsec: Int(e.mtimeNanoseconds)),
                         timespec(tv_sec: Int(e.mtimeSeconds), tv_nsec: Int(e.mtimeNanoseconds))]
            futimens(currentFD, &times)
            if close(currentFD) != 0 {
                currentFD = -1
                throw SealbakError.io("cannot write", path: "\(root)/\(e.name)", errno: errno)
            }
            currentFD = -1
        }
        staged.insert(index)
    }

    /// Moves everything into place. Call only after the reader verified the whole archive.
    ///
    /// One `syncfs` makes all staged data durable before the first rename (instead of an fsync per file).
    package func commit() throws {
        if sealbak_syncfs(stagingFD) != 0 { throw SealbakError.io("cannot flush", path: root, errno: errno) }
        defer { closeDirectoryCache() }
        var directories: [Int] = []
        for i in selected.sorted() {
            guard staged.contains(i) else { throw SealbakError(.internalError, "entry \(i) was not verified before commit") }
            let e = manifest.entries[i]
            let (parent, base) = try openParent(e.name)
            switch e.kind {
            case .file, .stream:
                if renameat(stagingFD, "\(i)", parent, base) != 0 { throw SealbakError.io("cannot move into place", path: "\(root)/\(e.name)", errno: errno) }
            case .directory:
                if mkdirat(parent, base, 0o700) != 0 && errno != EEXIST { throw SealbakError.io("cannot create", path: "\(root)/\(e.name)", errno: errno) }
                directories.append(i)
            case .symlink:
                guard Extractor.symlinkStaysInside(name: e.name, target: e.linkTarget) else {
                    skippedSymlinks.append(e.name)
                    continue
                }
                let tmp = "\(i).link"
                if symlinkat(e.linkTarget, stagingFD, tmp) != 0 { throw SealbakError.io("cannot create the symlink", path: "\(root)/\(e.name)", errno: errno) }
                var times = Extractor.times(e)
                utimensat(stagingFD, tmp, &times, AT_SYMLINK_NOFOLLOW)
                if renameat(stagingFD, tmp, parent, base) != 0 { throw SealbakError.io("cannot move into place", path: "\(root)/\(e.name)", errno: errno) }
            }
        }
        // Directory modes and times last, deepest first, so creating children does not disturb them.
        for i in directories.reversed() {
            let e = manifest.entries[i]
            let (parent, base) = try openParent(e.name)
            fchmodat(parent, base, mode_t(e.mode & 0o1777), 0)
            var times = Extractor.times(e)
            utimensat(parent, base, &times, AT_SYMLINK_NOFOLLOW)
        }
        for fd in directoryCache.values { fsync(fd) }
        fsync(rootFD)
        finished = true
        interruptToken.map(Interrupts.unregister)
        unlinkat(rootFD, stagingName, AT_REMOVEDIR)
    }

    static func times(_ e: ManifestEntry) -> [timespec] {
        let t = timespec(tv_sec: Int(e.mtimeSeconds), tv_nsec: Int(e.mtimeNanoseconds))
        return [t, t]
    }

    /// Removes the staging directory and everything in it. Nothing was placed in the target yet.
    package func abort() {
        if currentFD >= 0 { close(currentFD); currentFD = -1 }
        guard !finished else { return }
        finished = true
        interruptToken.map(Interrupts.unregister)
        if let dir = fdopendir(dup(stagingFD)) {
            var names: [String] = []
            while let ent = readdir(dir) {
                let n = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                if n != "." && n != ".." { names.append(n) }
            }
            closedir(dir)
            for n in names { unlinkat(stagingFD, n, 0) }
        }
        unlinkat(rootFD, stagingName, AT_REMOVEDIR)
    }

    /// Directories opened under the root during commit, by relative path (bounded; see `directory(_:)`).
    private var directoryCache: [String: Int32] = [:]

    private func closeDirectoryCache() {
        for fd in directoryCache.values { close(fd) }
        directoryCache.removeAll()
    }

    /// Returns the parent directory descriptor of `name` under the root (owned by the cache) and the last
    /// component, creating missing directories and never following a symlink.
    private func openParent(_ name: String) throws(SealbakError) -> (Int32, String) {
        // Split on the byte '/', never on grapheme clusters ("/" followed by a combining mark is one Character).
        var components = name.utf8.split(separator: UInt8(ascii: "/")).map { String(decoding: $0, as: UTF8.self) }
        let base = components.removeLast()
        return (try directory(components), base)
    }

    /// Opens (creating if needed) the directory at `components` below the root, one component at a time
    /// with O_NOFOLLOW, reusing descriptors of directories opened before.
    private func directory(_ components: [String]) throws(SealbakError) -> Int32 {
        if components.isEmpty { return rootFD }
        let key = components.joined(separator: "/")
        if let fd = directoryCache[key] { return fd }
        let parent = try directory(Array(components.dropLast()))
        let c = components.last!
        let walked = root + "/" + key
        var next = openat(parent, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if next < 0 && errno == ENOENT {
            if mkdirat(parent, c, 0o755) != 0 && errno != EEXIST { throw SealbakError.io("cannot create", path: walked, errno: errno) }
            next = openat(parent, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        if next < 0 {
            let e = errno
            if e == ELOOP || e == ENOTDIR {
                throw SealbakError(.corrupt, "\(walked) is a symlink or not a directory; sealbak will not extract through it (the archive may be hostile)")
            }
            throw SealbakError.io("cannot open", path: walked, errno: e)
        }
        if directoryCache.count >= 512 {
            // Keep the number of open descriptors bounded; ancestors are reopened (safely) on demand.
            closeDirectoryCache()
        }
        directoryCache[key] = next
        return next
    }

    /// Removes `.sealbak-unpack-PID-…` staging directories whose process is gone: only a `kill -9` or a power
    /// cut during an unpack leaves one, and it holds nothing that was ever placed in the target.
    static func removeStaleStaging(in root: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else { return }
        for name in names where name.hasPrefix(".sealbak-unpack-") {
            guard let pid = Int32(name.dropFirst(".sealbak-unpack-".count).split(separator: "-").first ?? ""), pid > 0 else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: root + "/" + name)
            }
        }
    }

    /// A symlink is restored only when its target is relative, its ".." components all come first, and they
    /// climb no higher than the link's own directory depth: then no chain of restored links can leave the root.
    package static func symlinkStaysInside(name: String, target: String) -> Bool {
        // Bytes, not Characters: a combining mark after "/" must not hide the separator.
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
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

/// A sink that verifies and discards (`sealbak verify`).
package final class DiscardSink: EntrySink {
    package private(set) var bytes: UInt64 = 0
    package private(set) var entries = 0
    private let selected: Set<Int>?
    /// Called with the byte count of every verified chunk (progress display).
    package var progress: ((Int) -> Void)?
    /// Entries whose first bytes are kept in `heads` (e.g. to check a dump's magic).
    package var captureHeads: Set<Int> = []
    package private(set) var heads: [Int: [UInt8]] = [:]
    package init(selected: Set<Int>? = nil) { self.selected = selected }
    package func wants(_ index: Int) -> Bool { selected?.contains(index) ?? true }
    package func begin(_ index: Int) throws {}
    package func write(_ index: Int, _ b: [UInt8]) throws {
        bytes += UInt64(b.count)
        progress?(b.count)
        if captureHeads.contains(index), heads[index, default: []].count < 16 {
            heads[index, default: []] += b.prefix(16 - heads[index, default: []].count)
        }
    }
    package func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws { entries += 1 }
}
