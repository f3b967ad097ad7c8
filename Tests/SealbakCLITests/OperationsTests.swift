import Foundation
import SealbakTestSupport
import Testing

/// `sealbak run`, `history`, `status`, bulk `verify`, `drill` and retention, end to end through the built binary,
/// the way cron runs them: an empty environment (env -i), a kill at every step of a run (SEALBAK_FAULT), two runs at
/// once, a full disk (a 512 KiB tmpfs in a private mount namespace), a real HTTP listener for the webhook.
@Suite(.serialized) struct OperationsTests {
    static let bin = Proc.sealbakBinary
    static let isoLine = #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z sealbak\[\d+\] (info|warning|error): "#

    struct Setup {
        var dir: String
        var plan: String { dir + "/sealbak.yaml" }
        var backups: String { dir + "/backups" }
        var state: String { dir + "/state" }

        /// A plan with a docs folder and a command component; `extra` is appended (YAML).
        init(extra: String = "", components: String? = nil) throws {
            dir = try Proc.tempDir()
            try FileManager.default.createDirectory(atPath: dir + "/docs/sub", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dir + "/backups", withIntermediateDirectories: true)
            try Data("first document\n".utf8).write(to: URL(fileURLWithPath: dir + "/docs/a.md"))
            try Data(TestArchive.text(20_000)).write(to: URL(fileURLWithPath: dir + "/docs/sub/b.txt"))
            try Data("drill-password-\(UUID().uuidString)\n".utf8).write(
                to: URL(fileURLWithPath: dir + "/archive.pass")
            )
            let comps =
                components ?? """
                      - {name: docs, kind: docs, path: docs, checks: [{command: "test -f a.md"}]}
                      - {name: notes, kind: command, dump: "printf 'one two'"}
                    """
            try Data(
                """
                version: 1
                app: {name: shop}
                components:
                \(comps)
                pack: {kdf-memory: 8, kdf-passes: 1}
                password-file: archive.pass
                state-dir: state
                destination: {location: backups, verify: true}
                \(extra)
                """.utf8
            ).write(to: URL(fileURLWithPath: dir + "/sealbak.yaml"))
        }

        func history() throws -> [[String: Any]] {
            let text = (try? String(contentsOfFile: state + "/history.jsonl", encoding: .utf8)) ?? ""
            var byID: [String: Int] = [:]
            var out: [[String: Any]] = []
            for line in text.split(separator: "\n") {
                guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let id = o["id"] as? String
                else { continue }
                if let i = byID[id] {
                    out[i] = o
                } else {
                    byID[id] = out.count
                    out.append(o)
                }
            }
            return out
        }

