import Foundation
import SealbakTestSupport
import Testing

/// Habits users bring from other Unix tools: entries to standard output (`cat`), patterns in `--only`, no binary on a
/// terminal, no folder named `-`.
@Suite struct UnixHabitsTests {
    static let env = ["SEALBAK_PASSWORD": "unix-\(UUID().uuidString)"]

    static func tree(_ dir: String) throws -> String {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/t/d/e", withIntermediateDirectories: true)
        try "one\n".write(toFile: dir + "/t/d/a.md", atomically: false, encoding: .utf8)
        try "two\n".write(toFile: dir + "/t/d/e/b.md", atomically: false, encoding: .utf8)
        try "three\n".write(toFile: dir + "/t/c.txt", atomically: false, encoding: .utf8)
        // Larger than several frames, so that cat streams more than one.
        try Data(TestArchive.text(3_000_000)).write(to: URL(fileURLWithPath: dir + "/t/big.sql"))
        let r = try Proc.run(
            Proc.sealbakBinary,
            ["pack", dir + "/x.sbk", "t", "--insecure-test-kdf", "--quiet", "--frame-size", "64K"],
            env: env,
            cwd: dir
        )
        guard r.status == 0 else { throw TestFailure(r.stderr) }
        return dir + "/x.sbk"
    }

