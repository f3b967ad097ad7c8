import Foundation
import SealbakArchive
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakPostgres
import SealbakTestSupport
import Testing

/// Real servers from scripts/pg-servers: PostgreSQL 18 with pgvector (SEALBAK_TEST_PG_URL, client tools in
/// SEALBAK_TEST_PG_BIN) and Debian's PostgreSQL 15 (SEALBAK_TEST_PG15_URL). Without them the suite is skipped,
/// unless SEALBAK_REQUIRE_PG=1 (scripts/test sets it), which turns a missing server into a failure.
struct Server {
    let url: URLComponents
    let bin: String
    let password: String

    init?(_ urlVar: String, _ binVar: String) {
        let env = ProcessInfo.processInfo.environment
        guard let u = env[urlVar], let c = URLComponents(string: u), let b = env[binVar] else { return nil }
        url = c
        bin = b
        password = c.password ?? ""
    }

    static let vector = Server("SEALBAK_TEST_PG_URL", "SEALBAK_TEST_PG_BIN")
    static let pg15 = Server("SEALBAK_TEST_PG15_URL", "SEALBAK_TEST_PG15_BIN")
    static let required = ProcessInfo.processInfo.environment["SEALBAK_REQUIRE_PG"] == "1"

    /// URL of `database` on this server, with the password.
    func url(_ database: String, password: String? = nil) -> String {
        var c = url
        c.path = "/" + database
        if let password { c.password = password }
        return c.string!
    }

    /// Same without the password (for tests of the other credential sources).
    func urlWithoutPassword(_ database: String) -> String {
        var c = url
        c.path = "/" + database
        c.password = nil
        return c.string!
    }

    /// Runs SQL with psql; returns its output (unaligned, tuples only).
    @discardableResult
    func psql(_ database: String, _ sql: String) throws -> String {
        let r = try Proc.run(
            bin + "/psql",
            ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url(database), "-f", "-"],
            stdin: Data(sql.utf8)
        )
        if r.status != 0 { throw TestFailure("psql on \(database) failed: \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func databases() throws -> [String] {
        try psql("postgres", "SELECT datname FROM pg_database ORDER BY 1").split(separator: "\n").map(String.init)
    }

    /// A fresh, unique database name.
    static func name(_ prefix: String) -> String {
        prefix + "_" + UUID().uuidString.prefix(8).lowercased()
    }
}

enum Run {
    static let archivePassword = "archive-pw-\(UUID().uuidString)"

    /// Runs sealbak with the archive password; checks that no secret given reaches its output.
    @discardableResult
    static func sealbak(_ args: [String], env: [String: String] = [:], secrets: [String] = []) throws -> Proc.Result {
        try Proc.sealbak(
            args,
            env: ["SEALBAK_PASSWORD": archivePassword].merging(env) { $1 },
            secrets: secrets + [archivePassword]
        )
    }
}

/// Per-table content digests (every row, sorted), large-object digests and sequence positions.
func contentDigest(_ s: Server, _ db: String) throws -> [String: String] {
    var out: [String: String] = [:]
    let tables = try s.psql(
        db,
        """
        SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%'
        ORDER BY 1
        """
    ).split(separator: "\n").map(String.init)
    for t in tables {
        out[t] = try s.psql(
            db,
            "SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '') FROM \(t) x"
        )
    }
    out["large objects"] = try s.psql(
        db,
        "SELECT coalesce(string_agg(oid::text || '=' || md5(lo_get(oid)), ',' ORDER BY oid), '') FROM "
            + "pg_largeobject_metadata"
    )
    out["sequences"] = try s.psql(
        db,
        "SELECT coalesce(string_agg(schemaname || '.' || sequencename || '=' || coalesce(last_value, 0), ',' ORDER "
            + "BY 1), '') FROM pg_sequences"
    )
    out["views"] = try s.psql(
        db,
        "SELECT coalesce(string_agg(schemaname || '.' || viewname, ',' ORDER BY 1), '') FROM pg_views WHERE "
            + "schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    out["indexes"] = try s.psql(
        db,
        "SELECT coalesce(string_agg(indexdef, E'\\n' ORDER BY indexdef), '') FROM pg_indexes WHERE schemaname NOT IN "
            + "('pg_catalog')"
    )
    return out
}

/// An AI application's database: pgvector embeddings with an HNSW index, several schemas, large objects, a
/// sequence, a view, a function, an empty table and a table whose name needs quoting.
func createAppDatabase(_ s: Server, _ db: String, rows: Int = 1500, vector: Bool = true) throws {
    try s.psql("postgres", "CREATE DATABASE \(db)")
    let embedding = vector ? ", embedding vector(768)" : ""
    let embeddingValue =
        vector ? ", (SELECT array_agg(sin(i * j + 0.5)::real) FROM generate_series(1, 768) j)::vector" : ""
    try s.psql(
        db,
        """
        \(vector ? "CREATE EXTENSION vector;" : "")
        CREATE SCHEMA app; CREATE SCHEMA audit;
        CREATE TABLE app.documents (id bigserial PRIMARY KEY, title text NOT NULL, body text, meta jsonb,
          raw bytea\(embedding));
        INSERT INTO app.documents (title, body, meta, raw\(vector ? ", embedding" : ""))
          SELECT 'doc ' || i, repeat('lorem ipsum ' || i, 20),
                 jsonb_build_object('i', i, 'tags', jsonb_build_array('a', i % 7)),
                 decode(md5(i::text), 'hex')\(embeddingValue)
          FROM generate_series(1, \(rows)) i;
        \(vector ? "CREATE INDEX documents_embedding ON app.documents USING hnsw (embedding vector_l2_ops);" : "")
        CREATE TABLE audit.log (at timestamptz DEFAULT now(), what text);
        CREATE TABLE public."Mixed Case ""quoted""\" (k text PRIMARY KEY, v int);
        INSERT INTO public."Mixed Case ""quoted""\" SELECT 'k' || i, i FROM generate_series(1, 37) i;
        CREATE VIEW app.recent AS SELECT id, title FROM app.documents WHERE id > 10;
        CREATE FUNCTION app.title_of(bigint) RETURNS text LANGUAGE sql
          AS 'SELECT title FROM app.documents WHERE id = $1';
        SELECT lo_from_bytea(0, convert_to(repeat('large object one ', 1000), 'UTF8'));
        SELECT lo_from_bytea(0, '\\x00010203ff'::bytea);
        """
    )
}

@Suite(
    .enabled(
        if: Server.vector != nil || Server.required,
        "no PostgreSQL test servers (run scripts/test, which starts them)"
    )
)
struct PostgresTests {
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

