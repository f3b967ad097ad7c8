import CSealbakShims
import Foundation
import SealbakFormat

#if canImport(Glibc)
import Glibc
#endif

/// The move phase of an unpack, written down before the first name in the target changes (docs/usage.md
/// "Unpack safety").
///
/// Every staged item (a verified file, a symlink, an empty new directory) sits in the staging directory under a
/// name of its own and is moved into the target by one `renameat2`: `RENAME_NOREPLACE` where the name is new,
/// `RENAME_EXCHANGE` where `--force` replaces a file (the old file then sits in the staging directory until the
/// end, so the step can be undone). A step is done exactly when the target name holds the staged item's inode,
/// so a run that was killed anywhere can be finished (`forward`) or undone (`backward`) by the next one.
///
/// The plan is committed by renaming `plan.tmp` to `plan` in the staging directory, after all staged data is
/// durable. Without `plan` nothing was moved and the staging directory is simply removed. With `plan` the next
/// run rolls forward; with `plan` and `rollback` (written before undoing after an error) it rolls back.
struct MovePlan {
    enum Kind: UInt8 {
        /// A new name: `RENAME_NOREPLACE`.
        case new = 0x6E  // "n"
        /// A new directory (empty when moved; undone with rmdir, so nothing someone else put in it is lost).
        case directory = 0x64  // "d"
        /// Replaces an existing non-directory (`--force`): `RENAME_EXCHANGE`.
        case exchange = 0x78  // "x"
    }

    struct Step {
        var kind: Kind
        /// Name inside the staging directory.
        var staged: String
        /// Entry name relative to the target root.
        var target: String
        /// Inode of the staged item: the step is done when `target` holds this inode.
        var inode: UInt64
    }

    /// Mode and times of a directory, applied after every step (deepest first).
    struct Attributes {
        var target: String
        var mode: UInt32
        var seconds: Int64
        var nanoseconds: UInt32
    }

    var steps: [Step] = []
    var attributes: [Attributes] = []

    static let magic = "sealbak-unpack-plan 1"

