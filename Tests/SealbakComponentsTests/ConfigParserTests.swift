import SealbakComponents
import Testing

@Suite struct ConfigParserTests {
    @Test func envFilesGiveKeysAndLineNumbers() {
        let ok = ConfigParser.check("# comment\nexport OPENAI_API_KEY=sk-x\nDATABASE_URL=\"postgres://a:b@h/db\"\nMULTI=\"line one\nline two\"\nEMPTY=\n", as: .env)
        #expect(ok.valid && ok.keys == ["OPENAI_API_KEY", "DATABASE_URL", "MULTI", "EMPTY"])
        #expect(ok.secretKeys == ["OPENAI_API_KEY", "DATABASE_URL"])
        #expect(ConfigParser.check("A=1\nthis is not an assignment\n", as: .env).error == "line 2: expected KEY=VALUE")
        #expect(ConfigParser.check("A=1\n\nB=\"open\n", as: .env).error == "line 3: unterminated double-quoted value")
        #expect(ConfigParser.check("1X=2\n", as: .env).error?.hasPrefix("line 1:") == true)
    }

    @Test func jsonNestedKeysAndErrors() {
        let ok = ConfigParser.check(#"{"server": {"port": 8080, "auth": {"token": "t"}}, "models": [{"api_key": "k"}]}"#, as: .json)
        #expect(ok.valid)
        #expect(Set(ok.secretKeys) == ["server.auth", "server.auth.token", "models[0].api_key"])
        let bad = ConfigParser.check("{\n  \"a\": 1,\n  \"b\": \n}\n", as: .json)
        #expect(bad.error?.hasPrefix("line ") == true, "\(bad.error ?? "")")
    }

    @Test func yamlKeysAndErrorPositions() {
        let ok = ConfigParser.check("server:\n  host: 127.0.0.1\n  password: hunter2\nretrieval: {top_k: 8}\n", as: .yaml)
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
        #expect(r.keys.contains("server.port") && r.keys.contains("database.inline.api_key") && r.keys.contains("models.name"))
        #expect(Set(r.secretKeys) == ["database.password", "database.inline.api_key"])
        let cases: [(String, String)] = [
            ("a = 1\na = 2\n", "line 2: the key a is defined twice"),
            ("[t]\nx = 1\n[t]\n", "line 3: the table [t] is defined twice"),
            ("a = hello\n", "line 1: \"hello\" is not a TOML value (strings need quotes)"),
            ("a = \"open\n", "line 1: a single-line string ends at the end of the line"),
            ("a = [1, 2\n", "line 2: unterminated array"),
            ("key\n", "line 1: expected = after the key key"),
            ("a = 1 b = 2\n", "line 1: unexpected \"b\" after the value; one key = value per line"),
            ("a = 012\n", "line 1: \"012\" is not a TOML value (strings need quotes)"),
        ]
        for (text, expected) in cases {
            #expect(ConfigParser.check(text, as: .toml).error == expected, "\(text)")
        }
    }

    @Test func secretNamesAreJudgedByNameOnly() {
        for k in ["PASSWORD", "db.password", "OPENAI_API_KEY", "stripeSecret", "auth_token", "AWS_SECRET_ACCESS_KEY", "key", "DATABASE_URL", "client-secret", "apiKey", "HF_TOKEN", "bearerToken"] {
            #expect(SecretNames.looksSecret(k), "\(k)")
        }
        for k in ["keyboard_layout", "monkey", "host", "port", "title", "top_k", "tokenizer_path", "max_tokens", "author", "keys_dir"] {
            #expect(!SecretNames.looksSecret(k), "\(k)")
        }
        #expect(ConfigFormat.detect(".env.local") == .env && ConfigFormat.detect("app.YML") == .yaml && ConfigFormat.detect("x.txt") == nil)
    }
}
