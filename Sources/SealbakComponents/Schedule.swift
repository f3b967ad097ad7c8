import Foundation
import SealbakIO

/// The nightly job as a systemd service + timer, or as a crontab line where systemd is absent.
///
/// Everything here is text: `sealbak schedule` (SealbakCLI/Schedule.swift) decides where it goes. The unit files carry
/// no secret: passwords come from the plan's files, or from an `EnvironmentFile=` the operator keeps at mode 0600.
package struct ScheduleSpec: Equatable, Sendable {
    /// The unit name without suffix, e.g. `sealbak-app` (`sealbak-app.service` and `sealbak-app.timer`).
    package var name: String
    /// Absolute path of the sealbak executable.
    package var executable: String
    /// Absolute path of the plan.
    package var plan: String
    /// When the job runs each day (UTC-agnostic: the machine's local time, as systemd and cron read it).
    package var hour: Int
    package var minute: Int
    /// The timer waits a random 0…this many seconds, so that many machines do not start at once.
    package var randomizedDelay: Int
    /// Variables the job runs with (PATH above all: cron's and systemd's are not the operator's shell's).
    package var environment: [(name: String, value: String)]
    /// A file of further variables, kept by the operator at mode 0600 (secrets go there, never into the units).
    package var environmentFile: String?
    /// The account the job runs as (system units only).
    package var runAs: String?
    /// Arguments after `run --plan PLAN`.
    package var extraArguments: [String]

    package init(
        name: String,
        executable: String,
        plan: String,
        hour: Int,
        minute: Int,
        randomizedDelay: Int = 1800,
        environment: [(name: String, value: String)] = [],
        environmentFile: String? = nil,
        runAs: String? = nil,
        extraArguments: [String] = []
    ) {
        self.name = name
        self.executable = executable
        self.plan = plan
        self.hour = hour
        self.minute = minute
        self.randomizedDelay = randomizedDelay
        self.environment = environment
        self.environmentFile = environmentFile
        self.runAs = runAs
        self.extraArguments = extraArguments
    }

    package static func == (a: ScheduleSpec, b: ScheduleSpec) -> Bool {
        a.name == b.name && a.executable == b.executable && a.plan == b.plan && a.hour == b.hour && a.minute == b.minute
            && a.randomizedDelay == b.randomizedDelay && a.environmentFile == b.environmentFile && a.runAs == b.runAs
            && a.extraArguments == b.extraArguments && a.environment.map(\.name) == b.environment.map(\.name)
            && a.environment.map(\.value) == b.environment.map(\.value)
    }

    /// The command the job runs.
    package var argv: [String] { [executable, "run", "--plan", plan] + extraArguments }

    /// `sealbak-` + the plan file's name without extension, reduced to the characters a unit name may hold.
    package static func unitName(forPlan path: String) -> String {
        var base = (path as NSString).lastPathComponent
        for ext in [".yaml", ".yml", ".json", ".toml"] where base.hasSuffix(ext) {
            base = String(base.dropLast(ext.count))
        }
        return "sealbak-" + sanitizedUnitName(base)
    }

    /// Unit names hold ASCII letters, digits, `:`, `-`, `_`, `.`; anything else becomes `-`.
    package static func sanitizedUnitName(_ s: String) -> String {
        let mapped = s.unicodeScalars.map { c -> Character in
            let ok =
                (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "-" || c == "_"
                || c == "."
            return ok ? Character(c) : "-"
        }
        let r = String(mapped)
        return r.isEmpty ? "plan" : r
    }

    /// Parses `HH:MM` (24-hour).
    package static func parseTime(_ s: String) throws(SealbakError) -> (hour: Int, minute: Int) {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) }),
            let h = Int(parts[0]), let m = Int(parts[1]), (0...23).contains(h), (0...59).contains(m)
        else {
            throw SealbakError(.usage, "--at \(displayName(s)) is not a time of day; give HH:MM, 24-hour, e.g. 02:30")
        }
        return (h, m)
    }

    /// Parses `0`, `90`, `90s`, `15m`, `2h` into seconds.
    package static func parseDelay(_ s: String) throws(SealbakError) -> Int {
        let units: [(String, Int)] = [("s", 1), ("m", 60), ("h", 3600)]
        var digits = s
        var mult = 1
        for (u, m) in units where s.hasSuffix(u) {
            digits = String(s.dropLast())
            mult = m
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits), n <= 86_400 / mult
        else {
            throw SealbakError(
                .usage,
                "--randomized-delay \(displayName(s)) is not a duration of at most a day; give e.g. 0, 90s, 15m or 1h"
            )
        }
        return n * mult
    }

    /// Variable names whose values are secrets: they belong in an EnvironmentFile= at mode 0600, never in a unit.
    package static func looksSecret(_ name: String) -> Bool {
        let u = name.uppercased()
        return ["PASSWORD", "PASSWD", "PWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL"].contains { u.contains($0) }
            && u != "PWD"
    }
}

