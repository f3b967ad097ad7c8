import Foundation
import SealbakFormat

#if canImport(Glibc)
import Glibc
#endif

/// Temporary files and folders that killed sealbak processes left behind (`kill -9`, a power cut).
///
/// Each such name is `PREFIX` + the PID of the process that made it + `-` + a random part, e.g.
/// `.sealbak-unpack-4711-Ab12Cd` or `.kb.sealbak-restore-4711-123456`. A leftover is stale only when its
/// process is gone (`kill(pid, 0)` fails with ESRCH) and, for a folder, no live process holds an exclusive
/// `flock` on it (a running sealbak locks its staging folder, which also covers a PID that was reused).
package enum Leftovers {
    /// The names in `dir` that start with `prefix` and were left by a process that is gone.
    package static func stale(prefix: String, in dir: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        return names.filter { name in
            guard name.hasPrefix(prefix), let pid = pid(of: name, prefix: prefix) else { return false }
            guard pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { return false }
            return !isLocked(dir + "/" + name)
        }.sorted { $0.utf8Precedes($1) }
    }

    /// Removes what `stale(prefix:in:)` finds (folders with everything in them, never following a symlink);
    /// returns the full paths removed, for a line such as "sealbak: removed DIR/.x left by a killed restore".
    @discardableResult
    package static func removeStale(prefix: String, in dir: String) -> [String] {
        var removed: [String] = []
        for name in stale(prefix: prefix, in: dir) {
            let path = dir + "/" + name
            if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        return removed
    }

    /// The PID in `PREFIX<pid>-…`, if the name has that shape.
    static func pid(of name: String, prefix: String) -> pid_t? {
        let rest = name.utf8.dropFirst(prefix.utf8.count)
        let digits = rest.prefix(while: { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        guard !digits.isEmpty, digits.count <= 10, let pid = Int32(String(decoding: digits, as: UTF8.self)), pid > 0
        else { return nil }
        return pid
    }

    /// Whether another process holds a `flock` on the folder at `path` (files are never locked by sealbak).
    static func isLocked(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 { return errno == EWOULDBLOCK }
        flock(fd, LOCK_UN)
        return false
    }
}
