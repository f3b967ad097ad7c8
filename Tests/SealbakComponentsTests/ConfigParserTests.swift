import Foundation
import SealbakIO
import Testing

@testable import SealbakComponents

@Suite struct ConfigParserTests {
    @Test func envFilesGiveKeysAndLineNumbers() {
        let ok = ConfigParser.check(
            "# comment\nexport OPENAI_API_KEY=sk-x\nDATABASE_URL=\"postgres://a:b@h/db\"\nMULTI=\"line one\nline "
                + "two\"\nEMPTY=\n",
            as: .env
        )
        #expect(ok.valid && ok.keys == ["OPENAI_API_KEY", "DATABASE_URL", "MULTI", "EMPTY"])
        #expect(ok.secretKeys == ["OPENAI_API_KEY", "DATABASE_URL"])
        #expect(ConfigParser.check("A=1\nthis is not an assignment\n", as: .env).error == "line 2: expected KEY=VALUE")
        #expect(ConfigParser.check("A=1\n\nB=\"open\n", as: .env).error == "line 3: unterminated double-quoted value")
        #expect(ConfigParser.check("1X=2\n", as: .env).error?.hasPrefix("line 1:") == true)
    }

    @Test func jsonNestedKeysAndErrors() {
        let ok = ConfigParser.check(
            #"{"server": {"port": 8080, "auth": {"token": "t"}}, "models": [{"api_key": "k"}]}"#,
            as: .json
        )
        #expect(ok.valid)
        #expect(Set(ok.secretKeys) == ["server.auth", "server.auth.token", "models[0].api_key"])
        let bad = ConfigParser.check("{\n  \"a\": 1,\n  \"b\": \n}\n", as: .json)
        #expect(bad.error?.hasPrefix("line ") == true, "\(bad.error ?? "")")
    }

    @Test func yamlKeysAndErrorPositions() {
        let ok = ConfigParser.check(
            "server:\n  host: 127.0.0.1\n  password: hunter2\nretrieval: {top_k: 8}\n",
            as: .yaml
        )
        #expect(ok.valid && ok.keys.contains("server.host") && ok.keys.contains("retrieval.top_k"))
        #expect(ok.secretKeys == ["server.password"])
        let bad = ConfigParser.check("a: 1\nb: [1, 2\nc: 3\n", as: .yaml)
        #expect(bad.error?.hasPrefix("line ") == true, "\(bad.error ?? "")")
        #expect(ConfigParser.check("a: 1\n  b: 2\n", as: .yaml).error != nil)
    }

