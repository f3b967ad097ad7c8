import Foundation
import SealbakSync

#if canImport(Glibc)
import Glibc
#endif

/// Fault injection for the commit steps of a restore (debug builds only; release builds compile it away).
///
/// `SEALBAK_FAULT=restore:N:kill` makes the N-th step (counting from 1: every rename, exchange and journal write
/// of a restore's commit, rollback and finalize) kill the process with SIGKILL just before it runs;
/// `…:fail` makes it fail with EIO instead. Tests use it to prove all-old-or-all-new at every step.
package enum Fault {
    #if DEBUG
    private static let spec: (String, Int, String)? = {
        guard let v = ProcessInfo.processInfo.environment["SEALBAK_FAULT"] else { return nil }
        let p = v.split(separator: ":").map(String.init)
        guard p.count == 3, let n = Int(p[1]) else { return nil }
        return (p[0], n, p[2])
    }()
    private static let counter = Locked(0)
    #endif

    /// Marks one step of `area`; may kill the process or throw when a fault is injected there.
    package static func point(_ area: String, _ what: String) throws(SealbakError) {
        #if DEBUG
        guard let (a, n, action) = spec, a == area else { return }
        let k = counter.withLock { n -> Int in
            n += 1
            return n
        }
        if ProcessInfo.processInfo.environment["SEALBAK_FAULT_TRACE"] != nil {
            FileHandle.standardError.write(Data("sealbak: fault point \(area) #\(k): \(what)\n".utf8))
        }
        guard k == n else { return }
        if action == "kill" { kill(getpid(), SIGKILL) }
        throw SealbakError(.io, "injected fault at \(area) step \(k) (\(what)): input/output error")
        #endif
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
        let n = counter.withLock { c -> Int in
            c += 1
            return c
        }
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
