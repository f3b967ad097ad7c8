import Foundation
import SealbakTestSupport
import Testing

/// Sparse files stay sparse: pack reads holes as zeros without reading them (SEEK_DATA/SEEK_HOLE), unpack
/// leaves whole zero blocks as holes and sets the size with ftruncate.
@Suite struct SparseFileTests {
    @Test func aFourGiBImageWithEightKiBOfDataStaysSmall() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/img"
        let size: Int64 = 4 << 30
        let offsets: [Int64] = [1000 * 4096, size - 4096]  // data in the middle and in the last block
        let fd = open(image, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0 && ftruncate(fd, off_t(size)) == 0)
        var blocks: [[UInt8]] = []
        for (i, off) in offsets.enumerated() {
            let block = TestArchive.noise(4096, seed: UInt64(i + 1))
            blocks.append(block)
            #expect(block.withUnsafeBytes { pwrite(fd, $0.baseAddress, 4096, off_t(off)) } == 4096)
        }
        close(fd)
        let env = ["SEALBAK_PASSWORD": "sparse"]
        let pack = try Proc.run(
            Proc.sealbakBinary,
            ["pack", dir + "/a.sbk", image, "--insecure-test-kdf", "--quiet"],
            env: env
        )
        #expect(pack.status == 0, "\(pack.stderr)")
        let unpack = try Proc.run(
            Proc.sealbakBinary,
            ["unpack", dir + "/a.sbk", "--to", dir + "/out", "--quiet"],
            env: env
        )
        #expect(unpack.status == 0, "\(unpack.stderr)")
        var st = stat()
        #expect(stat(dir + "/out/img", &st) == 0)
        #expect(Int64(st.st_size) == size)
        #expect(Int64(st.st_blocks) * 512 <= 64 << 10, "restored image allocates \(Int64(st.st_blocks) * 512) bytes")
        let out = open(dir + "/out/img", O_RDONLY)
        defer { close(out) }
        for (i, off) in offsets.enumerated() {
            var got = [UInt8](repeating: 0, count: 4096)
            #expect(pread(out, &got, 4096, off_t(off)) == 4096)
            #expect(got == blocks[i])
        }
        // The archive holds what was read: its SHA-256 of the entry was checked by unpack; list shows the size.
        let list = try Proc.run(Proc.sealbakBinary, ["list", dir + "/a.sbk"], env: env)
        #expect(list.stdout.contains("\(size)"))
    }
}
