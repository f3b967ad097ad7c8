import CSealbakShims
import Foundation
import SealbakSync
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A buffered, sequential reader over a file descriptor that can also read at absolute offsets when seekable.
package final class InputFile {
    package let fd: Int32
    package let path: String
    private let ownsDescriptor: Bool
    private var buffer: [UInt8]
    private var bufferStart = 0
    private var bufferEnd = 0
    /// Bytes consumed so far by sequential reads (the archive offset of the next byte).
    package private(set) var position: UInt64 = 0
    package let isSeekable: Bool
    package let size: UInt64?
    /// In-memory input (fuzzing, tests): read instead of the descriptor.
    private let memory: [UInt8]?
    private var memoryPosition = 0
    /// Remote input (an `s3://` object): sequential and ranged reads go to it.
    package let remote: (any RemoteSource)?
    /// Bytes taken from the remote source by sequential reads (buffered ones included).
    private var remoteOffset: UInt64 = 0

    /// Reads what was written so far to `output` (from its start), e.g. to verify an archive before committing it.
    package init(readingBack output: AtomicOutput) throws(SealbakError) {
        let d = output.path == "-" ? -1 : sealbak_reopen_read(output.fd)
        if d < 0 { throw SealbakError(.internalError, "cannot read back \(output.path)") }
        fd = d
        ownsDescriptor = true
        path = output.path
        memory = nil
        remote = nil
        var st = stat()
        fstat(d, &st)
        isSeekable = true
        size = UInt64(st.st_size)
        buffer = [UInt8](repeating: 0, count: 1 << 20)
    }

    /// Reads from memory, as a seekable file or as a pipe (for the fuzzer and tests; no I/O at all).
    package init(bytes: [UInt8], name: String, seekable: Bool) {
        fd = -1
        ownsDescriptor = false
        path = name
        memory = bytes
        remote = nil
        isSeekable = seekable
        size = seekable ? UInt64(bytes.count) : nil
        buffer = [UInt8](repeating: 0, count: 1 << 16)
    }

    /// Opens the local file `path` for reading (`-` means standard input). Archives that may be remote objects
    /// are opened through `ArchiveLocations.input`.
    package init(path: String) throws(SealbakError) {
        if ArchiveLocations.isRemote(path) { throw ArchiveLocations.unavailable(path) }
        remote = nil
        if path == "-" {
            fd = 0
            ownsDescriptor = false
            self.path = "standard input"
        } else {
            let d = open(path, O_RDONLY | O_CLOEXEC)
            if d < 0 { throw SealbakError.io("cannot open", path: path, errno: errno) }
            var st = stat()
            if fstat(d, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                close(d)
                throw SealbakError(.usage, "\(path) is a directory, not an archive")
            }
            fd = d
            ownsDescriptor = true
            self.path = path
        }
        memory = nil
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG {
            isSeekable = lseek(fd, 0, SEEK_CUR) >= 0
            size = UInt64(st.st_size)
        } else {
            isSeekable = false
            size = nil
        }
        buffer = [UInt8](repeating: 0, count: 1 << 20)
    }

    /// Reads a remote object (random access through ranged requests).
    package init(remote: any RemoteSource) {
        fd = -1
        ownsDescriptor = false
        path = remote.name
        memory = nil
        self.remote = remote
        isSeekable = true
        size = remote.size
        buffer = [UInt8](repeating: 0, count: 1 << 20)
    }

    deinit { if ownsDescriptor { close(fd) } }

    /// Tells a remote input which bytes the next `read(at:)` calls will cover (local inputs ignore it).
    package func willRead(_ range: Range<UInt64>) { remote?.willRead(range) }

    /// Reads up to `count` bytes sequentially; fewer only at end of input.
    package func read(upTo count: Int) throws(SealbakError) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count)
        while out.count < count {
            if bufferStart == bufferEnd {
                if try !refill() { break }
            }
            let n = min(count - out.count, bufferEnd - bufferStart)
            out.append(contentsOf: buffer[bufferStart..<bufferStart + n])
            bufferStart += n
        }
        position += UInt64(out.count)
        return out
    }

    /// Skips `count` bytes sequentially; returns how many were skipped (fewer only at end of input).
    package func skip(_ count: UInt64) throws(SealbakError) -> UInt64 {
        var left = count
        if let remote, left > UInt64(bufferEnd - bufferStart) {
            // Skip without fetching: drop what is buffered and move the remote offset.
            left -= UInt64(bufferEnd - bufferStart)
            bufferStart = 0
            bufferEnd = 0
            let n = min(left, remote.size - min(remote.size, remoteOffset))
            remoteOffset += n
            left -= n
            position += count - left
            return count - left
        }
        while left > 0 {
            if bufferStart == bufferEnd {
                if try !refill() { break }
            }
            let n = Int(min(left, UInt64(bufferEnd - bufferStart)))
            bufferStart += n
            left -= UInt64(n)
        }
        position += count - left
        return count - left
    }

    /// True when no byte is left.
    package func atEnd() throws(SealbakError) -> Bool {
        if bufferStart < bufferEnd { return false }
        return try !refill()
    }

    private func refill() throws(SealbakError) -> Bool {
        if let remote {
            var result: Result<Int, SealbakError> = .success(0)
            let at = remoteOffset
            buffer.withUnsafeMutableBytes { b in
                result = Result { () throws(SealbakError) in try remote.readSequential(at: at, into: b) }
            }
            let n = try result.get()
            remoteOffset += UInt64(n)
            bufferStart = 0
            bufferEnd = n
            return n > 0
        }
        if let memory {
            let n = min(buffer.count, memory.count - memoryPosition)
            if n > 0 {
                buffer.withUnsafeMutableBytes { b in memory.withUnsafeBytes { m in b.copyMemory(from: UnsafeRawBufferPointer(rebasing: m[memoryPosition..<memoryPosition + n])) } }
                memoryPosition += n
            }
            bufferStart = 0
            bufferEnd = n
            return n > 0
        }
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SealbakError.io("cannot read", path: path, errno: errno)
            }
            bufferStart = 0
            bufferEnd = n
            return n > 0
        }
    }

    /// Reads exactly `count` bytes at `offset` (seekable inputs only); fewer only at end of file.
    package func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8] {
        precondition(isSeekable)
        if let remote { return try remote.read(at: offset, count: count) }
        if let memory {
            guard offset < UInt64(memory.count) else { return [] }
            let lo = Int(offset)
            return Array(memory[lo..<min(memory.count, lo + count)])
        }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SealbakError.io("cannot read", path: path, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        out.removeLast(count - done)
        return out
    }
}

