import Foundation
import SealbakCompression
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys

/// How an archive is written. The defaults are what `sealbak pack` uses.
package struct WriteOptions: Sendable {
    package var suite: CipherSuite = .xchacha20poly1305
    package var frameSizeLog2: UInt8 = FormatV1.defaultFrameSizeLog2
    package var compression: CompressionAlgorithm = .zstd(level: 3)
    /// Entries compressed with the shuffle codec when `compression` is zstd (Spec §6.2 codec 3). The archive is
    /// version 2 with the shuffle feature only when an entry is selected; otherwise version 1, as without it.
    package var shuffle: ShuffleSelection = .vectorFiles
    package var kdf: KDFParameters = KeySlots.defaultKDF
    /// Worker threads for compression and encryption.
    package var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    package var random: any RandomSource = SystemRandom()
    package var createdUnix: UInt64 = UInt64(Date().timeIntervalSince1970)
    /// A chained archive (Spec §14): entries become records that refer to the chain where it holds a chunk.
    package var chain: ChainWriteContext?
    /// A zstd dictionary (`ZstdDictionary.train`). With zstd compression, the archive declares the dictionary
    /// feature, keeps the dictionary in its metadata and compresses the frames of files and streams that are
    /// smaller than a frame with it (codec 4, Spec §6.2); entries compressed with the shuffle codec keep it.
    package var dictionary: [UInt8]?

    /// Chained archives: chunk records a table holds in memory before it moves to a scratch file in TMPDIR
    /// (`ChunkTables`); tests lower it to exercise the scratch files.
    package var chunkTableMemoryRecords = ChunkTables.memoryRecords

    package init() {}

    /// Frames in flight: enough to keep every worker busy while one slow frame holds up ordered delivery, and at
    /// most ~64 MiB of plaintext. Since the pipeline has its own writer thread, 4 per thread packs as fast as 8 did
    /// (4 interleaved pairs on the codec data set: 1.92-2.07 s against 1.94-2.12 s) with 10 MiB less peak memory.
    var maxInFlight: Int {
        let frameSize = 1 << Int(frameSizeLog2)
        return max(2, min(4 * max(1, threads), (64 << 20) / frameSize))
    }
}

/// A password and the label of the slot it gets.
package struct PasswordSlotSpec: Sendable {
    package var passphrase: Passphrase
    package var label: String
    package var kdf: KDFParameters?

    package init(passphrase: Passphrase, label: String = "", kdf: KDFParameters? = nil) {
        self.passphrase = passphrase
        self.label = label
        self.kdf = kdf
    }
}

/// What was written, for the summary line and tests.
package struct WriteSummary: Sendable {
    package var archiveBytes: UInt64
    package var plaintextBytes: UInt64
    package var entries: Int
    package var archiveID: [UInt8]
    /// SHA-256 of the trailer stream as written (what an archive built on this one names, Spec §14.1).
    package var trailerSHA256: [UInt8]
    /// Chained archives: content bytes written as references into the chain, and as literals.
    package var referencedBytes: UInt64 = 0
    package var literalBytes: UInt64 = 0
    /// Chained archives: the index stream written (for the writer's chain state, Spec §14.8).
    package var chainIndex: ChunkIndex?
    /// Chained archives: the files whose state the next archive may compare with (the chain state's file table).
    package var chainFiles: ChainFileTable = .empty
    /// Chained archives: files found unchanged since the base (by the chain state's file table), not read.
    package var unchangedFiles = 0
}

