import Foundation
import SealbakCompression
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakSync

/// Options for reading.
package struct ReadOptions: Sendable {
    package var limits = KDFLimits.default
    package var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Chained archives: chunk records of the index held in memory before the table moves to a scratch file in
    /// TMPDIR (`ChunkTables`); tests lower it to exercise the scratch files.
    package var chunkTableMemoryRecords = ChunkTables.memoryRecords
    package init() {}

    var maxInFlight: Int { max(2, 4 * max(1, threads)) }
}

/// Reads an archive either front to back (pipes, `verify`, full `unpack`) or through the footer's index
/// (`list`, `unpack --only` on a file). Every byte released to a sink has been authenticated.
package final class ArchiveReader {
    package let input: InputFile
    package let header: ArchiveHeader
    package private(set) var manifest = Manifest()
    package let unlockedSlot: KeySlot
    private let master: MasterKey
    /// The unlocked master key (for key rotation, which re-encrypts under a new one).
    package var masterKey: MasterKey { master }
    private var codec: FrameCodec
    package let options: ReadOptions
    /// The decompressor of the reader's own thread (sequential reads); pipeline workers have their own.
    private let decompressor = FrameDecompressor()
    private let name: String
    /// Known once `loadIndex()` ran or a sequential pass reached the trailer.
    package private(set) var trailer: Trailer?
    private var manifestLength: UInt64 = 0
    /// A chained archive's index stream (Spec §14.3), known once a sequential pass read it or `loadChunkIndex()` ran.
    package private(set) var chunkIndex: ChunkIndex?
    /// Whether the archive declares feature bit 1 (Spec §14).
    package var isChained: Bool { header.features.contains(.chained) }
    /// The opened chain of a chained archive (`attachChain`).
    package private(set) var chain: ChainResolver?

    /// Opens this archive's chain (every base down to the root, checked, Spec §14.5), so that `readAll` and
    /// `readEntry` can resolve references. A chain root needs no other archive.
    ///
    /// - Parameter open: opens a base found in `catalog` (typically with the same secret as this archive).
    @discardableResult
    package func attachChain(
        catalog: ChainCatalog?,
        open: (String, InputFile) throws -> ArchiveReader
    ) throws -> ChainResolver {
        if let chain { return chain }
        let r = try ChainResolver(head: self, catalog: catalog, open: open)
        chain = r
        return r
    }
    /// Absolute offset of the body (first byte after the header); trailer and footer offsets count from here.
    private var bodyStart: UInt64 { UInt64(header.byteCount) }

    /// Reads and authenticates the header with `passphrase`, then reads and decodes the manifest.
    package convenience init(input: InputFile, passphrase: Passphrase, options: ReadOptions = ReadOptions()) throws {
        try self.init(input: input, secret: .password(passphrase), options: options)
    }

    /// Reads and authenticates the header with a password or an identity, then reads and decodes the manifest.
    package init(input: InputFile, secret: ArchiveSecret, options: ReadOptions = ReadOptions()) throws {
        self.input = input
        self.options = options
        name = input.path
        header = try ArchiveReader.readHeader(input)
        (master, unlockedSlot) = try secret.unlock(header: header, limits: options.limits, archive: name)
        codec = try FrameCodec(header: header)
        let start = input.position
        var bytes: [UInt8] = []
        let manifestName = name
        try readStreamSequential(streamID: FormatV1.manifestStreamID, context: "the manifest") { raw, _ in
            if UInt64(bytes.count + raw.count) > FormatV1.maxManifestByteCount {
                throw SealbakError.format(
                    FormatError(.payload, "manifest exceeds \(FormatV1.maxManifestByteCount) bytes"),
                    archive: manifestName
                )
            }
            bytes.append(contentsOf: raw)
        }
        manifestLength = input.position - start
        do throws(FormatError) { manifest = try Manifest.parse(bytes) } catch {
            throw SealbakError.format(error.inPlaintext("manifest"), archive: name, context: "the manifest")
        }
        _ = bytes.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        if header.features.contains(.dictionary) {
            codec = codec.with(dictionary: try ArchiveDictionary.load(from: manifest, archive: name))
        }
    }

    /// The archive's zstd dictionary (Spec §7.4), when it declares the dictionary feature.
    package var dictionary: ZstdDictionary? { codec.dictionary }

    /// Reads and parses only the cleartext header (no password; `sealbak inspect`).
    package static func readHeader(_ input: InputFile) throws -> ArchiveHeader {
        let name = input.path
        let prefix = try input.read(upTo: 12)
        let declared: Int?
        do throws(FormatError) { declared = try ArchiveHeader.declaredLength(prefix: prefix) } catch {
            throw SealbakError.format(error, archive: name)
        }
        guard let length = declared else {
            if prefix.isEmpty {
                throw SealbakError.format(FormatError(.truncated, "the file is empty", offset: 0), archive: name)
            }
            throw SealbakError.format(
                FormatError(.truncated, "archive ends inside the header", offset: UInt64(prefix.count)),
                archive: name
            )
        }
        let rest = try input.read(upTo: length - 12)
        do throws(FormatError) { return try ArchiveHeader.parse(prefix + rest) } catch {
            throw SealbakError.format(error, archive: name)
        }
    }

    // MARK: Sequential reading

    /// Reads every remaining stream in order, hands wanted entries to `sink`, then checks the trailer and
    /// footer against what was read and that nothing follows. Returns the verified trailer.
    @discardableResult
    package func readAll(into sink: any EntrySink) throws -> Trailer {
        // Content that nobody wants needs no chain (a listing read from a pipe).
        guard isChained, chain != nil || manifest.entries.indices.contains(where: sink.wants) else {
            return try readAllStreams(into: sink)
        }
        let chained = ChainedEntrySink(sink, resolver: try resolver())
        do {
            let trailer = try readAllStreams(into: chained)
            try chained.checkAll()
            return trailer
        } catch {
            // Waits for the writing thread (the caller cleans `sink` up next); a failure there came from content
            // delivered before whatever this thread failed on, so it is the one reported (Spec §9.2).
            throw chained.earliestError(orElse: error)
        }
    }

    /// Verifies this archive as a file (Spec §9.2): every frame of every stream, the index stream, trailer and footer,
    /// without resolving references (`verify --chain` does this for each base).
    package func verifyStored() throws {
        _ = try readAllStreams(into: DiscardSink())
    }

    /// The chain this archive's references are read from (Spec §14.5); set by `attachChain`.
    private func resolver() throws -> ChainResolver {
        guard let chain else {
            throw SealbakError(
                .chain,
                "\(name) is an incremental archive: reading it needs its chain (the archives it builds on); name the "
                    + "folder or s3:// prefix that holds them with --chain-from"
            )
        }
        return chain
    }

    private func readAllStreams(into sink: any EntrySink) throws -> Trailer {
        struct Observed {
            var offset: UInt64
            var length: UInt64
            var size: UInt64?
            var sha256: [UInt8]?
        }
        var observed: [Observed] = []
        let state = DeliveryState()
        let pipeline = OrderedPipeline<(Int, [UInt8], Bool)>(workers: options.threads, maxInFlight: options.maxInFlight)
        { [unowned self] (index, raw, isLast) in
            if state.hasher == nil {
                try sink.begin(index)
                state.hasher = SHA256Hasher()
                state.size = 0
            }
            state.hasher!.update(raw)
            state.size += UInt64(raw.count)
            if !raw.isEmpty {
                try self.checkCarriesNoData(index)
                try sink.write(index, raw)
            }
            if isLast {
                let sha = state.hasher!.finalize()
                state.hasher = nil
                state.results[index] = (state.size, sha)
                try self.checkAgainstTrailer(index, size: state.size, sha256: sha)
                try sink.end(index, size: state.size, sha256: sha)
            }
        }
        do {
            for index in manifest.entries.indices {
                let start = input.position - bodyStart
                if sink.wants(index) {
                    let key = master.streamKey(UInt32(index))
                    let codec = self.codec
                    try walker.walk(.sequential, context: entryContext(index)) { frame in
                        let context = self.entryContext(index)
                        let name = self.name
                        try pipeline.submit { scratch in
                            let raw = try codec.open(
                                frame,
                                key: key,
                                streamID: UInt32(index),
                                decompressor: scratch.decompressor,
                                archive: name,
                                context: context
                            )
                            return (index, raw, frame.isLast)
                        }
                    }
                } else {
                    try walker.walk(.sequential, context: entryContext(index), readCiphertext: false) { _ in }
                }
                observed.append(Observed(offset: start, length: input.position - bodyStart - start))
            }
            try pipeline.finish()
        } catch {
            // A frame submitted earlier may have failed while the read-ahead hit a later problem (e.g. truncation):
            // report the earliest failure (Spec §9.2).
            throw pipeline.earliestError(orElse: error)
        }
        for (i, r) in state.results {
            observed[i].size = r.0
            observed[i].sha256 = r.1
        }

        if isChained {
            var loader = ChunkIndexReader(
                expectedEntryCount: manifest.entries.count,
                memoryRecords: options.chunkTableMemoryRecords
            )
            try readStreamSequential(streamID: FormatV1.indexStreamID, context: "the index stream") { raw, _ in
                try indexStep { try loader.feed(raw) }
            }
            chunkIndex = try indexStep { try loader.finish() }
        }
        let trailerOffset = input.position - bodyStart
        let trailer = try readTrailerSequential()
        let trailerLength = input.position - bodyStart - trailerOffset
        let footerBytes = try input.read(upTo: FormatV1.footerByteCount)
        let footer: Footer
        do throws(FormatError) { footer = try Footer.parse(footerBytes) } catch {
            throw SealbakError.format(
                FormatError(error.errorClass, error.message, offset: input.position - UInt64(footerBytes.count)),
                archive: name,
                context: "the footer"
            )
        }
        try checkLayout(trailer, trailerOffset: trailerOffset)
        if footer.trailerOffset != trailerOffset || footer.trailerLength != trailerLength {
            throw SealbakError.format(
                FormatError(
                    .trailer,
                    "footer points to body offset \(footer.trailerOffset)+\(footer.trailerLength), the trailer is at "
                        + "\(trailerOffset)+\(trailerLength)",
                    offset: bodyStart + trailerOffset + trailerLength
                ),
                archive: name
            )
        }
        if try !input.atEnd() {
            throw SealbakError.format(
                FormatError(.trailer, "unexpected bytes after the footer", offset: input.position),
                archive: name
            )
        }
        for (i, o) in observed.enumerated() {
            let t = trailer.entries[i]
            if t.offset != o.offset || t.length != o.length {
                throw SealbakError.format(
                    FormatError(
                        .trailer,
                        "trailer places entry \(i) at \(t.offset)+\(t.length), it was read at \(o.offset)+\(o.length)"
                    ),
                    archive: name
                )
            }
            if let size = o.size, let sha = o.sha256, size != t.size || !Sodium.constantTimeEqual(sha, t.sha256) {
                throw SealbakError.format(
                    FormatError(
                        .trailer,
                        "size or SHA-256 of \(displayName(manifest.entries[i].name)) differs from the trailer's record"
                    ),
                    archive: name
                )
            }
        }
        self.trailer = trailer
        return trailer
    }

    private final class DeliveryState {
        var firstFrameVerified = false
        var hasher: SHA256Hasher?
        var size: UInt64 = 0
        var results: [Int: (UInt64, [UInt8])] = [:]
    }

    private func checkAgainstTrailer(_ index: Int, size: UInt64, sha256: [UInt8]) throws {
        guard let t = trailer?.entries[index] else { return }
        if t.size != size || !Sodium.constantTimeEqual(t.sha256, sha256) {
            throw SealbakError.format(
                FormatError(
                    .trailer,
                    "size or SHA-256 of \(displayName(manifest.entries[index].name)) differs from the trailer's record"
                ),
                archive: name
            )
        }
    }

    private func entryContext(_ index: Int) -> String {
        "entry \(index) (\(displayName(manifest.entries[index].name)))"
    }

    /// A directory or symlink stream with data disagrees with what the trailer must record for it (size 0, Spec
    /// §8.2 item 9): class `trailer` whether it is found in the stream (here) or in the trailer (Spec §7.2).
    private func checkCarriesNoData(_ index: Int) throws {
        let kind = manifest.entries[index].kind
        if kind == .directory || kind == .symlink {
            throw SealbakError.format(
                FormatError(.trailer, "\(kind.name) carries data; the trailer must record none"),
                archive: name,
                context: entryContext(index)
            )
        }
    }

    /// The frames of this archive's streams (Spec §6.1).
    private var walker: FrameWalker { FrameWalker(input: input, frameSize: codec.frameSize, archive: name) }

    /// Decrypts a small stream (manifest, trailer) on the calling thread.
    private func readStreamSequential(
        streamID: UInt32,
        context: String,
        _ deliver: ([UInt8], Bool) throws -> Void
    ) throws {
        let key = master.streamKey(streamID)
        let d = decompressor
        let isTrailer = streamID == FormatV1.trailerStreamID
        try walker.walk(.sequential, context: context, isTrailer: isTrailer) { frame in
            let raw = try codec.open(
                frame,
                key: key,
                streamID: streamID,
                decompressor: d,
                archive: name,
                context: context
            )
            try deliver(raw, frame.isLast)
        }
    }

    private func readTrailerSequential() throws -> Trailer {
        try parseTrailer(
            readSmallStream(
                streamID: FormatV1.trailerStreamID,
                context: "the trailer",
                cap: FormatV1.maxTrailerByteCount,
                errorClass: .trailer
            )
        )
    }

    /// Reads a whole stream from the sequential position, failing as soon as its plaintext exceeds `cap`.
    private func readSmallStream(
        streamID: UInt32,
        context: String,
        cap: UInt64,
        errorClass: FormatError.Class
    ) throws -> [UInt8] {
        var bytes: [UInt8] = []
        let name = self.name
        try readStreamSequential(streamID: streamID, context: context) { raw, _ in
            if UInt64(bytes.count + raw.count) > cap {
                throw SealbakError.format(FormatError(errorClass, "\(context) exceeds its size limit"), archive: name)
            }
            bytes.append(contentsOf: raw)
        }
        return bytes
    }

    /// Runs a step of reading the index stream; a format error names the archive and the place in the plaintext.
    private func indexStep<T>(_ step: () throws -> T) throws -> T {
        do { return try step() } catch let error as FormatError {
            throw SealbakError.format(error.inPlaintext("index stream"), archive: name, context: "the index stream")
        }
    }

    private func parseTrailer(_ bytes: [UInt8]) throws -> Trailer {
        do throws(FormatError) { return try Trailer.parse(bytes, frameSize: codec.frameSize, chained: isChained) } catch
        {
            throw SealbakError.format(error.inPlaintext("trailer"), archive: name, context: "the trailer")
        }
    }

    /// Checks the parsed trailer against the header and manifest (Spec §8.2).
    private func checkLayout(_ t: Trailer, trailerOffset: UInt64) throws {
        func fail(_ m: String) -> SealbakError {
            SealbakError.format(FormatError(.trailer, m), archive: name, context: "the trailer")
        }
        if t.archiveID != header.archiveID { throw fail("trailer belongs to another archive") }
        if t.manifestLength != manifestLength {
            throw fail("trailer gives the manifest \(t.manifestLength) bytes, it has \(manifestLength)")
        }
        if t.entries.count != manifest.entries.count {
            throw fail("trailer lists \(t.entries.count) entries, the manifest \(manifest.entries.count)")
        }
        if t.trailerOffset != trailerOffset {
            throw fail("end-of-archive record names trailer offset \(t.trailerOffset), it is at \(trailerOffset)")
        }
        for (i, e) in manifest.entries.enumerated()
        where (e.kind == .directory || e.kind == .symlink) && t.entries[i].size != 0 {
            throw fail("\(e.kind.name) \(displayName(e.name)) has \(t.entries[i].size) data bytes; it must have none")
        }
    }

    // MARK: Random access

    /// Reads the footer and the trailer of a seekable archive (Spec §8.3) without touching entry data.
    @discardableResult
    package func loadIndex() throws -> Trailer {
        if let trailer { return trailer }
        guard input.isSeekable, let size = input.size else {
            throw SealbakError(.usage, "\(name) is not seekable; random access needs a regular file")
        }
        let minimum = UInt64(header.byteCount) + manifestLength + UInt64(FormatV1.footerByteCount)
        if size < minimum {
            throw SealbakError.format(
                FormatError(.truncated, "the file is \(size) bytes, too short to hold a footer", offset: size),
                archive: name
            )
        }
        let footerBytes = try input.read(at: size - UInt64(FormatV1.footerByteCount), count: FormatV1.footerByteCount)
        let footer: Footer
        do throws(FormatError) { footer = try Footer.parse(footerBytes) } catch {
            throw SealbakError.format(
                FormatError(error.errorClass, error.message, offset: size - UInt64(FormatV1.footerByteCount)),
                archive: name,
                context: "the footer"
            )
        }
        let (end, overflow) = footer.trailerOffset.addingReportingOverflow(footer.trailerLength)
        if overflow || end > UInt64.max - bodyStart || bodyStart + end != size - UInt64(FormatV1.footerByteCount)
            || footer.trailerOffset < manifestLength
        {
            throw SealbakError.format(
                FormatError(
                    .trailer,
                    "footer points to body offset \(footer.trailerOffset)+\(footer.trailerLength), which does not "
                        + "end at the footer",
                    offset: size - 24
                ),
                archive: name
            )
        }
        let maxFrames = FormatV1.frameCount(size: FormatV1.maxTrailerByteCount, frameSize: codec.frameSize)
        if footer.trailerLength > maxFrames * UInt64(4 + FrameHeader.maxCiphertextLength(frameSize: codec.frameSize)) {
            throw SealbakError.format(
                FormatError(.trailer, "trailer length \(footer.trailerLength) exceeds its limit"),
                archive: name
            )
        }
        var bytes: [UInt8] = []
        let key = master.streamKey(FormatV1.trailerStreamID)
        input.willRead(bodyStart + footer.trailerOffset..<bodyStart + end)
        let d = decompressor
        let extent = FrameWalker.Extent.range(
            offset: bodyStart + footer.trailerOffset,
            length: footer.trailerLength
        )
        try walker.walk(extent, context: "the trailer", isTrailer: true) { frame in
            bytes += try codec.open(
                frame,
                key: key,
                streamID: FormatV1.trailerStreamID,
                decompressor: d,
                archive: name,
                context: "the trailer"
            )
        }
        let t = try parseTrailer(bytes)
        try checkLayout(t, trailerOffset: footer.trailerOffset)
        trailer = t
        return t
    }

    /// Spec §8.3 step 8 (misplaced entries): walks the cleartext frame headers of streams 0 ..< `index` from body
    /// offset manifest_length, without decrypting, and throws `trailer` as soon as one of them does not end where
    /// the trailer's extent for it ends, or `payload` for a frame header outside §6.1 (or a stream of 2^32 frames)
    /// met on the way. Returns when stream `index` starts at offset_index.
    private func checkPlacement(of index: Int, in t: Trailer) throws {
        var at = t.manifestLength
        for j in 0..<index {
            let end = t.entries[j].offset + t.entries[j].length
            func misplaced() -> SealbakError {
                SealbakError.format(
                    FormatError(
                        .trailer,
                        "the trailer places entry \(j) at \(t.entries[j].offset)+\(t.entries[j].length), its frames "
                            + "do not end there, so entry \(index) is not where the trailer says"
                    ),
                    archive: name,
                    context: entryContext(j)
                )
            }
            if end < at { throw misplaced() }
            // Only the frame headers; a stream that does not end exactly at `end` is misplaced, however it misses.
            try walker.walk(
                .range(offset: bodyStart + at, length: end - at),
                context: entryContext(j),
                readCiphertext: false,
                outOfRange: misplaced
            ) { _ in }
            at = end
        }
    }

    /// Extracts one entry through the index (seekable input), verifying size and SHA-256 against the trailer (in a
    /// chained archive, also the content's against the index stream).
    package func readEntry(_ index: Int, into sink: any EntrySink) throws {
        guard isChained else { return try readEntryStream(index, into: sink) }
        let resolver = try resolver()
        try loadChunkIndex()
        let chained = ChainedEntrySink(sink, resolver: resolver)
        do {
            try readEntryStream(index, into: chained)
            try chained.finish()
        } catch {
            throw chained.earliestError(orElse: error)  // as in `readAll`
        }
    }

    private func readEntryStream(_ index: Int, into sink: any EntrySink) throws {
        let t = try loadIndex()
        let e = t.entries[index]
        let context = entryContext(index)
        let key = master.streamKey(UInt32(index))
        let state = DeliveryState()
        state.hasher = SHA256Hasher()
        try sink.begin(index)
        let codec = self.codec
        let name = self.name
        let pipeline = OrderedPipeline<([UInt8], Bool)>(workers: options.threads, maxInFlight: options.maxInFlight) {
            [unowned self] (raw, isLast) in
            state.firstFrameVerified = true
            state.hasher!.update(raw)
            state.size += UInt64(raw.count)
            if !raw.isEmpty {
                try self.checkCarriesNoData(index)
                try sink.write(index, raw)
            }
        }
        input.willRead(bodyStart + e.offset..<bodyStart + e.offset + e.length)
        do {
            try walker.walk(.range(offset: bodyStart + e.offset, length: e.length), context: context) { frame in
                try pipeline.submit { scratch in
                    let raw = try codec.open(
                        frame,
                        key: key,
                        streamID: UInt32(index),
                        decompressor: scratch.decompressor,
                        archive: name,
                        context: context
                    )
                    return (raw, frame.isLast)
                }
            }
            try pipeline.finish()
        } catch {
            let failure = pipeline.earliestError(orElse: error)
            // Frame 0 failed (Spec §8.3 step 8): a damaged frame, or a trailer that does not place the entry where its
            // stream starts. Only the frame headers before it can tell; the class must be what a sequential reader
            // reports (Spec §9.2 step 10: `trailer`).
            if !state.firstFrameVerified, (failure as? SealbakError)?.formatClass == .payload {
                try checkPlacement(of: index, in: t)
            }
            throw failure
        }
        let sha = state.hasher!.finalize()
        try checkAgainstTrailer(index, size: state.size, sha256: sha)
        try sink.end(index, size: state.size, sha256: sha)
    }
}

