import Foundation
import SealbakTestSupport
import Testing

/// `pack --vectors`: dtype, shape and count from .npy headers and *vecs records; broken files flagged.
@Suite struct VectorsComponentTests {
    /// A NumPy v1 file of float32 with the given shape (random bytes, or `values`).
    static func npy(rows: Int, cols: Int, values: [UInt8]? = nil) -> Data {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(cols)), }"
        header += String(repeating: " ", count: 63 - (10 + header.utf8.count) % 64) + "\n"
        var d = Data(
            [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        )
        d += Data(header.utf8)
        d += Data(values ?? TestArchive.noise(rows * cols * 4, seed: 3))
        return d
    }

    static func fvecs(rows: Int, dim: Int) -> Data {
        var d = Data()
        for r in 0..<rows {
            withUnsafeBytes(of: Int32(dim).littleEndian) { d += Data($0) }
            d += Data(TestArchive.noise(dim * 4, seed: UInt64(r)))
        }
        return d
    }

    @Test func shapesAreRecordedCheckedAndRestored() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let emb = dir + "/embeddings"
        try FileManager.default.createDirectory(atPath: emb, withIntermediateDirectories: true)
        try Self.npy(rows: 300, cols: 384).write(to: URL(fileURLWithPath: emb + "/docs.npy"))
        try Self.fvecs(rows: 120, dim: 96).write(to: URL(fileURLWithPath: emb + "/base.fvecs"))
        try Self.fvecs(rows: 3, dim: 8).prefix(50).write(to: URL(fileURLWithPath: emb + "/torn.fvecs"))
        try Data("ids".utf8).write(to: URL(fileURLWithPath: emb + "/ids.txt"))
        let packed = try CLITests.run(["pack", dir + "/a.sbk", "--vectors", emb, "--insecure-test-kdf"])
        #expect(
            packed.status == 0 && packed.stderr.contains("torn.fvecs") && packed.stderr.contains("flagged"),
            "\(packed.stderr)"
        )
        let listed = try CLITests.run(["list", dir + "/a.sbk"])
        #expect(listed.stdout.contains("vectors embeddings: ok, 2 vector file(s), 420 vectors"), "\(listed.stdout)")
        #expect(
            listed.stdout.contains("docs.npy: npy <f4 300x384")
                && listed.stdout.contains("base.fvecs: fvecs float32 120x96")
        )
        #expect(listed.stdout.contains("torn.fvecs: BROKEN"))
        let restored = try CLITests.run(["restore", dir + "/a.sbk", "--to", dir + "/out"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try CLITests.tree(dir + "/out/embeddings") == CLITests.tree(emb))
        // A single file works as well; its component is named after the file.
        #expect(
            try CLITests.run(["pack", dir + "/b.sbk", "--vectors", emb + "/docs.npy", "--insecure-test-kdf"]).status
                == 0
        )
        #expect(
            try CLITests.run(["list", dir + "/b.sbk"]).stdout.contains(
                "vectors docs: ok, 1 vector file(s), 300 vectors"
            )
        )
    }

    /// Vector files go through the shuffle codec (format version 2, Spec §3.4); `--no-shuffle` and a plan's
    /// `shuffle: false` write version 1; an archive without vector files stays version 1.
    @Test func vectorFilesAreShuffledUnlessTurnedOff() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let emb = dir + "/embeddings"
        try FileManager.default.createDirectory(atPath: emb, withIntermediateDirectories: true)
        let npy = Self.npy(rows: 2000, cols: 384, values: TestArchive.gaussianFloats(2000 * 384, seed: 9))
        try npy.write(to: URL(fileURLWithPath: emb + "/docs.npy"))
        try Data("notes\n".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))

        let shuffled = dir + "/s.sbk"
        let plain = dir + "/p.sbk"
        let text = dir + "/t.sbk"
        let planned = dir + "/plan.sbk"
        #expect(try CLITests.run(["pack", shuffled, "--vectors", emb, "--insecure-test-kdf"]).status == 0)
        #expect(try CLITests.run(["pack", plain, "--vectors", emb, "--no-shuffle", "--insecure-test-kdf"]).status == 0)
        #expect(try CLITests.run(["pack", text, dir + "/notes.txt", "--insecure-test-kdf"]).status == 0)
        #expect(try CLITests.formatVersion(shuffled) == (2, ["shuffle"]))
        #expect(try CLITests.formatVersion(plain) == (1, []))
        #expect(try CLITests.formatVersion(text) == (1, []))
        #expect(try CLITests.run(["inspect", shuffled]).stdout.contains("format version 2 (features: shuffle)"))
        let sizes = try [shuffled, plain].map { try FileManager.default.attributesOfItem(atPath: $0)[.size] as! Int }
        #expect(Double(sizes[0]) < 0.95 * Double(sizes[1]), "shuffled \(sizes[0]) bytes, --no-shuffle \(sizes[1])")
        #expect(try CLITests.run(["verify", shuffled]).status == 0)
        #expect(try CLITests.run(["restore", shuffled, "--to", dir + "/out"]).status == 0)
        #expect(FileManager.default.contents(atPath: dir + "/out/embeddings/docs.npy") == npy)

        let plan = dir + "/sealbak.yaml"
        try
            ("version: 1\ncomponents:\n  - {name: emb, kind: vectors, path: \(emb)}\npack: {shuffle: false, "
            + "kdf-memory: 8, kdf-passes: 1}\n")
            .write(toFile: plan, atomically: true, encoding: .utf8)
        let r = try CLITests.run(["pack", planned, "--plan", plan])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try CLITests.formatVersion(planned) == (1, []))
    }
}
