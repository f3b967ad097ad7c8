import Foundation
import SealbakTestSupport
import Testing

/// Usage errors are exit 64 wherever they are found; the writer refuses KDF costs its own readers refuse.
@Suite struct UsageErrorTests {
    static let env = ["SEALBAK_PASSWORD": "usage-\(UUID().uuidString)"]

    @Test func kdfCostsAboveTheReadCapsNeedAnExplicitFlag() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "x".write(toFile: dir + "/f", atomically: false, encoding: .utf8)
        for extra in [["--kdf-memory", "4097"], ["--kdf-passes", "11"]] {
            let r = try Proc.run(
                Proc.sealbakBinary,
                ["pack", dir + "/a.sbk", dir + "/f", "--quiet"] + extra,
                env: Self.env
            )
            #expect(r.status == 64 && r.stderr.contains("--allow-expensive-kdf"), "\(extra): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/a.sbk"))
        }
        #expect(
            try Proc.run(
                Proc.sealbakBinary,
                ["pack", dir + "/a.sbk", dir + "/f", "--insecure-test-kdf", "--quiet"],
                env: Self.env
            ).status == 0
        )
        let add = try Proc.run(
            Proc.sealbakBinary,
            ["key", "add", dir + "/a.sbk", "--kdf-passes", "11"],
            env: Self.env.merging(["SEALBAK_NEW_PASSWORD": "n"]) { a, _ in a }
        )
        #expect(add.status == 64 && add.stderr.contains("--allow-expensive-kdf"), "\(add.stderr)")
        // Within the caps, or with the flag, it is accepted (a cheap pass count keeps the test fast).
        let ok = try Proc.run(
            Proc.sealbakBinary,
            ["key", "add", dir + "/a.sbk", "--kdf-passes", "11", "--kdf-memory", "8", "--allow-expensive-kdf"],
            env: Self.env.merging(["SEALBAK_NEW_PASSWORD": "n"]) { a, _ in a }
        )
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test func twoPasswordSourcesAreAUsageError() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "pw\n".write(toFile: dir + "/pw", atomically: false, encoding: .utf8)
        for cmd in [
            ["verify", dir + "/a.sbk"], ["pack", dir + "/a.sbk", dir + "/pw"],
            ["unpack", dir + "/a.sbk", "--to", dir + "/o"],
        ] {
            let r = try Proc.run(
                Proc.sealbakBinary,
                cmd + ["--password-file", dir + "/pw", "--password-fd", "0"],
                env: ["SEALBAK_PASSWORD": ""]
            )
            #expect(
                r.status == 64 && r.stderr.contains("only one of --password-file, --password-fd and --password-command")
                    && !r.stderr.contains("internal error"),
                "\(cmd[0]): \(r.stderr)"
            )
        }
    }

    @Test func mistypedCommandsGetSuggestionsAndUnknownHelpTopicsFail() throws {
        let cases: [([String], String)] = [
            (["pakc", "a.sbk", "x"], "did you mean sealbak pack?"),
            (["unpak", "a.sbk"], "did you mean sealbak unpack?"),
            (["key", "lst", "a.sbk"], "did you mean sealbak key list?"),
            (["schedule", "instal"], "did you mean sealbak schedule install?"),
            (["help", "verfy"], "did you mean sealbak verify?"),
            (["help", "nonexistent"], "sealbak has no command nonexistent"),
        ]
        for (args, message) in cases {
            let r = try Proc.run(Proc.sealbakBinary, args, env: Self.env)
            #expect(
                r.status == 64 && r.stderr.contains(message) && r.stderr.contains("(commands: "),
                "\(args): \(r.stderr)"
            )
        }
        let ok = try Proc.run(Proc.sealbakBinary, ["help", "key", "add"], env: Self.env)
        #expect(ok.status == 0 && ok.stdout.contains("Add a password slot"), "\(ok.stderr)")
    }

    /// Help that teaches: every command's help has examples; options are grouped; upload-only object-storage options
    /// appear only on the commands that upload.
    @Test func helpHasExamplesAndGroupsAndOnlyTheOptionsThatApply() throws {
        let top = try Proc.run(Proc.sealbakBinary, ["--help"], env: Self.env)
        let commands =
            top.stdout.components(separatedBy: "SUBCOMMANDS:").last?.split(separator: "\n")
            .compactMap {
                $0.hasPrefix("  ") && !$0.hasPrefix("   ") ? $0.split(separator: " ").first.map(String.init) : nil
            }
            .filter { $0.first?.isLowercase == true } ?? []
        #expect(commands.count >= 17, "\(commands)")
        for c in commands where !["key", "schedule"].contains(c) {
            let h = try Proc.run(Proc.sealbakBinary, [c, "--help"], env: Self.env)
            #expect(h.stdout.contains("Examples:"), "\(c) --help has no examples")
        }
        let pack = try Proc.run(Proc.sealbakBinary, ["pack", "--help"], env: Self.env).stdout
        for group in [
            "WHAT TO PACK:", "RULES:", "ARCHIVE FORMAT:", "KEYS:", "PASSWORDS:", "OBJECT STORAGE:",
            "OBJECT STORAGE UPLOADS:",
        ] {
            #expect(pack.contains(group), "pack --help lacks \(group)")
        }
        for c in [["list"], ["verify"], ["inspect"], ["ls"], ["unpack"], ["restore"]] {
            let h = try Proc.run(Proc.sealbakBinary, c + ["--help"], env: Self.env).stdout
            #expect(!h.contains("--s3-part-size") && !h.contains("--s3-object-lock"), "\(c[0]) shows upload options")
        }
        for c in [["pack"], ["key", "add"], ["rekey"], ["run"]] {
            #expect(
                try Proc.run(Proc.sealbakBinary, c + ["--help"], env: Self.env).stdout.contains("--s3-object-lock"),
                "\(c)"
            )
        }
    }
}
