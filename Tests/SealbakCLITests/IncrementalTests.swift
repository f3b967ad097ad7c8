import Foundation
import SealbakTestSupport
import Testing

/// Incremental archives through the binary (Spec §14): `pack --chained` / `--base`, reading through the chain,
/// `verify --chain`, `inspect`, `consolidate`, `rekey`, key changes, chain-aware `prune`, and `run` with
/// `destination.incremental`.
@Suite struct IncrementalTests {
    typealias CLI = CLITests

    /// A dump-like text file of `lines` rows, a few documents and a vector file.
    static func source(in dir: String, lines: Int = 60_000) throws -> String {
        let src = dir + "/app"
        try FileManager.default.createDirectory(atPath: src + "/docs", withIntermediateDirectories: true)
        var dump = ""
        for i in 0..<lines { dump += "\(i)\tchunk \(i) of document \(i / 10)\t\(i &* 2_654_435_761 % 1_000_003)\n" }
        try Data(dump.utf8).write(to: URL(fileURLWithPath: src + "/dump.sql"))
        for i in 0..<20 {
            try Data(String(repeating: "document \(i) text\n", count: 300).utf8)
                .write(to: URL(fileURLWithPath: src + "/docs/d\(i).md"))
        }
        try Data(TestArchive.gaussianFloats(50_000, seed: 3)).write(to: URL(fileURLWithPath: src + "/emb.f32"))
        return src
    }