        func archives() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: backups).sorted()
        }
    }

    /// Runs sealbak with exactly `env` (nothing inherited), as cron does.
    /// sealbak under an empty environment plus `env` (cron's), in `cwd`.
    static func bare(_ args: [String], env: [String: String] = [:], cwd: String? = nil) throws -> Proc.Result {
        try Proc.run(bin, args, env: env, inherit: false, cwd: cwd)
    }

    static func waitFor(_ path: String, seconds: Double = 60) -> Bool {
        let until = Date().addingTimeInterval(seconds)
        while Date() < until {
            if FileManager.default.fileExists(atPath: path) { return true }
            usleep(20_000)
        }
        return false
    }

    @Test func nightlyRunUnderAnEmptyEnvironmentIsSilentVerifiedAndRecorded() throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let r = try Self.bare(["run", "--plan", s.plan, "--log-file", s.dir + "/run.log"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty && r.stderr.isEmpty, "a successful run prints nothing: \(r.stdout)\(r.stderr)")
        let archives = try s.archives()
        #expect(archives.count == 1 && archives[0].hasPrefix("shop-") && archives[0].hasSuffix("Z.sbk"), "\(archives)")
        let h = try s.history()
        #expect(h.count == 1)
        let rec = try #require(h.first)
        #expect(rec["status"] as? String == "ok" && rec["kind"] as? String == "run" && rec["verified"] as? Bool == true)
        #expect((rec["archive"] as? String)?.hasSuffix(archives[0]) == true && (rec["size"] as? Int ?? 0) > 0)
        let comps = rec["components"] as? [[String: Any]] ?? []
        #expect(
            Set(comps.compactMap { $0["name"] as? String }) == ["docs", "notes"]
                && comps.allSatisfy { $0["status"] as? String == "ok" }
        )
        let docs = comps.first { $0["name"] as? String == "docs" }
        #expect(
            ((docs?["counts"] as? [String: Int])?["entries"] ?? 0) >= 2 && (docs?["bytes"] as? Int ?? 0) > 20_000,
            "\(String(describing: docs))"
        )
        #expect((rec["end"] as? Double ?? 0) >= (rec["start"] as? Double ?? 1))
        let log = try String(contentsOfFile: s.dir + "/run.log", encoding: .utf8).split(separator: "\n")
        #expect(
            log.count >= 3 && log.allSatisfy { $0.range(of: Self.isoLine, options: .regularExpression) != nil },
            "\(log)"
        )
        #expect(log.contains { $0.contains("run ok") })
        #expect(!log.joined().contains("drill-password"), "the password never reaches the log")
        // history and status read it back.
        let hist = try Self.bare(["history", "--plan", s.plan])
        #expect(
            hist.status == 0 && hist.stdout.contains("OK") && hist.stdout.contains(archives[0]),
            "\(hist.stdout)\(hist.stderr)"
        )
        let st = try Self.bare(["status", "--plan", s.plan, "--max-age", "1h"])
        #expect(st.status == 0 && st.stdout.hasPrefix("OK: shop"), "\(st.stdout)\(st.stderr)")
    }

    @Test func aPlanWithRecipientsNeedsNoPasswordAndItsIdentityVerifiesAndDrills() throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let key = try Self.bare(["keygen", "-o", s.dir + "/backup.identity", "--no-password"])
        let pub = try #require(
            key.stdout.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("sbkpk1") },
            "\(key.stdout)\(key.stderr)"
        )
        let text = try String(contentsOfFile: s.plan, encoding: .utf8)
            .replacingOccurrences(of: "pack: {kdf-memory: 8, kdf-passes: 1}", with: "pack: {recipients: [\(pub)]}")
            .replacingOccurrences(of: "password-file: archive.pass", with: "identity: backup.identity")
        try text.write(toFile: s.plan, atomically: true, encoding: .utf8)
        let r = try Self.bare(["run", "--plan", s.plan])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        #expect(try s.history().last?["verified"] as? Bool == true)
        let d = try Self.bare(["drill", "--plan", s.plan])
        #expect(d.status == 0 && d.stdout.contains("drill ok"), "\(d.stdout)\(d.stderr)")
    }

    @Test func exitCodesTellSuccessWarningsAndFailureApartAndFailuresAreRecorded() throws {
        // A component allowed to be missing and missing: written with warnings, exit 15.
        let w = try Setup(
            components: """
                  - {name: docs, kind: docs, path: docs}
                  - {name: uploads, kind: docs, path: no-such-folder, allow-missing: true}
                """
        )
        defer { try? FileManager.default.removeItem(atPath: w.dir) }
        let warn = try Self.bare(["run", "--plan", w.plan])
        #expect(warn.status == 15, "\(warn.stderr)")
        #expect(warn.stderr.contains("WITH WARNINGS") && warn.stderr.contains("uploads"), "\(warn.stderr)")
        #expect(try w.history().last?["status"] as? String == "warnings")
        // A dump command that fails: nothing written, exit 12, recorded as failed with the tool's message.
        let f = try Setup(
            components: """
                  - {name: docs, kind: docs, path: docs}
                  - {name: db, kind: command, dump: "echo 'connection refused' >&2; exit 3"}
                """
        )
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let fail = try Self.bare(["run", "--plan", f.plan])
        #expect(fail.status == 12, "\(fail.stderr)")
        #expect(fail.stderr.contains("run FAILED") && fail.stderr.contains("connection refused"), "\(fail.stderr)")
        #expect(try f.archives().isEmpty, "a failed run leaves no archive (and no temporary file)")
        let rec = try #require(try f.history().last)
        #expect(
            rec["status"] as? String == "failed" && rec["exitCode"] as? Int == 12
                && (rec["error"] as? String ?? "").contains("connection refused")
        )
        let hist = try Self.bare(["history", "--plan", f.plan])
        #expect(hist.stdout.contains("FAILED") && hist.stdout.contains("connection refused"), "\(hist.stdout)")
        let st = try Self.bare(["status", "--plan", f.plan])
        #expect(st.status == 18 && st.stdout.contains("FAILED"), "\(st.stdout)")
        // A destination folder that does not exist (an unmounted disk) is not created.
        try FileManager.default.removeItem(atPath: f.backups)
        let gone = try Self.bare(["run", "--plan", f.plan])
        #expect(
            gone.status == 9 && gone.stderr.contains("does not exist; create it")
                && !FileManager.default.fileExists(atPath: f.backups),
            "\(gone.stderr)"
        )
        // A plan without a destination: a usage error naming the file.
        let bad = try Setup()
        defer { try? FileManager.default.removeItem(atPath: bad.dir) }
        try String(contentsOfFile: bad.plan, encoding: .utf8).replacingOccurrences(
            of: "destination: {location: backups, verify: true}",
            with: ""
        )
        .write(toFile: bad.plan, atomically: true, encoding: .utf8)
        let none = try Self.bare(["run", "--plan", bad.plan])
        #expect(
            none.status == 64 && none.stderr.contains("sealbak.yaml: the plan has no destination"),
            "\(none.stderr)"
        )
    }

    @Test func aRunKilledAtAnyStepIsRecordedAsInterruptedAndTheNextRunTakesOver() throws {
        for step in 1...4 {
            let s = try Setup(extra: "retention: {keep-last: 1}")
            defer { try? FileManager.default.removeItem(atPath: s.dir) }
            if step == 4 {
                // Two archives, so that retention has one to delete: the kill comes just before that delete.
                #expect(try Self.bare(["run", "--plan", s.plan]).status == 0)
            }
            let killed = try Self.bare(["run", "--plan", s.plan], env: ["SEALBAK_FAULT": "run:\(step):kill"])
            #expect(killed.status == 128 + SIGKILL, "step \(step): \(killed.status) \(killed.stderr)")
            let lastStatus = try s.history().last?["status"] as? String
            #expect(lastStatus == "running", "step \(step)")
            // history sees the lock free and calls the run interrupted even before the next run records it.
            #expect(try Self.bare(["history", "--plan", s.plan]).stdout.contains("INTERRUPTED"), "step \(step)")
            let next = try Self.bare(["run", "--plan", s.plan, "--log-file", s.dir + "/run.log"])
            #expect(next.status == 0, "step \(step): \(next.stderr)")
            let h = try s.history()
            let interrupted = h.filter { $0["status"] as? String == "interrupted" }
            #expect(interrupted.count == 1, "step \(step): \(h)")
            if step >= 2 {
                #expect(
                    interrupted.first?["archive"] != nil,
                    "step \(step): the killed run's archive is named in its record"
                )
            }
            #expect(h.last?["status"] as? String == "ok")
            let log = try String(contentsOfFile: s.dir + "/run.log", encoding: .utf8)
            #expect(
                log.contains("was interrupted before it ended") && log.contains("took over the lock"),
                "step \(step): \(log)"
            )
            // No temporary files; every file left is a whole archive (verify of the folder).
            #expect(try s.archives().allSatisfy { $0.hasSuffix(".sbk") && !$0.hasPrefix(".") }, "step \(step)")
            let v = try Self.bare(["verify", s.backups, "--plan", s.plan])
            #expect(v.status == 0, "step \(step): \(v.stdout)\(v.stderr)")
        }
    }

    @Test func twoRunsAtOnceTheSecondIsRefusedWithExit17() throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let entered = s.dir + "/entered"
        let gate = s.dir + "/gate"
        var text = try String(contentsOfFile: s.plan, encoding: .utf8)
        text += "\nhooks:\n  before-pack: \"touch \(entered); while [ ! -e \(gate) ]; do sleep 0.05; done\"\n"
        try text.write(toFile: s.plan, atomically: true, encoding: .utf8)
        nonisolated(unsafe) var first: Proc.Result?
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            first = try? Self.bare(["run", "--plan", s.plan])
            done.signal()
        }
        #expect(Self.waitFor(entered), "the first run reached its before-pack hook")
        let second = try Self.bare(["run", "--plan", s.plan])
        FileManager.default.createFile(atPath: gate, contents: nil)
        done.wait()
        #expect(second.status == 17, "\(second.stderr)")
        #expect(
            second.stderr.contains("another run of this plan is in progress") && second.stderr.contains("pid "),
            "\(second.stderr)"
        )
        #expect(first?.status == 0, "\(first?.stderr ?? "")")
        let statuses = try s.history().compactMap { $0["status"] as? String }
        #expect(statuses.sorted() == ["busy", "ok"], "\(statuses)")
        #expect(try s.archives().count == 1)
        // A busy run is not a failure of the backups.
        #expect(try Self.bare(["status", "--plan", s.plan]).status == 0)
    }

    @Test func aRunStoppedBySIGTERMRecordsItselfAsInterrupted() throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let entered = s.dir + "/entered"
        let gate = s.dir + "/gate"
        var text = try String(contentsOfFile: s.plan, encoding: .utf8)
        text += "\nhooks:\n  before-pack: \"touch \(entered); while [ ! -e \(gate) ]; do sleep 0.05; done\"\n"
        try text.write(toFile: s.plan, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.bin)
        p.arguments = ["run", "--plan", s.plan]
        p.environment = [:]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { FileManager.default.createFile(atPath: gate, contents: nil) }  // lets the orphaned hook end
        #expect(Self.waitFor(entered), "the run reached its before-pack hook")
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 128 + SIGTERM, "\(p.terminationStatus)")
        let rec = try #require(try s.history().last)
        #expect(
            rec["status"] as? String == "interrupted"
                && (rec["error"] as? String ?? "").contains("stopped by a signal"),
            "\(rec)"
        )
        #expect(try s.archives().isEmpty, "nothing was written")
    }

    /// A private mount namespace with a 512 KiB tmpfs as the destination (root, or unprivileged user namespaces).
    static let canMountTmpfs: Bool = {
        guard
            let r = try? Proc.run(
                "/usr/bin/unshare",
                [
                    "--user", "--map-root-user", "--mount", "sh", "-c",
                    "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d",
                ]
            )
        else { return false }
        return r.status == 0
    }()

    @Test(.enabled(if: canMountTmpfs, "unshare cannot mount a tmpfs here (no user namespaces)"))
    func aFullDiskFailsTheRunWithExit8LeavesNothingAndIsRecorded() throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        // 2 MiB that do not compress, into 512 KiB.
        try Data(TestArchive.noise(2 << 20, seed: 9)).write(to: URL(fileURLWithPath: s.dir + "/docs/sub/big.bin"))
        let script =
            "mount -t tmpfs -o size=512k tmpfs \(s.backups) || exit 99; env -i \(Self.bin) run --plan \(s.plan); "
            + "rc=$?; echo \"left: $(ls -A \(s.backups))\"; df -k \(s.backups) | tail -1; exit $rc"
        let r = try Proc.run("/usr/bin/unshare", ["--user", "--map-root-user", "--mount", "sh", "-c", script])
        #expect(r.status == 8, "\(r.stdout)\(r.stderr)")
        #expect(
            r.stdout.contains("left: \n") || r.stdout.hasPrefix("left: \n"),
            "nothing, not even a temporary file, is left on the full disk: \(r.stdout)"
        )
        #expect(r.stderr.contains("run FAILED") && r.stderr.contains("No space left"), "\(r.stderr)")
        let rec = try #require(try s.history().last)
        #expect(
            rec["status"] as? String == "failed" && rec["exitCode"] as? Int == 8
                && (rec["error"] as? String ?? "").contains("No space left"),
            "\(rec)"
        )
        #expect(try Self.bare(["status", "--plan", s.plan]).status == 18)
    }

    @Test func retentionKeepsEverythingWithinTheDurationAndNeverTheNewestSuccessfulArchive() throws {
        let s = try Setup(extra: "retention: {keep-within: 1d}")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        for night in ["2026-11-19T02:00:00Z", "2026-11-20T02:00:00Z", "2026-11-21T02:00:00Z"] {
            let r = try Self.bare(["run", "--plan", s.plan, "--now", night])
            #expect(r.status == 0, "\(night): \(r.stderr)")
        }
        // A manual backup minutes before the next nightly one (the case keep-daily gets wrong).
        let manual = s.backups + "/shop-2026-11-22T015500.000Z.sbk"
        let p = try Self.bare(["pack", manual, "--plan", s.plan, "--password-file", s.dir + "/archive.pass", "--quiet"])
        #expect(p.status == 0, "\(p.stderr)")
        let night = try Self.bare(["run", "--plan", s.plan, "--now", "2026-11-22T02:00:00Z"])
        #expect(night.status == 0, "\(night.stderr)")
        // Within 1 day of the newest (11-22 02:00): the manual one and the newest; 11-21 02:00 is exactly 1 day old.
        let left = try s.archives()
        #expect(left == ["shop-2026-11-22T015500.000Z.sbk", "shop-2026-11-22T020000.000Z.sbk"], "\(left)")
        let deleted = try s.history().compactMap { $0["deleted"] as? [String] }
        #expect(deleted.map(\.count) == [0, 1, 1, 1], "each night deletes what fell out of the day: \(deleted)")
        // A file that is not this plan's archive is never touched.
        try Data("notes".utf8).write(to: URL(fileURLWithPath: s.backups + "/README"))
        #expect(try Self.bare(["run", "--plan", s.plan, "--now", "2026-11-25T02:00:00Z"]).status == 0)
        let left2 = try s.archives()
        #expect(left2 == ["README", "shop-2026-11-25T020000.000Z.sbk"], "\(left2)")

        // The newest archive of a successful run survives newer archives of runs with warnings.
        let w = try Setup(
            extra: "retention: {keep-last: 1}",
            components: """
                  - {name: docs, kind: docs, path: docs}
                  - {name: uploads, kind: docs, path: uploads, allow-missing: true}
                """
        )
        defer { try? FileManager.default.removeItem(atPath: w.dir) }
        try FileManager.default.createDirectory(atPath: w.dir + "/uploads", withIntermediateDirectories: true)
        #expect(try Self.bare(["run", "--plan", w.plan, "--now", "2026-11-20T02:00:00Z"]).status == 0)
        try FileManager.default.removeItem(atPath: w.dir + "/uploads")
        #expect(try Self.bare(["run", "--plan", w.plan, "--now", "2026-11-21T02:00:00Z"]).status == 15)
        #expect(try Self.bare(["run", "--plan", w.plan, "--now", "2026-11-22T02:00:00Z"]).status == 15)
        let left3 = try w.archives()
        #expect(left3 == ["shop-2026-11-20T020000.000Z.sbk", "shop-2026-11-22T020000.000Z.sbk"], "\(left3)")
    }

    @Test func pruneKeepWithinIsQuietUnlessItDeletes() throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        for t in ["2026-11-01T020000Z", "2026-11-20T020000Z", "2026-11-21T020000Z"] {
            #expect(
                try Self.bare([
                    "pack", s.backups + "/app-\(t).sbk", s.dir + "/docs", "--password-file", s.dir + "/archive.pass",
                    "--insecure-test-kdf", "--quiet",
                ]).status == 0
            )
        }
        let first = try Self.bare(["prune", s.backups, "--keep-within", "7d"])
        #expect(
            first.status == 0
                && first.stdout.hasPrefix("delete  app-2026-11-01T020000Z.sbk  2026-11-01 02:00:00Z (from the name)"),
            "\(first.stdout)"
        )
        #expect(first.stdout.split(separator: "\n").count == 2, "only the deletion and the summary: \(first.stdout)")
        #expect(first.stdout.contains("deleted 1 of 3"), "\(first.stdout)")
        let again = try Self.bare(["prune", s.backups, "--keep-within", "7d"])
        #expect(
            again.status == 0 && again.stdout.isEmpty && again.stderr.isEmpty,
            "nothing deleted, nothing printed: \(again.stdout)"
        )
        // Even a duration that keeps nothing keeps the newest archive.
        let tiny = try Self.bare(["prune", s.backups, "--keep-within", "1min", "--verbose"])
        #expect(
            tiny.stdout.contains("keep    app-2026-11-21T020000Z.sbk")
                && tiny.stdout.contains("within 1min of the newest"),
            "\(tiny.stdout)"
        )
        #expect(try s.archives() == ["app-2026-11-21T020000Z.sbk"])
        let bad = try Self.bare(["prune", s.backups, "--keep-within", "6m"])
        #expect(bad.status == 64 && bad.stderr.contains("mo for months"), "\(bad.stderr)")
    }

    @Test func statusFlagsAStaleBackupASizeJumpAndWritesAPrometheusTextfile() throws {
        let s = try Setup(extra: "status: {max-age: 26h, size-change: 0.5, prometheus: metrics/shop.prom}")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        try FileManager.default.createDirectory(atPath: s.dir + "/metrics", withIntermediateDirectories: true)
        #expect(try Self.bare(["run", "--plan", s.plan, "--now", "2026-11-20T02:00:00Z"]).status == 0)
        let prom = try String(contentsOfFile: s.dir + "/metrics/shop.prom", encoding: .utf8)
        #expect(
            prom.contains("# TYPE sealbak_last_success_timestamp_seconds gauge")
                && prom.contains("sealbak_last_run_status{plan=\"shop\"} 0"),
            "\(prom)"
        )
        #expect(
            prom.range(of: #"sealbak_last_archive_size_bytes\{plan="shop"\} [1-9]\d*\n"#, options: .regularExpression)
                != nil,
            "\(prom)"
        )
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: s.dir + "/metrics") == ["shop.prom"],
            "no temporary file is left"
        )
        let fresh = try Self.bare(["status", "--plan", s.plan, "--now", "2026-11-20T12:00:00Z"])
        #expect(fresh.status == 0, "\(fresh.stdout)")
        let stale = try Self.bare(["status", "--plan", s.plan, "--now", "2026-11-21T06:00:00Z"])
        #expect(stale.status == 18 && stale.stdout.contains("more than 26h"), "\(stale.stdout)")
        // The next night the archive is four times larger.
        try Data(TestArchive.noise(200_000, seed: 3)).write(to: URL(fileURLWithPath: s.dir + "/docs/sub/new.bin"))
        #expect(try Self.bare(["run", "--plan", s.plan, "--now", "2026-11-21T02:00:00Z"]).status == 0)
        let jump = try Self.bare([
            "status", "--plan", s.plan, "--now", "2026-11-21T03:00:00Z", "--prometheus", s.dir + "/metrics/now.prom",
        ])
        #expect(jump.status == 18 && jump.stdout.contains("larger") && jump.stdout.contains("±50%"), "\(jump.stdout)")
        #expect(
            try String(contentsOfFile: s.dir + "/metrics/now.prom", encoding: .utf8).contains(
                "sealbak_healthy{plan=\"shop\"} 0"
            )
        )
    }

    @Test func notifyRunsACommandAndPostsJSONToARealWebhook() throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        // A real HTTP listener: python's http.server, answering 204 and appending every POST body to a file.
        let server = """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    if self.path == '/slow':
                        import time; time.sleep(30); return
                    body = self.rfile.read(int(self.headers['Content-Length']))
                    with open(sys.argv[1], 'ab') as f: f.write(self.headers['Content-Type'].encode() + b' ' + body)
                    self.send_response(204); self.end_headers()
                def log_message(self, *a): pass
            s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
            s.daemon_threads = True
            open(sys.argv[2], 'w').write(str(s.server_address[1]))
            s.serve_forever()
            """
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        listener.arguments = ["python3", "-c", server, s.dir + "/posts", s.dir + "/port"]
        try listener.run()
        // SIGKILL: the listener inherits the test runner's signal mask, in which SIGTERM may be blocked.
        defer {
            if listener.isRunning {
                kill(listener.processIdentifier, SIGKILL)
                listener.waitUntilExit()
            }
        }
        #expect(Self.waitFor(s.dir + "/port", seconds: 20))
        usleep(50_000)
        let port = try String(contentsOfFile: s.dir + "/port", encoding: .utf8)
        var text = try String(contentsOfFile: s.plan, encoding: .utf8)
        text += """

            notify:
              - {on: [failure, warning], webhook: "http://127.0.0.1:\(port)/hook?token=secret-token"}
              - {on: [success, failure], command: "cat >> \(s.dir)/notified; \
            echo \\" $SEALBAK_EVENT $SEALBAK_EXIT_CODE\\" >> \(s.dir)/notified"}
            """
        try text.write(toFile: s.plan, atomically: true, encoding: .utf8)
        #expect(try Self.bare(["run", "--plan", s.plan]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: s.dir + "/posts"), "no webhook on success (not asked for)")
        let ok = try String(contentsOfFile: s.dir + "/notified", encoding: .utf8)
        #expect(ok.contains("\"status\":\"ok\"") && ok.contains(" success 0"), "\(ok)")
        // Now fail: the docs folder is gone.
        try FileManager.default.removeItem(atPath: s.dir + "/docs")
        let fail = try Self.bare(["run", "--plan", s.plan])
        #expect(fail.status == 9, "\(fail.stderr)")
        let posts = try String(contentsOfFile: s.dir + "/posts", encoding: .utf8)
        #expect(
            posts.hasPrefix("application/json {") && posts.contains("\"status\":\"failed\"")
                && posts.contains("\"exitCode\":9"),
            "\(posts)"
        )
        let body = try #require(posts.split(separator: " ", maxSplits: 1).last)
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        #expect(json?["plan"] as? String == "shop" && (json?["error"] as? String ?? "").contains("docs"))
        #expect(try String(contentsOfFile: s.dir + "/notified", encoding: .utf8).contains(" failure 9"))
        // A receiver that accepts the connection and never answers: the notify timeout ends the wait.
        let silent = try FileHandle(forWritingTo: URL(fileURLWithPath: s.plan))
        silent.seekToEndOfFile()
        silent.write(Data("\n  - {on: [failure], webhook: \"http://127.0.0.1:\(port)/slow\", timeout: 1}\n".utf8))
        try silent.close()
        let slow = try Self.bare(["run", "--plan", s.plan])
        #expect(
            slow.status == 9 && slow.stderr.contains("/slow failed") && slow.stderr.lowercased().contains("timeout"),
            "\(slow.stderr)"
        )
        // A webhook that cannot be reached is a warning (the exit code stays the run's), and its token is not shown.
        kill(listener.processIdentifier, SIGKILL)
        listener.waitUntilExit()
        let again = try Self.bare(["run", "--plan", s.plan])
        #expect(
            again.status == 9 && again.stderr.contains("notify webhook") && !again.stderr.contains("secret-token"),
            "\(again.stderr)"
        )
    }

    @Test func bulkVerifyChecksEveryArchiveAndSkipsThoseVerifiedSince() throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        for night in ["2026-11-20T02:00:00Z", "2026-11-21T02:00:00Z"] {
            #expect(try Self.bare(["run", "--plan", s.plan, "--now", night]).status == 0)
        }
        let all = try Self.bare(["verify", s.backups, "--plan", s.plan])
        #expect(
            all.status == 0 && all.stdout.contains("verified 2 archive(s)")
                && all.stdout.contains("2 intact, 0 incomplete, 0 FAILED"),
            "\(all.stdout)\(all.stderr)"
        )
        // Runs verified them today: nothing left to do.
        let since = try Self.bare(["verify", s.backups, "--plan", s.plan, "--not-verified-since", "2020-01-01"])
        #expect(since.stdout.contains("verified 0 archive(s)") && since.stdout.contains("2 skipped"), "\(since.stdout)")
        // A damaged copy: the summary and the exit code say so.
        let names = try s.archives()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: s.backups + "/" + names[0]))
        bytes[bytes.count / 2] ^= 0x55
        try bytes.write(to: URL(fileURLWithPath: s.backups + "/shop-2026-11-22T020000.000Z.sbk"))
        let bad = try Self.bare(["verify", s.backups, "--plan", s.plan])
        #expect(
            bad.status == 4 && bad.stdout.contains("FAILED      shop-2026-11-22T020000.000Z.sbk")
                && bad.stdout.contains("2 intact, 0 incomplete, 1 FAILED"),
            "\(bad.stdout)"
        )
        #expect(try s.history().contains { $0["kind"] as? String == "verify" && $0["status"] as? String == "failed" })
    }

    @Test func drillRestoresIntoScratchTargetsChecksRecordsAndCleansUp() throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        #expect(try Self.bare(["run", "--plan", s.plan]).status == 0)
        let d = try Self.bare(["drill", "--plan", s.plan])
        #expect(d.status == 0 && d.stdout.contains("drill ok") && d.stdout.contains("docs"), "\(d.stdout)\(d.stderr)")
        #expect(d.stdout.contains("command component notes is not drilled"), "\(d.stdout)")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: s.state).sorted() == ["history.jsonl", "lock"],
            "the scratch folder is removed"
        )
        #expect(try s.history().last?["kind"] as? String == "drill" && s.history().last?["status"] as? String == "ok")
        // The live docs folder was not touched; a failing plan check fails the drill (13), and it still cleans up.
        #expect(try String(contentsOfFile: s.dir + "/docs/a.md", encoding: .utf8) == "first document\n")
        try String(contentsOfFile: s.plan, encoding: .utf8).replacingOccurrences(
            of: "test -f a.md",
            with: "test -f missing.md"
        )
        .write(toFile: s.plan, atomically: true, encoding: .utf8)
        let f = try Self.bare(["drill", "--plan", s.plan])
        #expect(f.status == 13 && f.stderr.contains("drill FAILED"), "\(f.stdout)\(f.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.state).sorted() == ["history.jsonl", "lock"])
        #expect(try s.history().last?["status"] as? String == "failed")
        // A drill killed before its restore: the next drill removes its scratch folder.
        let k = try Self.bare(["drill", "--plan", s.plan], env: ["SEALBAK_FAULT": "drill:1:kill"])
        #expect(k.status == 128 + SIGKILL)
        try FileManager.default.createDirectory(
            atPath: s.state + "/drill-" + (try s.history().last?["id"] as? String ?? "x") + "/files",
            withIntermediateDirectories: true
        )
        // A nightly run comes first and records the killed drill as interrupted; the next drill still cleans up after
        // it.
        #expect(try Self.bare(["run", "--plan", s.plan]).status == 0)
        _ = try Self.bare(["drill", "--plan", s.plan])
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.state).sorted() == ["history.jsonl", "lock"])
        #expect(
            try s.history().contains { $0["kind"] as? String == "drill" && $0["status"] as? String == "interrupted" }
        )
    }
}
