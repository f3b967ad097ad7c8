import ArgumentParser
import Foundation
import SealbakComponents
import SealbakFormat
import SealbakIO
import SealbakS3

#if canImport(Glibc)
import Glibc
#endif

/// `sealbak run --plan FILE`: the nightly job in one command (docs/operations.md). The logic is
/// `NightlyRun` (SealbakComponents); this file wires in the pack, the verification and the log.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract:
            "Run a plan's nightly job: lock, pack into the destination, verify, apply retention, record the run, "
            + "notify.",
        discussion: """
            Needs destination: in the plan, and a way to encrypt without a terminal: password-file: or pack.recipients \
            (or SEALBAK_PASSWORD). Silent on success unless --verbose; warnings and failures go to standard error \
            (cron mails them). Exit codes: 0 success; 15 written with skipped components; 16 written, but files \
            changed while they were read; 17 another run of the plan is in progress; anything else: the run failed \
            with that error (docs/exit-codes.md). Every run, failed ones included, is in sealbak history.

            Examples:
              sealbak run --plan /etc/sealbak/app.yaml --log-file /var/log/sealbak/app.log
              sudo sealbak schedule install --plan /etc/sealbak/app.yaml --at 02:30      # every night
            """
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The backup plan (sealbak.yaml) with destination:, and optionally retention:, notify:, status:.",
            valueName: "FILE"
        )
    )
    var plan: String

    @Option(name: .long, help: ArgumentHelp("Append every log line, with a UTC timestamp, to FILE.", valueName: "FILE"))
    var logFile: String?

    @Flag(name: [.short, .long], help: "Also print progress lines on standard error on success.")
    var verbose = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The run's clock (UTC, e.g. 2026-11-30T02:00:00Z): the archive's name, the history times and the "
                + "retention reference. For drills, demos and tests.",
            valueName: "TIME"
        )
    )
    var now: String?

    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup(title: "Object storage") var s3: S3Options
    @OptionGroup(title: "Object storage uploads") var s3Upload: S3UploadOptions

    func validate() throws {
        if let now, RunClock.parse(now) == nil {
            throw ValidationError("--now \(now): give a UTC time such as 2026-11-30T02:00:00Z")
        }
    }

    func run() throws {
        var exit: Int32 = 0
        try reportingErrors {
            let bp = try BackupPlan.load(plan)
            let log = try RunLog(file: logFile, verbose: verbose)
            let clock = now.flatMap(RunClock.parse).map { Date(timeIntervalSince1970: $0) } ?? Date()
            let secret = try password.orPlan(bp)
            // One storage for the whole run: the pack, its verification, retention and the run records.
            let storage = try s3.connection(for: bp.operations.location, upload: s3Upload, plan: bp.s3, quiet: true)
            var job = NightlyRun(plan: bp, now: clock, log: log.engine)
            if let dest = bp.operations.location, ArchiveLocations.isRemote(dest) {
                job.catalogClient = try storage.client(for: dest)
                let client = job.catalogClient
                job.remoteRecord = { record, location in
                    // PREFIX/.sealbak-runs/START-ID.json: below the archives' level, so ls and prune never see it.
                    let loc = try S3Location(
                        url: location + ".sealbak-runs/"
                            + RetentionPolicy.stamp(Date(timeIntervalSince1970: record.start)) + "-" + record.id
                            + ".json"
                    )
                    let bytes = record.jsonLine()
                    try bytes.withUnsafeBytes { b in try client?.putObject(loc, b, ifNoneMatch: false) }
                }
            }
            log.info("run of \(bp.operations.planName) (\(plan)) started")
            let (record, code) = job.perform(
                pack: { location, chain in
                    // The archive password: --password-file/--password-fd, SEALBAK_PASSWORD, else the plan's
                    // password-file
                    // (an identity only opens archives; with pack.recipients alone no password is needed).
                    var args = [location, "--plan", plan, "--quiet"]
                    if let f = password.passwordFile ?? (password.explicitPassword ? nil : bp.operations.passwordFile) {
                        args += ["--password-file", f]
                    }
                    if let fd = password.passwordFd { args += ["--password-fd", String(fd)] }
                    // The chain state in the state folder lets the next night build on this one without opening it
                    // (a plan with pack.recipients only holds no secret that could).
                    let state = (bp.operations.stateDir as NSString).appendingPathComponent("chain-state")
                    switch chain {
                    case .full: break
                    case .root: args += ["--chained", "--chain-state", state]
                    case .base(let b): args += ["--base", b, "--base-or-root", "--chain-state", state]
                    }
                    let pack = try Pack.parse(args)
                    let (summary, outcome, manifest) = try pack.perform(bp, log: log.engine, storage: storage)
                    var result = RunPackResult(
                        location: location,
                        size: summary.archiveBytes,
                        entries: summary.entries,
                        outcome: outcome
                    )
                    result.counts = RunPackResult.counts(manifest)
                    return result
                },
                verify: { location in
                    _ = try verifyArchive(
                        location,
                        in: storage.locations,
                        password: secret,
                        reading: try ReadingOptions.parse([]),
                        quiet: true
                    )
                }
            )
            exit = code
            // Stopped by a signal: the handler records the run, cleans up and exits with 128 + the signal number;
            // the status must not depend on which thread gets there first.
            if record.status == .interrupted && Interrupts.pending { Interrupts.waitForHandlerExit() }
            let summary = RunLog.describe(record)
            switch record.status {
            case .ok: log.info(summary)
            case .warnings, .busy: log.warn(summary)
            default: log.error(summary)
            }
        }
        if exit != 0 { throw ExitCode(exit) }
    }
}