    @Test func packAndRestoreAVectorDatabaseWithIdenticalContent() throws {
        let s = try s
        let src = Server.name("src")
        let dst = Server.name("dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst)")
        }
        try createAppDatabase(s, src)
        let archive = dir + "/app.sbk"
        let packed = try Run.sealbak(
            ["pack", archive, "--postgres", s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf"],
            secrets: [s.password]
        )
        #expect(packed.status == 0, "\(packed.stderr)")

        // The manifest records versions, extensions, vector columns and counts, never the password.
        let listed = try Run.sealbak(["list", archive, "--json"], secrets: [s.password])
        #expect(listed.status == 0)
        let doc = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as! [String: Any]
        let entry = (doc["entries"] as! [[String: Any]])[0]
        // docs/json.md: counts are numbers, the facts a nested object.
        let meta = entry["metadata"] as! [String: Any]
        #expect(entry["name"] as? String == "postgres/\(src).pgdump")
        #expect(meta["component"] as? String == "postgres" && meta["component.status"] as? String == "ok")
        #expect((meta["postgres.server-version"] as? String)?.hasPrefix("18") == true)
        #expect(meta["postgres.rows"] as? Int == 1500 + 37)
        #expect(meta["postgres.large-objects"] as? Int == 2)
        #expect((meta["postgres.extensions"] as? String)?.contains("vector 0.8") == true)
        #expect(meta["postgres.vector-columns"] as? String == "app.documents.embedding vector(768)")
        let factsObject = try #require(meta["postgres.facts"] as? [String: Any])
        let facts = try JSONDecoder().decode(
            DatabaseFacts.self,
            from: JSONSerialization.data(withJSONObject: factsObject)
        )
        #expect(facts.tables.map(\.display) == ["app.documents", "audit.log", "public.Mixed Case \"quoted\""])
        #expect(facts.tables.map(\.rows) == [1500, 0, 37])
        #expect(!listed.stdout.contains(s.password))
        let human = try Run.sealbak(["list", archive])
        #expect(human.stdout.contains("postgres \(src): ok, PostgreSQL 18"), "\(human.stdout)")

        // Dry run: says what would happen, changes nothing.
        let dry = try Run.sealbak(
            ["restore", archive, "--postgres-target", s.url(dst), "--pg-bin", s.bin, "--dry-run"],
            secrets: [s.password]
        )
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(
            dry.stdout.contains("app.documents: 1500 row(s)") && dry.stdout.contains("extension vector")
                && dry.stdout.contains("database will be created")
        )
        #expect(try !s.databases().contains(dst))

        let restored = try Run.sealbak(
            ["restore", archive, "--postgres-target", s.url(dst), "--pg-bin", s.bin],
            secrets: [s.password]
        )
        #expect(restored.status == 0, "\(restored.stderr)")
        // The table of checks and the summary on standard output.
        #expect(
            restored.stdout.contains("1537 rows and 2 large objects verified")
                && restored.stdout.contains("app.documents") && restored.stdout.contains("1500 rows")
                && !restored.stdout.contains("MISMATCH"),
            "\(restored.stdout)\(restored.stderr)"
        )
        #expect(try contentDigest(s, src) == contentDigest(s, dst))
        // Exact nearest neighbours give the same ids; the restored HNSW index exists, is used and finds the query's own
        // row.
        let exact =
            "SET enable_indexscan = off; SELECT string_agg(id::text, ',') FROM (SELECT id FROM app.documents ORDER "
            + "BY embedding <-> (SELECT embedding FROM app.documents WHERE id = 42) LIMIT 10) q"
        let before = try s.psql(src, exact)
        let after = try s.psql(dst, exact)
        #expect(before == after && before.hasPrefix("42,"))
        let viaIndex =
            "SET enable_seqscan = off; SET hnsw.ef_search = 200; SELECT id FROM app.documents ORDER BY embedding <-> "
            + "(SELECT embedding FROM app.documents WHERE id = 42) LIMIT 1"
        #expect(try s.psql(dst, viaIndex) == "42")
        #expect(
            try s.psql(
                dst,
                "EXPLAIN SELECT id FROM app.documents ORDER BY embedding <-> (SELECT embedding FROM app.documents "
                    + "WHERE id = 42) LIMIT 10"
            ).contains("documents_embedding")
        )
        #expect(try s.databases().filter { $0.hasPrefix(dst + "_sbk_") }.isEmpty)

