import Foundation
import SealbakTestSupport
import Testing

/// The `command` kind, hooks, checks and the health check, through the built binary with plans written here:
/// a real Redis round trip (scripts/redis-servers starts two servers; SEALBAK_REQUIRE_REDIS=1 turns missing
/// servers into a failure, otherwise the Redis test is skipped), and dumps that fail, hang or print nothing,
/// restores and checks that fail, and hooks.
@Suite struct CommandComponentTests {
    static let env = ProcessInfo.processInfo.environment

    /// The two Redis servers of scripts/redis-servers: A is packed, B is restored into.
    struct Redis {
        var a: String
        var b: String
        var bDir: String
        var bStart: String
        var cli: String
    }

    static var redisConfigured: Bool { env["SEALBAK_TEST_REDIS_A_PORT"] != nil || env["SEALBAK_REQUIRE_REDIS"] == "1" }

    static func redis() throws -> Redis {
        guard let a = env["SEALBAK_TEST_REDIS_A_PORT"], let b = env["SEALBAK_TEST_REDIS_B_PORT"],
            let bDir = env["SEALBAK_TEST_REDIS_B_DIR"],
            let bStart = env["SEALBAK_TEST_REDIS_B_START"]
        else {
            throw TestFailure(
                "SEALBAK_REQUIRE_REDIS=1 but SEALBAK_TEST_REDIS_A_PORT/_B_PORT/_B_DIR/_B_START are not set: "
                    + "scripts/redis-servers did not start"
            )
        }
        return Redis(a: a, b: b, bDir: bDir, bStart: bStart, cli: env["SEALBAK_TEST_REDIS_CLI"] ?? "/usr/bin/redis-cli")
    }

    /// A string as a YAML double-quoted scalar (JSON is valid YAML).
    static func q(_ s: String) -> String {
        let d = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        return String(String(decoding: d, as: UTF8.self).dropFirst().dropLast())
    }

    /// An argument vector as a YAML flow sequence.
    static func argv(_ a: String...) -> String { "[" + a.map(q).joined(separator: ", ") + "]" }

