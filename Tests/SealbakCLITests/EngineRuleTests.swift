import Foundation
import SealbakTestSupport
import Testing

/// The five rules of the component engine (Spec/COMPONENTS.md, issue 11), each proven through the built binary so
/// that breaking a rule fails a test here; and regressions for the bugs listed in the issue. PostgreSQL parts of
/// the rules are in SealbakPostgresTests/EngineRulePostgresTests.swift.
@Suite struct EngineRuleTests {
    /// Runs `sealbak ARGS` with the archive password, without the fault variables of the environment.
    @discardableResult
    static func sb(
        _ args: [String],
        env: [String: String] = [:],
        cwd: String? = nil,
        stdin: String? = nil
    ) throws -> Proc.Result {
        try CLITests.run(
            args,
            env: ["SEALBAK_FAULT": "", "SEALBAK_FAULT_TRACE": ""].merging(env) { $1 },
            stdin: stdin,
            cwd: cwd
        )
    }

    static func write(_ path: String, _ text: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Names of staging folders of restores (`.NAME.sealbak-restore-PID-RAND`) anywhere below `dir`.
    static func stagingLeftovers(_ dir: String) -> [String] {
        (FileManager.default.subpaths(atPath: dir) ?? []).filter {
            ($0 as NSString).lastPathComponent.contains(".sealbak-restore-")
        }
    }

    /// The source of a docs component with everything a live folder has besides its documents: defaults (.git,
    /// node_modules, __pycache__) and a `.sealbakignore` that leaves out the operator's local backups.
    static func kbSource(_ dir: String) throws -> String {
        let kb = dir + "/src/kb"
        try Self.write(kb + "/readme.md", "new readme")
        try Self.write(kb + "/guides/setup.md", String(repeating: "setup ", count: 2000))
        try Self.write(kb + "/.sealbakignore", "/backups/\n*.log\n")
        try Self.write(kb + "/.git/HEAD", "packed head (never packed)")
        try Self.write(kb + "/node_modules/pkg/index.js", "packed js (never packed)")
        try Self.write(kb + "/backups/nightly.tar", "packed backup (never packed)")
        return kb
    }

    /// The live folder the archive is restored over: older documents, a file made after the backup, and excluded
    /// paths with content that exists only here.
    static func kbLive(_ kb: String) throws {
        try Self.write(kb + "/readme.md", "old readme")
        try Self.write(kb + "/stale.md", "made after the backup")
        try Self.write(kb + "/guides/old-guide.md", "old guide")
        try Self.write(kb + "/.sealbakignore", "/backups/\n*.log\n")
        try Self.write(kb + "/.git/HEAD", "ref: refs/heads/live")
        try Self.write(kb + "/.git/objects/ab/cdef", "git object")
        try Self.write(kb + "/node_modules/pkg/index.js", "local js")
        try Self.write(kb + "/backups/2026-11-01.tar", "the operator's local backup")
        try Self.write(kb + "/guides/debug.log", "a log, excluded by *.log")
        try Self.write(kb + "/tools/__pycache__/x.pyc", "pyc")
    }

    // MARK: Rule 1: capture failures

    /// A docs folder that is missing fails the pack naming it (exit 9, no archive); with --allow-missing it is
    /// recorded as skipped: the pack exits 15, list says SKIPPED, verify exits 15, restore skips it with a note and
    /// refuses --only NAME.
    @Test func rule1MissingFolderFailsThePackOrIsRecordedSkipped() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir + "/src/notes/a.md", "notes")
        let args = [
            "pack", dir + "/a.sbk", "--docs", "notes=" + dir + "/src/notes", "--docs", "kb=" + dir + "/src/nope",
            "--insecure-test-kdf",
        ]
        let failed = try Self.sb(args)
        #expect(
            failed.status == 9 && failed.stderr.contains("kb") && failed.stderr.contains("nope"),
            "\(failed.stderr)"
        )
        #expect(!Self.exists(dir + "/a.sbk"), "a failed pack writes no archive")

        let skipped = try Self.sb(args + ["--allow-missing", "kb"])
        #expect(
            skipped.status == 15 && skipped.stderr.contains("kb is skipped") && skipped.stderr.contains("INCOMPLETE"),
            "\(skipped.stderr)"
        )
        let listed = try Self.sb(["list", dir + "/a.sbk"])
        #expect(listed.status == 0 && listed.stdout.contains("docs kb: SKIPPED"), "\(listed.stdout)")
        let verified = try Self.sb(["verify", dir + "/a.sbk"])
        #expect(verified.status == 15 && verified.all.contains("kb"), "\(verified.all)")
        let restored = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/out"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(
            restored.stderr.contains("note: kb is not restored") && restored.stderr.contains("skipped when packing"),
            "\(restored.stderr)"
        )
        #expect(Self.read(dir + "/out/notes/a.md") == "notes" && !Self.exists(dir + "/out/kb"))
        let dry = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/out2", "--dry-run"])
        #expect(dry.status == 0 && dry.stdout.contains("note: kb is not restored"), "\(dry.stdout)")
        let only = try Self.sb(["restore", dir + "/a.sbk", "--only", "kb", "--to", dir + "/out3"])
        #expect(only.status == 9 && only.stderr.contains("skipped when packing"), "\(only.stderr)")
        #expect(!Self.exists(dir + "/out3"))
    }

    /// A folder component that fails in the middle of its capture (a file listed, then gone before it is read:
    /// here the dump command of the component packed before it deletes it, so no timing is involved). Without
    /// allow-missing the pack fails naming the component and the cause, and writes nothing; with it, the pack
    /// exits 15, list and verify say FAILED (verify exits 15), and the partial bytes are never restored.
    @Test func rule1AFolderThatFailsMidCaptureIsRecordedFailedAndNeverRestored() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kb = dir + "/src/kb"
        try Self.write(kb + "/a-first.md", "captured before the failure")
        try Self.write(kb + "/b-vanishes.md", "deleted after the listing")
        try Self.write(kb + "/c-last.md", "never reached")
        try Self.write(dir + "/src/notes/n.md", "notes")
        func plan(allowMissing: Bool) throws -> String {
            let path = dir + "/plan-\(allowMissing).yaml"
            try Self.write(
                path,
                """
                components:
                  - name: mutator
                    kind: command
                    dump: "rm -f '\(kb)/b-vanishes.md'; echo mutated"
                    restore: "cat > /dev/null"
                  - name: kb
                    kind: docs
                    path: \(kb)
                    allow-missing: \(allowMissing)
                  - name: notes
                    kind: docs
                    path: \(dir)/src/notes
                """
            )
            return path
        }
        let failed = try Self.sb([
            "pack", dir + "/a.sbk", "--plan", try plan(allowMissing: false), "--insecure-test-kdf",
        ])
        #expect(failed.status != 0 && failed.status != 15, "\(failed.stderr)")
        #expect(
            failed.stderr.contains("docs component kb failed while it was captured")
                && failed.stderr.contains("b-vanishes.md"),
            "\(failed.stderr)"
        )
        #expect(!Self.exists(dir + "/a.sbk"))

        try Self.write(kb + "/b-vanishes.md", "deleted after the listing")
        let packed = try Self.sb([
            "pack", dir + "/a.sbk", "--plan", try plan(allowMissing: true), "--insecure-test-kdf",
        ])
        #expect(
            packed.status == 15 && packed.stderr.contains("kb FAILED while it was captured")
                && packed.stderr.contains("INCOMPLETE"),
            "\(packed.stderr)"
        )
        let listed = try Self.sb(["list", dir + "/a.sbk"])
        #expect(
            listed.stdout.contains("docs kb: FAILED") && listed.stdout.contains("never restored"),
            "\(listed.stdout)"
        )
        let verified = try Self.sb(["verify", dir + "/a.sbk"])
        #expect(verified.status == 15 && verified.all.contains("kb FAILED"), "\(verified.all)")
        let only = try Self.sb(["restore", dir + "/a.sbk", "--only", "kb", "--to", dir + "/out"])
        #expect(only.status == 9 && only.stderr.contains("FAILED while it was packed"), "\(only.stderr)")
        let onlyDry = try Self.sb(["restore", dir + "/a.sbk", "--only", "kb", "--to", dir + "/out", "--dry-run"])
        #expect(onlyDry.status == 9, "\(onlyDry.all)")
        #expect(!Self.exists(dir + "/out"))
        // Restoring the rest restores the other folder and says why kb is not restored; its partial bytes stay out.
        let rest = try Self.sb(["restore", dir + "/a.sbk", "--only", "notes", "--to", dir + "/out"])
        #expect(rest.status == 0 && Self.read(dir + "/out/notes/n.md") == "notes", "\(rest.stderr)")
        #expect(!Self.exists(dir + "/out/kb"))
        let all = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/out2"])
        #expect(
            all.status == 0 && all.stderr.contains("note: kb is not restored")
                && all.stderr.contains("FAILED while it was packed"),
            "\(all.all)"
        )
        #expect(Self.read(dir + "/out2/notes/n.md") == "notes")
        #expect(!Self.exists(dir + "/out2/kb"), "the partial bytes of a failed component were restored")
    }

    // MARK: Rule 2: stage all, commit all or roll back; killed restores are recovered

    struct Fixture {
        let dir: String
        let archive: String
        var targets: [String] { [dir + "/live1/kb", dir + "/live2/notes", dir + "/live3/fresh"] }
        var args: [String] {
            [
                "--target", "kb=" + targets[0], "--target", "notes=" + targets[1], "--target", "fresh=" + targets[2],
                "--replace",
            ]
        }
        /// The same targets relative to `dir`.
        var relativeArgs: [String] {
            [
                "--target", "kb=live1/kb", "--target", "notes=live2/notes", "--target", "fresh=./live3/fresh",
                "--replace",
            ]
        }

        /// Three docs components: kb (over a live folder with excluded paths), notes (over a live folder with
        /// .git), fresh (its target does not exist yet); targets in three different folders.
        init() throws {
            dir = try Proc.tempDir()
            archive = dir + "/a.sbk"
            _ = try EngineRuleTests.kbSource(dir)
            try EngineRuleTests.write(dir + "/src/notes/a.md", "new a")
            try EngineRuleTests.write(dir + "/src/notes/sub/b.md", "new b")
            try EngineRuleTests.write(dir + "/src/fresh/f.md", "fresh")
            let r = try EngineRuleTests.sb([
                "pack", archive, "--docs", "kb=" + dir + "/src/kb", "--docs", "notes=" + dir + "/src/notes",
                "--docs", "fresh=" + dir + "/src/fresh", "--insecure-test-kdf", "--quiet",
            ])
            #expect(r.status == 0, "\(r.stderr)")
        }

        /// Puts the targets back in their state before the restore.
        func reset() throws {
            for d in ["live1", "live2", "live3"] { try? FileManager.default.removeItem(atPath: dir + "/" + d) }
            try EngineRuleTests.kbLive(targets[0])
            try EngineRuleTests.write(targets[1] + "/a.md", "old a")
            try EngineRuleTests.write(targets[1] + "/.git/config", "[core]")
            try FileManager.default.createDirectory(atPath: dir + "/live3", withIntermediateDirectories: true)
        }

        /// Each target's tree (nil when absent).
        func state() throws -> [[String: Data]?] {
            try targets.map { EngineRuleTests.exists($0) ? try CLITests.tree($0) : nil }
        }

        func keptCopies() -> [String] {
            ["live1", "live2", "live3"].flatMap { d in
                ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/" + d)) ?? []).filter {
                    $0.contains(".sbk-replaced-")
                }.map { d + "/" + $0 }
            }
        }
    }

    /// The commit of the second component fails (an injected EIO at its swap): the first, already swapped in, is
    /// rolled back with its excluded paths, the restore exits 8, and no staging folder is left.
    @Test func rule2AFailedSecondCommitRollsTheFirstBack() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        try f.reset()
        let old = try f.state()
        let trace = try Self.sb(
            ["restore", f.archive] + f.args,
            env: ["SEALBAK_FAULT": "restore:100000:fail", "SEALBAK_FAULT_TRACE": "1"]
        )
        #expect(trace.status == 0, "\(trace.stderr)")
        let steps = trace.stderr.split(separator: "\n").filter { $0.contains("fault point restore #") }
        guard let swap = steps.firstIndex(where: { $0.hasSuffix("swap " + f.targets[1]) }) else {
            Issue.record("no swap step for \(f.targets[1]) in \(trace.stderr)")
            return
        }
        #expect(
            steps.prefix(swap).contains { $0.hasSuffix("swap " + f.targets[0]) },
            "kb is committed before notes: \(steps)"
        )
        try f.reset()
        let r = try Self.sb(["restore", f.archive] + f.args, env: ["SEALBAK_FAULT": "restore:\(swap + 1):fail"])
        #expect(
            r.status == 8 && r.stderr.contains("notes could not be put in place")
                && r.stderr.contains("rolled back kb"),
            "\(r.stderr)"
        )
        #expect(try f.state() == old, "every target has its old content")
        #expect(
            Self.read(f.targets[0] + "/.git/HEAD") == "ref: refs/heads/live"
                && Self.read(f.targets[0] + "/backups/2026-11-01.tar") == "the operator's local backup"
        )
        #expect(Self.stagingLeftovers(f.dir).isEmpty, "\(Self.stagingLeftovers(f.dir))")
        #expect(f.keptCopies().isEmpty)
    }

    /// Kills the restore (SIGKILL) at every step of its commit and finalize, with and without --keep-replaced,
    /// and with targets given relative to the working directory while the next run starts elsewhere; the next run
    /// of sealbak (a dry run) names and recovers the leftovers. After it, each target is entirely old or entirely
    /// new, all targets agree, excluded paths (.git, node_modules, backups/) are in place, and no staging folder
    /// is left.
    @Test(arguments: [(false, false), (true, false), (false, true)])
    func rule2AKilledRestoreIsAllOldOrAllNewAfterTheNextRun(keep: Bool, relative: Bool) throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        do {
            let args =
                ["restore", f.archive] + (relative ? f.relativeArgs : f.args) + (keep ? ["--keep-replaced"] : [])
            let cwd = relative ? f.dir : nil
            try f.reset()
            let old = try f.state()
            let done = try Self.sb(args, cwd: cwd)
            #expect(done.status == 0, "\(done.stderr)")
            let new = try f.state()
            #expect(new != old && new.allSatisfy { $0 != nil })
            var outcomes: [String: Int] = [:]
            var n = 1
            while n < 200 {
                try f.reset()
                let r = try Self.sb(args, env: ["SEALBAK_FAULT": "restore:\(n):kill"], cwd: cwd)
                if !r.signaled {
                    // The restore finished without reaching step n: every step was tried.
                    let end = try f.state()
                    #expect(r.status == 0 && end == new, "\(r.stderr)")
                    break
                }
                #expect(r.status == 128 + SIGKILL)
                let leftovers = Self.stagingLeftovers(f.dir)
                // The next run starts in another directory (with absolute targets).
                let next = try Self.sb(["restore", f.archive] + f.args + ["--dry-run"], cwd: "/")
                #expect(next.status == 0, "kill at step \(n): \(next.all)")
                if !leftovers.isEmpty {
                    #expect(
                        next.all.contains("killed"),
                        "kill at step \(n): the leftovers \(leftovers) are not named: \(next.all)"
                    )
                }
                let s = try f.state()
                let outcome = s == old ? "old" : s == new ? "new" : "MIXED"
                outcomes[outcome, default: 0] += 1
                #expect(
                    outcome != "MIXED",
                    """
                    kill at step \(n) (keep-replaced \(keep)): targets are neither all old nor all new: \
                    \(zip(s, zip(old, new)).map { $0.0 == $0.1.0 ? "old" : $0.0 == $0.1.1 ? "new" : "mixed" })
                    """
                )
                #expect(
                    Self.read(f.targets[0] + "/.git/HEAD") == "ref: refs/heads/live",
                    "kill at step \(n): .git lost"
                )
                #expect(
                    Self.read(f.targets[0] + "/node_modules/pkg/index.js") == "local js",
                    "kill at step \(n): node_modules lost"
                )
                #expect(
                    Self.read(f.targets[0] + "/backups/2026-11-01.tar") == "the operator's local backup",
                    "kill at step \(n): backups/ lost"
                )
                #expect(Self.read(f.targets[1] + "/.git/config") == "[core]", "kill at step \(n): notes/.git lost")
                #expect(Self.stagingLeftovers(f.dir).isEmpty, "kill at step \(n): \(Self.stagingLeftovers(f.dir)) left")
                if keep && outcome == "new" {
                    #expect(
                        f.keptCopies().count == 2,
                        "kill at step \(n): the replaced folders are kept: \(f.keptCopies())"
                    )
                } else if outcome == "old" {
                    #expect(f.keptCopies().isEmpty, "kill at step \(n): \(f.keptCopies())")
                }
                n += 1
            }
            let counts = "old \(outcomes["old"] ?? 0), new \(outcomes["new"] ?? 0), mixed \(outcomes["MIXED"] ?? 0)"
            print(
                "rule 2 kill test (keep-replaced \(keep), relative targets \(relative)): \(n - 1) kill points; "
                    + "outcomes \(counts)"
            )
            #expect(n > 5 && n < 200)
            #expect(
                (outcomes["old"] ?? 0) > 0 && (outcomes["new"] ?? 0) > 0,
                "kill points before and after the point of no return"
            )
        }
    }

    // MARK: Rule 3: the dry run makes the real run's checks and gives its exit code

    @Test func rule3DryRunRefusesWhatTheRealRunRefuses() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kb = try Self.kbSource(dir)
        #expect(try Self.sb(["pack", dir + "/a.sbk", "--docs", kb, "--insecure-test-kdf", "--quiet"]).status == 0)
        try Self.kbLive(dir + "/live/kb")
        let before = try CLITests.tree(dir + "/live/kb")
        // A non-empty folder without --replace: 7 from both.
        let dry = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/live", "--dry-run"])
        let real = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/live"])
        #expect(real.status == 7 && real.stderr.contains("--replace"), "\(real.stderr)")
        #expect(dry.status == real.status && dry.all.contains("--replace"), "\(dry.all)")
        #expect(try CLITests.tree(dir + "/live/kb") == before)
        // A file where the folder should go: 7 from both.
        try Self.write(dir + "/file/kb", "a file")
        let dry2 = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/file", "--replace", "--dry-run"])
        let real2 = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/file", "--replace"])
        #expect(real2.status == 7 && dry2.status == 7, "\(dry2.all) \(real2.all)")
        #expect(Self.read(dir + "/file/kb") == "a file")
        // An unknown component: 9 from both.
        let dry3 = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/x", "--only", "nope", "--dry-run"])
        let real3 = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/x", "--only", "nope"])
        #expect(real3.status == 9 && dry3.status == 9)
        #expect(Self.stagingLeftovers(dir).isEmpty && !Self.exists(dir + "/x"))
    }

    @Test func rule3DryRunListsAddedReplacedDeletedAndKeptPaths() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kb = try Self.kbSource(dir)
        #expect(try Self.sb(["pack", dir + "/a.sbk", "--docs", kb, "--insecure-test-kdf", "--quiet"]).status == 0)
        try Self.kbLive(dir + "/live/kb")
        let before = try CLITests.tree(dir + "/live/kb")
        let dry = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/live", "--replace", "--dry-run"])
        #expect(dry.status == 0, "\(dry.all)")
        let lines = Set(dry.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        for l in [
            "add guides/setup.md", "replace readme.md", "replace .sealbakignore", "delete stale.md",
            "delete guides/old-guide.md",
            "keep .git", "keep node_modules", "keep backups", "keep guides/debug.log", "keep tools/__pycache__",
        ] {
            #expect(lines.contains(l), "the dry run does not say \"\(l)\": \(dry.stdout)")
        }
        #expect(!dry.stdout.contains(".git/HEAD"), "excluded folders are kept whole, not walked")
        #expect(!lines.contains("delete tools"), "tools/ holds a kept path, so it is not deleted: \(dry.stdout)")
        #expect(dry.stdout.contains("dry run: nothing was changed"))
        #expect(try CLITests.tree(dir + "/live/kb") == before)
        #expect(Self.stagingLeftovers(dir).isEmpty)
    }

    // MARK: Rule 4: a folder restore keeps what was excluded when packing

    /// Regression (issue 11): `restore --target files=./app --replace` of a --docs component deleted .git,
    /// node_modules and a backups/ folder excluded by .sealbakignore.
    @Test func rule4FolderRestoreKeepsExcludedPathsAndDeletesTheRest() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Self.kbSource(dir)
        #expect(
            try Self.sb([
                "pack", dir + "/a.sbk", "--docs", "files=" + dir + "/src/kb", "--insecure-test-kdf", "--quiet",
            ]).status == 0
        )
        try Self.kbLive(dir + "/app")
        let r = try Self.sb(["restore", "a.sbk", "--target", "files=./app", "--replace"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let t = try CLITests.tree(dir + "/app")
        #expect(t["readme.md"] == Data("new readme".utf8) && t["guides/setup.md"] != nil)
        #expect(
            t[".git/HEAD"] == Data("ref: refs/heads/live".utf8) && t[".git/objects/ab/cdef"] == Data("git object".utf8)
        )
        #expect(t["node_modules/pkg/index.js"] == Data("local js".utf8))
        #expect(t["backups/2026-11-01.tar"] == Data("the operator's local backup".utf8))
        #expect(t["guides/debug.log"] != nil && t["tools/__pycache__/x.pyc"] != nil)
        #expect(
            t["stale.md"] == nil && t["guides/old-guide.md"] == nil,
            "files made after the backup and not excluded are deleted"
        )
        #expect(
            t["backups/nightly.tar"] == nil && t["node_modules/pkg/index.js"] != Data("packed js (never packed)".utf8)
        )
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["a.sbk", "app", "src"],
            "no staging folder left"
        )
    }

    @Test func rule4KeepReplacedKeepsTheOldFolder() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Self.kbSource(dir)
        #expect(
            try Self.sb([
                "pack", dir + "/a.sbk", "--docs", "files=" + dir + "/src/kb", "--insecure-test-kdf", "--quiet",
            ]).status == 0
        )
        try Self.kbLive(dir + "/app")
        let r = try Self.sb(["restore", "a.sbk", "--target", "files=./app", "--replace", "--keep-replaced"], cwd: dir)
        #expect(r.status == 0 && r.stdout.contains("kept as"), "\(r.all)")
        let kept = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("app.sbk-replaced-") }
        #expect(kept.count == 1, "\((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])")
        guard let k = kept.first else { return }
        let old = try CLITests.tree(dir + "/" + k)
        #expect(
            old["readme.md"] == Data("old readme".utf8) && old["stale.md"] == Data("made after the backup".utf8)
                && old["guides/old-guide.md"] != nil
        )
        // The excluded paths moved with the restore into the live folder; the kept copy is the rest of the old one.
        #expect(
            Self.read(dir + "/app/.git/HEAD") == "ref: refs/heads/live"
                && Self.read(dir + "/app/readme.md") == "new readme"
        )
        #expect(Self.stagingLeftovers(dir).isEmpty)
    }

    // MARK: Rule 5: entries outside components

    /// PATH arguments and --stdin-name entries are restored by `restore --to DIR`, listed by its dry run, and
    /// reported (not silently skipped) without --to.
    @Test func rule5PathArgumentsAndStdinAreRestoredOrReported() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir + "/src/notes.txt", "loose file")
        try Self.write(dir + "/src/folder/inner/x.txt", "loose folder")
        try Self.write(dir + "/src/kb/a.md", "doc")
        try Self.write(dir + "/in.dump", String(repeating: "dump ", count: 10000))
        let p = try Self.sb(
            [
                "pack", dir + "/a.sbk", dir + "/src/notes.txt", dir + "/src/folder", "--docs", dir + "/src/kb",
                "--stdin-name", "db/app.dump", "--insecure-test-kdf", "--quiet",
            ],
            stdin: dir + "/in.dump"
        )
        #expect(p.status == 0, "\(p.stderr)")

        let dry = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/out", "--dry-run"])
        #expect(dry.status == 0, "\(dry.all)")
        for name in ["notes.txt", "folder", "db"] {
            #expect(dry.stdout.contains(name), "the dry run does not list \(name): \(dry.stdout)")
        }
        #expect(!Self.exists(dir + "/out"))

        let r = try Self.sb(["restore", dir + "/a.sbk", "--to", dir + "/out"])
        #expect(r.status == 0, "\(r.all)")
        #expect(Self.read(dir + "/out/notes.txt") == "loose file")
        #expect(Self.read(dir + "/out/folder/inner/x.txt") == "loose folder")
        #expect(Self.read(dir + "/out/db/app.dump") == String(repeating: "dump ", count: 10000))
        #expect(Self.read(dir + "/out/kb/a.md") == "doc")

        // Without --to: the component is restored, the loose entries are named in a note (and in the dry run).
        let noTo = try Self.sb(["restore", dir + "/a.sbk", "--target", "kb=" + dir + "/kb2"])
        #expect(noTo.status == 0 && Self.read(dir + "/kb2/a.md") == "doc", "\(noTo.all)")
        for name in ["notes.txt", "folder", "db"] {
            #expect(
                noTo.stderr.contains("note: \(name)") && noTo.stderr.contains("--to DIR"),
                "\(name) is not mentioned: \(noTo.stderr)"
            )
        }
        let noToDry = try Self.sb(["restore", dir + "/a.sbk", "--target", "kb=" + dir + "/kb3", "--dry-run"])
        #expect(
            noToDry.status == 0 && noToDry.stdout.contains("note: notes.txt") && noToDry.stdout.contains("note: db"),
            "\(noToDry.all)"
        )
        // --only a loose group without --to says how to restore it.
        let only = try Self.sb(["restore", dir + "/a.sbk", "--only", "db"])
        #expect(only.status == 64 && only.stderr.contains("--to DIR"), "\(only.all)")
        // An archive of loose entries alone: not "nothing to restore" without naming them.
        #expect(
            try Self.sb(["pack", dir + "/b.sbk", dir + "/src/notes.txt", "--insecure-test-kdf", "--quiet"]).status == 0
        )
        let loose = try Self.sb(["restore", dir + "/b.sbk"])
        #expect(
            loose.status == 64 && loose.stderr.contains("notes.txt") && loose.stderr.contains("--to DIR"),
            "\(loose.all)"
        )
        #expect(
            try Self.sb(["restore", dir + "/b.sbk", "--to", dir + "/out-b"]).status == 0
                && Self.read(dir + "/out-b/notes.txt") == "loose file"
        )
    }

    // MARK: Regression: a truncated Qdrant snapshot

    /// Regression (issue 11): a Qdrant snapshot tar cut in the middle of a member was packed and recorded as a
    /// healthy collection. Every tar header must be walked, and the data of each member must be there.
    @Test func truncatedQdrantSnapshotIsRefusedAtPack() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let coll = dir + "/storage/collections/docs"
        try FileManager.default.createDirectory(atPath: coll + "/0/segments/s", withIntermediateDirectories: true)
        try Data(TestArchive.noise(20_000, seed: 3)).write(
            to: URL(fileURLWithPath: coll + "/0/segments/s/vector_storage.dat")
        )
        try Data(TestArchive.noise(30_000, seed: 5)).write(to: URL(fileURLWithPath: coll + "/0/segments/s/payload.dat"))
        try Self.write(coll + "/config.json", "{\"params\":{}}")
        let snaps = dir + "/snaps"
        try FileManager.default.createDirectory(atPath: snaps, withIntermediateDirectories: true)
        let snap = snaps + "/docs-2410538812212434-2026-11-21-10-00-00.snapshot"
        let tar = try Proc.run("/usr/bin/tar", ["-cf", snap, "-C", dir + "/storage/collections", "docs"])
        #expect(tar.status == 0, "\(tar.stderr)")
        #expect(
            try Self.sb(["pack", dir + "/ok.sbk", "--qdrant", "qd=" + snaps, "--insecure-test-kdf", "--quiet"]).status
                == 0,
            "the whole snapshot packs"
        )
        // Cut in the middle of the last member with data (its header intact, half its bytes missing).
        let whole = try Data(contentsOf: URL(fileURLWithPath: snap))
        var cut = 0
        var offset = 0
        while offset + 512 <= whole.count {
            let header = whole[offset..<offset + 512]
            if header.allSatisfy({ $0 == 0 }) { break }
            let sizeField = String(
                decoding: header[header.startIndex + 124..<header.startIndex + 136].prefix { $0 != 0 && $0 != 0x20 },
                as: UTF8.self
            )
            let size = Int(sizeField.trimmingCharacters(in: .whitespaces), radix: 8) ?? 0
            if size > 1024 { cut = offset + 512 + size / 2 }
            offset += 512 + (size + 511) / 512 * 512
        }
        #expect(cut > 0)
        try whole.prefix(cut).write(to: URL(fileURLWithPath: snap))
        let r = try Self.sb(["pack", dir + "/bad.sbk", "--qdrant", "qd=" + snaps, "--insecure-test-kdf"])
        #expect(
            r.status != 0 && r.status != 15 && r.stderr.contains((snap as NSString).lastPathComponent),
            "a truncated snapshot was packed: \(r.all)"
        )
        #expect(!Self.exists(dir + "/bad.sbk"))
    }
}
