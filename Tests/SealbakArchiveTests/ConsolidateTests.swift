import Foundation
import SealbakArchive
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakSync
import SealbakTestSupport
import Testing

/// `Consolidate.copy` hands verified content from a reading thread to the writer through a queue bounded at
/// 16 MiB: content larger than that must make both sides wait for each other, arrive whole and in order, and a
/// writer that fails must stop the reader instead of leaving it waiting for room.
@Suite struct ConsolidateTests {
    static let entries = [
        TestEntry(.file, "a", TestArchive.noise(9 << 20, seed: 1)),
        TestEntry(.file, "empty", []),
        TestEntry(.file, "b", TestArchive.text(21 << 20)),
        TestEntry(.file, "c", TestArchive.noise(7 << 20, seed: 2)),
    ]

    static func copy(_ bytes: [UInt8], sink: @escaping (RawSpan) throws -> Void) throws {
        let (input, path) = try TestReader.file(bytes)
        defer { unlink(path) }
        var o = ReadOptions()
        o.threads = 2
        let reader = try ArchiveReader(input: input, secret: .password(Passphrase(string: "password")), options: o)
        _ = try Consolidate.copy(
            from: reader,
            passwords: [PasswordSlotSpec(passphrase: Passphrase(string: "second"), label: "copy")],
            recipients: [],
            options: TestArchive.options(frameSizeLog2: 20),
            sink: sink
        )
    }

    @Test func contentLargerThanTheQueueArrivesWholeAndInOrder() throws {
        let original = try TestArchive.build(Self.entries, options: TestArchive.options(frameSizeLog2: 20))
        let out = ByteCollector()
        try Self.copy(original) { out.append($0) }
        let back = try TestReader.readAll(out.bytes, password: "second")
        #expect(back.manifest.entries.map(\.name) == Self.entries.map(\.name))
        #expect(back.data == Self.entries.map(\.data))
    }

    struct DiskFull: Error {}

    /// Copies the test archive into a sink that fails (disk full) once `failsAt(total written)` holds.
    static func copyFailing(_ original: [UInt8], when failsAt: @escaping (Int) -> Bool) throws {
        let written = Locked(0)
        try copy(original) { b in
            let total = written.withLock {
                $0 += b.byteCount
                return $0
            }
            if failsAt(total) { throw DiskFull() }
        }
    }

    /// The last write (the trailer and footer) failing, after the reading thread ended, is reported (and does not
    /// wait for that thread a second time).
    @Test func aFailureWritingTheTrailerIsReported() throws {
        let original = try TestArchive.build(Self.entries, options: TestArchive.options(frameSizeLog2: 20))
        let size = Locked(0)
        try Self.copy(original) { b in size.withLock { $0 += b.byteCount } }
        let total = size.current
        #expect(throws: DiskFull.self) { try Self.copyFailing(original) { $0 == total } }
    }

    @Test func aFailingWriterStopsTheReaderAndItsErrorSurfaces() throws {
        let original = try TestArchive.build(Self.entries, options: TestArchive.options(frameSizeLog2: 20))
        #expect(throws: DiskFull.self) { try Self.copyFailing(original) { $0 > 3 << 20 } }
    }
}
