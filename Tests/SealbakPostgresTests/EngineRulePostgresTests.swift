import Foundation
import SealbakTestSupport
import Testing

/// The engine rules (issue 11) where PostgreSQL is the component: a real pg_dump failing in the middle of the dump
/// (rule 1), the dry run refusing what the real run refuses (rule 3), and --terminate-connections.
@Suite(
    .enabled(
        if: Server.vector != nil || Server.required,
        "no PostgreSQL test servers (run scripts/test, which starts them)"
    )
)
struct EngineRulePostgresTests {
    var s: Server {
        get throws {
            guard let v = Server.vector else {
                throw TestFailure(
                    "SEALBAK_REQUIRE_PG=1 but SEALBAK_TEST_PG_URL is not set: scripts/pg-servers did not start"
                )
            }
            return v
        }
    }

    /// `database` on `s` as `role` with `password`.
    func url(_ s: Server, _ database: String, role: String, password: String) -> String {
        var c = s.url
        c.user = role
        c.password = password
        c.path = "/" + database
        return c.string!
    }

    /// A real pg_dump that fails in the middle of the dump: the role may read every table (sealbak's probe checks
    /// SELECT) and counts rows through row-level security, but pg_dump (row_security off) stops at the guarded
    /// table with an error, after the TOC and the first table's data went out. Without allow-missing the pack
    /// fails naming the component (exit 12, no archive); with it the component is recorded FAILED with its partial
    /// bytes: pack and verify exit 15, restore --only refuses it (exit 9, also in the dry run), restoring the rest
    /// does not need a target for it and never creates the database.
    @Test func rule1APgDumpFailingMidDumpIsRecordedFailedAndNeverRestored() throws {
        let s = try s
        let src = Server.name("midfail")
        let dst = Server.name("midfail_dst")
        let role = Server.name("rls_reader")
        let pw = "rls-pw-\(UUID().uuidString.prefix(8))"
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql(
                "postgres",
                "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst); DROP ROLE IF EXISTS \(role)"
            )
        }
        try s.psql("postgres", "CREATE DATABASE \(src); CREATE ROLE \(role) LOGIN PASSWORD '\(pw)'")
        try s.psql(
            src,
            """
            CREATE TABLE a_big (i int, pad text);
            INSERT INTO a_big SELECT i, repeat('x', 200) FROM generate_series(1, 20000) i;
            CREATE TABLE z_guarded (i int);
            INSERT INTO z_guarded VALUES (1), (2);
            ALTER TABLE z_guarded ENABLE ROW LEVEL SECURITY;
            GRANT SELECT ON ALL TABLES IN SCHEMA public TO \(role);
            """
        )
        try Data("notes".utf8).write(to: URL(fileURLWithPath: dir + "/notes.md"))
        try FileManager.default.createDirectory(atPath: dir + "/kb", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: dir + "/notes.md", toPath: dir + "/kb/notes.md")
        let source = url(s, src, role: role, password: pw)
        let archive = dir + "/a.sbk"
        let args = [
            "pack", archive, "--docs", dir + "/kb", "--postgres", "main=" + source, "--pg-bin", s.bin,
            "--insecure-test-kdf",
        ]

