import Foundation
import SealbakCrypto
import SealbakFormat
import SealbakIO

/// A file of the archive a chain state describes, as it was when it was read: if the same entry is a file in the
/// same state (size, modification and change times, inode, device) when the next archive is packed, its content is
/// what the archive holds, and the next archive refers to it without reading the file (as restic's and borg's file
/// caches do).
package struct ChainFileRecord: Sendable, Equatable {
    package var name: String
    package var state: FileState
    /// The content's SHA-256 (its index stream entry, Spec §14.3).
    package var sha256: [UInt8]
    /// The content's chunks in order, as positions in the state's chunk table.
    package var chunks: [UInt32]

    package init(name: String, state: FileState, sha256: [UInt8], chunks: [UInt32]) {
        self.name = name
        self.state = state
        self.sha256 = sha256
        self.chunks = chunks
    }
}

/// The chain state's file table: the files the next archive may refer to without reading them, by name, in the
/// state file's encoding (per file: LE16(name length), the name, LE64 size, LE64 mtime seconds, LE32 mtime
/// nanoseconds, LE64 ctime seconds, LE32 ctime nanoseconds, LE64 inode, LE64 device, the content's SHA-256[32],
/// LE32(chunk count), LE32 chunk table positions). Only the names stay in memory, with where each record is; the
/// records (4 bytes per chunk) are in memory while they take at most 4 MiB (`ChunkTables`), else in a scratch file.
package final class ChainFileTable: Sendable, Equatable {
    private enum Storage: Sendable {
        case memory([UInt8])
        case file(ScratchFile)
    }

    private struct Place: Sendable {
        var offset: UInt64
        var length: Int
    }

    private let storage: Storage
    private let places: [String: Place]
    package let count: Int
    /// The records' bytes (after the count).
    private let byteCount: UInt64

    private init(storage: Storage, places: [String: Place], count: Int, byteCount: UInt64) {
        self.storage = storage
        self.places = places
        self.count = count
        self.byteCount = byteCount
    }

    package static let empty = ChainFileTable([])

    /// A table of `records`, in memory (of several records with the same name the last one is found by name).
    package convenience init(_ records: [ChainFileRecord]) {
        var bytes: [UInt8] = []
        var places: [String: Place] = [:]
        for r in records {
            let encoded = Self.encode(r)
            places[r.name] = Place(offset: UInt64(bytes.count), length: encoded.count)
            bytes += encoded
        }
        self.init(storage: .memory(bytes), places: places, count: records.count, byteCount: UInt64(bytes.count))
    }

    package static func == (a: ChainFileTable, b: ChainFileTable) -> Bool {
        a.count == b.count && (try? a.records()) == (try? b.records())
    }

    package var isEmpty: Bool { count == 0 }

    /// Whether the records are in a scratch file.
    package var isPaged: Bool {
        if case .file = storage { return true }
        return false
    }

    private func bytes(at offset: UInt64, count n: Int) throws -> [UInt8] {
        switch storage {
        case .memory(let bytes): return Array(bytes[Int(offset)..<Int(offset) + n])
        case .file(let file): return try file.read(at: offset, count: n)
        }
    }

    /// The record of the file named `name`, or nil.
    package func record(named name: String) throws -> ChainFileRecord? {
        guard let place = places[name] else { return nil }
        return Self.decode(try bytes(at: place.offset, count: place.length))
    }

    /// Every record, in order (for tests and small tables).
    package func records() throws -> [ChainFileRecord] {
        let all = try bytes(at: 0, count: Int(byteCount))
        var out: [ChainFileRecord] = []
        var at = 0
        while at < all.count {
            let length = Self.length(of: all, at: at)
            out.append(Self.decode(Array(all[at..<at + length])))
            at += length
        }
        return out
    }

    /// The table as the state file holds it: LE32(count), then the records, in pieces of at most 1 MiB.
    func encode(_ body: ([UInt8]) throws -> Void) throws {
        var w = ByteWriter()
        w.write(UInt32(count))
        try body(w.bytes)
        var at: UInt64 = 0
        while at < byteCount {
            let n = Int(min(UInt64(1 << 20), byteCount - at))
            try body(try bytes(at: at, count: n))
            at += UInt64(n)
        }
    }

    static func encode(_ f: ChainFileRecord) -> [UInt8] {
        var w = ByteWriter()
        let name = Array(f.name.utf8)
        w.write(UInt16(name.count))
        w.write(bytes: name)
        w.write(f.state.size)
        w.write(f.state.mtimeSeconds)
        w.write(UInt32(truncatingIfNeeded: f.state.mtimeNanoseconds))
        w.write(f.state.ctimeSeconds)
        w.write(UInt32(truncatingIfNeeded: f.state.ctimeNanoseconds))
        w.write(f.state.inode)
        w.write(f.state.device)
        w.write(bytes: f.sha256)
        w.write(UInt32(f.chunks.count))
        for c in f.chunks { w.write(c) }
        return w.bytes
    }

    /// The bytes of a record after its name: size, times, inode, device, SHA-256 and the chunk count.
    static let fixedByteCount = 8 + 8 + 4 + 8 + 4 + 8 + 8 + 32 + 4

    /// The length of the record at `at` of `bytes` (one this table encoded).
    private static func length(of bytes: [UInt8], at: Int) -> Int {
        let nameLength = Int(bytes[at]) | Int(bytes[at + 1]) << 8
        let countAt = at + 2 + nameLength + fixedByteCount - 4
        var count = 0
        for k in 0..<4 { count |= Int(bytes[countAt + k]) << (8 * k) }
        return countAt + 4 + 4 * count - at
    }

    /// A record this table encoded.
    private static func decode(_ bytes: [UInt8]) -> ChainFileRecord {
        var r = ByteReader(bytes, errorClass: .payload)
        // The bytes were encoded by `encode` (from a checked state file or the writer): reading cannot fail.
        do throws(FormatError) {
            let name = try r.readUTF8(Int(try r.readUInt16("name length")), "name", errorClass: .payload)
            var st = FileState()
            st.size = try r.readUInt64("size")
            st.mtimeSeconds = try r.readInt64("mtime")
            st.mtimeNanoseconds = Int64(try r.readUInt32("mtime ns"))
            st.ctimeSeconds = try r.readInt64("ctime")
            st.ctimeNanoseconds = Int64(try r.readUInt32("ctime ns"))
            st.inode = try r.readUInt64("inode")
            st.device = try r.readUInt64("device")
            let sha = try r.readBytes(32, "sha256")
            let n = try r.readUInt32("chunk count")
            var chunks: [UInt32] = []
            chunks.reserveCapacity(Int(n))
            for _ in 0..<n { chunks.append(try r.readUInt32("chunk")) }
            return ChainFileRecord(name: name, state: st, sha256: sha, chunks: chunks)
        } catch {
            preconditionFailure("a file table record this table encoded does not decode: \(error)")
        }
    }

    /// Collects records in order, moving them to a scratch file once they take more than a chunk table may hold in
    /// memory (`memoryRecords` × 64 bytes).
    final class Builder {
        private let spill: SpillBuffer

        init(memoryRecords: Int = ChunkTables.memoryRecords) {
            spill = SpillBuffer(
                memoryLimit: memoryRecords * ChunkTable.recordByteCount,
                purpose: "the chain state's file table"
            )
        }

        private var places: [String: Place] = [:]
        private var count = 0

        func append(_ record: ChainFileRecord) throws {
            try append(encoded: [ChainFileTable.encode(record)[...]], name: record.name)
        }

        /// Appends a record already in the table's encoding, given in consecutive pieces.
        func append(encoded pieces: [ArraySlice<UInt8>], name: String) throws {
            places[name] = Place(offset: spill.count, length: pieces.reduce(0) { $0 + $1.count })
            for piece in pieces { try spill.append(piece) }
            count += 1
        }

        func finish() throws -> ChainFileTable {
            try spill.flush()
            let storage: Storage = spill.file.map { .file($0) } ?? .memory(spill.inMemory ?? [])
            return ChainFileTable(storage: storage, places: places, count: count, byteCount: spill.count)
        }
    }
}