    static func writePlan(_ dir: String, _ yaml: String) throws -> String {
        let path = dir + "/sealbak.yaml"
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func pack(_ archive: String, plan: String, _ extra: [String] = []) throws -> Proc.Result {
        try CLITests.run(["pack", archive, "--plan", plan, "--insecure-test-kdf"] + extra)
    }

    static func write(_ path: String, _ text: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// A docs folder `src` ("new" content) packed as component kb, restored to `live` ("old" content).
    static func docsPair(_ dir: String) throws -> (src: String, live: String) {
        try write(dir + "/src/guide.md", "new guide\n")
        try write(dir + "/src/faq.md", "new faq\n")
        try write(dir + "/live/guide.md", "old guide\n")
        return (dir + "/src", dir + "/live")
    }

    // MARK: Redis

    func redisCLI(_ r: Redis, _ port: String, _ args: [String], stdin: Data? = nil) throws -> String {
        let p = try Proc.run(r.cli, ["-p", port] + args, stdin: stdin)
        guard p.status == 0 else { throw TestFailure("redis-cli -p \(port) \(args) failed (\(p.status)): \(p.stderr)") }
        return p.stdout
    }

    /// Every key with its type, its value (members of hashes and sets sorted: their order after loading an RDB may
    /// differ, so DUMP bytes are not comparable) and whether it expires, sorted by key.
    func snapshot(_ r: Redis, _ port: String) throws -> String {
        let script = """
            local keys = redis.call('KEYS', '*'); table.sort(keys); local out = {}
            local function add(x) out[#out + 1] = x end
            for _, k in ipairs(keys) do
              local t = redis.call('TYPE', k).ok
              add(k); add(t); add(tostring(redis.call('PTTL', k) > 0))
              if t == 'string' then add(redis.call('GET', k))
              elseif t == 'list' then for _, v in ipairs(redis.call('LRANGE', k, 0, -1)) do add(v) end
              elseif t == 'set' then
                local m = redis.call('SMEMBERS', k); table.sort(m); for _, v in ipairs(m) do add(v) end
              elseif t == 'zset' then for _, v in ipairs(redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')) do add(v) end
              elseif t == 'hash' then
                local f = redis.call('HKEYS', k); table.sort(f)
                for _, x in ipairs(f) do add(x); add(redis.call('HGET', k, x)) end
              else add('unexpected type') end
            end
            return out
            """
        return try redisCLI(r, port, ["--no-raw", "EVAL", script, "0"])
    }

    @Test(.enabled(if: redisConfigured, "no Redis test servers (scripts/test starts them with scripts/redis-servers)"))
    func redisRoundTripThroughADumpAndARestoreCommandWithHooksAndAHealthCheck() throws {
        let r = try Self.redis()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // B must be up for the before-restore hook that stops it (a failed earlier run may have left it down).
        if (try? redisCLI(r, r.b, ["PING"]))?.contains("PONG") != true { _ = try Proc.run(r.bStart, []) }

        // Server A: strings, hashes, lists, sets, a sorted set, a binary value, an expiring key, many keys.
        _ = try redisCLI(r, r.a, ["FLUSHALL"])
        _ = try redisCLI(r, r.a, ["SET", "str:greeting", "hello, wörld"])
        _ = try redisCLI(r, r.a, ["SET", "str:counter", "42"])
        _ = try redisCLI(r, r.a, ["HSET", "hash:user:1", "name", "Ada", "email", "ada@example.org", "visits", "7"])
        _ = try redisCLI(r, r.a, ["RPUSH", "list:chat", "first", "second", "third", ""])
        _ = try redisCLI(r, r.a, ["SADD", "set:tags", "rag", "vectors", "backup"])
        _ = try redisCLI(r, r.a, ["ZADD", "zset:rank", "1.5", "a", "2", "b", "-3", "c"])
        _ = try redisCLI(r, r.a, ["SET", "str:session", "expires later", "EX", "86400"])
        let binary = Data((0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        _ = try redisCLI(r, r.a, ["-x", "SET", "bin:blob"], stdin: binary)
        _ = try redisCLI(
            r,
            r.a,
            [
                "EVAL",
                "for i = 1, 3000 do redis.call('SET', 'k:' .. i, string.rep('v', i % 97) .. i) end; for i = 1, 800 "
                    + "do redis.call('HSET', 'hash:big', 'f' .. i, i * i) end",
                "0",
            ]
        )
        let before = try snapshot(r, r.a)
        let count = try redisCLI(r, r.a, ["DBSIZE"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(count == "3009")
        for t in ["\"string\"", "\"hash\"", "\"list\"", "\"set\"", "\"zset\""] {
            #expect(before.contains(t), "type \(t) in A")
        }
        // B holds something else, which the restore must replace.
        _ = try redisCLI(r, r.b, ["FLUSHALL"])
        _ = try redisCLI(r, r.b, ["SET", "junk", "from before the restore"])

        let plan = try Self.writePlan(
            dir,
            """
            version: 1
            app: {name: cache-demo}
            hooks:
              before-restore:
                - \(Self.argv(r.cli, "-p", r.b, "shutdown", "nosave"))
              after-restore:
                - \(Self.argv(r.bStart))
            health-check: {command: \(Self.argv(r.cli, "-p", r.b, "ping")), retries: 20, interval: 0.5, timeout: 5}
            components:
              - name: cache
                kind: command
                dump: {run: \(Self.argv(r.cli, "-p", r.a, "--rdb", "-")), timeout: 120}
                restore: \(Self.argv("sh", "-c", "cat > \"$0/dump.rdb\"", r.bDir))
                check: \(Self.argv("redis-check-rdb", r.bDir + "/dump.rdb"))
            """
        )
        let archive = dir + "/a.sbk"
        let packed = try Self.pack(archive, plan: plan)
        #expect(packed.status == 0, "\(packed.stderr)")
        let list = try CLITests.run(["list", archive])
        #expect(
            list.status == 0 && list.stdout.contains("command cache: ok, the output of \(r.cli) -p \(r.a) --rdb -"),
            "\(list.stdout)"
        )
        #expect(list.stdout.contains("command/cache"))
        let verify = try CLITests.run(["verify", archive])
        #expect(
            verify.status == 0
                && verify.stdout.contains("command cache: ok, the output of \(r.cli) -p \(r.a) --rdb -, ")
                && verify.stdout.contains(" bytes as recorded"),
            "\(verify.stdout)\(verify.stderr)"
        )

        // The dry run names the restore command, the hooks and the health check and changes nothing.
        let dry = try CLITests.run(["restore", archive, "--plan", plan, "--dry-run"])
        #expect(dry.status == 0, "\(dry.stdout)\(dry.stderr)")
        #expect(
            dry.stdout.contains("restore: sh -c")
                && dry.stdout.contains("before the swap: run \(r.cli) -p \(r.b) shutdown nosave")
        )
        #expect(dry.stdout.contains("then health check: \(r.cli) -p \(r.b) ping, 21 tries"))
        #expect(try redisCLI(r, r.b, ["EXISTS", "junk"]).hasPrefix("1"))

        let restored = try CLITests.run(["restore", archive, "--plan", plan])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(
            restored.stderr.contains("health check passed") && restored.stderr.contains("check redis-check-rdb"),
            "\(restored.stderr)"
        )
        let after = try snapshot(r, r.b)
        #expect(after == before, "every key, type, value and expiry of A is in B")
        #expect(try redisCLI(r, r.b, ["DBSIZE"]).trimmingCharacters(in: .whitespacesAndNewlines) == count)
        #expect(try redisCLI(r, r.b, ["EXISTS", "junk"]).hasPrefix("0"))
        #expect(try redisCLI(r, r.b, ["HGET", "hash:user:1", "email"]) == "ada@example.org\n")
        #expect(
            try redisCLI(r, r.b, ["--no-raw", "GET", "bin:blob"]) == redisCLI(r, r.a, ["--no-raw", "GET", "bin:blob"])
        )
        let ttl =
            Int(try redisCLI(r, r.b, ["TTL", "str:session"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        #expect(ttl > 80_000 && ttl <= 86_400)
    }

    // MARK: Dumps that fail, hang, print nothing

    @Test func aFailingDumpFailsThePackNamingTheComponentAndItsStderrAndLeavesNoArchive() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let failingDump = "printf 'partial dump bytes'; echo 'neo4j-admin: database is in use' >&2; exit 1"
        let plan = try Self.writePlan(
            dir,
            """
            version: 1
            components:
              - name: graph
                kind: command
                dump: \(Self.argv("sh", "-c", failingDump))
                restore: \(Self.argv("sh", "-c", "cat > /dev/null"))
            """
        )
        let r = try Self.pack(dir + "/a.sbk", plan: plan)
        #expect(r.status == 12, "\(r.stderr)")
        #expect(r.stderr.contains("command component graph failed while it was captured"), "\(r.stderr)")
        #expect(r.stderr.contains("exit status 1") && r.stderr.contains("neo4j-admin: database is in use"))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir) == ["sealbak.yaml"],
            "no archive and no temporary file is left"
        )
    }

    @Test func aFailingDumpWithAllowMissingIsRecordedAsFailedAndNeverRestored() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (src, _) = try Self.docsPair(dir)
        let marker = dir + "/restore-command-ran"
        let plan = try Self.writePlan(
            dir,
            """
            version: 1
            components:
              - {name: kb, kind: docs, path: \(Self.q(src)), restore: {path: \(Self.q(dir + "/restored-kb"))}}
              - name: graph
                kind: command
                allow-missing: true
                dump: \(Self.argv("sh", "-c", "printf 'partial dump bytes'; echo 'connection reset' >&2; exit 1"))
                restore: \(Self.argv("sh", "-c", "cat > \"$0\"", marker))
            """
        )
        let archive = dir + "/a.sbk"
        let r = try Self.pack(archive, plan: plan)
        #expect(r.status == 15, "\(r.stderr)")
        #expect(
            r.stderr.contains("graph FAILED while it was captured") && r.stderr.contains("connection reset"),
            "\(r.stderr)"
        )
        #expect(r.stderr.contains("INCOMPLETE"))

        let list = try CLITests.run(["list", archive])
        #expect(
            list.status == 0
                && list.stdout.contains(
                    "command graph: FAILED while it was packed (18 partial bytes stored, never restored)"
                ),
            "\(list.stdout)"
        )
        let verify = try CLITests.run(["verify", archive])
        #expect(
            verify.status == 15 && (verify.stdout + verify.stderr).contains("FAILED"),
            "\(verify.stdout)\(verify.stderr)"
        )

