import CSealbakShims
import Foundation
import SealbakIO
import SealbakSync

#if canImport(Glibc)
import Glibc
#endif

/// A child process (pg_dump, pg_restore) started with `posix_spawn`, arguments passed as an array (no shell).
///
/// Its standard error is collected in the background (the last 64 KiB) so that a failure can be reported with
/// the tool's own words. Ignored signals are reset to their defaults in the child (sealbak ignores SIGPIPE).
package final class Subprocess: Sendable {
    package enum Input { case null, pipe }
    package enum Output { case null, pipe }
    package enum Status: Equatable, Sendable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        package var succeeded: Bool { self == .exited(0) }

        package var description: String {
            switch self {
            case .exited(let c): "exit status \(c)"
            case .signaled(let s): "killed by signal \(s)\(s == SIGKILL ? " (SIGKILL; out of memory?)" : "")"
            }
        }
    }

    package let pid: pid_t
    package let name: String
    /// Write end of the child's standard input (`Input.pipe`), else -1. Close it to signal end of input.
    package var stdinFD: Int32 { stdinState.current }
    private let stdinState: Locked<Int32>
    /// Read end of the child's standard output (`Output.pipe`), else -1.
    package let stdoutFD: Int32
    /// The last 64 KiB of standard error, and the exit status once reaped: `kill` (from a timeout watchdog or an
    /// interrupt handler) holds the same lock, so it never signals a pid that was reaped and perhaps reused.
    private let state = Locked<(stderrText: [UInt8], status: Status?)>(([], nil))
    private let stderrDone = DispatchSemaphore(value: 0)

    /// Whether the child leads a process group of its own, which `kill` ends as a whole.
    private let ownGroup: Bool

    /// - Parameter processGroup: start the child in a new process group, so that `kill` also ends what it started
    ///   (`sh -c 'a | b'`: killing only the shell would leave `a` and `b` holding the pipes open).
    package init(
        executable: String,
        arguments: [String],
        environment: [String: String],
        stdin: Input,
        stdout: Output,
        processGroup: Bool = false
    ) throws(SealbakError) {
        name = (executable as NSString).lastPathComponent
        ownGroup = processGroup
        var inPipe: [Int32] = [-1, -1]
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        func makePipe(_ p: inout [Int32]) throws(SealbakError) {
            if sealbak_pipe_cloexec(&p) != 0 {
                throw SealbakError.io("cannot create a pipe for", path: executable, errno: errno)
            }
        }
        try makePipe(&errPipe)
        if stdin == .pipe {
            try makePipe(&inPipe)
            // A child that stops reading must surface as EPIPE from writeInput (reported with its stderr), not kill us.
            signal(SIGPIPE, SIG_IGN)
        }
        if stdout == .pipe { try makePipe(&outPipe) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if stdin == .pipe {
            posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        if stdout == .pipe {
            posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        _ = sealbak_spawn_close_inherited(&actions)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        if processGroup { posix_spawnattr_setpgroup(&attr, 0) }
        posix_spawnattr_setflags(
            &attr,
            Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (processGroup ? POSIX_SPAWN_SETPGROUP : 0))
        )

        let argv = [executable] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var child: pid_t = 0
        let cArgv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnvp: [UnsafeMutablePointer<CChar>?] = envp.map { strdup($0) } + [nil]
        defer { for p in cArgv + cEnvp { free(p) } }
        let rc = posix_spawn(&child, executable, &actions, &attr, cArgv, cEnvp)
        for fd in [inPipe[0], outPipe[1], errPipe[1]] where fd >= 0 { close(fd) }
        if rc != 0 {
            for fd in [inPipe[1], outPipe[0], errPipe[0]] where fd >= 0 { close(fd) }
            throw SealbakError.io("cannot start", path: executable, errno: rc)
        }
        pid = child
        stdinState = Locked(inPipe[1])
        stdoutFD = outPipe[0]
        let errFD = errPipe[0]
        Thread.detachNewThread { [self] in
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(errFD, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                state.withLock {
                    $0.stderrText.append(contentsOf: buf[0..<n])
                    if $0.stderrText.count > 64 << 10 { $0.stderrText.removeFirst($0.stderrText.count - (64 << 10)) }
                }
            }
            close(errFD)
            stderrDone.signal()
        }
    }

    deinit {
        if stdinFD >= 0 { close(stdinFD) }
        if stdoutFD >= 0 { close(stdoutFD) }
    }

    package func closeStdin() {
        stdinState.withLock { fd in
            if fd >= 0 {
                close(fd)
                fd = -1
            }
        }
    }

    /// Waits for the child to end (once; later calls return the same status).
    @discardableResult
    package func wait() -> Status {
        if let s = state.withLock({ $0.status }) { return s }
        // Wait without reaping, then reap under the lock: `kill` (from a timeout watchdog or an interrupt handler)
        // holds the same lock, so it never signals a pid that was reaped and perhaps reused.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        let s: Status = state.withLock { state in
            if let status = state.status { return status }
            var st: Int32 = 0
            while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
            let s: Status = (st & 0x7f) == 0 ? .exited((st >> 8) & 0xff) : .signaled(st & 0x7f)
            state.status = s
            return s
        }
        stderrDone.wait()
        return s
    }

    /// Ends the child with SIGKILL (with `processGroup`, everything in its group).
    package func kill() {
        state.withLock {
            if $0.status == nil { _ = Glibc.kill(ownGroup ? -pid : pid, SIGKILL) }
        }
    }

    /// What the tool printed on standard error, trimmed.
    package var errorOutput: String {
        state.withLock { String(decoding: $0.stderrText, as: UTF8.self) }.trimmingCharacters(
            in: .whitespacesAndNewlines
        )
    }

    /// Appends what standard output has to `out` (one read); returns the count, 0 at the end.
    @discardableResult
    package func readOutput(into out: inout OutputSpan<UInt8>) throws(SealbakError) -> Int {
        let n = out.appendRead(from: stdoutFD)
        if n < 0 { throw SealbakError.io("cannot read the output of", path: name, errno: errno) }
        return n
    }

    /// Writes all of `bytes` to standard input; false if the child closed it (EPIPE).
    package func writeInput(_ bytes: RawSpan) throws(SealbakError) -> Bool {
        try bytes.withUnsafeBytes { bytes throws(SealbakError) -> Bool in
            var off = 0
            while off < bytes.count {
                let n = write(stdinFD, bytes.baseAddress! + off, bytes.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EPIPE { return false }
                    throw SealbakError.io("cannot write to", path: name, errno: errno)
                }
                off += n
            }
            return true
        }
    }

    /// Runs a command to the end and returns its standard output (for `--version`).
    package static func output(of executable: String, _ arguments: [String]) -> String? {
        guard
            let p = try? Subprocess(
                executable: executable,
                arguments: arguments,
                environment: ProcessInfo.processInfo.environment,
                stdin: .null,
                stdout: .pipe
            )
        else { return nil }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = (try? fillBytes(&buf) { (o) throws(SealbakError) in try p.readOutput(into: &o) }) ?? 0
            if n <= 0 { break }
            out += buf[0..<n]
            if out.count > 1 << 16 {
                p.kill()
                break
            }
        }
        guard p.wait().succeeded else { return nil }
        return String(decoding: out, as: UTF8.self)
    }
}
