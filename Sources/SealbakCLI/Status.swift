import ArgumentParser
import Foundation
import SealbakComponents
import SealbakIO
import SealbakS3

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "Check a plan's backups for monitoring: exit 18 when the last run failed, the last success is too old, "
            + "or the archive size jumped.",
        discussion: """
            Thresholds come from the plan's status: block; flags win. --prometheus writes a node_exporter textfile \
            (atomically) as well.

            Examples:
              sealbak status --plan /etc/sealbak/app.yaml --max-age 26h        # a monitoring check: 0 or 18
              sealbak status --plan /etc/sealbak/app.yaml --prometheus /var/lib/node_exporter/sealbak-app.prom --quiet
            """
    )

    @Option(name: .long, help: ArgumentHelp("The backup plan.", valueName: "FILE"))
    var plan: String

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Unhealthy when the last successful run ended longer ago than this (e.g. 26h, 2d).",
            valueName: "DURATION"
        )
    )
    var maxAge: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Unhealthy when the last archive's size differs from the one before by more than this fraction (0.5 = "
                + "±50%).",
            valueName: "FRACTION"
        )
    )
    var sizeChange: Double?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Also write the metrics to this node_exporter textfile (e.g. "
                + "/var/lib/prometheus/node-exporter/sealbak.prom).",
            valueName: "FILE"
        )
    )
    var prometheus: String?

    @Flag(name: [.short, .long], help: "Print only problems.")
    var quiet = false

    @OptionGroup(title: "Output") var output: OutputOptions

    @Option(name: .long, help: .hidden)
    var now: String?

    static let unhealthyExitStatus: Int32 = 18

    func validate() throws {
        if let maxAge, RetentionDuration(maxAge) == nil {
            throw ValidationError("--max-age must be \(RetentionDuration.help)")
        }
        if let sizeChange, sizeChange <= 0 {
            throw ValidationError("--size-change must be a fraction above 0, e.g. 0.5")
        }
    }

    func run() throws {
        var unhealthy = false
        try reportingErrors(json: output.json ? "status" : nil) {
            let bp = try BackupPlan.load(plan)
            let ops = bp.operations
            let records = try RunHistory(stateDir: ops.stateDir).read().records
            let at = now.flatMap(RunClock.parse) ?? Date().timeIntervalSince1970
            let report = HealthReport.evaluate(
                plan: ops.planName,
                records: records,
                now: at,
                maxAge: maxAge.flatMap(RetentionDuration.init) ?? ops.maxAge,
                sizeChange: sizeChange ?? ops.sizeChange
            )
            if let path = prometheus ?? ops.prometheus { try report.writePrometheus(to: path) }
            if output.json {
                unhealthy = !report.healthy
                var doc: [String: Any] = ["plan": ops.planName, "healthy": report.healthy, "problems": report.problems]
                if let r = report.lastRun { doc["last_run"] = JSONOutput.record(r) }
                if let r = report.lastSuccess { doc["last_success"] = JSONOutput.record(r) }
                JSONOutput.emit("status", doc)
            } else if report.healthy {
                if !quiet {
                    let s = report.lastSuccess
                    let end = s.flatMap(\.end).map(RunClock.iso) ?? "-"
                    let size = s?.size.map { ", \(formatBytes($0))" } ?? ""
                    print("OK: \(ops.planName): last successful run \(end)\(size), \(s?.archive ?? "")")
                }
            } else {
                unhealthy = true
                print("UNHEALTHY: \(ops.planName)")
                for p in report.problems { print("  - \(displayMessage(p))") }
            }
        }
        if unhealthy { throw ExitCode(Self.unhealthyExitStatus) }
    }
}
