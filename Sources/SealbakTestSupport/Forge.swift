import Foundation
import SealbakArchive
import SealbakCompression
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys

/// Re-encrypts an archive with its own master key after editing its streams: the bytes a hostile or buggy writer
/// that knows the password could produce, which `ArchiveWriter` refuses to write (duplicate names, a directory
/// with data, a trailer that misplaces entries, zstd frames with unusual headers, extra key slots). Deterministic:
/// frame nonces follow from positions (Spec §6.3), so the same edits give the same bytes.
///
/// A chained archive (Spec §14) is opened without its chain: `contents` are its record streams (what the trailer
/// records), references are not resolved, and `index` holds the plaintext of its index stream, which `assemble` seals
/// again between the last entry stream and the trailer.
package struct ArchiveForge {
    package private(set) var header: ArchiveHeader
    package let master: MasterKey
    package let codec: FrameCodec
    /// Frame plaintexts (codec ‖ raw_len ‖ payload, Spec §6.2) of the manifest stream.
    package var manifest: [[UInt8]]
    /// Frame plaintexts of every entry stream, in manifest order.
    package var entries: [[[UInt8]]]
    /// The decoded plaintext of every entry stream: what an honest trailer records (size, SHA-256).
    package var contents: [[UInt8]]
    /// A chained archive's index stream plaintext (Spec §14.3); nil for other archives. Set it to nil in a chained
    /// archive to leave the index stream out (the trailer then follows the last entry stream).
    package var index: [UInt8]?

    package var frameSize: Int { codec.frameSize }
    package var isChained: Bool { header.features.contains(.chained) }

    /// Opens `bytes` with `password` and decrypts every frame of the manifest and the entries.
    package init(_ bytes: [UInt8], password: String) throws {
        let input = InputFile(bytes: bytes, name: "forge", seekable: true)
        let reader = try ArchiveReader(input: input, secret: .password(Passphrase(string: password)))
        header = reader.header
        master = reader.masterKey
        // The dictionary the reader loaded (Spec §7.4), for the codec-4 frames of chained archives decoded below.
        let plainCodec = try FrameCodec(header: header)
        codec = reader.dictionary.map { plainCodec.with(dictionary: $0) } ?? plainCodec
        let layout = try ArchiveLayout(bytes, entryCount: reader.manifest.entries.count)
        let codec = self.codec
        let master = self.master
        func open(_ frames: [ArchiveLayout.FrameSpan], _ id: UInt32) throws -> [[UInt8]] {
            try frames.enumerated().map { i, f in
                try codec.openEnvelope(
                    key: master.streamKey(id),
                    streamID: id,
                    frameIndex: UInt64(i),
                    isLast: f.isLast,
                    ciphertext: Array(bytes[(f.offset + 4)..<(f.offset + f.length)])
                )
            }
        }
        manifest = try open(layout.manifest, FormatV1.manifestStreamID)
        entries = try layout.entries.enumerated().map { i, frames in try open(frames, UInt32(i)) }
        guard reader.isChained, let indexFrames = layout.index else {
            let sink = MemorySink()
            _ = try reader.readAll(into: sink)
            contents = reader.manifest.entries.indices.map { sink.data[$0] ?? [] }
            index = nil
            return
        }
        // Every stream as stored, without the chain: the record streams are what is edited.
        try reader.verifyStored()
        let decompressor = FrameDecompressor()
        func decode(_ frames: [ArchiveLayout.FrameSpan], _ id: UInt32) throws -> [UInt8] {
            try frames.enumerated().flatMap { i, f in
                try codec.open(
                    key: master.streamKey(id),
                    streamID: id,
                    frameIndex: UInt64(i),
                    isLast: f.isLast,
                    ciphertext: Array(bytes[(f.offset + 4)..<(f.offset + f.length)]),
                    decompressor: decompressor
                )
            }
        }
        contents = try layout.entries.enumerated().map { i, frames in try decode(frames, UInt32(i)) }
        index = try decode(indexFrames, FormatV1.indexStreamID)
    }

    /// `plaintext` cut into frames of the frame size (Spec §6), every frame stored (codec 0).
    package func storedFrames(_ plaintext: [UInt8]) -> [[UInt8]] {
        let count = Int(FormatV1.frameCount(size: UInt64(plaintext.count), frameSize: frameSize))
        return (0..<count).map { i in
            let part = Array(plaintext[(i * frameSize)..<min(plaintext.count, (i + 1) * frameSize)])
            return FramePlaintext.prefix(codec: .stored, rawLength: part.count) + part
        }
    }

    /// Replaces the manifest with `manifest` encoded as it stands (not validated), in stored frames.
    package mutating func setManifest(_ manifest: Manifest) {
        self.manifest = storedFrames(manifest.encoded())
    }

    /// Replaces entry `index`'s stream and recorded content with `data`, in stored frames.
    package mutating func setEntry(_ index: Int, data: [UInt8]) {
        entries[index] = storedFrames(data)
        contents[index] = data
    }

    /// Replaces the key slots (a header-only change, Spec §11.3: the body stays valid) and seals the header again.
    package mutating func setSlots(_ slots: [KeySlot]) {
        header.slots = slots
        header.mac = master.mac(for: header)
    }

    /// Replaces the base record of a chained archive's header (Spec §14.1), as it stands (not validated), and seals
    /// the header again.
    package mutating func setBase(_ base: BaseRecord?) {
        header.base = base
        header.mac = master.mac(for: header)
    }

    /// Replaces the record stream of entry `index` with `records` (Spec §14.2), in stored frames.
    package mutating func setRecords(_ index: Int, _ records: [ChunkRecord]) {
        setEntry(index, data: ChunkRecords.encode(records))
    }

    /// The records of entry `index`'s stream.
    package func records(_ index: Int) throws -> [ChunkRecord] { try ChunkRecords.parse(contents[index]) }

    /// Declares other features (so another version, Spec §3.4) and seals the header again; the frames stay as they
    /// are, whether the new features allow their codecs or not.
    package mutating func setFeatures(_ features: FormatFeatures) {
        header.features = features
        header.mac = master.mac(for: header)
    }

    /// Seals header, manifest and entries, a chained archive's index stream (if `index` is set), then a trailer that
    /// records what was written (changed by `editTrailer`, then stored in frames of the frame size) and a footer
    /// that points to it.
    package func assemble(editTrailer: (inout Trailer) -> Void = { _ in }) -> [UInt8] {
        var out = header.encoded()
        let bodyStart = out.count
        func seal(_ frames: [[UInt8]], _ id: UInt32) {
            for (i, plain) in frames.enumerated() {
                out += codec.sealEnvelope(
                    key: master.streamKey(id),
                    streamID: id,
                    frameIndex: UInt64(i),
                    isLast: i == frames.count - 1,
                    plaintext: plain
                )
            }
        }
        seal(manifest, FormatV1.manifestStreamID)
        let manifestLength = UInt64(out.count - bodyStart)
        var records: [TrailerEntry] = []
        for (i, frames) in entries.enumerated() {
            let offset = UInt64(out.count - bodyStart)
            seal(frames, UInt32(i))
            records.append(
                TrailerEntry(
                    size: UInt64(contents[i].count),
                    offset: offset,
                    length: UInt64(out.count - bodyStart) - offset,
                    sha256: SHA256Hasher.hash(contents[i])
                )
            )
        }
        if isChained, let index { seal(storedFrames(index), FormatV1.indexStreamID) }
        let trailerOffset = UInt64(out.count - bodyStart)
        var trailer = Trailer(
            archiveID: header.archiveID,
            manifestLength: manifestLength,
            entries: records,
            trailerOffset: trailerOffset
        )
        editTrailer(&trailer)
        seal(storedFrames(trailer.encoded()), FormatV1.trailerStreamID)
        out += Footer(trailerOffset: trailerOffset, trailerLength: UInt64(out.count - bodyStart) - trailerOffset)
            .encoded()
        return out
    }
}

