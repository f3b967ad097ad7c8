import Foundation
import SealbakTestSupport
import Testing

/// `pack --config`: parse checks, secret names, `--redact-secrets`, and restore with the parse check.
@Suite struct ConfigComponentTests {
    static let secrets = ["sk-live-7f3a9c", "hunter2-db", "tok-123456", "toml-pw-99"]

    static func configFolder(_ dir: String, broken: Bool) throws -> String {
        let cfg = dir + "/cfg"
        try DocsComponentTests.write(
            cfg + "/.env",
            "# keys\nOPENAI_API_KEY=\(secrets[0])\nexport "
                + "DATABASE_URL=\"postgres://app:\(secrets[1])@db/app\"\nMODEL=mini\n"
        )
        try DocsComponentTests.write(
            cfg + "/app.yaml",
            "server:\n  host: 127.0.0.1\n  auth:\n    token: \(secrets[2])\nretrieval: {top_k: 8}\n"
        )
        try DocsComponentTests.write(
            cfg + "/settings.json",
            "{\"chunk_size\": 512, \"providers\": {\"api_key\": \"\(secrets[0])\"}}\n"
        )
        try DocsComponentTests.write(
            cfg + "/pyproject.toml",
            "[tool.app]\nname = \"demo\"\n[database]\npassword = \"\(secrets[3])\"\n"
        )
        try DocsComponentTests.write(cfg + "/notes.txt", "not a config")
        if broken { try DocsComponentTests.write(cfg + "/broken.json", "{\n  \"a\": 1,\n  \"b\": \n}\n") }
        return cfg
    }

