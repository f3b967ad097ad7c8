import Foundation
import SealbakTestSupport
import Testing

/// `sealbak run` and `sealbak drill` with a real PostgreSQL: the drill restores into a NAME_sbk_drill_ID database
/// on the same server, runs the plan's SQL checks there, and drops it, also when a check fails; the live database
/// is never touched.
@Suite(
    .serialized,
    .enabled(
        if: Server.vector != nil || Server.required,
        "no PostgreSQL test servers (run scripts/test, which starts them)"
    )
)
struct DrillPostgresTests {
    static func setup(check: String) throws -> (dir: String, db: String, server: Server) {
        guard let s = Server.vector else {
            throw TestFailure("SEALBAK_REQUIRE_PG=1 but SEALBAK_TEST_PG_URL is not set")
        }
        let db = Server.name("drill")
        try s.psql("postgres", "CREATE DATABASE \(db)")
        try s.psql(
            db,
            "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders SELECT g, 'item ' || g FROM "
                + "generate_series(1, 250) g;"
        )
        let dir = try Proc.tempDir()
        try Data("drill-pass\n".utf8).write(to: URL(fileURLWithPath: dir + "/pass"))
        try Data(
            """
            version: 1
            app: {name: pgshop}
            pg-bin: \(s.bin)
            components:
              - name: main-db
                kind: postgres
                url: \(s.url(db))
                checks:
                  - {sql: "\(check)", expect: 250}
            pack: {kdf-memory: 8, kdf-passes: 1}
            password-file: pass
            state-dir: state
            destination: {location: backups, verify: true}

            """.utf8
        ).write(to: URL(fileURLWithPath: dir + "/plan.yaml"))
        try FileManager.default.createDirectory(atPath: dir + "/backups", withIntermediateDirectories: true)
        return (dir, db, s)
    }

    @Test func aDrillRestoresIntoAScratchDatabaseChecksAndDropsIt() throws {
        let (dir, db, s) = try Self.setup(check: "select count(*) from orders")
        defer {
            try? s.psql("postgres", "DROP DATABASE IF EXISTS \(db) WITH (FORCE)")
            try? FileManager.default.removeItem(atPath: dir)
        }
        // cron's environment: nothing but what the plan says (pg-bin: for the client tools).
        let run = try Proc.run(
            Proc.sealbakBinary,
            ["run", "--plan", dir + "/plan.yaml"],
            env: ["PATH": "", "HOME": "", "PGPASSWORD": ""]
        )
        #expect(run.status == 0 && run.stderr.isEmpty, "\(run.stderr)")
        let runRecord = try String(contentsOfFile: dir + "/state/history.jsonl", encoding: .utf8)
        #expect(
            runRecord.contains("\"counts\":{\"entries\":") && runRecord.contains("\"rows\":250")
                && runRecord.contains("\"tables\":1"),
            "the run records the component's counts: \(runRecord)"
        )
        // Only this test's databases: other tests create and drop theirs on the same server meanwhile.
        let before = try s.databases().filter { $0.hasPrefix(db) }
        try s.psql(db, "INSERT INTO orders VALUES (9999, 'after the backup')")
        let drill = try Proc.run(Proc.sealbakBinary, ["drill", "--plan", dir + "/plan.yaml"])
        #expect(drill.status == 0 && drill.stdout.contains("drill ok"), "\(drill.stdout)\(drill.stderr)")
        #expect(drill.stdout.contains("_sbk_drill_"), "the comparison names the scratch database: \(drill.stdout)")
        #expect(
            !drill.stdout.contains(s.password) && !drill.stderr.contains(s.password),
            "the database password is never printed"
        )
        #expect(try s.databases().filter { $0.hasPrefix(db) } == before, "the scratch database is dropped")
        #expect(try s.psql(db, "select count(*) from orders") == "251", "the live database is untouched")
        let history = try String(contentsOfFile: dir + "/state/history.jsonl", encoding: .utf8)
        #expect(history.contains("\"kind\":\"drill\"") && history.contains("\"status\":\"ok\""))
    }

    @Test func aFailingCheckFailsTheDrillAndStillDropsTheScratchDatabase() throws {
        let (dir, db, s) = try Self.setup(check: "select count(*) + 1 from orders")
        defer {
            try? s.psql("postgres", "DROP DATABASE IF EXISTS \(db) WITH (FORCE)")
            try? FileManager.default.removeItem(atPath: dir)
        }
        // The run's own verify does not run the SQL checks (they are restore checks): it succeeds.
        #expect(try Proc.run(Proc.sealbakBinary, ["run", "--plan", dir + "/plan.yaml"]).status == 0)
        let before = try s.databases().filter { $0.hasPrefix(db) }
        let drill = try Proc.run(Proc.sealbakBinary, ["drill", "--plan", dir + "/plan.yaml"])
        #expect(drill.status == 13 && drill.stderr.contains("drill FAILED"), "\(drill.stdout)\(drill.stderr)")
        #expect(try s.databases().filter { $0.hasPrefix(db) } == before, "no scratch database is left")
        let status = try Proc.run(Proc.sealbakBinary, ["history", "--plan", dir + "/plan.yaml"])
        #expect(status.stdout.contains("drill   FAILED"), "\(status.stdout)")
    }
}