// MARK: Chained archives (Spec §14)

extension ArchiveReader {
    /// Reads the index stream of a chained archive through the trailer (seekable input): it occupies the body offsets
    /// from the end of the last entry stream to the trailer (Spec §14.3).
    ///
    /// - Parameter memoryRecords: records of its table kept in memory (default: the reader's options).
    @discardableResult
    package func loadChunkIndex(memoryRecords: Int? = nil) throws -> ChunkIndex {
        if let chunkIndex { return chunkIndex }
        guard isChained else {
            throw SealbakError(.internalError, "\(name) is not a chained archive; it has no index stream")
        }
        let t = try loadIndex()
        let start = t.streamsEnd
        let extent = FrameWalker.Extent.range(offset: bodyStart + start, length: t.trailerOffset - start)
        input.willRead(bodyStart + start..<bodyStart + t.trailerOffset)
        var loader = ChunkIndexReader(
            expectedEntryCount: manifest.entries.count,
            memoryRecords: memoryRecords ?? options.chunkTableMemoryRecords
        )
        let key = master.streamKey(FormatV1.indexStreamID)
        let name = self.name
        let d = decompressor
        try walker.walk(extent, context: "the index stream") { frame in
            let raw = try codec.open(
                frame,
                key: key,
                streamID: FormatV1.indexStreamID,
                decompressor: d,
                archive: name,
                context: "the index stream"
            )
            try indexStep { try loader.feed(raw) }
        }
        let index = try indexStep { try loader.finish() }
        chunkIndex = index
        return index
    }