    @Test func tomlValidatesTheGrammarAndFindsKeys() {
        let doc = """
            # app settings
            title = "demo"
            [server]
            host = "127.0.0.1"  # trailing comment
            port = 8_080
            ratio = 0.5e-3
            enabled = true
            started = 1979-05-27T07:32:00Z
            tags = [ "a",
                     "b", ]  
            [database]
            url = 'postgres://x'
            password = \"\"\"multi
            line\"\"\"
            inline = { user = "u", api_key = "k" }
            [[models]]
            name = "a"
            [[models]]
            name = "b"
            """
        let r = ConfigParser.check(doc, as: .toml)
        #expect(r.valid, "\(r.error ?? "")")
        #expect(
            r.keys.contains("server.port") && r.keys.contains("database.inline.api_key")
                && r.keys.contains("models.name")
        )
        #expect(Set(r.secretKeys) == ["database.password", "database.inline.api_key"])
        let cases: [(String, String)] = [
            ("a = 1\na = 2\n", "line 2: the key a is defined twice"),
            ("[t]\nx = 1\n[t]\n", "line 3: the table [t] is defined twice"),
            ("a = hello\n", "line 1: \"hello\" is not a TOML value (strings need quotes)"),
            ("a = \"open\n", "line 1: a single-line string ends at the end of the line"),
            ("a = [1, 2\n", "line 2: unterminated array"),
            ("key\n", "line 1: expected = after the key key"),
            ("a = 1 b = 2\n", "line 1: unexpected \"b\" after the value; one key = value per line"),
            ("a = 012\n", "line 1: \"012\" is not a TOML value (leading zeros are not allowed)"),
        ]
        for (text, expected) in cases {
            #expect(ConfigParser.check(text, as: .toml).error == expected, "\(text)")
        }
    }

    @Test func secretNamesAreJudgedByNameOnly() {
        for k in [
            "PASSWORD", "db.password", "OPENAI_API_KEY", "stripeSecret", "auth_token", "AWS_SECRET_ACCESS_KEY", "key",
            "DATABASE_URL", "client-secret", "apiKey", "HF_TOKEN", "bearerToken",
        ] {
            #expect(SecretNames.looksSecret(k), "\(k)")
        }
        for k in [
            "keyboard_layout", "monkey", "host", "port", "title", "top_k", "tokenizer_path", "max_tokens", "author",
            "keys_dir",
        ] {
            #expect(!SecretNames.looksSecret(k), "\(k)")
        }
        #expect(
            ConfigFormat.detect(".env.local") == .env && ConfigFormat.detect("app.YML") == .yaml
                && ConfigFormat.detect("x.txt") == nil
        )
    }

    @Test func urlPasswordsAreFoundUnderAnyKeyInEveryFormat() {
        let env = ConfigParser.check(
            "DATABASE=postgresql://u:p@h/db\nPLAIN=https://example.org/a:b@c\n"
                + "REDIS=redis://:pw@h:6379\nUSER_ONLY=https://u@h\n",
            as: .env
        )
        #expect(env.credentialKeys == ["DATABASE", "REDIS"])
        #expect(env.secretKeys == ["DATABASE", "REDIS"])
        let yaml = ConfigParser.check(
            "db:\n  url: postgresql://u:p@h/db\n  host: h\nlist:\n  - mysql://a:b@h\n",
            as: .yaml
        )
        #expect(yaml.credentialKeys == ["db.url", "list"], "\(yaml)")
        let json = ConfigParser.check(
            #"{"db": {"url": "postgresql://u:p@h/db", "host": "h"}, "urls": ["x://a:b@h"], "n": 1}"#,
            as: .json
        )
        #expect(Set(json.credentialKeys) == ["db.url", "urls"], "\(json)")
        let toml = ConfigParser.check(
            "[db]\nurl = \"postgresql://u:p@h/db\"\nurls = ['x://a:b@h']\nhost = \"https://example.org/x\"\ninline = "
                + "{ dsn = \"amqp://g:g@rabbit\" }\n",
            as: .toml
        )
        #expect(toml.credentialKeys == ["db.url", "db.urls", "db.inline.dsn"], "\(toml)")
        #expect(toml.secretKeys == ["db.url", "db.urls", "db.inline.dsn"])
        for clean in [
            "https://example.org", "https://user@host/x", "mailto:a@b", "http://[::1]:80/", "ssh://git@host:22/r",
            "a:b@c", "://u:p@h",
            "postgresql://u:\(redactedPlaceholder)@h/db",
        ] {
            #expect(!URLCredentials.holdsPassword(clean), "\(clean)")
        }
    }

    @Test func urlPasswordsAreReplacedAndTheRestKept() {
        let cases: [(String, String)] = [
            ("postgresql://u:p@h/db", "postgresql://u:\(redactedPlaceholder)@h/db"),
            (
                "postgresql+psycopg://app:s3cr3t@db:5432/app?sslmode=require",
                "postgresql+psycopg://app:\(redactedPlaceholder)@db:5432/app?sslmode=require"
            ),
            ("redis://:pw@h:6379/0", "redis://:\(redactedPlaceholder)@h:6379/0"),
            ("mongodb://u:p@ss@h", "mongodb://u:\(redactedPlaceholder)@h"),
            ("a=x://u:1@h b=y://v:2@i", "a=x://u:\(redactedPlaceholder)@h b=y://v:\(redactedPlaceholder)@i"),
            ("no url here", "no url here"),
            ("https://user@host/path", "https://user@host/path"),
            ("postgresql://u:\(redactedPlaceholder)@h/db", "postgresql://u:\(redactedPlaceholder)@h/db"),
        ]
        for (input, expected) in cases { #expect(URLCredentials.redact(input) == expected, "\(input)") }
    }

    static func redacted(_ text: String, _ format: ConfigFormat) throws -> (String, [String]) {
        try Redactor.redact(text, format: format, check: ConfigParser.check(text, as: format), file: "f")
    }

    @Test func tomlRedactionKeepsCommentsAndLayout() throws {
        let text = """
            # top comment
            [database]
            password = "hunter2"  # the db password
            url = "postgresql://app:s3cret@db:5432/app" # primary
            host = "db" # host
            secret = ["a", "b"] # an array
            api_key = \"\"\"
            multi
            line\"\"\" # after a multi-line string
            pin = 1234 # a number
            inline = { token = 'tok', port = 5432 } # inline
            [[models]]
            name = "a"
            endpoint = 'https://u:model-pw@models.example/v1' # models
            """
        let (out, keys) = try Self.redacted(text, .toml)
        let p = "\"\(redactedPlaceholder)\""
        #expect(
            out == """
                # top comment
                [database]
                password = \(p)  # the db password
                url = "postgresql://app:\(redactedPlaceholder)@db:5432/app" # primary
                host = "db" # host
                secret = \(p) # an array
                api_key = \(p) # after a multi-line string
                pin = 1234 # a number
                inline = { token = \(p), port = 5432 } # inline
                [[models]]
                name = "a"
                endpoint = 'https://u:\(redactedPlaceholder)@models.example/v1' # models
                """,
            "\(out)"
        )
        #expect(
            keys == [
                "database.api_key", "database.inline.token", "database.password", "database.secret", "database.url",
                "models.endpoint",
            ]
        )
        for secret in ["hunter2", "s3cret", "tok'", "multi\nline", "model-pw"] { #expect(!out.contains(secret)) }
    }

    @Test func envYamlAndJsonRedactionKeepCommentsAndFindURLs() throws {
        let (env, envKeys) = try Self.redacted(
            "# comment\nAPI_KEY=sk-1 # inline comment\nDATABASE=postgresql://u:pw@h/db # db\nexport TOKEN=\"a b\" # "
                + "quoted\nMODEL=mini # kept\n",
            .env
        )
        #expect(
            env
                == "# comment\nAPI_KEY=\(redactedPlaceholder) # inline "
                + "comment\nDATABASE=postgresql://u:\(redactedPlaceholder)@h/db # db\nexport "
                + "TOKEN=\(redactedPlaceholder) # quoted\nMODEL=mini # kept\n",
            "\(env)"
        )
        #expect(envKeys == ["API_KEY", "DATABASE", "TOKEN"])
        let (yaml, yamlKeys) = try Self.redacted(
            "# top\nserver:\n  password: hunter2 # pw\n  url: \"postgresql://u:pw@h/db\"  # db\n  name: 'it''s' # "
                + "kept\n",
            .yaml
        )
        #expect(
            yaml
                == "# top\nserver:\n  password: \"\(redactedPlaceholder)\" # pw\n  url: "
                + "\"postgresql://u:\(redactedPlaceholder)@h/db\"  # db\n  name: 'it''s' # kept\n",
            "\(yaml)"
        )
        #expect(yamlKeys == ["server.password", "server.url"])
        let (json, jsonKeys) = try Self.redacted(
            #"{"url": "postgresql://u:pw@h/db", "api_key": "k", "list": ["x://a:b@h"]}"#,
            .json
        )
        let decoded = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(decoded?["url"] as? String == "postgresql://u:\(redactedPlaceholder)@h/db")
        #expect(decoded?["api_key"] as? String == redactedPlaceholder)
        #expect(decoded?["list"] as? [String] == ["x://a:\(redactedPlaceholder)@h"])
        #expect(jsonKeys == ["api_key", "list", "url"])
    }

    @Test func aURLPasswordItCannotFindInTheTextIsRefused() {
        // The colon is escaped, so the text shows no "user:password@" although the value has one.
        #expect(throws: SealbakError.self) { try Self.redacted(#"url = "postgresql://u\u003Ap@h/db""#, .toml) }
        do {
            _ = try Self.redacted(#"url = "postgresql://u\u003Ap@h/db""#, .toml)
        } catch {
            let message = (error as? SealbakError)?.message ?? ""
            #expect(message.contains("cannot redact f safely") && message.contains("under url"), "\(message)")
        }
        // An escape inside the password itself is fine: the whole escaped text is replaced.
        #expect(
            (try? Self.redacted(#"url = "postgresql://u:p\u0040w@h/db""#, .toml).0)
                == #"url = "postgresql://u:<redacted-by-sealbak>@h/db""#
        )
    }

    @Test func aSecretNamedTableWithoutSecretValuesIsRefusedWithAReason() {
        do {
            _ = try Self.redacted("[secrets.prod]\nregion = 'eu'\n", .toml)
            Issue.record("a table named like a secret was packed with nothing redacted")
        } catch {
            let message = (error as? SealbakError)?.message ?? ""
            #expect(message.contains("secrets is named like a secret but holds a table or list"), "\(message)")
        }
        // A secret-named table whose values are secrets too is fine.
        #expect(
            (try? Self.redacted("[credentials]\npassword = 'x' # kept\n", .toml).0)
                == "[credentials]\npassword = \"\(redactedPlaceholder)\" # kept\n"
        )
    }

    @Test func everyFormatsMessageIsOneLine() {
        let broken: [(String, ConfigFormat)] = [
            ("a:\n\tb: 1\n", .yaml), ("a: \u{7}\n", .yaml), ("a: [\u{FEFF}\n", .yaml), ("a: 1\n\u{FEFF}b: [\n", .yaml),
            ("{\"a\": \"\u{1}\"}", .json), ("{\n\u{FEFF}}", .json),
            ("\u{FEFF}\u{FEFF}A=1\n", .env), ("A\u{7}=1\n", .env), ("A=\"x\n", .env),
            ("a = \"\u{1B}[2J\"\n", .toml), ("\u{FEFF}\u{FEFF}a = 1\n", .toml),
        ]
        for (text, format) in broken {
            let check = ConfigParser.check(text, as: format)
            guard let error = check.error else {
                Issue.record("\(text.debugDescription) parsed as \(format)")
                continue
            }
            #expect(
                !error.unicodeScalars.contains {
                    $0.value < 0x20 || $0.value == 0x7F || $0.properties.generalCategory == .format
                },
                "\(format): \(error.debugDescription)"
            )
        }
    }

    @Test func secretKeyNamesAreRecordedEscaped() {
        let check = ConfigParser.check(#""a\nb token" = 1"# + "\n" + #""\u001b[2J password" = 2"#, as: .toml)
        #expect(check.secretKeys == ["a\nb token", "\u{1B}[2J password"])
        let facts = ConfigFileFacts(format: .toml, check: check)
        let secrets = facts.metadata.first { $0.0 == "config.secrets" }?.1
        #expect(secrets == #"a\nb token,\x1b[2J password"#)
    }
}
