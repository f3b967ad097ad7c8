import Foundation
import SealbakTestSupport
import Testing

@testable import SealbakPostgres

/// The model behind the restore sessions' settings (no server needed).
@Suite struct SessionSizingTests {
    static func facts(rows: Int64 = 3000, dimensions: Int = 384, indexes: [DatabaseFacts.Index]? = nil) -> DatabaseFacts
    {
        DatabaseFacts(
            database: "rag",
            serverVersion: "18.6",
            serverVersionNumber: 180006,
            encoding: "UTF8",
            collate: "C",
            ctype: "C",
            extensions: [.init(name: "vector", version: "0.8.6", schema: "public")],
            tables: [.init(schema: "public", name: "chunks", rows: rows, bytes: rows * 2200)],
            vectorColumns: [
                .init(schema: "public", table: "chunks", column: "embedding", type: "vector", dimensions: dimensions)
            ],
            largeObjects: 0,
            dumpTool: "pg_dump (PostgreSQL) 18.6",
            indexes: indexes ?? [
                .init(
                    schema: "public",
                    table: "chunks",
                    name: "chunks_pkey",
                    method: "btree",
                    columns: ["id"],
                    options: [],
                    bytes: rows * 22
                ),
                .init(
                    schema: "public",
                    table: "chunks",
                    name: "chunks_embedding_idx",
                    method: "hnsw",
                    columns: ["embedding"],
                    options: ["m=16", "ef_construction=64"],
                    bytes: rows * 1600
                ),
            ]
        )
    }

    static let defaults = ServerLimits(
        maintenanceWorkMem: 64 << 20,
        maintenanceWorkMemMax: 2_147_483_647 * 1024,
        maxParallelMaintenanceWorkers: 2,
        maxParallelWorkers: 8,
        maxWorkerProcesses: 8
    )
    static let host = HostResources(totalMemory: 8 << 30, availableMemory: 6 << 30, cpus: 2, source: "test")

    @Test func theHnswGraphEstimateAgreesWithPgvectorsOwnNotice() {
        // pgvector 0.8.6 said "hnsw graph no longer fits into maintenance_work_mem after 465 tuples" for vector(384)
        // at 1 MB (2,255 bytes per tuple), and after 28,370 tuples at 64 MB (2,365): the model must be within 10%.
        let hnsw = SessionSizing.estimates(Self.facts(rows: 200_000)).first { $0.method == "hnsw" }!
        let perTuple = Double(hnsw.memory) / 200_000
        #expect(perTuple > 2255 * 0.9 && perTuple < 2365 * 1.1, "\(perTuple) bytes per tuple")
        #expect(hnsw.dimensions == 384 && hnsw.efConstruction == 64 && !hnsw.assumed)
    }

