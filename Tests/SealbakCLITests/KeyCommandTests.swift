import Foundation
import SealbakTestSupport
import Testing

/// `sealbak key …`: header-only rewrites, failure paths, and crash safety (fault injection and kill -9).
@Suite struct KeyCommandTests {
    typealias CLI = CLITests

    static func archive(in dir: String, size: Int = 2_000_000, password: String = CLI.password) throws -> String {
        try Data(TestArchive.noise(size, seed: 11)).write(to: URL(fileURLWithPath: dir + "/data"))
        let path = dir + "/a.sbk"
        let r = try CLI.run(
            ["pack", path, dir + "/data", "--insecure-test-kdf", "--quiet"],
            env: ["SEALBAK_PASSWORD": password]
        )
        #expect(r.status == 0)
        try FileManager.default.removeItem(atPath: dir + "/data")
        return path
    }

    static func body(_ path: String) throws -> [UInt8] {
        let b = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        return Array(b[(Int(b[10]) | Int(b[11]) << 8)...])
    }

    static func opens(_ path: String, _ password: String) throws -> Bool {
        try CLI.run(["verify", path, "--quiet"], env: ["SEALBAK_PASSWORD": password]).status == 0
    }

    @Test func addPasswdRemoveRewriteOnlyTheHeader() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.archive(in: dir)
        let body = try Self.body(path)
        #expect(
            try CLI.run(
                ["key", "add", path, "--label", "laptop", "--insecure-test-kdf"],
                env: ["SEALBAK_NEW_PASSWORD": "second"]
            ).status == 0
        )
        #expect(try Self.body(path) == body)
        #expect(try Self.opens(path, CLI.password) && Self.opens(path, "second"))
        let list = try CLI.run(["key", "list", path, "--json"], env: ["SEALBAK_PASSWORD": ""])
        let doc = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as! [String: Any]
        #expect((doc["slots"] as! [[String: Any]]).map { $0["label"] as! String } == ["password", "laptop"])
        #expect(!list.stdout.contains("salt") && !list.stdout.contains("wrapped"))

        #expect(
            try CLI.run(
                ["key", "passwd", path, "--slot", "2", "--insecure-test-kdf"],
                env: ["SEALBAK_NEW_PASSWORD": "third"]
            ).status == 0
        )
        #expect(try Self.body(path) == body)
        #expect(try !Self.opens(path, "second") && Self.opens(path, "third"))

        #expect(try CLI.run(["key", "remove", path, "--slot", "1"], env: ["SEALBAK_PASSWORD": "third"]).status == 0)
        #expect(try Self.body(path) == body)
        #expect(try !Self.opens(path, CLI.password) && Self.opens(path, "third"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.sbk"])
    }

    @Test func failurePathsHaveDistinctCodesAndChangeNothing() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.archive(in: dir)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let wrong = try CLI.run(
            ["key", "add", path, "--insecure-test-kdf"],
            env: ["SEALBAK_PASSWORD": "nope", "SEALBAK_NEW_PASSWORD": "x"]
        )
        #expect(wrong.status == 3 && wrong.stderr.contains("wrong password"))
        let last = try CLI.run(["key", "remove", path, "--slot", "1"])
        #expect(last.status == 64 && last.stderr.contains("last slot"))
        let missing = try CLI.run(
            ["key", "passwd", path, "--slot", "7", "--insecure-test-kdf"],
            env: ["SEALBAK_NEW_PASSWORD": "x"]
        )
        #expect(missing.status == 9 && missing.stderr.contains("no key slot 7"))
        let noNew = try CLI.run(["key", "add", path, "--insecure-test-kdf"], env: ["SEALBAK_NEW_PASSWORD": ""])
        #expect(noNew.status == 64 && noNew.stderr.contains("new password"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func recoveryCodeOpensTheArchiveAndTyposAreTypos() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.archive(in: dir)
        let r = try CLI.run(["key", "add", path, "--recovery", "--insecure-test-kdf"])
        #expect(r.status == 0)
        let code = r.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first {
            $0.count == 34 && $0.filter { $0 == "-" }.count == 6
        }
        guard let code else {
            Issue.record("no code printed: \(r.stdout)")
            return
        }
        #expect(try Self.opens(path, code))
        #expect(try Self.opens(path, code.lowercased().replacingOccurrences(of: "-", with: "")))
        var typo = Array(code)
        typo[0] = typo[0] == "A" ? "B" : "A"
        let bad = try CLI.run(["verify", path], env: ["SEALBAK_PASSWORD": String(typo)])
        #expect(bad.status == 64 && bad.stderr.contains("mistyped"))
        let list = try CLI.run(["key", "list", path])
        #expect(list.stdout.contains("recovery code") && !list.stdout.contains(code))
        // A recovery code cannot be "changed" like a password: remove it and add a new one.
        #expect(
            try CLI.run(
                ["key", "passwd", path, "--slot", "2", "--insecure-test-kdf"],
                env: ["SEALBAK_NEW_PASSWORD": "x"]
            ).status == 64
        )
    }

    @Test func rekeyRevokesEveryOldKeyAndKeepsTheData() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.archive(in: dir)
        #expect(
            try CLI.run(["key", "add", path, "--insecure-test-kdf"], env: ["SEALBAK_NEW_PASSWORD": "second"]).status
                == 0
        )
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let r = try CLI.run(["rekey", path, "--insecure-test-kdf"], env: ["SEALBAK_NEW_PASSWORD": "fresh"])
        #expect(r.status == 0 && r.stderr.contains("dropped key slot 2"))
        let rotated = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Array(rotated[16..<32]) != Array(original[16..<32]), "archive id must change")
        #expect(try Self.opens(path, "fresh"))
        #expect(try !Self.opens(path, CLI.password) && !Self.opens(path, "second"))
        // An old header in front of the new body opens nothing: the data keys changed.
        let oldHeaderLength = Int(original[10]) | Int(original[11]) << 8
        try Data(Array(original.prefix(oldHeaderLength)) + (try Self.body(path))).write(
            to: URL(fileURLWithPath: dir + "/spliced.sbk")
        )
        #expect(try CLI.run(["verify", dir + "/spliced.sbk"], env: ["SEALBAK_PASSWORD": "second"]).status != 0)
        try FileManager.default.removeItem(atPath: dir + "/spliced.sbk")
        // Same content.
        #expect(try CLI.run(["unpack", path, "--to", dir + "/out"], env: ["SEALBAK_PASSWORD": "fresh"]).status == 0)
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: dir + "/out/data"))
                == Data(TestArchive.noise(2_000_000, seed: 11))
        )
        // Frames keep their lengths: only the header and the trailer may change size.
        #expect(abs(rotated.count - original.count) < 200)
    }

    @Test func rekeyFailuresLeaveTheArchiveUntouched() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.archive(in: dir)
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let wrong = try CLI.run(
            ["rekey", path, "--insecure-test-kdf"],
            env: ["SEALBAK_PASSWORD": "nope", "SEALBAK_NEW_PASSWORD": "x"]
        )
        #expect(wrong.status == 3)
        var damaged = [UInt8](original)
        damaged[damaged.count / 2] ^= 1
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        let corrupt = try CLI.run(["rekey", path, "--insecure-test-kdf"], env: ["SEALBAK_NEW_PASSWORD": "x"])
        #expect(corrupt.status == 4)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(damaged))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.sbk"])
        try original.write(to: URL(fileURLWithPath: path))
        // A crash at any step of an in-place rekey leaves the old archive or the complete new one.
        var step = 1
        while step < 40 {
            let r = try CLI.run(
                ["rekey", path, "--insecure-test-kdf"],
                env: ["SEALBAK_NEW_PASSWORD": "new-\(step)", "SEALBAK_TEST_CRASH_AT": "\(step)"]
            )
            let old = try Self.opens(path, CLI.password)
            let new = try Self.opens(path, "new-\(step)")
            #expect(old != new, "step \(step)")
            if r.status == 0 { break }
            #expect(r.status == 86)
            if new { break }
            step += 1
        }
        #expect(step > 2)
    }

    @Test func recipientsLetAServerWriteWhatOnlyTheIdentityReads() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gen = try CLI.run(
            ["keygen", "-o", dir + "/id", "--insecure-test-kdf"],
            env: ["SEALBAK_IDENTITY_PASSWORD": "identity pw"]
        )
        #expect(gen.status == 0)
        let pk = gen.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(pk.hasPrefix("sbkpk1"))
        let idText = try String(contentsOfFile: dir + "/id", encoding: .utf8)
        #expect(idText.contains(pk))
        var st = stat()
        stat(dir + "/id", &st)
        #expect(st.st_mode & 0o777 == 0o600)
        let other = try CLI.run(["keygen", "-o", dir + "/other", "--no-password"])
        #expect(other.status == 0)

        try Data(TestArchive.text(50_000)).write(to: URL(fileURLWithPath: dir + "/dump.sql"))
        // The "server" has no password and no identity, only the public key.
        let packed = try CLI.run(
            ["pack", dir + "/a.sbk", dir + "/dump.sql", "--recipient", pk, "--quiet"],
            env: ["SEALBAK_PASSWORD": ""]
        )
        #expect(packed.status == 0)
        let withPassword = try CLI.run(["verify", dir + "/a.sbk"], env: ["SEALBAK_PASSWORD": "anything"])
        #expect(withPassword.status == 3 && withPassword.stderr.contains("--identity"))
        let ok = try CLI.run(
            ["unpack", dir + "/a.sbk", "--to", dir + "/out", "--identity", dir + "/id"],
            env: ["SEALBAK_PASSWORD": "", "SEALBAK_IDENTITY_PASSWORD": "identity pw"]
        )
        #expect(ok.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out/dump.sql")) == Data(TestArchive.text(50_000)))
        let wrongIdentity = try CLI.run(["verify", dir + "/a.sbk", "--identity", dir + "/other"])
        #expect(wrongIdentity.status == 10 && wrongIdentity.stderr.contains("wrong identity"))
        let wrongIdentityPassword = try CLI.run(
            ["verify", dir + "/a.sbk", "--identity", dir + "/id"],
            env: ["SEALBAK_IDENTITY_PASSWORD": "nope"]
        )
        #expect(wrongIdentityPassword.status == 3 && wrongIdentityPassword.stderr.contains("identity file"))
        // Change the last character to a different one (a fixed replacement equals it one time in 32).
        let mistyped = String(pk.dropLast()) + (pk.hasSuffix("a") ? "b" : "a")
        let badKey = try CLI.run(["pack", dir + "/b.sbk", dir + "/dump.sql", "--recipient", mistyped, "--quiet"])
        #expect(badKey.status == 64 && badKey.stderr.contains("mistyped"))
        // The identity can add a password and rotate; recipients survive rotation.
        #expect(
            try CLI.run(
                ["key", "add", dir + "/a.sbk", "--identity", dir + "/id", "--insecure-test-kdf"],
                env: ["SEALBAK_IDENTITY_PASSWORD": "identity pw", "SEALBAK_NEW_PASSWORD": "added"]
            ).status == 0
        )
        #expect(try Self.opens(dir + "/a.sbk", "added"))
        #expect(
            try CLI.run(
                ["rekey", dir + "/a.sbk", "--identity", dir + "/id"],
                env: ["SEALBAK_IDENTITY_PASSWORD": "identity pw"]
            ).status == 0
        )
        #expect(try !Self.opens(dir + "/a.sbk", "added"))
        #expect(
            try CLI.run(
                ["verify", dir + "/a.sbk", "--identity", dir + "/id"],
                env: ["SEALBAK_IDENTITY_PASSWORD": "identity pw"]
            ).status == 0
        )
    }

    @Test func aPasswordShapedLikeARecoveryCodeStillWorks() throws {
        // 28 characters from the code alphabet, grouped like a code, but not a valid code: it is a password.
        let lookalike = "ABCD-EFGH-JKMN-PQRS-TVWX-YZ01-2345"
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.archive(in: dir, password: lookalike)
        #expect(try Self.opens(path, lookalike))
        #expect(
            try CLI.run(
                ["key", "add", path, "--recovery", "--insecure-test-kdf"],
                env: ["SEALBAK_PASSWORD": lookalike]
            ).status == 0
        )
        #expect(try Self.opens(path, lookalike))
    }

    @Test func concurrentKeyChangesAreRefused() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.archive(in: dir)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX) == 0)  // as a running key change would hold it
        let r = try CLI.run(["key", "add", path, "--insecure-test-kdf"], env: ["SEALBAK_NEW_PASSWORD": "x"])
        #expect(r.status == 8 && r.stderr.contains("another sealbak"))
        flock(fd, LOCK_UN)
        #expect(
            try CLI.run(["key", "add", path, "--insecure-test-kdf"], env: ["SEALBAK_NEW_PASSWORD": "x"]).status == 0
        )
    }

    @Test func newPasswordFromFileAndDescriptor() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.archive(in: dir)
        try Data("from a file\n".utf8).write(to: URL(fileURLWithPath: dir + "/new"))
        #expect(
            try CLI.run(["key", "add", path, "--insecure-test-kdf", "--new-password-file", dir + "/new"]).status == 0
        )
        #expect(try Self.opens(path, "from a file"))
        try Data("from fd\n".utf8).write(to: URL(fileURLWithPath: dir + "/fd"))
        #expect(
            try CLI.run(["key", "add", path, "--insecure-test-kdf", "--new-password-fd", "0"], stdin: dir + "/fd")
                .status == 0
        )
        #expect(try Self.opens(path, "from fd"))
    }

    /// A crash injected at every fault point of `key passwd` leaves an archive that opens with the old
    /// password or the new one, and no other file in the directory.
    @Test func aCrashAtAnyStepLeavesOldOrNewNeverNeither() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.archive(in: dir)
        var step = 1
        var sawOld = false
        var sawNew = false
        while step < 50 {
            let r = try CLI.run(
                ["key", "passwd", path, "--insecure-test-kdf"],
                env: ["SEALBAK_NEW_PASSWORD": "new-\(step)", "SEALBAK_TEST_CRASH_AT": "\(step)"]
            )
            let old = try Self.opens(path, CLI.password)
            let new = try Self.opens(path, "new-\(step)")
            #expect(old != new, "step \(step): old opens \(old), new opens \(new)")
            // Only a crash in the instant between naming the finished copy and the rename may leave a file,
            // named .a.sbk.sealbak-tmp-PID-N; the next command on the archive removes it (dead PID).
            let extra = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0 != "a.sbk" }
            #expect(
                extra.allSatisfy { $0.hasPrefix(".a.sbk.sealbak-tmp-") } && extra.count <= 1,
                "step \(step) left \(extra)"
            )
            if !extra.isEmpty {
                #expect(
                    try CLI.run(
                        ["key", "add", path, "--insecure-test-kdf"],
                        env: [
                            "SEALBAK_PASSWORD": old ? CLI.password : "new-\(step)", "SEALBAK_NEW_PASSWORD": "tmp",
                            "SEALBAK_TEST_CRASH_AT": "1",
                        ]
                    ).status == 86
                )
                #expect(
                    try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.sbk"],
                    "the leftover of step \(step) was not cleaned"
                )
            }
            if r.status == 0 {
                sawNew = true
                break
            }
            #expect(r.status == 86, "step \(step): \(r.stderr)")
            if old { sawOld = true }
            if new {
                // The crash came after the rename: put the old password back for the next step.
                sawNew = true
                #expect(
                    try CLI.run(
                        ["key", "passwd", path, "--insecure-test-kdf"],
                        env: ["SEALBAK_PASSWORD": "new-\(step)", "SEALBAK_NEW_PASSWORD": CLI.password]
                    ).status == 0
                )
            }
            step += 1
        }
        #expect(sawOld && sawNew && step > 3)
    }

    /// kill -9 at random moments during password changes of a larger archive.
    @Test func killNineInALoop() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Self.archive(in: dir, size: 64 << 20)
        var current = CLI.password
        for i in 0..<25 {
            let next = "pw-\(i)"
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Proc.sealbakBinary)
            p.arguments = ["key", "passwd", path, "--insecure-test-kdf"]
            var e = ProcessInfo.processInfo.environment
            e["SEALBAK_PASSWORD"] = current
            e["SEALBAK_NEW_PASSWORD"] = next
            p.environment = e
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(useconds_t.random(in: 0...60_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let old = try Self.opens(path, current)
            let new = try Self.opens(path, next)
            #expect(old != new, "iteration \(i): old \(old), new \(new)")
            if new { current = next }
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.sbk"], "iteration \(i) left a file")
        }
    }
}
