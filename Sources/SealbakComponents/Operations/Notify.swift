import Foundation
import SealbakIO
import SealbakS3

extension Operations {
    /// Sends `record` to every `notify:` entry that listens to its outcome: a command gets the JSON record on
    /// standard input (and `SEALBAK_EVENT`, `SEALBAK_PLAN`, `SEALBAK_EXIT_CODE` in its environment), a webhook
    /// gets it POSTed as `application/json`. A notification that fails is a warning: it never changes the run's
    /// exit code, and it is returned so that the caller can record it.
    package func sendNotifications(_ record: RunRecord, log: EngineLog) -> [String] {
        let event: Notify.Event
        switch record.status {
        case .ok: event = .success
        case .warnings: event = .warning
        default: event = .failure
        }
        var problems: [String] = []
        let body = record.jsonLine()
        for n in notify where n.on.contains(event) {
            if let url = n.webhook {
                let (status, detail) = HTTPProbe.postJSON(
                    url,
                    body,
                    timeoutSeconds: max(1, Int(n.timeout.rounded(.up)))
                )
                if let status, (200..<300).contains(status) {
                    log.info("notified \(Operations.redact(url)): HTTP \(status)")
                    continue
                }
                problems.append(
                    "the notify webhook \(Operations.redact(url)) failed: \(status.map { "HTTP \($0)" } ?? detail)"
                )
            } else if var command = n.command {
                command.timeoutSeconds = n.timeout
                do {
                    let env = [
                        "SEALBAK_EVENT": event.rawValue, "SEALBAK_PLAN": record.plan,
                        "SEALBAK_EXIT_CODE": String(record.exitCode ?? 0),
                    ]
                    let r = try command.run(environment: env, input: body, what: "the notify command")
                    if r.status.succeeded {
                        log.info("notified: \(command.display)")
                        continue
                    }
                    let reason = r.timedOut ? "timed out" : "\(r.status)"
                    let detail = r.errorText.isEmpty ? "" : ": " + r.errorText
                    problems.append("the notify command \(command.display) failed (\(reason))\(detail)")
                } catch {
                    problems.append("the notify command \(command.display) could not run: \(error.message)")
                }
            }
        }
        for p in problems { log.warning(p) }
        return problems
    }

    /// A URL without its user-info and query (where webhook tokens live) for messages.
    package static func redact(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return "(webhook)" }
        let hadQuery = c.query != nil
        c.user = nil
        c.password = nil
        c.query = nil
        return (c.string ?? "(webhook)") + (hadQuery ? "?…" : "")
    }
}