/// Writes an archive front to back without ever seeking (Spec §1): header, manifest stream, one stream per
/// manifest entry in order, trailer stream, footer. Frames are compressed and encrypted on all cores and
/// written in order; memory stays bounded by `WriteOptions.maxInFlight` frames.
package final class ArchiveWriter {
    private let sink: (RawSpan) throws -> Void
    private let options: WriteOptions
    private let codec: FrameCodec
    private let master: MasterKey
    private let header: ArchiveHeader
    private let manifest: Manifest
    /// Per entry: the compression of its frames (`options.compression`, or shuffled zstd where `shuffle` selects it).
    private let entryCompression: [CompressionAlgorithm]
    /// The compressor of the writer's own thread (the trailer); the pipeline's workers have their own.
    private let compressor = FrameCompressor()
    private let pipeline: OrderedPipeline<(Int, [UInt8])>
    private let lengthsLock = NSLock()
    /// Bytes written per stream slot: 0 = manifest, 1...n = entries.
    private var streamLengths: [UInt64]
    private var written: UInt64 = 0
    private var results: [(size: UInt64, sha256: [UInt8])] = []
    /// Chained archives: each entry's content size and SHA-256, and every chunk with its place (Spec §14.3).
    private var contentResults: [(size: UInt64, sha256: [UInt8])] = []
    /// Chained archives: every chunk placed, and the files' chunk ids (in memory while small, else in TMPDIR).
    private let chainChunks: ChainChunkLog?
    private var referencedBytes: UInt64 = 0
    private let chunkScratch = ChunkScratch()
    /// Chained archives, per file entry: where its chunk ids are in `chainChunks.ids` (bytes), for the next chain
    /// state.
    private var entryChunkIDs: [Int: Range<UInt64>] = [:]
    /// Chained archives: the state each file had while it was read, for those that may be recorded.
    private var fileStates: [Int: FileState] = [:]
    private var unchangedFiles = 0
    private var chainFiles: ChainFileTable = .empty
    /// When this writer started (nanoseconds since the epoch): files changed less than a second before are never
    /// recorded as unchanged, since a change within the file system's timestamp granularity could not be told apart.
    private let startedNanoseconds: Int64 = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }()
    private var finished = false

    /// Writes the header and the manifest.
    ///
    /// - Parameter sink: receives the archive bytes in order (a file, a pipe, an upload).
    package init(
        manifest: Manifest,
        passwords: [PasswordSlotSpec],
        recipients: [[UInt8]] = [],
        options: WriteOptions,
        sink: @escaping (RawSpan) throws -> Void
    ) throws {
        guard !passwords.isEmpty || !recipients.isEmpty else {
            throw SealbakError(.usage, "an archive needs at least one password or recipient")
        }
        guard passwords.count + recipients.count <= FormatV1.maxSlotCount else {
            throw SealbakError(.usage, "at most \(FormatV1.maxSlotCount) key slots")
        }
        guard (FormatV1.minFrameSizeLog2...FormatV1.maxFrameSizeLog2).contains(options.frameSizeLog2) else {
            throw SealbakError(.usage, "frame size must be 2^12 (4 KiB) ... 2^24 (16 MiB)")
        }
        switch options.compression {
        case .shuffledZstd:
            throw SealbakError(
                .usage,
                "shuffled zstd is chosen per entry (WriteOptions.shuffle), not for a whole archive"
            )
        case .dictionaryZstd:
            throw SealbakError(
                .usage,
                "dictionary zstd is chosen per frame (WriteOptions.dictionary), not for a whole archive"
            )
        default: break
        }
        do throws(FormatError) { try manifest.validate() } catch {
            throw SealbakError(.usage, "cannot write this manifest: \(error.message)")
        }
        self.sink = sink
        self.options = options
        chainChunks = options.chain.map { _ in ChainChunkLog(memoryRecords: options.chunkTableMemoryRecords) }
        var manifest = manifest
        if let chain = options.chain {
            manifest.metadata[ChainMetadata.chunkKeyName] = ChainMetadata.hex(chain.chunkKey)
            manifest.metadata[ChainMetadata.chunkerName] = chain.parameters.text
        }
        let archiveID = options.random.bytes(FormatV1.archiveIDByteCount)
        master = MasterKey.generate(random: options.random)
        // The shuffle feature is declared before any data is read (Spec §3.4 rule 3), from the names alone.
        var entryCompression = [CompressionAlgorithm](repeating: options.compression, count: manifest.entries.count)
        var features: FormatFeatures = []
        if case .zstd = options.compression {
            for (i, entry) in manifest.entries.enumerated() where options.shuffle.selects(entry) {
                entryCompression[i] = .shuffledZstd(level: ShuffleSelection.zstdLevel)
                features.insert(.shuffle)
            }
        }
        if options.chain != nil { features.insert(.chained) }
        var dictionary: ZstdDictionary?
        // The key belongs to the writer: a manifest copied from another archive does not bring it along.
        manifest.metadata[ArchiveDictionary.metadataKey] = nil
        if case .zstd(let level) = options.compression, let bytes = options.dictionary {
            do throws(CompressionError) { dictionary = try ZstdDictionary(bytes, level: level) } catch {
                throw SealbakError(.usage, "cannot use this dictionary: \(error.message)")
            }
            for (i, entry) in manifest.entries.enumerated()
            where entry.kind == .file || entry.kind == .stream {
                if case .zstd = entryCompression[i] { entryCompression[i] = .dictionaryZstd(dictionary!) }
            }
            features.insert(.dictionary)
            manifest.metadata[ArchiveDictionary.metadataKey] = ArchiveDictionary.encode(bytes)
            do throws(FormatError) { try manifest.validate() } catch {
                throw SealbakError(.usage, "cannot write this manifest with its dictionary: \(error.message)")
            }
        }
        self.manifest = manifest
        self.entryCompression = entryCompression
        var codec = try FrameCodec(
            suite: options.suite,
            archiveID: archiveID,
            frameSize: 1 << Int(options.frameSizeLog2),
            features: features
        )
        if let dictionary { codec = codec.with(dictionary: dictionary) }
        self.codec = codec
        var slots: [KeySlot] = []
        for (i, spec) in passwords.enumerated() {
            slots.append(
                try KeySlots.passwordSlot(
                    id: UInt16(i + 1),
                    label: spec.label,
                    createdUnix: options.createdUnix,
                    passphrase: spec.passphrase,
                    kdf: spec.kdf ?? options.kdf,
                    archiveID: archiveID,
                    master: master,
                    random: options.random
                )
            )
        }
        for (i, recipient) in recipients.enumerated() {
            slots.append(
                try Recipients.slot(
                    id: UInt16(passwords.count + i + 1),
                    label: String(Recipients.encode(publicKey: recipient).prefix(20)),
                    createdUnix: options.createdUnix,
                    recipient: recipient,
                    archiveID: archiveID,
                    master: master,
                    random: options.random
                )
            )
        }
        var header = ArchiveHeader(
            features: features,
            cipherSuite: options.suite,
            frameSizeLog2: options.frameSizeLog2,
            archiveID: archiveID,
            createdUnix: options.createdUnix,
            slots: slots,
            base: options.chain?.base
        )
        header.mac = master.mac(for: header)
        do throws(FormatError) { try header.validate() } catch {
            throw SealbakError(.usage, "cannot write this header: \(error.message)")
        }
        self.header = header
        // Slot n + 1 is a chained archive's index stream.
        streamLengths = [UInt64](repeating: 0, count: manifest.entries.count + 2)
        pipeline = OrderedPipeline(workers: options.threads, maxInFlight: options.maxInFlight) { _ in }
        let bytes = header.encoded()
        try sink(bytes.span.bytes)
        written = UInt64(bytes.count)
        pipeline.setDelivery { [unowned self] (slot, frame) in
            try self.sink(frame.span.bytes)
            self.lengthsLock.withLock {
                self.streamLengths[slot] += UInt64(frame.count)
                self.written += UInt64(frame.count)
            }
        }
        var manifestBytes = manifest.encoded()
        defer { _ = manifestBytes.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        _ = try writeStream(
            slot: 0,
            streamID: FormatV1.manifestStreamID,
            compression: options.compression,
            bytes: manifestBytes
        )
    }

    package var archiveHeader: ArchiveHeader { header }
    package var nextEntryIndex: Int { results.count }

    /// Writes the next entry's data from memory.
    package func writeEntry(bytes: [UInt8]) throws {
        var offset = 0
        try writeEntry { out in offset += out.appendPrefix(of: bytes.span.extracting(offset...)) }
    }

    /// Writes the data of the next entry (manifest order). `read` appends the next bytes to the frame being filled
    /// (at least one while any is left) and appends nothing at the end of the data. Directories and symlinks must
    /// yield no bytes.
    package func writeEntry(read: (inout OutputSpan<UInt8>) throws -> Void) throws {
        let index = results.count
        guard index < manifest.entries.count else {
            throw SealbakError(.internalError, "more entries written than the manifest lists")
        }
        let entry = manifest.entries[index]
        if let chain = options.chain, let log = chainChunks, entry.kind == .file || entry.kind == .stream {
            let idsStart = log.ids.count
            let (r, producer) = try withoutActuallyEscaping(read) { read in
                // The producer lives only for this call.
                let producer = RecordProducer(
                    source: read,
                    context: chain,
                    archiveID: header.archiveID,
                    entry: UInt32(index),
                    threads: options.threads,
                    scratch: chunkScratch,
                    log: log,
                    keepIDs: entry.kind == .file
                )
                let r = try writeStream(
                    slot: index + 1,
                    streamID: UInt32(index),
                    compression: entryCompression[index],
                    read: { try producer.read(into: &$0) }
                )
                return (r, (producer.contentSize, producer.contentSHA256, producer.referencedBytes))
            }
            results.append(r)
            contentResults.append((producer.0, producer.1))
            if entry.kind == .file { entryChunkIDs[index] = idsStart..<log.ids.count }
            referencedBytes += producer.2
            return
        }
        let r = try writeStream(
            slot: index + 1,
            streamID: UInt32(index),
            compression: entryCompression[index],
            read: read
        )
        contentResults.append(r)
        if (entry.kind == .directory || entry.kind == .symlink) && r.size != 0 {
            throw SealbakError(.internalError, "\(entry.kind.name) \(displayName(entry.name)) cannot carry data")
        }
        results.append(r)
    }

    /// A chained archive's next entry, when it is a file that the chain state's file table holds in exactly `state`
    /// (size, modification and change times, inode, device): writes its records as references to where the base
    /// chain stores its chunks, without reading the file, and returns true. Returns false, having written nothing,
    /// for anything else; the caller then reads the file with `writeEntry`.
    /// Unchanged files of at most this many chunks have their references stored, not compressed.
    static let storedReferenceChunks = 16

    package func writeUnchangedEntry(_ state: FileState) throws -> Bool {
        let index = results.count
        guard let chain = options.chain, let log = chainChunks, let table = chain.baseIndex,
            index < manifest.entries.count
        else {
            return false
        }
        let entry = manifest.entries[index]
        guard entry.kind == .file, let record = try chain.files.record(named: entry.name),
            record.state == state
        else { return false }
        // First the record is checked against the table (its chunks add up to the file's size), then its references
        // are written as the stream takes them, 4,096 at a time: memory does not grow with the file. The table
        // records of a file of one piece, the usual case, are read once and kept for the writing.
        let piece = 4096
        func records(_ k: Int) throws -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(min(piece, record.chunks.count - k) * ChunkTable.recordByteCount)
            for c in record.chunks[k..<min(k + piece, record.chunks.count)] {
                bytes += try table.table.records(Int(c)..<Int(c) + 1)
            }
            return bytes
        }
        guard record.chunks.allSatisfy({ Int($0) < table.chunkCount }) else { return false }
        var total: UInt64 = 0
        var kept: [UInt8]?
        for k in stride(from: 0, to: record.chunks.count, by: piece) {
            let bytes = try records(k)
            for at in stride(from: 0, to: bytes.count, by: ChunkTable.recordByteCount) {
                total += UInt64(ChunkTable.location(in: bytes, at: at).length)
            }
            if record.chunks.count <= piece { kept = bytes }
        }
        guard total == state.size else { return false }
        let idsStart = log.ids.count
        var next = 0
        // The references of a small file are stored: a chunk id is 32 random bytes, so zstd saves nothing there, and
        // setting up a compression per unchanged file cost more than the rest of referring to it. A file of many
        // chunks is compressed (its references repeat the base's archive id).
        let compression = record.chunks.count <= Self.storedReferenceChunks ? .stored : entryCompression[index]
        let r = try writeStream(slot: index + 1, streamID: UInt32(index), compression: compression) {
            guard next < record.chunks.count else { return nil }
            let bytes = try kept ?? records(next)
            next += piece
            var references: [UInt8] = []
            references.reserveCapacity(bytes.count / ChunkTable.recordByteCount * ChunkRecords.referenceByteCount)
            for at in stride(from: 0, to: bytes.count, by: ChunkTable.recordByteCount) {
                let id = Array(bytes[at..<at + ChunkIndex.chunkIDByteCount])
                let location = ChunkTable.location(in: bytes, at: at)
                ChunkRecords.appendReference(ChunkReference(location, chunkID: id), to: &references)
                try log.add(id: id, location: location, keepID: true)
            }
            return references
        }
        results.append(r)
        contentResults.append((state.size, record.sha256))
        referencedBytes += state.size
        entryChunkIDs[index] = idsStart..<log.ids.count
        fileStates[index] = state
        unchangedFiles += 1
        return true
    }

    /// Records the state the file just written (the last `writeEntry`) had while it was read, unchanged from open
    /// to end, so that the next archive of the chain may refer to it without reading it if it is still in that
    /// state. Ignored for anything but a chained archive's file, and for files changed less than a second before
    /// this writer started.
    package func noteFileState(_ state: FileState) {
        let index = results.count - 1
        guard options.chain != nil, index >= 0, manifest.entries[index].kind == .file, entryChunkIDs[index] != nil,
            contentResults[index].size == state.size
        else { return }
        let changed = state.ctimeSeconds * 1_000_000_000 + state.ctimeNanoseconds
        guard changed < startedNanoseconds - 1_000_000_000 else { return }
        fileStates[index] = state
    }

    /// Writes the trailer and the footer. The caller then commits its output.
    @discardableResult
    package func finish() throws -> WriteSummary {
        guard results.count == manifest.entries.count else {
            throw SealbakError(
                .internalError,
                "only \(results.count) of \(manifest.entries.count) entries were written"
            )
        }
        var indexLength: UInt64 = 0
        var chainIndex: ChunkIndex?
        if let log = chainChunks {
            let builder = ChunkTableBuilder(memoryRecords: options.chunkTableMemoryRecords, purpose: "the chunk index")
            try log.sorter.finish(into: builder)
            let index = ChunkIndex(
                entries: contentResults.map { LogicalEntry(size: $0.size, sha256: $0.sha256) },
                table: try builder.finish()
            )
            chainIndex = index
            let indexBytes = UInt64(index.head().count) + UInt64(index.chunkCount) * UInt64(ChunkIndex.chunkByteCount)
            if indexBytes > FormatV1.maxIndexPlaintext {
                throw SealbakError(
                    .usage,
                    "this chained archive would list \(index.chunkCount) chunks, more than its index stream may hold "
                        + "(\(FormatV1.maxIndexPlaintext) bytes, Spec §14.3; about 256 GiB of distinct data). Pack "
                        + "this data without --chained and --base, or split it into several archives"
                )
            }
            try log.ids.flush()
            chainFiles = try fileRecords(index: index, ids: log.ids)
            entryChunkIDs = [:]
            fileStates = [:]
            // The index stream: its head, then the table's records a piece at a time.
            var head: [UInt8]? = index.head()
            var nextRecord = 0
            _ = try writeStream(
                slot: manifest.entries.count + 1,
                streamID: FormatV1.indexStreamID,
                compression: options.compression
            ) {
                if let piece = head {
                    head = nil
                    return piece
                }
                guard nextRecord < index.chunkCount else { return nil }
                let n = min(16_384, index.chunkCount - nextRecord)
                defer { nextRecord += n }
                return try index.table.records(nextRecord..<nextRecord + n)
            }
        }
        try pipeline.finish()
        finished = true
        if options.chain != nil { indexLength = streamLengths[manifest.entries.count + 1] }
        // Offsets are body offsets (Spec §8.1): the manifest starts at 0, right after the header.
        var cursor = streamLengths[0]
        var entries: [TrailerEntry] = []
        for (i, r) in results.enumerated() {
            entries.append(TrailerEntry(size: r.size, offset: cursor, length: streamLengths[i + 1], sha256: r.sha256))
            cursor += streamLengths[i + 1]
        }
        cursor += indexLength
        precondition(cursor + UInt64(header.byteCount) == written)
        let trailer = Trailer(
            archiveID: header.archiveID,
            manifestLength: streamLengths[0],
            entries: entries,
            trailerOffset: cursor
        )
        let key = master.streamKey(FormatV1.trailerStreamID)
        let trailerHash = SHA256Hasher()
        var previous: [UInt8]?
        let trailerLength = try codec.sealTrailer(
            trailer,
            key: key,
            compression: options.compression,
            compressor: compressor
        ) { bytes in
            // Every write but the last (the footer) is a frame of the trailer stream (Spec §14.1).
            if let previous { trailerHash.update(previous) }
            previous = bytes
            try sink(bytes.span.bytes)
        }
        let content = contentResults.reduce(0) { $0 + $1.size }
        return WriteSummary(
            archiveBytes: UInt64(header.byteCount) + cursor + trailerLength + UInt64(FormatV1.footerByteCount),
            plaintextBytes: content,
            entries: results.count,
            archiveID: header.archiveID,
            trailerSHA256: trailerHash.finalize(),
            referencedBytes: referencedBytes,
            literalBytes: content - referencedBytes,
            chainIndex: chainIndex,
            chainFiles: chainFiles,
            unchangedFiles: unchangedFiles
        )
    }

    /// The chain state's file table (Spec §14.8): each recorded file with its chunks' positions in `index`, read
    /// back from the ids kept while it was written. A file whose chunks the index does not all hold is left out.
    private func fileRecords(index: ChunkIndex, ids: SpillBuffer) throws -> ChainFileTable {
        let files = ChainFileTable.Builder(memoryRecords: options.chunkTableMemoryRecords)
        let size = UInt64(ChunkIndex.chunkIDByteCount)
        for (i, state) in fileStates.sorted(by: { $0.key < $1.key }) {
            guard let range = entryChunkIDs[i] else { continue }
            let count = Int((range.upperBound - range.lowerBound) / size)
            var positions: [UInt32] = []
            positions.reserveCapacity(count)
            var at = range.lowerBound
            lookup: while at < range.upperBound {
                let n = min(UInt64(1 << 20), range.upperBound - at)
                let piece = try ids.read(at: at, count: Int(n))
                for k in stride(from: 0, to: piece.count, by: Int(size)) {
                    guard let p = try index.index(of: Array(piece[k..<k + Int(size)])) else { break lookup }
                    positions.append(UInt32(p))
                }
                at += n
            }
            guard positions.count == count else { continue }
            try files.append(
                ChainFileRecord(
                    name: manifest.entries[i].name,
                    state: state,
                    sha256: contentResults[i].sha256,
                    chunks: positions
                )
            )
        }
        return try files.finish()
    }

    /// Waits for in-flight frames after an error so no worker outlives the writer.
    package func abandon() {
        if !finished { pipeline.drain() }
    }

    /// Writes a stream whose content is in memory.
    private func writeStream(
        slot: Int,
        streamID: UInt32,
        compression: CompressionAlgorithm,
        bytes: [UInt8]
    ) throws -> (size: UInt64, sha256: [UInt8]) {
        var offset = 0
        return try writeStream(slot: slot, streamID: streamID, compression: compression) { out in
            offset += out.appendPrefix(of: bytes.span.extracting(offset...))
        }
    }

    /// Writes a stream whose content `next` gives a piece at a time (nil at the end).
    private func writeStream(
        slot: Int,
        streamID: UInt32,
        compression: CompressionAlgorithm,
        pieces next: () throws -> [UInt8]?
    ) throws -> (size: UInt64, sha256: [UInt8]) {
        var piece: [UInt8] = []
        var used = 0
        return try writeStream(slot: slot, streamID: streamID, compression: compression) { out in
            while used == piece.count {
                guard let p = try next() else { return }
                piece = p
                used = 0
            }
            used += out.appendPrefix(of: piece.span.extracting(used...))
        }
    }

    private func writeStream(
        slot: Int,
        streamID: UInt32,
        compression: CompressionAlgorithm,
        read: (inout OutputSpan<UInt8>) throws -> Void
    ) throws -> (size: UInt64, sha256: [UInt8]) {
        let frameSize = codec.frameSize
        let key = master.streamKey(streamID)
        let hasher = SHA256Hasher()
        var size: UInt64 = 0
        // Read straight into a fresh, uninitialised frame buffer that the worker then takes over: a full frame is
        // never copied. A short read (a small file, a stream's end) is copied to its exact size, so a small file
        // in flight holds its size, not a frame's.
        func readFrame() throws -> [UInt8] {
            let frame = try [UInt8](capacity: frameSize) { out in
                while !out.isFull {
                    let before = out.count
                    try read(&out)
                    if out.count == before { break }
                }
            }
            return frame.count == frameSize ? frame : Array(frame[...])
        }
        var current = try readFrame()
        var index: UInt64 = 0
        while true {
            hasher.update(current)
            size += UInt64(current.count)
            var next: [UInt8] = []
            if current.count == frameSize {
                next = try readFrame()
            }
            let isLast = next.isEmpty
            if index >= FormatV1.maxFramesPerStream {
                throw SealbakError(
                    .usage,
                    "entry is too large for frame size \(frameSize) (more than 2^32 frames); use a larger --frame-size"
                )
            }
            let data = current
            let frameIndex = index
            let codec = self.codec
            try pipeline.submit { scratch in
                let frame = codec.seal(
                    key: key,
                    streamID: streamID,
                    frameIndex: frameIndex,
                    isLast: isLast,
                    raw: data.span.bytes,
                    compression: compression,
                    compressor: scratch.compressor
                )
                return (slot, frame)
            }
            if isLast { break }
            current = next
            index += 1
        }
        return (size, hasher.finalize())
    }
}
