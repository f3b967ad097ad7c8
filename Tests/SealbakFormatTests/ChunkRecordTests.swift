import SealbakFormat
import Testing

/// The record stream of a chained archive's entries (`ChunkRecords`, `ChunkRecordParser`).
@Suite struct ChunkRecordTests {
    static let reference = ChunkReference(
        archiveID: Array(1...16),
        entry: 0x0102_0304,
        offset: 0x0102_0304_0506_0708,
        length: 0x00_1000,
        chunkID: Array(100..<132)
    )

    // Computed, not stored: a static array of this enum keeps its elements behind pointers whose spare bits hold the
    // enum's tag, which LeakSanitizer does not recognise as references, so it reported them as leaked at exit.
    static var records: [ChunkRecord] {
        [
            .literal(Array(0..<10)), .reference(reference), .literal([0xFF]),
            .reference(
                ChunkReference(
                    archiveID: [UInt8](repeating: 9, count: 16),
                    entry: 0,
                    offset: 0,
                    length: 1,
                    chunkID: [UInt8](repeating: 8, count: 32)
                )
            ),
            .literal(Array(repeating: 0x5A, count: 300)),
        ]
    }

    /// Events of `pieces` fed in order, literal pieces joined per record, plus the offsets after each piece.
    static func parse(_ pieces: [[UInt8]]) throws(FormatError) -> [ChunkRecord] {
        var parser = ChunkRecordParser()
        var out: [ChunkRecord] = []
        var literal: [UInt8] = []
        var fed: UInt64 = 0
        for piece in pieces {
            try parser.feed(piece) { event throws(FormatError) in
                switch event {
                case .literal(let bytes, let endsRecord):
                    literal += bytes
                    if endsRecord {
                        out.append(.literal(literal))
                        literal = []
                    }
                case .reference(let r):
                    out.append(.reference(r))
                }
            }
            fed += UInt64(piece.count)
            precondition(parser.consumed == fed)
        }
        try parser.finish()
        return out
    }

    static func error(_ pieces: [[UInt8]]) -> FormatError? {
        do {
            _ = try parse(pieces)
            return nil
        } catch {
            return error
        }
    }

    @Test func encodingIsTheSpecifiedLayout() {
        var out: [UInt8] = []
        ChunkRecords.appendLiteralHeader(length: 0x0001_0203, to: &out)
        #expect(out == [1, 0, 0, 0, 0x03, 0x02, 0x01, 0x00])
        out = []
        ChunkRecords.appendReference(Self.reference, to: &out)
        #expect(out.count == ChunkRecords.referenceByteCount && out.count == 68)
        #expect(Array(out[0..<4]) == [2, 0, 0, 0] && Array(out[4..<20]) == Array(1...16))
        #expect(Array(out[20..<24]) == [4, 3, 2, 1])
        #expect(Array(out[24..<32]) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(Array(out[32..<36]) == [0, 0x10, 0, 0])
        #expect(Array(out[36..<68]) == Array(100..<132))
        #expect(ChunkRecords.maxLength == 16_777_216 && ChunkRecords.literalHeaderByteCount == 8)
    }

    @Test func roundTrips() throws {
        let stream = ChunkRecords.encode(Self.records)
        #expect(try ChunkRecords.parse(stream) == Self.records)
        #expect(try Self.parse([stream]) == Self.records)
        #expect(try ChunkRecords.parse([]) == [])
        let big: [ChunkRecord] = [.literal([UInt8](repeating: 7, count: ChunkRecords.maxLength))]
        #expect(try ChunkRecords.parse(ChunkRecords.encode(big)) == big)
    }

    @Test func everySplitInTwoAndByteByByte() throws {
        let stream = ChunkRecords.encode(Self.records)
        for cut in 0...stream.count {
            #expect(try Self.parse([Array(stream[..<cut]), Array(stream[cut...])]) == Self.records, "cut \(cut)")
        }
        #expect(try Self.parse(stream.map { [$0] }) == Self.records)
        #expect(try Self.parse(stream.map { [$0] } + [[]]) == Self.records)
    }

