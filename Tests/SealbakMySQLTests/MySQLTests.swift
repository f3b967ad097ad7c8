import Foundation
import SealbakTestSupport
import Testing

/// A real MariaDB server from scripts/mysql-servers (SEALBAK_TEST_MYSQL_URL, client tools in SEALBAK_TEST_MYSQL_BIN).
/// Without it the suite is skipped, unless SEALBAK_REQUIRE_MYSQL=1 (scripts/test sets it): then it fails.
struct MyServer {
    let url: URLComponents
    let bin: String
    let password: String

    static let shared: MyServer? = {
        let env = ProcessInfo.processInfo.environment
        guard let u = env["SEALBAK_TEST_MYSQL_URL"], let c = URLComponents(string: u),
            let b = env["SEALBAK_TEST_MYSQL_BIN"]
        else { return nil }
        return MyServer(url: c, bin: b, password: c.password ?? "")
    }()
    static let required = ProcessInfo.processInfo.environment["SEALBAK_REQUIRE_MYSQL"] == "1"

    static func get() throws -> MyServer {
        guard let s = shared else {
            throw TestFailure(
                "SEALBAK_REQUIRE_MYSQL=1 but SEALBAK_TEST_MYSQL_URL is not set: scripts/mysql-servers did not start"
            )
        }
        return s
    }

    func url(_ db: String, password: String? = nil, withPassword: Bool = true) -> String {
        var c = url
        c.path = "/" + db
        c.password = withPassword ? (password ?? self.password) : nil
        return c.string!
    }

    var clientArgs: [String] {
        [
            "--no-defaults", "--default-character-set=utf8mb4", "-uroot", "-h", url.host!, "-P", String(url.port!),
            "--batch", "--skip-column-names",
        ]
    }

