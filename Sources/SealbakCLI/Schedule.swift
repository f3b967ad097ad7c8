import ArgumentParser
import Foundation
import SealbakComponents
import SealbakIO

#if canImport(Glibc)
import Glibc
#endif

/// `sealbak schedule install|show|remove`: the nightly `sealbak run --plan …` as a systemd timer, or a crontab line.
struct Schedule: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a plan every night: install, show or remove its systemd timer (or print a crontab line).",
        discussion: """
            The timer runs `sealbak run --plan PLAN` once a day at --at, catches up after downtime (Persistent=true)
            and waits a random delay so that many machines do not start at once. PATH and HOME are taken from the
            shell that installs it, so the job finds the same pg_dump as you do. Secrets never go into the units:
            keep them in the plan's password files, or in a file given with --env-file at mode 0600.

            Examples:
              sudo sealbak schedule install --plan /etc/sealbak/app.yaml --at 02:30
              sealbak schedule show --plan /etc/sealbak/app.yaml
              sealbak schedule show --plan /etc/sealbak/app.yaml --cron     # the crontab line instead
              sudo sealbak schedule remove --plan /etc/sealbak/app.yaml

            See docs/operations.md.
            """,
        subcommands: [ScheduleInstall.self, ScheduleShow.self, ScheduleRemove.self]
    )
}

struct ScheduleOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The plan the job runs.", valueName: "FILE"))
    var plan: String

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Unit name (default: sealbak- and the plan file's name, or its app name for a plan called sealbak.yaml).",
            valueName: "NAME"
        )
    )
    var name: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where the unit files go (default: /etc/systemd/system as root, else ~/.config/systemd/user).",
            valueName: "DIR"
        )
    )
    var unitDir: String?

    @Flag(name: .long, help: "Install as a user unit (systemctl --user) even as root.")
    var user = false

    var unitName: String {
        if let name { return ScheduleSpec.sanitizedUnitName(name) }
        let byFile = ScheduleSpec.unitName(forPlan: plan)
        // A plan called sealbak.yaml (the usual name) says nothing: its app name does.
        if byFile == "sealbak-sealbak", let app = (try? BackupPlan.load(absolutePath(plan)))?.app["name"] {
            return "sealbak-" + ScheduleSpec.sanitizedUnitName(app)
        }
        return byFile
    }

    var userMode: Bool { user || geteuid() != 0 }

    var directory: String {
        if let unitDir { return unitDir }
        if !userMode { return "/etc/systemd/system" }
        let config = ProcessInfo.processInfo.environment["XDG_CONFIG_HOME"] ?? (NSHomeDirectory() + "/.config")
        return config + "/systemd/user"
    }

    func paths() -> (service: String, timer: String) {
        (directory + "/" + unitName + ".service", directory + "/" + unitName + ".timer")
    }
}