    @Test func configsAreCheckedSecretsNamedAndBrokenFilesFlagged() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cfg = try Self.configFolder(dir, broken: true)
        let packed = try CLITests.run(["pack", dir + "/a.sbk", "--config", cfg, "--insecure-test-kdf"])
        #expect(packed.status == 0, "\(packed.stderr)")
        #expect(
            packed.stderr.contains("broken.json: line 4") && packed.stderr.contains("packed anyway"),
            "\(packed.stderr)"
        )
        let listed = try CLITests.run(["list", dir + "/a.sbk"])
        #expect(
            listed.stdout.contains("config cfg: ok, 5 config file(s), contains 6 secret(s), 1 BROKEN"),
            "\(listed.stdout)"
        )
        #expect(listed.stdout.contains(".env: env, secrets: OPENAI_API_KEY, DATABASE_URL"))
        #expect(listed.stdout.contains("app.yaml: yaml, secrets: server.auth, server.auth.token"))
        #expect(listed.stdout.contains("pyproject.toml: toml, secrets: database.password"))
        for s in Self.secrets { #expect(!listed.stdout.contains(s), "a secret value reached the listing") }
        let json = try CLITests.run(["list", dir + "/a.sbk", "--json"])
        for s in Self.secrets { #expect(!json.stdout.contains(s), "a secret value reached the manifest") }
        // Without redaction the values are kept (it is a backup), and restore re-parses every valid config.
        let restored = try CLITests.run(["restore", dir + "/a.sbk", "--to", dir + "/out"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try String(contentsOfFile: dir + "/out/cfg/.env", encoding: .utf8).contains(Self.secrets[0]))
    }

    @Test func redactSecretsLeavesNoSecretValueInTheArchive() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cfg = try Self.configFolder(dir, broken: false)
        let packed = try CLITests.run([
            "pack", dir + "/r.sbk", "--config", "app-config=" + cfg, "--redact-secrets", "--insecure-test-kdf",
        ])
        #expect(packed.status == 0 && packed.stderr.contains("5 value(s) redacted"), "\(packed.stderr)")
        // The component's record counts the bytes stored (redacted), so verify agrees with the entries.
        let verified = try CLITests.run(["verify", dir + "/r.sbk"])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(try CLITests.run(["unpack", dir + "/r.sbk", "--to", dir + "/u"]).status == 0)
        let tree = try CLITests.tree(dir + "/u")
        for (path, data) in tree {
            let text = String(decoding: data, as: UTF8.self)
            for s in Self.secrets { #expect(!text.contains(s), "\(path) still holds a secret value") }
        }
        let env = String(decoding: tree["config/app-config/.env"] ?? Data(), as: UTF8.self)
        #expect(env.contains("OPENAI_API_KEY=<redacted-by-sealbak>") && env.contains("MODEL=mini"))
        // The redacted copies still parse: restore checks them.
        let restored = try CLITests.run(["restore", dir + "/r.sbk", "--to", dir + "/out"])
        #expect(restored.status == 0, "\(restored.stderr)")
        // A secret that cannot be redacted on one line is refused, not packed half-redacted.
        try DocsComponentTests.write(cfg + "/multi.yaml", "password: |\n  line one\n  line two\n")
        let refused = try CLITests.run([
            "pack", dir + "/m.sbk", "--config", cfg, "--redact-secrets", "--insecure-test-kdf",
        ])
        #expect(
            refused.status == 64 && refused.stderr.contains("cannot redact") && refused.stderr.contains("multi.yaml"),
            "\(refused.stderr)"
        )
        #expect(!FileManager.default.fileExists(atPath: dir + "/m.sbk"))
    }

    @Test func aSingleConfigFileIsAComponentToo() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cfg = try Self.configFolder(dir, broken: false)
        #expect(
            try CLITests.run(["pack", dir + "/a.sbk", "--config", cfg + "/.env", "--insecure-test-kdf"]).status == 0
        )
        let listed = try CLITests.run(["list", dir + "/a.sbk"])
        #expect(listed.stdout.contains("config env: ok, 1 config file(s), contains 2 secret(s)"), "\(listed.stdout)")
        // A component packed from one file restores to a file path, not FILE/FILE (regression).
        let original = try String(contentsOfFile: cfg + "/.env", encoding: .utf8)
        #expect(try CLITests.run(["restore", dir + "/a.sbk", "--target", "env=" + dir + "/back.env"]).status == 0)
        #expect(try String(contentsOfFile: dir + "/back.env", encoding: .utf8) == original)
        // …and onto its own path, replacing the file there (kept aside with --keep-replaced).
        try "CHANGED=1\n".write(toFile: cfg + "/.env", atomically: true, encoding: .utf8)
        let refused = try CLITests.run(["restore", dir + "/a.sbk", "--target", "env=" + cfg + "/.env"])
        #expect(refused.status == 7, "\(refused.stderr)")
        let again = try CLITests.run([
            "restore", dir + "/a.sbk", "--target", "env=" + cfg + "/.env", "--replace", "--keep-replaced",
        ])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try String(contentsOfFile: cfg + "/.env", encoding: .utf8) == original)
        let kept = try FileManager.default.contentsOfDirectory(atPath: cfg).filter {
            $0.hasPrefix(".env.sbk-replaced-")
        }
        #expect(kept.count == 1)
        #expect(try kept.first.map { try String(contentsOfFile: cfg + "/" + $0, encoding: .utf8) } == "CHANGED=1\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: cfg).allSatisfy { !$0.contains("sealbak-restore") })
    }

    /// Passwords inside URLs under ordinary key names, in every format, and comments kept by `--redact-secrets`.
    @Test func redactSecretsFindsURLPasswordsAndKeepsComments() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cfg = dir + "/cfg"
        let passwords = ["env-url-pw", "yaml-url-pw", "json-url-pw", "toml-url-pw", "toml-named-pw"]
        try DocsComponentTests.write(
            cfg + "/.env",
            "# database\nDATABASE=postgresql://app:\(passwords[0])@db/app # primary\nMODEL=mini\n"
        )
        try DocsComponentTests.write(
            cfg + "/app.yaml",
            "# cache\ncache:\n  server: redis://:\(passwords[1])@cache:6379/0 # redis\n"
        )
        try DocsComponentTests.write(cfg + "/app.json", "{\"broker\": \"amqp://guest:\(passwords[2])@rabbit/\"}\n")
        try DocsComponentTests.write(
            cfg + "/app.toml",
            "# settings\n[db]\nendpoint = \"mysql://root:\(passwords[3])@127.0.0.1/app\" # main db\npassword = "
                + "'\(passwords[4])' # named\nport = 3306 # kept\n"
        )
        let listedBefore = try CLITests.run(["pack", dir + "/plain.sbk", "--config", cfg, "--insecure-test-kdf"])
        #expect(listedBefore.status == 0, "\(listedBefore.stderr)")
        let listed = try CLITests.run(["list", dir + "/plain.sbk"])
        #expect(listed.stdout.contains(".env: env, secrets: DATABASE"), "\(listed.stdout)")
        #expect(listed.stdout.contains("app.toml: toml, secrets: db.endpoint, db.password"), "\(listed.stdout)")
        for p in passwords { #expect(!listed.stdout.contains(p), "a URL password reached the listing") }

        let packed = try CLITests.run([
            "pack", dir + "/r.sbk", "--config", cfg, "--redact-secrets", "--insecure-test-kdf",
        ])
        #expect(packed.status == 0 && packed.stderr.contains("5 value(s) redacted"), "\(packed.stderr)")
        // The component's record counts the bytes stored (redacted), so verify agrees with the entries.
        let verified = try CLITests.run(["verify", dir + "/r.sbk"])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(try CLITests.run(["unpack", dir + "/r.sbk", "--to", dir + "/u"]).status == 0)
        let tree = try CLITests.tree(dir + "/u")
        for (path, data) in tree {
            let text = String(decoding: data, as: UTF8.self)
            for p in passwords { #expect(!text.contains(p), "\(path) still holds a password") }
        }
        func file(_ name: String) -> String { String(decoding: tree["config/cfg/" + name] ?? Data(), as: UTF8.self) }
        #expect(
            file(".env") == "# database\nDATABASE=postgresql://app:<redacted-by-sealbak>@db/app # primary\nMODEL=mini\n"
        )
        #expect(file("app.yaml") == "# cache\ncache:\n  server: redis://:<redacted-by-sealbak>@cache:6379/0 # redis\n")
        #expect(file("app.json").contains("amqp://guest:<redacted-by-sealbak>@rabbit/"))
        #expect(
            file("app.toml")
                == "# settings\n[db]\nendpoint = \"mysql://root:<redacted-by-sealbak>@127.0.0.1/app\" # main "
                + "db\npassword = \"<redacted-by-sealbak>\" # named\nport = 3306 # kept\n"
        )
        #expect(try CLITests.run(["restore", dir + "/r.sbk", "--to", dir + "/out"]).status == 0)
    }
}
