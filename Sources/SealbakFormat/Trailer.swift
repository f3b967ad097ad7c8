/// Where one entry's stream lies and what it holds (Spec §8.1). Offsets are body offsets: counted from the
/// first byte after the header, so that rewriting the header (key changes) leaves every later byte unchanged.
package struct TrailerEntry: Hashable, Sendable {
    /// Plaintext bytes of the entry.
    package var size: UInt64
    /// Body offset (from the end of the header) of the stream's first frame header.
    package var offset: UInt64
    /// Bytes of the stream on disk: all its frame headers and ciphertexts.
    package var length: UInt64
    /// SHA-256 of the entry's plaintext.
    package var sha256: [UInt8]

    package init(size: UInt64, offset: UInt64, length: UInt64, sha256: [UInt8]) {
        self.size = size
        self.offset = offset
        self.length = length
        self.sha256 = sha256
    }

    static let byteCount = 8 + 8 + 8 + 32
}

/// The decrypted trailer (Spec §8.1): the index for random access and the end-of-archive record.
package struct Trailer: Hashable, Sendable {
    package var archiveID: [UInt8]
    /// Bytes of the manifest stream, which starts at body offset 0.
    package var manifestLength: UInt64
    package var entries: [TrailerEntry]
    /// Body offset of the trailer stream (repeated in the footer).
    package var trailerOffset: UInt64

    /// Body offset right after the last entry stream (after the manifest when there are no entries): where the
    /// trailer starts, or in a chained archive the index stream (Spec §14.3).
    package var streamsEnd: UInt64 { entries.last.map { $0.offset + $0.length } ?? manifestLength }

    package init(archiveID: [UInt8], manifestLength: UInt64, entries: [TrailerEntry], trailerOffset: UInt64) {
        self.archiveID = archiveID
        self.manifestLength = manifestLength
        self.entries = entries
        self.trailerOffset = trailerOffset
    }

    package func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: FormatV1.trailerFixedByteCount + entries.count * TrailerEntry.byteCount)
        w.write(UInt32(truncatingIfNeeded: entries.count))
        w.write(bytes: archiveID)
        w.write(manifestLength)
        for e in entries {
            w.write(e.size)
            w.write(e.offset)
            w.write(e.length)
            w.write(bytes: e.sha256)
        }
        w.write(bytes: FormatV1.trailerEndMagic)
        w.write(trailerOffset)
        return w.bytes
    }

    /// Parses the trailer plaintext and checks that the layout it describes is contiguous and plausible
    /// for `frameSize` (Spec §8.2).
    /// - Parameter chained: the archive declares feature bit 1: an index stream lies between the last entry stream
    ///   and the trailer (Spec §14.3), so the trailer starts at least one frame after the last entry stream.
    package static func parse(_ bytes: [UInt8], frameSize: Int, chained: Bool = false) throws(FormatError) -> Trailer {
        if UInt64(bytes.count) > FormatV1.maxTrailerByteCount {
            throw FormatError(.trailer, "trailer of \(bytes.count) bytes exceeds its limit")
        }
        var r = ByteReader(bytes, errorClass: .trailer)
        let count = try r.readUInt32("entry count")
        if count > FormatV1.maxEntryCount {
            throw FormatError(
                .trailer,
                "trailer lists \(count) entries, the limit is \(FormatV1.maxEntryCount)",
                offset: 0
            )
        }
        let expected = FormatV1.trailerFixedByteCount + Int(count) * TrailerEntry.byteCount
        if bytes.count != expected {
            throw FormatError(.trailer, "trailer is \(bytes.count) bytes, \(count) entries need exactly \(expected)")
        }
        let archiveID = try r.readBytes(FormatV1.archiveIDByteCount, "archive id")
        let manifestLength = try r.readUInt64("manifest length")
        let minFrame = UInt64(FormatV1.frameHeaderByteCount + FrameHeader.minCiphertextLength)
        let maxFrame = UInt64(FormatV1.frameHeaderByteCount + FrameHeader.maxCiphertextLength(frameSize: frameSize))
        if manifestLength < minFrame {
            throw FormatError(.trailer, "manifest length \(manifestLength) is below one frame", offset: 20)
        }
        var cursor = manifestLength
        var entries: [TrailerEntry] = []
        entries.reserveCapacity(Int(count))
        for i in 0..<Int(count) {
            let at = UInt64(r.offset)
            let size = try r.readUInt64("entry size")
            let offset = try r.readUInt64("entry offset")
            let length = try r.readUInt64("entry length")
            let sha = try r.readBytes(32, "entry sha256")
            if offset != cursor {
                throw FormatError(
                    .trailer,
                    "entry \(i) starts at \(offset), expected \(cursor) (streams must be contiguous)",
                    offset: at + 8
                )
            }
            let frames = FormatV1.frameCount(size: size, frameSize: frameSize)
            if frames > FormatV1.maxFramesPerStream {
                throw FormatError(.trailer, "entry \(i) size \(size) needs more than 2^32 frames", offset: at)
            }
            let (lo, loOverflow) = frames.multipliedReportingOverflow(by: minFrame)
            let (hi, hiOverflow) = frames.multipliedReportingOverflow(by: maxFrame)
            if loOverflow || length < lo || (!hiOverflow && length > hi) {
                throw FormatError(
                    .trailer,
                    "entry \(i) stream length \(length) cannot hold \(frames) frames",
                    offset: at + 16
                )
            }
            let (next, overflow) = offset.addingReportingOverflow(length)
            if overflow { throw FormatError(.trailer, "entry \(i) range overflows", offset: at + 16) }
            cursor = next
            entries.append(TrailerEntry(size: size, offset: offset, length: length, sha256: sha))
        }
        let magic = try r.readBytes(8, "end-of-archive magic")
        if magic != FormatV1.trailerEndMagic {
            throw FormatError(.trailer, "end-of-archive record has a bad magic", offset: UInt64(r.offset - 8))
        }
        let trailerOffset = try r.readUInt64("trailer offset")
        if chained {
            if trailerOffset < cursor || trailerOffset - cursor < minFrame {
                throw FormatError(
                    .trailer,
                    "trailer offset \(trailerOffset) leaves no index stream after the last entry stream (\(cursor))",
                    offset: UInt64(r.offset - 8)
                )
            }
        } else if trailerOffset != cursor {
            throw FormatError(
                .trailer,
                "trailer offset \(trailerOffset) does not follow the last stream (\(cursor))",
                offset: UInt64(r.offset - 8)
            )
        }
        try r.expectEnd("the end-of-archive record", errorClass: .trailer)
        return Trailer(
            archiveID: archiveID,
            manifestLength: manifestLength,
            entries: entries,
            trailerOffset: trailerOffset
        )
    }
}

