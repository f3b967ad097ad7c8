import ArgumentParser
import Foundation
import SealbakComponents
import SealbakIO

struct DrillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract:
            "Restore drill: restore the plan's newest archive into scratch targets, run every check, record the "
            + "result, remove the scratch targets.",
        discussion: """
            PostgreSQL and MySQL components are restored into NAME_sbk_drill_ID databases on their usual servers \
            (the role needs CREATEDB), folders and files under STATE-DIR/drill-ID (or --scratch). The plan's \
            checks run as in a real restore; its restore hooks and health check do not (they act on the live \
            application), and command components are left out. Scratch targets are removed also when the drill \
            fails, and those of a killed drill by the next one. The result is in sealbak history.

            Examples:
              sealbak drill --plan /etc/sealbak/app.yaml
              sealbak drill --plan /etc/sealbak/app.yaml --json \\
                --archive /srv/backups/app/app-2026-11-01T020000.000Z.sbk
            """
    )

    @Option(name: .long, help: ArgumentHelp("The backup plan.", valueName: "FILE"))
    var plan: String

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Drill this archive instead of the newest one in the plan's destination.",
            valueName: "ARCHIVE"
        )
    )
    var archive: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Put scratch folders under DIR (default: the plan's state folder).", valueName: "DIR")
    )
    var scratch: String?

    @Flag(name: [.short, .long], help: "Print only problems and the result line.")
    var quiet = false

    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var reading: ReadingOptions

    func run() throws {
        var exit: Int32 = 0
        try reportingErrors(json: output.json ? "drill" : nil) {
            let bp = try BackupPlan.load(plan)
            let secret = try password.orPlan(bp)
            var drill = Drill(plan: bp, log: engineLog(quiet: quiet))
            if let scratch { drill.scratchRoot = URL(fileURLWithPath: scratch).standardizedFileURL.path }
            let storage = try reading.s3.connection(for: bp.operations.location, plan: bp.s3, quiet: true)
            let target =
                try archive
                ?? drill.newestArchive(client: bp.operations.location.flatMap { try? storage.client(for: $0) })
            let (record, code) = drill.perform(archive: target) { request in
                let reader = try openArchive(target, in: storage.locations, password: secret, reading: reading)
                let job = RestoreJob(reader: reader, archive: target, request: request)
                try job.select()
                return try job.run(log: engineLog(quiet: quiet))
            }
            exit = code
            if output.json {
                var doc: [String: Any] = [
                    "archive": target, "ok": record.status == .ok, "record": JSONOutput.record(record),
                ]
                if code != 0 { doc["error"] = ["exit_code": Int(code), "message": displayMessage(record.error ?? "")] }
                JSONOutput.emit("drill", doc)
                if code != 0 {
                    printError("sealbak: drill FAILED (exit \(code)): \(displayMessage(record.error ?? ""))")
                }
                return
            }
            if !quiet { for l in record.details ?? [] { print(l) } }
            if record.status == .ok {
                print(
                    "drill ok: \(target) restored into scratch targets and checked in "
                        + "\(String(format: "%.1f", record.duration ?? 0)) s; scratch targets "
                        + "removed\((record.warnings ?? []).isEmpty ? "" : " (with problems, see above)")"
                )
            } else {
                printError("sealbak: drill FAILED (exit \(code)): \(displayMessage(record.error ?? ""))")
            }
        }
        if exit != 0 { throw ExitCode(exit) }
    }
}
