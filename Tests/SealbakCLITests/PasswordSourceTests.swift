import Foundation
import SealbakTestSupport
import Testing

/// Where passwords come from: commands and files named by variables, the prompt on a real pseudo-terminal (asked
/// again when wrong, echo restored on Ctrl-C), the same options on every command, inapplicable ones refused.
@Suite struct PasswordSourceTests {
    static let password = "pty-\(UUID().uuidString.prefix(8))"
    /// No password in the environment: the prompt is the source.
    static let noPasswordEnv = [
        "SEALBAK_PASSWORD": "", "SEALBAK_PASSWORD_FILE": "", "SEALBAK_PASSWORD_COMMAND": "", "SEALBAK_NEW_PASSWORD": "",
        "SEALBAK_IDENTITY_PASSWORD": "",
    ]

    struct Driven: Decodable {
        var status: Int?
        var echo: Bool?
        var output: String
        var error: String?
    }

    /// Runs sealbak on a pseudo-terminal (scripts/pty-drive.py), typing the steps.
    static func onTerminal(_ steps: [[String]], _ args: [String]) throws -> Driven {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: steps), as: UTF8.self)
        let env = ["env"] + noPasswordEnv.keys.sorted().flatMap { ["-u", $0] }
        let r = try Proc.run(
            "/usr/bin/env",
            ["python3", Proc.root + "/scripts/pty-drive.py", json, "--"] + env + [Proc.sealbakBinary] + args
        )
        guard r.status == 0, let d = try? JSONDecoder().decode(Driven.self, from: Data(r.stdout.utf8)) else {
            throw TestFailure("pty-drive failed (\(r.status)): \(r.stdout) \(r.stderr)")
        }
        return d
    }

    static func archive(in dir: String) throws -> String {
        try "hello\n".write(toFile: dir + "/f", atomically: false, encoding: .utf8)
        let r = try Proc.run(
            Proc.sealbakBinary,
            ["pack", dir + "/a.sbk", dir + "/f", "--insecure-test-kdf", "--quiet"],
            env: ["SEALBAK_PASSWORD": password]
        )
        guard r.status == 0 else { throw TestFailure(r.stderr) }
        return dir + "/a.sbk"
    }

    @Test func ctrlCAtAnyPromptGivesTheTerminalItsEchoBack() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Self.archive(in: dir)
        let cases: [([[String]], [String])] = [
            ([["expect", "Enter password: "], ["send", "\u{3}"]], ["list", a]),
            (
                [
                    ["expect", "Enter password: "], ["send", "abc\n"], ["expect", "Repeat password: "],
                    ["send", "\u{3}"],
                ],
                ["pack", dir + "/b.sbk", dir + "/f", "--insecure-test-kdf"]
            ),
            (
                [
                    ["expect", "Enter current password: "], ["send", Self.password + "\n"],
                    ["expect", "Enter new password: "], ["send", "\u{3}"],
                ],
                ["key", "add", a, "--insecure-test-kdf"]
            ),
        ]
        for (steps, args) in cases {
            let d = try Self.onTerminal(steps, args)
            #expect(
                d.status == 130 && d.echo == true,
                """
                \(args.first!): status \(String(describing: d.status)), echo \(String(describing: d.echo)): \
                \(d.output)
                """
            )
            #expect(
                !d.output.contains("abc") && !d.output.contains(Self.password),
                "a typed password was echoed: \(d.output)"
            )
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/b.sbk"))
    }

    @Test func aWrongPasswordIsAskedForAgainThreeTimesInAll() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Self.archive(in: dir)
        let ok = try Self.onTerminal(
            [
                ["expect", "Enter password: "], ["send", "wrong-1\n"], ["expect", "try again"],
                ["expect", "Enter password: "], ["send", "wrong-2\n"], ["expect", "try again"],
                ["expect", "Enter password: "], ["send", Self.password + "\n"],
            ],
            ["list", a]
        )
        #expect(ok.status == 0 && ok.output.contains("  f\r\n") && ok.echo == true, "\(ok.output)")
        #expect(!ok.output.contains("wrong-1") && !ok.output.contains(Self.password))

        let no = try Self.onTerminal(
            [
                ["expect", "Enter password: "], ["send", "wrong-1\n"], ["expect", "Enter password: "],
                ["send", "wrong-2\n"],
                ["expect", "Enter password: "], ["send", "wrong-3\n"],
            ],
            ["verify", a]
        )
        #expect(no.status == 3 && no.output.components(separatedBy: "Enter password: ").count == 4, "\(no.output)")
        // Key edits too (the header is checked before anything is written).
        let edit = try Self.onTerminal(
            [
                ["expect", "Enter current password: "], ["send", "wrong\n"], ["expect", "try again"],
                ["expect", "Enter current password: "], ["send", Self.password + "\n"],
                ["expect", "Enter new password: "], ["send", "second-pw\n"], ["expect", "Repeat new password: "],
                ["send", "second-pw\n"],
            ],
            ["key", "add", a, "--insecure-test-kdf"]
        )
        #expect(edit.status == 0, "\(edit.output)")
        #expect(try Proc.run(Proc.sealbakBinary, ["verify", a], env: ["SEALBAK_PASSWORD": "second-pw"]).status == 0)
    }

    @Test func passwordsFromCommandsAndFilesNamedByVariables() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "hello\n".write(toFile: dir + "/f", atomically: false, encoding: .utf8)
        let secret = "cmd-\(UUID().uuidString)"
        try "\(secret)\n".write(toFile: dir + "/pw", atomically: false, encoding: .utf8)
        // A password manager prints the password (and maybe more lines, later); only the first line counts, and the
        // command is not cut off by SIGPIPE when it writes the rest after sealbak has its password.
        let pack = try Proc.run(
            Proc.sealbakBinary,
            ["pack", dir + "/a.sbk", dir + "/f", "--insecure-test-kdf", "--quiet"],
            env: Self.noPasswordEnv.merging([
                "SEALBAK_PASSWORD_COMMAND": "cat '\(dir)/pw'; sleep 0.3; echo url: example"
            ]) { _, b in b }
        )
        #expect(pack.status == 0, "\(pack.stderr)")
        let viaFileVar = try Proc.run(
            Proc.sealbakBinary,
            ["verify", dir + "/a.sbk"],
            env: Self.noPasswordEnv.merging(["SEALBAK_PASSWORD_FILE": dir + "/pw"]) { _, b in b }
        )
        #expect(viaFileVar.status == 0, "\(viaFileVar.stderr)")
        let viaFlag = try Proc.run(
            Proc.sealbakBinary,
            ["list", dir + "/a.sbk", "--password-command", "cat '\(dir)/pw'"],
            env: Self.noPasswordEnv
        )
        #expect(viaFlag.status == 0 && viaFlag.stdout.contains("f"), "\(viaFlag.stderr)")
        // A failing command is an error even if it printed something; its status is named, its output never.
        let failing = try Proc.run(
            Proc.sealbakBinary,
            ["list", dir + "/a.sbk", "--password-command", "cat '\(dir)/pw'; echo vault is sealed >&2; exit 2"],
            env: Self.noPasswordEnv
        )
        #expect(
            failing.status == 11 && failing.stderr.contains("exited with status 2")
                && failing.stderr.contains("vault is sealed"),
            "\(failing.stderr)"
        )
        #expect(!failing.stderr.contains(secret) && !failing.stdout.contains(secret))
        let wrong = try Proc.run(
            Proc.sealbakBinary,
            ["list", dir + "/a.sbk", "--password-command", "echo nope"],
            env: Self.noPasswordEnv
        )
        #expect(wrong.status == 3, "\(wrong.stderr)")
        // New passwords the same way (key add), and the message without any source names the new-password options.
        let add = try Proc.run(
            Proc.sealbakBinary,
            [
                "key", "add", dir + "/a.sbk", "--password-file", dir + "/pw", "--insecure-test-kdf",
                "--new-password-command", "echo second",
            ],
            env: Self.noPasswordEnv
        )
        #expect(add.status == 0, "\(add.stderr)")
        #expect(
            try Proc.run(Proc.sealbakBinary, ["verify", dir + "/a.sbk"], env: ["SEALBAK_PASSWORD": "second"]).status
                == 0
        )
        let none = try Proc.run(
            Proc.sealbakBinary,
            ["key", "add", dir + "/a.sbk", "--password-file", dir + "/pw", "--insecure-test-kdf"],
            env: Self.noPasswordEnv
        )
        #expect(
            none.status == 64 && none.stderr.contains("--new-password-file")
                && none.stderr.contains("SEALBAK_NEW_PASSWORD"),
            "\(none.stderr)"
        )
        let two = try Proc.run(
            Proc.sealbakBinary,
            ["list", dir + "/a.sbk", "--password-file", dir + "/pw", "--password-command", "true"],
            env: Self.noPasswordEnv
        )
        #expect(two.status == 64, "\(two.stderr)")
    }

    @Test func theSameOptionsAreAcceptedEverywhereAndInapplicableOnesRefused() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Self.archive(in: dir)
        try "\(Self.password)\n".write(toFile: dir + "/pw", atomically: false, encoding: .utf8)
        // A wrapper passes --password-file to every command, including those that need no password.
        for args in [["key", "list", a], ["inspect", a], ["list", a], ["verify", a]] {
            let r = try Proc.run(Proc.sealbakBinary, args + ["--password-file", dir + "/pw"], env: Self.noPasswordEnv)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
        // --identity where it would be silently ignored: refused, with what to do instead.
        let pack = try Proc.run(
            Proc.sealbakBinary,
            ["pack", dir + "/b.sbk", dir + "/f", "--identity", dir + "/id", "--password-file", dir + "/pw"],
            env: Self.noPasswordEnv
        )
        #expect(pack.status == 64 && pack.stderr.contains("--recipient"), "\(pack.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/b.sbk"))
        let keygen = try Proc.run(
            Proc.sealbakBinary,
            ["keygen", "-o", dir + "/id", "--identity", dir + "/other", "--no-password"],
            env: Self.noPasswordEnv
        )
        #expect(keygen.status == 64 && keygen.stderr.contains("-o/--output"), "\(keygen.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/id"))
    }
}