struct ScheduleTiming: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("Time of day, HH:MM in the machine's local time (default 02:00).", valueName: "HH:MM")
    )
    var at = "02:00"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Wait a random time up to this before starting (default 30m; 0 for none).",
            valueName: "DURATION"
        )
    )
    var randomizedDelay = "30m"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Also pass this variable's current value to the job (repeatable; not for secrets).",
            valueName: "NAME"
        )
    )
    var env: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Read further variables (secrets) from FILE when the job starts; FILE must be mode 0600.",
            valueName: "FILE"
        )
    )
    var envFile: String?

    @Option(name: .long, help: ArgumentHelp("Run the job as this account (system units only).", valueName: "USER"))
    var runAs: String?

    @Option(name: .long, help: ArgumentHelp("Pass --log-file FILE to the job.", valueName: "FILE"))
    var logFile: String?

    /// The spec for the plan, validated: the plan parses, the executable and files are absolute, no secret leaks in.
    func spec(_ o: ScheduleOptions) throws -> ScheduleSpec {
        let (hour, minute) = try ScheduleSpec.parseTime(at)
        let delay = try ScheduleSpec.parseDelay(randomizedDelay)
        let plan = absolutePath(o.plan)
        _ = try BackupPlan.load(plan)  // a plan that does not parse would fail every night; say so now
        let current = ProcessInfo.processInfo.environment
        var vars: [(name: String, value: String)] = [("PATH", current["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")]
        if let home = current["HOME"] { vars.append(("HOME", home)) }
        for name in env where !vars.contains(where: { $0.name == name }) {
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw SealbakError(.usage, "--env \(displayName(name)) is not a variable name")
            }
            if ScheduleSpec.looksSecret(name) {
                throw SealbakError(
                    .usage,
                    "--env \(name) looks like a secret, and unit files and crontabs are readable by others; put it "
                        + "in a file at mode 0600 and give --env-file FILE"
                )
            }
            guard let value = current[name] else {
                throw SealbakError(.usage, "--env \(name): the variable is not set in this shell")
            }
            vars.append((name, value))
        }
        var envFilePath: String?
        if let envFile {
            let p = absolutePath(envFile)
            var st = stat()
            if stat(p, &st) != 0 { throw SealbakError.io("cannot read the --env-file", path: p, errno: errno) }
            if st.st_mode & 0o077 != 0 {
                throw SealbakError(
                    .usage,
                    "\(displayName(p)) is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); it "
                        + "holds secrets: chmod 600 it"
                )
            }
            envFilePath = p
        }
        if runAs != nil && o.userMode {
            throw SealbakError(.usage, "--run-as applies to system units only (run as root without --user)")
        }
        var extra: [String] = []
        if let logFile { extra += ["--log-file", absolutePath(logFile)] }
        return ScheduleSpec(
            name: o.unitName,
            executable: executablePath(),
            plan: plan,
            hour: hour,
            minute: minute,
            randomizedDelay: delay,
            environment: vars,
            environmentFile: envFilePath,
            runAs: runAs,
            extraArguments: extra
        )
    }
}

struct ScheduleInstall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Write the service and timer, then enable and start the timer.",
        discussion: """
            Where systemd is not running, nothing is written: the crontab line to add is printed instead.
            Installing the same schedule again changes nothing; a different one needs --force.

            Example:
              sudo sealbak schedule install --plan /etc/sealbak/app.yaml --at 02:30 --env-file /etc/sealbak/env
            """
    )

    @OptionGroup var options: ScheduleOptions
    @OptionGroup var timing: ScheduleTiming

    @Flag(name: .long, help: "Replace a different schedule of the same name.")
    var force = false

    @Flag(name: .long, help: "Only write the unit files; do not run systemctl.")
    var noEnable = false

    func run() throws {
        try reportingErrors {
            let spec = try timing.spec(options)
            if options.unitDir == nil && !systemdRunning() {
                printError(
                    "sealbak: systemd is not running here; add this line with `crontab -e` as the account that runs "
                        + "the backups:"
                )
                print(try ScheduleUnits.crontabLine(spec))
                return
            }
            let service = try ScheduleUnits.service(spec)
            let timer = try ScheduleUnits.timer(spec)
            let (servicePath, timerPath) = options.paths()
            let same =
                (try? String(contentsOfFile: servicePath, encoding: .utf8)) == service
                && (try? String(contentsOfFile: timerPath, encoding: .utf8)) == timer
            if !same {
                for p in [servicePath, timerPath] where !force && access(p, F_OK) == 0 {
                    throw SealbakError(
                        .targetExists,
                        "\(displayName(p)) exists with a different schedule; give --force to replace it, or --name "
                            + "for a second schedule"
                    )
                }
                try makeDirectories(options.directory)
                // The service first: a timer never points at a unit that is not there yet.
                for (p, text) in [(servicePath, service), (timerPath, timer)] { try writeUnit(text, to: p) }
            }
            printError("sealbak: \(same ? "unchanged" : "wrote") \(servicePath) and \(timerPath)")
            if noEnable { return }
            let ctl = options.userMode ? ["systemctl", "--user"] : ["systemctl"]
            try systemctl(ctl + ["daemon-reload"])
            try systemctl(ctl + ["enable", "--now", options.unitName + ".timer"])
            printError(
                "sealbak: the timer is active; see its next run with: "
                    + "\((ctl + ["list-timers", options.unitName + ".timer"]).joined(separator: " "))"
            )
        }
    }
}