    /// SHA-256 of the trailer stream as stored (frame headers and ciphertexts): what the base record of an archive
    /// built on this one names (Spec §14.1). Needs seekable input; the trailer is authenticated first.
    package func storedTrailerSHA256() throws -> [UInt8] {
        let t = try loadIndex()
        guard let size = input.size else {
            throw SealbakError(.usage, "\(name) is not seekable; a chain's base must be a file or an object")
        }
        let start = bodyStart + t.trailerOffset
        guard let hash = try input.sha256(start..<size - UInt64(FormatV1.footerByteCount)) else {
            throw SealbakError.format(
                FormatError(.truncated, "archive ends inside its trailer", offset: start),
                archive: name
            )
        }
        return hash
    }

    /// A reader of byte ranges of one entry stream's stored plaintext (Spec §14.2: what a reference names).
    package func streamCursor(entry: Int) throws -> StreamCursor {
        let t = try loadIndex()
        return StreamCursor(reader: self, entry: entry, extent: t.entries[entry])
    }

    /// Decrypts frame `index` of entry stream `entry`, whose header is at absolute offset `at`.
    /// Reads frames `first ..< first + count` of entry stream `entry` (the first header at absolute offset `at`, the
    /// stream ending at `end`), stopping after the frame flagged last, and decrypts them on all cores. Returns the
    /// plaintexts in order, where the frame after them starts, and whether the last one ended the stream. A failure
    /// is that of the earliest frame.
    fileprivate func openFrames(
        entry: Int,
        first: UInt64,
        count: Int,
        at: UInt64,
        end: UInt64
    ) throws -> (raw: [[UInt8]], next: UInt64, isLast: Bool) {
        let context = entryContext(entry)
        var frames: [(index: UInt64, isLast: Bool, ciphertext: [UInt8], offset: UInt64)] = []
        var position = at
        while frames.count < count {
            let fh = try frameHeader(at: position, end: end, context: context)
            let start = position + UInt64(FormatV1.frameHeaderByteCount)
            let ciphertext = try input.read(at: start, count: fh.ciphertextLength)
            if ciphertext.count < fh.ciphertextLength {
                throw SealbakError.format(
                    FormatError(.truncated, "archive ends inside frame \(first + UInt64(frames.count))", offset: start),
                    archive: name,
                    context: context
                )
            }
            frames.append((first + UInt64(frames.count), fh.isLast, ciphertext, position))
            position = start + UInt64(fh.ciphertextLength)
            if fh.isLast { break }
        }
        let key = master.streamKey(UInt32(entry))
        let codec = self.codec
        let batch = frames
        let results = Locked([Result<[UInt8], FormatError>?](repeating: nil, count: batch.count))
        // A single frame (a small file's whole content, typically) is opened on this thread with the reader's own
        // decompressor: a chained restore does this thousands of times, and a zstd context made per call cost an
        // allocation and a first touch of its window each time. Several frames are spread over the cores in lanes,
        // each lane with a decompressor of its own for its share.
        let lanes = min(batch.count, ProcessInfo.processInfo.activeProcessorCount)
        let open = { @Sendable (i: Int, d: FrameDecompressor) in
            let f = batch[i]
            let r = Result { () throws(FormatError) -> [UInt8] in
                try codec.open(
                    key: key,
                    streamID: UInt32(entry),
                    frameIndex: f.index,
                    isLast: f.isLast,
                    ciphertext: f.ciphertext,
                    decompressor: d
                )
            }
            results.withLock { $0[i] = r }
        }
        if lanes == 1 {
            for i in batch.indices { open(i, decompressor) }
        } else {
            DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                let d = FrameDecompressor()
                for i in stride(from: lane, to: batch.count, by: lanes) { open(i, d) }
            }
        }
        var raw: [[UInt8]] = []
        for (i, r) in results.withLock({ $0 }).enumerated() {
            switch r! {
            case .success(let bytes): raw.append(bytes)
            case .failure(let error):
                throw SealbakError.format(
                    FormatError(error.errorClass, error.message, offset: batch[i].offset),
                    archive: name,
                    context: context
                )
            }
        }
        return (raw, position, frames.last!.isLast)
    }

    /// Reads and checks the frame header at `at` inside an extent ending at `end`; returns it.
    fileprivate func frameHeader(at: UInt64, end: UInt64, context: String) throws -> FrameHeader {
        let n = FormatV1.frameHeaderByteCount
        if end < at || end - at < UInt64(n) {
            throw SealbakError.format(
                FormatError(.trailer, "stream ends before its last frame", offset: at),
                archive: name,
                context: context
            )
        }
        let bytes = try input.read(at: at, count: n)
        if bytes.count < n {
            throw SealbakError.format(
                FormatError(.truncated, "archive ends inside a frame header", offset: at),
                archive: name,
                context: context
            )
        }
        let fh: FrameHeader
        do throws(FormatError) { fh = try FrameHeader.parse(bytes.span.bytes, frameSize: codec.frameSize) } catch {
            throw SealbakError.format(
                FormatError(error.errorClass, error.message, offset: at),
                archive: name,
                context: context
            )
        }
        if end - at - UInt64(n) < UInt64(fh.ciphertextLength) {
            throw SealbakError.format(
                FormatError(.trailer, "frame runs past the end of its stream", offset: at),
                archive: name,
                context: context
            )
        }
        return fh
    }

    package var frameSize: Int { codec.frameSize }
    package var archiveName: String { name }
}

