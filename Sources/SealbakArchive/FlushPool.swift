#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Synchronization

/// Makes the files an unpack wrote durable, a few at a time, on threads of its own.
///
/// `syncfs` would also wait for every other program's dirty pages on the same file system (on a busy database
/// host, the database's); fsyncing just our files waits for our data only. Each staged file is handed over as
/// soon as it verified, so the flushes overlap with decoding the next entries; `finish()` waits for the rest.
/// At most `maxOpen` descriptors wait at a time (the submitter blocks beyond that).
final class FlushPool: Sendable {
    private struct State {
        var queue: [(fd: Int32, name: String)] = []
        var error: SealbakError?
        var stopping = false
        var started = 0
    }

    private let state = Mutex(State())
    private let items = DispatchSemaphore(value: 0)
    private let completions = DispatchSemaphore(value: 0)
    private let slots: DispatchSemaphore
    private let threads: Int
    private let submitted = Mutex(0)

    init(threads: Int, maxOpen: Int = 64) {
        self.threads = max(1, threads)
        slots = DispatchSemaphore(value: maxOpen)
    }

    /// Queues `fd` to be fsynced and closed (the pool owns it from now on).
    func submit(_ fd: Int32, name: String) throws(SealbakError) {
        if let e = state.withLock({ $0.error }) {
            close(fd)
            throw e
        }
        slots.wait()
        let startThread = state.withLock { s -> Bool in
            s.queue.append((fd, name))
            if s.started < threads {
                s.started += 1
                return true
            }
            return false
        }
        submitted.withLock { $0 += 1 }
        if startThread {
            let t = Thread { [self] in work() }
            t.name = "sealbak-flush"
            t.start()
        }
        items.signal()
    }

    private func work() {
        while true {
            items.wait()
            let next = state.withLock { s -> (fd: Int32, name: String)? in s.queue.isEmpty ? nil : s.queue.removeFirst() }
            guard let (fd, name) = next else { return }  // woken to stop
            var rc: Int32
            repeat { rc = fsync(fd) } while rc != 0 && errno == EINTR
            let e = errno
            close(fd)
            if rc != 0 {
                state.withLock { s in if s.error == nil { s.error = SealbakError.io("cannot flush", path: name, errno: e) } }
            }
            slots.signal()
            completions.signal()
        }
    }

    /// Waits until every submitted file is durable and stops the threads; throws the first flush error.
    func finish() throws(SealbakError) {
        let n = submitted.withLock { n -> Int in defer { n = 0 }; return n }
        for _ in 0..<n { completions.wait() }
        stop()
        if let e = state.withLock({ $0.error }) { throw e }
    }

    /// Closes what was not flushed yet (the unpack is abandoned) and stops the threads.
    func cancel() {
        let pending = state.withLock { s -> [(fd: Int32, name: String)] in defer { s.queue.removeAll() }; return s.queue }
        for p in pending {
            close(p.fd)
            slots.signal()
        }
        // Items already taken by a thread still complete; the count of waiters no longer matters.
        submitted.withLock { $0 = 0 }
        stop()
    }

    private func stop() {
        let started = state.withLock { s -> Int in
            if s.stopping { return 0 }
            s.stopping = true
            return s.started
        }
        for _ in 0..<started { items.signal() }
    }
}

/// Where an unpack is, shared with the interrupt handler (which runs on a thread of its own).
final class PhaseGuard: Sendable {
    private enum Phase { case staging, moving, removing, done }
    private let state = Mutex<(phase: Phase, interrupted: Bool)>((.staging, false))

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
