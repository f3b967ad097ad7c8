import Foundation
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakSync

// Chained (incremental) archives, Spec §14. The writer side cuts entries into chunks and writes records
// (`RecordProducer`); the reader side turns records back into content (`ChainedEntrySink`), reading referenced
// chunks from the archive's chain (`ChainResolver`), which it finds through a `ChainCatalog`.

/// The chain facts a chained archive keeps in its encrypted archive metadata (Spec §14.4).
package enum ChainMetadata {
    package static let chunkKeyName = "sealbak.chain.chunk-key"
    package static let chunkerName = "sealbak.chain.chunker"
    /// Keys the CLI never displays.
    package static func isHidden(_ key: String) -> Bool { key == chunkKeyName || key == ArchiveDictionary.metadataKey }

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
        key.withUnsafeBytes { SealbakIO.hex($0) }
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

extension ChunkReference {
    /// A reference to the chunk `chunkID` where a chunk table says it is stored.
    init(_ location: ChunkLocation, chunkID: [UInt8]) {
        self.init(
            archiveID: location.archiveID,
            entry: location.entry,
            offset: location.offset,
            length: location.length,
            chunkID: chunkID
        )
    }
}

/// What the writer of a chained archive knows of its chain (Spec §14.6): the base record, the chain's chunk key and
/// chunking parameters, and where the base's chunks are stored (nil for a root).
package struct ChainWriteContext: Sendable {
    package var base: BaseRecord
    package let chunkKey: SecureBytes
    package var parameters: ChunkerParameters
    package var baseIndex: ChunkIndex?
    /// The base's files as its writer read them, by entry name (from a chain state; positions are in `baseIndex`).
    /// Empty: every file is read.
    package var files: ChainFileTable
    /// HMAC-SHA-256 under the chunk key: a chunk's identity (Spec §14.4).
    let chunkIdentity: KeyedSHA256

    package init(
        base: BaseRecord,
        chunkKey: SecureBytes,
        parameters: ChunkerParameters,
        baseIndex: ChunkIndex?,
        files: ChainFileTable = .empty
    ) {
        self.base = base
        self.chunkKey = chunkKey
        chunkIdentity = KeyedSHA256(key: chunkKey)
        self.parameters = parameters
        self.baseIndex = baseIndex
        self.files = files
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
                "\(base.archiveName) is not part of a chain, so nothing can build on it. Start a chain with `sealbak "
                    + "pack --chained` (or `incremental: true` in a plan)"
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
/// Work goes by blocks of 4 MiB, in two buffers. The calling thread reads and cuts block k + 1 while block k is
/// hashed on the other cores, and hands block k + 1 to them as soon as it is cut, before it waits for block k and
/// writes its records: so the hashing threads never wait for the calling thread's writing. A block's hashing is two
/// kinds of task: its chunks' identities (spread over every core by `concurrentPerform`), and its content's SHA-256,
/// which starts only when the previous block's SHA-256 is done (`DispatchGroup.notify`), so the content's SHA-256
/// sees the blocks in order. At most two blocks are in flight, one per buffer.
final class RecordProducer {
    private struct Block {
        var buffer: Int
        var cuts: [(start: Int, length: Int)]
        var end: Int
        var ids: [[UInt8]] = []
    }

    private let source: (inout OutputSpan<UInt8>) throws -> Void
    private let context: ChainWriteContext
    private let archiveID: [UInt8]
    private let entry: UInt32
    private let lanes: Int
    /// Blocks smaller than this are hashed on the calling thread.
    static let inlineBlock = 512 << 10
    /// Two block buffers, reused from entry to entry.
    private let scratch: ChunkScratch
    private var sourceEnded = false
    /// The tail of the previous block that no cut reached (its buffer and range): the next block starts with it.
    private var tail: (buffer: Int, start: Int, count: Int)?
    private var nextBuffer = 0
    /// The blocks being hashed (at most two, oldest first), each with the group that says when it is done.
    private var hashing: [(block: Block, group: DispatchGroup, ids: IDs)] = []
    /// Leaves when the content SHA-256 of the newest block handed out is done (an empty group: none is pending).
    private var contentDone = DispatchGroup()
    private var pending: [UInt8] = []
    private var pendingStart = 0
    /// Record stream bytes handed out before `pending`: where its first byte is in the stream.
    private var streamOffset: UInt64 = 0
    private let content = SHA256Hasher()
    private(set) var contentSize: UInt64 = 0
    /// Where every chunk of this entry goes as it is placed (Spec §14.3).
    private let log: ChainChunkLog
    /// Whether the entry's chunk ids are kept in order too (files, for the chain state).
    private let keepIDs: Bool
    private(set) var referencedBytes: UInt64 = 0

    /// The identities of one block: each hashing task computes its slice's, then stores them under the lock at once
    /// (one lock per slice); read after the group that runs the tasks finished.
    private final class IDs: Sendable {
        private let slots: Locked<[[UInt8]]>
        init(_ count: Int) { slots = Locked(Array(repeating: [], count: count)) }
        func set(_ start: Int, _ ids: [[UInt8]]) {
            slots.withLock { s in
                for (k, id) in ids.enumerated() { s[start + k] = id }
            }
        }
        var values: [[UInt8]] { slots.current }
    }

    init(
        source: @escaping (inout OutputSpan<UInt8>) throws -> Void,
        context: ChainWriteContext,
        archiveID: [UInt8],
        entry: UInt32,
        threads: Int,
        scratch: ChunkScratch,
        log: ChainChunkLog,
        keepIDs: Bool
    ) {
        self.log = log
        self.keepIDs = keepIDs
        self.source = source
        self.context = context
        self.archiveID = archiveID
        self.entry = entry
        lanes = max(2, threads)
        self.scratch = scratch
        scratch.prepare(ChunkScratch.blockSize + context.parameters.maxSize)
    }

    var contentSHA256: [UInt8] { content.finalize() }

    /// Appends the next record stream bytes to `out` until it is full; nothing at the end.
    func read(into out: inout OutputSpan<UInt8>) throws {
        while !out.isFull {
            if pendingStart == pending.count {
                streamOffset += UInt64(pending.count)
                pending.removeAll(keepingCapacity: true)
                pendingStart = 0
                if try !produce() { break }
            }
            pendingStart += out.appendPrefix(of: pending.span.extracting(pendingStart...))
        }
    }

    /// Appends the records of the next block to `pending`; false when the content ended.
    private func produce() throws -> Bool {
        if hashing.isEmpty {
            guard let first = try cutBlock() else { return false }
            startHashing(first)
        }
        // Overlaps the hashing of the oldest block, and is hashed while that block's records are written. Its buffer
        // is the one the oldest block does not use: the block before that one was waited for in the previous call.
        if let next = try cutBlock() { startHashing(next) }
        let (block, group, ids) = hashing.removeFirst()
        group.wait()
        var done = block
        done.ids = ids.values
        try writeRecords(done)
        return true
    }

    /// Reads the next block into the other buffer (after the bytes carried over) and cuts it; nil at the end.
    private func cutBlock() throws -> Block? {
        let index = nextBuffer
        let buffer = scratch.buffers[index]
        // Copied only now: this buffer's previous block is written out, and the other buffer's block is hashed
        // only up to where its tail starts.
        var filled = 0
        if let t = tail {
            buffer.baseAddress!.copyMemory(
                from: scratch.buffers[t.buffer].baseAddress!.advanced(by: t.start),
                byteCount: t.count
            )
            filled = t.count
            tail = nil
        }
        while filled < buffer.count && !sourceEnded {
            let region = UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]).bindMemory(to: UInt8.self)
            var out = OutputSpan(buffer: region, initializedCount: 0)
            // A throwing source ends the entry: the bytes it appended are dropped with the block.
            try source(&out)
            let n = out.finalize(for: region)
            if n == 0 { sourceEnded = true } else { filled += n }
        }
        if filled == 0 { return nil }
        let maxSize = context.parameters.maxSize
        var cuts: [(start: Int, length: Int)] = []
        var at = 0
        while at < filled && (filled - at >= maxSize || sourceEnded) {
            let span = UnsafeRawBufferPointer(rebasing: buffer[at..<filled]).bytes
            let length = Chunker.chunkLength(span, parameters: context.parameters)
            cuts.append((at, length))
            at += length
        }
        if filled > at { tail = (index, at, filled - at) }
        nextBuffer = 1 - index
        return Block(buffer: index, cuts: cuts, end: at)
    }

    private func startHashing(_ block: Block) {
        let group = DispatchGroup()
        let ids = IDs(block.cuts.count)
        nonisolated(unsafe) let raw = UnsafeRawBufferPointer(scratch.buffers[block.buffer])
        nonisolated(unsafe) let content = self.content
        let identity = context.chunkIdentity
        let cuts = block.cuts
        let end = block.end
        if end < Self.inlineBlock {
            // A small file (or a file's small last block): handing it to other threads costs more than hashing it
            // here. The previous block's content SHA-256 comes first.
            contentDone.wait()
            content.update(UnsafeRawBufferPointer(rebasing: raw[0..<end]).bytes)
            ids.set(
                0,
                cuts.map { identity.mac(UnsafeRawBufferPointer(rebasing: raw[$0.start..<$0.start + $0.length]).bytes) }
            )
            hashing.append((block, group, ids))
            return
        }
        let slices = min(cuts.count, 4 * lanes)
        DispatchQueue.global().async(group: group) {
            DispatchQueue.concurrentPerform(iterations: slices) { slice in
                let range = (cuts.count * slice / slices)..<(cuts.count * (slice + 1) / slices)
                let computed = range.map { i in
                    let c = cuts[i]
                    return identity.mac(UnsafeRawBufferPointer(rebasing: raw[c.start..<c.start + c.length]).bytes)
                }
                ids.set(range.lowerBound, computed)
            }
        }
        let previous = contentDone
        let done = DispatchGroup()
        done.enter()
        group.enter()
        previous.notify(queue: .global()) {
            content.update(UnsafeRawBufferPointer(rebasing: raw[0..<end]).bytes)
            done.leave()
            group.leave()
        }
        contentDone = done
        hashing.append((block, group, ids))
    }

    private func writeRecords(_ block: Block) throws {
        let raw = UnsafeRawBufferPointer(scratch.buffers[block.buffer])
        contentSize += UInt64(block.end)
        for (i, c) in block.cuts.enumerated() {
            let id = block.ids[i]
            if let location = try context.baseIndex?.location(of: id), Int(location.length) == c.length {
                ChunkRecords.appendReference(ChunkReference(location, chunkID: id), to: &pending)
                try log.add(id: id, location: location, keepID: keepIDs)
                referencedBytes += UInt64(c.length)
            } else {
                ChunkRecords.appendLiteralHeader(length: c.length, to: &pending)
                let contentOffset = streamOffset + UInt64(pending.count)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[c.start..<c.start + c.length]))
                let location = ChunkLocation(
                    archiveID: archiveID,
                    entry: entry,
                    offset: contentOffset,
                    length: UInt32(c.length)
                )
                try log.add(id: id, location: location, keepID: keepIDs)
            }
        }
    }

    /// Waits for a block still being hashed (an entry abandoned after an error), so no task outlives the buffers.
    deinit { for h in hashing { h.group.wait() } }
}

