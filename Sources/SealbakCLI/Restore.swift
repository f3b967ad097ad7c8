import ArgumentParser
import Foundation
import SealbakComponents
import SealbakFormat
import SealbakIO
import SealbakPostgres

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore the archive's components into live systems, and prove it.",
        discussion: """
            Every selected component is first restored beside its target (a database under a temporary name, a \
            folder in a staging folder) and checked: row counts, parses, shapes, and the checks the plan declares. \
            Only when all are staged and checked are they put in place; if one cannot be, those already in place \
            are rolled back, and what they replaced is kept until every component (and the plan's after-restore \
            hooks and health check) succeeded. A folder restore keeps the paths that were excluded when packing. \
            --dry-run makes the same checks and exits with the code the real run would give.

            Examples:
              sealbak restore backup.sbk --dry-run                     # what would happen, same exit code
              sealbak restore backup.sbk                               # every component to its recorded target
              sealbak restore backup.sbk --only kb --postgres-target postgresql://localhost/kb_copy
              sealbak restore backup.sbk --to ./restored               # folders and files under ./restored
            """
    )

    @Argument(help: ArgumentHelp("The archive (- for standard input).", valueName: "ARCHIVE"))
    var archive: String

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Take the targets from this backup plan (restore: or the component's own url:/path:); flags given here "
                + "win.",
            valueName: "FILE"
        )
    )
    var plan: String?

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Where a PostgreSQL component goes: URL (when one component is restored) or NAME=URL; repeatable. The "
                + "URL names the target database.",
            valueName: "URL"
        )
    )
    var postgresTarget: [String] = []

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Where a MySQL/MariaDB component goes: URL (when one component is restored) or NAME=URL; repeatable. The "
                + "URL names the target database.",
            valueName: "URL"
        )
    )
    var mysqlTarget: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Read the MySQL password from the first line of FILE (for target URLs without one).",
            valueName: "FILE"
        )
    )
    var mysqlPasswordFile: String?

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Look for the mariadb/mysql client in DIR first; repeatable (also SEALBAK_MYSQL_BIN).",
            valueName: "DIR"
        )
    )
    var mysqlBin: [String] = []

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp("Restore only component NAME; repeatable.", valueName: "NAME")
    )
    var only: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Restore folder components into DIR/NAME, and entries outside components (PATH arguments, standard "
                + "input) into DIR.",
            valueName: "DIR"
        )
    )
    var to: String?

    @Option(
        name: [.customLong("target"), .customLong("docs-target")],
        parsing: .singleValue,
        help: ArgumentHelp(
            "Where folder component NAME goes (a file, for a component packed from one file); repeatable.",
            valueName: "NAME=PATH"
        )
    )
    var docsTarget: [String] = []

    @Flag(name: .long, help: "Replace a non-empty target (database or folder) once the restored copy has verified.")
    var replace = false

    @Flag(name: .long, help: "Do not ask before replacing a non-empty folder on a terminal (the same as --replace).")
    var yes = false

    @Flag(
        name: .long,
        help: "End other sessions on an existing target database just before the swap (instead of refusing)."
    )
    var terminateConnections = false

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Replace an SQLite database even while another process holds a lock on it (refused by default: that "
                + "process would go on using the replaced file)."
        )
    )
    var ignoreLocks = false

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Keep what the restore replaced: a database as NAME_sbk_old_XXXXXXXX, a folder or file as "
                + "PATH.sbk-replaced-TIME."
        )
    )
    var keepReplaced = false

    @Flag(name: .long, help: "Do not restore object owners and privileges (for a server without the original roles).")
    var noOwner = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The most memory a database restore's sessions may use together for rebuilding indexes (e.g. 2GB, 512MB; "
                + "default: a quarter of the server host's memory when sealbak can read it, else 512MB).",
            valueName: "SIZE"
        )
    )
    var restoreMemory: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "pg_restore sessions per PostgreSQL database (default 1, straight from the archive). N > 1 restores "
                + "tables and indexes side by side from a temporary plaintext copy of the verified dump in TMPDIR "
                + "(owner-only, removed afterwards); the dry run says when that would pay.",
            valueName: "N"
        )
    )
    var restoreJobs: Int?

    @Flag(name: .long, help: "Show what would be restored and check the targets; change nothing.")
    var dryRun = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Read the PostgreSQL password from the first line of FILE (for URLs without one).",
            valueName: "FILE"
        )
    )
    var postgresPasswordFile: String?

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp("Look for pg_restore in DIR first; repeatable (also SEALBAK_PG_BIN).", valueName: "DIR")
    )
    var pgBin: [String] = []

    @Flag(name: [.short, .long], help: "Print only errors.")
    var quiet = false

    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var reading: ReadingOptions

    func run() throws {
        try reportingErrors(json: output.json ? "restore" : nil) {
            var r = RestoreRequest()
            r.plan = try plan.map { try BackupPlan.load($0) }
            r.only = only
            r.to = to
            for t in docsTarget {
                guard let eq = t.firstIndex(of: "="), eq != t.startIndex else {
                    throw SealbakError(.usage, "--target \(t): give NAME=PATH")
                }
                r.folderTargets[String(t[..<eq])] = String(t[t.index(after: eq)...])
            }
            r.postgresTargets = postgresTarget
            r.postgresPasswordFile = postgresPasswordFile
            r.pgBin = pgBin
            r.mysqlTargets = mysqlTarget
            r.mysqlPasswordFile = mysqlPasswordFile
            r.mysqlBin = mysqlBin
            r.replace = replace || yes
            r.keepReplaced = keepReplaced
            r.noOwner = noOwner
            r.terminateConnections = terminateConnections
            if let restoreMemory {
                guard let n = parseMemorySize(restoreMemory), n >= 1 << 20 else {
                    throw SealbakError(
                        .usage,
                        "--restore-memory \(restoreMemory): give a size of at least 1MB, e.g. 2GB or 512MB (units "
                            + "kB, MB, GB, TB are powers of 1024)"
                    )
                }
                r.restoreMemory = n
            }
            if let restoreJobs {
                guard (1...64).contains(restoreJobs) else {
                    throw SealbakError(.usage, "--restore-jobs \(restoreJobs): give a number of sessions from 1 to 64")
                }
                r.restoreJobs = restoreJobs
            }
            r.ignoreLocks = ignoreLocks
            r.dryRun = dryRun
            if isatty(0) == 1 && isatty(2) == 1 {
                r.confirm = { question in
                    printError("sealbak: " + question + " [y/N] ", newline: false)
                    return (readLine() ?? "").lowercased().hasPrefix("y")
                }
            }
            let started = Date()
            let progress = Progress(
                label: "restoring",
                total: nil,
                quiet: quiet || dryRun,
                json: dryRun ? nil : output.named("restore")
            )
            defer { progress.finish() }
            r.progress = { entry, bytes in
                if let entry { progress.item(entry) } else { progress.add(bytes) }
            }
            let reader = try openArchive(archive, in: reading.locations, password: password, reading: reading)
            let job = RestoreJob(reader: reader, archive: archive, request: r)
            try job.select()
            if dryRun {
                let (lines, error) = job.planAll()
                if output.json {
                    var doc: [String: Any] = [
                        "archive": archiveJSON(archive, header: reader.header, manifest: reader.manifest),
                        "dry_run": true,
                        "would_succeed": error == nil, "steps": lines, "recovered_leftovers": job.recoveredLeftovers,
                    ]
                    guard let error else { return JSONOutput.emit("restore", doc) }
                    // One document: the refusal is its `error` (with the exit code the real run would give).
                    let code = error.code.exitStatus
                    let message = displayMessage(error.message)
                    doc["error"] = ["exit_code": Int(code), "message": message]
                    JSONOutput.emit("restore", doc)
                    printError("sealbak: " + message)
                    throw ExitCode(code)
                }
                for l in lines { print(l) }
                if let error {
                    print("dry run: the restore would be refused; nothing was changed")
                    throw error
                }
                print(
                    job.recoveredLeftovers.isEmpty
                        ? "dry run: nothing was changed"
                        : "dry run: the restore changed nothing; what killed restores had left was finished or "
                            + "undone first (see the notes)"
                )
                return
            }
            let lines = try job.run(log: engineLog(quiet: quiet))
            progress.finish()
            if output.json {
                JSONOutput.emit(
                    "restore",
                    [
                        "archive": archiveJSON(archive, header: reader.header, manifest: reader.manifest),
                        "dry_run": false,
                        "steps": lines, "duration_seconds": (Date().timeIntervalSince(started) * 1000).rounded() / 1000,
                    ]
                )
            } else if !quiet {
                for l in lines { print(l) }
                printError("sealbak: restore finished in \(formatDuration(Date().timeIntervalSince(started)))")
            }
        }
    }
}
