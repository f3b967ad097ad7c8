import Foundation
import SealbakTestSupport
import Testing

/// `pack --qdrant`: a storage folder's collections, or snapshot files (tar archives) with their collection names.
/// The Qdrant server itself is not installable here (no Debian or PyPI package), so the layouts are built by hand
/// as Qdrant writes them: storage/collections/NAME/…, and COLLECTION-ID-DATE.snapshot tar files.
@Suite struct QdrantComponentTests {
    @Test func storageFoldersAndSnapshotsAreRecordedAndRestored() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage = dir + "/storage"
        for (c, n) in [("docs", 3), ("chat-history", 2)] {
            for i in 0..<n {
                let seg = storage + "/collections/\(c)/0/segments/seg-\(i)"
                try FileManager.default.createDirectory(atPath: seg, withIntermediateDirectories: true)
                try Data(TestArchive.noise(10_000 * (i + 1), seed: UInt64(i))).write(
                    to: URL(fileURLWithPath: seg + "/vector_storage.dat")
                )
            }
            try Data("{\"params\":{}}".utf8).write(to: URL(fileURLWithPath: storage + "/collections/\(c)/config.json"))
        }
        try FileManager.default.createDirectory(atPath: storage + "/aliases", withIntermediateDirectories: true)
        let packed = try CLITests.run(["pack", dir + "/a.sbk", "--qdrant", "qd=" + storage, "--insecure-test-kdf"])
        #expect(packed.status == 0 && packed.stderr.contains("2 collection(s): chat-history"), "\(packed.stderr)")
        let listed = try CLITests.run(["list", dir + "/a.sbk"])
        #expect(listed.stdout.contains("qdrant qd: ok, storage, collections chat-history, docs"), "\(listed.stdout)")
        #expect(try CLITests.run(["restore", dir + "/a.sbk", "--to", dir + "/out"]).status == 0)
        #expect(try CLITests.tree(dir + "/out/qd") == CLITests.tree(storage))

        // Snapshots: tar archives named COLLECTION-ID-YYYY-MM-DD-hh-mm-ss.snapshot.
        let snaps = dir + "/snapshots"
        try FileManager.default.createDirectory(atPath: snaps, withIntermediateDirectories: true)
        let tar = try Proc.run(
            "/usr/bin/tar",
            [
                "-cf", snaps + "/docs-2410538812212434-2026-11-21-10-00-00.snapshot", "-C", storage + "/collections",
                "docs",
            ]
        )
        #expect(tar.status == 0, "\(tar.stderr)")
        let s = try CLITests.run(["pack", dir + "/s.sbk", "--qdrant", snaps, "--insecure-test-kdf"])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(
            try CLITests.run(["list", dir + "/s.sbk"]).stdout.contains(
                "qdrant snapshots: ok, snapshots, collections docs"
            )
        )
        #expect(try CLITests.run(["restore", dir + "/s.sbk", "--to", dir + "/back"]).status == 0)
        // Anything else is refused with what to do.
        try Data("not a tar".utf8).write(to: URL(fileURLWithPath: dir + "/fake.snapshot"))
        let fake = try CLITests.run(["pack", dir + "/f.sbk", "--qdrant", dir + "/fake.snapshot", "--insecure-test-kdf"])
        #expect(fake.status == 64 && fake.stderr.contains("not a Qdrant snapshot"))
        // A snapshot cut short (here in the middle of its last member) is refused before anything is packed,
        // not recorded as a healthy collection (regression: only the first header used to be checked).
        try FileManager.default.createDirectory(atPath: dir + "/big", withIntermediateDirectories: true)
        try Data((0..<5000).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: dir + "/big/segment"))
        let bigTar = try Proc.run("/usr/bin/tar", ["-cf", dir + "/big.tar", "-C", dir + "/big", "segment"])
        #expect(bigTar.status == 0, "\(bigTar.stderr)")
        let whole = try Data(contentsOf: URL(fileURLWithPath: dir + "/big.tar"))
        try FileManager.default.createDirectory(atPath: dir + "/cut", withIntermediateDirectories: true)
        // Inside the member's data, inside its last block, and just before the end marker's second block.
        for keep in [512 + 2500, 512 + 4999, 512 + 5120 + 600] {
            try whole.prefix(keep).write(to: URL(fileURLWithPath: dir + "/cut/docs-1-2026-11-21-10-00-00.snapshot"))
            let cut = try CLITests.run(["pack", dir + "/c.sbk", "--qdrant", dir + "/cut", "--insecure-test-kdf"])
            #expect(cut.status == 64 && cut.stderr.contains("not a complete Qdrant snapshot"), "\(keep): \(cut.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/c.sbk"))
        }
        let neither = try CLITests.run(["pack", dir + "/n.sbk", "--qdrant", dir + "/out", "--insecure-test-kdf"])
        #expect(neither.status == 64 && neither.stderr.contains("neither a Qdrant storage folder"), "\(neither.stderr)")
    }
}
