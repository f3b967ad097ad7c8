import SealbakFormat
import Testing

/// The chunk index stream of a chained archive (`ChunkIndex`).
@Suite struct ChunkIndexTests {
    static func id(_ n: Int) -> [UInt8] {
        var g = TestBytes(seed: UInt64(n))
        return g.bytes(32)
    }

    static let archiveA = [UInt8](repeating: 0xAA, count: 16)
    static let archiveB = [UInt8](repeating: 0xBB, count: 16)

    static func location(_ n: Int, _ archive: [UInt8] = archiveA) -> ChunkLocation {
        ChunkLocation(archiveID: archive, entry: UInt32(n % 3), offset: UInt64(n) * 4096, length: UInt32(1 + n))
    }

    static func sample() -> ChunkIndex {
        let entries = [LogicalEntry(size: 10, sha256: Array(0..<32)), LogicalEntry(size: 0, sha256: Array(32..<64))]
        let chunks = (0..<50).map { n in (id: id(n), location: location(n, n % 2 == 0 ? archiveA : archiveB)) }
        return ChunkIndex(entries: entries, chunks: chunks)
    }

    static func error(_ bytes: [UInt8], entries: Int = 2) -> FormatError? {
        do {
            _ = try ChunkIndex.parse(bytes, expectedEntryCount: entries)
            return nil
        } catch {
            return error
        }
    }

    @Test func builderSortsAndLooksUp() throws {
        let index = Self.sample()
        #expect(index.chunkCount == 50)
        let ids = try (0..<50).map { try index.chunkID(at: $0) }
        #expect(ids == ids.sorted { $0.lexicographicallyPrecedes($1) })
        for n in 0..<50 {
            #expect(try index.location(of: Self.id(n)) == Self.location(n, n % 2 == 0 ? Self.archiveA : Self.archiveB))
        }
        #expect(try index.location(of: Self.id(50)) == nil)
        #expect(try index.location(of: [1, 2, 3]) == nil)
        #expect(try ChunkIndex(entries: [], chunks: []).location(of: Self.id(0)) == nil)
    }

    /// Ids equal up to one byte, at every position and on both sides of it: the lookup compares whole ids in byte
    /// order (eight bytes at a time), so a wrong word order or a word left out would lose some of them.
    @Test func idsDifferingInOneByteAreFoundAtEveryPosition() throws {
        let base = [UInt8](repeating: 0x80, count: 32)
        var ids: [[UInt8]] = [base]
        for p in 0..<32 {
            for v: UInt8 in [0x7F, 0x81, 0x00, 0xFF] {
                var id = base
                id[p] = v
                ids.append(id)
            }
        }
        let index = ChunkIndex(
            entries: [],
            chunks: ids.enumerated().map { (id: $1, location: Self.location($0)) }
        )
        #expect(index.chunkCount == ids.count)
        for (n, id) in ids.enumerated() { #expect(try index.location(of: id) == Self.location(n)) }
        var missing = base
        missing[31] = 0x82
        #expect(try index.location(of: missing) == nil)
    }

    @Test func duplicateIDsKeepTheFirst() throws {
        let index = ChunkIndex(
            entries: [],
            chunks: [
                (Self.id(1), Self.location(1)), (Self.id(2), Self.location(2)), (Self.id(1), Self.location(7)),
                (Self.id(1), Self.location(8)),
            ]
        )
        #expect(index.chunkCount == 2)
        #expect(try index.location(of: Self.id(1)) == Self.location(1))
    }

    @Test func layoutAndRoundTrip() throws {
        let index = Self.sample()
        let b = try index.encoded()
        #expect(b.count == 4 + 2 * 40 + 8 + 50 * 64)
        #expect(Array(b[0..<4]) == [2, 0, 0, 0])
        #expect(Array(b[4..<12]) == [10, 0, 0, 0, 0, 0, 0, 0] && Array(b[12..<44]) == Array(0..<32))
        #expect(Array(b[84..<92]) == [50, 0, 0, 0, 0, 0, 0, 0])
        let first = try index.chunks()[0]
        #expect(Array(b[92..<124]) == first.id && Array(b[124..<140]) == first.location.archiveID)
        #expect(Array(b[152..<156]) == ByteWriter.le32(first.location.length))
        let parsed = try ChunkIndex.parse(b, expectedEntryCount: 2)
        #expect(try parsed == index && parsed.encoded() == b)
        #expect(parsed.entries == index.entries)
        #expect(try parsed.chunks().map(\.id) == index.chunks().map(\.id))
        #expect(try parsed.chunks().map(\.location) == index.chunks().map(\.location))
        let empty = ChunkIndex(entries: [], chunks: [])
        #expect(try empty.encoded() == [UInt8](repeating: 0, count: 12))
        #expect(try ChunkIndex.parse(try empty.encoded(), expectedEntryCount: 0) == empty)
    }

    @Test func malformedIndexesArePayloadErrors() throws {
        let b = try Self.sample().encoded()
        func expect(_ bytes: [UInt8], entries: Int = 2, _ text: String, offset: UInt64? = nil) {
            let e = Self.error(bytes, entries: entries)
            #expect(e?.errorClass == .payload && e?.message.contains(text) == true, "\(text): \(String(describing: e))")
            if let offset { #expect(e?.offset == offset, "\(text): \(String(describing: e))") }
        }
        expect(b, entries: 3, "lists 2 entries, the manifest 3")
        expect([], "needs 4 bytes")
        expect(Array(b.prefix(50)), "ends inside its 2 entries")
        expect(Array(b.prefix(88)), "ends inside its 2 entries")
        expect(b.dropLast(), "declares 50 chunks")
        expect(b + [0], "declares 50 chunks")
        expect(b + [UInt8](repeating: 0, count: 64), "declares 50 chunks")
        var count = b
        count[84] = 0xFF
        count[91] = 0xFF
        expect(count, "declares", offset: 84)
        // Ids: swap chunks 3 and 4 (descending), or duplicate chunk 3.
        let c3 = 92 + 3 * 64
        var swapped = b
        swapped.replaceSubrange(c3..<c3 + 128, with: Array(b[c3 + 64..<c3 + 128]) + Array(b[c3..<c3 + 64]))
        expect(swapped, "chunk 4 of the chunk index: ids are not strictly ascending", offset: UInt64(c3 + 64))
        var duplicate = b
        duplicate.replaceSubrange(c3 + 64..<c3 + 96, with: Array(b[c3..<c3 + 32]))
        expect(duplicate, "chunk 4 of the chunk index: ids are not strictly ascending")
        var zero = b
        zero.replaceSubrange(c3 + 60..<c3 + 64, with: [0, 0, 0, 0])
        expect(zero, "chunk 3 of the chunk index has length 0", offset: UInt64(c3 + 60))
        var long = b
        long.replaceSubrange(c3 + 60..<c3 + 64, with: [1, 0, 0, 1])
        expect(long, "outside 1...16777216")
        long.replaceSubrange(c3 + 60..<c3 + 64, with: [0, 0, 0, 1])
        #expect(Self.error(long) == nil)  // exactly 16 MiB
    }
}

extension ByteWriter {
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
}
