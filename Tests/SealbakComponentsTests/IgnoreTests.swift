import SealbakComponents
import Testing

@Suite struct GlobTests {
    @Test(arguments: [
        ("*.md", "readme.md", true), ("*.md", "a/readme.md", false), ("?.txt", "a.txt", true),
        ("?.txt", "/.txt", false),
        ("[a-c]x", "bx", true), ("[a-c]x", "dx", false), ("[!a-c]x", "dx", true), ("[]]", "]", true),
        ("**/foo", "foo", true), ("**/foo", "a/b/foo", true), ("**/foo", "a/b/foox", false),
        ("a/**", "a/b/c", true), ("a/**", "a", false), ("a/**/b", "a/b", true), ("a/**/b", "a/x/y/b", true),
        ("a/**/b", "a/x/y/c", false), ("a**b", "axxb", true), ("a**b", "ax/xb", false), ("\\*x", "*x", true),
        ("\\*x", "ax", false),
        ("foo[", "foo[", true), ("*", "", true), ("", "", true), ("a*b*c", "abxbxc", true), ("a*b*c", "abxbx", false),
    ])
    func globMatches(_ pattern: String, _ text: String, _ expected: Bool) {
        #expect(Glob.match(pattern, text) == expected, "\(pattern) vs \(text)")
    }
}

@Suite struct IgnoreRulesTests {
    func rules(_ text: String, base: String = "") -> IgnoreRules {
        var r = IgnoreRules()
        r.add(file: text, base: base, origin: ".sealbakignore")
        return r
    }

    @Test func unanchoredPatternsMatchNamesAtAnyDepth() {
        let r = rules("*.log\nbuild/\n")
        #expect(r.excluded("a.log", isDirectory: false).0)
        #expect(r.excluded("x/y/a.log", isDirectory: false).0)
        #expect(r.excluded("x/build", isDirectory: true).0)
        #expect(!r.excluded("x/build", isDirectory: false).0, "a trailing slash matches directories only")
        #expect(!r.excluded("a.txt", isDirectory: false).0)
    }

    @Test func anchoredPatternsMatchFromTheirDirectory() {
        let r = rules("/todo.md\ndocs/*.tmp\n")
        #expect(r.excluded("todo.md", isDirectory: false).0)
        #expect(!r.excluded("sub/todo.md", isDirectory: false).0)
        #expect(r.excluded("docs/a.tmp", isDirectory: false).0)
        #expect(!r.excluded("docs/sub/a.tmp", isDirectory: false).0)
        let nested = rules("/only-here.txt\n*.bak\n", base: "guides")
        #expect(nested.excluded("guides/only-here.txt", isDirectory: false).0)
        #expect(
            !nested.excluded("only-here.txt", isDirectory: false).0,
            "rules of guides/.sealbakignore do not reach the root"
        )
        #expect(nested.excluded("guides/x/y.bak", isDirectory: false).0)
        #expect(!nested.excluded("y.bak", isDirectory: false).0)
    }

    @Test func lastMatchWinsAndNegationReincludes() {
        let r = rules("*.md\n!keep.md\n")
        #expect(r.excluded("a.md", isDirectory: false).0)
        #expect(!r.excluded("keep.md", isDirectory: false).0)
        let (excluded, origin) = rules("# comment\n\n*.md\n").excluded("x.md", isDirectory: false)
        #expect(excluded && origin == ".sealbakignore:3")
    }

    @Test func escapesAndTrailingSpaces() {
        let r = rules("\\#hash\n\\!bang\nspaced\\ \ntrail   \n")
        #expect(r.excluded("#hash", isDirectory: false).0)
        #expect(r.excluded("!bang", isDirectory: false).0)
        #expect(r.excluded("spaced ", isDirectory: false).0)
        #expect(r.excluded("trail", isDirectory: false).0)
    }

    @Test func defaultsExcludeTheUsualSuspects() {
        let r = IgnoreRules.defaults()
        for d in [".git", "node_modules", "__pycache__", ".venv", "a/b/node_modules"] {
            #expect(r.excluded(d, isDirectory: true).0, "\(d)")
        }
        #expect(r.excluded("pkg/mod.pyc", isDirectory: false).0)
        #expect(!r.excluded("src", isDirectory: true).0)
    }
}
