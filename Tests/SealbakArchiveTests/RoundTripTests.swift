import Foundation
import SealbakArchive
import SealbakCompression
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakTestSupport
import Testing

@Suite struct RoundTripTests {
    static let fs = 4096
    static let sizes = [0, 1, 2, fs - 1, fs, fs + 1, 2 * fs, 3 * fs + 17, 10_000]

    @Test(arguments: sizes)
    func everyEdgeSizeRoundTripsWithEveryCodec(_ size: Int) throws {
        let algorithms: [CompressionAlgorithm] = [.zstd(level: 3), .zlib(level: 6), .stored]
        for algorithm in algorithms {
            for data in [TestArchive.text(size), TestArchive.noise(size, seed: UInt64(size) + 1)] {
                let bytes = try TestArchive.build(
                    [TestEntry(.file, "f", data)],
                    options: TestArchive.options(compression: algorithm)
                )
                let back = try TestReader.readAll(bytes)
                #expect(back.data[0] == data)
                #expect(back.trailer.entries[0].size == UInt64(size))
                #expect(back.trailer.entries[0].sha256 == SHA256Hasher.hash(data))
            }
        }
    }

    @Test func aes256gcmRoundTripsWhereAvailable() throws {
        guard Sodium.aes256gcmAvailable else {
            #expect(throws: SealbakError.self) {
                try TestArchive.build([], options: TestArchive.options(suite: .aes256gcm))
            }
            return
        }
        let data = TestArchive.text(3 * Self.fs + 5)
        let bytes = try TestArchive.build(
            [TestEntry(.file, "f", data)],
            options: TestArchive.options(suite: .aes256gcm)
        )
        #expect(bytes[14] == CipherSuite.aes256gcm.rawValue)
        #expect(try TestReader.readAll(bytes).data[0] == data)
    }

    @Test func frameSizesFromMinimumToLarge() throws {
        for log2 in [UInt8(12), 16, 20] {
            let data = TestArchive.noise((1 << Int(log2)) * 2 + 3, seed: UInt64(log2))
            let bytes = try TestArchive.build(
                [TestEntry(.file, "f", data)],
                options: TestArchive.options(frameSizeLog2: log2)
            )
            #expect(try TestReader.readAll(bytes).data[0] == data)
        }
    }

    @Test func incompressibleFramesAreStoredNotExpanded() throws {
        let data = TestArchive.noise(8 * Self.fs, seed: 9)
        let bytes = try TestArchive.build([TestEntry(.file, "f", data)])
        let layout = try ArchiveLayout(bytes, entryCount: 1)
        // Stored frame = 4-byte header + 5-byte prefix + raw + 16-byte tag.
        for f in layout.entries[0] { #expect(f.length == 4 + 5 + Self.fs + 16) }
    }

    @Test func manyEntriesOfEveryKindKeepTheirMetadata() throws {
        let vec = Vectors.valid().first { $0.name == "many-entries" }!
        let back = try TestReader.readAll(try vec.build(), password: Vectors.password)
        #expect(back.manifest.entries.map(\.name) == vec.entries.map(\.name))
        #expect(back.manifest.entries.map(\.kind) == vec.entries.map(\.kind))
        #expect(back.manifest.entries.map(\.mode) == vec.entries.map(\.mode))
        #expect(back.data == vec.entries.map(\.data))
        #expect(back.manifest.entries.first { $0.kind == .symlink }?.linkTarget == "page-29.md")
    }

    @Test func twoSlotsOpenTheSameArchive() throws {
        let data = TestArchive.text(100)
        let bytes = try TestArchive.build([TestEntry(.file, "f", data)], passwords: ["first", "second"])
        #expect(try TestReader.readAll(bytes, password: "first").data[0] == data)
        #expect(try TestReader.readAll(bytes, password: "second").data[0] == data)
        #expect(try TestReader.failureClass(bytes, password: "third") == .key)
    }

    @Test func outputIsIndependentOfThreadCount() throws {
        let entries = (0..<5).map { TestEntry(.file, "f\($0)", TestArchive.text(5000 * $0 + 1)) }
        let one = try TestArchive.build(entries, options: TestArchive.options(seed: "threads", threads: 1))
        let four = try TestArchive.build(entries, options: TestArchive.options(seed: "threads", threads: 4))
        #expect(one == four)
    }

    @Test func randomAccessReadsOneEntryWithoutTheOthers() throws {
        let entries = (0..<4).map { TestEntry(.file, "f\($0)", TestArchive.noise(3000 * ($0 + 1), seed: UInt64($0))) }
        var bytes = try TestArchive.build(entries)
        let layout = try ArchiveLayout(bytes, entryCount: 4)
        // Destroy entries 0, 1 and 3: reading entry 2 through the index must not touch them.
        for i in [0, 1, 3] {
            for r in [layout.streamRange(layout.entries[i])] { for j in r.dropFirst(4) { bytes[j] ^= 0xFF } }
        }
        let (input, path) = try TestReader.file(bytes)
        defer { unlink(path) }
        let reader = try ArchiveReader(input: input, passphrase: Passphrase(string: "password"))
        let sink = MemorySink()
        try reader.readEntry(2, into: sink)
        #expect(sink.data[2] == entries[2].data)
        #expect(throws: SealbakError.self) { try reader.readEntry(1, into: MemorySink()) }
    }
}

@Suite struct DecompressionBoundTests {
    /// A frame whose payload would expand beyond its declared raw length (a decompression bomb) fails cleanly;
    /// the output buffer is exactly the declared size, so nothing is ever allocated beyond the frame size.
    @Test func payloadsThatExpandBeyondTheirDeclaredLengthAreRejected() throws {
        let zeros = [UInt8](repeating: 0, count: 1 << 16)
        let c = FrameCompressor()
        for algorithm in [CompressionAlgorithm.zstd(level: 3), .zlib(level: 6)] {
            var n: Int?
            let payload = [UInt8](byteCapacity: zeros.count) { out in
                n = c.compress(zeros.span.bytes, into: &out, algorithm: algorithm)
            }
            #expect(try #require(n) < 1024 && payload.count == n)
            let d = FrameDecompressor()
            func decompress(declared: Int) throws(CompressionError) -> [UInt8] {
                try [UInt8](byteCapacity: declared) { r throws(CompressionError) in
                    if case .zstd = algorithm {
                        try d.zstd(payload.span.bytes, into: &r, maxWindow: 1 << 24)
                    } else {
                        try d.zlib(payload.span.bytes, into: &r)
                    }
                }
            }
            for declared in [100, zeros.count - 1] {
                #expect(throws: CompressionError.self) { try decompress(declared: declared) }
            }
            // And exactly the declared length works.
            #expect(try decompress(declared: zeros.count) == zeros)
        }
    }
}
