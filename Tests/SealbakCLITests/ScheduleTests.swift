import Foundation
import SealbakTestSupport
import Testing

/// `sealbak schedule`: the units it writes are accepted by systemd's own checker, installing is idempotent and never
/// clobbers a different schedule, secrets are refused, and the crontab line runs the job under cron's bare environment.
@Suite struct ScheduleTests {
    static let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static func plan(in dir: String, name: String = "app plan.yaml") throws -> String {
        try FileManager.default.createDirectory(atPath: dir + "/docs", withIntermediateDirectories: true)
        try "hello\n".write(toFile: dir + "/docs/a.txt", atomically: false, encoding: .utf8)
        let path = dir + "/" + name
        try """
        components:
          - kind: docs
            name: notes
            path: \(dir)/docs
        """.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    static func sb(_ args: [String], env: [String: String] = [:]) throws -> Proc.Result {
        try Proc.run(Proc.sealbakBinary, args, env: env)
    }

    @Test func installedUnitsPassSystemdAnalyzeAndInstallIsIdempotent() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = try Self.plan(in: dir)
        let units = dir + "/units"
        let base = ["--plan", plan, "--unit-dir", units]
        let first = try Self.sb(
            ["schedule", "install"] + base + ["--at", "03:15", "--randomized-delay", "10m", "--no-enable"]
        )
        #expect(first.status == 0, "\(first.stderr)")
        let service = try String(contentsOfFile: units + "/sealbak-app-plan.service", encoding: .utf8)
        let timer = try String(contentsOfFile: units + "/sealbak-app-plan.timer", encoding: .utf8)
        #expect(
            timer.contains("OnCalendar=*-*-* 03:15:00\n") && timer.contains("Persistent=true\n")
                && timer.contains("RandomizedDelaySec=600\n")
        )
        // The plan's path has a space: one quoted word, absolute; the job gets the installer's PATH.
        #expect(service.contains("\"run\" \"--plan\" \"\(plan)\"\n"), "\(service)")
        #expect(service.contains("Environment=\"PATH=\(ProcessInfo.processInfo.environment["PATH"] ?? "")\"\n"))
        var st = stat()
        #expect(stat(units + "/sealbak-app-plan.service", &st) == 0 && st.st_mode & 0o777 == 0o644)

        if let analyze = Self.analyze {
            let v = try Proc.run(
                analyze,
                ["verify", units + "/sealbak-app-plan.service", units + "/sealbak-app-plan.timer"]
            )
            #expect(v.status == 0 && v.stderr.isEmpty, "systemd-analyze verify: \(v.stderr)")
        } else {
            Issue.record(
                "systemd-analyze is not installed (scripts/deps installs systemd); the units were not verified"
            )
        }

