import Foundation
import SealbakTestSupport
import Testing

/// The `sqlite` kind with real SQLite databases (Python's sqlite3 module through scripts/sqlite-tool.py, the
/// system library): a capture under concurrent writes, WAL targets with uncheckpointed data, a corrupted source,
/// a database larger than the frame size, locked targets, --keep-replaced, a failing plan check, and a restore
/// killed at every commit step.
@Suite struct SQLiteComponentTests {
    typealias E = EngineRuleTests
    static let tool = Proc.root + "/scripts/sqlite-tool.py"

    /// Runs scripts/sqlite-tool.py; fails the test on a non-zero exit.
    @discardableResult
    static func tool(_ args: [String]) throws -> String {
        let r = try Proc.run("/usr/bin/env", ["python3", tool] + args)
        guard r.status == 0 else { throw TestFailure("sqlite-tool.py \(args) failed: \(r.stderr)") }
        return r.stdout
    }

    /// The content of every table (read from a copy of the database and its -wal, so nothing is changed).
    static func state(_ db: String) throws -> String { try tool(["state", db]) }

    /// A helper process started with pipes; `line()` blocks until it prints a line.
    final class Helper {
        let process = Process()
        let input = Pipe(), output = Pipe()
        init(_ args: [String]) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", SQLiteComponentTests.tool] + args
            process.standardInput = input
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
        }
        func line() -> String {
            var bytes: [UInt8] = []
            while true {
                let d = output.fileHandleForReading.readData(ofLength: 1)
                if d.isEmpty || d[d.startIndex] == 10 { break }
                bytes.append(d[d.startIndex])
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        func finish() -> String {
            try? input.fileHandleForWriting.close()
            let rest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return rest
        }
        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
    }

    /// Staging folders of restores (folders and SQLite files) anywhere below `dir`.
    static func stagingLeftovers(_ dir: String) -> [String] {
        (FileManager.default.subpaths(atPath: dir) ?? []).filter {
            let n = ($0 as NSString).lastPathComponent
            return n.contains(".sealbak-restore-") || n.contains(".sealbak-sqlite-")
        }
    }

    /// Private copies (`sealbak-sqlite-PID-…` in the temporary folder) of packs that have ended.
    static func copiesOfDeadPacks() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []).filter { n in
            guard n.hasPrefix("sealbak-sqlite-"),
                let pid = Int32(n.dropFirst("sealbak-sqlite-".count).split(separator: "-").first ?? "")
            else { return false }
            return kill(pid, 0) != 0 && errno == ESRCH
        }
    }

    static func sideFiles(_ db: String) -> [String] { ["-wal", "-shm", "-journal"].filter { E.exists(db + $0) } }

    static func pack(_ archive: String, _ args: [String]) throws {
        let r = try E.sb(["pack", archive] + args + ["--insecure-test-kdf", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    // MARK: capture

    /// Another process inserts rows, one transaction each, all through the pack. The rows recorded for each
    /// table are exactly the rows of the restored copy (and the restore itself recounts them), in WAL and in
    /// rollback-journal mode.
    @Test(arguments: [true, false])
    func aDatabaseUnderConcurrentWritesIsCapturedConsistently(wal: Bool) throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/app.db"
        try Self.tool(["make", db, "200"] + (wal ? ["--wal"] : []))
        let writer = try Helper(["write", db, dir + "/stop"])
        #expect(writer.line() == "ready")
        let packed = try E.sb(["pack", dir + "/a.sbk", "--sqlite", db, "--insecure-test-kdf"])
        try E.write(dir + "/stop", "")
        let written = Int(writer.finish().trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        #expect(packed.status == 0, "\(packed.stderr)")
        #expect(
            packed.stderr.contains("app: SQLite database, online backup of")
                && packed.stderr.contains("journal mode \(wal ? "wal" : "delete")"),
            "\(packed.stderr)"
        )
        #expect(
            Self.copiesOfDeadPacks().isEmpty,
            "the private copy is removed after packing: \(Self.copiesOfDeadPacks())"
        )

        let listed = try E.sb(["list", dir + "/a.sbk"])
        #expect(
            listed.stdout.contains("sqlite app: ok, 10 tables") && listed.stdout.contains("user_version 7"),
            "\(listed.stdout)"
        )
        let recorded =
            listed.stdout.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("events: ") }
            .flatMap { Int($0.split(separator: " ")[1]) } ?? -1
        let restored = try E.sb(["restore", dir + "/a.sbk", "--to", dir + "/out"])
        #expect(restored.status == 0 && restored.stdout.contains("integrity_check ok"), "\(restored.all)")
        let inCopy =
            Int(
                try Self.tool(["count", dir + "/out/app.sqlite3", "events"]).trimmingCharacters(
                    in: .whitespacesAndNewlines
                )
            ) ?? -2
        #expect(recorded == inCopy, "recorded \(recorded) events, the restored copy holds \(inCopy)")
        #expect(inCopy >= 50 && inCopy <= written, "the copy holds \(inCopy) of the \(written) events written")
        #expect(
            Int(
                try Self.tool(["count", dir + "/out/app.sqlite3", "notes"]).trimmingCharacters(
                    in: .whitespacesAndNewlines
                )
            ) == 200
        )
    }

    /// A source that fails `PRAGMA integrity_check` is refused naming the file and the first problem (exit 4, no
    /// archive); so is a file that is no SQLite database. A missing one fails with 9, or is recorded as skipped with
    /// --allow-missing (exit 15; list says SKIPPED; restore leaves it out).
    @Test func aCorruptedOrMissingSourceIsRefused() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/broken.db"
        try Self.tool(["make", db, "300"])
        try Self.tool(["corrupt", db])
        let r = try E.sb(["pack", dir + "/a.sbk", "--sqlite", db, "--insecure-test-kdf"])
        #expect(r.status == 4, "\(r.all)")
        #expect(
            r.stderr.contains(db) && r.stderr.contains("fails SQLite's integrity check")
                && r.stderr.contains("the first: "),
            "\(r.stderr)"
        )
        #expect(r.stderr.split(separator: "\n").count <= 2, "one clear message, not every problem: \(r.stderr)")
        #expect(!E.exists(dir + "/a.sbk"))

        try E.write(dir + "/notes.db", "just some text, long enough to have a header\n")
        let r2 = try E.sb(["pack", dir + "/a.sbk", "--sqlite", dir + "/notes.db", "--insecure-test-kdf"])
        #expect(r2.status == 4 && r2.stderr.contains("is not an SQLite 3 database"), "\(r2.all)")

        try Self.tool(["make", dir + "/ok.db", "3"])
        let r3 = try E.sb([
            "pack", dir + "/a.sbk", "--sqlite", dir + "/gone.db", "--sqlite", dir + "/ok.db", "--insecure-test-kdf",
        ])
        #expect(r3.status == 9 && r3.stderr.contains("gone.db"), "\(r3.all)")
        let r4 = try E.sb([
            "pack", dir + "/a.sbk", "--sqlite", dir + "/gone.db", "--sqlite", dir + "/ok.db", "--allow-missing", "gone",
            "--insecure-test-kdf",
        ])
        #expect(r4.status == 15 && r4.stderr.contains("gone is skipped"), "\(r4.all)")
        #expect(try E.sb(["list", dir + "/a.sbk"]).stdout.contains("sqlite gone: SKIPPED"))
        let restored = try E.sb(["restore", dir + "/a.sbk", "--to", dir + "/out"])
        #expect(restored.status == 0 && restored.stderr.contains("note: gone is not restored"), "\(restored.all)")
        #expect(E.exists(dir + "/out/ok.sqlite3") && !E.exists(dir + "/out/gone.sqlite3"))
        #expect(
            Self.copiesOfDeadPacks().isEmpty,
            "the private copy is removed after a refused pack: \(Self.copiesOfDeadPacks())"
        )
    }

    /// A 5 MB database in 64 KiB frames: verify checks the entry's SQLite header and size, and a restore from a
    /// pipe (standard input) gives the same content.
    @Test func aDatabaseLargerThanTheFrameSizeRoundTrips() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/big.db"
        try Self.tool(["make", db, "1200", "--blob", "4096"])
        let size = (try FileManager.default.attributesOfItem(atPath: db)[.size] as? Int) ?? 0
        #expect(size > 5_000_000, "\(size) bytes")
        try Self.pack(dir + "/a.sbk", ["--sqlite", "big=" + db, "--frame-size", "64K"])
        let verified = try E.sb(["verify", dir + "/a.sbk"])
        #expect(
            verified.status == 0
                && verified.stdout.contains("sqlite big: ok, SQLite database, \(size) bytes as recorded"),
            "\(verified.all)"
        )
        let restored = try E.sb(["restore", "-", "--target", "big=" + dir + "/restored/big.db"], stdin: dir + "/a.sbk")
        #expect(restored.status == 0, "\(restored.all)")
        #expect(try Self.state(dir + "/restored/big.db") == (try Self.state(db)))
    }

    // MARK: restore

    /// The target is in WAL mode and its -wal holds rows that were never checkpointed. After the restore the
    /// target holds exactly the archived content (a stale -wal beside it would have been replayed into it), and
    /// with --keep-replaced the old database is kept with its -wal: it still holds the uncheckpointed rows.
    @Test func aWALTargetWithUncheckpointedDataIsReplacedExactly() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.tool(["make", dir + "/src.db", "40", "--wal"])
        let archived = try Self.state(dir + "/src.db")
        try Self.pack(dir + "/a.sbk", ["--sqlite", "app=" + dir + "/src.db"])
        for keep in [false, true] {
            let live = dir + "/live-\(keep)/app.db"
            try FileManager.default.createDirectory(atPath: dir + "/live-\(keep)", withIntermediateDirectories: true)
            try Self.tool(["make", live, "5", "--wal"])
            try Self.tool(["wal", live, "3"])
            #expect(E.exists(live + "-wal"))
            let old = try Self.state(live)
            #expect(old.contains("notes 8 "), "the -wal holds 3 more notes: \(old)")
            let dry = try E.sb(["restore", dir + "/a.sbk", "--target", "app=" + live, "--replace", "--dry-run"])
            #expect(
                dry.status == 0 && dry.stdout.contains("app.db-wal") && dry.stdout.contains("move aside"),
                "\(dry.all)"
            )
            #expect(try Self.state(live) == old && E.exists(live + "-wal"), "the dry run changed nothing")
            let r = try E.sb(
                ["restore", dir + "/a.sbk", "--target", "app=" + live, "--replace"] + (keep ? ["--keep-replaced"] : [])
            )
            #expect(r.status == 0, "\(r.all)")
            #expect(
                Self.sideFiles(live).isEmpty,
                "the old side files stay beside the new database: \(Self.sideFiles(live))"
            )
            #expect(try Self.state(live) == archived)
            let kept = try FileManager.default.contentsOfDirectory(atPath: dir + "/live-\(keep)").filter {
                $0.contains(".sbk-replaced-")
            }.sorted()
            if keep {
                #expect(kept.count == 2 && kept[1].hasSuffix("-wal") || kept.count == 3, "\(kept)")
                #expect(r.stdout.contains("kept as"), "\(r.stdout)")
                #expect(
                    try Self.state(dir + "/live-\(keep)/" + kept[0]) == old,
                    "the kept database has its uncheckpointed rows"
                )
            } else {
                #expect(kept.isEmpty, "\(kept)")
            }
            #expect(Self.stagingLeftovers(dir).isEmpty)
        }
    }

    /// A process in a write transaction on the target (rollback journal), or holding a WAL database open:
    /// refused with 11 by the dry run and the real run, nothing changed; --ignore-locks replaces it anyway.
    @Test func aLockedTargetIsRefusedUnlessToldOtherwise() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.tool(["make", dir + "/src.db", "10"])
        try Self.pack(dir + "/a.sbk", ["--sqlite", "app=" + dir + "/src.db"])
        for (mode, wal) in [("write", false), ("read", true)] {
            let live = dir + "/live-\(mode)/app.db"
            try FileManager.default.createDirectory(atPath: dir + "/live-\(mode)", withIntermediateDirectories: true)
            try Self.tool(["make", live, "2"] + (wal ? ["--wal"] : []))
            let holder = try Helper(["hold", live, mode])
            #expect(holder.line() == "holding")
            let old = try Self.state(live)
            let args = ["restore", dir + "/a.sbk", "--target", "app=" + live, "--replace"]
            let dry = try E.sb(args + ["--dry-run"])
            let real = try E.sb(args)
            for r in [dry, real] {
                #expect(
                    r.status == 11 && r.all.contains("is in use: process \(holder.process.processIdentifier)")
                        && r.all.contains("--ignore-locks"),
                    "\(mode): \(r.all)"
                )
            }
            #expect(real.stderr.contains(mode == "write" ? "holds a write lock" : "has it open"), "\(real.stderr)")
            #expect(try Self.state(live) == old)
            let forced = try E.sb(args + ["--ignore-locks"])
            #expect(forced.status == 0, "\(forced.all)")
            _ = holder.finish()
            #expect(try Self.state(live) == (try Self.state(dir + "/src.db")))
        }
        #expect(Self.stagingLeftovers(dir).isEmpty)
    }

    /// A plan with an SQLite and a docs component: a `checks:` SQL that fails on the staged copy stops the restore
    /// before anything is put in place (exit 13); a commit that fails (an injected EIO at the SQLite swap) rolls
    /// the folder already swapped back, and the database keeps its -wal. A passing check restores both, into the
    /// plan's `restore.path`.
    @Test func aFailingCheckOrCommitRollsBack() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.tool(["make", dir + "/src/app.db", "12", "--wal"])
        try E.write(dir + "/src/kb/a.md", "new a")
        func plan(_ expect: Int) throws -> String {
            let path = dir + "/plan-\(expect).yaml"
            try E.write(
                path,
                """
                components:
                  - name: app
                    kind: sqlite
                    path: src/app.db
                    restore: {path: live/app.db}
                    checks:
                      - sql: select count(*) from notes where title like 'note %'
                        expect: \(expect)
                  - name: kb
                    kind: docs
                    path: src/kb
                    restore: {path: live/kb}
                """
            )
            return path
        }
        let packed = try E.sb(["pack", dir + "/a.sbk", "--plan", try plan(12), "--insecure-test-kdf", "--quiet"])
        #expect(packed.status == 0, "\(packed.all)")
        func reset() throws {
            try? FileManager.default.removeItem(atPath: dir + "/live")
            try FileManager.default.createDirectory(atPath: dir + "/live", withIntermediateDirectories: true)
            try Self.tool(["make", dir + "/live/app.db", "4", "--wal"])
            try Self.tool(["wal", dir + "/live/app.db", "2"])
            try E.write(dir + "/live/kb/a.md", "old a")
        }
        try reset()
        let old = try Self.state(dir + "/live/app.db")
        let failed = try E.sb(["restore", dir + "/a.sbk", "--plan", try plan(13), "--replace"])
        #expect(
            failed.status == 13 && failed.stderr.contains("returned 12, expected 13")
                && failed.stderr.contains("nothing was changed"),
            "\(failed.all)"
        )
        #expect(
            try Self.state(dir + "/live/app.db") == old && E.read(dir + "/live/kb/a.md") == "old a"
                && E.exists(dir + "/live/app.db-wal")
        )
        #expect(Self.stagingLeftovers(dir).isEmpty, "\(Self.stagingLeftovers(dir))")

        let trace = try E.sb(
            ["restore", dir + "/a.sbk", "--plan", try plan(12), "--replace"],
            env: ["SEALBAK_FAULT": "restore:100000:fail", "SEALBAK_FAULT_TRACE": "1"]
        )
        #expect(trace.status == 0, "\(trace.all)")
        let steps = trace.stderr.split(separator: "\n").filter { $0.contains("fault point restore #") }
        let swap = steps.firstIndex { $0.hasSuffix("swap " + dir + "/live/app.db") }
        #expect(
            swap != nil && steps.prefix(swap ?? 0).contains { $0.hasSuffix("swap " + dir + "/live/kb") },
            "kb is swapped before app: \(steps)"
        )
        try reset()
        let r = try E.sb(
            ["restore", dir + "/a.sbk", "--plan", try plan(12), "--replace"],
            env: ["SEALBAK_FAULT": "restore:\((swap ?? 0) + 1):fail"]
        )
        #expect(
            r.status == 8 && r.stderr.contains("app could not be put in place") && r.stderr.contains("rolled back kb"),
            "\(r.all)"
        )
        #expect(
            try Self.state(dir + "/live/app.db") == old && E.read(dir + "/live/kb/a.md") == "old a"
                && E.exists(dir + "/live/app.db-wal")
        )
        #expect(Self.stagingLeftovers(dir).isEmpty, "\(Self.stagingLeftovers(dir))")

        let ok = try E.sb(["restore", dir + "/a.sbk", "--plan", try plan(12), "--replace"])
        #expect(ok.status == 0 && ok.stderr.contains("app: check") && ok.stderr.contains("passed"), "\(ok.all)")
        #expect(
            try Self.state(dir + "/live/app.db") == (try Self.state(dir + "/src/app.db"))
                && E.read(dir + "/live/kb/a.md") == "new a"
        )
    }

    /// Kills the restore (SIGKILL) of an SQLite database in WAL mode (with an uncheckpointed -wal) and a docs
    /// folder at every step of its commit and finalize, with and without --keep-replaced; the next run (a dry run,
    /// started in another directory) recovers. After it both targets are entirely old (the database with its
    /// -wal rows) or entirely new, no side file of the old database is left beside the new one, and no staging
    /// folder is left.
    @Test(arguments: [false, true])
    func aKilledRestoreIsOldOrNewAfterTheNextRun(keep: Bool) throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.tool(["make", dir + "/src/app.db", "30", "--wal"])
        try E.write(dir + "/src/kb/a.md", "new a")
        try E.write(dir + "/src/kb/sub/b.md", "new b")
        try Self.pack(dir + "/a.sbk", ["--sqlite", "app=" + dir + "/src/app.db", "--docs", "kb=" + dir + "/src/kb"])
        let db = dir + "/live/app.db"
        let kb = dir + "/live/kb"
        func reset() throws {
            try? FileManager.default.removeItem(atPath: dir + "/live")
            try FileManager.default.createDirectory(atPath: dir + "/live", withIntermediateDirectories: true)
            try Self.tool(["make", db, "4", "--wal"])
            try Self.tool(["wal", db, "2"])
            try E.write(kb + "/a.md", "old a")
        }
        func state() throws -> String {
            try Self.state(db) + "\n"
                + (try CLITests.tree(kb)).keys.sorted().map { "\($0)=\(E.read(kb + "/" + $0) ?? "")" }.joined(
                    separator: ","
                )
        }
        func kept() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/live")) ?? []).filter {
                $0.contains(".sbk-replaced-")
            }
        }
        let args =
            ["restore", dir + "/a.sbk", "--target", "app=" + db, "--target", "kb=" + kb, "--replace"]
            + (keep ? ["--keep-replaced"] : [])
        try reset()
        let old = try state()
        #expect(try E.sb(args).status == 0)
        let new = try state()
        #expect(new != old)
        var outcomes: [String: Int] = [:]
        var n = 1
        while n < 100 {
            try reset()
            let r = try E.sb(args, env: ["SEALBAK_FAULT": "restore:\(n):kill"])
            if !r.signaled {
                let end = try state()
                #expect(r.status == 0 && end == new, "\(r.all)")
                break
            }
            let leftovers = Self.stagingLeftovers(dir)
            let next = try E.sb(
                ["restore", dir + "/a.sbk", "--target", "app=" + db, "--target", "kb=" + kb, "--replace", "--dry-run"],
                cwd: "/"
            )
            #expect(next.status == 0, "kill at step \(n): \(next.all)")
            if !leftovers.isEmpty {
                #expect(next.all.contains("killed"), "kill at step \(n): \(leftovers) not named: \(next.all)")
            }
            let s = try state()
            let outcome = s == old ? "old" : s == new ? "new" : "MIXED"
            outcomes[outcome, default: 0] += 1
            #expect(outcome != "MIXED", "kill at step \(n) (keep-replaced \(keep)): \(s)")
            if outcome == "new" {
                #expect(Self.sideFiles(db).isEmpty, "kill at step \(n): \(Self.sideFiles(db)) beside the new database")
            }
            if outcome == "old" { #expect(E.exists(db + "-wal"), "kill at step \(n): the old database lost its -wal") }
            #expect(Self.stagingLeftovers(dir).isEmpty, "kill at step \(n): \(Self.stagingLeftovers(dir)) left")
            if keep && outcome == "new" {
                #expect(
                    kept().contains { $0.hasPrefix("app.db.sbk-replaced-") && $0.hasSuffix("-wal") }
                        && kept().contains { $0.hasPrefix("kb.sbk-replaced-") },
                    "kill at step \(n): the replaced database (with its -wal) and folder are kept: \(kept())"
                )
            } else if outcome == "old" || !keep {
                #expect(kept().isEmpty, "kill at step \(n): \(kept())")
            }
            n += 1
        }
        print(
            "sqlite kill test (keep-replaced \(keep)): \(n - 1) kill points; outcomes old \(outcomes["old"] ?? 0), "
                + "new \(outcomes["new"] ?? 0), mixed \(outcomes["MIXED"] ?? 0)"
        )
        #expect(n > 8 && n < 100)
        #expect((outcomes["old"] ?? 0) > 0 && (outcomes["new"] ?? 0) > 0)
    }
}