    /// Literal content is handed out as slices of the fed array, in as few pieces as the feeds allow.
    @Test func literalContentIsSlicesOfTheFedArray() throws {
        let stream = ChunkRecords.encode([.literal(Array(repeating: 3, count: 1000))])
        var parser = ChunkRecordParser()
        var index = 0
        let event = try parser.next(in: stream, at: &index)
        guard case .literal(let slice, endsRecord: true) = event else {
            Issue.record("expected a literal, got \(String(describing: event))")
            return
        }
        #expect(slice.startIndex == 8 && slice.endIndex == 1008 && index == 1008)
        #expect(try parser.next(in: stream, at: &index) == nil)
        #expect(parser.isBetweenRecords && parser.recordCount == 1)
    }

    @Test func unknownTagsArePayloadErrorsNamingRecordAndOffset() {
        let good = ChunkRecords.encode(Array(Self.records.prefix(2)))  // 18 + 68 bytes
        for tag: UInt8 in [0, 3, 0xFF] {
            for pieces in [[good + [tag, 0, 0, 0]], (good + [tag]).map { [$0] }] {
                let e = Self.error(pieces)
                #expect(e?.errorClass == .payload && e?.offset == 86, "\(String(describing: e))")
                #expect(e?.message.contains("record 2 at stream offset 86") == true, "\(String(describing: e))")
                #expect(e?.message.contains("unknown tag 0x\(String(tag, radix: 16))") == true)
            }
        }
    }

    @Test func lengthsOutsideTheBoundsArePayloadErrors() {
        let zeroLiteral: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0]
        let tooLong: [UInt8] = [1, 0, 0, 0, 0x01, 0x00, 0x00, 0x01]  // 2^24 + 1
        var reference: [UInt8] = []
        ChunkRecords.appendReference(Self.reference, to: &reference)
        var zeroReference = reference
        zeroReference.replaceSubrange(32..<36, with: [0, 0, 0, 0])
        var longReference = reference
        longReference.replaceSubrange(32..<36, with: [0xFF, 0xFF, 0xFF, 0xFF])
        for (stream, fieldOffset) in [(zeroLiteral, 4), (tooLong, 4), (zeroReference, 32), (longReference, 32)] {
            for pieces in [[stream], stream.map { [$0] }] {
                let e = Self.error(pieces)
                #expect(e?.errorClass == .payload && e?.offset == UInt64(fieldOffset), "\(String(describing: e))")
                #expect(e?.message.contains("record 0 at stream offset 0") == true, "\(String(describing: e))")
                #expect(e?.message.contains("outside 1...16777216") == true)
            }
        }
    }

    /// The three bytes after a tag pad record headers to multiples of 4: anything but zero is class `payload`.
    @Test func nonZeroPaddingIsAPayloadError() {
        let stream = ChunkRecords.encode(Self.records)
        for position in [1, 2, 3, 18 + 1, 18 + 3] {
            var bad = stream
            bad[position] = 0x01
            for pieces in [[bad], bad.map { [$0] }] {
                let e = Self.error(pieces)
                let start = position < 18 ? 0 : 18
                #expect(e?.errorClass == .payload && e?.offset == UInt64(start + 1), "\(String(describing: e))")
                #expect(e?.message.contains("non-zero bytes after its tag") == true, "\(String(describing: e))")
            }
        }
    }

    @Test func truncatedStreamsArePayloadErrorsAtFinish() {
        let stream = ChunkRecords.encode(Self.records)
        // Every proper prefix that does not end at a record boundary.
        var boundaries: Set<Int> = [0]
        var at = 0
        for r in Self.records {
            at += ChunkRecords.encode([r]).count
            boundaries.insert(at)
        }
        for cut in 0..<stream.count where !boundaries.contains(cut) {
            let e = Self.error([Array(stream[..<cut])])
            #expect(e?.errorClass == .payload && e?.offset == UInt64(cut), "cut \(cut): \(String(describing: e))")
            #expect(e?.message.contains("ends at offset \(cut) inside record") == true, "\(String(describing: e))")
        }
        let e = Self.error([[1, 0, 0, 0, 5, 0, 0, 0, 1, 2]])
        #expect(
            e?.message.contains("a literal starting at stream offset 0: 3 bytes of its content are missing") == true
        )
        let r = Self.error([[2, 1, 2]])
        #expect(r?.message.contains("a reference starting at stream offset 0: 3 of its 68 header bytes") == true)
    }
}