        // A non-empty target is refused without --replace and left alone.
        try s.psql(dst, "INSERT INTO audit.log (what) VALUES ('local change')")
        let refused = try Run.sealbak(
            ["restore", archive, "--postgres-target", s.url(dst), "--pg-bin", s.bin],
            secrets: [s.password]
        )
        #expect(refused.status == 7 && refused.stderr.contains("not empty") && refused.stderr.contains("--replace"))
        #expect(try s.psql(dst, "SELECT count(*) FROM audit.log") == "1")
        // --replace swaps in the verified copy.
        let replaced = try Run.sealbak(
            ["restore", archive, "--postgres-target", s.url(dst), "--pg-bin", s.bin, "--replace"],
            secrets: [s.password]
        )
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(try s.psql(dst, "SELECT count(*) FROM audit.log") == "0")
        #expect(try contentDigest(s, src) == contentDigest(s, dst))
        #expect(try s.databases().filter { $0.hasPrefix(dst + "_sbk_") }.isEmpty)
    }

    @Test func countsAndDumpShareOneSnapshotWhileTheDatabaseIsWritten() throws {
        let s = try s
        let src = Server.name("busy")
        let dst = Server.name("busy_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst)")
        }
        try s.psql("postgres", "CREATE DATABASE \(src)")
        try s.psql(
            src,
            "CREATE TABLE events (id serial PRIMARY KEY, payload text); INSERT INTO events (payload) SELECT "
                + "repeat(md5(i::text), 30) FROM generate_series(1, 60000) i"
        )
        // A writer commits one row at a time from before the pack until after it: the test waits for it to have
        // written before packing, and stops it only once rows exist beyond what the archive counted.
        let count = { Int(try s.psql(src, "SELECT count(*) FROM events")) ?? -1 }
        let writer = try StatementStream(
            statement: "INSERT INTO events (payload) VALUES ('w');",
            client: s.bin + "/psql",
            ["-X", "-q", "-d", s.url(src)]
        )
        defer { writer.stop() }
        let before = try #require(try eventually { try count() > 60000 } ? count() : nil, "the writer never committed")
        let archive = dir + "/busy.sbk"
        let packed = try Run.sealbak(
            [
                "pack", archive, "--postgres", s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf", "--compression",
                "zlib", "--level", "9",
            ],
            secrets: [s.password]
        )
        #expect(packed.status == 0, "\(packed.stderr)")
        let meta = try componentMetadata(archive)
        let counted = meta["postgres.rows"] as? Int ?? -1
        #expect(try eventually { try count() > counted }, "the writer stopped before the pack ended")
        writer.stop()
        #expect(
            counted >= before,
            "the archive counted \(counted) rows, fewer than the \(before) committed before it started"
        )
        // The restore recounts and compares: it passes only if the counts describe exactly the dumped rows.
        let restored = try Run.sealbak(
            ["restore", archive, "--postgres-target", s.url(dst), "--pg-bin", s.bin],
            secrets: [s.password]
        )
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try s.psql(dst, "SELECT count(*) FROM events") == String(counted))
    }

    @Test func credentialsComeFromPgpassPGPASSWORDOrAFileAndAreNeverStored() throws {
        let s = try s
        let src = Server.name("cred")
        let dst = Server.name("cred_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst)")
        }
        try s.psql("postgres", "CREATE DATABASE \(src)")
        try s.psql(src, "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 10)")
        let bare = s.urlWithoutPassword(src)
        // No password anywhere: a clear authentication error, exit 11, no archive.
        let none = try Run.sealbak(
            ["pack", dir + "/none.sbk", "--postgres", bare, "--pg-bin", s.bin, "--insecure-test-kdf"],
            env: ["PGPASSWORD": "", "PGPASSFILE": dir + "/missing"],
            secrets: [s.password]
        )
        #expect(none.status == 11 && none.stderr.contains("password"), "\(none.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/none.sbk"))
        // A wrong password: same, and the wrong password is not echoed.
        let wrong = try Run.sealbak(
            [
                "pack", dir + "/wrong.sbk", "--postgres", s.url(src, password: "not-the-password-9731"), "--pg-bin",
                s.bin, "--insecure-test-kdf",
            ],
            secrets: [s.password, "not-the-password-9731"]
        )
        #expect(wrong.status == 11 && wrong.stderr.contains("password authentication failed"), "\(wrong.stderr)")
        // PGPASSWORD, a password file and ~/.pgpass (PGPASSFILE) each work, for libpq and for pg_dump.
        let viaEnv = try Run.sealbak(
            ["pack", dir + "/env.sbk", "--postgres", bare, "--pg-bin", s.bin, "--insecure-test-kdf"],
            env: ["PGPASSWORD": s.password],
            secrets: [s.password]
        )
        #expect(viaEnv.status == 0, "\(viaEnv.stderr)")
        try Data((s.password + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/pw"))
        let viaFile = try Run.sealbak(
            [
                "pack", dir + "/file.sbk", "--postgres", bare, "--postgres-password-file", dir + "/pw", "--pg-bin",
                s.bin, "--insecure-test-kdf",
            ],
            env: ["PGPASSWORD": ""],
            secrets: [s.password]
        )
        #expect(viaFile.status == 0, "\(viaFile.stderr)")
        try Data("127.0.0.1:\(s.url.port!):*:postgres:\(s.password)\n".utf8).write(
            to: URL(fileURLWithPath: dir + "/pgpass")
        )
        chmod(dir + "/pgpass", 0o600)
        let viaPgpass = try Run.sealbak(
            ["pack", dir + "/pgpass.sbk", "--postgres", bare, "--pg-bin", s.bin, "--insecure-test-kdf"],
            env: ["PGPASSWORD": "", "PGPASSFILE": dir + "/pgpass"],
            secrets: [s.password]
        )
        #expect(viaPgpass.status == 0, "\(viaPgpass.stderr)")
        let restored = try Run.sealbak(
            ["restore", dir + "/pgpass.sbk", "--postgres-target", s.urlWithoutPassword(dst), "--pg-bin", s.bin],
            env: ["PGPASSWORD": "", "PGPASSFILE": dir + "/pgpass"],
            secrets: [s.password]
        )
        #expect(restored.status == 0, "\(restored.stderr)")
        // The password is in no archive's manifest (names, metadata) nor in its bytes.
        for a in ["env", "file", "pgpass"] {
            let listed = try Run.sealbak(["list", dir + "/\(a).sbk", "--json"])
            #expect(
                listed.status == 0 && !listed.stdout.contains(s.password)
                    && listed.stdout.contains("postgres@127.0.0.1")
            )
            let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/\(a).sbk"))
            #expect(bytes.range(of: Data(s.password.utf8)) == nil)
        }
    }

    @Test func anUnreachableServerFailsThePackUnlessAllowedMissing() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("hello".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        let down = "postgresql://postgres@127.0.0.1:1/appdb"
        let failed = try Run.sealbak([
            "pack", dir + "/a.sbk", dir + "/notes.txt", "--postgres", down, "--insecure-test-kdf",
        ])
        #expect(
            failed.status == 11
                && failed.stderr.contains("cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1:1/appdb"),
            "\(failed.stderr)"
        )
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["notes.txt"])
        let skipped = try Run.sealbak([
            "pack", dir + "/a.sbk", dir + "/notes.txt", "--postgres", "main=" + down, "--allow-missing", "main",
            "--insecure-test-kdf",
        ])
        // The archive is written, but the pack says it is incomplete (exit 15), not a plain success.
        #expect(
            skipped.status == 15 && skipped.stderr.contains("main is skipped") && skipped.stderr.contains("INCOMPLETE"),
            "\(skipped.stderr)"
        )
        let meta = try componentMetadata(dir + "/a.sbk")
        #expect(
            meta["component.status"] as? String == "skipped"
                && (meta["component.reason"] as? String)?.contains("cannot connect") == true
        )
        let human = try Run.sealbak(["list", dir + "/a.sbk"])
        #expect(human.stdout.contains("postgres main: SKIPPED"), "\(human.stdout)")
        let restore = try Run.sealbak(["restore", dir + "/a.sbk", "--only", "main", "--postgres-target", down])
        #expect(restore.status == 9 && restore.stderr.contains("skipped when packing"))
        let badName = try Run.sealbak([
            "pack", dir + "/b.sbk", "--postgres", down, "--allow-missing", "nosuch", "--insecure-test-kdf",
        ])
        #expect(badName.status == 64 && badName.stderr.contains("nosuch"))
    }

    @Test func aPgDumpThatDiesMidwayLeavesNoArchive() throws {
        let s = try s
        let src = Server.name("killed")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src)")
        }
        try s.psql("postgres", "CREATE DATABASE \(src)")
        try s.psql(
            src,
            "CREATE TABLE t (i int, pad text); INSERT INTO t SELECT i, repeat('x', 200) FROM generate_series(1, "
                + "20000) i"
        )
        // A pg_dump that streams part of the real dump and is then killed with SIGKILL.
        let fake = dir + "/bin"
        try FileManager.default.createDirectory(atPath: fake, withIntermediateDirectories: true)
        try Data(
            """
            #!/bin/sh
            case "$1" in --version) exec "\(s.bin)/pg_dump" --version;; esac
            "\(s.bin)/pg_dump" "$@" | head -c 300000
            kill -9 $$
            """.utf8
        ).write(to: URL(fileURLWithPath: fake + "/pg_dump"))
        chmod(fake + "/pg_dump", 0o755)
        let r = try Run.sealbak(
            ["pack", dir + "/a.sbk", "--postgres", s.url(src), "--pg-bin", fake, "--insecure-test-kdf"],
            secrets: [s.password]
        )
        #expect(
            r.status == 12 && r.stderr.contains("pg_dump for \(src) failed") && r.stderr.contains("signal 9"),
            "\(r.stderr)"
        )
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["bin"])
        // A pg_dump that exits 1 with a message: the message is shown.
        try Data(
            """
            #!/bin/sh
            case "$1" in --version) exec "\(s.bin)/pg_dump" --version;; esac
            echo 'pg_dump: error: query failed: ERROR:  permission denied for table secret' >&2
            exit 1
            """.utf8
        ).write(to: URL(fileURLWithPath: fake + "/pg_dump"))
        let r2 = try Run.sealbak(
            ["pack", dir + "/a.sbk", "--postgres", s.url(src), "--pg-bin", fake, "--insecure-test-kdf"],
            secrets: [s.password]
        )
        #expect(r2.status == 12 && r2.stderr.contains("permission denied for table secret"), "\(r2.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["bin"])
    }

    @Test func aPgDumpOlderThanTheServerIsRefusedByName() throws {
        let s = try s
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Only Debian's pg_dump 15 is on the search path; the server is 18.
        let r = try Run.sealbak(
            ["pack", dir + "/a.sbk", "--postgres", s.url("postgres"), "--insecure-test-kdf"],
            env: ["SEALBAK_PG_BIN": ""],
            secrets: [s.password]
        )
        #expect(r.status == 11 && r.stderr.contains("pg_dump version 18 or newer is needed"), "\(r.stderr)")
    }

    @Test func aCorruptDumpMidRestoreLeavesTheTargetUntouched() throws {
        let s = try s
        let src = Server.name("torn")
        let dst = Server.name("torn_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst)")
        }
        try createAppDatabase(s, src, rows: 3000)
        let archive = dir + "/a.sbk"
        #expect(
            try Run.sealbak([
                "pack", archive, "--postgres", s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf", "--frame-size",
                "64K", "--compression", "none",
            ]).status == 0
        )
        // Flip one byte in the last quarter of the dump's frames: pg_restore has already received most of the data.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        let at = bytes.count * 3 / 4
        bytes[at] ^= 0x55
        try bytes.write(to: URL(fileURLWithPath: dir + "/bad.sbk"))
        // Into a new database: nothing is left behind.
        let r = try Run.sealbak(
            ["restore", dir + "/bad.sbk", "--postgres-target", s.url(dst), "--pg-bin", s.bin],
            secrets: [s.password]
        )
        #expect(r.status == 4, "\(r.stderr)")
        #expect(try !s.databases().contains(dst))
        #expect(try s.databases().filter { $0.hasPrefix(dst + "_sbk_") }.isEmpty)
        // Over an existing database with --replace: it keeps its content.
        #expect(try Run.sealbak(["restore", archive, "--postgres-target", s.url(dst), "--pg-bin", s.bin]).status == 0)
        try s.psql(dst, "INSERT INTO audit.log (what) VALUES ('precious')")
        let before = try contentDigest(s, dst)
        let r2 = try Run.sealbak(
            ["restore", dir + "/bad.sbk", "--postgres-target", s.url(dst), "--pg-bin", s.bin, "--replace"],
            secrets: [s.password]
        )
        #expect(r2.status == 4, "\(r2.stderr)")
        #expect(try contentDigest(s, dst) == before)
        #expect(try s.databases().filter { $0.hasPrefix(dst + "_sbk_") }.isEmpty)
    }

    @Test func anInterruptedRestoreDropsItsTemporaryDatabase() throws {
        let s = try s
        let src = Server.name("intr")
        let dst = Server.name("intr_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst)")
        }
        try s.psql("postgres", "CREATE DATABASE \(src)")
        try s.psql(
            src,
            "CREATE TABLE t (i int, pad text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 50000) i"
        )
        #expect(
            try Run.sealbak([
                "pack", dir + "/a.sbk", "--postgres", s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf",
            ]).status == 0
        )
        // A pg_restore that is slow to start, so that the signal arrives while the new database exists.
        let fake = dir + "/bin"
        try FileManager.default.createDirectory(atPath: fake, withIntermediateDirectories: true)
        try Data(
            """
            #!/bin/sh
            case "$1" in --version) exec "\(s.bin)/pg_restore" --version;; esac
            sleep 30
            exec "\(s.bin)/pg_restore" "$@"
            """.utf8
        ).write(to: URL(fileURLWithPath: fake + "/pg_restore"))
        chmod(fake + "/pg_restore", 0o755)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Proc.sealbakBinary)
        p.arguments = ["restore", dir + "/a.sbk", "--postgres-target", s.url(dst), "--pg-bin", fake]
        p.environment = ProcessInfo.processInfo.environment.merging(["SEALBAK_PASSWORD": Run.archivePassword]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        var sawTemp = false
        for _ in 0..<100 where !sawTemp {
            Thread.sleep(forTimeInterval: 0.1)
            sawTemp = try s.databases().contains { $0.hasPrefix(dst + "_sbk_new_") }
        }
        #expect(sawTemp)
        p.interrupt()
        p.waitUntilExit()
        #expect(p.terminationStatus == 130)
        #expect(try s.databases().filter { $0.hasPrefix(dst) }.isEmpty)
    }

    @Test func missingRightsAreReportedBeforeAnythingIsWritten() throws {
        let s = try s
        let db = Server.name("rights")
        let role = Server.name("limited")
        let dst = Server.name("rights_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql(
                "postgres",
                "DROP DATABASE IF EXISTS \(db); DROP DATABASE IF EXISTS \(dst); DROP ROLE IF EXISTS \(role)"
            )
        }
        try s.psql("postgres", "CREATE DATABASE \(db); CREATE ROLE \(role) LOGIN PASSWORD 'limited-pw-1234'")
        try s.psql(db, "CREATE TABLE open (i int); CREATE TABLE secret (i int); GRANT SELECT ON open TO \(role)")
        var c = s.url
        c.user = role
        c.password = "limited-pw-1234"
        c.path = "/" + db
        let r = try Run.sealbak(
            ["pack", dir + "/a.sbk", "--postgres", c.string!, "--pg-bin", s.bin, "--insecure-test-kdf"],
            secrets: ["limited-pw-1234"]
        )
        #expect(r.status == 11 && r.stderr.contains("cannot read 1 table(s): public.secret"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        // Restoring needs CREATEDB: refused before anything changes.
        try s.psql(db, "GRANT SELECT ON secret TO \(role)")
        #expect(
            try Run.sealbak(["pack", dir + "/a.sbk", "--postgres", c.string!, "--pg-bin", s.bin, "--insecure-test-kdf"])
                .status == 0
        )
        c.path = "/" + dst
        let restore = try Run.sealbak(
            ["restore", dir + "/a.sbk", "--postgres-target", c.string!, "--pg-bin", s.bin],
            secrets: ["limited-pw-1234"]
        )
        #expect(restore.status == 11 && restore.stderr.contains("cannot create databases"), "\(restore.stderr)")
        #expect(try !s.databases().contains { $0.hasPrefix(dst) })
    }

    @Test func severalDatabasesAreRestoredAllOrNothing() throws {
        let s = try s
        let a = Server.name("multi_a")
        let b = Server.name("multi_b")
        let ta = Server.name("multi_ta")
        let tb = Server.name("multi_tb")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", [a, b, ta, tb].map { "DROP DATABASE IF EXISTS \($0);" }.joined())
        }
        for db in [a, b] {
            try s.psql("postgres", "CREATE DATABASE \(db)")
            try s.psql(db, "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 20)")
        }
        let archive = dir + "/two.sbk"
        let packed = try Run.sealbak([
            "pack", archive, "--postgres", "first=" + s.url(a), "--postgres", "second=" + s.url(b), "--pg-bin", s.bin,
            "--insecure-test-kdf",
        ])
        #expect(packed.status == 0, "\(packed.stderr)")
        // A bare URL is ambiguous with two components.
        let ambiguous = try Run.sealbak(
            ["restore", archive, "--postgres-target", s.url(ta), "--pg-bin", s.bin],
            secrets: [s.password]
        )
        #expect(ambiguous.status == 64 && ambiguous.stderr.contains("ambiguous"))
        // The second component fails its verification: the first, already restored and verified, is not swapped in.
        try rewriteFacts(archive, to: dir + "/bad.sbk", entry: 1) { $0.tables[0].rows = 21 }
        let r = try Run.sealbak(
            [
                "restore", dir + "/bad.sbk", "--postgres-target", "first=" + s.url(ta), "--postgres-target",
                "second=" + s.url(tb), "--pg-bin", s.bin,
            ],
            secrets: [s.password]
        )
        #expect(r.status == 13, "\(r.stderr)")
        #expect(try s.databases().filter { $0.hasPrefix(ta) || $0.hasPrefix(tb) }.isEmpty)
        let ok = try Run.sealbak(
            [
                "restore", archive, "--postgres-target", "first=" + s.url(ta), "--postgres-target",
                "second=" + s.url(tb), "--pg-bin", s.bin,
            ],
            secrets: [s.password]
        )
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try s.psql(ta, "SELECT count(*) FROM t") == "20" && s.psql(tb, "SELECT count(*) FROM t") == "20")
        let one = try Run.sealbak(
            [
                "restore", archive, "--only", "second", "--postgres-target", s.url(tb + "_x"), "--pg-bin", s.bin,
                "--dry-run",
            ],
            secrets: [s.password]
        )
        #expect(one.status == 0 && one.stdout.contains("component second") && !one.stdout.contains("component first"))
    }

    @Test func aCountMismatchRollsTheRestoreBack() throws {
        let s = try s
        let src = Server.name("mism")
        let dst = Server.name("mism_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst)")
        }
        try s.psql("postgres", "CREATE DATABASE \(src)")
        try s.psql(src, "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 100)")
        let archive = dir + "/a.sbk"
        #expect(
            try Run.sealbak(["pack", archive, "--postgres", s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf"])
                .status == 0
        )
        // An archive whose recorded count disagrees with its dump (as if rows were lost between count and dump).
        try rewriteFacts(archive, to: dir + "/lying.sbk") { $0.tables[0].rows = 101 }
        let r = try Run.sealbak(
            ["restore", dir + "/lying.sbk", "--postgres-target", s.url(dst), "--pg-bin", s.bin],
            secrets: [s.password]
        )
        #expect(
            r.status == 13 && r.stderr.contains("public.t") && r.stderr.contains("101 rows")
                && r.stderr.contains("MISMATCH"),
            "\(r.stderr)"
        )
        #expect(try !s.databases().contains(dst))
        #expect(try s.databases().filter { $0.hasPrefix(dst + "_sbk_") }.isEmpty)
    }
}

