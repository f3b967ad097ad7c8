import Foundation
import SealbakIO
import SealbakS3

/// The plan's `health-check:` after a restore: a URL that must answer 2xx, or a command that must exit 0,
/// tried `retries + 1` times `interval` seconds apart. A failure rolls the restore back.
package struct HealthCheck: Sendable {
    package var url: String?
    package var command: CommandSpec?
    package var retries = 10
    package var interval = 3.0
    package var timeout = 30.0

    package init() {}

    package var display: String {
        (url.map { "GET \($0)" } ?? command?.display ?? "?") + ", \(retries + 1) tries \(interval) s apart"
    }

    /// Tries until the check passes or the tries are used up; throws `.restoreMismatch` with the last answer.
    package func wait(log: EngineLog) throws(SealbakError) {
        var last = ""
        for attempt in 0...retries {
            if attempt > 0 { usleep(UInt32(interval * 1_000_000)) }
            if let url {
                let (status, detail) = HTTPProbe.get(url)
                if let status, (200..<300).contains(status) {
                    log.info("health check passed: \(url) answered \(status)")
                    return
                }
                last = status.map { "HTTP \($0)\(detail.isEmpty ? "" : ": " + detail)" } ?? detail
            } else if var command {
                command.timeoutSeconds = timeout
                let r = try command.run(input: nil, what: "the health check")
                if r.status.succeeded {
                    log.info("health check passed: \(command.display)")
                    return
                }
                last =
                    (r.timedOut ? "timed out after \(Int(timeout)) s" : "\(r.status)")
                    + (r.errorText.isEmpty ? "" : ": " + r.errorText)
            }
        }
        throw SealbakError(.restoreMismatch, "the health check (\(display)) failed: \(last)")
    }
}
