/// Where a chunk's bytes are: `length` bytes at `offset` of the stored plaintext (the record stream) of entry stream
/// `entry` of the archive `archiveID`, with the keyed hash `chunkID` (Spec §14.2, §14.4).
package struct ChunkReference: Sendable, Hashable {
    /// 16 bytes.
    package var archiveID: [UInt8]
    package var entry: UInt32
    package var offset: UInt64
    package var length: UInt32
    /// HMAC-SHA-256 of the chunk's bytes under the chain's chunk key (32 bytes).
    package var chunkID: [UInt8]

    package init(archiveID: [UInt8], entry: UInt32, offset: UInt64, length: UInt32, chunkID: [UInt8]) {
        self.archiveID = archiveID
        self.entry = entry
        self.offset = offset
        self.length = length
        self.chunkID = chunkID
    }
}

/// One record of an entry stream of a chained archive, whole (for tests and vectors; readers use
/// `ChunkRecordParser`, which does not collect literal content).
package enum ChunkRecord: Sendable, Hashable {
    /// Content stored in this stream.
    case literal([UInt8])
    /// Content found elsewhere (this or an earlier archive of the chain).
    case reference(ChunkReference)
}

/// The record stream that is the plaintext of every file or stream entry of a chained archive
/// (`FormatFeatures.chained`). Directory and symlink streams stay empty; an empty file has no record.
///
/// ```
/// literal:   0x01 00 00 00, u32 length (1 ≤ length ≤ 2^24), then `length` bytes of content
/// reference: 0x02 00 00 00, archive_id [16], entry u32, offset u64, length u32 (1 ≤ length ≤ 2^24), chunk_id [32]
/// ```
/// Record headers are multiples of 4 bytes, so that a root's content keeps its 4-byte alignment for the shuffle codec.
/// Any other tag, a non-zero byte after the tag, a length outside the bounds, or a stream that ends inside a record
/// is class `payload`.
package enum ChunkRecords {
    package static let literalTag: UInt8 = 1
    package static let referenceTag: UInt8 = 2
    /// Tag, three zero bytes and length of a literal, before its content.
    package static let literalHeaderByteCount = 8
    /// A whole reference record: 4 + 16 + 4 + 8 + 4 + 32 bytes.
    package static let referenceByteCount = 68
    /// The largest literal or reference length: 16 MiB.
    package static let maxLength = 1 << 24
    package static let chunkIDByteCount = 32

    /// Appends the 8 bytes that precede `length` bytes of literal content.
    ///
    /// - Precondition: `1 ≤ length ≤ maxLength`.
    package static func appendLiteralHeader(length: Int, to out: inout [UInt8]) {
        precondition(length >= 1 && length <= maxLength, "literal length \(length) is outside 1...\(maxLength)")
        out += [literalTag, 0, 0, 0]
        appendLE(UInt64(length), 4, to: &out)
    }

    /// Appends a 68-byte reference record.
    ///
    /// - Precondition: a 16-byte archive id, a 32-byte chunk id, `1 ≤ length ≤ maxLength`.
    package static func appendReference(_ r: ChunkReference, to out: inout [UInt8]) {
        precondition(r.archiveID.count == FormatV1.archiveIDByteCount && r.chunkID.count == chunkIDByteCount)
        precondition(r.length >= 1 && r.length <= maxLength, "reference length \(r.length) is outside 1...\(maxLength)")
        out += [referenceTag, 0, 0, 0]
        out.append(contentsOf: r.archiveID)
        appendLE(UInt64(r.entry), 4, to: &out)
        appendLE(r.offset, 8, to: &out)
        appendLE(UInt64(r.length), 4, to: &out)
        out.append(contentsOf: r.chunkID)
    }

    /// The stream of `records`.
    package static func encode(_ records: [ChunkRecord]) -> [UInt8] {
        var out: [UInt8] = []
        for record in records {
            switch record {
            case .literal(let content):
                appendLiteralHeader(length: content.count, to: &out)
                out.append(contentsOf: content)
            case .reference(let r):
                appendReference(r, to: &out)
            }
        }
        return out
    }

    /// Every record of a whole stream, literals collected whole (a literal split across calls of the parser is
    /// joined again).
    package static func parse(_ stream: [UInt8]) throws(FormatError) -> [ChunkRecord] {
        var parser = ChunkRecordParser()
        var records: [ChunkRecord] = []
        var literal: [UInt8]?
        var index = 0
        while let event = try parser.next(in: stream, at: &index) {
            switch event {
            case .literal(let bytes, let endsRecord):
                literal = (literal ?? []) + bytes
                if endsRecord {
                    records.append(.literal(literal!))
                    literal = nil
                }
            case .reference(let r):
                records.append(.reference(r))
            }
        }
        try parser.finish()
        return records
    }

    fileprivate static func appendLE(_ v: UInt64, _ n: Int, to out: inout [UInt8]) {
        for i in 0..<n { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}

/// A streaming parser of a record stream (`ChunkRecords`): feed the stream plaintext in pieces of any size (a
/// frame at a time, or a byte at a time); literal content comes out as slices of the fed arrays, never copied.
///
/// ```swift
/// var parser = ChunkRecordParser()
/// for frame in frames {
///     var i = 0
///     while let event = try parser.next(in: frame, at: &i) {
///         switch event {
///         case .literal(let bytes, _): try sink.write(bytes)   // a piece of a literal's content
///         case .reference(let r): try sink.write(resolve(r))
///         }
///     }
/// }
/// try parser.finish()  // the stream must not end inside a record
/// ```
package struct ChunkRecordParser: Sendable {
    package enum Event: Sendable, Equatable {
        /// A piece of a literal's content: a slice of the array being fed. One literal may come as several
        /// pieces (when it spans feeds); `endsRecord` is true on its last piece.
        case literal(ArraySlice<UInt8>, endsRecord: Bool)
        case reference(ChunkReference)
    }

    /// The stream offset reached: bytes consumed so far.
    package private(set) var consumed: UInt64 = 0
    /// Records completed so far.
    package private(set) var recordCount: UInt64 = 0
    /// The record header gathered so far when it spans feeds (tag first); empty between records.
    private var pending: [UInt8] = []
    /// Content bytes of the current literal still to come.
    private var literalRemaining = 0
    /// Stream offset of the current record's tag.
    private var recordStart: UInt64 = 0

    package init() {}

    /// True when the bytes consumed so far end exactly after a record (or nothing was consumed).
    package var isBetweenRecords: Bool { pending.isEmpty && literalRemaining == 0 }

    /// The next event from `bytes[index...]`, advancing `index`; nil once every byte of `bytes` is consumed (feed
    /// the next piece then).
    ///
    /// - Throws: class `payload` for an unknown tag or a length outside 1...2^24, naming the record and its
    ///   stream offset. After an error the parser must not be used again.
    package mutating func next(in bytes: [UInt8], at index: inout Int) throws(FormatError) -> Event? {
        while index < bytes.count {
            if literalRemaining > 0 {
                let n = min(literalRemaining, bytes.count - index)
                let piece = bytes[index..<index + n]
                index += n
                consumed += UInt64(n)
                literalRemaining -= n
                if literalRemaining == 0 { recordCount += 1 }
                return .literal(piece, endsRecord: literalRemaining == 0)
            }
            if pending.isEmpty {
                recordStart = consumed
                let tag = bytes[index]
                guard tag == ChunkRecords.literalTag || tag == ChunkRecords.referenceTag else {
                    throw FormatError(
                        .payload,
                        "record \(recordCount) at stream offset \(recordStart) has unknown tag 0x"
                            + String(tag, radix: 16) + " (1: literal, 2: reference)",
                        offset: recordStart
                    )
                }
                let size = Self.headerSize(tag)
                if bytes.count - index >= size {
                    // The whole header is in this piece: decode it in place.
                    let header = bytes[index..<index + size]
                    index += size
                    consumed += UInt64(size)
                    if let event = try decode(header) { return event }
                    continue
                }
            }
            let size = Self.headerSize(pending.first ?? bytes[index])
            let n = min(size - pending.count, bytes.count - index)
            pending.append(contentsOf: bytes[index..<index + n])
            index += n
            consumed += UInt64(n)
            if pending.count == size {
                let header = pending[...]
                pending.removeAll(keepingCapacity: true)
                if let event = try decode(header) { return event }
            }
        }
        return nil
    }

    /// Feeds a whole piece, calling `handle` for every event in order.
    package mutating func feed(
        _ bytes: [UInt8],
        _ handle: (Event) throws(FormatError) -> Void
    ) throws(FormatError) {
        var index = 0
        while let event = try next(in: bytes, at: &index) { try handle(event) }
    }

    /// Checks the end of the stream: it must not end inside a record (class `payload`).
    package func finish() throws(FormatError) {
        if isBetweenRecords { return }
        let kind = literalRemaining > 0 || pending.first == ChunkRecords.literalTag ? "literal" : "reference"
        let detail =
            literalRemaining > 0
            ? "\(literalRemaining) bytes of its content are missing"
            : "\(pending.count) of its \(Self.headerSize(pending[0])) header bytes are present"
        throw FormatError(
            .payload,
            "the stream ends at offset \(consumed) inside record \(recordCount), a \(kind) starting at stream offset "
                + "\(recordStart): \(detail)",
            offset: consumed
        )
    }

    private static func headerSize(_ tag: UInt8) -> Int {
        tag == ChunkRecords.literalTag ? ChunkRecords.literalHeaderByteCount : ChunkRecords.referenceByteCount
    }

    /// Decodes a complete record header (tag first): a reference is an event; a literal starts its content.
    private mutating func decode(_ h: ArraySlice<UInt8>) throws(FormatError) -> Event? {
        let s = h.startIndex
        func le(_ at: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(h[s + at + i]) << (8 * UInt64(i)) }
            return v
        }
        let isLiteral = h[s] == ChunkRecords.literalTag
        guard h[s + 1] == 0 && h[s + 2] == 0 && h[s + 3] == 0 else {
            throw FormatError(
                .payload,
                "record \(recordCount) at stream offset \(recordStart) has non-zero bytes after its tag (reserved)",
                offset: recordStart + 1
            )
        }
        let length = isLiteral ? le(4, 4) : le(32, 4)
        guard length >= 1 && length <= UInt64(ChunkRecords.maxLength) else {
            throw FormatError(
                .payload,
                "record \(recordCount) at stream offset \(recordStart), a \(isLiteral ? "literal" : "reference"), "
                    + "has length \(length), outside 1...\(ChunkRecords.maxLength)",
                offset: recordStart + (isLiteral ? 4 : 32)
            )
        }
        if isLiteral {
            literalRemaining = Int(length)
            return nil
        }
        recordCount += 1
        return .reference(
            ChunkReference(
                archiveID: Array(h[(s + 4)..<(s + 20)]),
                entry: UInt32(truncatingIfNeeded: le(20, 4)),
                offset: le(24, 8),
                length: UInt32(truncatingIfNeeded: length),
                chunkID: Array(h[(s + 36)..<(s + 68)])
            )
        )
    }
}
