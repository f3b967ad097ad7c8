import Foundation
import SealbakSync

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
        let k = counter.withLock { n -> Int in n += 1; return n }
        if ProcessInfo.processInfo.environment["SEALBAK_FAULT_TRACE"] != nil {
            FileHandle.standardError.write(Data("sealbak: fault point \(area) #\(k): \(what)\n".utf8))
        }
        guard k == n else { return }
        if action == "kill" { kill(getpid(), SIGKILL) }
        throw SealbakError(.io, "injected fault at \(area) step \(k) (\(what)): input/output error")
        #endif
    }
}