    @Test func catWritesVerifiedEntriesToStandardOutput() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Self.tree(dir)
        let r = try Proc.run(Proc.sealbakBinary, ["cat", a, "t/d/a.md", "t/c.txt"], env: Self.env)
        #expect(r.status == 0 && r.stdout == "one\nthree\n", "\(r.stderr)")
        let big = try Proc.run(Proc.sealbakBinary, ["cat", a, "t/big.sql"], env: Self.env)
        #expect(big.status == 0 && Data(big.stdout.utf8) == FileManager.default.contents(atPath: dir + "/t/big.sql"))
        // From standard input: read once, so the entries must be named in archive order.
        let archive = try Data(contentsOf: URL(fileURLWithPath: a))
        let piped = try Proc.run(
            Proc.sealbakBinary,
            ["cat", "-", "t/c.txt", "t/d/a.md"],
            env: Self.env,
            stdin: archive
        )
        #expect(piped.status == 0 && piped.stdout == "three\none\n", "\(piped.stderr)")
        let backwards = try Proc.run(
            Proc.sealbakBinary,
            ["cat", "-", "t/d/a.md", "t/c.txt"],
            env: Self.env,
            stdin: archive
        )
        #expect(backwards.status == 64 && backwards.stderr.contains("archive order"), "\(backwards.stderr)")
        let folder = try Proc.run(Proc.sealbakBinary, ["cat", a, "t/d"], env: Self.env)
        #expect(folder.status == 64 && folder.stderr.contains("unpack --only"), "\(folder.stderr)")
        let missing = try Proc.run(Proc.sealbakBinary, ["cat", a, "t/nope"], env: Self.env)
        #expect(missing.status == 9 && missing.stdout.isEmpty, "\(missing.stderr)")
        // A truncated file is refused before a byte is written; a truncated stream fails with 5 at the point of loss.
        let cut = dir + "/cut.sbk"
        try archive.prefix(archive.count - 200).write(to: URL(fileURLWithPath: cut))
        let truncated = try Proc.run(Proc.sealbakBinary, ["cat", cut, "t/big.sql"], env: Self.env)
        #expect(truncated.status == 4 && truncated.stdout.isEmpty, "\(truncated.status) \(truncated.stderr)")
        let streamCut = try Proc.run(
            Proc.sealbakBinary,
            ["cat", "-", "t/big.sql"],
            env: Self.env,
            stdin: archive.prefix(archive.count / 2)
        )
        #expect(
            streamCut.status == 5 && streamCut.stdout.utf8.count < 3_000_000,
            "\(streamCut.status) \(streamCut.stderr)"
        )
        // Wrong password: nothing written.
        let wrong = try Proc.run(Proc.sealbakBinary, ["cat", a, "t/c.txt"], env: ["SEALBAK_PASSWORD": "nope"])
        #expect(wrong.status == 3 && wrong.stdout.isEmpty)
    }

    @Test func onlyTakesPatterns() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Self.tree(dir)
        func unpack(_ only: [String]) throws -> [String] {
            let out = dir + "/o-\(UUID().uuidString)"
            let r = try Proc.run(
                Proc.sealbakBinary,
                ["unpack", a, "--to", out, "--quiet"] + only.flatMap { ["--only", $0] },
                env: Self.env
            )
            guard r.status == 0 else { throw TestFailure(r.stderr) }
            let files = (FileManager.default.enumerator(atPath: out)?.allObjects as? [String] ?? [])
            return files.filter {
                !$0.hasSuffix("/") && FileManager.default.fileExists(atPath: out + "/" + $0)
                    && !Self.isDir(out + "/" + $0)
            }.sorted()
        }
        // `*` crosses `/` (as tar's --wildcards); a matched folder brings its contents.
        #expect(try unpack(["t/*.md"]) == ["t/d/a.md", "t/d/e/b.md"])
        #expect(try unpack(["t/d/e*"]) == ["t/d/e/b.md"])
        #expect(try unpack(["t/?.txt"]) == ["t/c.txt"])
        #expect(try unpack(["t/[cx].txt", "t/d/a.md"]) == ["t/c.txt", "t/d/a.md"])
        let none = try Proc.run(
            Proc.sealbakBinary,
            ["unpack", a, "--to", dir + "/none", "--only", "*.pdf"],
            env: Self.env
        )
        #expect(none.status == 9 && !FileManager.default.fileExists(atPath: dir + "/none"), "\(none.stderr)")
    }

    static func isDir(_ p: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: p, isDirectory: &d) && d.boolValue
    }

    @Test func noBinaryOnATerminalAndNoFolderNamedDash() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Self.tree(dir)
        let dash = try Proc.run(Proc.sealbakBinary, ["unpack", a, "--to", "-"], env: Self.env)
        #expect(dash.status == 64 && dash.stderr.contains("sealbak cat"), "\(dash.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "-"))
        // pack - with standard output on a terminal (a real pseudo-terminal): refused before any byte is written.
        let steps = String(decoding: try JSONSerialization.data(withJSONObject: [[String]]()), as: UTF8.self)
        let r = try Proc.run(
            "/usr/bin/env",
            [
                "python3", Proc.root + "/scripts/pty-drive.py", steps, "--", "env",
                "SEALBAK_PASSWORD=x", Proc.sealbakBinary, "pack", "-", dir + "/t/c.txt", "--insecure-test-kdf",
            ]
        )
        #expect(
            r.stdout.contains("\"status\": 64")
                && r.stdout.contains("refusing to write a binary archive to the terminal"),
            "\(r.stdout)"
        )
        // Redirected, it works.
        let piped = try Proc.run(
            Proc.sealbakBinary,
            ["pack", "-", dir + "/t/c.txt", "--insecure-test-kdf", "--quiet"],
            env: Self.env
        )
        #expect(piped.status == 0 && piped.stdout.utf8.count > 100)
    }

    /// One unreadable file must not abort the whole backup when the user says so: left out, named, recorded, exit 16.
    /// Without --skip-unreadable it fails before anything is written. Runs sealbak as `nobody` when the tests are
    /// root (root reads everything).
    @Test func unreadableFilesAreSkippedByNameWhenAsked() throws {
        let dir = try Proc.tempDir()
        defer {
            chmod(dir + "/t/locked", 0o755)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/t/locked", withIntermediateDirectories: true)
        try "ok\n".write(toFile: dir + "/t/a.txt", atomically: false, encoding: .utf8)
        try "secret\n".write(toFile: dir + "/t/secret.txt", atomically: false, encoding: .utf8)
        try "x\n".write(toFile: dir + "/t/locked/x", atomically: false, encoding: .utf8)
        chmod(dir, 0o777)
        chmod(dir + "/t/secret.txt", 0o000)
        chmod(dir + "/t/locked", 0o000)
        let asUser =
            geteuid() == 0 ? ["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"] : []
        func pack(_ extra: [String]) throws -> Proc.Result {
            try Proc.run(
                "/usr/bin/env",
                asUser + [Proc.sealbakBinary, "pack", dir + "/x.sbk", dir + "/t", "--insecure-test-kdf", "--quiet"]
                    + extra,
                env: Self.env
            )
        }
        let strict = try pack([])
        #expect(
            strict.status == 8 && strict.stderr.contains("locked") && strict.stderr.contains("--skip-unreadable"),
            "\(strict.stderr)"
        )
        #expect(!fm.fileExists(atPath: dir + "/x.sbk"))
        let lenient = try pack(["--skip-unreadable"])
        #expect(lenient.status == 16, "\(lenient.stderr)")
        #expect(
            lenient.stderr.contains("t/secret.txt") && lenient.stderr.contains("t/locked")
                && lenient.stderr.contains("NOT in the archive"),
            "\(lenient.stderr)"
        )
        let list = try Proc.run(Proc.sealbakBinary, ["list", dir + "/x.sbk"], env: Self.env)
        #expect(
            list.status == 0 && list.stdout.contains("t/a.txt") && list.stdout.contains("t/locked")
                && !list.stdout.contains("secret.txt"),
            "\(list.stdout)"
        )
        let record = try Proc.run(Proc.sealbakBinary, ["cat", dir + "/x.sbk", ".sealbak-outcome.json"], env: Self.env)
        let json = try JSONSerialization.jsonObject(with: Data(record.stdout.utf8)) as? [String: Any]
        let unreadable = (json?["unreadable"] as? [[String: String]])?.compactMap { $0["entry"] }
        #expect(unreadable == ["t/locked", "t/secret.txt"], "\(record.stdout)")
    }
}