package enum ScheduleUnits {
    /// The service unit: one oneshot run of the plan, at low CPU and I/O priority.
    package static func service(_ s: ScheduleSpec) throws(SealbakError) -> String {
        var lines = [
            "# Written by sealbak schedule install; sealbak schedule remove deletes it.",
            "[Unit]",
            "Description=sealbak backup of plan \(try unitValue(s.plan))",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
        ]
        if let user = s.runAs { lines.append("User=\(try unitValue(user))") }
        for (name, value) in s.environment {
            lines.append("Environment=" + (try quotedWord("\(name)=\(value)", dollar: false)))
        }
        if let file = s.environmentFile { lines.append("EnvironmentFile=\(try unitValue(file))") }
        lines += [
            "ExecStart="
                + (try s.argv.map { w throws(SealbakError) in try quotedWord(w, dollar: true) }.joined(separator: " ")),
            // SIGTERM reaches sealbak alone, which stops its dump tools and cleans up; the rest get SIGKILL later.
            "KillMode=mixed",
            "TimeoutStopSec=120",
            "Nice=10",
            "IOSchedulingClass=best-effort",
            "IOSchedulingPriority=7",
            // 15 and 16 are "completed with warnings": the archive is stored, the history says what to look at.
            "SuccessExitStatus=15 16",
            "",
        ]
        return lines.joined(separator: "\n")
    }

    /// The timer: daily at the chosen time, caught up after downtime (`Persistent=true`), spread by a random delay.
    package static func timer(_ s: ScheduleSpec) throws(SealbakError) -> String {
        [
            "# Written by sealbak schedule install; sealbak schedule remove deletes it.",
            "[Unit]",
            "Description=sealbak backup of plan \(try unitValue(s.plan)), daily",
            "",
            "[Timer]",
            "OnCalendar=*-*-* " + String(format: "%02d:%02d:00", s.hour, s.minute),
            "Persistent=true",
            "RandomizedDelaySec=\(s.randomizedDelay)",
            "AccuracySec=1min",
            "Unit=\(s.name).service",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ].joined(separator: "\n")
    }

    /// One crontab line (for `crontab -e` of the account that runs the backups). cron gives jobs a minimal PATH, so
    /// the line sets the variables itself; an EnvironmentFile is read by the shell first.
    package static func crontabLine(_ s: ScheduleSpec) throws(SealbakError) -> String {
        var words: [String] = []
        if let file = s.environmentFile {
            // `set -a` exports what the file assigns; the same file works for systemd's EnvironmentFile=.
            words.append("set -a; . \(try shellWord(file)); set +a;")
        }
        words.append("exec env")
        for (name, value) in s.environment { words.append(try shellWord("\(name)=\(value)")) }
        words += try s.argv.map { w throws(SealbakError) in try shellWord(w) }
        return "\(s.minute) \(s.hour) * * * " + words.joined(separator: " ")
    }

    /// A value on a unit line: no newline, `%` specifiers escaped.
    static func unitValue(_ s: String) throws(SealbakError) -> String {
        if s.contains(where: { $0.isNewline || $0 == "\0" }) {
            throw SealbakError(.usage, "\(displayName(s)) contains a line break, which a systemd unit cannot hold")
        }
        return s.replacingOccurrences(of: "%", with: "%%")
    }

    /// One word of ExecStart= or Environment=: always double-quoted, with `\`, `"` and `%` escaped, and `$` too where
    /// systemd expands variables (ExecStart=, not Environment=; systemd.service "Command lines", systemd.exec).
    static func quotedWord(_ s: String, dollar: Bool) throws(SealbakError) -> String {
        var out = "\""
        for c in try unitValue(s) {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "$" where dollar: out += "$$"
            default: out.append(c)
            }
        }
        return out + "\""
    }

    /// One shell word for a crontab line: single-quoted; `%` (a newline to cron) and line breaks are refused.
    static func shellWord(_ s: String) throws(SealbakError) -> String {
        if s.contains("%") || s.contains(where: { $0.isNewline || $0 == "\0" }) {
            throw SealbakError(
                .usage,
                "\(displayName(s)) contains % or a line break, which a crontab line cannot carry; use systemd or "
                    + "move the file"
            )
        }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