    @Test func aGraphLargerThanTheServersMemoryRaisesItWithinTheLimits() {
        let s = SessionSizing.choose(
            facts: Self.facts(rows: 200_000),
            server: Self.defaults,
            host: Self.host,
            userLimit: nil,
            jobs: 1
        )
        let need = s.builds.map(\.memory).max()!
        // Enough for the whole graph with 10% headroom, rounded up to a whole MiB, within a quarter of the host's
        // memory.
        #expect(s.maintenanceWorkMem! >= need + need / 10 && s.maintenanceWorkMem! <= need + need / 10 + (2 << 20))
        #expect(s.budget == 2 << 30 && s.budgetSource.contains("quarter"))
        #expect(
            s.settings.first?.name == "maintenance_work_mem"
                && s.settings.first?.value == "\(s.maintenanceWorkMem! / 1024)kB"
        )
        // Two cores and the server's two workers: nothing to change there.
        #expect(s.parallelWorkers == nil)
        #expect(s.notes.isEmpty)
    }

    @Test func theSmallestOfHostShareUserLimitAndJobsWins() {
        let big = Self.facts(rows: 2_000_000)  // ~4.7 GB of graph
        let hostBound = SessionSizing.choose(
            facts: big,
            server: Self.defaults,
            host: Self.host,
            userLimit: nil,
            jobs: 1
        )
        #expect(hostBound.maintenanceWorkMem == 2 << 30)
        #expect(hostBound.notes.contains { $0.contains("will spill") })
        let userBound = SessionSizing.choose(
            facts: big,
            server: Self.defaults,
            host: Self.host,
            userLimit: 1 << 30,
            jobs: 1
        )
        #expect(userBound.maintenanceWorkMem == 1 << 30 && userBound.budgetSource == "--restore-memory")
        // A user limit above the host's safe share is capped, and said so.
        let capped = SessionSizing.choose(
            facts: big,
            server: Self.defaults,
            host: Self.host,
            userLimit: 16 << 30,
            jobs: 1
        )
        #expect(capped.maintenanceWorkMem == 2 << 30 && capped.notes.contains { $0.contains("more than a safe share") })
        // Two jobs share the budget.
        let twoJobs = SessionSizing.choose(facts: big, server: Self.defaults, host: Self.host, userLimit: nil, jobs: 2)
        #expect(twoJobs.maintenanceWorkMem == 1 << 30)
        // The host unknown: sealbak's conservative default, unless the user says more.
        let unknown = SessionSizing.choose(facts: big, server: Self.defaults, host: nil, userLimit: nil, jobs: 1)
        #expect(
            unknown.maintenanceWorkMem == SessionSizing.unknownHostBudget
                && unknown.budgetSource.contains("cannot be read")
        )
        let told = SessionSizing.choose(facts: big, server: Self.defaults, host: nil, userLimit: 8 << 30, jobs: 1)
        let need = told.builds.map(\.memory).max()!
        #expect(
            need > 4 << 30 && told.maintenanceWorkMem! >= need && told.maintenanceWorkMem! < 8 << 30,
            "enough for the graph, not the whole limit"
        )
        // Never above the server's own maximum for the setting.
        var small = Self.defaults
        small.maintenanceWorkMemMax = 256 << 20
        #expect(
            SessionSizing.choose(facts: big, server: small, host: Self.host, userLimit: nil, jobs: 1).maintenanceWorkMem
                == 256 << 20
        )
    }

    @Test func serverSettingsThatSufficeAreLeftAlone() {
        let s = SessionSizing.choose(
            facts: Self.facts(rows: 3000),
            server: Self.defaults,
            host: Self.host,
            userLimit: nil,
            jobs: 1
        )
        #expect(s.maintenanceWorkMem == nil && s.settings.isEmpty)
        #expect(s.planLines.first?.contains("the server's settings suffice") == true)
        // A user limit below the server's own value is honoured.
        let limited = SessionSizing.choose(
            facts: Self.facts(rows: 3000),
            server: Self.defaults,
            host: Self.host,
            userLimit: 4 << 20,
            jobs: 1
        )
        #expect(limited.maintenanceWorkMem == 4 << 20)
    }

    @Test func workersFollowTheCoresWithinTheServersPool() {
        let many = HostResources(totalMemory: 64 << 30, availableMemory: 60 << 30, cpus: 16, source: "test")
        var server = Self.defaults
        // One per core, at most 8, and one of the server's worker processes left for others (max_worker_processes 8).
        #expect(
            SessionSizing.choose(facts: Self.facts(rows: 200_000), server: server, host: many, userLimit: nil, jobs: 1)
                .parallelWorkers == 7
        )
        server.maxParallelWorkers = 4
        #expect(
            SessionSizing.choose(facts: Self.facts(rows: 200_000), server: server, host: many, userLimit: nil, jobs: 1)
                .parallelWorkers == 4
        )
    }

    @Test func archivesWithoutIndexFactsStillDecodeAndAreSized() throws {
        // Facts as sealbak wrote them before it recorded indexes: no "indexes" key.
        var old = Self.facts(rows: 200_000)
        old.indexes = nil
        let json = try JSONEncoder().encode(old)
        #expect(!String(decoding: json, as: UTF8.self).contains("indexes"))
        let decoded = try JSONDecoder().decode(DatabaseFacts.self, from: json)
        #expect(decoded.indexes == nil)
        let s = SessionSizing.choose(facts: decoded, server: Self.defaults, host: Self.host, userLimit: nil, jobs: 1)
        #expect(s.builds.count == 1 && s.builds[0].assumed && s.builds[0].method == "hnsw")
        #expect(s.maintenanceWorkMem! > 64 << 20)
        #expect(s.notes.contains { $0.contains("records no indexes") })
    }

    @Test func theEstimateReflectsMemoryAndJobs() {
        let f = Self.facts(rows: 200_000)
        let sized = SessionSizing.choose(facts: f, server: Self.defaults, host: Self.host, userLimit: nil, jobs: 1)
        let starved = SessionSizing.choose(
            facts: f,
            server: Self.defaults,
            host: Self.host,
            userLimit: 64 << 20,
            jobs: 1
        )
        #expect(starved.estimatedSeconds > 3 * sized.estimatedSeconds)
        #expect(
            sized.planLines.contains { $0.contains("rebuilds index public.chunks_embedding_idx (hnsw, 200000 rows)") }
        )
        #expect(sized.planLines.contains { $0.contains("estimated restore time: about") })
    }

    @Test func theTemporaryCopyIsBoundedByTheVectorsTextForm() {
        // 200,000 vector(384): COPY text is up to 12 characters per float, far more than the 4 bytes in the table.
        let f = Self.facts(rows: 200_000)
        let heap = f.totalBytes - f.indexes!.reduce(0) { $0 + $1.bytes }
        #expect(PostgresRestorer.dumpBound(f) == heap + 200_000 * 384 * 12 + (256 << 20))
    }

    @Test func onlyASocketOrALoopbackAddressIsThisMachine() throws {
        for (url, local) in [
            ("postgresql://u@127.0.0.1:5432/d", true), ("postgresql://u@localhost/d", true),
            ("postgresql://u@[::1]/d", true),
            ("postgresql:///d?host=/var/run/postgresql", true), ("postgresql://u@db.example.org/d", false),
            ("postgresql://u@10.0.0.5/d", false),
        ] {
            #expect(isLocalHost(try ConnectionParameters(url, what: "test")) == local, "\(url)")
        }
    }

    /// `chunks` and a second table as large, `notes`, each with an HNSW index on a vector(384) column.
    static func twoVectorTables() -> DatabaseFacts {
        var two = facts(rows: 200_000)
        two.tables.append(.init(schema: "public", name: "notes", rows: 200_000, bytes: 200_000 * 2200))
        two.vectorColumns.append(
            .init(schema: "public", table: "notes", column: "embedding", type: "vector", dimensions: 384)
        )
        two.indexes! += [
            .init(
                schema: "public",
                table: "notes",
                name: "notes_embedding_idx",
                method: "hnsw",
                columns: ["embedding"],
                options: [],
                bytes: 200_000 * 1600
            )
        ]
        return two
    }

    @Test func parallelJobsPayForTwoLargeTablesNotForOne() {
        // One large table with one large HNSW index: a second job has nothing to do in parallel.
        let one = Self.facts(rows: 200_000)
        let gainOne =
            SessionSizing.choose(facts: one, server: Self.defaults, host: Self.host, userLimit: nil, jobs: 1)
            .estimatedSeconds
            - SessionSizing.choose(facts: one, server: Self.defaults, host: Self.host, userLimit: nil, jobs: 2)
            .estimatedSeconds
        #expect(gainOne < Double(PostgresRestorer.dumpBound(one)) / SessionSizing.temporaryCopyBytesPerSecond)
        // Two such tables: their loads and index builds run side by side.
        let two = Self.twoVectorTables()
        // With cores to spare (8, and a server that gives each session 2 parallel workers) they do.
        var capped = Self.defaults
        capped.maxParallelWorkers = 2
        let host8 = HostResources(totalMemory: 64 << 30, availableMemory: 60 << 30, cpus: 8, source: "test")
        let serial = SessionSizing.choose(facts: two, server: capped, host: host8, userLimit: nil, jobs: 1)
            .estimatedSeconds
        let parallel = SessionSizing.choose(facts: two, server: capped, host: host8, userLimit: nil, jobs: 2)
            .estimatedSeconds
        #expect(serial - parallel > Double(PostgresRestorer.dumpBound(two)) / SessionSizing.temporaryCopyBytesPerSecond)
    }

    /// Index builds that run side by side share the cores: on 2 cores two HNSW builds with their parallel workers
    /// take as long in two sessions as in one; on 8 cores, with 2 workers per session, two sessions nearly halve
    /// the index phase.
    @Test func indexBuildsSideBySideShareTheCores() {
        let two = Self.twoVectorTables()
        // A server that gives a session at most 2 parallel workers (max_parallel_workers = 2).
        var capped = Self.defaults
        capped.maxParallelWorkers = 2
        func phases(cpus: Int, jobs: Int) -> (index: Double, builds: Double) {
            let host = HostResources(totalMemory: 64 << 30, availableMemory: 60 << 30, cpus: cpus, source: "test")
            let s = SessionSizing.choose(facts: two, server: capped, host: host, userLimit: nil, jobs: jobs)
            let builds = s.builds.filter { $0.method == "hnsw" }.map(\.seconds)
            #expect(builds.count == 2)
            return (s.estimatedSeconds - s.dataSeconds, builds.reduce(0, +))
        }
        let small1 = phases(cpus: 2, jobs: 1)
        let small2 = phases(cpus: 2, jobs: 2)
        // On 2 cores the builds each use both cores already: side by side they cannot finish sooner.
        #expect(small2.index >= small1.index * 0.99, "\(small2.index) vs \(small1.index)")
        let big1 = phases(cpus: 8, jobs: 1)
        let big2 = phases(cpus: 8, jobs: 2)
        // On 8 cores with 2 workers each, two sessions use twice the cores.
        #expect(big2.index < big1.index * 0.6, "\(big2.index) vs \(big1.index)")
    }

    @Test func memorySizesParseAsPostgreSQLWritesThem() {
        #expect(parseMemorySize("512MB") == 512 << 20)
        #expect(parseMemorySize("2GB") == 2 << 30)
        #expect(parseMemorySize("1GiB") == 1 << 30)
        #expect(parseMemorySize("65536kB") == 64 << 20)
        #expect(parseMemorySize("1048576") == 1 << 20)
        for bad in ["", "MB", "-1GB", "1.5GB", "2 XB", "0"] { #expect(parseMemorySize(bad) == nil, "\(bad)") }
    }

    @Test func meminfoIsReadAsTheKernelWritesIt() {
        let h = HostResources.meminfo(
            "MemTotal:       24684092 kB\nMemFree:        20853848 kB\nMemAvailable:   23000000 kB\n",
            cpus: 2,
            source: "t"
        )
        #expect(h?.totalMemory == 24_684_092 * 1024 && h?.availableMemory == 23_000_000 * 1024)
        let quarter: Int64 = 24_684_092 * 1024 / 4
        #expect(h?.safeShare == quarter)
        #expect(HostResources.meminfo("garbage", cpus: nil, source: "t") == nil)
    }
}

