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

/// The chunk records of an index stream (Spec §14.3), strictly ascending by chunk id, 64 bytes each:
/// `[32] chunk_id ‖ [16] archive_id ‖ u32 entry ‖ u64 offset ‖ u32 length`.
///
/// Held in memory, or *paged*: then only the id of every `pageRecords`-th record stays in memory (half a byte per
/// chunk), and a lookup reads one page of records (4 KiB) through the reader the table's owner gave it, typically a
/// temporary file. So the chunk table of a chain of any size is looked up in bounded memory. Records are checked
/// (`ChunkTableChecker`) before a table is made of them; a table only reads.
package final class ChunkTable: Sendable {
    package static let recordByteCount = 64
    package static let idByteCount = 32
    /// Records per page of a paged table.
    package static let pageRecords = 64

    package let count: Int
    private let storage: Storage

    private enum Storage: Sendable {
        case memory([UInt8])
        /// The ids of records 0, `pageRecords`, 2 × `pageRecords`, …; `read(first, n)` returns records
        /// `first..<first + n`, exactly `n` × 64 bytes.
        case paged(pageIDs: [UInt8], read: @Sendable (Int, Int) throws -> [UInt8])
    }

    /// A table of checked records held in memory.
    package init(records: [UInt8]) {
        precondition(records.count % Self.recordByteCount == 0, "whole chunk records")
        count = records.count / Self.recordByteCount
        storage = .memory(records)
    }

    /// A paged table of `count` checked records.
    ///
    /// - Parameters:
    ///   - pageIDs: the id of every `pageRecords`-th record, from the first.
    ///   - read: returns records `first..<first + n`, exactly `n` × 64 bytes, or throws.
    package init(count: Int, pageIDs: [UInt8], read: @escaping @Sendable (_ first: Int, _ n: Int) throws -> [UInt8]) {
        precondition(pageIDs.count == (count + Self.pageRecords - 1) / Self.pageRecords * Self.idByteCount)
        self.count = count
        storage = .paged(pageIDs: pageIDs, read: read)
    }

    /// An empty table.
    package static let empty = ChunkTable(records: [])

    /// Whether lookups read pages from outside memory.
    package var isPaged: Bool {
        if case .paged = storage { return true }
        return false
    }

    /// Records `range`, 64 bytes each.
    package func records(_ range: Range<Int>) throws -> [UInt8] {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "records inside the table")
        switch storage {
        case .memory(let bytes):
            return Array(bytes[range.lowerBound * Self.recordByteCount..<range.upperBound * Self.recordByteCount])
        case .paged(_, let read):
            return range.isEmpty ? [] : try read(range.lowerBound, range.count)
        }
    }

    /// The id of record `i`.
    package func chunkID(at i: Int) throws -> [UInt8] { Array(try records(i..<i + 1)[0..<Self.idByteCount]) }

    /// The location record `i` gives.
    package func location(at i: Int) throws -> ChunkLocation { Self.location(in: try records(i..<i + 1), at: 0) }

    /// The location of the record at byte `at` of `bytes`.
    package static func location(in bytes: [UInt8], at: Int) -> ChunkLocation {
        func le(_ from: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<n { v |= UInt64(bytes[at + from + k]) << (8 * UInt64(k)) }
            return v
        }
        return ChunkLocation(
            archiveID: Array(bytes[at + 32..<at + 48]),
            entry: UInt32(truncatingIfNeeded: le(48, 4)),
            offset: le(52, 8),
            length: UInt32(truncatingIfNeeded: le(60, 4))
        )
    }

    /// The position of the record with id `id`, or nil.
    package func index(of id: [UInt8]) throws -> Int? {
        guard id.count == Self.idByteCount, count > 0 else { return nil }
        switch storage {
        case .memory(let bytes):
            return Self.search(id, in: bytes, stride: Self.recordByteCount, count: count).found
        case .paged(let pageIDs, let read):
            // The last page whose first id is not above `id` is the only one that can hold it.
            let pages = pageIDs.count / Self.idByteCount
            let (found, insertion) = Self.search(id, in: pageIDs, stride: Self.idByteCount, count: pages)
            if let found { return found * Self.pageRecords }
            guard insertion > 0 else { return nil }
            let first = (insertion - 1) * Self.pageRecords
            let n = min(Self.pageRecords, count - first)
            let page = try read(first, n)
            return Self.search(id, in: page, stride: Self.recordByteCount, count: n).found.map { first + $0 }
        }
    }

    /// Where the chunk with id `id` is, or nil when the table does not have it.
    package func location(of id: [UInt8]) throws -> ChunkLocation? {
        guard let i = try index(of: id) else { return nil }
        return try location(at: i)
    }

    /// Calls `body` with the records in order, in pieces of at most `piece` records.
    package func forEachPiece(records piece: Int = 16_384, _ body: ([UInt8]) throws -> Void) throws {
        var at = 0
        while at < count {
            let n = min(piece, count - at)
            try body(try records(at..<at + n))
            at += n
        }
    }

    /// `records` (whole 64-byte records in the order given) sorted by id, each id once: of records with the same id,
    /// the one given first (Spec §14.3).
    package static func sortedUnique(_ records: [UInt8]) -> [UInt8] {
        if records.isEmpty { return [] }
        let size = recordByteCount
        return records.withUnsafeBufferPointer { all in
            let base = all.baseAddress!
            let order = (0..<records.count / size).sorted { a, b in
                let c = compare(base + a * size, base + b * size)
                return c != 0 ? c < 0 : a < b
            }
            var out: [UInt8] = []
            out.reserveCapacity(records.count)
            var last = -1
            for i in order {
                if last >= 0 && compare(base + last * size, base + i * size) == 0 { continue }
                last = i
                out += all[i * size..<(i + 1) * size]
            }
            return out
        }
    }

    /// Binary search for the 32-byte `id` among `count` ids placed `stride` bytes apart in `bytes`: its position if
    /// present, and where it would be inserted.
    private static func search(
        _ id: [UInt8],
        in bytes: [UInt8],
        stride: Int,
        count: Int
    ) -> (found: Int?, insertion: Int) {
        bytes.withUnsafeBufferPointer { all in
            id.withUnsafeBufferPointer { key in
                var low = 0
                var high = count
                while low < high {
                    let mid = (low + high) / 2
                    let c = compare(all.baseAddress! + mid * stride, key.baseAddress!)
                    if c == 0 { return (mid, mid) }
                    if c < 0 { low = mid + 1 } else { high = mid }
                }
                return (nil, low)
            }
        }
    }

    /// Byte-wise order of two chunk ids, compared eight bytes at a time (big-endian words order like their bytes).
    package static func compare(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>) -> Int {
        let x = UnsafeRawPointer(a)
        let y = UnsafeRawPointer(b)
        for offset in Swift.stride(from: 0, to: idByteCount, by: 8) {
            let p = x.loadUnaligned(fromByteOffset: offset, as: UInt64.self).bigEndian
            let q = y.loadUnaligned(fromByteOffset: offset, as: UInt64.self).bigEndian
            if p != q { return p < q ? -1 : 1 }
        }
        return 0
    }
}