/// Reads ranges of one entry stream's stored plaintext through the trailer, front to back as references usually
/// ask (a restore of the newest archive reads its base mostly in order): frames before the wanted one are skipped by
/// their cleartext headers, the last decrypted frame is kept, and a range before it restarts from the stream's start.
/// Every byte returned was authenticated (Spec §8.3 step 8).
package final class StreamCursor {
    private let reader: ArchiveReader
    private let entry: Int
    private let start: UInt64
    private let end: UInt64
    /// Absolute offset and index of the next frame header to read.
    private var position: UInt64
    private var nextIndex: UInt64 = 0
    /// The frames decoded last (frame index → plaintext): at most `readAhead`.
    private var cached: [UInt64: [UInt8]] = [:]
    /// Frames decoded together when a reference needs one that is not cached.
    static let readAhead = min(8, 2 * ProcessInfo.processInfo.activeProcessorCount)

    fileprivate init(reader: ArchiveReader, entry: Int, extent: TrailerEntry) {
        self.reader = reader
        self.entry = entry
        start = UInt64(reader.header.byteCount) + extent.offset
        end = start + extent.length
        position = start
    }

    /// Appends the stored plaintext bytes `offset ..< offset + length` to `out` (the caller checked them against
    /// the trailer's size). On failure `out` may hold part of them.
    package func read(offset: UInt64, length: Int, appendingTo out: inout [UInt8]) throws {
        let frameSize = UInt64(reader.frameSize)
        var at = offset
        let stop = offset + UInt64(length)
        while at < stop {
            let k = at / frameSize
            let raw = try frame(k)
            let from = Int(at - k * frameSize)
            let to = Int(min(stop - k * frameSize, UInt64(raw.count)))
            if to <= from {
                throw SealbakError.format(
                    FormatError(.trailer, "stream ends before byte \(at)"),
                    archive: reader.archiveName
                )
            }
            out += raw[from..<to]
            at = k * frameSize + UInt64(to)
        }
    }

    private func frame(_ k: UInt64) throws -> [UInt8] {
        if let raw = cached[k] { return raw }
        if k < nextIndex {
            position = start
            nextIndex = 0
        }
        // A remote base fetches what the walk to frame k and the frames decoded with it cover, in one range, not one
        // request per frame header (references mostly move forward).
        let frameBound = UInt64(
            FormatV1.frameHeaderByteCount + FrameHeader.maxCiphertextLength(frameSize: reader.frameSize)
        )
        let (ahead, overflow) = (k - nextIndex + UInt64(Self.readAhead)).multipliedReportingOverflow(by: frameBound)
        reader.input.willRead(position..<(overflow ? end : min(end, position + ahead)))
        while nextIndex < k {
            let fh = try reader.frameHeader(at: position, end: end, context: "entry \(entry)")
            if fh.isLast {
                throw SealbakError.format(
                    FormatError(.trailer, "stream ends before frame \(k)"),
                    archive: reader.archiveName
                )
            }
            position += UInt64(FormatV1.frameHeaderByteCount + fh.ciphertextLength)
            nextIndex += 1
        }
        // Frame k and the next few, decrypted at once on all cores: references mostly ask for them next.
        let (raws, next, isLast) = try reader.openFrames(
            entry: entry,
            first: k,
            count: Self.readAhead,
            at: position,
            end: end
        )
        for (i, raw) in raws.enumerated() where i < raws.count - 1 || !isLast {
            if raw.count != reader.frameSize {
                throw SealbakError.format(
                    FormatError(.trailer, "entry \(entry) does not fit its extent"),
                    archive: reader.archiveName
                )
            }
        }
        if isLast && next != end {
            throw SealbakError.format(
                FormatError(.trailer, "entry \(entry) does not fit its extent"),
                archive: reader.archiveName
            )
        }
        position = next
        nextIndex = k + UInt64(raws.count)
        cached = [:]
        for (i, raw) in raws.enumerated() { cached[k + UInt64(i)] = raw }
        return raws[0]
    }
}

