import Foundation
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys

// Chained (incremental) archives, Spec §14. The writer side cuts entries into chunks and writes records
// (`RecordProducer`); the reader side turns records back into content (`ChainedEntrySink`), reading referenced
// chunks from the archive's chain (`ChainResolver`), which it finds through a `ChainCatalog`.

/// The chain facts a chained archive keeps in its encrypted archive metadata (Spec §14.4).
package enum ChainMetadata {
    package static let chunkKeyName = "sealbak.chain.chunk-key"
    package static let chunkerName = "sealbak.chain.chunker"
    /// Keys the CLI never displays.
    package static func isHidden(_ key: String) -> Bool { key == chunkKeyName }

    /// The chunk key of a chained archive (64 lowercase hex digits).
    package static func chunkKey(of manifest: Manifest, archive: String) throws -> SecureBytes {
        guard let text = manifest.metadata[chunkKeyName], let bytes = hexBytes(text), bytes.count == 32 else {
            throw SealbakError.format(
                FormatError(.payload, "a chained archive must hold its chunk key (\(chunkKeyName), 64 hex digits)"),
                archive: archive,
                context: "the manifest"
            )
        }
        var copy = bytes
        defer { wipe(&copy) }
        return SecureBytes(count: 32) { $0.copyBytes(from: copy) }
    }

    /// The chunking parameters recorded in the archive, or the standard ones.
    package static func parameters(of manifest: Manifest) -> ChunkerParameters {
        manifest.metadata[chunkerName].flatMap { ChunkerParameters(text: $0) } ?? .standard
    }

    static func hex(_ key: SecureBytes) -> String {
        key.withUnsafeBytes { b in b.map { String(format: "%02x", $0) }.joined() }
    }

    private static func hexBytes(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        var i = 0
        while i < u.count {
            guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

/// What the writer of a chained archive knows of its chain (Spec §14.6): the base record, the chain's chunk key and
/// chunking parameters, and where the base's chunks are stored (nil for a root).
package struct ChainWriteContext: Sendable {
    package var base: BaseRecord
    package var chunkKey: SecureBytes
    package var parameters: ChunkerParameters
    package var baseIndex: ChunkIndex?

    package init(base: BaseRecord, chunkKey: SecureBytes, parameters: ChunkerParameters, baseIndex: ChunkIndex?) {
        self.base = base
        self.chunkKey = chunkKey
        self.parameters = parameters
        self.baseIndex = baseIndex
    }

    /// The first archive of a new chain: a fresh chunk key, every chunk a literal.
    package static func root(random: any RandomSource, parameters: ChunkerParameters = .standard) -> ChainWriteContext {
        var bytes = random.bytes(32)
        defer { wipe(&bytes) }
        let key = SecureBytes(count: 32) { $0.copyBytes(from: bytes) }
        return ChainWriteContext(base: .root, chunkKey: key, parameters: parameters, baseIndex: nil)
    }

    /// The next archive after the one `base` reads (opened with its key, seekable): its record, chunk key,
    /// parameters and chunk table.
    package static func continuing(from base: ArchiveReader) throws -> ChainWriteContext {
        guard let record = base.header.base else {
            throw SealbakError(
                .usage,
                "\(base.archiveName) is not part of a chain, so nothing can build on it. Start a chain with `sealbak pack --chained` (or `incremental: true` in a plan)"
            )
        }
        if Int(record.depth) + 1 > Int(FormatV1.maxChainDepth) {
            throw SealbakError(
                .usage,
                "\(base.archiveName) ends a chain of \(record.depth + 1) archives, the limit; pack a full archive"
            )
        }
        let index = try base.loadChunkIndex()
        return ChainWriteContext(
            base: BaseRecord(
                archiveID: base.header.archiveID,
                trailerSHA256: try base.storedTrailerSHA256(),
                depth: record.depth + 1
            ),
            chunkKey: try ChainMetadata.chunkKey(of: base.manifest, archive: base.archiveName),
            parameters: ChainMetadata.parameters(of: base.manifest),
            baseIndex: index
        )
    }
}

/// Turns an entry's content into its record stream (Spec §14.2) for the writer: cuts chunks, names each by its keyed
/// hash, and writes a reference for every chunk the base's chunk table holds, a literal for the others. Produces the
/// stream through `read(into:)`, the shape `ArchiveWriter.writeStream` reads from.
///
/// Work goes by blocks of about 4 MiB: the chunker cuts a block on the calling thread, then the block's content
/// SHA-256 (one sequential stream) and its chunks' identities run at the same time on `lanes` threads.
final class RecordProducer {
    private let source: (UnsafeMutableRawBufferPointer) throws -> Int
    private let context: ChainWriteContext
    private let archiveID: [UInt8]
    private let entry: UInt32
    private let lanes: Int
    private var buffer: [UInt8]
    private var bufferStart = 0
    private var bufferEnd = 0
    private var sourceEnded = false
    private var pending: [UInt8] = []
    private var pendingStart = 0
    /// Record stream bytes handed out before `pending`: where its first byte is in the stream.
    private var streamOffset: UInt64 = 0
    private let content = SHA256Hasher()
    private(set) var contentSize: UInt64 = 0
    /// Every chunk of this entry with where it is stored (Spec §14.3).
    private(set) var chunks: [(id: [UInt8], location: ChunkLocation)] = []
    private(set) var referencedBytes: UInt64 = 0
    static let blockSize = 4 << 20

    init(
        source: @escaping (UnsafeMutableRawBufferPointer) throws -> Int,
        context: ChainWriteContext,
        archiveID: [UInt8],
        entry: UInt32,
        threads: Int
    ) {
        self.source = source
        self.context = context
        self.archiveID = archiveID
        self.entry = entry
        lanes = max(2, threads)
        buffer = [UInt8](repeating: 0, count: Self.blockSize + context.parameters.maxSize)
    }

    var contentSHA256: [UInt8] { content.finalize() }

    /// Fills `out` with the next record stream bytes; 0 at the end.
    func read(into out: UnsafeMutableRawBufferPointer) throws -> Int {
        var written = 0
        while written < out.count {
            if pendingStart == pending.count {
                streamOffset += UInt64(pending.count)
                pending.removeAll(keepingCapacity: true)
                pendingStart = 0
                if try !produceBlock() { break }
            }
            let n = min(out.count - written, pending.count - pendingStart)
            pending.withUnsafeBytes { p in
                out.baseAddress!.advanced(by: written).copyMemory(
                    from: p.baseAddress!.advanced(by: pendingStart),
                    byteCount: n
                )
            }
            pendingStart += n
            written += n
        }
        return written
    }

    /// Reads up to a block, cuts it into chunks, hashes them, and appends their records to `pending`; false when the
    /// content ended.
    private func produceBlock() throws -> Bool {
        let maxSize = context.parameters.maxSize
        if bufferStart > 0 {
            buffer.withUnsafeMutableBytes { b in
                b.baseAddress!.copyMemory(
                    from: b.baseAddress!.advanced(by: bufferStart),
                    byteCount: bufferEnd - bufferStart
                )
            }
            bufferEnd -= bufferStart
            bufferStart = 0
        }
        while bufferEnd < buffer.count && !sourceEnded {
            let n = try buffer.withUnsafeMutableBytes { b in
                try source(UnsafeMutableRawBufferPointer(rebasing: b[bufferEnd...]))
            }
            if n == 0 { sourceEnded = true } else { bufferEnd += n }
        }
        if bufferEnd == 0 { return false }
        // Cut: every chunk that starts with at least a maximum chunk ahead (or the input's end) is final.
        let local = buffer  // shares the storage (nothing below writes to `buffer`)
        var cuts: [(start: Int, length: Int)] = []
        var at = 0
        while at < bufferEnd && (bufferEnd - at >= maxSize || sourceEnded) {
            let length = Chunker.chunkLength(
                local.span.bytes.extracting(at..<bufferEnd),
                parameters: context.parameters
            )
            cuts.append((at, length))
            at += length
        }
        let blockEnd = at
        let blockCuts = cuts
        // Hash: the content's SHA-256 on one lane, the chunk identities on the others, at the same time.
        var ids = [[UInt8]](repeating: [], count: cuts.count)
        let key = context.chunkKey
        let content = self.content
        let lanes = min(self.lanes, cuts.count + 1)
        local.withUnsafeBytes { raw in
            ids.withUnsafeMutableBufferPointer { out in
                nonisolated(unsafe) let raw = raw
                nonisolated(unsafe) let out = out
                nonisolated(unsafe) let content = content
                DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                    if lane == 0 {
                        content.update(UnsafeRawBufferPointer(rebasing: raw[0..<blockEnd]).bytes)
                        return
                    }
                    var i = lane - 1
                    while i < blockCuts.count {
                        let c = blockCuts[i]
                        out[i] = Blake2bMAC.mac(
                            key: key,
                            message: UnsafeRawBufferPointer(rebasing: raw[c.start..<c.start + c.length]).bytes
                        )
                        i += lanes - 1
                    }
                }
            }
        }
        contentSize += UInt64(blockEnd)
        for (i, c) in cuts.enumerated() {
            let id = ids[i]
            if let location = context.baseIndex?.location(of: id), Int(location.length) == c.length {
                ChunkRecords.appendReference(
                    ChunkReference(
                        archiveID: location.archiveID,
                        entry: location.entry,
                        offset: location.offset,
                        length: location.length,
                        chunkID: id
                    ),
                    to: &pending
                )
                chunks.append((id, location))
                referencedBytes += UInt64(c.length)
            } else {
                ChunkRecords.appendLiteralHeader(length: c.length, to: &pending)
                let contentOffset = streamOffset + UInt64(pending.count)
                pending.append(contentsOf: local[c.start..<c.start + c.length])
                chunks.append(
                    (
                        id,
                        ChunkLocation(
                            archiveID: archiveID,
                            entry: entry,
                            offset: contentOffset,
                            length: UInt32(c.length)
                        )
                    )
                )
            }
        }
        bufferStart = blockEnd
        return !cuts.isEmpty
    }
}

/// Where the archives of a chain may be: a local folder or an object-storage prefix. Finds an archive by its
/// cleartext archive id (Spec §14.5); the listing (with each archive's header) is taken once, lazily.
package final class ChainCatalog {
    /// The folder or prefix, as messages name it.
    package let location: String
    private let list: () throws -> [(name: String, archiveID: [UInt8])]
    private let open: (String) throws -> InputFile
    private var byID: [[UInt8]: String]?

    /// - Parameters:
    ///   - list: every archive there, with the archive id of its header.
    ///   - open: opens one of them for reading.
    package init(
        location: String,
        list: @escaping () throws -> [(name: String, archiveID: [UInt8])],
        open: @escaping (String) throws -> InputFile
    ) {
        self.location = location
        self.list = list
        self.open = open
    }

    /// The archives in a local folder (every regular file whose header parses).
    package static func folder(_ path: String) -> ChainCatalog {
        ChainCatalog(
            location: path,
            list: {
                let items = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                return items.sorted().compactMap { item in
                    let full = (path as NSString).appendingPathComponent(item)
                    guard let input = try? InputFile(path: full), let header = try? ArchiveReader.readHeader(input)
                    else { return nil }
                    return (full, header.archiveID)
                }
            },
            open: { try InputFile(path: $0) }
        )
    }

    /// The archive whose header carries `archiveID`, opened for reading.
    package func find(_ archiveID: [UInt8]) throws -> (name: String, input: InputFile)? {
        if byID == nil {
            var map: [[UInt8]: String] = [:]
            for (name, id) in try list() where map[id] == nil { map[id] = name }
            byID = map
        }
        guard let name = byID?[archiveID] else { return nil }
        return (name, try open(name))
    }
}

/// The chain of a chained archive, opened and checked (Spec §14.5): every base down to the root, each accepted only
/// if its stored trailer hashes to what the archive above it names and its depth fits. Serves the byte ranges that
/// references ask for.
package final class ChainResolver {
    /// The archive whose references this resolves (it owns the resolver).
    package unowned let head: ArchiveReader
    /// The bases, nearest first (empty for a root).
    package private(set) var bases: [(name: String, reader: ArchiveReader)] = []
    private var byID: [[UInt8]: ArchiveReader] = [:]
    private var cursors: [[UInt8]: [Int: StreamCursor]] = [:]
    private let chunkKey: SecureBytes

    /// Opens every base of `head` now, so that a missing or wrong link fails before anything is restored.
    ///
    /// - Parameter open: opens a base archive (with the same secret as the head, typically).
    package init(
        head: ArchiveReader,
        catalog: ChainCatalog?,
        open: (String, InputFile) throws -> ArchiveReader
    ) throws {
        self.head = head
        chunkKey = try ChainMetadata.chunkKey(of: head.manifest, archive: head.archiveName)
        var current = head
        while let record = current.header.base, !record.isRoot {
            let wanted = hex(record.archiveID)
            guard let catalog else {
                throw SealbakError(
                    .chain,
                    "\(current.archiveName) is incremental: its base \(wanted) is needed; name the folder or s3:// prefix that holds its chain with --chain-from"
                )
            }
            guard let (name, input) = try catalog.find(record.archiveID) else {
                throw SealbakError(
                    .chain,
                    "\(current.archiveName): its base \(wanted) (chain depth \(record.depth - 1)) is missing from \(catalog.location). Restore it there, or name the place that holds the chain with --chain-from"
                )
            }
            let base = try open(name, input)
            let hash = try base.storedTrailerSHA256()
            let depth = base.header.base?.depth
            if !Sodium.constantTimeEqual(hash, record.trailerSHA256) || depth != record.depth - 1 {
                throw SealbakError(
                    .chain,
                    "\(name) has the archive id of \(current.archiveName)'s base \(wanted), but it is not the base this archive was made against (another trailer or chain depth): a different file under that name?"
                )
            }
            try base.loadChunkIndex()
            bases.append((name, base))
            byID[base.header.archiveID] = base
            current = base
        }
    }

    /// The stored bytes a reference names, checked against its chunk id (Spec §14.2).
    package func bytes(for ref: ChunkReference, in entry: Int, at recordOffset: UInt64) throws -> [UInt8] {
        let place =
            "\(head.archiveName): entry \(entry) (\(displayName(head.manifest.entries[entry].name))), reference at stream byte \(recordOffset)"
        guard let base = byID[ref.archiveID] else {
            throw SealbakError(.chain, "\(place) names archive \(hex(ref.archiveID)), which is not in its chain")
        }
        let e = Int(ref.entry)
        let t = try base.loadIndex()
        guard e < base.manifest.entries.count,
            base.manifest.entries[e].kind == .file || base.manifest.entries[e].kind == .stream
        else {
            throw SealbakError(.chain, "\(place) names entry \(ref.entry) of \(base.archiveName), which holds no data")
        }
        let (end, overflow) = ref.offset.addingReportingOverflow(UInt64(ref.length))
        guard !overflow, end <= t.entries[e].size else {
            throw SealbakError(.chain, "\(place) names bytes past the end of entry \(ref.entry) of \(base.archiveName)")
        }
        let cursor: StreamCursor
        if let c = cursors[ref.archiveID]?[e] {
            cursor = c
        } else {
            cursor = try base.streamCursor(entry: e)
            cursors[ref.archiveID, default: [:]][e] = cursor
        }
        let bytes = try cursor.read(offset: ref.offset, length: Int(ref.length))
        let id = Blake2bMAC.mac(key: chunkKey, message: bytes.span.bytes)
        if !Sodium.constantTimeEqual(id, ref.chunkID) {
            throw SealbakError.format(
                FormatError(.payload, "the chunk a reference names differs from the referenced bytes"),
                archive: head.archiveName,
                context: "entry \(entry), reference at stream byte \(recordOffset)"
            )
        }
        return bytes
    }
}

/// Turns the record streams of a chained archive back into content for another sink (Spec §14.2): literals pass
/// through, references are read from the chain. Checks each entry's content size and SHA-256 against the index
/// stream: at the entry's end when the index is already known (random access), otherwise in `checkAll()` once the
/// sequential reader read it.
package final class ChainedEntrySink: EntrySink {
    private let inner: any EntrySink
    private let resolver: ChainResolver
    private var parser = ChunkRecordParser()
    private var hasher = SHA256Hasher()
    private var size: UInt64 = 0
    private var results: [Int: (size: UInt64, sha256: [UInt8])] = [:]
    /// Bytes that came from references (for the summary).
    package private(set) var referencedBytes: UInt64 = 0

    package init(_ inner: any EntrySink, resolver: ChainResolver) {
        self.inner = inner
        self.resolver = resolver
    }

    package func wants(_ index: Int) -> Bool { inner.wants(index) }

    package func begin(_ index: Int) throws {
        parser = ChunkRecordParser()
        hasher = SHA256Hasher()
        size = 0
        try inner.begin(index)
    }

    package func write(_ index: Int, _ bytes: [UInt8]) throws {
        let head = resolver.head
        var at = 0
        while true {
            let event: ChunkRecordParser.Event?
            do throws(FormatError) { event = try parser.next(in: bytes, at: &at) } catch {
                throw SealbakError.format(
                    error,
                    archive: head.archiveName,
                    context: "entry \(index) (\(displayName(head.manifest.entries[index].name)))"
                )
            }
            guard let event else { return }
            let chunk: [UInt8]
            switch event {
            case .literal(let piece, _):
                chunk = Array(piece)
            case .reference(let ref):
                let recordOffset = parser.consumed - UInt64(ChunkRecords.referenceByteCount)
                chunk = try resolver.bytes(for: ref, in: index, at: recordOffset)
                referencedBytes += UInt64(chunk.count)
            }
            hasher.update(chunk)
            size += UInt64(chunk.count)
            try inner.write(index, chunk)
        }
    }

    package func end(_ index: Int, size _: UInt64, sha256 _: [UInt8]) throws {
        let head = resolver.head
        do throws(FormatError) { try parser.finish() } catch {
            throw SealbakError.format(error, archive: head.archiveName, context: "entry \(index)")
        }
        let sha = hasher.finalize()
        results[index] = (size, sha)
        if let expected = head.chunkIndex { try check(index, size: size, sha256: sha, against: expected) }
        try inner.end(index, size: size, sha256: sha)
    }

    /// Checks every entry read so far against the index stream (after a sequential pass).
    package func checkAll() throws {
        guard let expected = resolver.head.chunkIndex else {
            throw SealbakError(.internalError, "the index stream of \(resolver.head.archiveName) was not read")
        }
        for (i, r) in results.sorted(by: { $0.key < $1.key }) {
            try check(i, size: r.size, sha256: r.sha256, against: expected)
        }
    }

    private func check(_ index: Int, size: UInt64, sha256: [UInt8], against expected: ChunkIndex) throws {
        let e = expected.entries[index]
        if e.size != size || !Sodium.constantTimeEqual(e.sha256, sha256) {
            throw SealbakError.format(
                FormatError(
                    .trailer,
                    "size or SHA-256 of \(displayName(resolver.head.manifest.entries[index].name)) differs from the index stream's record"
                ),
                archive: resolver.head.archiveName
            )
        }
    }
}

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