    /// Changes a few rows in the middle of the dump, inserts one, edits a document, adds one and deletes one.
    static func change(_ src: String, rows: Int = 20) throws {
        var lines = try String(contentsOfFile: src + "/dump.sql", encoding: .utf8).split(separator: "\n")
            .map(String.init)
        for k in 0..<rows { lines[(k * 7919 + 1000) % lines.count] += " updated" }
        lines.insert("inserted row", at: lines.count / 2)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: src + "/dump.sql"))
        try Data("edited\n".utf8).write(to: URL(fileURLWithPath: src + "/docs/d3.md"))
        try Data("new\n".utf8).write(to: URL(fileURLWithPath: src + "/docs/new.md"))
        try? FileManager.default.removeItem(atPath: src + "/docs/d4.md")
    }

    static func size(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as! NSNumber).intValue
    }

    static func unpacked(_ archive: String, in dir: String, extra: [String] = []) throws -> [String: Data] {
        let out = dir + "/out-\(UUID().uuidString)"
        let r = try CLI.run(["unpack", archive, "--to", out, "--quiet"] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        defer { try? FileManager.default.removeItem(atPath: out) }
        return try CLI.tree(out + "/app")
    }

    @Test func eachNightStoresOnlyItsChangesAndRestoresWhole() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.source(in: dir)
        let arch = dir + "/archives"
        try FileManager.default.createDirectory(atPath: arch, withIntermediateDirectories: true)
        #expect(try CLI.pack(arch + "/n1.sbk", [src], extra: ["--chained"]).status == 0)
        let night1 = try CLI.tree(src)
        try Self.change(src)
        #expect(try CLI.pack(arch + "/n2.sbk", [src], extra: ["--base", arch + "/n1.sbk"]).status == 0)
        let night2 = try CLI.tree(src)
        try Self.change(src, rows: 5)
        #expect(try CLI.pack(arch + "/n3.sbk", [src], extra: ["--base", arch + "/n2.sbk"]).status == 0)
        let night3 = try CLI.tree(src)

        // Only the changes are stored.
        let full = try Self.size(arch + "/n1.sbk")
        #expect(try Self.size(arch + "/n2.sbk") < full / 4)
        #expect(try Self.size(arch + "/n3.sbk") < full / 4)

        // Every night restores exactly what was packed, whichever link it is.
        #expect(try Self.unpacked(arch + "/n1.sbk", in: dir) == night1)
        #expect(try Self.unpacked(arch + "/n2.sbk", in: dir) == night2)
        #expect(try Self.unpacked(arch + "/n3.sbk", in: dir) == night3)

        // verify, verify --chain, inspect (no password), list with content sizes.
        let v = try CLI.run(["verify", arch + "/n3.sbk", "--chain"])
        #expect(v.status == 0 && v.stdout.contains("2 base archive(s) verified completely"), "\(v.stdout)\(v.stderr)")
        let inspect = try CLI.run(["inspect", arch + "/n3.sbk"], env: ["SEALBAK_PASSWORD": ""])
        #expect(inspect.status == 0 && inspect.stdout.contains("incremental, archive 3 of its chain"))
        let list = try CLI.run(["list", arch + "/n3.sbk", "--json"])
        let doc = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as! [String: Any]
        let entries = doc["entries"] as! [[String: Any]]
        let dump = entries.first { ($0["name"] as! String).hasSuffix("dump.sql") }!
        #expect((dump["size"] as! Int) == night3["dump.sql"]!.count)
        #expect(!list.stdout.contains("chunk-key"))

        // A reader from a pipe, with the chain named.
        let piped = try CLI.run(
            ["verify", "-", "--chain-from", arch, "--quiet"],
            stdin: arch + "/n3.sbk"
        )
        #expect(piped.status == 0, "\(piped.stderr)")
    }

    @Test func aMissingOrDifferentBaseIsNamedAndNothingIsRestored() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.source(in: dir, lines: 20_000)
        let arch = dir + "/archives"
        try FileManager.default.createDirectory(atPath: arch, withIntermediateDirectories: true)
        #expect(try CLI.pack(arch + "/n1.sbk", [src], extra: ["--chained"]).status == 0)
        try Self.change(src)
        #expect(try CLI.pack(arch + "/n2.sbk", [src], extra: ["--base", arch + "/n1.sbk"]).status == 0)
        let id = try CLI.run(["inspect", arch + "/n1.sbk", "--json"], env: ["SEALBAK_PASSWORD": ""])
        let inspected = try JSONSerialization.jsonObject(with: Data(id.stdout.utf8)) as! [String: Any]
        let baseID = (inspected["archive"] as! [String: Any])["id"] as! String

        // Missing: exit 19, the base named by id, nothing unpacked.
        try FileManager.default.moveItem(atPath: arch + "/n1.sbk", toPath: dir + "/n1.sbk")
        let missing = try CLI.run(["unpack", arch + "/n2.sbk", "--to", dir + "/out"])
        #expect(missing.status == 19 && missing.stderr.contains(baseID) && missing.stderr.contains("missing"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/app"))
        // Named elsewhere with --chain-from: it reads.
        #expect(try CLI.run(["verify", arch + "/n2.sbk", "--chain-from", dir, "--quiet"]).status == 0)

        // Damaged (one byte of its trailer changed): the base's own failure (exit 4), naming it, before anything is
        // restored. (A base that opens but is another archive under the same id is class `chain`: ChainTests.)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/n1.sbk")))
        bytes[bytes.count - 30] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: arch + "/n1.sbk"))
        let wrong = try CLI.run(["unpack", arch + "/n2.sbk", "--to", dir + "/out"])
        #expect(wrong.status == 4 && wrong.stderr.contains("n1.sbk"), "\(wrong.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/app"))
    }

    @Test func keyChangesKeepTheChainRekeyAndConsolidateWriteFullArchives() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.source(in: dir, lines: 20_000)
        let arch = dir + "/archives"
        try FileManager.default.createDirectory(atPath: arch, withIntermediateDirectories: true)
        #expect(try CLI.pack(arch + "/n1.sbk", [src], extra: ["--chained"]).status == 0)
        try Self.change(src)
        #expect(try CLI.pack(arch + "/n2.sbk", [src], extra: ["--base", arch + "/n1.sbk"]).status == 0)
        let night2 = try CLI.tree(src)

        // A key slot added to the base rewrites its header only: the chain still holds.
        let add = try CLI.run(
            ["key", "add", arch + "/n1.sbk", "--insecure-test-kdf"],
            env: ["SEALBAK_NEW_PASSWORD": "second"]
        )
        #expect(add.status == 0, "\(add.stderr)")
        #expect(try Self.unpacked(arch + "/n2.sbk", in: dir) == night2)

        // consolidate: one file that needs no other; --chained makes it a root that pack --base builds on.
        let solo = dir + "/solo"
        try FileManager.default.createDirectory(atPath: solo, withIntermediateDirectories: true)
        let c = try CLI.run(
            ["consolidate", arch + "/n2.sbk", solo + "/full.sbk", "--chained", "--insecure-test-kdf", "--quiet"]
        )
        #expect(c.status == 0, "\(c.stderr)")
        #expect(try Self.unpacked(solo + "/full.sbk", in: dir) == night2)
        try Self.change(src, rows: 3)
        #expect(try CLI.pack(solo + "/n3.sbk", [src], extra: ["--base", solo + "/full.sbk"]).status == 0)
        #expect(try Self.unpacked(solo + "/n3.sbk", in: dir) == (try CLI.tree(src)))

        // rekey of an incremental archive writes a full one with a new key.
        let r = try CLI.run(
            ["rekey", arch + "/n2.sbk", "-o", solo + "/rotated.sbk", "--insecure-test-kdf"],
            env: ["SEALBAK_NEW_PASSWORD": "rotated"]
        )
        #expect(r.status == 0, "\(r.stderr)")
        let inspect = try CLI.run(["inspect", solo + "/rotated.sbk"], env: ["SEALBAK_PASSWORD": ""])
        #expect(!inspect.stdout.contains("chain"))
        let out = dir + "/rotated-out"
        let u = try CLI.run(
            ["unpack", solo + "/rotated.sbk", "--to", out, "--quiet"],
            env: ["SEALBAK_PASSWORD": "rotated"]
        )
        #expect(u.status == 0, "\(u.stderr)")
        #expect(try CLI.tree(out + "/app") == night2)
    }

    @Test func pruneKeepsEveryArchiveAKeptOneNeeds() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.source(in: dir, lines: 5_000)
        let arch = dir + "/archives"
        try FileManager.default.createDirectory(atPath: arch, withIntermediateDirectories: true)
        // An old full archive, then a chain of three nights.
        #expect(try CLI.pack(arch + "/app-2026-11-01T030000.000Z.sbk", [src]).status == 0)
        #expect(try CLI.pack(arch + "/app-2026-11-02T030000.000Z.sbk", [src], extra: ["--chained"]).status == 0)
        try Self.change(src, rows: 2)
        #expect(
            try CLI.pack(
                arch + "/app-2026-11-03T030000.000Z.sbk",
                [src],
                extra: ["--base", arch + "/app-2026-11-02T030000.000Z.sbk"]
            ).status == 0
        )
        try Self.change(src, rows: 2)
        #expect(
            try CLI.pack(
                arch + "/app-2026-11-04T030000.000Z.sbk",
                [src],
                extra: ["--base", arch + "/app-2026-11-03T030000.000Z.sbk"]
            ).status == 0
        )
        let p = try CLI.run(["prune", arch, "--keep-last", "1", "--verbose"])
        #expect(p.status == 0, "\(p.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: arch).sorted()
        #expect(
            left == [
                "app-2026-11-02T030000.000Z.sbk", "app-2026-11-03T030000.000Z.sbk", "app-2026-11-04T030000.000Z.sbk",
            ]
        )
        #expect(p.stdout.contains("base of app-2026-11-04T030000.000Z.sbk"))
        #expect(try CLI.run(["verify", arch + "/app-2026-11-04T030000.000Z.sbk", "--quiet"]).status == 0)
    }

    @Test func nightlyRunBuildsOnTheNewestArchiveAndStartsAFullOneEveryNNights() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.source(in: dir, lines: 5_000)
        let arch = dir + "/archives"
        try FileManager.default.createDirectory(atPath: arch, withIntermediateDirectories: true)
        let pw = dir + "/pw"
        try Data(CLI.password.utf8).write(to: URL(fileURLWithPath: pw))
        let plan = dir + "/app.yaml"
        try Data(
            """
            version: 1
            components:
              - {name: app, kind: docs, path: \(src)}
            pack: {kdf-memory: 8, kdf-passes: 1}
            destination: {location: \(arch), incremental: true, full-every: 2, verify: true}
            state-dir: \(dir)/state
            password-file: \(pw)

            """.utf8
        ).write(to: URL(fileURLWithPath: plan))
        var headers: [String] = []
        for night in 1...3 {
            try Self.change(src, rows: 2)
            let r = try CLI.run(
                ["run", "--plan", plan, "--now", "2026-11-0\(night)T03:00:00Z"],
                env: ["SEALBAK_PASSWORD": ""]
            )
            #expect(r.status == 0, "\(r.stderr)")
            let newest = try FileManager.default.contentsOfDirectory(atPath: arch).filter { $0.hasSuffix(".sbk") }
                .sorted().last!
            headers.append(try CLI.run(["inspect", arch + "/" + newest], env: ["SEALBAK_PASSWORD": ""]).stdout)
        }
        #expect(headers[0].contains("root of a chain"))
        #expect(headers[1].contains("incremental, archive 2 of its chain"))
        #expect(headers[2].contains("root of a chain"))  // full-every: 2
    }
}