/// Writes everything to a file descriptor, retrying short writes and EINTR.
package func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SealbakError) {
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
            if (st.st_mode & S_IFMT) == S_IFDIR { throw SealbakError(.targetExists, "\(path) is a directory; give a file name for the archive") }
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

    package func write(_ bytes: UnsafeRawBufferPointer) throws(SealbakError) {
        try writeAll(fd: fd, bytes, path: path == "-" ? "standard output" : path)
        bytesWritten += UInt64(bytes.count)
    }

    /// fsync, give the data its final name, fsync the directory.
    package func commit() throws(SealbakError) {
        guard path != "-", !finished else { finished = true; return }
        defer { interruptToken.map(Interrupts.unregister); interruptToken = nil }
        fchmod(fd, mode)
        Faults.point("output: before fsync")
        if fsync(fd) != 0 { throw SealbakError.io("cannot flush", path: path, errno: errno) }
        Faults.point("output: after fsync")
        if anonymous {
            if overwrite {
                // Name it beside the target, then rename over the target (atomic replacement).
                let temp = "\(splitPath(path).dir)/.\(splitPath(path).base).sealbak-tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                if sealbak_link_tmpfile(fd, temp) != 0 { throw SealbakError.io("cannot create", path: temp, errno: errno) }
                tempPath = temp
                interruptToken = Interrupts.register { unlink(temp) }
                Faults.point("output: linked temp name")
            } else {
                if sealbak_link_tmpfile(fd, path) != 0 {
                    let e = errno
                    if e == EEXIST { throw SealbakError(.targetExists, "\(path) already exists; use --force to replace it") }
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
                if e == EEXIST { throw SealbakError(.targetExists, "\(path) already exists; use --force to replace it") }
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

/// Crash and failure injection for tests (debug builds only; release builds ignore all of it).
///
/// - `SEALBAK_TEST_CRASH_AT=N` makes the N-th fault point of the process end it at once, as a power cut or
///   `kill -9` would: with `_exit(86)`, or with `SEALBAK_TEST_CRASH_SIGNAL=KILL` by sending itself SIGKILL.
/// - `SEALBAK_TEST_FAIL_AT=N` makes the N-th fault point return `true`: the caller then fails that step as if
///   the system call had failed with EIO (a permission error or a full disk in the middle of a move).
/// - `SEALBAK_TEST_SIGNAL_AT=N` makes the process send itself SIGTERM (or `SEALBAK_TEST_SIGNAL=INT`) at the N-th
///   point and go on once the handler saw it, as if Ctrl-C came exactly there.
/// - `SEALBAK_TEST_HOOK_POINT=NAME` with `SEALBAK_TEST_HOOK=COMMAND` runs `/bin/sh -c COMMAND` (without the
///   `SEALBAK_TEST_*` variables) at the point called NAME and waits for it: another command runs exactly there
///   (e.g. a `key passwd` in the middle of a `rekey`), an ordering no timing can promise.
/// - `SEALBAK_TEST_CRASH_VERBOSE` prints the name of the point where the crash or failure happens.
package enum Faults {
    #if DEBUG
    private static let environment = ProcessInfo.processInfo.environment
    private static let target: Int? = environment["SEALBAK_TEST_CRASH_AT"].flatMap(Int.init)
    private static let failure: Int? = environment["SEALBAK_TEST_FAIL_AT"].flatMap(Int.init)
    private static let signalAt: Int? = environment["SEALBAK_TEST_SIGNAL_AT"].flatMap(Int.init)
    private static let hookPoint: String? = environment["SEALBAK_TEST_HOOK_POINT"]
    private static let counter = Locked(0)
    #endif

    /// A fault point; returns `true` when the test asked this step to fail.
    @discardableResult
    package static func point(_ name: @autoclosure () -> String) -> Bool {
        #if DEBUG
        guard target != nil || failure != nil || signalAt != nil || hookPoint != nil else { return false }
        let name = name()
        if name == hookPoint, let command = environment["SEALBAK_TEST_HOOK"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command]
            p.environment = environment.filter { !$0.key.hasPrefix("SEALBAK_TEST_") }
            try? p.run()
            p.waitUntilExit()
        }
        let n = counter.withLock { c -> Int in c += 1; return c }
        if n == signalAt {
            kill(getpid(), environment["SEALBAK_TEST_SIGNAL"] == "INT" ? SIGINT : SIGTERM)
            for _ in 0..<10_000 where !Interrupts.pending { usleep(1_000) }
        }
        if n == target || n == failure, environment["SEALBAK_TEST_CRASH_VERBOSE"] != nil {
            let line = "sealbak: test \(n == target ? "crash" : "failure") at fault point \(n) (\(name))\n"
            _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        }
        if n == target {
            if environment["SEALBAK_TEST_CRASH_SIGNAL"] == "KILL" { kill(getpid(), SIGKILL) }
            _exit(86)
        }
        return n == failure
        #else
        return false
        #endif
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