/// The two block buffers of `RecordProducer`, kept by the writer for all its entries (a fresh 4 MiB per small file
/// cost more than hashing it).
final class ChunkScratch {
    static let blockSize = 4 << 20
    private(set) var buffers: [UnsafeMutableRawBufferPointer] = []

    func prepare(_ size: Int) {
        if buffers.first?.count == size { return }
        for b in buffers { b.deallocate() }
        buffers = (0..<2).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64) }
    }

    deinit { for b in buffers { b.deallocate() } }
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
    /// Open streams of the chain, most recently used last; each holds a few decoded frames, so only the last
    /// `maxCursors` are kept (memory stays bounded however many entries the chain has).
    private var cursors: [(archiveID: [UInt8], entry: Int, cursor: StreamCursor)] = []
    static let maxCursors = 4

    /// Opens every base of `head` now, so that a missing or wrong link fails before anything is restored.
    ///
    /// - Parameter open: opens a base archive (with the same secret as the head, typically).
    package init(
        head: ArchiveReader,
        catalog: ChainCatalog?,
        open: (String, InputFile) throws -> ArchiveReader
    ) throws {
        self.head = head
        // A chained archive must hold its chunk key (Spec §14.4), though reading checks references by table.
        _ = try ChainMetadata.chunkKey(of: head.manifest, archive: head.archiveName)
        var current = head
        while let record = current.header.base, !record.isRoot {
            let wanted = hex(record.archiveID)
            guard let catalog else {
                throw SealbakError(
                    .chain,
                    "\(current.archiveName) is incremental: its base \(wanted) is needed; name the folder or s3:// "
                        + "prefix that holds its chain with --chain-from"
                )
            }
            guard let (name, input) = try catalog.find(record.archiveID) else {
                throw SealbakError(
                    .chain,
                    "\(current.archiveName): its base \(wanted) (chain depth \(record.depth - 1)) is missing from "
                        + "\(catalog.location). Restore it there, or name the place that holds the chain with "
                        + "--chain-from"
                )
            }
            let base = try open(name, input)
            let hash = try base.storedTrailerSHA256()
            let depth = base.header.base?.depth
            if !Sodium.constantTimeEqual(hash, record.trailerSHA256) || depth != record.depth - 1 {
                throw SealbakError(
                    .chain,
                    "\(name) has the archive id of \(current.archiveName)'s base \(wanted), but it is not the base "
                        + "this archive was made against (another trailer or chain depth): a different file under that "
                        + "name?"
                )
            }
            // The chain's tables share one memory budget, so a deep chain does not hold a table in memory per link.
            try base.loadChunkIndex(
                memoryRecords: min(
                    base.options.chunkTableMemoryRecords,
                    ChunkTables.chainMemoryRecords / max(1, Int(head.header.base?.depth ?? 1))
                )
            )
            bases.append((name, base))
            byID[base.header.archiveID] = base
            current = base
        }
    }

    /// Appends the stored bytes a reference names (Spec §14.2), authenticated by its archive's frames, to `out`; the
    /// caller checks the reference against the chunk table before it releases them.
    package func append(_ ref: ChunkReference, in entry: Int, at recordOffset: UInt64, to out: inout [UInt8]) throws {
        // Only built for an error: this runs once per reference.
        func place() -> String {
            "\(head.archiveName): entry \(entry) (\(displayName(head.manifest.entries[entry].name))), reference at "
                + "stream byte \(recordOffset)"
        }
        guard let base = byID[ref.archiveID] else {
            throw SealbakError(.chain, "\(place()) names archive \(hex(ref.archiveID)), which is not in its chain")
        }
        let e = Int(ref.entry)
        let t = try base.loadIndex()
        guard e < base.manifest.entries.count,
            base.manifest.entries[e].kind == .file || base.manifest.entries[e].kind == .stream
        else {
            throw SealbakError(
                .chain,
                "\(place()) names entry \(ref.entry) of \(base.archiveName), which holds no data"
            )
        }
        let (end, overflow) = ref.offset.addingReportingOverflow(UInt64(ref.length))
        guard !overflow, end <= t.entries[e].size else {
            throw SealbakError(
                .chain,
                "\(place()) names bytes past the end of entry \(ref.entry) of \(base.archiveName)"
            )
        }
        let cursor: StreamCursor
        if let at = cursors.firstIndex(where: { $0.entry == e && $0.archiveID == ref.archiveID }) {
            cursor = cursors.remove(at: at).cursor
        } else {
            cursor = try base.streamCursor(entry: e)
            if cursors.count >= Self.maxCursors { cursors.removeFirst() }
        }
        cursors.append((ref.archiveID, e, cursor))
        try cursor.read(offset: ref.offset, length: Int(ref.length), appendingTo: &out)
    }

    /// Whether the chunk table of the archive a reference names lists the reference's chunk id at exactly the place
    /// it names (Spec §14.2). That archive's writer computed the id from those bytes when it stored them, and its
    /// index stream is authenticated; the bytes themselves are authenticated by its frames, and the entry's content
    /// by its SHA-256 in the index stream.
    func tableAgrees(_ ref: ChunkReference) throws -> Bool {
        guard let base = byID[ref.archiveID], let table = base.chunkIndex, let at = try table.index(of: ref.chunkID)
        else {
            return false
        }
        let place = try table.location(at: at)
        return place.archiveID == ref.archiveID && place.entry == ref.entry && place.offset == ref.offset
            && place.length == ref.length
    }

    func mismatch(in entry: Int, at recordOffset: UInt64) -> SealbakError {
        SealbakError.format(
            FormatError(
                .payload,
                "a reference's chunk id is not the one its archive's chunk table lists for the bytes it names"
            ),
            archive: head.archiveName,
            context: "entry \(entry), reference at stream byte \(recordOffset)"
        )
    }
}