/// Checks chunk records as they arrive, in order (Spec §14.3): ids strictly ascending, lengths in 1...2^24.
package struct ChunkTableChecker: Sendable {
    private var previous: [UInt8] = []
    /// Records checked so far.
    package private(set) var count = 0

    package init() {}

    /// Checks whole records, the first of which is at byte `offset` of the index plaintext (for the error).
    ///
    /// - Throws: class `payload`, naming the record and its offset.
    package mutating func check(_ records: ArraySlice<UInt8>, offset: UInt64) throws(FormatError) {
        precondition(records.count % ChunkTable.recordByteCount == 0, "whole chunk records")
        var at = records.startIndex
        while at < records.endIndex {
            let here = offset + UInt64(at - records.startIndex)
            let id = records[at..<at + ChunkTable.idByteCount]
            if count > 0 && !previous.lexicographicallyPrecedes(id) {
                throw FormatError(
                    .payload,
                    "chunk \(count) of the chunk index: ids are not strictly ascending",
                    offset: here
                )
            }
            var length: UInt32 = 0
            for k in 0..<4 { length |= UInt32(records[at + 60 + k]) << (8 * UInt32(k)) }
            if length < 1 || length > ChunkRecords.maxLength {
                throw FormatError(
                    .payload,
                    "chunk \(count) of the chunk index has length \(length), outside 1...\(ChunkRecords.maxLength)",
                    offset: here + 60
                )
            }
            if count == 0 {
                previous = Array(id)
            } else {
                previous.replaceSubrange(0..<ChunkTable.idByteCount, with: id)
            }
            count += 1
            at += ChunkTable.recordByteCount
        }
    }
}