@Suite(.enabled(if: Server.pg15 != nil || Server.required, "no PostgreSQL 15 test server"))
struct Postgres15Tests {
    @Test func debianPostgres15RoundTripsWithItsOwnTools() throws {
        guard let s = Server.pg15 else {
            throw TestFailure("SEALBAK_REQUIRE_PG=1 but SEALBAK_TEST_PG15_URL is not set")
        }
        let src = Server.name("p15")
        let dst = Server.name("p15_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst)")
        }
        try createAppDatabase(s, src, rows: 500, vector: false)
        // No --pg-bin: Debian's pg_dump 15 is found on its own.
        let packed = try Run.sealbak(
            ["pack", dir + "/a.sbk", "--postgres", s.url(src), "--insecure-test-kdf"],
            env: ["SEALBAK_PG_BIN": ""],
            secrets: [s.password]
        )
        #expect(packed.status == 0, "\(packed.stderr)")
        #expect((try componentMetadata(dir + "/a.sbk")["postgres.pg-dump"] as? String)?.contains("15.") == true)
        let restored = try Run.sealbak(
            ["restore", dir + "/a.sbk", "--postgres-target", s.url(dst)],
            env: ["SEALBAK_PG_BIN": ""],
            secrets: [s.password]
        )
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try contentDigest(s, src) == contentDigest(s, dst))
    }

    @Test func aTargetWithoutPgvectorIsRefusedBeforeAnythingChanges() throws {
        guard let s15 = Server.pg15, let sv = Server.vector else {
            throw TestFailure("SEALBAK_REQUIRE_PG=1 but a test server is missing")
        }
        let src = Server.name("needsvec")
        let dst = Server.name("novec")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? sv.psql("postgres", "DROP DATABASE IF EXISTS \(src)")
            _ = try? s15.psql("postgres", "DROP DATABASE IF EXISTS \(dst)")
        }
        try createAppDatabase(sv, src, rows: 50)
        #expect(
            try Run.sealbak([
                "pack", dir + "/a.sbk", "--postgres", sv.url(src), "--pg-bin", sv.bin, "--insecure-test-kdf",
            ]).status == 0
        )
        for extra in [["--dry-run"], []] {
            let r = try Run.sealbak(
                ["restore", dir + "/a.sbk", "--postgres-target", s15.url(dst), "--pg-bin", sv.bin] + extra,
                secrets: [s15.password]
            )
            #expect(
                r.status == 11 && r.stderr.contains("lacks the extension(s) vector")
                    && r.stderr.contains("nothing was changed"),
                "\(r.stderr)"
            )
            #expect(try !s15.databases().contains(dst))
        }
    }
}