/// A run's log: every line to `--log-file` with a UTC timestamp; info lines to standard error only with
/// --verbose, warnings and errors always.
final class RunLog: Sendable {
    private let fd: Int32?
    private let verbose: Bool

    init(file: String?, verbose: Bool) throws {
        self.verbose = verbose
        if let file {
            let fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw SealbakError.io("cannot open the log file", path: file, errno: errno) }
            self.fd = fd
        } else {
            fd = nil
        }
    }

    deinit { if let fd { close(fd) } }

    private func emit(_ level: String, _ line: String, stderr: Bool) {
        if let fd {
            let text = "\(RunClock.iso(Date().timeIntervalSince1970)) sealbak[\(getpid())] \(level): \(line)\n"
            _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        }
        if stderr { printError("sealbak: " + (level == "info" ? "" : level + ": ") + line) }
    }

    func info(_ line: String) { emit("info", line, stderr: verbose) }
    func warn(_ line: String) { emit("warning", line, stderr: true) }
    func error(_ line: String) { emit("error", line, stderr: true) }

    var engine: EngineLog {
        EngineLog(info: { [self] in info($0) }, warning: { [self] in warn($0) })
    }

    /// One line that says how the run ended.
    static func describe(_ r: RunRecord) -> String {
        let took = r.duration.map { String(format: " in %.1f s", $0) } ?? ""
        let archive = r.archive.map { " \($0)" } ?? ""
        let size = r.size.map { " (\(formatBytes($0)))" } ?? ""
        switch r.status {
        case .ok:
            let verified = r.verified == true ? ", verified" : ""
            let deleted = r.deleted.map { ", retention deleted \($0.count)" } ?? ""
            return "run ok\(took):\(archive)\(size)\(verified)\(deleted)"
        case .warnings:
            return
                "run completed WITH WARNINGS\(took) (exit \(r.exitCode ?? 0)):\(archive)\(size): "
                + "\((r.warnings ?? []).joined(separator: "; "))"
        case .busy: return "run not started: \(r.error ?? "")"
        default: return "run FAILED\(took) (exit \(r.exitCode ?? 1)): \(r.error ?? "")"
        }
    }
}