/// The fixed 24-byte footer (Spec §8.3): LE64 trailer body offset ‖ LE64 trailer length ‖ "SBKFOOT1".
package struct Footer: Hashable, Sendable {
    package var trailerOffset: UInt64
    package var trailerLength: UInt64

    package init(trailerOffset: UInt64, trailerLength: UInt64) {
        self.trailerOffset = trailerOffset
        self.trailerLength = trailerLength
    }

    package func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: FormatV1.footerByteCount)
        w.write(trailerOffset)
        w.write(trailerLength)
        w.write(bytes: FormatV1.footerMagic)
        return w.bytes
    }

    package static func parse(_ bytes: [UInt8]) throws(FormatError) -> Footer {
        guard bytes.count == FormatV1.footerByteCount else {
            throw FormatError(.truncated, "footer is \(bytes.count) bytes, expected \(FormatV1.footerByteCount)")
        }
        var r = ByteReader(bytes, errorClass: .trailer)
        let offset = try r.readUInt64("trailer offset")
        let length = try r.readUInt64("trailer length")
        let magic = try r.readBytes(8, "footer magic")
        if magic != FormatV1.footerMagic {
            throw FormatError(
                .trailer,
                "footer magic is wrong: the archive is truncated or has bytes appended",
                offset: 16
            )
        }
        return Footer(trailerOffset: offset, trailerLength: length)
    }
}