struct ScheduleShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print the units install would write, and whether the installed ones match.",
        discussion: """
            Examples:
              sealbak schedule show --plan /etc/sealbak/app.yaml --at 02:30
              sealbak schedule show --plan /etc/sealbak/app.yaml --cron >> my-crontab
            """
    )

    @OptionGroup var options: ScheduleOptions
    @OptionGroup var timing: ScheduleTiming

    @Flag(name: .long, help: "Print only the crontab line (for machines without systemd).")
    var cron = false

    func run() throws {
        try reportingErrors {
            let spec = try timing.spec(options)
            if cron {
                print(try ScheduleUnits.crontabLine(spec))
                return
            }
            let (servicePath, timerPath) = options.paths()
            for (p, text) in [
                (servicePath, try ScheduleUnits.service(spec)), (timerPath, try ScheduleUnits.timer(spec)),
            ] {
                let installed = try? String(contentsOfFile: p, encoding: .utf8)
                let state =
                    installed == nil
                    ? "not installed"
                    : installed == text ? "installed, matches" : "installed, differs (install --force replaces it)"
                print("# \(p): \(state)")
                print(text)
            }
            print("# Without systemd, this crontab line does the same:")
            print("# " + (try ScheduleUnits.crontabLine(spec)))
        }
    }
}

struct ScheduleRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Stop and disable the timer, then delete the service and timer.",
        discussion: """
            Example:
              sudo sealbak schedule remove --plan /etc/sealbak/app.yaml
            """
    )

    @OptionGroup var options: ScheduleOptions

    @Flag(name: .long, help: "Only delete the unit files; do not run systemctl.")
    var noEnable = false

    func run() throws {
        try reportingErrors {
            let (servicePath, timerPath) = options.paths()
            let present = [servicePath, timerPath].filter { (p: String) in access(p, F_OK) == 0 }
            if present.isEmpty {
                throw SealbakError(.notFound, "no schedule \(options.unitName) in \(displayName(options.directory))")
            }
            let ctl = options.userMode ? ["systemctl", "--user"] : ["systemctl"]
            if !noEnable && systemdRunning() { try systemctl(ctl + ["disable", "--now", options.unitName + ".timer"]) }
            for p in [timerPath, servicePath] where unlink(p) != 0 && errno != ENOENT {
                throw SealbakError.io("cannot delete", path: p, errno: errno)
            }
            fsyncDirectory(options.directory)
            if !noEnable && systemdRunning() { try systemctl(ctl + ["daemon-reload"]) }
            printError("sealbak: removed \(present.joined(separator: " and "))")
        }
    }
}

/// Whether systemd is the running init (sd_booted(3)'s test).
private func systemdRunning() -> Bool { access("/run/systemd/system", F_OK) == 0 }

/// The running executable's absolute path (what the unit must start).
private func executablePath() -> String {
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    if n > 0 { return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    return absolutePath(CommandLine.arguments[0])
}

private func makeDirectories(_ dir: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    } catch {
        throw SealbakError.io("cannot create", path: dir, errno: EACCES)
    }
}

/// Unit files are world-readable (systemd reads them as any user); they hold no secret.
private func writeUnit(_ text: String, to path: String) throws {
    let out = try AtomicOutput(path: path, overwrite: true, mode: 0o644)
    try out.write(Array(text.utf8))
    try out.commit()
}

private func systemctl(_ argv: [String]) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    do { try p.run() } catch {
        throw SealbakError(.unavailable, "cannot run \(argv.joined(separator: " ")): \(error.localizedDescription)")
    }
    p.waitUntilExit()
    if p.terminationStatus != 0 {
        throw SealbakError(
            .unavailable,
            "`\(argv.joined(separator: " "))` failed (exit \(p.terminationStatus)); the unit files are written — run "
                + "it yourself once the problem it printed is fixed"
        )
    }
}
