import Foundation
import SealbakArchive
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakTestSupport
import Testing

/// Name conflicts are found when the extractor is created, before any data is read or any name in the target
/// changes (issue #13; docs/usage.md "Unpack safety").
@Suite struct ExtractorConflictTests {
    func manifest(_ entries: [TestEntry]) throws -> Manifest {
        let (input, path) = try TestReader.file(try TestArchive.build(entries))
        defer { unlink(path) }
        return try ArchiveReader(input: input, passphrase: Passphrase(string: "password")).manifest
    }

    /// Each list is refused as a whole: an earlier entry ("0-first", sorted first) must not reach the target.
    static let hostile: [[TestEntry]] = [
        [TestEntry(.file, "0-first", [1]), TestEntry(.file, "a", [1]), TestEntry(.file, "a/b", [2])],
        [TestEntry(.file, "0-first", [1]), TestEntry(.symlink, "a", link: "."), TestEntry(.file, "a/b", [2])],
        [
            TestEntry(.file, "0-first", [1]), TestEntry(.directory, "real"), TestEntry(.symlink, "d", link: "real"),
            TestEntry(.directory, "d/sub"), TestEntry(.file, "d/sub/f", [1]),
        ],
        // A symlink the symlink rule skips (it leaves the root): entries below it are refused, not dropped.
        [TestEntry(.file, "0-first", [1]), TestEntry(.symlink, "out", link: "/tmp"), TestEntry(.file, "out/x", [1])],
        [TestEntry(.file, "0-first", [1]), TestEntry(.stream, "s", [1]), TestEntry(.file, "s/x", [1])],
    ]

    @Test(arguments: hostile.indices)
    func entriesBelowAFileOrSymlinkEntryAreRefusedBeforeAnythingIsWritten(_ i: Int) throws {
        let root = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let m = try manifest(Self.hostile[i])
        do {
            _ = try Extractor(root: root, manifest: m, selected: Set(m.entries.indices), force: true)
            Issue.record("case \(i) was accepted")
        } catch let e {
            #expect(e.code == .corrupt && e.message.contains("below"), "\(e.message)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
    }

    @Test func targetConflictsAreRefusedWhenTheExtractorIsCreated() throws {
        let root = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "x".write(toFile: root + "/d", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/dir", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: "dir")
        let cases: [[TestEntry]] = [
            [TestEntry(.file, "a", [1]), TestEntry(.file, "d/f", [1])],  // a file on the way
            [TestEntry(.file, "a", [1]), TestEntry(.directory, "d")],  // a file where a folder goes
            [TestEntry(.file, "a", [1]), TestEntry(.file, "dir", [1])],  // a folder where a file goes
            [TestEntry(.file, "a", [1]), TestEntry(.file, "link/f", [1])],  // a symlink on the way
        ]
        for entries in cases {
            let m = try manifest(entries)
            var refused = false
            do {
                _ = try Extractor(root: root, manifest: m, selected: Set(m.entries.indices), force: true)
            } catch {
                refused = error.code == .targetExists
            }
            #expect(refused, "\(entries.map(\.name)) was not refused as a target conflict")
            #expect(try FileManager.default.contentsOfDirectory(atPath: root).sorted() == ["d", "dir", "link"])
        }
    }

    /// NFC "é" and NFD "e\u{301}" are different names on Linux: both folders are extracted, side by side.
    @Test func namesThatDifferOnlyByNormalizationAreDifferentFolders() throws {
        let root = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let nfc = "caf\u{E9}"
        let nfd = "cafe\u{301}"
        let m = try manifest([
            TestEntry(.directory, nfc), TestEntry(.file, nfc + "/x", [1]),
            TestEntry(.directory, nfd), TestEntry(.file, nfd + "/x", [2]),
        ])
        let (input, path) = try TestReader.file(
            try TestArchive.build([
                TestEntry(.directory, nfc), TestEntry(.file, nfc + "/x", [1]), TestEntry(.directory, nfd),
                TestEntry(.file, nfd + "/x", [2]),
            ])
        )
        defer { unlink(path) }
        let reader = try ArchiveReader(input: input, passphrase: Passphrase(string: "password"))
        let ex = try Extractor(root: root, manifest: m, selected: Set(m.entries.indices), force: false)
        try reader.readAll(into: ex)
        try ex.commit()
        let names = try FileManager.default.contentsOfDirectory(atPath: root).map { Array($0.utf8) }
        #expect(Set(names) == [Array(nfc.utf8), Array(nfd.utf8)])
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/" + nfd + "/x")) == Data([2]))
    }

    @Test func displayNameEscapesControlsAndInvalidBytes() {
        #expect(displayName("a\nb") == "a\\nb")
        #expect(displayName("\u{1B}[31mred") == "\\x1b[31mred")
        #expect(displayName("tab\there\u{7F}") == "tab\\there\\x7f")
        #expect(displayName("c1\u{85}x") == "c1\\u{85}x")
        #expect(displayName("back\\slash") == "back\\\\slash")
        #expect(displayName("caf\u{E9} \u{1F600}") == "caf\u{E9} \u{1F600}")
        #expect(displayName(bytes: [0x61, 0xFF, 0xC3]) == "a\\xff\\xc3")
    }

    /// `hex` (the move plan's names, ids in messages) writes every byte value as `%02x` does.
    @Test func hexWritesEveryByteAsPrintfDoes() {
        let all = (0...255).map { UInt8($0) }
        #expect(hex(all) == all.map { String(format: "%02x", $0) }.joined())
        #expect(hex([UInt8]()) == "")
        #expect(hex(all[250...]) == "fafbfcfdfeff")
    }

    @Test func staleLeftoversAreFoundOnlyWhenTheirProcessIsGone() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        try fm.createDirectory(
            atPath: dir + "/.kb.sealbak-restore-2147483646-1234/x",
            withIntermediateDirectories: true
        )
        try fm.createDirectory(atPath: dir + "/.kb.sealbak-restore-\(getpid())-99", withIntermediateDirectories: true)
        // init lives
        try fm.createDirectory(atPath: dir + "/.kb.sealbak-restore-1-5", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/kb", withIntermediateDirectories: true)
        let removed = Leftovers.removeStale(prefix: ".kb.sealbak-restore-", in: dir)
        #expect(removed == [dir + "/.kb.sealbak-restore-2147483646-1234"])
        #expect(
            try fm.contentsOfDirectory(atPath: dir).sorted() == [
                ".kb.sealbak-restore-1-5", ".kb.sealbak-restore-\(getpid())-99", "kb",
            ]
        )
    }
}