/// Restore sessions on the real server (scripts/pg-servers): the settings must reach the session that builds the
/// indexes. The proof is an expression index over an IMMUTABLE function that returns the session's settings:
/// its entries hold the value of the session that built it, and an index scan reads them back.
@Suite(
    .enabled(
        if: Server.vector != nil || Server.required,
        "no PostgreSQL test servers (run scripts/test, which starts them)"
    )
)
struct RestoreSizingServerTests {
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

    /// A vector table with an HNSW index (6.7 MB of graph) and the probe table with the settings index.
    func createProbeDatabase(_ s: Server, _ db: String) throws {
        try s.psql("postgres", "CREATE DATABASE \(db)")
        try s.psql(
            db,
            """
            CREATE EXTENSION vector;
            CREATE TABLE items (id int PRIMARY KEY, embedding vector(384));
            INSERT INTO items
              SELECT i, (SELECT array_agg(sin(i * j + 0.5)::real) FROM generate_series(1, 384) j)::vector
              FROM generate_series(1, 3000) i;
            CREATE INDEX items_embedding_idx ON items USING hnsw (embedding vector_cosine_ops);
            CREATE FUNCTION session_memory(int) RETURNS text LANGUAGE sql IMMUTABLE
              AS $$ SELECT current_setting('maintenance_work_mem') $$;
            CREATE TABLE probe (id int);
            INSERT INTO probe SELECT generate_series(1, 50);
            CREATE INDEX probe_idx ON probe (session_memory(id));
            """
        )
    }