extension IncrementalTests {
    /// A writer that packs for recipients only holds no secret that opens its archives: the chain state it keeps lets
    /// it pack incrementally all the same, and holds no key that opens them (Spec §14.8).
    @Test func aWriteOnlyWriterPacksIncrementallyFromItsChainState() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.source(in: dir, lines: 20_000)
        let arch = dir + "/archives"
        try FileManager.default.createDirectory(atPath: arch, withIntermediateDirectories: true)
        let key = try CLI.run(["keygen", "-o", dir + "/id", "--no-password"], env: ["SEALBAK_PASSWORD": ""])
        #expect(key.status == 0)
        let pub = String(key.stdout.split(separator: "\n").first { $0.contains("sbkpk1") }!)
            .components(separatedBy: " ").first { $0.hasPrefix("sbkpk1") }!
        let state = dir + "/state/chain"
        try FileManager.default.createDirectory(atPath: dir + "/state", withIntermediateDirectories: true)
        let noSecret = ["SEALBAK_PASSWORD": ""]
        var r = try Proc.sealbak(
            ["pack", arch + "/n1.sbk", src, "--recipient", pub, "--chained", "--chain-state", state, "--quiet"],
            env: noSecret
        )
        #expect(r.status == 0, "\(r.stderr)")
        let attrs = try FileManager.default.attributesOfItem(atPath: state)
        #expect((attrs[.posixPermissions] as! NSNumber).intValue == 0o600)
        try Self.change(src)
        r = try Proc.sealbak(
            [
                "pack", arch + "/n2.sbk", src, "--recipient", pub, "--base", arch + "/n1.sbk", "--chain-state", state,
                "--quiet",
            ],
            env: noSecret
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.size(arch + "/n2.sbk") < (try Self.size(arch + "/n1.sbk")) / 2)
        let out = dir + "/out"
        r = try Proc.sealbak(
            ["unpack", arch + "/n2.sbk", "--to", out, "--identity", dir + "/id", "--quiet"],
            env: noSecret
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try CLI.tree(out + "/app") == (try CLI.tree(src)))