/// The component metadata of the archive's first entry (as `list --json` gives it: counts as numbers, facts nested).
func componentMetadata(_ archive: String) throws -> [String: Any] {
    let listed = try Run.sealbak(["list", archive, "--json"])
    let doc = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as! [String: Any]
    return ((doc["entries"] as! [[String: Any]])[0]["metadata"] as? [String: Any]) ?? [:]
}

/// Copies an archive with the first entry's recorded facts changed (same dump bytes, fresh keys).
func rewriteFacts(_ archive: String, to out: String, entry: Int = 0, _ change: (inout DatabaseFacts) -> Void) throws {
    let reader = try ArchiveReader(
        input: try InputFile(path: archive),
        secret: .password(Passphrase(string: Run.archivePassword))
    )
    final class Collect: EntrySink {
        var data: [[UInt8]] = []
        func wants(_ index: Int) -> Bool { true }
        func begin(_ index: Int) throws { data.append([]) }
        func write(_ index: Int, _ bytes: [UInt8]) throws { data[index] += bytes }
        func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws {}
    }
    let sink = Collect()
    _ = try reader.readAll(into: sink)
    var manifest = reader.manifest
    var facts = try JSONDecoder().decode(
        DatabaseFacts.self,
        from: Data(manifest.entries[entry].metadata["postgres.facts"]!.utf8)
    )
    change(&facts)
    let e = manifest.entries[entry]
    manifest.entries[entry] = PostgresComponent.entry(
        name: e.metadata["component.name"]!,
        source: e.metadata["component.source"]!,
        facts: facts,
        mtime: e.mtimeSeconds
    )
    var options = WriteOptions()
    options.kdf = KDFParameters(opsLimit: 1, memLimitKiB: 8)
    var bytes: [UInt8] = []
    let writer = try ArchiveWriter(
        manifest: manifest,
        passwords: [PasswordSlotSpec(passphrase: Passphrase(string: Run.archivePassword))],
        recipients: [],
        options: options
    ) { b in b.withUnsafeBytes { bytes += $0 } }
    for d in sink.data {
        try writer.writeEntry(bytes: d)
    }
    _ = try writer.finish()
    try Data(bytes).write(to: URL(fileURLWithPath: out))
}
