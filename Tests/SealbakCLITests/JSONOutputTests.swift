import Foundation
import SealbakTestSupport
import Testing

/// Every `--json` document (and every `--json --progress` line) of every command that reports something is valid
/// against docs/json-schema.json, checked by a real JSON Schema validator (Python jsonschema from PyPI,
/// scripts/jsonschema-python); and the conventions of docs/json.md hold where a schema cannot say it.
@Suite struct JSONOutputTests {
    static let env = ["SEALBAK_PASSWORD": "json-\(UUID().uuidString)"]

    static func sb(_ args: [String]) throws -> Proc.Result { try Proc.run(Proc.sealbakBinary, args, env: env) }

    /// An archive with docs, config (with a URL password, redacted), SQLite and a loose file.
    static func archive(in dir: String) throws -> String {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/kb/sub", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/cfg", withIntermediateDirectories: true)
        try "# notes\n".write(toFile: dir + "/kb/a.md", atomically: false, encoding: .utf8)
        try "b\n".write(toFile: dir + "/kb/sub/b.md", atomically: false, encoding: .utf8)
        try "DATABASE_URL=postgresql://app:hunter2@db/app\nAPI_TOKEN=abc\n".write(
            toFile: dir + "/cfg/.env",
            atomically: false,
            encoding: .utf8
        )
        let tool = Proc.root + "/scripts/sqlite-tool.py"
        let made = try Proc.run("/usr/bin/env", ["python3", tool, "make", dir + "/app.sqlite3", "20"])
        guard made.status == 0 else { throw TestFailure(made.stderr) }
        try """
        app: {name: "json test", version: "2"}
        components:
          - {kind: docs, name: kb, path: \(dir)/kb}
          - {kind: config, name: cfg, path: \(dir)/cfg}
          - {kind: sqlite, name: app, path: \(dir)/app.sqlite3}
        """.write(toFile: dir + "/plan.yaml", atomically: false, encoding: .utf8)
        return dir + "/a.sbk"
    }

    @Test func everyDocumentIsValidAgainstTheSchema() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Self.archive(in: dir)
        var stdout: [String] = []
        var stderr: [String] = []
        func run(_ args: [String], status: Int32 = 0) throws {
            let r = try Self.sb(args)
            #expect(r.status == status, "\(args): \(r.stderr)")
            #expect(r.stdout.split(separator: "\n").count == 1, "\(args): one document expected: \(r.stdout)")
            stdout.append(r.stdout)
            stderr.append(r.stderr.split(separator: "\n").filter { $0.hasPrefix("{") }.joined(separator: "\n"))
        }
        try run([
            "pack", a, "--plan", dir + "/plan.yaml", "--redact-secrets", "--insecure-test-kdf", "--json", "--progress",
        ])
        try run(["list", a, "--json"])
        try run(["verify", a, "--json", "--progress"])
        try run(["inspect", a, "--json"])
        try run(["key", "list", a, "--json"])
        try run(["unpack", a, "--to", dir + "/out", "--json", "--progress"])
        try run(["restore", a, "--to", dir + "/r", "--dry-run", "--json"])
        try run(["restore", a, "--to", dir + "/r", "--json", "--progress"])
        // Key changes, keygen, rekey.
        let newPW = ["SEALBAK_NEW_PASSWORD": "second-\(UUID().uuidString)"]
        func runEnv(_ args: [String], _ env: [String: String]) throws {
            let r = try Proc.run(Proc.sealbakBinary, args, env: Self.env.merging(env) { _, b in b })
            #expect(r.status == 0, "\(args): \(r.stderr)")
            #expect(r.stdout.split(separator: "\n").count == 1, "\(args): one document expected: \(r.stdout)")
            stdout.append(r.stdout)
        }
        try runEnv(["key", "add", a, "--insecure-test-kdf", "--json"], newPW)
        try runEnv(["key", "add", a, "--recovery", "--json"], [:])
        try runEnv(["key", "passwd", a, "--slot", "2", "--insecure-test-kdf", "--json"], newPW)
        try runEnv(["key", "remove", a, "--slot", "2", "--json"], [:])
        try runEnv(["keygen", "-o", dir + "/id", "--no-password", "--json"], [:])
        try runEnv(["rekey", a, "--output", dir + "/rotated.sbk", "--insecure-test-kdf", "--json"], newPW)
        // An incremental pair: its pack documents carry `incremental`.
        try run([
            "pack", dir + "/c1.sbk", "--plan", dir + "/plan.yaml", "--chained", "--chain-state", dir + "/chain",
            "--insecure-test-kdf", "--json",
        ])
        try run([
            "pack", dir + "/c2.sbk", "--plan", dir + "/plan.yaml", "--base", dir + "/c1.sbk", "--chain-state",
            dir + "/chain", "--insecure-test-kdf", "--json",
        ])
        #expect(stdout.last?.contains("\"unchanged_files\"") == true, "\(stdout.last ?? "")")
        // Failures: one error document on stdout, the message on stderr too.
        try run(["list", dir + "/missing.sbk", "--json"], status: 9)
        try run(["restore", a, "--to", dir + "/r", "--dry-run", "--json"], status: 7)
        let wrong = try Proc.run(Proc.sealbakBinary, ["verify", a, "--json"], env: ["SEALBAK_PASSWORD": "wrong"])
        #expect(wrong.status == 3 && wrong.stderr.contains("wrong password"))
        stdout.append(wrong.stdout)

        let docs = dir + "/stdout.jsonl"
        let progress = dir + "/stderr.jsonl"
        try stdout.joined(separator: "\n").write(toFile: docs, atomically: false, encoding: .utf8)
        try stderr.joined(separator: "\n").write(toFile: progress, atomically: false, encoding: .utf8)
        #expect(stderr.joined().contains("\"type\":\"progress\""), "no progress lines: \(stderr)")
        let python = try Proc.run(Proc.root + "/scripts/jsonschema-python", []).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        let v = try Proc.run(
            python,
            [Proc.root + "/scripts/validate-json.py", Proc.root + "/docs/json-schema.json", docs, progress]
        )
        #expect(v.status == 0, "schema violations:\n\(v.stdout)\(v.stderr)")

        // What a schema cannot say: the values mean what docs/json.md says.
        let list = try #require(try JSONSerialization.jsonObject(with: Data(stdout[1].utf8)) as? [String: Any])
        let archive = try #require(list["archive"] as? [String: Any])
        #expect((archive["application"] as? [String: String]) == ["name": "json test", "version": "2"])
        let entries = try #require(list["entries"] as? [[String: Any]])
        let kb = try #require(entries.first { $0["name"] as? String == "docs/kb" })
        let kbMeta = try #require(kb["metadata"] as? [String: Any])
        #expect(kbMeta["docs.files"] as? Int == 2 && kbMeta["docs.rules"] is [String: Any], "\(kbMeta)")
        let db = try #require(entries.first { ($0["metadata"] as? [String: Any])?["component"] as? String == "sqlite" })
        let dbMeta = try #require(db["metadata"] as? [String: Any])
        #expect(dbMeta["sqlite.facts"] is [String: Any] && dbMeta["sqlite.user-version"] as? Int == 7, "\(dbMeta)")
        let file = try #require(entries.first { $0["name"] as? String == "docs/kb/a.md" })
        #expect(file["mode"] as? Int == Int(file["mode_octal"] as? String ?? "", radix: 8))
        // Times are RFC 3339 and mean the file's time.
        var st = stat()
        stat(dir + "/kb/a.md", &st)
        let mtime = try #require(file["mtime"] as? String)
        #expect(mtime.hasPrefix(Self.rfc3339(st.st_mtim.tv_sec)), "\(mtime)")
        // No secret in any document.
        #expect(!stdout.joined().contains("hunter2") && !stderr.joined().contains("hunter2"))
    }

    /// The operations commands and the folder commands: run, history, status, drill, bulk verify, ls, prune.
    @Test func operationsDocumentsAreValidAgainstTheSchema() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/kb", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/backups", withIntermediateDirectories: true)
        try "hello\n".write(toFile: dir + "/kb/a.md", atomically: false, encoding: .utf8)
        try "pw-\(UUID().uuidString)\n".write(toFile: dir + "/pw", atomically: false, encoding: .utf8)
        try """
        app: {name: jsonops}
        components:
          - {kind: docs, name: kb, path: \(dir)/kb}
        password-file: \(dir)/pw
        state-dir: \(dir)/state
        destination: {location: \(dir)/backups, verify: true}
        retention: {keep-last: 1}
        """.write(toFile: dir + "/plan.yaml", atomically: false, encoding: .utf8)
        let plan = ["--plan", dir + "/plan.yaml"]
        for night in ["2026-11-20T02:00:00Z", "2026-11-21T02:00:00Z"] {
            let r = try Proc.run(Proc.sealbakBinary, ["run"] + plan + ["--now", night], env: ["SEALBAK_PASSWORD": ""])
            #expect(r.status == 0, "\(r.stderr)")
        }
        var lines: [String] = []
        func run(_ args: [String], status: Int32 = 0) throws {
            let r = try Proc.run(Proc.sealbakBinary, args, env: ["SEALBAK_PASSWORD": ""])
            #expect(r.status == status, "\(args): \(r.stderr)")
            #expect(r.stdout.split(separator: "\n").count == 1, "\(args): one document expected: \(r.stdout)")
            lines.append(r.stdout)
        }
        try run(["history"] + plan + ["--json"])
        try run(["status"] + plan + ["--json", "--max-age", "1000d"])
        try run(["status"] + plan + ["--json", "--max-age", "1min"], status: 18)
        try run(["drill"] + plan + ["--json"])
        try run(["verify", dir + "/backups", "--json"] + plan)
        try run(["ls", dir + "/backups", "--json"])
        try run(["prune", dir + "/backups", "--keep-last", "1", "--dry-run", "--json"])
        let docs = dir + "/ops.jsonl"
        try lines.joined(separator: "\n").write(toFile: docs, atomically: false, encoding: .utf8)
        let python = try Proc.run(Proc.root + "/scripts/jsonschema-python", []).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        let v = try Proc.run(
            python,
            [Proc.root + "/scripts/validate-json.py", Proc.root + "/docs/json-schema.json", docs]
        )
        #expect(v.status == 0, "schema violations:\n\(v.stdout)\(v.stderr)")
        let history = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        let records = try #require(history["records"] as? [[String: Any]])
        #expect(records.count == 2 && records.allSatisfy { $0["status"] as? String == "ok" }, "\(lines[0])")
        #expect((records.first?["start"] as? String)?.hasPrefix("2026-11-20T02:00:00") == true, "\(lines[0])")
    }

    static func rfc3339(_ t: Int) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(t)))
    }

    @Test func progressNeedsJSONAndJSONNeedsStandardOutput() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "x".write(toFile: dir + "/f", atomically: false, encoding: .utf8)
        let alone = try Self.sb(["pack", dir + "/a.sbk", dir + "/f", "--insecure-test-kdf", "--progress"])
        #expect(alone.status == 64 && alone.stderr.contains("--progress goes with --json"), "\(alone.stderr)")
        let dash = try Self.sb(["pack", "-", dir + "/f", "--insecure-test-kdf", "--json"])
        #expect(dash.status == 64 && dash.stderr.contains("give the archive a file name"), "\(dash.stderr)")
    }
}