/// Turns the record streams of a chained archive back into content for another sink (Spec §14.2): literals pass
/// through, references are read from the chain. Checks each entry's content size and SHA-256 against the index
/// stream: at the entry's end when the index is already known (random access), otherwise in `checkAll()` once the
/// sequential reader read it.
///
/// Two threads: the caller's (the reader's delivery thread) parses records and fetches referenced chunks; every call
/// into `inner` (begin, write, end), with the hashing, runs in order on `queue`. So while one file is created,
/// written and hashed there, the next one's chunks are already being decrypted here. What may wait on `queue` is
/// bounded by `budgetUnits` (about 10 MiB of content, or 40 calls); the first error there stops the rest
/// and is thrown by the next call here, by `finish()` or `checkAll()`.
package final class ChainedEntrySink: EntrySink {
    private let resolver: ChainResolver
    private var parser = ChunkRecordParser()
    /// Content bytes resolved so far for the current entry.
    private var size: UInt64 = 0
    /// The writing side: touched only on `queue`, and by `checkAll` after `queue` drained.
    private final class Output {
        let inner: any EntrySink
        var hasher = SHA256Hasher()
        var results: [Int: (size: UInt64, sha256: [UInt8])] = [:]
        init(_ inner: any EntrySink) { self.inner = inner }
    }
    private let output: Output
    private let failure = Locked<(any Error)?>(nil)
    /// One unit per queued call and per started `unitBytes` of content in it.
    private let queue = OrderedWorker(name: "sealbak-chain-write", limit: ChainedEntrySink.budgetUnits)
    static let unitBytes = 256 << 10
    static let budgetUnits = 40

    package init(_ inner: any EntrySink, resolver: ChainResolver) {
        output = Output(inner)
        self.resolver = resolver
    }

    deinit {
        queue.drain()
        queue.close()
    }

    package func wants(_ index: Int) -> Bool { output.inner.wants(index) }

    /// Waits until every queued call ran; throws the first failure among them. Call after the last entry's `end`.
    package func finish() throws {
        queue.drain()
        if let e = failure.withLock({ $0 }) { throw e }
    }

    /// Waits until every queued call ran; returns the first failure among them, else `other`. For the caller's own
    /// error: what failed here came from content delivered before it.
    package func earliestError(orElse other: any Error) -> any Error {
        queue.drain()
        return failure.withLock { $0 } ?? other
    }

    /// Queues `work` for `queue` after the calls before it; throws a failure that already happened there.
    private func enqueue(bytes: Int, _ work: @escaping (Output) throws -> Void) throws {
        if let e = failure.withLock({ $0 }) { throw e }
        // `output` and `work` are handed to the worker thread and touched only there from now on (jobs run one at a
        // time, in order), which region checking cannot follow through a queue of jobs.
        nonisolated(unsafe) let output = self.output
        nonisolated(unsafe) let work = work
        let failure = self.failure
        queue.submit(units: 1 + (bytes + Self.unitBytes - 1) / Self.unitBytes) {
            guard failure.withLock({ $0 == nil }) else { return }
            do { try work(output) } catch { failure.withLock { if $0 == nil { $0 = error } } }
        }
    }

    package func begin(_ index: Int) throws {
        parser = ChunkRecordParser()
        size = 0
        try enqueue(bytes: 0) { output in
            output.hasher = SHA256Hasher()
            try output.inner.begin(index)
        }
    }

    /// Turns a piece of record stream into content in batches of about 4 MiB: each reference is fetched and checked
    /// against the chunk table of the archive it names, and each batch is queued for hashing and one write.
    package func write(_ index: Int, _ bytes: [UInt8]) throws {
        let head = resolver.head
        var at = 0
        var finished = false
        while !finished {
            // Literals and referenced chunks are appended straight into the batch: no array per chunk, no join.
            var batch: [UInt8] = []
            batch.reserveCapacity(Self.batchBytes + Self.batchSlack)
            while batch.count < Self.batchBytes {
                let event: ChunkRecordParser.Event?
                do throws(FormatError) { event = try parser.next(in: bytes, at: &at) } catch {
                    throw SealbakError.format(
                        error,
                        archive: head.archiveName,
                        context: "entry \(index) (\(displayName(head.manifest.entries[index].name)))"
                    )
                }
                guard let event else {
                    finished = true
                    break
                }
                switch event {
                case .literal(let piece, _):
                    batch += piece
                case .reference(let ref):
                    let recordOffset = parser.consumed - UInt64(ChunkRecords.referenceByteCount)
                    try resolver.append(ref, in: index, at: recordOffset, to: &batch)
                    guard try resolver.tableAgrees(ref) else { throw resolver.mismatch(in: index, at: recordOffset) }
                }
            }
            if batch.isEmpty { continue }
            size += UInt64(batch.count)
            let content = batch
            // One write per batch, not one per chunk (a 16 KiB chunk per write cost a system call each).
            try enqueue(bytes: content.count) { output in
                output.hasher.update(content)
                try output.inner.write(index, content)
            }
        }
    }

    static let batchBytes = 4 << 20
    /// Room past `batchBytes` for the piece that crosses it (64 KiB with the standard chunker; a larger one grows the
    /// buffer once).
    static let batchSlack = 64 << 10

    package func end(_ index: Int, size _: UInt64, sha256 _: [UInt8]) throws {
        let head = resolver.head
        do throws(FormatError) { try parser.finish() } catch {
            throw SealbakError.format(error, archive: head.archiveName, context: "entry \(index)")
        }
        let size = self.size
        let expected = head.chunkIndex?.entries[index]
        let archive = head.archiveName
        let name = head.manifest.entries[index].name
        try enqueue(bytes: 0) { output in
            let sha = output.hasher.finalize()
            output.results[index] = (size, sha)
            if let expected {
                try Self.check(size: size, sha256: sha, against: expected, name: name, archive: archive)
            }
            try output.inner.end(index, size: size, sha256: sha)
        }
    }

    /// Checks every entry read so far against the index stream (after a sequential pass); waits for the queued
    /// calls first and throws their failure, if any.
    package func checkAll() throws {
        try finish()
        let head = resolver.head
        guard let expected = head.chunkIndex else {
            throw SealbakError(.internalError, "the index stream of \(head.archiveName) was not read")
        }
        for (i, r) in output.results.sorted(by: { $0.key < $1.key }) {
            try Self.check(
                size: r.size,
                sha256: r.sha256,
                against: expected.entries[i],
                name: head.manifest.entries[i].name,
                archive: head.archiveName
            )
        }
    }

    private static func check(
        size: UInt64,
        sha256: [UInt8],
        against e: LogicalEntry,
        name: String,
        archive: String
    ) throws {
        if e.size != size || !Sodium.constantTimeEqual(e.sha256, sha256) {
            throw SealbakError.format(
                FormatError(
                    .trailer,
                    "size or SHA-256 of \(displayName(name)) differs from the index stream's record"
                ),
                archive: archive
            )
        }
    }
}

