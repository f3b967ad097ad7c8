import CSealbakShims
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes everything to a file descriptor, retrying short writes and EINTR.
package func writeAll(fd: Int32, _ bytes: RawSpan, path: String) throws(SealbakError) {
    try bytes.withUnsafeBytes { bytes throws(SealbakError) in
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw SealbakError.io("cannot write", path: path, errno: errno)
            }
            done += n
        }
    }
}

/// An output that becomes visible under its final name only when committed (docs/usage.md).
///
/// Where the file system supports it the data goes to an unnamed `O_TMPFILE` file beside the target, so a crash
/// or `kill -9` leaves nothing behind at all; elsewhere to a temp file `.NAME.sealbak-tmp-XXXXXX`, removed on
/// failure or interrupt. On commit the file is fsynced, then linked under the final name (without `overwrite`:
/// `linkat` fails if the name exists, so nothing is ever clobbered) or renamed over it, and the directory is
/// fsynced. Standard output is written directly (there is nothing to rename).
package final class AtomicOutput {
    package let fd: Int32
    package let path: String
    private var tempPath: String?
    private let anonymous: Bool
    private let overwrite: Bool
    private let mode: mode_t
    private var finished = false
    private var interruptToken: Int?
    package private(set) var bytesWritten: UInt64 = 0
    /// Where write-back was last started: every `writebackStep` bytes the kernel is told to start writing the
    /// new data out, so that the fsync in `commit` finds most of it on disk instead of writing the whole archive
    /// while nothing else runs (measured: 0.17 s of a 2.3 s pack of 840 MB).
    private var writebackStarted: UInt64 = 0
    private static let writebackStep: UInt64 = 8 << 20

    package init(path: String, overwrite: Bool, mode: mode_t = 0o600) throws(SealbakError) {
        self.path = path
        self.overwrite = overwrite
        self.mode = mode
        if path == "-" {
            fd = 1
            anonymous = false
            return
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR {
                throw SealbakError(.targetExists, "\(path) is a directory; give a file name for the archive")
            }
            if !overwrite { throw SealbakError(.targetExists, "\(path) already exists; use --force to replace it") }
        }
        let (dir, base) = splitPath(path)
        AtomicOutput.removeStaleTemps(for: path)
        // O_TMPFILE needs /proc to be given a name later; without it, use a named temp file.
        let t = access("/proc/self/fd", F_OK) == 0 ? sealbak_open_tmpfile(dir, 0o600) : -1
        if t >= 0 {
            fd = t
            anonymous = true
            return
        }
        var template = Array("\(dir)/.\(base).sealbak-tmp-\(getpid())-XXXXXX".utf8CString)
        let d = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if d < 0 { throw SealbakError.io("cannot create a temporary file in", path: dir, errno: errno) }
        fd = d
        anonymous = false
        let temp = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        tempPath = temp
        interruptToken = Interrupts.register { unlink(temp) }
    }

    deinit { abandon() }

    package func write(_ bytes: RawSpan) throws(SealbakError) {
        try writeAll(fd: fd, bytes, path: path == "-" ? "standard output" : path)
        bytesWritten += UInt64(bytes.byteCount)
        if path != "-" && bytesWritten - writebackStarted >= Self.writebackStep {
            // Does not wait (SYNC_FILE_RANGE_WRITE only); failure is harmless, the fsync in `commit` decides.
            _ = sealbak_start_writeback_range(fd, Int64(writebackStarted), Int64(bytesWritten - writebackStarted))
            writebackStarted = bytesWritten
        }
    }

    /// fsync, give the data its final name, fsync the directory.
    package func commit() throws(SealbakError) {
        guard path != "-", !finished else {
            finished = true
            return
        }
        defer {
            interruptToken.map(Interrupts.unregister)
            interruptToken = nil
        }
        fchmod(fd, mode)
        Faults.point("output: before fsync")
        if fsync(fd) != 0 { throw SealbakError.io("cannot flush", path: path, errno: errno) }
        Faults.point("output: after fsync")
        if anonymous {
            if overwrite {
                // Name it beside the target, then rename over the target (atomic replacement).
                let (dir, base) = splitPath(path)
                let temp = "\(dir)/.\(base).sealbak-tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                if sealbak_link_tmpfile(fd, temp) != 0 {
                    throw SealbakError.io("cannot create", path: temp, errno: errno)
                }
                tempPath = temp
                interruptToken = Interrupts.register { unlink(temp) }
                Faults.point("output: linked temp name")
            } else {
                if sealbak_link_tmpfile(fd, path) != 0 {
                    let e = errno
                    if e == EEXIST {
                        throw SealbakError(.targetExists, "\(path) already exists; use --force to replace it")
                    }
                    throw SealbakError.io("cannot create", path: path, errno: e)
                }
                finished = true
                close(fd)
                fsyncDirectory(splitPath(path).dir)
                return
            }
        }
        close(fd)
        finished = true
        guard let tempPath else { return }
        if overwrite {
            if rename(tempPath, path) != 0 {
                let e = errno
                unlink(tempPath)
                throw SealbakError.io("cannot rename the finished archive to", path: path, errno: e)
            }
        } else {
            // link(2) fails with EEXIST if the name appeared meanwhile: never replace what we did not check.
            if link(tempPath, path) != 0 {
                let e = errno
                unlink(tempPath)
                if e == EEXIST {
                    throw SealbakError(.targetExists, "\(path) already exists; use --force to replace it")
                }
                throw SealbakError.io("cannot create", path: path, errno: e)
            }
            unlink(tempPath)
        }
        Faults.point("output: renamed")
        fsyncDirectory(splitPath(path).dir)
    }

    /// Removes `.NAME.sealbak-tmp-PID-…` files beside `path` whose process is gone. Such a file can only be
    /// left by a crash in the instant between naming a finished replacement and renaming it over NAME
    /// (Spec §11.3); it is then a complete archive, so it must not linger.
    package static func removeStaleTemps(for path: String) {
        let (dir, base) = splitPath(path)
        let prefix = ".\(base).sealbak-tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let pidText = rest.split(separator: "-").first, let pid = Int32(pidText), pid > 0 else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH {
                unlink("\(dir)/\(name)")
            }
        }
    }

    /// Discards the output; nothing appears under the final name.
    package func abandon() {
        guard !finished else { return }
        finished = true
        interruptToken.map(Interrupts.unregister)
        if path == "-" { return }
        close(fd)
        if let tempPath { unlink(tempPath) }
    }
}

func splitPath(_ path: String) -> (dir: String, base: String) {
    if let slash = path.lastIndex(of: "/") {
        let dir = String(path[..<slash])
        return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
    }
    return (".", path)
}

/// Makes a rename or link in `dir` durable (best effort: a folder that cannot be opened is left alone).
package func fsyncDirectory(_ dir: String) {
    let d = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if d >= 0 {
        fsync(d)
        close(d)
    }
}
