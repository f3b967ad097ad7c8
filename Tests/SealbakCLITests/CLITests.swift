import Foundation
import SealbakTestSupport
import Testing

/// End-to-end tests through the built `sealbak` binary: exit codes, messages, atomic output, streaming.
@Suite struct CLITests {
    static let password = "pässwörd-\(UUID().uuidString)"

    /// The format version and feature names `inspect --json` reports for the archive at `path` (Spec §3.4).
    static func formatVersion(_ path: String) throws -> (Int, [String]) {
        let r = try run(["inspect", path, "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let archive = json["archive"] as! [String: Any]
        return (archive["format_version"] as! Int, archive["features"] as! [String])
    }

    /// Runs `sealbak ARGS` with the password in SEALBAK_PASSWORD (unless `env` overrides it); the password must not
    /// appear in the output. `stdin` names a file whose content is the standard input.
    @discardableResult
    static func run(
        _ args: [String],
        env: [String: String] = [:],
        stdin: String? = nil,
        cwd: String? = nil
    ) throws -> Proc.Result {
        try Proc.sealbak(
            args,
            env: ["SEALBAK_PASSWORD": password].merging(env) { $1 },
            secrets: [password],
            cwd: cwd,
            stdin: try stdin.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        )
    }

    /// A small tree with a nested directory, an empty file, a symlink and a mode.
    static func sampleTree(in dir: String) throws -> String {
        let src = dir + "/app"
        try FileManager.default.createDirectory(atPath: src + "/config", withIntermediateDirectories: true)
        try Data(TestArchive.text(300_000)).write(to: URL(fileURLWithPath: src + "/dump.sql"))
        try Data(TestArchive.noise(70_000, seed: 4)).write(to: URL(fileURLWithPath: src + "/vectors.f32"))
        try Data("KEY=secret\n".utf8).write(to: URL(fileURLWithPath: src + "/config/.env"))
        try Data().write(to: URL(fileURLWithPath: src + "/config/empty"))
        chmod(src + "/config/.env", 0o600)
        try FileManager.default.createSymbolicLink(atPath: src + "/latest.sql", withDestinationPath: "dump.sql")
        return src
    }

    static func pack(_ out: String, _ paths: [String], extra: [String] = []) throws -> Proc.Result {
        try run(["pack", out] + paths + ["--insecure-test-kdf", "--quiet"] + extra)
    }

    static func tree(_ path: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let fm = FileManager.default
        for rel in fm.subpaths(atPath: path) ?? [] {
            let full = path + "/" + rel
            let attrs = try fm.attributesOfItem(atPath: full)
            if attrs[.type] as? FileAttributeType == .typeSymbolicLink {
                out[rel] = Data(("link:" + (try fm.destinationOfSymbolicLink(atPath: full))).utf8)
            } else if attrs[.type] as? FileAttributeType == .typeRegular {
                out[rel] = try Data(contentsOf: URL(fileURLWithPath: full))
            } else {
                out[rel] = Data("dir".utf8)
            }
        }
        return out
    }

    @Test func packUnpackListVerifyInspectRoundTrip() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.sampleTree(in: dir)
        #expect(try Self.pack(dir + "/a.sbk", [src]).status == 0)
        let verify = try Self.run(["verify", dir + "/a.sbk"])
        #expect(verify.status == 0 && verify.stdout.contains("OK"))
        let list = try Self.run(["list", dir + "/a.sbk", "--json"])
        #expect(list.status == 0)
        let doc = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as! [String: Any]
        let names = (doc["entries"] as! [[String: Any]]).map { $0["name"] as! String }
        #expect(names.contains("app/config/.env") && names.contains("app/latest.sql"))
        let inspect = try Self.run(["inspect", dir + "/a.sbk"], env: ["SEALBAK_PASSWORD": ""])
        #expect(inspect.status == 0 && inspect.stdout.contains("Argon2id") && !inspect.stdout.contains("dump.sql"))
        #expect(try Self.run(["unpack", dir + "/a.sbk", "--to", dir + "/out"]).status == 0)
        #expect(try Self.tree(dir + "/out/app") == Self.tree(src))
        var st = stat()
        stat(dir + "/out/app/config/.env", &st)
        #expect(st.st_mode & 0o777 == 0o600)
    }

    @Test func onlyExtractsTheSelectedSubtree() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.sampleTree(in: dir)
        _ = try Self.pack(dir + "/a.sbk", [src])
        #expect(try Self.run(["unpack", dir + "/a.sbk", "--to", dir + "/out", "--only", "app/config"]).status == 0)
        #expect(
            Set(FileManager.default.subpaths(atPath: dir + "/out") ?? []) == [
                "app", "app/config", "app/config/.env", "app/config/empty",
            ]
        )
        let missing = try Self.run(["unpack", dir + "/a.sbk", "--to", dir + "/out2", "--only", "nope"])
        #expect(missing.status == 9 && missing.stderr.contains("no entry named nope"))
    }

    @Test func streamingThroughPipesBothWays() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.sampleTree(in: dir)
        let r = try Proc.run(
            "/bin/bash",
            [
                "-c",
                "set -o pipefail; \"$0\" pack - \"$1\" --insecure-test-kdf --quiet | \"$0\" unpack - --to \"$2\" "
                    + "--quiet",
                Proc.sealbakBinary, src, dir + "/out",
            ],
            env: ["SEALBAK_PASSWORD": Self.password]
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.tree(dir + "/out/app") == Self.tree(src))
    }

    @Test func stdinEntry() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = dir + "/in.dump"
        try Data(TestArchive.noise(3_000_000, seed: 8)).write(to: URL(fileURLWithPath: input))
        #expect(
            try Self.run(
                ["pack", dir + "/a.sbk", "--stdin-name", "db/app.dump", "--insecure-test-kdf", "--quiet"],
                stdin: input
            ).status == 0
        )
        #expect(try Self.run(["unpack", dir + "/a.sbk", "--to", dir + "/out"]).status == 0)
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: dir + "/out/db/app.dump"))
                == Data(contentsOf: URL(fileURLWithPath: input))
        )
    }

    @Test func exitCodesAreDistinctAndMessagesSayWhatToDo() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.sampleTree(in: dir)
        let archive = dir + "/a.sbk"
        _ = try Self.pack(archive, [src])
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: archive)))

        let wrong = try Self.run(["verify", archive], env: ["SEALBAK_PASSWORD": "wrong"])
        #expect(wrong.status == 3 && wrong.stderr.contains("wrong password"))

        var tampered = bytes
        tampered[bytes.count / 2] ^= 1
        try Data(tampered).write(to: URL(fileURLWithPath: dir + "/t.sbk"))
        let corrupt = try Self.run(["verify", dir + "/t.sbk"])
        #expect(corrupt.status == 4 && corrupt.stderr.contains("at byte"))

        try Data(bytes.prefix(bytes.count - 100)).write(to: URL(fileURLWithPath: dir + "/cut.sbk"))
        let truncated = try Self.run(["verify", dir + "/cut.sbk"])
        #expect(truncated.status == 5 && truncated.stderr.contains("truncated"))

        var newer = bytes
        newer[8] = 9
        try Data(newer).write(to: URL(fileURLWithPath: dir + "/new.sbk"))
        let version = try Self.run(["verify", dir + "/new.sbk"])
        #expect(version.status == 6 && version.stderr.contains("newer sealbak"))

        let exists = try Self.pack(archive, [src])
        #expect(exists.status == 7 && exists.stderr.contains("--force"))
        #expect(try Self.pack(archive, [src], extra: ["--force"]).status == 0)

        #expect(try Self.run(["unpack", archive, "--to", dir + "/out"]).status == 0)
        let over = try Self.run(["unpack", archive, "--to", dir + "/out"])
        #expect(over.status == 7 && over.stderr.contains("--force"))

        let missing = try Self.run(["verify", dir + "/nope.sbk"])
        #expect(missing.status == 9 && missing.stderr.contains("nope.sbk"))

        #expect(try Self.run(["pack", dir + "/x.sbk"]).status == 64)
        let noPassword = try Self.run(["verify", archive], env: ["SEALBAK_PASSWORD": ""])
        #expect(noPassword.status == 64 && noPassword.stderr.contains("--password-file"))
    }

    @Test func passwordFileAndDescriptor() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try Self.sampleTree(in: dir)
        try Data("file password\n".utf8).write(to: URL(fileURLWithPath: dir + "/pw"))
        #expect(
            try Self.run(
                ["pack", dir + "/a.sbk", src, "--insecure-test-kdf", "--quiet", "--password-file", dir + "/pw"],
                env: ["SEALBAK_PASSWORD": ""]
            ).status == 0
        )
        #expect(
            try Self.run(
                ["verify", dir + "/a.sbk", "--password-fd", "0"],
                env: ["SEALBAK_PASSWORD": ""],
                stdin: dir + "/pw"
            ).status == 0
        )
        #expect(try Self.run(["verify", dir + "/a.sbk"]).status == 3)
    }

    @Test func aFailedPackLeavesNoArchiveAndNoTempFile() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        // A FIFO is refused before anything is written; an unreadable file fails mid-way.
        let src = try Self.sampleTree(in: dir)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: src + "/zz-unreadable"))
        chmod(src + "/zz-unreadable", 0)
        let r = try Self.pack(dir + "/out/a.sbk", [src])
        if getuid() == 0 {
            // root reads anything: use a directory that vanishes instead.
            #expect(r.status == 0)
            try FileManager.default.removeItem(atPath: dir + "/out/a.sbk")
            mkfifo(src + "/fifo", 0o600)
            let f = try Self.pack(dir + "/out/a.sbk", [src])
            #expect(f.status == 64 && f.stderr.contains("FIFO"))
        } else {
            #expect(r.status == 8)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/out").isEmpty)
    }

    @Test func anInterruptedPackLeavesNothingBehind() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Proc.sealbakBinary)
        p.arguments = ["pack", dir + "/a.sbk", "--stdin-name", "x", "--insecure-test-kdf", "--quiet"]
        var e = ProcessInfo.processInfo.environment
        e["SEALBAK_PASSWORD"] = Self.password
        p.environment = e
        let input = Pipe()
        p.standardInput = input
        try p.run()
        input.fileHandleForWriting.write(Data(TestArchive.noise(3 << 20, seed: 1)))  // then keep the pipe open
        usleep(700_000)  // the archive is being written (to an unnamed O_TMPFILE file, or a named temp file)
        #expect(p.isRunning)
        p.interrupt()
        p.waitUntilExit()
        #expect(p.terminationStatus == 130)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    /// Memory is a property of the plain build: sanitizer runs (SEALBAK_SANITIZER set) skip this one.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SEALBAK_SANITIZER"] == nil))
    func oneGiBThroughAPipeInBoundedMemory() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // /usr/bin/time -f %M reports each sealbak process's own peak RSS in KiB.
        let r = try Proc.run(
            "/bin/bash",
            [
                "-c",
                """
                set -o pipefail
                head -c 1073741824 /dev/urandom \
                  | /usr/bin/time -o "$1/pack.rss" -f %M "$0" pack - --stdin-name big --insecure-test-kdf --quiet \
                  | /usr/bin/time -o "$1/verify.rss" -f %M "$0" verify - --quiet
                """, Proc.sealbakBinary, dir,
            ],
            env: ["SEALBAK_PASSWORD": Self.password]
        )
        #expect(r.status == 0, "\(r.stderr)")
        for phase in ["pack", "verify"] {
            let text = try String(contentsOfFile: "\(dir)/\(phase).rss", encoding: .utf8)
            let kib = Int(text.split(separator: "\n").last.map(String.init) ?? "") ?? Int.max
            #expect(kib < 200 * 1024, "\(phase) peak RSS \(kib / 1024) MiB")
        }
    }
}
