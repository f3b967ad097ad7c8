import CSealbakShims
import Dispatch
import Foundation
import SealbakSync
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Makes the files an unpack wrote durable without `syncfs`.
///
/// `syncfs` would also wait for every other program's dirty pages on the same file system (on a busy database
/// host, the database's). Instead, each staged file's write-back is started as soon as it verified
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait), and `finish()` fsyncs every staged file on
/// a few threads of its own. By then most data is on its way, and the fsyncs share journal commits: on ext4 the
/// first fsync commits the transaction holding all the staged inodes, the others find it committed. Files are
/// reopened by name in the staging directory for that, so no descriptor stays open per file.
final class FlushPool: Sendable {
    private let names = Locked<[String]>([])
    private let threads: Int

    init(threads: Int) {
        self.threads = max(1, threads)
    }

    /// Starts writing `fd` back and closes it; `name` (in the staging directory) is fsynced by `finish`.
    func submit(_ fd: Int32, name: String) throws(SealbakError) {
        _ = sealbak_start_writeback(fd)
        if close(fd) != 0 { throw SealbakError.io("cannot write", path: name, errno: errno) }
        names.withLock { $0.append(name) }
    }

    /// fsyncs every submitted file (in `directoryFD`), `threads` at a time; throws the first failure.
    func finish(in directoryFD: Int32, describing: @escaping @Sendable (String) -> String) throws(SealbakError) {
        let all = names.withLock { n -> [String] in
            defer { n.removeAll() }
            return n
        }
        guard !all.isEmpty else { return }
        let next = Atomic<Int>(0)
        let failure = Locked<SealbakError?>(nil)
        let done = DispatchSemaphore(value: 0)
        let count = min(threads, all.count)
        for _ in 0..<count {
            let t = Thread {
                while true {
                    let i = next.add(1, ordering: .relaxed).oldValue
                    guard i < all.count, failure.withLock({ $0 == nil }) else { break }
                    let fd = openat(directoryFD, all[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                    var rc: Int32 = fd < 0 ? -1 : 0
                    if fd >= 0 {
                        repeat { rc = fsync(fd) } while rc != 0 && errno == EINTR
                    }
                    let e = errno
                    if fd >= 0 { close(fd) }
                    if rc != 0 {
                        failure.withLock { f in
                            if f == nil { f = SealbakError.io("cannot flush", path: describing(all[i]), errno: e) }
                        }
                    }
                }
                done.signal()
            }
            t.name = "sealbak-flush"
            t.start()
        }
        for _ in 0..<count { done.wait() }
        if let e = failure.withLock({ $0 }) { throw e }
    }

    /// Forgets what was submitted (the unpack is abandoned).
    func cancel() { names.withLock { $0.removeAll() } }
}

/// Where an unpack is, shared with the interrupt handler (which runs on a thread of its own).
final class PhaseGuard: Sendable {
    private enum Phase { case staging, moving, removing, done }
    private let state = Locked<(phase: Phase, interrupted: Bool)>((.staging, false))

    /// Whether an interrupt asked the move to stop (then it is undone).
    var interrupted: Bool { state.withLock { $0.interrupted } }

    /// Enters the move phase; false when an interrupt came first.
    func begin() -> Bool {
        let ok = state.withLock { s in
            guard s.phase == .staging, !s.interrupted else { return false }
            s.phase = .moving
            return true
        }
        if !ok { waitWhileRemoving() }
        return ok
    }

    /// Waits until the interrupt handler has removed the staging directory (so the caller does not exit first).
    private func waitWhileRemoving() {
        while state.withLock({ $0.phase }) == .removing { usleep(1_000) }
    }

    /// Back to staging (the move plan could not be committed; nothing moved).
    func back() { state.withLock { $0.phase = .staging } }

    /// The move (or its undoing) is over; returns false if it already was.
    @discardableResult
    func finish() -> Bool {
        waitWhileRemoving()
        return state.withLock { s in
            if s.phase == .done { return false }
            s.phase = .done
            return true
        }
    }

    /// The interrupt handler: while staging, removes the staging directory at once (nothing reached the target);
    /// while moving, asks the mover to stop and waits until it has undone its steps.
    func interrupt(removing staging: String) {
        let removeNow = state.withLock { s -> Bool in
            s.interrupted = true
            if s.phase == .staging {
                s.phase = .removing
                return true
            }
            return false
        }
        if removeNow {
            // The unpack may still be creating files in it: retry until the directory is gone (once it is, no
            // file can be created in it any more).
            for _ in 0..<1000 {
                try? FileManager.default.removeItem(atPath: staging)
                if access(staging, F_OK) != 0 && errno == ENOENT { break }
            }
            state.withLock { $0.phase = .done }
            return
        }
        while state.withLock({ $0.phase }) == .moving { usleep(5_000) }
    }
}