    /// Runs SQL with the mariadb client (the password through MYSQL_PWD); returns its output.
    @discardableResult
    func sql(_ db: String?, _ text: String) throws -> String {
        let r = try Proc.run(
            bin + "/mariadb",
            clientArgs + (db.map { ["--database=" + $0] } ?? []),
            env: ["MYSQL_PWD": password],
            stdin: Data(text.utf8)
        )
        if r.status != 0 { throw TestFailure("mariadb on \(db ?? "-") failed: \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func databases() throws -> [String] { try sql(nil, "SHOW DATABASES").split(separator: "\n").map(String.init) }

    func drop(_ dbs: String...) {
        for d in dbs { _ = try? sql(nil, "DROP DATABASE IF EXISTS `\(d)`") }
        if let all = try? databases() {
            for d in all where dbs.contains(where: { d.hasPrefix($0 + "_sbk_") }) {
                _ = try? sql(nil, "DROP DATABASE IF EXISTS `\(d)`")
            }
        }
    }

    static func name(_ prefix: String) -> String { prefix + "_" + UUID().uuidString.prefix(8).lowercased() }

    /// Every table's row count and content checksum, ordered.
    func digest(_ db: String) throws -> [String] {
        let tables = try sql(
            db,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE "
                + "TABLE' ORDER BY 1"
        ).split(separator: "\n")
        return try tables.map { t in
            let q = "`" + t.replacingOccurrences(of: "`", with: "``") + "`"
            let sum = try sql(db, "CHECKSUM TABLE \(q) EXTENDED").split(separator: "\t").last.map(String.init) ?? "?"
            let n = try sql(db, "SELECT COUNT(*) FROM \(q)")
            return "\(t): \(n) rows, checksum \(sum)"
        }
    }
}

enum Sealbak {
    static let archivePassword = "archive-pw-\(UUID().uuidString)"

    /// Runs sealbak; no secret given may appear in its output.
    @discardableResult
    static func run(_ args: [String], env: [String: String] = [:], secrets: [String] = []) throws -> Proc.Result {
        try Proc.sealbak(
            args,
            env: ["SEALBAK_PASSWORD": archivePassword].merging(env) { $1 },
            secrets: secrets + [archivePassword]
        )
    }
}

/// An application's database: foreign keys, utf8mb4 text with emoji, BLOBs, JSON, a trigger, a view, a routine
/// and a MyISAM table.
func createAppDatabase(_ s: MyServer, _ db: String, rows: Int = 2000) throws {
    try s.sql(nil, "CREATE DATABASE `\(db)` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try s.sql(
        db,
        """
        CREATE TABLE users (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, bio TEXT) ENGINE=InnoDB;
        CREATE TABLE documents (id BIGINT PRIMARY KEY AUTO_INCREMENT, user_id INT NOT NULL, title VARCHAR(200),
          body MEDIUMTEXT, meta JSON, raw BLOB,
          FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE) ENGINE=InnoDB;
        CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, doc_id BIGINT, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)
          ENGINE=InnoDB;
        CREATE TABLE `odd ``name`` (x)` (k VARCHAR(20) PRIMARY KEY, v INT) ENGINE=InnoDB;
        CREATE TABLE cache (k VARCHAR(20) PRIMARY KEY, v TEXT) ENGINE=MyISAM;
        INSERT INTO users (name, bio)
          SELECT CONCAT('user ', seq), CONCAT('héllo 😀🚀 wörld ),( \\'quoted\\' ', seq, ' \\\\ back') FROM seq_1_to_50;
        INSERT INTO documents (user_id, title, body, meta, raw)
          SELECT 1 + seq % 50, CONCAT('doc ', seq, ' 📄'), REPEAT(CONCAT('lorem ', seq, ' ),(;\\n'), 20),
                 JSON_OBJECT('i', seq, 'tags', JSON_ARRAY('a', seq % 7), 'emoji', '🙂'),
                 UNHEX(CONCAT(MD5(seq), '00FF2829273B'))
          FROM seq_1_to_\(rows);
        INSERT INTO `odd ``name`` (x)` SELECT CONCAT('k', seq), seq FROM seq_1_to_37;
        INSERT INTO cache SELECT CONCAT('c', seq), 'cached' FROM seq_1_to_5;
        CREATE VIEW recent AS SELECT d.id, d.title, u.name FROM documents d JOIN users u ON u.id = d.user_id \
        WHERE d.id > 10;
        CREATE TRIGGER documents_audit AFTER INSERT ON documents FOR EACH ROW \
        INSERT INTO audit (doc_id) VALUES (NEW.id);
        CREATE FUNCTION title_of(i BIGINT) RETURNS VARCHAR(200) DETERMINISTIC READS SQL DATA \
        RETURN (SELECT title FROM documents WHERE id = i);
        """
    )
}

@Suite(
    .enabled(
        if: MyServer.shared != nil || MyServer.required,
        "no MariaDB test server (run scripts/test, which starts it)"
    )
)
struct MySQLTests {
    @Test func packAndRestoreAnAppDatabaseWithIdenticalContent() throws {
        let s = try MyServer.get()
        let src = MyServer.name("src")
        let dst = MyServer.name("dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            s.drop(src, dst)
        }
        try createAppDatabase(s, src)
        let archive = dir + "/app.sbk"
        let packed = try Sealbak.run(
            ["pack", archive, "--mysql", s.url(src), "--mysql-bin", s.bin, "--insecure-test-kdf"],
            secrets: [s.password]
        )
        #expect(packed.status == 0, "\(packed.stderr)")
        #expect(
            packed.stderr.contains("cache (MyISAM)") && packed.stderr.contains("not transactional"),
            "\(packed.stderr)"
        )

        let listed = try Sealbak.run(["list", archive, "--json"], secrets: [s.password])
        let doc = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as! [String: Any]
        let entries = doc["entries"] as! [[String: Any]]
        #expect(
            entries.map { $0["name"] as? String } == [
                "mysql/\(src).sql", "mysql/\(src).counts.json", ".sealbak-outcome.json",
            ]
        )
        let meta = entries[0]["metadata"] as! [String: Any]
        #expect(
            meta["component"] as? String == "mysql" && meta["mysql.flavour"] as? String == "MariaDB"
                && meta["mysql.charset"] as? String == "utf8mb4"
                && meta["mysql.collation"] as? String == "utf8mb4_unicode_ci"
        )
        #expect(meta["mysql.tables"] as? Int == 5)
        let human = try Sealbak.run(["list", archive])
        #expect(
            human.stdout.contains("mysql \(src): ok, MariaDB")
                && human.stdout.contains("5 tables, \(2000 + 50 + 37 + 5) rows, 1 views, 1 triggers, 1 routines"),
            "\(human.stdout)"
        )
        let verified = try Sealbak.run(["verify", archive])
        #expect(
            verified.status == 0 && verified.stdout.contains("MariaDB dump")
                && verified.stdout.contains("rows counted in the dump stream"),
            "\(verified.stdout)\(verified.stderr)"
        )

        // Dry run: every check, nothing changes.
        let dry = try Sealbak.run(
            ["restore", archive, "--mysql-target", s.url(dst), "--mysql-bin", s.bin, "--dry-run"],
            secrets: [s.password]
        )
        #expect(
            dry.status == 0 && dry.stdout.contains("database will be created")
                && dry.stdout.contains("documents: 2000 row(s)"),
            "\(dry.stdout)\(dry.stderr)"
        )
        #expect(try !s.databases().contains(dst))

        let restored = try Sealbak.run(
            ["restore", archive, "--mysql-target", s.url(dst), "--mysql-bin", s.bin],
            secrets: [s.password]
        )
        #expect(restored.status == 0 && !restored.stdout.contains("MISMATCH"), "\(restored.stdout)\(restored.stderr)")
        #expect(try s.digest(src) == s.digest(dst))
        #expect(
            try s.sql(dst, "SELECT bio FROM users WHERE id = 7") == s.sql(src, "SELECT bio FROM users WHERE id = 7")
        )
        #expect(
            try s.sql(dst, "SELECT HEX(raw), JSON_VALUE(meta, '$.emoji') FROM documents WHERE id = 3")
                == s.sql(src, "SELECT HEX(raw), JSON_VALUE(meta, '$.emoji') FROM documents WHERE id = 3")
        )
        // The view, the function and the trigger work in the restored database.
        #expect(try s.sql(dst, "SELECT COUNT(*) FROM recent") == "1990")
        #expect(try s.sql(dst, "SELECT title_of(5)") == "doc 5 📄")
        try s.sql(dst, "INSERT INTO documents (user_id, title) VALUES (1, 'new')")
        #expect(try s.sql(dst, "SELECT COUNT(*) FROM audit") == "1")
        #expect(try s.databases().filter { $0.hasPrefix(dst + "_sbk_") }.isEmpty)

        // A target with tables: refused without --replace (the dry run says the same), replaced with it, kept with
        // --keep-replaced.
        let dryRefused = try Sealbak.run(
            ["restore", archive, "--mysql-target", s.url(dst), "--mysql-bin", s.bin, "--dry-run"],
            secrets: [s.password]
        )
        let refused = try Sealbak.run(
            ["restore", archive, "--mysql-target", s.url(dst), "--mysql-bin", s.bin],
            secrets: [s.password]
        )
        #expect(
            refused.status == 7 && dryRefused.status == 7 && refused.stderr.contains("not empty")
                && refused.stderr.contains("--replace"),
            "\(refused.stderr)"
        )
        #expect(try s.sql(dst, "SELECT COUNT(*) FROM documents") == "2001")
        let replaced = try Sealbak.run(
            ["restore", archive, "--mysql-target", s.url(dst), "--mysql-bin", s.bin, "--replace", "--keep-replaced"],
            secrets: [s.password]
        )
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(try s.digest(src) == s.digest(dst))
        let kept = try s.databases().filter { $0.hasPrefix(dst + "_sbk_old_") }
        #expect(kept.count == 1 && replaced.stdout.contains("kept in \(kept.first ?? "?")"), "\(replaced.stdout)")
        #expect(try s.sql(kept.first ?? "-", "SELECT COUNT(*) FROM documents") == "2001")
        #expect(
            try s.sql(
                kept.first ?? "-",
                "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
            ) == "1"
        )
        let again = try Sealbak.run(
            ["restore", archive, "--mysql-target", s.url(dst), "--mysql-bin", s.bin, "--replace"],
            secrets: [s.password]
        )
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try s.databases().filter { $0.hasPrefix(dst + "_sbk_") } == kept)
        try s.sql(dst, "INSERT INTO documents (user_id, title) VALUES (1, 'new')")
        #expect(try s.sql(dst, "SELECT COUNT(*) FROM audit") == "1")
    }

    @Test func countsDescribeTheDumpWhileTheDatabaseIsWritten() throws {
        let s = try MyServer.get()
        let src = MyServer.name("busy")
        let dst = MyServer.name("busy_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            s.drop(src, dst)
        }
        try s.sql(nil, "CREATE DATABASE `\(src)`")
        try s.sql(
            src,
            """
            CREATE TABLE events (id INT PRIMARY KEY AUTO_INCREMENT, payload TEXT);
            INSERT INTO events (payload) SELECT REPEAT(MD5(seq), 30) FROM seq_1_to_60000;
            """
        )
        // A writer commits one row at a time from before the pack until after it: the test waits for it to have
        // written before packing, and stops it only once rows exist beyond what the archive counted.
        let count = { Int(try s.sql(src, "SELECT COUNT(*) FROM events")) ?? -1 }
        let writer = try StatementStream(
            statement: "INSERT INTO events (payload) VALUES ('w');",
            client: s.bin + "/mariadb",
            s.clientArgs + ["--database=" + src],
            env: ["MYSQL_PWD": s.password]
        )
        defer { writer.stop() }
        let before = try #require(try eventually { try count() > 60000 } ? count() : nil, "the writer never committed")
        let archive = dir + "/busy.sbk"
        let packed = try Sealbak.run(
            [
                "pack", archive, "--mysql", s.url(src), "--mysql-bin", s.bin, "--insecure-test-kdf", "--compression",
                "zlib", "--level", "9",
            ],
            secrets: [s.password]
        )
        #expect(packed.status == 0, "\(packed.stderr)")
        let listed = try Sealbak.run(["list", archive])
        let counted =
            Int(listed.stdout.components(separatedBy: "1 tables, ").last?.split(separator: " ").first ?? "") ?? -1
        #expect(try eventually { try count() > counted }, "the writer stopped before the pack ended")
        writer.stop()
        #expect(
            counted >= before,
            "the archive counted \(counted) rows, fewer than the \(before) committed before it started"
        )
        // The restore recounts and compares: it passes only if the counts describe exactly the dumped rows.
        let restored = try Sealbak.run(
            ["restore", archive, "--mysql-target", s.url(dst), "--mysql-bin", s.bin],
            secrets: [s.password]
        )
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try s.sql(dst, "SELECT COUNT(*) FROM events") == String(counted))
    }

    @Test func aDumpThatDiesMidwayFailsThePackOrIsRecordedAsFailed() throws {
        let s = try MyServer.get()
        let src = MyServer.name("killed")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            s.drop(src)
        }
        try s.sql(nil, "CREATE DATABASE `\(src)`")
        try s.sql(
            src,
            "CREATE TABLE t (i INT, pad TEXT); INSERT INTO t SELECT seq, REPEAT('x', 200) FROM seq_1_to_20000"
        )
        let fake = dir + "/bin"
        try FileManager.default.createDirectory(atPath: fake, withIntermediateDirectories: true)
        try Data(
            """
            #!/bin/sh
            case "$1" in --version) exec "\(s.bin)/mariadb-dump" --version;; esac
            "\(s.bin)/mariadb-dump" "$@" | head -c 300000
            kill -9 $$
            """.utf8
        ).write(to: URL(fileURLWithPath: fake + "/mariadb-dump"))
        chmod(fake + "/mariadb-dump", 0o755)
        let r = try Sealbak.run(
            ["pack", dir + "/a.sbk", "--mysql", s.url(src), "--mysql-bin", fake, "--insecure-test-kdf"],
            secrets: [s.password]
        )
        #expect(
            r.status == 12 && r.stderr.contains("mariadb-dump for \(src) failed") && r.stderr.contains("signal 9"),
            "\(r.stderr)"
        )
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["bin"])
        // Under allow-missing the archive is written, the component is FAILED (exit 15) and never restored.
        let m = try Sealbak.run(
            [
                "pack", dir + "/a.sbk", "--mysql", s.url(src), "--mysql-bin", fake, "--insecure-test-kdf",
                "--allow-missing", src,
            ],
            secrets: [s.password]
        )
        #expect(m.status == 15 && m.stderr.contains("FAILED") && m.stderr.contains("INCOMPLETE"), "\(m.stderr)")
        let listed = try Sealbak.run(["list", dir + "/a.sbk"])
        #expect(listed.stdout.contains("mysql \(src): FAILED while it was packed"), "\(listed.stdout)")
        let v = try Sealbak.run(["verify", dir + "/a.sbk"])
        #expect(v.status == 15, "\(v.stdout)\(v.stderr)")
        let restore = try Sealbak.run(
            ["restore", dir + "/a.sbk", "--mysql-target", s.url(src + "_x"), "--mysql-bin", s.bin],
            secrets: [s.password]
        )
        #expect(restore.status == 9 && restore.stderr.contains("failed when packing"), "\(restore.stderr)")
        #expect(try !s.databases().contains(src + "_x"))
        // A dump tool that exits 0 but writes a cut dump is caught by the stream's own end check.
        try Data(
            """
            #!/bin/sh
            case "$1" in --version) exec "\(s.bin)/mariadb-dump" --version;; esac
            "\(s.bin)/mariadb-dump" "$@" | head -c 300000
            exit 0
            """.utf8
        ).write(to: URL(fileURLWithPath: fake + "/mariadb-dump"))
        let cut = try Sealbak.run(
            ["pack", dir + "/b.sbk", "--mysql", s.url(src), "--mysql-bin", fake, "--insecure-test-kdf"],
            secrets: [s.password]
        )
        #expect(cut.status == 12 && cut.stderr.contains("truncated"), "\(cut.stderr)")
    }

    @Test func aWrongPasswordIsExit11AndNeverPrinted() throws {
        let s = try MyServer.get()
        let src = MyServer.name("cred")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            s.drop(src, src + "_r")
        }
        try s.sql(nil, "CREATE DATABASE `\(src)`; CREATE TABLE `\(src)`.t (i INT); INSERT INTO `\(src)`.t VALUES (1)")
        let wrongPassword = "wrong-\(UUID().uuidString.prefix(8))"
        let wrong = try Sealbak.run(
            ["pack", dir + "/a.sbk", "--mysql", s.url(src, password: wrongPassword), "--insecure-test-kdf"],
            secrets: [wrongPassword, s.password]
        )
        #expect(
            wrong.status == 11 && wrong.stderr.contains("Access denied") && wrong.stderr.contains("root@127.0.0.1"),
            "\(wrong.stderr)"
        )
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        // The password from a file, from MYSQL_PWD: never stored in the archive.
        try Data((s.password + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/pw"))
        let viaFile = try Sealbak.run(
            [
                "pack", dir + "/a.sbk", "--mysql", s.url(src, withPassword: false), "--mysql-password-file",
                dir + "/pw", "--insecure-test-kdf",
            ],
            secrets: [s.password]
        )
        #expect(viaFile.status == 0, "\(viaFile.stderr)")
        let viaEnv = try Sealbak.run(
            ["pack", dir + "/b.sbk", "--mysql", s.url(src, withPassword: false), "--insecure-test-kdf"],
            env: ["MYSQL_PWD": s.password],
            secrets: [s.password]
        )
        #expect(viaEnv.status == 0, "\(viaEnv.stderr)")
        let listed = try Sealbak.run(["list", dir + "/a.sbk", "--json"], secrets: [s.password])
        #expect(listed.status == 0 && listed.stdout.contains("root@127.0.0.1"))
        let badTarget = try Sealbak.run(
            ["restore", dir + "/a.sbk", "--mysql-target", s.url(src + "_r", password: wrongPassword)],
            secrets: [wrongPassword, s.password]
        )
        #expect(badTarget.status == 11 && badTarget.stderr.contains("Access denied"), "\(badTarget.stderr)")
    }

    @Test func aFailedCheckRollsTheRestoreBackAndTheDryRunAgrees() throws {
        let s = try MyServer.get()
        let src = MyServer.name("mism")
        let dst = MyServer.name("mism_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            s.drop(src, dst)
        }
        try createAppDatabase(s, src, rows: 100)
        try createAppDatabase(s, dst, rows: 10)
        let before = try s.digest(dst)
        let plan = dir + "/sealbak.yaml"
        try Data(
            """
            version: 1
            components:
              - name: app
                kind: mysql
                url: \(s.url(src, withPassword: false))
                restore: {url: \(s.url(dst, withPassword: false))}
                checks:
                  - {sql: "SELECT COUNT(*) FROM documents", expect: 100}
                  - {sql: "SELECT COUNT(*) FROM users WHERE name LIKE 'user%'", expect: 49}
            """.utf8
        ).write(to: URL(fileURLWithPath: plan))
        let env = ["MYSQL_PWD": s.password, "SEALBAK_MYSQL_BIN": s.bin]
        let packed = try Sealbak.run(
            ["pack", dir + "/a.sbk", "--plan", plan, "--insecure-test-kdf"],
            env: env,
            secrets: [s.password]
        )
        #expect(packed.status == 0, "\(packed.stderr)")
        let dry = try Sealbak.run(
            ["restore", dir + "/a.sbk", "--plan", plan, "--replace", "--dry-run"],
            env: env,
            secrets: [s.password]
        )
        #expect(dry.status == 0 && dry.stdout.contains("check before the swap"), "\(dry.stdout)\(dry.stderr)")
        let r = try Sealbak.run(
            ["restore", dir + "/a.sbk", "--plan", plan, "--replace"],
            env: env,
            secrets: [s.password]
        )
        #expect(
            r.status == 13 && r.stderr.contains("returned 50, expected 49") && r.stderr.contains("rolled back"),
            "\(r.stderr)"
        )
        #expect(try s.digest(dst) == before)
        #expect(try s.databases().filter { $0.hasPrefix(dst + "_sbk_") }.isEmpty)
    }

    @Test func aKilledRestoresLeftoverIsDroppedAndNamed() throws {
        let s = try MyServer.get()
        let src = MyServer.name("left")
        let dst = MyServer.name("left_dst")
        let dir = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            s.drop(src, dst)
        }
        try s.sql(
            nil,
            "CREATE DATABASE `\(src)`; CREATE TABLE `\(src)`.t (i INT); INSERT INTO `\(src)`.t VALUES (1),(2)"
        )
        #expect(try Sealbak.run(["pack", dir + "/a.sbk", "--mysql", s.url(src), "--insecure-test-kdf"]).status == 0)
        // What a restore killed with SIGKILL while staging leaves.
        try s.sql(nil, "CREATE DATABASE `\(dst)_sbk_new_0badf00d`; CREATE TABLE `\(dst)_sbk_new_0badf00d`.t (i INT)")
        let dry = try Sealbak.run(
            ["restore", dir + "/a.sbk", "--mysql-target", s.url(dst), "--dry-run"],
            secrets: [s.password]
        )
        #expect(
            dry.status == 0 && dry.stdout.contains("\(dst)_sbk_new_0badf00d was left by a killed restore"),
            "\(dry.stdout)"
        )
        let r = try Sealbak.run(["restore", dir + "/a.sbk", "--mysql-target", s.url(dst)], secrets: [s.password])
        #expect(r.status == 0 && r.stderr.contains("dropped the database \(dst)_sbk_new_0badf00d"), "\(r.stderr)")
        #expect(try s.databases().filter { $0.hasPrefix(dst + "_sbk_") }.isEmpty)
        #expect(try s.sql(dst, "SELECT COUNT(*) FROM t") == "2")
    }
}