extension ArchiveForge {
    /// A zstd frame plaintext (codec 1, Spec §6.2) whose Zstandard frame header is written again: not single-segment,
    /// Window_Descriptor for a window of `2^windowLog` bytes, a Dictionary_ID field of `dictionaryIDBytes` bytes
    /// (0, 1, 2 or 4) holding 0, a 4-byte Frame_Content_Size of raw_len, the checksum flag kept. The compressed
    /// blocks are kept as they are, so the frame decodes to the same bytes under any window ≥ raw_len.
    package static func reheadedZstd(_ plaintext: [UInt8], windowLog: Int, dictionaryIDBytes: Int = 0) throws -> [UInt8]
    {
        precondition(plaintext[0] == CompressionCodec.zstd.rawValue && (10...41).contains(windowLog))
        let payload = Array(plaintext[FormatV1.framePrefixByteCount...])
        let old = try ZstdFrameHeader.parse(payload.span.bytes)
        let rawLength =
            UInt64(plaintext[1]) | UInt64(plaintext[2]) << 8 | UInt64(plaintext[3]) << 16 | UInt64(plaintext[4]) << 24
        let didFlag: UInt8 = [0: 0, 1: 1, 2: 2, 4: 3][dictionaryIDBytes]!
        var header: [UInt8] = .le(UInt64(ZstdFrameHeader.magic), count: 4)
        header.append(2 << 6 | (old.hasChecksum ? 0x04 : 0) | didFlag)  // FCS 4 bytes, not single-segment
        header.append(UInt8(windowLog - 10) << 3)  // Window_Descriptor, mantissa 0
        header += [UInt8](repeating: 0, count: dictionaryIDBytes)  // Dictionary_ID = 0
        header += .le(rawLength, count: 4)  // Frame_Content_Size
        return Array(plaintext[..<FormatV1.framePrefixByteCount]) + header + payload[old.byteCount...]
    }
}
