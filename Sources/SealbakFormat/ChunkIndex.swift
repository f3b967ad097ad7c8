/// Where a chunk is: `length` bytes at `offset` of the restored content of entry `entry` of archive `archiveID`.
package struct ChunkLocation: Sendable, Hashable {
    /// 16 bytes.
    package var archiveID: [UInt8]
    package var entry: UInt32
    package var offset: UInt64
    package var length: UInt32

    package init(archiveID: [UInt8], entry: UInt32, offset: UInt64, length: UInt32) {
        self.archiveID = archiveID
        self.entry = entry
        self.offset = offset
        self.length = length
    }
}

/// The size and SHA-256 of an entry's content as restored (after its records are resolved).
package struct LogicalEntry: Sendable, Hashable {
    package var size: UInt64
    /// 32 bytes.
    package var sha256: [UInt8]

    package init(size: UInt64, sha256: [UInt8]) {
        self.size = size
        self.sha256 = sha256
    }
}

/// The chunk index of a chained archive: the plaintext of stream `FormatV1.indexStreamID`.
///
/// ```
/// u32 entry_count                 equal to the manifest's entry_count
/// entry_count × { u64 logical_size, [32] logical_sha256 }
/// u64 chunk_count
/// chunk_count × { [32] chunk_id, [16] archive_id, u32 entry, u64 offset, u32 length }   (64 bytes each)
/// ```
/// chunk_id strictly ascending (bytewise unsigned), 1 ≤ length ≤ 2^24, nothing after the last chunk, at most
/// `FormatV1.maxIndexPlaintext` bytes. Every violation is class `payload`.
///
/// Stored compactly for millions of chunks: the ids in one flat array (32 bytes each), the archive ids once each,
/// and a 24-byte location per chunk; `location(of:)` is a binary search.
package struct ChunkIndex: Sendable, Equatable {
    /// Same entries and the same chunks at the same locations.
    package static func == (a: ChunkIndex, b: ChunkIndex) -> Bool { a.encoded() == b.encoded() }

    package static let entryByteCount = 40
    package static let chunkByteCount = 64
    package static let chunkIDByteCount = 32

    private struct PackedLocation: Sendable, Equatable {
        var archive: UInt32
        var entry: UInt32
        var offset: UInt64
        var length: UInt32
    }

    package var entries: [LogicalEntry]
    /// The chunk ids, ascending, 32 bytes each.
    private var ids: [UInt8]
    private var locations: [PackedLocation]
    /// The distinct archive ids, in order of first appearance; `PackedLocation.archive` indexes it.
    private var archiveIDs: [[UInt8]]

    /// An index of `chunks` in any order; of several chunks with the same id the first one given is kept.
    ///
    /// - Precondition: 32-byte chunk ids, 16-byte archive ids, 32-byte hashes, lengths in 1...2^24.
    package init(entries: [LogicalEntry], chunks: [(id: [UInt8], location: ChunkLocation)]) {
        self.entries = entries
        for e in entries { precondition(e.sha256.count == 32, "an entry's SHA-256 has 32 bytes") }
        let order = chunks.indices.sorted { a, b in
            let c = Self.compare(chunks[a].id, chunks[b].id)
            return c != 0 ? c < 0 : a < b
        }
        ids = []
        ids.reserveCapacity(chunks.count * Self.chunkIDByteCount)
        locations = []
        locations.reserveCapacity(chunks.count)
        archiveIDs = []
        var archiveIndex: [[UInt8]: UInt32] = [:]
        var previous: [UInt8]?
        for i in order {
            let (id, location) = chunks[i]
            precondition(id.count == Self.chunkIDByteCount, "a chunk id has 32 bytes")
            precondition(location.archiveID.count == FormatV1.archiveIDByteCount, "an archive id has 16 bytes")
            precondition(location.length >= 1 && location.length <= ChunkRecords.maxLength, "chunk length")
            if id == previous { continue }
            previous = id
            ids.append(contentsOf: id)
            let archive: UInt32
            if let a = archiveIndex[location.archiveID] {
                archive = a
            } else {
                archive = UInt32(archiveIDs.count)
                archiveIndex[location.archiveID] = archive
                archiveIDs.append(location.archiveID)
            }
            locations.append(
                PackedLocation(
                    archive: archive,
                    entry: location.entry,
                    offset: location.offset,
                    length: location.length
                )
            )
        }
    }

    package var chunkCount: Int { locations.count }

    /// The id of chunk `i` (in ascending id order).
    package func chunkID(at i: Int) -> [UInt8] {
        Array(ids[i * Self.chunkIDByteCount..<(i + 1) * Self.chunkIDByteCount])
    }

    /// The location of chunk `i` (in ascending id order).
    package func location(at i: Int) -> ChunkLocation {
        let p = locations[i]
        return ChunkLocation(archiveID: archiveIDs[Int(p.archive)], entry: p.entry, offset: p.offset, length: p.length)
    }

    /// Every chunk, ascending by id (materialized: for tests and small indexes).
    package var chunks: [(id: [UInt8], location: ChunkLocation)] {
        (0..<chunkCount).map { (chunkID(at: $0), location(at: $0)) }
    }

    /// The position of `id` in ascending order, or nil.
    package func index(of id: [UInt8]) -> Int? {
        guard id.count == Self.chunkIDByteCount else { return nil }
        return ids.withUnsafeBufferPointer { all in
            id.withUnsafeBufferPointer { key in
                var low = 0
                var high = locations.count
                while low < high {
                    let mid = (low + high) / 2
                    let c = Self.compare(all.baseAddress! + mid * Self.chunkIDByteCount, key.baseAddress!)
                    if c == 0 { return mid }
                    if c < 0 { low = mid + 1 } else { high = mid }
                }
                return nil
            }
        }
    }

    /// Where the chunk with SHA-256 `id` is, or nil when the index does not have it.
    package func location(of id: [UInt8]) -> ChunkLocation? {
        index(of: id).map { location(at: $0) }
    }

    /// The index stream's plaintext.
    package func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 4 + entries.count * Self.entryByteCount + 8 + chunkCount * Self.chunkByteCount)
        w.write(UInt32(truncatingIfNeeded: entries.count))
        for e in entries {
            w.write(e.size)
            w.write(bytes: e.sha256)
        }
        w.write(UInt64(chunkCount))
        for i in 0..<chunkCount {
            let p = locations[i]
            w.write(bytes: ids[i * Self.chunkIDByteCount..<(i + 1) * Self.chunkIDByteCount])
            w.write(bytes: archiveIDs[Int(p.archive)])
            w.write(p.entry)
            w.write(p.offset)
            w.write(p.length)
        }
        return w.bytes
    }

    /// Parses a whole index stream plaintext.
    ///
    /// - Parameter expectedEntryCount: the manifest's entry count, which entry_count must equal.
    /// - Throws: class `payload`, with the offset inside the plaintext.
    package static func parse(_ bytes: [UInt8], expectedEntryCount: Int) throws(FormatError) -> ChunkIndex {
        if UInt64(bytes.count) > FormatV1.maxIndexPlaintext {
            throw FormatError(
                .payload,
                "chunk index of \(bytes.count) bytes exceeds the maximum \(FormatV1.maxIndexPlaintext)"
            )
        }
        var r = ByteReader(bytes, errorClass: .payload)
        let entryCount = try r.readUInt32("chunk index entry count")
        if entryCount != expectedEntryCount {
            throw FormatError(
                .payload,
                "chunk index lists \(entryCount) entries, the manifest \(expectedEntryCount)",
                offset: 0
            )
        }
        if r.remaining < Int(entryCount) * entryByteCount + 8 {
            throw FormatError(
                .payload,
                "chunk index ends inside its \(entryCount) entries (\(r.remaining) bytes left)",
                offset: UInt64(r.offset)
            )
        }
        var entries: [LogicalEntry] = []
        entries.reserveCapacity(Int(entryCount))
        for _ in 0..<entryCount {
            let size = try r.readUInt64("logical size")
            entries.append(LogicalEntry(size: size, sha256: try r.readBytes(32, "logical SHA-256")))
        }
        let countOffset = UInt64(r.offset)
        let chunkCount = try r.readUInt64("chunk count")
        if chunkCount != UInt64(r.remaining / chunkByteCount) || r.remaining % chunkByteCount != 0 {
            throw FormatError(
                .payload,
                "chunk index declares \(chunkCount) chunks of \(chunkByteCount) bytes but \(r.remaining) bytes follow",
                offset: countOffset
            )
        }
        var index = ChunkIndex(entries: entries, chunks: [])
        index.ids.reserveCapacity(Int(chunkCount) * chunkIDByteCount)
        index.locations.reserveCapacity(Int(chunkCount))
        var archiveIndex: [[UInt8]: UInt32] = [:]
        var lastArchive: (id: ArraySlice<UInt8>, index: UInt32)?
        // The length is exact (checked above), so the fields are read in place.
        func le(_ at: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
            return v
        }
        let first = r.offset
        for n in 0..<Int(chunkCount) {
            let start = first + n * chunkByteCount
            let id = bytes[start..<start + chunkIDByteCount]
            if n > 0 && compare(bytes[start - chunkByteCount..<start - chunkByteCount + chunkIDByteCount], id) >= 0 {
                throw FormatError(
                    .payload,
                    "chunk \(n) of the chunk index: ids are not strictly ascending",
                    offset: UInt64(start)
                )
            }
            let length = UInt32(truncatingIfNeeded: le(start + 60, 4))
            if length < 1 || length > ChunkRecords.maxLength {
                throw FormatError(
                    .payload,
                    "chunk \(n) of the chunk index has length \(length), outside 1...\(ChunkRecords.maxLength)",
                    offset: UInt64(start + 60)
                )
            }
            let archiveID = bytes[start + 32..<start + 48]
            let archive: UInt32
            if let last = lastArchive, last.id == archiveID {
                archive = last.index
            } else if let a = archiveIndex[Array(archiveID)] {
                archive = a
            } else {
                archive = UInt32(index.archiveIDs.count)
                archiveIndex[Array(archiveID)] = archive
                index.archiveIDs.append(Array(archiveID))
            }
            lastArchive = (archiveID, archive)
            index.ids.append(contentsOf: id)
            index.locations.append(
                PackedLocation(
                    archive: archive,
                    entry: UInt32(truncatingIfNeeded: le(start + 48, 4)),
                    offset: le(start + 52, 8),
                    length: length
                )
            )
        }
        return index
    }
    /// Bytewise unsigned comparison of two 32-byte ids: negative, zero or positive.
    private static func compare(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Int {
        for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
        return a.count - b.count
    }

    /// Byte-wise order of two chunk ids, compared eight bytes at a time (big-endian words order like their bytes).
    private static func compare(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>) -> Int {
        let x = UnsafeRawPointer(a)
        let y = UnsafeRawPointer(b)
        for offset in stride(from: 0, to: chunkIDByteCount, by: 8) {
            let p = x.loadUnaligned(fromByteOffset: offset, as: UInt64.self).bigEndian
            let q = y.loadUnaligned(fromByteOffset: offset, as: UInt64.self).bigEndian
            if p != q { return p < q ? -1 : 1 }
        }
        return 0
    }
}