/// Parses an index stream's plaintext as it arrives, in pieces of any size (frames), so that its chunk records can
/// go to a paged table without the whole plaintext in memory. `ChunkIndex.parse` is this parser fed once.
package struct ChunkIndexParser: Sendable {
    private enum Phase: Sendable {
        case entryCount
        case entries(left: Int)
        case chunkCount
        case records(left: UInt64)
    }

    private let expectedEntryCount: Int
    /// The whole plaintext's length when it is known in advance: a wrong chunk count is then reported at once.
    private let totalLength: Int?
    private var phase = Phase.entryCount
    /// Bytes received but not yet consumed, and the plaintext offset of the first of them.
    private var pending: [UInt8] = []
    private var pendingOffset: UInt64 = 0
    private var declaredEntries = 0
    private var declaredChunks: UInt64 = 0
    private var countOffset: UInt64 = 0
    private var checker = ChunkTableChecker()
    package private(set) var entries: [LogicalEntry] = []

    /// - Parameters:
    ///   - expectedEntryCount: the manifest's entry count, which entry_count must equal.
    ///   - totalLength: the plaintext's length, when known.
    package init(expectedEntryCount: Int, totalLength: Int? = nil) {
        self.expectedEntryCount = expectedEntryCount
        self.totalLength = totalLength
    }

    /// Chunk records checked so far.
    package var chunkCount: Int { checker.count }

    /// Consumes the next plaintext bytes and returns the chunk records they complete, checked, in order.
    ///
    /// - Throws: class `payload`, with the offset inside the plaintext.
    package mutating func feed(_ bytes: [UInt8]) throws(FormatError) -> [UInt8] {
        if pendingOffset + UInt64(pending.count) + UInt64(bytes.count) > FormatV1.maxIndexPlaintext {
            throw FormatError(
                .payload,
                "chunk index of more than \(FormatV1.maxIndexPlaintext) bytes exceeds the maximum",
                offset: pendingOffset
            )
        }
        pending += bytes
        var at = 0
        var out: [UInt8] = []
        func le(_ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<n { v |= UInt64(pending[at + k]) << (8 * UInt64(k)) }
            at += n
            return v
        }
        loop: while true {
            let available = pending.count - at
            switch phase {
            case .entryCount:
                guard available >= 4 else { break loop }
                declaredEntries = Int(le(4))
                if declaredEntries != expectedEntryCount {
                    throw FormatError(
                        .payload,
                        "chunk index lists \(declaredEntries) entries, the manifest \(expectedEntryCount)",
                        offset: 0
                    )
                }
                if let totalLength, totalLength - 4 < declaredEntries * ChunkIndex.entryByteCount + 8 {
                    throw endsInsideEntries(left: totalLength - 4)
                }
                entries.reserveCapacity(min(declaredEntries, 1 << 16))
                phase = declaredEntries == 0 ? .chunkCount : .entries(left: declaredEntries)
            case .entries(let left):
                guard available >= ChunkIndex.entryByteCount else { break loop }
                let size = le(8)
                entries.append(LogicalEntry(size: size, sha256: Array(pending[at..<at + 32])))
                at += 32
                phase = left == 1 ? .chunkCount : .entries(left: left - 1)
            case .chunkCount:
                guard available >= 8 else { break loop }
                countOffset = pendingOffset + UInt64(at)
                declaredChunks = le(8)
                if let totalLength {
                    let follow = totalLength - Int(countOffset) - 8
                    if declaredChunks != UInt64(follow / ChunkTable.recordByteCount)
                        || follow % ChunkTable.recordByteCount != 0
                    {
                        throw wrongCount(follow: UInt64(follow))
                    }
                } else if declaredChunks > FormatV1.maxIndexPlaintext / UInt64(ChunkTable.recordByteCount) {
                    throw wrongCount(follow: nil)
                }
                phase = .records(left: declaredChunks)
            case .records(let left):
                let whole = UInt64(available / ChunkTable.recordByteCount)
                if whole == 0 && (left > 0 || available == 0) { break loop }
                if left == 0 {
                    throw wrongCount(follow: UInt64(checker.count * ChunkTable.recordByteCount + available))
                }
                let n = Int(min(whole, left))
                let range = at..<at + n * ChunkTable.recordByteCount
                try checker.check(pending[range], offset: pendingOffset + UInt64(at))
                out += pending[range]
                at = range.upperBound
                phase = .records(left: left - UInt64(n))
            }
        }
        pendingOffset += UInt64(at)
        pending.removeFirst(at)
        return out
    }

    /// After the last byte: the entries, once the plaintext proved whole.
    ///
    /// - Throws: class `payload` when it ended early.
    package func finish() throws(FormatError) -> [LogicalEntry] {
        switch phase {
        case .entryCount:
            throw FormatError(
                .payload,
                "chunk index entry count: needs 4 bytes, only \(pending.count) left",
                offset: 0
            )
        case .entries, .chunkCount:
            throw endsInsideEntries(left: Int(pendingOffset) + pending.count - 4)
        case .records(let left):
            if left > 0 || !pending.isEmpty {
                throw wrongCount(follow: UInt64(checker.count * ChunkTable.recordByteCount + pending.count))
            }
            return entries
        }
    }

    private func endsInsideEntries(left: Int) -> FormatError {
        FormatError(
            .payload,
            "chunk index ends inside its \(declaredEntries) entries (\(left) bytes left)",
            offset: 4
        )
    }

    private func wrongCount(follow: UInt64?) -> FormatError {
        FormatError(
            .payload,
            "chunk index declares \(declaredChunks) chunks of \(ChunkTable.recordByteCount) bytes but "
                + (follow.map { "\($0) bytes follow" } ?? "that is more than the maximum"),
            offset: countOffset
        )
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
/// The entries are in memory; the chunk records are a `ChunkTable`, in memory or paged.
package struct ChunkIndex: Sendable, Equatable {
    /// Same entries and the same chunks at the same locations.
    package static func == (a: ChunkIndex, b: ChunkIndex) -> Bool {
        guard a.entries == b.entries, a.chunkCount == b.chunkCount else { return false }
        return (try? a.encoded()) == (try? b.encoded())
    }

    package static let entryByteCount = 40
    package static let chunkByteCount = ChunkTable.recordByteCount
    package static let chunkIDByteCount = ChunkTable.idByteCount

    package var entries: [LogicalEntry]
    package let table: ChunkTable

    package init(entries: [LogicalEntry], table: ChunkTable) {
        for e in entries { precondition(e.sha256.count == 32, "an entry's SHA-256 has 32 bytes") }
        self.entries = entries
        self.table = table
    }

    /// An index of `chunks` in any order, in memory; of several chunks with the same id the first one given is kept.
    ///
    /// - Precondition: 32-byte chunk ids, 16-byte archive ids, 32-byte hashes, lengths in 1...2^24.
    package init(entries: [LogicalEntry], chunks: [(id: [UInt8], location: ChunkLocation)]) {
        var records: [UInt8] = []
        records.reserveCapacity(chunks.count * Self.chunkByteCount)
        for (id, location) in chunks { Self.appendRecord(id: id, location: location, to: &records) }
        self.init(entries: entries, table: ChunkTable(records: ChunkTable.sortedUnique(records)))
    }

    /// Appends one chunk record (Spec §14.3) to `out`.
    ///
    /// - Precondition: a 32-byte id, a 16-byte archive id, a length in 1...2^24.
    package static func appendRecord(id: [UInt8], location: ChunkLocation, to out: inout [UInt8]) {
        precondition(id.count == chunkIDByteCount, "a chunk id has 32 bytes")
        precondition(location.archiveID.count == FormatV1.archiveIDByteCount, "an archive id has 16 bytes")
        precondition(location.length >= 1 && location.length <= ChunkRecords.maxLength, "chunk length")
        out += id
        out += location.archiveID
        for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: location.entry >> (8 * UInt32(k)))) }
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: location.offset >> (8 * UInt64(k)))) }
        for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: location.length >> (8 * UInt32(k)))) }
    }

    package var chunkCount: Int { table.count }

    /// The id of chunk `i` (in ascending id order).
    package func chunkID(at i: Int) throws -> [UInt8] { try table.chunkID(at: i) }

    /// The location of chunk `i` (in ascending id order).
    package func location(at i: Int) throws -> ChunkLocation { try table.location(at: i) }

    /// Every chunk, ascending by id (materialized: for tests and small indexes).
    package func chunks() throws -> [(id: [UInt8], location: ChunkLocation)] {
        let bytes = try table.records(0..<chunkCount)
        return stride(from: 0, to: bytes.count, by: Self.chunkByteCount).map {
            (Array(bytes[$0..<$0 + Self.chunkIDByteCount]), ChunkTable.location(in: bytes, at: $0))
        }
    }

    /// The position of `id` in ascending order, or nil.
    package func index(of id: [UInt8]) throws -> Int? { try table.index(of: id) }

    /// Where the chunk with id `id` is, or nil when the index does not have it.
    package func location(of id: [UInt8]) throws -> ChunkLocation? { try table.location(of: id) }

    /// The bytes before the chunk records: entry_count, the entries and chunk_count.
    package func head() -> [UInt8] {
        var w = ByteWriter(capacity: 4 + entries.count * Self.entryByteCount + 8)
        w.write(UInt32(truncatingIfNeeded: entries.count))
        for e in entries {
            w.write(e.size)
            w.write(bytes: e.sha256)
        }
        w.write(UInt64(chunkCount))
        return w.bytes
    }

    /// The index stream's plaintext, in pieces (the head, then records in pieces of at most 1 MiB).
    package func encode(_ body: ([UInt8]) throws -> Void) throws {
        try body(head())
        try table.forEachPiece(body)
    }

    /// The index stream's plaintext, whole.
    package func encoded() throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4 + entries.count * Self.entryByteCount + 8 + chunkCount * Self.chunkByteCount)
        try encode { out += $0 }
        return out
    }

    /// Parses a whole index stream plaintext into an index in memory.
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
        var parser = ChunkIndexParser(expectedEntryCount: expectedEntryCount, totalLength: bytes.count)
        let records = try parser.feed(bytes)
        return ChunkIndex(entries: try parser.finish(), table: ChunkTable(records: records))
    }
}