    /// How many probe rows the index holds with `value` as the building session's maintenance_work_mem (index scan
    /// only).
    func builtWith(_ s: Server, _ db: String, _ value: String) throws -> Int {
        Int(
            try s.psql(
                db,
                "SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM probe WHERE "
                    + "session_memory(id) = '\(value)'"
            )
        ) ?? -1
    }

    /// A superuser whose sessions start with maintenance_work_mem = 1MB (a role default, which startup options
    /// override).
    func starvedRole(_ s: Server) throws -> (name: String, password: String) {
        let role = Server.name("sbk_small")
        let pw = UUID().uuidString
        try s.psql(
            "postgres",
            "CREATE ROLE \(role) LOGIN SUPERUSER PASSWORD '\(pw)'; ALTER ROLE \(role) SET maintenance_work_mem = '1MB'"
        )
        return (role, pw)
    }

    func url(_ s: Server, _ db: String, role: String, password: String) -> String {
        var c = s.url
        c.user = role
        c.password = password
        c.path = "/" + db
        return c.string!
    }

    static func loggedMemory(_ stderr: String) -> String? {
        guard let r = stderr.range(of: #"maintenance_work_mem=[0-9]+[kMGT]?B"#, options: .regularExpression) else {
            return nil
        }
        return String(stderr[r].dropFirst("maintenance_work_mem=".count))
    }