/// One thread's intent to wait on a semaphore for something guarded by a lock (`OrderedWorker`, Consolidate's
/// queue): the thread sets `waiting` under the lock, then waits outside it; whoever changes what it waits for calls
/// `take()` under the same lock and signals the semaphore only if it returns true. So every signal meets exactly one
/// wait, and a signal given before the wait is kept by the semaphore: no wake-up is lost or left over.
struct WakeFlag {
    var waiting = false

    /// Whether a thread waits (it is then no longer marked waiting: the caller must signal it).
    mutating func take() -> Bool {
        defer { waiting = false }
        return waiting
    }
}

/// Runs jobs in submission order on one thread of its own (started with the first job); `submit` waits while
/// `limit` units are queued. Everything shared is in a `Locked`; the semaphores only wake a side that said, under
/// the lock, that it is about to wait (a signal given before the wait is kept, so no wake-up is lost). One thread
/// submits; `drain` may be called by one thread at a time, from another thread once submitting stopped; `close`
/// must be called for the thread to end.
///
/// (Not a `DispatchQueue`: async calls from the reader's delivery thread, which also runs `concurrentPerform`,
/// made libdispatch free a cached continuation twice when that thread exited; AddressSanitizer caught it.)
final class OrderedWorker: Sendable {
    typealias Job = @Sendable () -> Void
    private struct State {
        var jobs: [(job: Job, units: Int)?] = []
        var head = 0
        /// The units of jobs queued or running (a job's units are given back once it ran).
        var queuedUnits = 0
        var started = false
        var closing = false
        var worker = WakeFlag()
        var submitter = WakeFlag()
        var drainer = WakeFlag()
    }
    private let state = Locked(State())
    private let jobAdded = DispatchSemaphore(value: 0)
    private let roomMade = DispatchSemaphore(value: 0)
    private let drained = DispatchSemaphore(value: 0)
    private let name: String
    private let limit: Int