    /// One line per step; names are hex-encoded, so any byte of a name (a newline) is safe.
    func encoded() -> [UInt8] {
        var lines = [MovePlan.magic]
        for s in steps {
            lines.append(
                "\(Character(Unicode.Scalar(s.kind.rawValue))) \(s.inode) \(hex(Array(s.staged.utf8))) "
                    + "\(hex(Array(s.target.utf8)))"
            )
        }
        for a in attributes {
            lines.append("a \(a.mode) \(a.seconds) \(a.nanoseconds) \(hex(Array(a.target.utf8)))")
        }
        lines.append("end")
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// Parses `encoded()`; nil when the text is damaged (then the plan is not trusted and nothing is moved).
    init?(decoding bytes: [UInt8]) {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == Substring(MovePlan.magic), lines.count >= 3, lines[lines.count - 2] == "end",
            lines.last == ""
        else { return nil }
        for line in lines.dropFirst().dropLast(2) {
            let f = line.split(separator: " ")
            if f.first == "a" {
                guard f.count == 5, let mode = UInt32(f[1]), let sec = Int64(f[2]), let nsec = UInt32(f[3]),
                    let name = MovePlan.unhex(f[4])
                else { return nil }
                attributes.append(Attributes(target: name, mode: mode, seconds: sec, nanoseconds: nsec))
            } else {
                guard f.count == 4, f[0].utf8.count == 1, let kind = Kind(rawValue: f[0].utf8.first!),
                    let inode = UInt64(f[1]),
                    let staged = MovePlan.unhex(f[2]), let target = MovePlan.unhex(f[3])
                else { return nil }
                steps.append(Step(kind: kind, staged: staged, target: target, inode: inode))
            }
        }
    }

    init() {}

    private static func unhex(_ s: Substring) -> String? {
        let b = Array(s.utf8)
        guard b.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(b.count / 2)
        var i = 0
        while i < b.count {
            guard let v = UInt8(String(decoding: b[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(v)
            i += 2
        }
        return String(validating: out, as: UTF8.self)
    }
}

/// Carries out a `MovePlan` in the target, in either direction. Directories are opened one component at a time
/// with `O_NOFOLLOW` (never created here: every new directory is a step of the plan).
final class Mover {
    let root: String
    let rootFD: Int32
    let stagingFD: Int32
    /// Directories opened below the root, by entry-name bytes (NFC and NFD spellings are different folders).
    private var cache: [[UInt8]: Int32] = [:]
    /// Directories whose entries changed: fsynced at the end.
    private(set) var touched: Set<[UInt8]> = []
    /// Checked before each step (an interrupt asks the move to stop and be undone).
    var shouldStop: () -> Bool = { false }

    init(root: String, rootFD: Int32, stagingFD: Int32) {
        self.root = root
        self.rootFD = rootFD
        self.stagingFD = stagingFD
    }

    deinit { closeAll() }

    func closeAll() {
        for fd in cache.values { close(fd) }
        cache.removeAll()
    }

    /// Performs every step not yet done, then applies directory attributes and makes the target durable.
    /// Returns how many steps it carried out (steps already done are skipped).
    @discardableResult
    func forward(_ plan: MovePlan) throws(SealbakError) -> Int {
        var moved = 0
        for step in plan.steps {
            if shouldStop() { throw SealbakError(.interrupted, "interrupted while moving files into \(root)") }
            let (parent, base) = try openParent(step.target)
            if try isDone(step, parent: parent, base: base) { continue }
            let failed = Faults.point("unpack: move \(step.target)")
            var rc: Int32
            if failed {
                rc = -1
                errno = EIO
            } else {
                switch step.kind {
                case .new, .directory: rc = Mover.renameNoReplace(stagingFD, step.staged, parent, base)
                case .exchange:
                    rc = sealbak_rename_exchange(stagingFD, step.staged, parent, base)
                    // The old file went away meanwhile: the new one still must not replace anything else.
                    if rc != 0 && errno == ENOENT { rc = Mover.renameNoReplace(stagingFD, step.staged, parent, base) }
                }
            }
            if rc != 0 {
                let e = errno
                if e == EEXIST {
                    throw SealbakError(
                        .targetExists,
                        "\(displayName(root + "/" + step.target)) appeared while sealbak was unpacking; nothing was "
                            + "replaced"
                    )
                }
                throw SealbakError.io("cannot move into place", path: displayName(root + "/" + step.target), errno: e)
            }
            touched.insert(parentKey(step.target))
            moved += 1
        }
        Faults.point("unpack: every step moved")
        // Directory modes and times last, deepest first, so creating children does not disturb them.
        for a in plan.attributes.reversed() {
            let (parent, base) = try openParent(a.target)
            let fd = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            fchmod(fd, mode_t(a.mode & 0o1777))
            var times = [
                timespec(tv_sec: Int(a.seconds), tv_nsec: Int(a.nanoseconds)),
                timespec(tv_sec: Int(a.seconds), tv_nsec: Int(a.nanoseconds)),
            ]
            futimens(fd, &times)
            fsync(fd)
            close(fd)
        }
        try syncTouched()
        return moved
    }

    /// Undoes every step that was done, last first: exchanged files are swapped back, new names are moved back
    /// into the staging directory, new directories are removed (only if empty). Returns how many were undone.
    @discardableResult
    func backward(_ plan: MovePlan) throws(SealbakError) -> Int {
        var undone = 0
        for step in plan.steps.reversed() {
            let (parent, base): (Int32, String)
            do { (parent, base) = try openParent(step.target) } catch { continue }  // its folder never came
            guard try isDone(step, parent: parent, base: base) else { continue }
            var rc: Int32
            switch step.kind {
            case .new: rc = Mover.renameNoReplace(parent, base, stagingFD, step.staged)
            case .directory: rc = unlinkat(parent, base, AT_REMOVEDIR)
            case .exchange:
                rc = sealbak_rename_exchange(parent, base, stagingFD, step.staged)
                if rc != 0 && errno == ENOENT { rc = Mover.renameNoReplace(parent, base, stagingFD, step.staged) }
            }
            if rc != 0 && !(step.kind == .directory && (errno == ENOTEMPTY || errno == EEXIST)) {
                throw SealbakError.io(
                    "cannot undo the move of",
                    path: displayName(root + "/" + step.target),
                    errno: errno
                )
            }
            touched.insert(parentKey(step.target))
            undone += 1
        }
        try syncTouched()
        return undone
    }

    private func isDone(_ step: MovePlan.Step, parent: Int32, base: String) throws(SealbakError) -> Bool {
        var st = stat()
        if fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) != 0 {
            if errno == ENOENT { return false }
            throw SealbakError.io("cannot inspect", path: displayName(root + "/" + step.target), errno: errno)
        }
        return UInt64(st.st_ino) == step.inode
    }

    private func syncTouched() throws(SealbakError) {
        for key in touched.sorted(by: { $0.bytesPrecede($1) }) {
            let fd =
                key.isEmpty
                ? rootFD : (try? directory(key.split(separator: UInt8(ascii: "/")).map { Array($0) }, key: key)) ?? -1
            if fd >= 0 && fsync(fd) != 0 && errno != EINVAL {
                throw SealbakError.io(
                    "cannot flush",
                    path: displayName(root + "/" + String(decoding: key, as: UTF8.self)),
                    errno: errno
                )
            }
        }
        touched.removeAll()
    }

    private func parentKey(_ name: String) -> [UInt8] {
        let b = Array(name.utf8)
        guard let slash = b.lastIndex(of: UInt8(ascii: "/")) else { return [] }
        return Array(b[..<slash])
    }

    /// The parent directory descriptor of `name` below the root (owned by the cache) and the last component.
    func openParent(_ name: String) throws(SealbakError) -> (Int32, String) {
        // Split on the byte '/', never on grapheme clusters ("/" followed by a combining mark is one Character).
        var components = name.utf8.split(separator: UInt8(ascii: "/")).map { Array($0) }
        let base = String(decoding: components.removeLast(), as: UTF8.self)
        return (try directory(components, key: Array(components.joined(separator: [UInt8(ascii: "/")]))), base)
    }

    private func directory(_ components: [[UInt8]], key: [UInt8]) throws(SealbakError) -> Int32 {
        if components.isEmpty { return rootFD }
        if let fd = cache[key] { return fd }
        let parentComponents = Array(components.dropLast())
        let parent = try directory(
            parentComponents,
            key: Array(parentComponents.joined(separator: [UInt8(ascii: "/")]))
        )
        let c = String(decoding: components.last!, as: UTF8.self)
        let fd = openat(parent, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            let walked = displayName(root + "/" + String(decoding: key, as: UTF8.self))
            if e == ELOOP || e == ENOTDIR {
                throw SealbakError(
                    .corrupt,
                    "\(walked) is a symlink or not a directory; sealbak will not extract through it"
                )
            }
            throw SealbakError.io("cannot open", path: walked, errno: e)
        }
        if cache.count >= 512 {
            // Keep the number of open descriptors bounded; ancestors are reopened (safely) on demand.
            closeAll()
        }
        cache[key] = fd
        return fd
    }

    /// `renameat2(RENAME_NOREPLACE)`; where the file system cannot do it, a rename after checking that the name
    /// is free (the only case where a name appearing in between could be replaced).
    static func renameNoReplace(_ fromFD: Int32, _ from: String, _ toFD: Int32, _ to: String) -> Int32 {
        let rc = sealbak_rename_noreplace(fromFD, from, toFD, to)
        guard rc != 0, errno == EINVAL || errno == ENOSYS else { return rc }
        var st = stat()
        if fstatat(toFD, to, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            errno = EEXIST
            return -1
        }
        return renameat(fromFD, from, toFD, to)
    }
}
