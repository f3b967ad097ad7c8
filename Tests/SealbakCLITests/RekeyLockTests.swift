import Foundation
import SealbakTestSupport
import Testing

/// `rekey` holds the key-change lock and refuses if the archive changed since it started, so a `key passwd`
/// that finished meanwhile is never silently undone. The other command runs at a named fault point of the first
/// (SEALBAK_TEST_HOOK_POINT), not after a sleep.
@Suite struct RekeyLockTests {
    static let env = ["SEALBAK_PASSWORD": "first", "SEALBAK_NEW_PASSWORD": "rekeyed"]

    func archive() throws -> (dir: String, path: String) {
        let dir = try Proc.tempDir()
        try "data".write(toFile: dir + "/f", atomically: false, encoding: .utf8)
        let r = try Proc.run(
            Proc.sealbakBinary,
            ["pack", dir + "/a.sbk", dir + "/f", "--insecure-test-kdf", "--quiet"],
            env: Self.env
        )
        #expect(r.status == 0)
        return (dir, dir + "/a.sbk")
    }

    func opens(_ path: String, with password: String) throws -> Bool {
        try Proc.run(Proc.sealbakBinary, ["verify", path, "--quiet"], env: ["SEALBAK_PASSWORD": password]).status == 0
    }

    @Test func rekeyRefusesWhenTheArchiveWasReplacedMeanwhile() throws {
        let (dir, path) = try archive()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // What a key passwd that finished in the middle of the rekey would leave: the same archive, new header.
        try FileManager.default.copyItem(atPath: path, toPath: dir + "/changed.sbk")
        #expect(
            try Proc.run(
                Proc.sealbakBinary,
                ["key", "passwd", dir + "/changed.sbk", "--insecure-test-kdf"],
                env: ["SEALBAK_PASSWORD": "first", "SEALBAK_NEW_PASSWORD": "second"]
            ).status == 0
        )
        let r = try Proc.run(
            Proc.sealbakBinary,
            ["rekey", path, "--insecure-test-kdf"],
            env: Self.env.merging([
                "SEALBAK_TEST_HOOK_POINT": "rekey: before the header check",
                "SEALBAK_TEST_HOOK": "cp '\(dir)/changed.sbk' '\(path).new' && mv '\(path).new' '\(path)'",
            ]) { a, _ in a }
        )
        #expect(r.status == 8 && r.stderr.contains("changed while sealbak was rotating its keys"), "\(r.stderr)")
        #expect(try opens(path, with: "second"))
        #expect(try !opens(path, with: "rekeyed"))
    }

    @Test func aKeyChangeDuringRekeyIsRefusedAndRekeyFinishes() throws {
        let (dir, path) = try archive()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Proc.run(
            Proc.sealbakBinary,
            ["rekey", path, "--insecure-test-kdf"],
            env: Self.env.merging([
                "SEALBAK_TEST_HOOK_POINT": "rekey: before the header check",
                "SEALBAK_TEST_HOOK":
                    "SEALBAK_NEW_PASSWORD=second '\(Proc.sealbakBinary)' key passwd '\(path)' --insecure-test-kdf "
                    + "2>'\(dir)/passwd.err'; echo $? >'\(dir)/passwd.status'",
            ]) { a, _ in a }
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: dir + "/passwd.status", encoding: .utf8) == "8\n")
        #expect(
            try String(contentsOfFile: dir + "/passwd.err", encoding: .utf8).contains(
                "another sealbak is changing the keys"
            )
        )
        #expect(try opens(path, with: "rekeyed"))
    }

    @Test func rekeyIsRefusedWhileAKeyPasswdHoldsTheLock() throws {
        let (dir, path) = try archive()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Proc.run(
            Proc.sealbakBinary,
            ["key", "passwd", path, "--insecure-test-kdf"],
            env: [
                "SEALBAK_PASSWORD": "first", "SEALBAK_NEW_PASSWORD": "second",
                "SEALBAK_TEST_HOOK_POINT": "output: before fsync",
                "SEALBAK_TEST_HOOK":
                    "SEALBAK_NEW_PASSWORD=rekeyed '\(Proc.sealbakBinary)' rekey '\(path)' --insecure-test-kdf "
                    + "2>'\(dir)/rekey.err'; echo $? >'\(dir)/rekey.status'",
            ]
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: dir + "/rekey.status", encoding: .utf8) == "8\n")
        #expect(
            try String(contentsOfFile: dir + "/rekey.err", encoding: .utf8).contains(
                "another sealbak is changing the keys"
            )
        )
        #expect(try opens(path, with: "second"))
    }
}