    init(name: String, limit: Int) {
        self.name = name
        self.limit = max(1, limit)
    }

    /// Queues `job` (weighing `units`), waiting for room first.
    func submit(units: Int, _ job: @escaping Job) {
        let units = min(max(1, units), limit)
        while true {
            let (added, wake, start) = state.withLock { s -> (Bool, Bool, Bool) in
                precondition(!s.closing, "submit after close")
                guard s.queuedUnits == 0 || s.queuedUnits + units <= limit else {
                    s.submitter.waiting = true
                    return (false, false, false)
                }
                s.jobs.append((job, units))
                s.queuedUnits += units
                let start = !s.started
                s.started = true
                return (true, s.worker.take(), start)
            }
            if start {
                let thread = Thread { [self] in run() }
                thread.name = name
                thread.start()
            }
            if wake { jobAdded.signal() }
            if added { return }
            roomMade.wait()
        }
    }

    /// Waits until every queued job ran.
    func drain() {
        let wait = state.withLock { s -> Bool in
            guard s.queuedUnits > 0 else { return false }
            s.drainer.waiting = true
            return true
        }
        if wait { drained.wait() }
    }

    /// Lets the thread exit once the queue is empty; no job may be submitted after.
    func close() {
        let wake = state.withLock { s -> Bool in
            s.closing = true
            return s.worker.take()
        }
        if wake { jobAdded.signal() }
    }

    private func run() {
        var finished = 0  // units of the job that just ran
        while true {
            let (job, wakeSubmitter, wakeDrainer, exit) = state.withLock { s -> (Job?, Bool, Bool, Bool) in
                var wakeSubmitter = false
                if finished > 0 {
                    s.queuedUnits -= finished
                    wakeSubmitter = s.submitter.take()
                }
                if s.head < s.jobs.count {
                    let next = s.jobs[s.head]!
                    s.jobs[s.head] = nil
                    s.head += 1
                    if s.head > 1024 {
                        s.jobs.removeFirst(s.head)
                        s.head = 0
                    }
                    finished = next.units
                    return (next.job, wakeSubmitter, false, false)
                }
                finished = 0
                let wakeDrainer = s.drainer.take()
                if s.closing { return (nil, wakeSubmitter, wakeDrainer, true) }
                s.worker.waiting = true
                return (nil, wakeSubmitter, wakeDrainer, false)
            }
            if wakeSubmitter { roomMade.signal() }
            if wakeDrainer { drained.signal() }
            if let job {
                job()
            } else if exit {
                return
            } else {
                jobAdded.wait()
            }
        }
    }
}
