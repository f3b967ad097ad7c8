import Foundation
import SealbakTestSupport
import Testing

/// `sealbak drill` with a real MariaDB: the newest archive is restored into a NAME_sbk_drill_ID database on the
/// same server, the plan's SQL checks run there, and the scratch database is dropped; the live one is untouched.
@Suite(
    .serialized,
    .enabled(if: MyServer.shared != nil || MyServer.required, "no MariaDB test server (scripts/test starts one)")
)
struct DrillMySQLTests {
    @Test func aDrillRestoresIntoAScratchDatabaseAndDropsIt() throws {
        let s = try MyServer.get()
        let db = MyServer.name("drillmy")
        try s.sql(nil, "CREATE DATABASE `\(db)`")
        try s.sql(
            db,
            "CREATE TABLE posts (id INT PRIMARY KEY, title VARCHAR(80)); INSERT INTO posts SELECT seq, CONCAT('post "
                + "', seq) FROM seq_1_to_120;"
        )
        let dir = try Proc.tempDir()
        defer {
            s.drop(db)
            try? FileManager.default.removeItem(atPath: dir)
        }
        try Data("drill-pass\n".utf8).write(to: URL(fileURLWithPath: dir + "/pass"))
        try FileManager.default.createDirectory(atPath: dir + "/backups", withIntermediateDirectories: true)
        try Data(
            """
            version: 1
            app: {name: blog}
            components:
              - name: blog-db
                kind: mysql
                url: \(s.url(db))
                checks:
                  - {sql: "select count(*) from posts", expect: 120}
            pack: {kdf-memory: 8, kdf-passes: 1}
            password-file: pass
            state-dir: state
            destination: {location: backups, verify: true}

            """.utf8
        ).write(to: URL(fileURLWithPath: dir + "/plan.yaml"))
        let env = ["SEALBAK_MYSQL_BIN": s.bin]
        let run = try Proc.run(Proc.sealbakBinary, ["run", "--plan", dir + "/plan.yaml"], env: env)
        #expect(run.status == 0 && run.stderr.isEmpty, "\(run.stderr)")
        // Only this test's databases: other tests create and drop theirs on the same server meanwhile.
        let before = try s.databases().filter { $0.hasPrefix(db) }
        try s.sql(db, "INSERT INTO posts VALUES (9999, 'after the backup')")
        let drill = try Proc.run(Proc.sealbakBinary, ["drill", "--plan", dir + "/plan.yaml"], env: env)
        #expect(
            drill.status == 0 && drill.stdout.contains("drill ok") && drill.stdout.contains("_sbk_drill_"),
            "\(drill.stdout)\(drill.stderr)"
        )
        #expect(
            !drill.stdout.contains(s.password) && !drill.stderr.contains(s.password),
            "the database password is never printed"
        )
        #expect(try s.databases().filter { $0.hasPrefix(db) } == before, "the scratch database is dropped")
        #expect(try s.sql(db, "SELECT COUNT(*) FROM posts") == "121", "the live database is untouched")
    }
}
