import Foundation
import SealbakIO
import SealbakS3

#if canImport(Glibc)
import Glibc
#endif

/// `sealbak status`: whether a plan's backups are healthy, from its run history. Unhealthy when the last run
/// failed or was interrupted, when the last success is older than `max-age`, or when the last archive's size
/// differs from the one before by more than `size-change` (a fraction).
package struct HealthReport: Sendable {
    package var plan: String
    package var lastRun: RunRecord?
    package var lastSuccess: RunRecord?
    package var previousSuccess: RunRecord?
    package var problems: [String] = []
    package var healthy: Bool { problems.isEmpty }

    /// Evaluates `records` (oldest first) at `now`.
    package static func evaluate(
        plan: String,
        records: [RunRecord],
        now: Double,
        maxAge: RetentionDuration?,
        sizeChange: Double?
    ) -> HealthReport {
        let runs = records.filter { $0.kind == .run && $0.status != .busy }
        var r = HealthReport(plan: plan)
        r.lastRun = runs.last
        let successes = runs.filter { ($0.status == .ok || $0.status == .warnings) && $0.archive != nil }
        r.lastSuccess = successes.last
        r.previousSuccess = successes.dropLast().last
        guard let last = r.lastRun else {
            r.problems.append("no run of \(plan) is recorded yet")
            return r
        }
        switch last.status {
        case .failed:
            r.problems.append(
                "the last run (\(RunClock.iso(last.start))) FAILED: \(last.error ?? "exit \(last.exitCode ?? -1)")"
            )
        case .interrupted:
            r.problems.append("the last run (\(RunClock.iso(last.start))) was interrupted: \(last.error ?? "")")
        case .running where last.start < now - 86_400:
            r.problems.append("a run started \(RunClock.iso(last.start)) is still recorded as running")
        default: break
        }
        if let maxAge {
            if let s = r.lastSuccess, let end = s.end {
                let age = now - end
                if age > maxAge.approximateSeconds {
                    r.problems.append(
                        "the last successful run ended \(RunClock.iso(end)), \(describe(age)) ago, more than "
                            + "\(maxAge.text)"
                    )
                }
            } else {
                r.problems.append("no successful run of \(plan) is recorded")
            }
        }
        if let sizeChange, let a = r.lastSuccess?.size, let b = r.previousSuccess?.size, b > 0 {
            let change = (Double(a) - Double(b)) / Double(b)
            if abs(change) > sizeChange {
                r.problems.append(
                    String(
                        format:
                            "the last archive is %@ (%+.0f%%) than the one before (%llu vs %llu bytes), beyond the "
                            + "allowed ±%.0f%%",
                        change > 0 ? "larger" : "smaller",
                        change * 100,
                        a,
                        b,
                        sizeChange * 100
                    )
                )
            }
        }
        return r
    }

    static func describe(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s >= 86_400 { return "\(s / 86_400)d \((s % 86_400) / 3600)h" }
        if s >= 3600 { return "\(s / 3600)h \((s % 3600) / 60)min" }
        return "\(s / 60)min \(s % 60)s"
    }

    /// node_exporter textfile collector format (one gauge per line, labelled with the plan).
    package func prometheusText() -> String {
        let escaped = plan.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let label = "{plan=\"\(escaped)\"}"
        var lines: [String] = []
        func gauge(_ name: String, _ help: String, _ value: Double?) {
            guard let value else { return }
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) gauge")
            let number =
                value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.3f", value)
            lines.append("\(name)\(label) \(number)")
        }
        gauge("sealbak_last_success_timestamp_seconds", "End of the last successful run (Unix time).", lastSuccess?.end)
        gauge("sealbak_last_run_timestamp_seconds", "Start of the last run (Unix time).", lastRun?.start)
        gauge("sealbak_last_run_duration_seconds", "Duration of the last run.", lastRun?.duration)
        gauge(
            "sealbak_last_run_exit_code",
            "Exit code of the last run (0 ok, 15/16 warnings, else failed).",
            lastRun?.exitCode.map { Double($0) }
        )
        let status: Double? = lastRun.map {
            switch $0.status {
            case .ok: 0
            case .warnings: 1
            case .running: 3
            default: 2
            }
        }
        gauge("sealbak_last_run_status", "0 ok, 1 warnings, 2 failed or interrupted, 3 running.", status)
        gauge(
            "sealbak_last_archive_size_bytes",
            "Size of the last successful run's archive.",
            lastSuccess?.size.map { Double($0) }
        )
        gauge("sealbak_healthy", "1 when sealbak status finds nothing wrong.", healthy ? 1 : 0)
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes the textfile atomically (temp file in the same folder, fsync, rename), as node_exporter requires.
    package func writePrometheus(to path: String) throws(SealbakError) {
        try AtomicText.write(prometheusText(), to: path)
    }
}

/// A small text file replaced atomically: a reader sees the old or the new content, never a part.
package enum AtomicText {
    package static func write(_ text: String, to path: String) throws(SealbakError) {
        let dir = (path as NSString).deletingLastPathComponent
        let temp = (dir.isEmpty ? "." : dir) + "/." + (path as NSString).lastPathComponent + ".sealbak-tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SealbakError.io("cannot create", path: temp, errno: errno) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let e = n == bytes.count ? (fsync(fd) == 0 ? 0 : errno) : (n < 0 ? errno : ENOSPC)
        close(fd)
        guard e == 0 else {
            unlink(temp)
            throw SealbakError.io("cannot write", path: temp, errno: e)
        }
        guard rename(temp, path) == 0 else {
            let e = errno
            unlink(temp)
            throw SealbakError.io("cannot replace", path: path, errno: e)
        }
    }
}