        // Again, the same: nothing changes. Different: refused (7) unless --force; show says which.
        let again = try Self.sb(
            ["schedule", "install"] + base + ["--at", "03:15", "--randomized-delay", "10m", "--no-enable"]
        )
        #expect(again.status == 0 && again.stderr.contains("unchanged"), "\(again.stderr)")
        let other = try Self.sb(["schedule", "install"] + base + ["--at", "04:00", "--no-enable"])
        #expect(other.status == 7 && other.stderr.contains("--force"), "\(other.stderr)")
        #expect(try String(contentsOfFile: units + "/sealbak-app-plan.timer", encoding: .utf8) == timer)
        let show = try Self.sb(["schedule", "show"] + base + ["--at", "04:00"])
        #expect(show.status == 0 && show.stdout.contains("installed, differs"), "\(show.stdout)")
        let forced = try Self.sb(["schedule", "install"] + base + ["--at", "04:00", "--no-enable", "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(
            try String(contentsOfFile: units + "/sealbak-app-plan.timer", encoding: .utf8).contains(
                "OnCalendar=*-*-* 04:00:00\n"
            )
        )

        let removed = try Self.sb(["schedule", "remove"] + base + ["--no-enable"])
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: units).isEmpty)
        let gone = try Self.sb(["schedule", "remove"] + base + ["--no-enable"])
        #expect(gone.status == 9 && gone.stderr.contains("no schedule sealbak-app-plan"), "\(gone.stderr)")
    }

    @Test func aPlanCalledSealbakYamlIsNamedAfterItsApp() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = try Self.plan(in: dir, name: "sealbak.yaml")
        try ("app: {name: \"rag app\"}\n" + (try String(contentsOfFile: plan, encoding: .utf8))).write(
            toFile: plan,
            atomically: false,
            encoding: .utf8
        )
        let r = try Self.sb(["schedule", "install", "--plan", plan, "--unit-dir", dir + "/units", "--no-enable"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/units/sealbak-rag-app.timer"), "\(r.stderr)")
        #expect(
            try Self.sb(["schedule", "remove", "--plan", plan, "--unit-dir", dir + "/units", "--no-enable"]).status == 0
        )
    }

    @Test func secretsNeverGoIntoUnitsAndTheEnvFileMustBePrivate() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = try Self.plan(in: dir)
        let base = ["schedule", "install", "--plan", plan, "--unit-dir", dir + "/units", "--no-enable"]
        for name in ["PGPASSWORD", "MYSQL_PWD", "AWS_SECRET_ACCESS_KEY", "SEALBAK_PASSWORD", "API_TOKEN"] {
            let r = try Self.sb(base + ["--env", name], env: [name: "hunter2-\(name)"])
            #expect(
                r.status == 64 && r.stderr.contains("--env-file") && !r.stderr.contains("hunter2"),
                "\(name): \(r.stderr)"
            )
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/units"))
        let envFile = dir + "/secrets.env"
        try "PGPASSWORD=hunter2\n".write(toFile: envFile, atomically: false, encoding: .utf8)
        chmod(envFile, 0o644)
        let open = try Self.sb(base + ["--env-file", envFile])
        #expect(open.status == 64 && open.stderr.contains("chmod 600"), "\(open.stderr)")
        chmod(envFile, 0o600)
        let ok = try Self.sb(base + ["--env-file", envFile, "--env", "PGHOST"], env: ["PGHOST": "/run/postgresql"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let service = try String(contentsOfFile: dir + "/units/sealbak-app-plan.service", encoding: .utf8)
        #expect(
            service.contains("EnvironmentFile=\(envFile)\n")
                && service.contains("Environment=\"PGHOST=/run/postgresql\"\n")
        )
        #expect(!service.contains("hunter2"))
        // A plan that does not parse would fail every night: refused at install time.
        try "components: [".write(toFile: dir + "/bad.yaml", atomically: false, encoding: .utf8)
        let bad = try Self.sb([
            "schedule", "install", "--plan", dir + "/bad.yaml", "--unit-dir", dir + "/units2", "--no-enable",
        ])
        #expect(bad.status != 0 && !FileManager.default.fileExists(atPath: dir + "/units2"), "\(bad.stderr)")
        let badTime = try Self.sb(base + ["--at", "24:00"])
        #expect(badTime.status == 64 && badTime.stderr.contains("HH:MM"), "\(badTime.stderr)")
    }

    /// The crontab line, run by /bin/sh under an empty environment (as cron runs it), reaches the job with the PATH
    /// and variables the installer had. The executable is swapped for a script that records what it got.
    @Test func crontabLineRunsUnderCronsEmptyEnvironment() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = try Self.plan(in: dir)
        let envFile = dir + "/secrets.env"
        try "SECRET_FOR_JOB='it''s here'\n".write(toFile: envFile, atomically: false, encoding: .utf8)
        chmod(envFile, 0o600)
        let r = try Self.sb(
            ["schedule", "show", "--plan", plan, "--at", "01:05", "--cron", "--env-file", envFile, "--env", "PGHOST"],
            env: ["PGHOST": "db host"]
        )
        #expect(r.status == 0, "\(r.stderr)")
        let line = r.stdout.trimmingCharacters(in: .newlines)
        #expect(line.hasPrefix("5 1 * * * "), "\(line)")
        // cron hands the text after the five time fields to /bin/sh -c; substitute a recorder for sealbak.
        let recorder = dir + "/recorder.sh"
        try "#!/bin/sh\n{ echo \"$PGHOST|$SECRET_FOR_JOB|$PATH\"; printf '%s\\n' \"$@\"; } > \"\(dir)/got\"\n"
            .write(toFile: recorder, atomically: false, encoding: .utf8)
        chmod(recorder, 0o755)
        let command = String(line.split(separator: " ", maxSplits: 5)[5])
            .replacingOccurrences(of: "'\(try Self.realBinary())'", with: "'\(recorder)'")
        let sh = try Proc.run("/usr/bin/env", ["-i", "/bin/sh", "-c", command])
        #expect(sh.status == 0, "\(sh.stderr)")
        let got = try String(contentsOfFile: dir + "/got", encoding: .utf8).split(
            separator: "\n",
            omittingEmptySubsequences: false
        )
        #expect(got.first == "db host|its here|\(ProcessInfo.processInfo.environment["PATH"] ?? "")", "\(got)")
        #expect(Array(got.dropFirst().prefix(3)) == ["run", "--plan", Substring(plan)])
    }

    /// The path the unit names: the binary with every symbolic link resolved (as /proc/self/exe gives it).
    static func realBinary() throws -> String {
        guard let p = realpath(Proc.sealbakBinary, nil) else { throw CocoaError(.fileNoSuchFile) }
        defer { free(p) }
        return String(cString: p)
    }
}