/// What the writer of the next archive of a chain needs from the archive it just wrote (Spec §14.6, §14.8), kept by
/// the writer in a local file so that a writer that cannot open its archives (packed for recipients only) can still
/// pack incrementally. It holds no data key: the chunk key only makes chunk identities unguessable, the chunk table
/// only says where chunks are stored, and the file table only which files were unchanged in which state.
///
/// File layout (version 2): `"SBKCHST2"` ‖ archive_id[16] ‖ trailer_sha256[32] ‖ LE16(depth) ‖ chunk_key[32] ‖
/// LE16(n) ‖ chunker parameters (n bytes of UTF-8) ‖ LE64(m) ‖ index stream plaintext (m bytes, Spec §14.3) ‖
/// file table ‖ SHA-256 of everything before it. The file table is LE32(count), then per file: LE16(name length),
/// the name (UTF-8), LE64 size, LE64 mtime seconds, LE32 mtime nanoseconds, LE64 ctime seconds, LE32 ctime
/// nanoseconds, LE64 inode, LE64 device, the content's SHA-256[32], LE32(chunk count), LE32 chunk table positions.
/// Version 1 (`"SBKCHST1"`, written before file tables existed) ends with the index stream and is still read.
package struct ChainState {
    package static let magic = Array("SBKCHST2".utf8)
    static let magicVersion1 = Array("SBKCHST1".utf8)
    package var archiveID: [UInt8]
    package var trailerSHA256: [UInt8]
    package var depth: UInt16
    package var chunkKey: SecureBytes
    package var parameters: ChunkerParameters
    package var index: ChunkIndex
    package var files: ChainFileTable

    package init(
        archiveID: [UInt8],
        trailerSHA256: [UInt8],
        depth: UInt16,
        chunkKey: SecureBytes,
        parameters: ChunkerParameters,
        index: ChunkIndex,
        files: ChainFileTable = .empty
    ) {
        self.archiveID = archiveID
        self.trailerSHA256 = trailerSHA256
        self.depth = depth
        self.chunkKey = chunkKey
        self.parameters = parameters
        self.index = index
        self.files = files
    }

    /// Calls `body` with the state file's bytes in order, in pieces of at most about 1 MiB, the last one the SHA-256
    /// of all before it.
    package func encode(_ body: ([UInt8]) throws -> Void) throws {
        let hasher = SHA256Hasher()
        func emit(_ bytes: [UInt8]) throws {
            hasher.update(bytes)
            try body(bytes)
        }
        var w = ByteWriter()
        w.write(bytes: Self.magic)
        w.write(bytes: archiveID)
        w.write(bytes: trailerSHA256)
        w.write(depth)
        chunkKey.withUnsafeBytes { w.write(bytes: $0) }
        let text = Array(parameters.text.utf8)
        w.write(UInt16(text.count))
        w.write(bytes: text)
        let head = index.head()
        w.write(UInt64(head.count) + UInt64(index.chunkCount) * UInt64(ChunkIndex.chunkByteCount))
        try emit(w.bytes)
        try index.encode(emit)
        try files.encode(emit)
        try body(hasher.finalize())
    }

    /// The whole state file.
    package func encoded() throws -> [UInt8] {
        var out: [UInt8] = []
        try encode { out += $0 }
        return out
    }

    /// Parses a chain state file's bytes; nil when they are not one (damaged, truncated, another file).
    ///
    /// - Throws: only when a scratch file for a large table fails (`SealbakError`, code `io`).
    package static func parse(
        _ bytes: [UInt8],
        expectedEntryCount: Int? = nil,
        memoryRecords: Int = ChunkTables.memoryRecords
    ) throws -> ChainState? {
        try parse(size: bytes.count, expectedEntryCount: expectedEntryCount, memoryRecords: memoryRecords) { at, n in
            Array(bytes[at..<at + n])
        }
    }

    /// Reads the state file at `path`, a piece at a time (its chunk table goes to a scratch file when large); nil
    /// when it does not exist or is not a chain state.
    ///
    /// - Throws: when the file cannot be read, or a scratch file for a large table fails (`SealbakError`): the
    ///   caller says so rather than taking the state for missing.
    package static func load(path: String, memoryRecords: Int = ChunkTables.memoryRecords) throws -> ChainState? {
        guard let input = try? InputFile(path: path), let size = input.size, size <= UInt64(Int.max) else {
            return nil
        }
        return try parse(size: Int(size), expectedEntryCount: nil, memoryRecords: memoryRecords) { at, n in
            let bytes = try input.read(at: UInt64(at), count: n)
            guard bytes.count == n else { throw SealbakError(.io, "\(path) changed while it was read") }
            return bytes
        }
    }

    /// Reads a state file of `size` bytes through `read(offset, count)`, checking its SHA-256 over everything read.
    private static func parse(
        size: Int,
        expectedEntryCount: Int?,
        memoryRecords: Int,
        read: @escaping (Int, Int) throws -> [UInt8]
    ) throws -> ChainState? {
        let fixed = 8 + 16 + 32 + 2 + 32 + 2
        guard size >= fixed + 32 else { return nil }
        var key: [UInt8] = []
        defer { wipe(&key) }
        do {
            var c = StateCursor(end: size - 32, read: read)
            let magic = try c.take(8)
            let version1 = magic == magicVersion1
            guard version1 || magic == Self.magic else { return nil }
            let id = try c.take(16)
            let hash = try c.take(32)
            var r = ByteReader(try c.take(2), errorClass: .payload)
            let depth = try r.readUInt16("depth")
            key = try c.take(32)
            r = ByteReader(try c.take(2), errorClass: .payload)
            let n = try r.readUInt16("parameters length")
            guard let text = String(validating: try c.take(Int(n)), as: UTF8.self),
                let parameters = ChunkerParameters(text: text)
            else { return nil }
            var indexLength = UInt64(c.left)
            if !version1 { indexLength = try c.uint64() }
            guard indexLength >= 4, indexLength <= UInt64(c.left) else { return nil }
            var left = Int(indexLength)
            var piece = try c.take(min(left, 1 << 20))
            left -= piece.count
            var declared = 0
            for k in 0..<4 { declared |= Int(piece[k]) << (8 * k) }
            var reader = ChunkIndexReader(
                expectedEntryCount: expectedEntryCount ?? declared,
                memoryRecords: memoryRecords
            )
            while true {
                try reader.feed(piece)
                if left == 0 { break }
                piece = try c.take(min(left, 1 << 20))
                left -= piece.count
            }
            let index = try reader.finish()
            let files = ChainFileTable.Builder(memoryRecords: memoryRecords)
            if !version1 {
                let count = try c.uint32()
                for _ in 0..<count {
                    // A record as the table keeps it: checked (a UTF-8 name, positions inside the chunk table), not
                    // decoded. Whether its chunks add up to its size is checked where it is used (the table may be
                    // paged: checking here would read a page per chunk).
                    // Slices of the cursor's buffer, not copies: a state holds a record per file.
                    let head = try c.slice(2)
                    let nameLength = Int(head[head.startIndex]) | Int(head[head.startIndex + 1]) << 8
                    let fixed = try c.slice(nameLength + ChainFileTable.fixedByteCount)
                    let nameEnd = fixed.startIndex + nameLength
                    guard let name = String(validating: fixed[fixed.startIndex..<nameEnd], as: UTF8.self) else {
                        return nil
                    }
                    var chunkCount = 0
                    for k in 0..<4 { chunkCount |= Int(fixed[fixed.endIndex - 4 + k]) << (8 * k) }
                    guard chunkCount * 4 <= c.left else { return nil }
                    let positions = try c.slice(chunkCount * 4)
                    for k in stride(from: positions.startIndex, to: positions.endIndex, by: 4) {
                        var p = 0
                        for b in 0..<4 { p |= Int(positions[k + b]) << (8 * b) }
                        guard p < index.chunkCount else { return nil }
                    }
                    try files.append(encoded: [head, fixed, positions], name: name)
                }
            }
            guard c.left == 0, Sodium.constantTimeEqual(c.hasher.finalize(), try read(size - 32, 32)) else {
                return nil
            }
            return ChainState(
                archiveID: id,
                trailerSHA256: hash,
                depth: depth,
                chunkKey: SecureBytes(count: 32) { $0.copyBytes(from: key) },
                parameters: parameters,
                index: index,
                files: try files.finish()
            )
        } catch let error as SealbakError {
            throw error
        } catch {
            return nil
        }
    }

    /// Writes the state to `path` atomically, readable by its owner only.
    package func save(path: String) throws {
        let out = try AtomicOutput(path: path, overwrite: true, mode: 0o600)
        do {
            try encode { try out.write($0.span.bytes) }
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
    }
}

/// Reads a chain state file front to back in pieces of up to 1 MiB, hashing every byte it hands out.
private struct StateCursor {
    let end: Int
    let read: (Int, Int) throws -> [UInt8]
    let hasher = SHA256Hasher()
    private var buffer: [UInt8] = []
    private var used = 0
    /// The file offset of `buffer`'s end.
    private var offset = 0

    init(end: Int, read: @escaping (Int, Int) throws -> [UInt8]) {
        self.end = end
        self.read = read
    }

    /// Bytes not yet taken before the final hash.
    var left: Int { end - offset + (buffer.count - used) }

    struct Short: Error {}

    mutating func take(_ n: Int) throws -> [UInt8] { Array(try slice(n)) }

    /// The next `n` bytes, as a slice of the buffer. Every byte is hashed as it is read from the file: the caller
    /// checks at the end that every byte read was taken (`left == 0`).
    mutating func slice(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= left else { throw Short() }
        if buffer.count - used < n {
            buffer = Array(buffer[used...])
            used = 0
            let more = min(end - offset, max(n - buffer.count, 1 << 20))
            let bytes = try read(offset, more)
            hasher.update(bytes)
            buffer += bytes
            offset += more
        }
        defer { used += n }
        return buffer[used..<used + n]
    }

    mutating func uint32() throws -> UInt32 { UInt32(truncatingIfNeeded: try le(4)) }
    mutating func uint64() throws -> UInt64 { try le(8) }

    private mutating func le(_ n: Int) throws -> UInt64 {
        let bytes = try take(n)
        var v: UInt64 = 0
        for k in 0..<n { v |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        return v
    }
}

extension ChainWriteContext {
    /// The next archive after `base`, from the chain state its writer kept (no key of `base` needed): accepted only if
    /// the state is for `base` (its archive id, and the SHA-256 of its stored trailer stream, which is computed from
    /// its bytes; the footer that locates the trailer is not trusted: a wrong one gives a hash that does not match).
    package static func continuing(from state: ChainState, base input: InputFile) throws -> ChainWriteContext? {
        let header = try ArchiveReader.readHeader(input)
        guard header.archiveID == state.archiveID, header.base != nil, let size = input.size,
            size >= UInt64(header.byteCount) + UInt64(FormatV1.footerByteCount)
        else { return nil }
        let footerAt = size - UInt64(FormatV1.footerByteCount)
        guard let footer = try? Footer.parse(input.read(at: footerAt, count: FormatV1.footerByteCount)) else {
            return nil
        }
        let start = UInt64(header.byteCount) + footer.trailerOffset
        guard footer.trailerOffset <= footerAt, start <= footerAt, footerAt - start == footer.trailerLength else {
            return nil
        }
        guard let hash = try input.sha256(start..<footerAt), Sodium.constantTimeEqual(hash, state.trailerSHA256)
        else { return nil }
        if Int(state.depth) + 1 > Int(FormatV1.maxChainDepth) { return nil }
        return ChainWriteContext(
            base: BaseRecord(archiveID: state.archiveID, trailerSHA256: state.trailerSHA256, depth: state.depth + 1),
            chunkKey: state.chunkKey,
            parameters: state.parameters,
            baseIndex: state.index,
            files: state.files
        )
    }
}
