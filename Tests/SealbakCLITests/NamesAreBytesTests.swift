import Foundation
import SealbakTestSupport
import Testing

/// Names are bytes (Spec §7.2): NFC and NFD spellings are different files; control characters in names are
/// escaped in human-readable output and exact in JSON.
@Suite struct NamesAreBytesTests {
    static let env = ["SEALBAK_PASSWORD": "names-\(UUID().uuidString)"]
    static let nfc = "caf\u{E9}", nfd = "cafe\u{301}"

    @Test func namesThatDifferOnlyByNormalizationArePackedAndSelectedApart() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = dir + "/src"
        for (name, content) in [(Self.nfc, "nfc"), (Self.nfd, "nfd")] {
            try FileManager.default.createDirectory(atPath: src + "/" + name, withIntermediateDirectories: true)
            try content.write(toFile: src + "/" + name + "/x", atomically: false, encoding: .utf8)
        }
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: src).map { Array($0.utf8) }).count == 2)
        let pack = try Proc.run(
            Proc.sealbakBinary,
            ["pack", dir + "/a.sbk", src, "--insecure-test-kdf", "--quiet"],
            env: Self.env
        )
        #expect(pack.status == 0, "\(pack.stderr)")
        let r = try Proc.run(
            Proc.sealbakBinary,
            ["unpack", dir + "/a.sbk", "--to", dir + "/out", "--only", "src/" + Self.nfd, "--quiet"],
            env: Self.env
        )
        #expect(r.status == 0, "\(r.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir + "/out/src").map { Array($0.utf8) }
        #expect(names == [Array(Self.nfd.utf8)])
        #expect(try String(contentsOfFile: dir + "/out/src/" + Self.nfd + "/x", encoding: .utf8) == "nfd")
    }

    @Test func controlCharactersInNamesAreEscapedInListingsAndExactInJSON() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = dir + "/src"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        let evil = "evil\nfake line\u{1B}[2J"
        try "x".write(toFile: src + "/" + evil, atomically: false, encoding: .utf8)
        #expect(
            try Proc.run(
                Proc.sealbakBinary,
                ["pack", dir + "/a.sbk", src, "--insecure-test-kdf", "--quiet"],
                env: Self.env
            ).status == 0
        )
        let list = try Proc.run(Proc.sealbakBinary, ["list", dir + "/a.sbk"], env: Self.env)
        #expect(list.status == 0)
        #expect(list.stdout.contains("src/evil\\nfake line\\x1b[2J"), "\(list.stdout)")
        #expect(!list.stdout.contains("\u{1B}") && !list.stdout.contains("\nfake line"))
        let json = try Proc.run(Proc.sealbakBinary, ["list", dir + "/a.sbk", "--json"], env: Self.env)
        let doc = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        #expect((doc["entries"] as! [[String: Any]]).contains { $0["name"] as? String == "src/" + evil })
        // An existing file of that name in the target: the error names it escaped.
        try FileManager.default.createDirectory(atPath: dir + "/out/src", withIntermediateDirectories: true)
        try "old".write(toFile: dir + "/out/src/" + evil, atomically: false, encoding: .utf8)
        let u = try Proc.run(Proc.sealbakBinary, ["unpack", dir + "/a.sbk", "--to", dir + "/out"], env: Self.env)
        #expect(
            u.status == 7 && u.stderr.contains("evil\\nfake line\\x1b[2J") && !u.stderr.contains("\u{1B}"),
            "\(u.stderr)"
        )
        let missing = try Proc.run(
            Proc.sealbakBinary,
            ["unpack", dir + "/a.sbk", "--to", dir + "/o2", "--only", "no\u{1B}pe"],
            env: Self.env
        )
        #expect(missing.status == 9 && missing.stderr.contains("no\\x1bpe"), "\(missing.stderr)")
    }
}