extension ArchiveReader {
    /// `t` with each entry's size and SHA-256 those of its content: unchanged for a full archive; in a chained one the
    /// index stream's (Spec §14.3), since the trailer's describe the record streams. What listings, progress totals
    /// and component checks use.
    package func contentView(_ t: Trailer) throws -> Trailer {
        guard isChained else { return t }
        let index = try chunkIndex ?? loadChunkIndex()
        var view = t
        for i in view.entries.indices {
            view.entries[i].size = index.entries[i].size
            view.entries[i].sha256 = index.entries[i].sha256
        }
        return view
    }
}

extension InputFile {
    /// SHA-256 of the bytes `range` of a seekable input, read in pieces of 1 MiB; nil when the input ends first.
    func sha256(_ range: Range<UInt64>) throws -> [UInt8]? {
        let hasher = SHA256Hasher()
        var at = range.lowerBound
        while at < range.upperBound {
            let n = Int(min(UInt64(1 << 20), range.upperBound - at))
            let bytes = try read(at: at, count: n)
            if bytes.count < n { return nil }
            hasher.update(bytes)
            at += UInt64(n)
        }
        return hasher.finalize()
    }
}

extension FrameCodec {
    /// Opens a frame the walker read; a failure names the archive, the stream and the frame's offset. A failing
    /// trailer frame is a trailer failure (Spec §9), whatever stage rejected it.
    fileprivate func open(
        _ frame: FrameWalker.Frame,
        key: SecureBytes,
        streamID: UInt32,
        decompressor: FrameDecompressor,
        archive: String,
        context: String
    ) throws -> [UInt8] {
        do throws(FormatError) {
            return try open(
                key: key,
                streamID: streamID,
                frameIndex: frame.index,
                isLast: frame.isLast,
                ciphertext: frame.ciphertext,
                decompressor: decompressor
            )
        } catch {
            throw SealbakError.format(
                FormatError(
                    streamID == FormatV1.trailerStreamID ? .trailer : error.errorClass,
                    error.message,
                    offset: frame.offset
                ),
                archive: archive,
                context: context
            )
        }
    }
}
