import Foundation
import SealbakIO
import SealbakTestSupport
import Testing

/// Pack notices a file that changes under it (tar's "file changed as we read it"): the plan records each file's
/// state when listed, the reader compares at open and at end of file, and the bytes read with the size.
@Suite struct PackChangeTests {
    func setUp() throws -> (dir: String, plan: PackPlan, index: Int) {
        let dir = try Proc.tempDir()
        try FileManager.default.createDirectory(atPath: dir + "/tree", withIntermediateDirectories: true)
        try Data(repeating: 7, count: 200_000).write(to: URL(fileURLWithPath: dir + "/tree/f"))
        var plan = PackPlan()
        try plan.add(path: dir + "/tree")
        let index = try #require(plan.entries.firstIndex { $0.name == "tree/f" })
        return (dir, plan, index)
    }

    /// Reads the whole source in 64 KiB chunks, calling `between` after the first chunk.
    func readAll(_ r: SourceReader, between: () throws -> Void = {}) throws -> Int {
        var buf = [UInt8](repeating: 0, count: 65536)
        var total = 0
        var first = true
        while true {
            let n = try fillBytes(&buf) { (out) throws(SealbakError) in try r.read(into: &out) }
            if n == 0 { return total }
            total += n
            if first {
                first = false
                try between()
            }
        }
    }

    @Test func anUnchangedFileIsNotReported() throws {
        let (dir, plan, i) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try SourceReader(plan.sources[i], listed: plan.listed[i])
        #expect(try readAll(r) == 200_000)
        #expect(r.changed == nil)
    }

    @Test func aFileThatShrinksWhileReadIsReported() throws {
        let (dir, plan, i) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try SourceReader(plan.sources[i], listed: plan.listed[i])
        _ = try readAll(r) { truncate(dir + "/tree/f", 100_000) }
        #expect(
            r.changed?.contains("changed size from 200000 to 100000 bytes while it was read") == true,
            "\(r.changed ?? "nil")"
        )
    }

    @Test func aFileThatGrowsWhileReadIsReported() throws {
        let (dir, plan, i) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try SourceReader(plan.sources[i], listed: plan.listed[i])
        let n = try readAll(r) {
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/tree/f"))
            try h.seekToEnd()
            try h.write(contentsOf: Data(repeating: 1, count: 5000))
            try h.close()
        }
        #expect(n == 205_000)
        #expect(r.changed != nil)
    }

    @Test func aFileChangedBetweenListingAndReadingIsReported() throws {
        let (dir, plan, i) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(repeating: 9, count: 10).write(to: URL(fileURLWithPath: dir + "/tree/f"))  // replaced (new inode)
        let r = try SourceReader(plan.sources[i], listed: plan.listed[i])
        #expect(try readAll(r) == 10)
        #expect(r.changed?.contains("after it was listed") == true, "\(r.changed ?? "nil")")
        // Without the listed state, the reader still compares the bytes with the size at open.
        let plain = try SourceReader(plan.sources[i])
        _ = try readAll(plain)
        #expect(plain.changed == nil)
    }
}

@Suite struct SparseReadTests {
    /// Holes are produced as zeros without being read; the bytes are exactly the file's.
    @Test func holesReadAsZerosAndDataExactly() throws {
        let path = NSTemporaryDirectory() + "sealbak-sparse-\(UUID().uuidString)"
        defer { unlink(path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        ftruncate(fd, 5 << 20)  // ends in a hole
        let data = TestArchive.noise(10_000, seed: 3)
        _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 1 << 20 + 123) }
        _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        close(fd)
        var st = stat()
        lstat(path, &st)
        let r = try SourceReader(.file(path: path), listed: FileState(st))
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0xEE, count: 300_000)
        while true {
            let n = try fillBytes(&buf) { (out) throws(SealbakError) in try r.read(into: &out) }
            if n == 0 { break }
            out += buf[0..<n]
        }
        #expect(out == [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(r.changed == nil)
    }
}