        let failed = try Run.sealbak(args, secrets: [pw])
        #expect(
            failed.status == 12 && failed.stderr.contains("postgres component main failed while it was captured")
                && failed.stderr.contains("z_guarded")
                && failed.stderr.contains("The archive was not written"),
            "\(failed.stderr)"
        )
        #expect(!FileManager.default.fileExists(atPath: archive))

        let packed = try Run.sealbak(args + ["--allow-missing", "main"], secrets: [pw])
        #expect(
            packed.status == 15 && packed.stderr.contains("main FAILED while it was captured")
                && packed.stderr.contains("INCOMPLETE"),
            "\(packed.stderr)"
        )
        let listed = try Run.sealbak(["list", archive], secrets: [pw])
        #expect(
            listed.stdout.contains("postgres main: FAILED") && listed.stdout.contains("row-level security"),
            "\(listed.stdout)"
        )
        #expect(
            !listed.stdout.contains("not written"),
            "the recorded reason must not say the archive was not written: \(listed.stdout)"
        )
        // Partial bytes were stored (the dump failed mid-way, not before it began).
        let partial =
            listed.stdout.components(separatedBy: "FAILED while it was packed (").dropFirst().first?.split(
                separator: " "
            ).first.flatMap { Int($0) } ?? 0
        #expect(partial > 100_000, "\(listed.stdout)")
        let verified = try Run.sealbak(["verify", archive])
        #expect(
            verified.status == 15 && (verified.stdout + verified.stderr).contains("main FAILED"),
            "\(verified.stdout)\(verified.stderr)"
        )

        let only = try Run.sealbak(
            ["restore", archive, "--only", "main", "--postgres-target", s.url(dst), "--pg-bin", s.bin],
            secrets: [s.password]
        )
        #expect(only.status == 9 && only.stderr.contains("FAILED while it was packed"), "\(only.stderr)")
        let onlyDry = try Run.sealbak(
            ["restore", archive, "--only", "main", "--postgres-target", s.url(dst), "--pg-bin", s.bin, "--dry-run"],
            secrets: [s.password]
        )
        #expect(onlyDry.status == 9, "\(onlyDry.stderr)")
        // The rest restores without a target for the failed component, and says why it is left out.
        let rest = try Run.sealbak(["restore", archive, "--to", dir + "/out"], secrets: [s.password])
        #expect(rest.status == 0 && rest.stderr.contains("note: main is not restored"), "\(rest.stderr)")
        #expect(FileManager.default.contents(atPath: dir + "/out/kb/notes.md") == Data("notes".utf8))
        // Even with a target given, the partial dump is never restored.
        let withTarget = try Run.sealbak(
            ["restore", archive, "--to", dir + "/out2", "--postgres-target", "main=" + s.url(dst), "--pg-bin", s.bin],
            secrets: [s.password]
        )
        #expect(
            withTarget.status == 0 && withTarget.stderr.contains("note: main is not restored"),
            "\(withTarget.stderr)"
        )
        #expect(try !s.databases().contains { $0.hasPrefix(dst) })
    }

    /// A role that may create databases but not the (untrusted) `vector` extension the dump needs: the real run
    /// refuses with exit 11 before anything changes, and the dry run gives the same exit code.
    @Test func rule3DryRunRefusesAnExtensionTheRoleCannotCreate() throws {
        let s = try s
        let trusted = try s.psql(
            "postgres",
            "SELECT coalesce(bool_or(trusted), false) FROM pg_available_extension_versions WHERE name = 'vector'"
        )
        try #require(
            trusted == "f",
            "pgvector is marked trusted on this server; this test needs an untrusted extension"
        )
        let src = Server.name("ext_src")
        let dst = Server.name("ext_dst")
        let role = Server.name("creator")
        let pw = "creator-pw-\(UUID().uuidString.prefix(8))"
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql(
                "postgres",
                "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst); DROP ROLE IF EXISTS \(role)"
            )
        }
        try createAppDatabase(s, src, rows: 20)
        try s.psql("postgres", "CREATE ROLE \(role) LOGIN CREATEDB PASSWORD '\(pw)'")
        #expect(
            try Run.sealbak([
                "pack", dir + "/a.sbk", "--postgres", s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf", "--quiet",
            ]).status == 0
        )
        let target = url(s, dst, role: role, password: pw)
        let dry = try Run.sealbak(
            ["restore", dir + "/a.sbk", "--postgres-target", target, "--pg-bin", s.bin, "--dry-run"],
            secrets: [pw]
        )
        let real = try Run.sealbak(
            ["restore", dir + "/a.sbk", "--postgres-target", target, "--pg-bin", s.bin],
            secrets: [pw]
        )
        #expect(
            real.status == 11 && real.stderr.contains("vector") && real.stderr.contains("nothing was changed"),
            "\(real.stderr)"
        )
        #expect(
            dry.status == real.status && dry.stdout.contains("REFUSED") && dry.stderr.contains("vector"),
            "\(dry.stdout)\(dry.stderr)"
        )
        #expect(try !s.databases().contains { $0.hasPrefix(dst) })
        // As a superuser both go through (the dry run said why, not a general failure).
        let ok = try Run.sealbak(
            ["restore", dir + "/a.sbk", "--postgres-target", s.url(dst), "--pg-bin", s.bin, "--dry-run"],
            secrets: [s.password]
        )
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    /// An open session on the target database: restore --replace (and its dry run) refuses with exit 11 and
    /// changes nothing; with --terminate-connections the session is ended just before the swap and the restore
    /// succeeds.
    @Test func terminateConnectionsEndsSessionsOnTheTarget() throws {
        let s = try s
        let src = Server.name("term_src")
        let dst = Server.name("term_dst")
        let dir = try Proc.tempDir()
        var session: Process?
        defer {
            if let session, session.isRunning {
                session.terminate()
                session.waitUntilExit()
            }
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst)")
        }
        try s.psql("postgres", "CREATE DATABASE \(src); CREATE DATABASE \(dst)")
        try s.psql(src, "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 100)")
        try s.psql(dst, "CREATE TABLE t (i int); INSERT INTO t VALUES (-1)")
        let archive = dir + "/a.sbk"
        #expect(
            try Run.sealbak([
                "pack", archive, "--postgres", "main=" + s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf",
                "--quiet",
            ]).status == 0
        )

        // A client holding a session on the target (psql waiting on its standard input).
        let p = Process()
        p.executableURL = URL(fileURLWithPath: s.bin + "/psql")
        p.arguments = ["-X", "-q", "-d", s.url(dst)]
        let input = Pipe()
        p.standardInput = input
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        session = p
        input.fileHandleForWriting.write(Data("SET application_name = 'held_session';\n".utf8))
        var seen = false
        for _ in 0..<300 where !seen {
            seen =
                try s.psql(
                    "postgres",
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(dst)' AND application_name = "
                        + "'held_session'"
                ) == "1"
            if !seen { usleep(50_000) }
        }
        try #require(seen, "the session on \(dst) did not appear")

        let base = ["restore", archive, "--postgres-target", s.url(dst), "--pg-bin", s.bin, "--replace"]
        let dry = try Run.sealbak(base + ["--dry-run"], secrets: [s.password])
        let refused = try Run.sealbak(base, secrets: [s.password])
        #expect(
            refused.status == 11 && refused.stderr.contains("open session")
                && refused.stderr.contains("--terminate-connections"),
            "\(refused.stderr)"
        )
        #expect(dry.status == 11 && dry.stderr.contains("open session"), "\(dry.stdout)\(dry.stderr)")
        #expect(try s.psql(dst, "SELECT string_agg(i::text, ',') FROM t") == "-1")
        #expect(p.isRunning)

        let dryOK = try Run.sealbak(base + ["--terminate-connections", "--dry-run"], secrets: [s.password])
        #expect(dryOK.status == 0 && dryOK.stdout.contains("will be ended"), "\(dryOK.stdout)\(dryOK.stderr)")
        let done = try Run.sealbak(base + ["--terminate-connections"], secrets: [s.password])
        #expect(done.status == 0, "\(done.stderr)")
        #expect(try s.psql(dst, "SELECT count(*) FROM t") == "100")
        #expect(
            try s.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'held_session'")
                == "0"
        )
        #expect(try s.databases().filter { $0.hasPrefix(dst + "_sbk_") }.isEmpty)
        try? input.fileHandleForWriting.close()
        p.waitUntilExit()
    }
}
