import Dispatch
import Foundation
import SealbakSync
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Cleans up temporary outputs when the process is interrupted (SIGINT, SIGTERM, SIGHUP), so an interrupted
/// `pack` or `unpack` leaves neither a half-written archive nor a staging directory behind.
///
/// Signals are received through dispatch sources, so the cleanup runs on a normal thread (not in a signal
/// handler) and may use any API. The process then exits with 128 + signal number.
package enum Interrupts {
    private static let state = Locked<(next: Int, cleanups: [Int: @Sendable () -> Void])>((0, [:]))
    private static let sources = Locked<[any DispatchSourceSignal]>([])
    /// A serial queue of its own: it targets the overcommitting root queue, so its handler gets a thread at once
    /// even while every worker of the global pool is blocked in the frame pipeline (on `.global()` it waited ~5 s).
    private static let queue = DispatchQueue(label: "sealbak.interrupts")
    private static let received = Atomic<Bool>(false)

    /// Whether a handled signal arrived (set before any cleanup runs); long loops check it to stop early.
    package static var pending: Bool { received.load(ordering: .acquiring) }

    /// Installs the handlers once; later calls do nothing.
    package static func install() {
        sources.withLock { sources in
            guard sources.isEmpty else { return }
            for sig in [SIGINT, SIGTERM, SIGHUP] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
                source.setEventHandler {
                    received.store(true, ordering: .releasing)
                    // Inside `deferring`, the signal waits until the protected steps are done.
                    let deferred = deferral.withLock { d -> Bool in
                        guard d.depth > 0 else { return false }
                        if d.pending == nil { d.pending = sig }
                        return true
                    }
                    if deferred { return }
                    let cleanups = state.withLock { s in Array(s.cleanups.values) }
                    for c in cleanups { c() }
                    _exit(128 + sig)
                }
                source.resume()
                sources.append(source)
            }
        }
    }

    private static let deferral = Locked<(depth: Int, pending: Int32?)>((0, nil))

    /// Runs `body` with SIGINT/SIGTERM/SIGHUP held back: a signal that arrives meanwhile is acted on (cleanups,
    /// exit 128 + signal) once `body` has returned or thrown, so a multi-step commit is never cut in the middle.
    package static func deferring<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        deferral.withLock { $0.depth += 1 }
        defer {
            let pending = deferral.withLock { d -> Int32? in
                d.depth -= 1
                return d.depth == 0 ? d.pending : nil
            }
            if let sig = pending {
                let cleanups = state.withLock { s in Array(s.cleanups.values) }
                for c in cleanups { c() }
                _exit(128 + sig)
            }
        }
        return try body()
    }

    /// Runs `body`, the step that makes an output final (an upload's completion), with SIGINT/SIGTERM/SIGHUP held
    /// back, and tells the truth about a signal that arrived meanwhile: if `body` succeeded, the output exists,
    /// so `stored` is printed and the process exits 0 after the cleanups; if it failed, the cleanups run and the
    /// process exits with 128 + the signal number as usual.
    package static func completing<T, E: Error>(
        stored: @autoclosure () -> String,
        _ body: () throws(E) -> T
    ) throws(E) -> T {
        deferral.withLock { $0.depth += 1 }
        var succeeded = false
        defer {
            let pending = deferral.withLock { d -> Int32? in
                d.depth -= 1
                return d.depth == 0 ? d.pending : nil
            }
            if let sig = pending {
                if succeeded {
                    let line =
                        "sealbak: interrupted (signal \(sig)) while the upload completed; it completed: \(stored())\n"
                    _ = line.withCString { write(2, $0, strlen($0)) }
                }
                let cleanups = state.withLock { s in Array(s.cleanups.values) }
                for c in cleanups { c() }
                _exit(succeeded ? 0 : 128 + sig)
            }
        }
        let value = try body()
        succeeded = true
        return value
    }

    /// Called by a thread that stopped because of a signal: waits for the handler, which runs the cleanups and
    /// exits with 128 + the signal number (so the status does not depend on which thread gets there first).
    package static func waitForHandlerExit() -> Never {
        while true { usleep(100_000) }
    }

    /// Registers a cleanup; returns a token for `unregister`.
    package static func register(_ cleanup: @escaping @Sendable () -> Void) -> Int {
        state.withLock { s in
            s.next += 1
            s.cleanups[s.next] = cleanup
            return s.next
        }
    }

    package static func unregister(_ token: Int) {
        _ = state.withLock { s in s.cleanups.removeValue(forKey: token) }
    }
}