        // The state names n2 now: building on n1 again needs n1 opened, and nothing here opens it.
        r = try Proc.sealbak(
            [
                "pack", arch + "/n3.sbk", src, "--recipient", pub, "--base", arch + "/n1.sbk", "--chain-state", state,
                "--quiet",
            ],
            env: noSecret
        )
        #expect(r.status != 0 && !FileManager.default.fileExists(atPath: arch + "/n3.sbk"))
        // The state holds no data key: it does not open the archives (it is not an identity or password either).
        r = try Proc.sealbak(["verify", arch + "/n2.sbk", "--password-file", state, "--quiet"], env: noSecret)
        #expect(r.status != 0)
    }
}

extension IncrementalTests {
    /// Components restore from an incremental archive as from a full one: the engine's checks see the content.
    @Test func componentsRestoreFromAnIncrementalArchive() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.source(in: dir, lines: 20_000)
        let arch = dir + "/archives"
        try FileManager.default.createDirectory(atPath: arch, withIntermediateDirectories: true)
        #expect(try CLI.pack(arch + "/n1.sbk", [], extra: ["--docs", "kb=" + src, "--chained"]).status == 0)
        try Self.change(src)
        #expect(
            try CLI.pack(arch + "/n2.sbk", [], extra: ["--docs", "kb=" + src, "--base", arch + "/n1.sbk"]).status == 0
        )
        let dry = try CLI.run(["restore", arch + "/n2.sbk", "--to", dir + "/out", "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        let restored = try CLI.run(["restore", arch + "/n2.sbk", "--to", dir + "/out"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try CLI.tree(dir + "/out/kb") == (try CLI.tree(src)))
    }

    /// The pack's JSON report, parsed.
    static func packJSON(_ args: [String]) throws -> [String: Any] {
        let r = try CLI.run(["pack"] + args + ["--insecure-test-kdf", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let line = r.stdout.split(separator: "\n").last { $0.contains("\"pack\"") } ?? ""
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
    }

    static func unchangedFiles(_ report: [String: Any]) -> Int? {
        ((report["incremental"] as? [String: Any])?["unchanged_files"] as? NSNumber)?.intValue
    }

    /// With a chain state, files in the state their base read them in (size, times, inode) are referred to without
    /// being read; a file rewritten with its size and modification time put back is still read (its change time
    /// moved), and `--reread` reads everything. Every night restores exactly.
    @Test func unchangedFilesAreReferredToWithoutBeingRead() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.source(in: dir, lines: 20_000)
        let arch = dir + "/archives"
        try FileManager.default.createDirectory(atPath: arch, withIntermediateDirectories: true)
        let state = dir + "/chain-state"
        // Files changed less than a second before a pack are never recorded as unchanged (timestamp granularity).
        Thread.sleep(forTimeInterval: 1.2)
        var report = try Self.packJSON([arch + "/n1.sbk", src, "--chained", "--chain-state", state])
        #expect(report["incremental"] != nil)

        try Self.change(src)  // dump.sql and d3.md rewritten, new.md added, d4.md removed
        // d5.md: the same size and modification time, other content; only its change time tells.
        let d5 = src + "/docs/d5.md"
        var before = stat()
        #expect(stat(d5, &before) == 0)
        let text = try String(contentsOfFile: d5, encoding: .utf8)
        try Data(text.uppercased().utf8).write(to: URL(fileURLWithPath: d5))
        var times = [before.st_atim, before.st_mtim]
        #expect(utimensat(AT_FDCWD, d5, &times, 0) == 0)
        var after = stat()
        #expect(stat(d5, &after) == 0)
        #expect(after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec)
        #expect(after.st_size == before.st_size)

        report = try Self.packJSON([arch + "/n2.sbk", src, "--base", arch + "/n1.sbk", "--chain-state", state])
        // 20 documents less d3, d4 and d5, plus emb.f32.
        #expect(Self.unchangedFiles(report) == 18, "\(report)")
        #expect(try Self.unpacked(arch + "/n2.sbk", in: dir) == (try CLI.tree(src)))

        report = try Self.packJSON([
            arch + "/n3.sbk", src, "--base", arch + "/n2.sbk", "--chain-state", state, "--reread",
        ])
        #expect(Self.unchangedFiles(report) == 0, "\(report)")
        #expect(try Self.unpacked(arch + "/n3.sbk", in: dir) == (try CLI.tree(src)))
        let v = try CLI.run(["verify", arch + "/n3.sbk", "--chain", "--quiet"])
        #expect(v.status == 0, "\(v.stderr)")

        // A docs component's files are found unchanged too (same chain state, the entries' names differ: a new
        // chain, then a night with nothing changed).
        Thread.sleep(forTimeInterval: 1.2)
        _ = try Self.packJSON([arch + "/c1.sbk", "--docs", "kb=" + src, "--chained", "--chain-state", state])
        report = try Self.packJSON([
            arch + "/c2.sbk", "--docs", "kb=" + src, "--base", arch + "/c1.sbk", "--chain-state", state,
        ])
        #expect(Self.unchangedFiles(report) == 22, "\(report)")
        let restored = try CLI.run(["restore", arch + "/c2.sbk", "--to", dir + "/restored"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try CLI.tree(dir + "/restored/kb") == (try CLI.tree(src)))
    }
}
