import Foundation
import SealbakTestSupport
import Testing

/// `pack --vectors`: dtype, shape and count from .npy headers and *vecs records; broken files flagged.
@Suite struct VectorsComponentTests {
    /// A NumPy v1 file of float32 with the given shape.
    static func npy(rows: Int, cols: Int) -> Data {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(cols)), }"
        header += String(repeating: " ", count: 63 - (10 + header.utf8.count) % 64) + "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        d += Data(header.utf8)
        d += Data(TestArchive.noise(rows * cols * 4, seed: 3))
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
        #expect(packed.status == 0 && packed.stderr.contains("torn.fvecs") && packed.stderr.contains("flagged"), "\(packed.stderr)")
        let listed = try CLITests.run(["list", dir + "/a.sbk"])
        #expect(listed.stdout.contains("vectors embeddings: ok, 2 vector file(s), 420 vectors"), "\(listed.stdout)")
        #expect(listed.stdout.contains("docs.npy: npy <f4 300x384") && listed.stdout.contains("base.fvecs: fvecs float32 120x96"))
        #expect(listed.stdout.contains("torn.fvecs: BROKEN"))
        let restored = try CLITests.run(["restore", dir + "/a.sbk", "--to", dir + "/out"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try CLITests.tree(dir + "/out/embeddings") == CLITests.tree(emb))
        // A single file works as well; its component is named after the file.
        #expect(try CLITests.run(["pack", dir + "/b.sbk", "--vectors", emb + "/docs.npy", "--insecure-test-kdf"]).status == 0)
        #expect(try CLITests.run(["list", dir + "/b.sbk"]).stdout.contains("vectors docs: ok, 1 vector file(s), 300 vectors"))
    }
}