        let restored = try CLITests.run(["restore", archive, "--plan", plan])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(restored.stderr.contains("graph is not restored"), "\(restored.stderr)")
        #expect(Self.read(dir + "/restored-kb/guide.md") == "new guide\n")
        #expect(!Self.exists(marker), "the restore command of a failed component must not run")
        let only = try CLITests.run(["restore", archive, "--plan", plan, "--only", "graph"])
        #expect(only.status == 9 && only.stderr.contains("FAILED while it was packed"), "\(only.stderr)")
        #expect(!Self.exists(marker))
    }

    @Test(arguments: [
        ("an argument vector", "{run: [\"sleep\", \"60\"], timeout: 2}"),
        // The shell stays the parent of sleep: killing only the shell would leave sleep holding the pipe for 60 s.
        ("a shell line", "{run: \"sleep 60; echo never\", timeout: 2}"),
    ])
    func aDumpThatHangsIsStoppedAtItsTimeout(_ form: String, _ dump: String) throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = try Self.writePlan(
            dir,
            """
            version: 1
            components:
              - {name: slow, kind: command, dump: \(dump)}
            """
        )
        let start = Date()
        let r = try Self.pack(dir + "/a.sbk", plan: plan)
        let elapsed = Date().timeIntervalSince(start)
        #expect(r.status == 12, "\(form): \(r.stderr)")
        #expect(
            r.stderr.contains("command component slow")
                && r.stderr.contains("did not finish within 2 s and was stopped"),
            "\(form): \(r.stderr)"
        )
        #expect(elapsed < 15, "\(form): the pack took \(elapsed) s")
        #expect(!Self.exists(dir + "/a.sbk"))
    }

    @Test func anEmptyDumpIsRefusedUnlessAllowEmpty() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func plan(_ allowEmpty: Bool) throws -> String {
            try Self.writePlan(
                dir,
                """
                version: 1
                components:
                  - name: empty
                    kind: command
                    dump: [\"true\"]
                    restore: \(Self.argv("sh", "-c", "wc -c < /dev/stdin > \"$0\"", dir + "/restored-bytes"))
                    allow-empty: \(allowEmpty)
                """
            )
        }
        let refused = try Self.pack(dir + "/a.sbk", plan: try plan(false))
        #expect(refused.status == 12, "\(refused.stderr)")
        #expect(
            refused.stderr.contains("exited 0 but printed nothing") && refused.stderr.contains("allow-empty: true"),
            "\(refused.stderr)"
        )
        #expect(!Self.exists(dir + "/a.sbk"))

        let accepted = try Self.pack(dir + "/a.sbk", plan: try plan(true))
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let verify = try CLITests.run(["verify", dir + "/a.sbk"])
        #expect(
            verify.status == 0 && verify.stdout.contains("command empty: ok, the output of true, 0 bytes as recorded"),
            "\(verify.stdout)"
        )
        let restored = try CLITests.run(["restore", dir + "/a.sbk"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(Self.read(dir + "/restored-bytes")?.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }

    @Test func anEmptyStandardInputIsRefusedUnlessAllowEmptyAndPointsToCommandComponents() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let empty = dir + "/empty"
        try Data().write(to: URL(fileURLWithPath: empty))
        let refused = try CLITests.run(
            ["pack", dir + "/a.sbk", "--stdin-name", "neo4j.dump", "--insecure-test-kdf"],
            stdin: empty
        )
        #expect(refused.status == 12, "\(refused.stderr)")
        #expect(
            refused.stderr.contains("standard input was empty") && refused.stderr.contains("command component")
                && refused.stderr.contains("--allow-empty"),
            "\(refused.stderr)"
        )
        #expect(!Self.exists(dir + "/a.sbk"))
        let help = try CLITests.run(["pack", "--help"])
        let helpText = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(
            helpText.contains("a command component, kind: command, also checks the command's exit status"),
            "\(helpText)"
        )

        let accepted = try CLITests.run(
            ["pack", dir + "/a.sbk", "--stdin-name", "neo4j.dump", "--allow-empty", "--insecure-test-kdf"],
            stdin: empty
        )
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let list = try CLITests.run(["list", dir + "/a.sbk", "--json"])
        let doc = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
        let entry = (doc?["entries"] as? [[String: Any]])?.first { $0["name"] as? String == "neo4j.dump" }
        #expect(entry?["size"] as? Int == 0, "\(list.stdout)")
    }

    // MARK: Restores and checks that fail

    /// A docs component and a command component restored in one run; `restore:` and `check:` of the command
    /// component, and the plan's extra top-level YAML, are the test's.
    func packDocsAndCommand(
        _ dir: String,
        restore: String,
        check: String? = nil,
        extra: String = ""
    ) throws -> (plan: String, archive: String, live: String) {
        let (src, live) = try Self.docsPair(dir)
        let plan = try Self.writePlan(
            dir,
            """
            version: 1
            \(extra)
            components:
              - {name: kb, kind: docs, path: \(Self.q(src)), restore: {path: \(Self.q(live))}}
              - name: graph
                kind: command
                dump: \(Self.argv("sh", "-c", "printf 'graph dump'"))
                restore: \(restore)
            \(check.map { "    check: " + $0 } ?? "")
            """
        )
        let archive = dir + "/a.sbk"
        let packed = try Self.pack(archive, plan: plan)
        #expect(packed.status == 0, "\(packed.stderr)")
        return (plan, archive, live)
    }

    @Test func aFailingRestoreCommandRollsBackTheFolderRestoredInTheSameRun() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (plan, archive, live) = try packDocsAndCommand(
            dir,
            restore: Self.argv("sh", "-c", "cat > /dev/null; echo 'load: store is locked' >&2; exit 3")
        )
        let r = try CLITests.run(["restore", archive, "--plan", plan, "--replace"])
        #expect(r.status == 12, "\(r.stderr)")
        #expect(
            r.stderr.contains("graph could not be put in place") && r.stderr.contains("exit status 3")
                && r.stderr.contains("load: store is locked"),
            "\(r.stderr)"
        )
        #expect(r.stderr.contains("rolled back kb"), "\(r.stderr)")
        #expect(
            try CLITests.tree(live) == ["guide.md": Data("old guide\n".utf8)],
            "the folder holds its old content again"
        )

        // The same archive restores once the command works (plan's restore: wins over the recorded one).
        let fixed = try Self.writePlan(
            dir,
            try String(contentsOfFile: plan, encoding: .utf8)
                .replacingOccurrences(of: "echo 'load: store is locked' >&2; exit 3", with: "true")
        )
        let ok = try CLITests.run(["restore", archive, "--plan", fixed, "--replace"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(Self.read(live + "/faq.md") == "new faq\n")
    }

    @Test func aFailingCheckCommandFailsTheRestoreWithExit13() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let got = dir + "/graph-restored"
        let (plan, archive, live) = try packDocsAndCommand(
            dir,
            restore: Self.argv("sh", "-c", "cat > \"$0\"", got),
            check: Self.argv("sh", "-c", "grep -q 'nodes: 42' \"$0\" || { echo 'expected 42 nodes' >&2; exit 1; }", got)
        )
        let r = try CLITests.run(["restore", archive, "--plan", plan, "--replace"])
        #expect(r.status == 13, "\(r.stderr)")
        #expect(r.stderr.contains("the check of graph") && r.stderr.contains("expected 42 nodes"), "\(r.stderr)")
        #expect(r.stderr.contains("rolled back kb") && r.stderr.contains("graph could not be undone"), "\(r.stderr)")
        #expect(Self.read(got) == "graph dump", "the restore command ran before its check")
        #expect(try CLITests.tree(live) == ["guide.md": Data("old guide\n".utf8)])
    }

    @Test func aFailingHealthCheckRollsTheRestoreBack() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tries = dir + "/tries"
        let (src, live) = try Self.docsPair(dir)
        let plan = try Self.writePlan(
            dir,
            """
            version: 1
            health-check:
              command: \(Self.argv("sh", "-c", "echo x >> \"$0\"; echo 'app answers 503' >&2; exit 1", tries))
              retries: 2
              interval: 0.1
            components:
              - {name: kb, kind: docs, path: \(Self.q(src)), restore: {path: \(Self.q(live))}}
            """
        )
        let archive = dir + "/a.sbk"
        #expect(try Self.pack(archive, plan: plan).status == 0)
        let r = try CLITests.run(["restore", archive, "--plan", plan, "--replace"])
        #expect(r.status == 13, "\(r.stderr)")
        #expect(
            r.stderr.contains("the health check") && r.stderr.contains("app answers 503")
                && r.stderr.contains("rolled back kb"),
            "\(r.stderr)"
        )
        #expect(Self.read(tries) == "x\nx\nx\n", "retries: 2 means three tries")
        #expect(try CLITests.tree(live) == ["guide.md": Data("old guide\n".utf8)])
    }

    // MARK: Hooks

    @Test func hooksRunAroundPackAndRestoreAndAFailingBeforePackHookWritesNothing() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (src, live) = try Self.docsPair(dir)
        let archive = dir + "/a.sbk"
        let m = dir + "/markers"
        try FileManager.default.createDirectory(atPath: m, withIntermediateDirectories: true)
        let beforeRestore = Self.q(
            "test -f '\(live)/guide.md' && ! test -f '\(live)/faq.md' && touch '\(m)/before-restore'"
        )
        let stampDump = Self.argv("sh", "-c", "touch \"$0/dumped\"; echo stamp", m)
        let stampRestore = Self.argv("sh", "-c", "cat > /dev/null")
        func plan(beforePack: String) throws -> String {
            try Self.writePlan(
                dir,
                """
                version: 1
                hooks:
                  before-pack: \(beforePack)
                  after-pack: \(Self.q("test -s '\(archive)' && touch '\(m)/after-pack'"))
                  before-restore:
                    - \(beforeRestore)
                  after-restore:
                    - \(Self.argv("sh", "-c", "test -f \"$0/faq.md\" && touch \"$1/after-restore\"", live, m))
                components:
                  - {name: kb, kind: docs, path: \(Self.q(src)), restore: {path: \(Self.q(live))}}
                  - {name: stamp, kind: command, dump: \(stampDump), restore: \(stampRestore)}
                """
            )
        }
        // A failing before-pack hook (the application would not stop): no dump runs, no archive is written.
        let failing = try Self.pack(
            archive,
            plan: try plan(beforePack: Self.q("echo 'app would not stop' >&2; exit 4"))
        )
        #expect(failing.status == 12, "\(failing.stderr)")
        #expect(
            failing.stderr.contains("before-pack hook") && failing.stderr.contains("app would not stop")
                && failing.stderr.contains("exit status 4"),
            "\(failing.stderr)"
        )
        #expect(!Self.exists(archive) && !Self.exists(m + "/dumped") && !Self.exists(m + "/after-pack"))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == [
                "live", "markers", "sealbak.yaml", "src",
            ]
        )

        // before-pack runs before anything is written, after-pack once the archive is in place.
        let ok = try Self.pack(
            archive,
            plan: try plan(
                beforePack: Self.q("test ! -e '\(archive)' && test ! -e '\(m)/dumped' && touch '\(m)/before-pack'")
            )
        )
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(Self.exists(m + "/before-pack") && Self.exists(m + "/dumped") && Self.exists(m + "/after-pack"))
        // A failing after-pack hook fails the command, but the archive it reports as written is there.
        let afterFails = try Self.writePlan(
            dir,
            """
            version: 1
            hooks: {after-pack: "echo 'app did not come back' >&2; exit 5"}
            components:
              - {name: kb, kind: docs, path: \(Self.q(src))}
            """
        )
        let late = try Self.pack(dir + "/b.sbk", plan: afterFails)
        #expect(
            late.status == 12 && late.stderr.contains("after-pack hook")
                && late.stderr.contains("app did not come back") && late.stderr.contains("the archive was written"),
            "\(late.stderr)"
        )
        #expect(Self.exists(dir + "/b.sbk"))
        let r = try CLITests.run(["restore", archive, "--plan", try plan(beforePack: "[]"), "--replace"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            Self.exists(m + "/before-restore") && Self.exists(m + "/after-restore"),
            "before-restore saw the old folder, after-restore the new one"
        )
    }
}
