import Foundation
import SealbakArchive
import SealbakFormat
import SealbakKeys
import SealbakTestSupport
import Testing

/// `pack --docs` with ignore rules and `restore --to` with staging, atomic swap and rollback.
@Suite struct DocsComponentTests {
    static func write(_ path: String, _ text: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// A docs tree with things to leave out: defaults, a root and a nested .sealbakignore, a re-include.
    static func docsTree(_ dir: String) throws -> String {
        let kb = dir + "/kb"
        try write(kb + "/readme.md", "# Knowledge base\n")
        try write(kb + "/guides/setup.md", String(repeating: "setup text ", count: 5000))
        try write(kb + "/guides/scratch.tmp", "temporary")
        try write(kb + "/guides/keep.tmp", "kept by a negation")
        try write(kb + "/guides/.sealbakignore", "*.tmp\n!keep.tmp\n")
        try write(kb + "/drafts/wip.md", "not ready")
        try write(kb + "/drafts/sub/deep.md", "not ready either")
        try write(kb + "/.sealbakignore", "# drafts stay local\n/drafts/\n*.log\n")
        try write(kb + "/build.log", "log")
        try write(kb + "/.git/HEAD", "ref: refs/heads/main")
        try write(kb + "/node_modules/pkg/index.js", "js")
        try write(kb + "/tools/__pycache__/x.cpython-311.pyc", "pyc")
        try write(kb + "/tools/x.py", "print(1)")
        return kb
    }

    @Test func ignoreRulesDecideWhatIsPackedAndRestoreSwapsTheFolder() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kb = try Self.docsTree(dir)
        let packed = try CLITests.run([
            "pack", dir + "/a.sbk", "--docs", kb, "--exclude", "tools/*.py", "--insecure-test-kdf",
        ])
        #expect(packed.status == 0, "\(packed.stderr)")
        let listed = try CLITests.run(["list", dir + "/a.sbk"])
        let names = Set(
            listed.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
        )
        for kept in [
            "docs/kb/readme.md", "docs/kb/guides/setup.md", "docs/kb/guides/keep.tmp", "docs/kb/.sealbakignore",
            "docs/kb/tools",
        ] {
            #expect(names.contains(kept), "\(kept) should be packed")
        }
        for left in [
            "docs/kb/guides/scratch.tmp", "docs/kb/drafts", "docs/kb/drafts/wip.md", "docs/kb/build.log",
            "docs/kb/.git", "docs/kb/node_modules", "docs/kb/tools/__pycache__", "docs/kb/tools/x.py",
        ] {
            #expect(!names.contains(left), "\(left) should be left out")
        }
        #expect(listed.stdout.contains("docs kb: ok, 5 files"), "\(listed.stdout)")

        // Dry run: says where, changes nothing.
        let dry = try CLITests.run(["restore", dir + "/a.sbk", "--to", dir + "/out", "--dry-run"])
        #expect(dry.status == 0 && dry.stdout.contains("will be created"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/kb"))

        let restored = try CLITests.run(["restore", dir + "/a.sbk", "--to", dir + "/out"])
        #expect(restored.status == 0, "\(restored.stderr)")
        let tree = try CLITests.tree(dir + "/out/kb")
        #expect(tree["guides/setup.md"] == Data(String(repeating: "setup text ", count: 5000).utf8))
        #expect(tree["drafts/wip.md"] == nil && tree["guides/keep.tmp"] != nil)

        // An existing folder is refused without --replace (no terminal to ask), then replaced atomically.
        try Self.write(dir + "/out/kb/local-note.md", "made after the backup")
        let refused = try CLITests.run(["restore", dir + "/a.sbk", "--to", dir + "/out"])
        #expect(refused.status == 7 && refused.stderr.contains("--replace"))
        #expect(FileManager.default.fileExists(atPath: dir + "/out/kb/local-note.md"))
        let replaced = try CLITests.run(["restore", dir + "/a.sbk", "--to", dir + "/out", "--replace"])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/kb/local-note.md"))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir + "/out") == ["kb"],
            "no staging folder is left"
        )
    }

    @Test func aRestoreThatFailsHalfwayLeavesTheOldFolderInPlace() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kb = try Self.docsTree(dir)
        for i in 0..<40 { try Self.write(kb + "/many/doc-\(i).md", String(repeating: "doc \(i) ", count: 3000)) }
        #expect(
            try CLITests.run(["pack", dir + "/a.sbk", "--docs", kb, "--insecure-test-kdf", "--compression", "none"])
                .status == 0
        )
        #expect(try CLITests.run(["restore", dir + "/a.sbk", "--docs-target", "kb=" + dir + "/live"]).status == 0)
        try Self.write(dir + "/live/precious.md", "only here")
        let before = try CLITests.tree(dir + "/live")
        // Damage a byte two thirds into the archive: some files verify and are staged before the damage is found.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/a.sbk"))
        bytes[bytes.count * 2 / 3] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: dir + "/bad.sbk"))
        let r = try CLITests.run(["restore", dir + "/bad.sbk", "--docs-target", "kb=" + dir + "/live", "--replace"])
        #expect(r.status == 4, "\(r.stderr)")
        #expect(try CLITests.tree(dir + "/live") == before)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["a.sbk", "bad.sbk", "kb", "live"],
            "no staging folder is left"
        )
    }

    @Test func componentFlagsAreChecked() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kb = try Self.docsTree(dir)
        let noDocs = try CLITests.run(["pack", dir + "/a.sbk", kb, "--exclude", "*.md", "--insecure-test-kdf"])
        #expect(noDocs.status == 64 && noDocs.stderr.contains("--docs"))
        let missing = try CLITests.run(["pack", dir + "/a.sbk", "--docs", dir + "/nope", "--insecure-test-kdf"])
        #expect(missing.status == 9 && missing.stderr.contains("nope"))
        #expect(
            try CLITests.run(["pack", dir + "/a.sbk", "--docs", "handbook=" + kb, "--insecure-test-kdf"]).status == 0
        )
        let noTarget = try CLITests.run(["restore", dir + "/a.sbk"])
        #expect(noTarget.status == 64 && noTarget.stderr.contains("--to DIR"))
        let unknown = try CLITests.run(["restore", dir + "/a.sbk", "--only", "kb", "--to", dir + "/o"])
        #expect(unknown.status == 9 && unknown.stderr.contains("handbook"))
    }

    @Test func verifyChecksComponentRecordsAgainstTheEntries() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Archives whose records disagree with their (authentic) entries, as a buggy or malicious writer could make.
        func write(_ entries: [ManifestEntry], _ data: [[UInt8]], to path: String) throws {
            var options = WriteOptions()
            options.kdf = KDFParameters(opsLimit: 1, memLimitKiB: 8)
            var out: [UInt8] = []
            let w = try ArchiveWriter(
                manifest: Manifest(entries: entries),
                passwords: [PasswordSlotSpec(passphrase: Passphrase(string: CLITests.password))],
                options: options
            ) { b in b.withUnsafeBytes { out += $0 } }
            for d in data {
                try w.writeEntry(bytes: d)
            }
            _ = try w.finish()
            try Data(out).write(to: URL(fileURLWithPath: path))
        }
        let root = ManifestEntry(
            kind: .directory,
            name: "docs/kb",
            mode: 0o755,
            metadata: Metadata([
                "component": "docs", "component.name": "kb", "component.status": "ok", "docs.files": "2",
                "docs.bytes": "5",
            ])
        )
        try write(
            [root, ManifestEntry(kind: .file, name: "docs/kb/a.md")],
            [[], Array("hello".utf8)],
            to: dir + "/docs.sbk"
        )
        let r = try CLITests.run(["verify", dir + "/docs.sbk"])
        #expect(r.status == 4 && r.stderr.contains("docs kb: 1 files, recorded 2"), "\(r.stderr)")
        let dump = ManifestEntry(
            kind: .stream,
            name: "postgres/db.pgdump",
            mode: 0o600,
            metadata: Metadata([
                "component": "postgres", "component.name": "db", "component.status": "ok",
            ])
        )
        try write([dump], [Array("not a dump at all".utf8)], to: dir + "/pg.sbk")
        let r2 = try CLITests.run(["verify", dir + "/pg.sbk"])
        #expect(r2.status == 4 && r2.stderr.contains("does not start with PGDMP"), "\(r2.stderr)")
        try write([dump], [Array("PGDMP and the rest".utf8)], to: dir + "/ok.sbk")
        let r3 = try CLITests.run(["verify", dir + "/ok.sbk"])
        #expect(r3.status == 0 && r3.stdout.contains("postgres db: ok"), "\(r3.stderr)")
    }
}