    @Test func theIndexBuildingSessionGetsTheChosenMemory() throws {
        let s = try s
        let src = Server.name("size_src")
        let one = Server.name("size_one")
        let par = Server.name("size_par")
        let raised = Server.name("size_raised")
        let (role, pw) = try starvedRole(s)
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql(
                "postgres",
                "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(one); DROP DATABASE IF EXISTS \(par); "
                    + "DROP DATABASE IF EXISTS \(raised); DROP ROLE IF EXISTS \(role)"
            )
        }
        try createProbeDatabase(s, src)
        let archive = dir + "/probe.sbk"
        #expect(
            try Run.sealbak(["pack", archive, "--postgres", s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf"])
                .status == 0
        )

        // --restore-memory bounds every session: one session gets all of it, two jobs get half each.
        let single = try Run.sealbak(
            [
                "restore", archive, "--postgres-target", s.url(one), "--pg-bin", s.bin, "--restore-memory", "6MB",
                "--restore-jobs", "1",
            ],
            secrets: [s.password]
        )
        #expect(single.status == 0, "\(single.stderr)")
        #expect(Self.loggedMemory(single.stderr) == "6MB", "\(single.stderr)")
        #expect(try builtWith(s, one, "6MB") == 50)
        let parallel = try Run.sealbak(
            [
                "restore", archive, "--postgres-target", s.url(par), "--pg-bin", s.bin, "--restore-memory", "6MB",
                "--restore-jobs", "2",
            ],
            secrets: [s.password]
        )
        #expect(parallel.status == 0, "\(parallel.stderr)")
        #expect(parallel.stderr.contains("-j 2") && Self.loggedMemory(parallel.stderr) == "3MB", "\(parallel.stderr)")
        #expect(try builtWith(s, par, "3MB") == 50)

        // A role whose sessions start with 1MB: sealbak raises it for the HNSW graph, and the raise reaches the build.
        let up = try Run.sealbak(
            ["restore", archive, "--postgres-target", url(s, raised, role: role, password: pw), "--pg-bin", s.bin],
            secrets: [pw]
        )
        #expect(up.status == 0, "\(up.stderr)")
        let chosen = try #require(Self.loggedMemory(up.stderr), "\(up.stderr)")
        #expect(chosen != "1MB" && up.stderr.contains("items_embedding_idx (hnsw)"), "\(up.stderr)")
        #expect(try builtWith(s, raised, chosen) == 50)
        #expect(try builtWith(s, raised, "1MB") == 0)
        #expect(
            try s.databases().filter {
                $0.contains("_sbk_") && ($0.hasPrefix(one) || $0.hasPrefix(par) || $0.hasPrefix(raised))
            }.isEmpty
        )
    }

    @Test func aRefusedSettingFallsBackToTheServersOwnValue() throws {
        let s = try s
        let src = Server.name("refuse_src")
        let dst = Server.name("refuse_dst")
        let (role, pw) = try starvedRole(s)
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql(
                "postgres",
                "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst); DROP ROLE IF EXISTS \(role)"
            )
        }
        try createProbeDatabase(s, src)
        let archive = dir + "/probe.sbk"
        #expect(
            try Run.sealbak(["pack", archive, "--postgres", s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf"])
                .status == 0
        )
        // The injected fault sends maintenance_work_mem with a value the server rejects at connection time.
        let r = try Run.sealbak(
            ["restore", archive, "--postgres-target", url(s, dst, role: role, password: pw), "--pg-bin", s.bin],
            env: ["SEALBAK_FAULT": "pg-session:1:fail"],
            secrets: [pw]
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            r.stderr.contains("the server refused maintenance_work_mem")
                && r.stderr.contains("restoring with the server's own value"),
            "\(r.stderr)"
        )
        #expect(r.stdout.contains("verified") && !r.stdout.contains("MISMATCH"))
        // pg_restore ran without the refused setting: the role's own 1MB built the index.
        #expect(try builtWith(s, dst, "1MB") == 50)
    }

    @Test func thePlanAndTheListShowTheIndexBuildsAndAnEstimate() throws {
        let s = try s
        let src = Server.name("plan_src")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src)")
        }
        try createProbeDatabase(s, src)
        let archive = dir + "/probe.sbk"
        #expect(
            try Run.sealbak(["pack", archive, "--postgres", s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf"])
                .status == 0
        )
        let listed = try Run.sealbak(["list", archive])
        #expect(
            listed.stdout.contains("rebuilds index public.items_embedding_idx (hnsw, 3000 rows)")
                && listed.stdout.contains("estimated restore time"),
            "\(listed.stdout)"
        )
        // The facts record every index with its method, columns and storage parameters.
        // (list --json gives the facts as a nested object: docs/json.md.)
        let factsObject = try #require(try componentMetadata(archive)["postgres.facts"] as? [String: Any])
        let facts = try JSONDecoder().decode(
            DatabaseFacts.self,
            from: JSONSerialization.data(withJSONObject: factsObject)
        )
        #expect(facts.indexes?.map(\.name) == ["items_embedding_idx", "items_pkey", "probe_idx"])
        #expect(facts.indexes?.first?.method == "hnsw" && facts.indexes?.first?.columns == ["embedding"])
        #expect(facts.indexes?.last?.columns == [], "an expression has no column name")

        let dry = try Run.sealbak(
            [
                "restore", archive, "--postgres-target", s.url(Server.name("plan_dst")), "--pg-bin", s.bin, "--dry-run",
                "--restore-memory", "4MB",
            ],
            secrets: [s.password]
        )
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(
            dry.stdout.contains("session sizing: sets maintenance_work_mem=")
                && dry.stdout.contains("memory limit 4.0 MiB for all sessions: --restore-memory"),
            "\(dry.stdout)"
        )
        #expect(dry.stdout.contains("rebuilds index public.items_embedding_idx (hnsw, 3000 rows): needs about"))
        #expect(dry.stdout.contains("estimated restore time: about"))
        // No room for a temporary copy (here: a folder that does not exist): one session, straight from the archive.
        let noRoom = try Run.sealbak(
            [
                "restore", archive, "--postgres-target", s.url(Server.name("plan_dst")), "--pg-bin", s.bin, "--dry-run",
                "--restore-jobs", "2",
            ],
            env: ["TMPDIR": dir + "/missing"],
            secrets: [s.password]
        )
        #expect(
            noRoom.status == 0 && noRoom.stdout.contains("restoring with one session straight from the archive")
                && noRoom.stdout.contains("1 restore job(s)"),
            "\(noRoom.stdout)"
        )
        // Bad values are usage errors that name the option.
        let bad = try Run.sealbak([
            "restore", archive, "--postgres-target", s.url(Server.name("plan_dst")), "--restore-memory", "lots",
        ])
        #expect(bad.status == 64 && bad.stderr.contains("--restore-memory lots"))
        let badJobs = try Run.sealbak([
            "restore", archive, "--postgres-target", s.url(Server.name("plan_dst")), "--restore-jobs", "0",
        ])
        #expect(badJobs.status == 64 && badJobs.stderr.contains("--restore-jobs 0"))
    }

    @Test func aParallelRestoreRemovesItsCopyAndThoseOfKilledRuns() throws {
        let s = try s
        let src = Server.name("par_src")
        let dst = Server.name("par_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst)")
        }
        try createAppDatabase(s, src, rows: 300)
        let archive = dir + "/app.sbk"
        #expect(
            try Run.sealbak(["pack", archive, "--postgres", s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf"])
                .status == 0
        )
        // What a killed restore left: its process is gone (a child that has exited and been reaped).
        let gone = try Proc.run("/bin/sh", ["-c", "echo $$"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tmp = dir + "/tmp"
        let leftover = tmp + "/sealbak-pgrestore-\(gone)-0badf00d"
        try FileManager.default.createDirectory(atPath: leftover, withIntermediateDirectories: true)
        try Data("plaintext of a dump".utf8).write(to: URL(fileURLWithPath: leftover + "/dump"))
        // The dry run names it; the next real run removes it first, even one that restores with a single session.
        let dry = try Run.sealbak(
            ["restore", archive, "--postgres-target", s.url(dst), "--pg-bin", s.bin, "--dry-run"],
            env: ["TMPDIR": tmp],
            secrets: [s.password]
        )
        #expect(
            dry.status == 0 && dry.stdout.contains("temporary copy of a dump \(leftover) was left by a killed restore"),
            "\(dry.stdout)"
        )
        #expect(FileManager.default.fileExists(atPath: leftover + "/dump"), "a dry run changes nothing")
        let single = try Run.sealbak(
            ["restore", archive, "--postgres-target", s.url(dst), "--pg-bin", s.bin, "--restore-jobs", "1"],
            env: ["TMPDIR": tmp],
            secrets: [s.password]
        )
        #expect(
            single.status == 0
                && single.stderr.contains(
                    "removed \(leftover), the temporary copy of a dump left by a killed parallel restore"
                ),
            "\(single.stderr)"
        )
        #expect(!single.stderr.contains("-j "))
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty)
        // A parallel restore removes its own copy.
        let r = try Run.sealbak(
            [
                "restore", archive, "--postgres-target", s.url(dst), "--pg-bin", s.bin, "--restore-jobs", "2",
                "--replace",
            ],
            env: ["TMPDIR": tmp],
            secrets: [s.password]
        )
        #expect(r.status == 0 && r.stderr.contains("-j 2"), "\(r.stderr)")
        #expect(try contentDigest(s, src) == contentDigest(s, dst))
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty, "the temporary copies must be gone")
    }
    @Test func anInterruptedParallelRestoreRemovesItsCopyAndItsDatabase() throws {
        let s = try s
        let src = Server.name("pintr")
        let dst = Server.name("pintr_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? s.psql("postgres", "DROP DATABASE IF EXISTS \(src); DROP DATABASE IF EXISTS \(dst)")
        }
        try createAppDatabase(s, src, rows: 200)
        #expect(
            try Run.sealbak([
                "pack", dir + "/a.sbk", "--postgres", s.url(src), "--pg-bin", s.bin, "--insecure-test-kdf",
            ]).status == 0
        )
        // A pg_restore that is slow to start: the signal arrives while the copy and the new database exist.
        let fake = dir + "/bin"
        let tmp = dir + "/tmp"
        try FileManager.default.createDirectory(atPath: fake, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        try Data(
            """
            #!/bin/sh
            case "$1" in --version) exec "\(s.bin)/pg_restore" --version;; esac
            sleep 30 &
            echo $! > "\(dir)/sleep.pid"
            wait $!
            exec "\(s.bin)/pg_restore" "$@"
            """.utf8
        ).write(to: URL(fileURLWithPath: fake + "/pg_restore"))
        chmod(fake + "/pg_restore", 0o755)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Proc.sealbakBinary)
        p.arguments = [
            "restore", dir + "/a.sbk", "--postgres-target", s.url(dst), "--pg-bin", fake, "--restore-jobs", "2",
        ]
        p.environment = ProcessInfo.processInfo.environment.merging([
            "SEALBAK_PASSWORD": Run.archivePassword, "TMPDIR": tmp,
        ]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        var sawCopy = false
        for _ in 0..<150 where !sawCopy {
            Thread.sleep(forTimeInterval: 0.1)
            sawCopy = ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).contains { name in
                name.hasPrefix("sealbak-pgrestore-")
                    && FileManager.default.fileExists(atPath: tmp + "/" + name + "/dump")
            }
        }
        #expect(sawCopy)
        #expect(try s.databases().contains { $0.hasPrefix(dst + "_sbk_new_") })
        p.interrupt()
        p.waitUntilExit()
        #expect(p.terminationStatus == 130)
        // pg_restore's whole process group was ended, not just its first process (a child left running, or a zombie,
        // counts as gone).
        let sleeper = try String(contentsOfFile: dir + "/sleep.pid", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        var running = true
        for _ in 0..<30 where running {
            let stat = (try? String(contentsOfFile: "/proc/\(sleeper)/stat", encoding: .utf8)) ?? ""
            running = !stat.isEmpty && !stat.contains(") Z ")
            if running { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(!running, "pg_restore's child \(sleeper) outlived the interrupt")
        #expect(try s.databases().filter { $0.hasPrefix(dst) }.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty, "the temporary copy must be gone")
    }
}
