import SealbakCompression
import Testing

/// The archive dictionary's codec (Spec §6.2 codec 4, §7.4): training, loading only formatted dictionaries, frames
/// that need the dictionary, name none, and keep every check of plain zstd frames.
@Suite struct ZstdDictionaryTests {
    /// Notes over one vocabulary, each different: what a document tree looks like to zstd.
    static func notes(_ count: Int, seed: UInt64 = 1) -> [[UInt8]] {
        let words = ["vector", "chunk", "embedding", "index", "backup", "archive", "restore", "query", "the", "of"]
        var state = seed
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33)
        }
        return (0..<count).map { _ in
            var text = ""
            for _ in 0..<(200 + next() % 400) { text += words[next() % words.count] + " " }
            return Array(text.utf8)
        }
    }

    static func trained(level: Int32? = 3) throws -> ZstdDictionary {
        try ZstdDictionary(ZstdDictionary.train(samples: notes(200), capacity: 16 << 10)!, level: level)
    }

    static func compress(_ input: [UInt8], _ algorithm: CompressionAlgorithm) -> [UInt8]? {
        FrameCompressionTests.compress(input, algorithm)
    }

    static func decompress(
        _ payload: [UInt8],
        rawLength: Int,
        with d: ZstdDictionary
    ) throws(CompressionError)
        -> [UInt8]
    {
        try [UInt8](byteCapacity: rawLength) { o throws(CompressionError) in
            try FrameDecompressor().dictionaryZstd(payload.span.bytes, into: &o, maxWindow: 1 << 20, dictionary: d)
        }
    }

    @Test func framesRoundTripSmallerThanWithoutTheDictionary() throws {
        let d = try Self.trained()
        var plain = 0
        var withDictionary = 0
        for note in Self.notes(50, seed: 99) {
            let p = try #require(Self.compress(note, .dictionaryZstd(d)))
            #expect(try Self.decompress(p, rawLength: note.count, with: d) == note)
            // Spec §6.2 rule 7: single-segment, Frame_Content_Size = raw_len, no Dictionary_ID field.
            let h = try ZstdFrameHeader.parse(p.span.bytes)
            #expect(h.dictionaryIDFieldSize == 0 && h.singleSegment && h.contentSize == UInt64(note.count))
            withDictionary += p.count
            plain += try #require(Self.compress(note, .zstd(level: 3))).count
        }
        #expect(withDictionary * 10 < plain * 9, "with the dictionary \(withDictionary) bytes, without \(plain)")
    }

    /// A codec-4 frame is not a plain zstd frame: without its dictionary it does not yield the content, and a
    /// dictionary-less reader of codec 1 cannot be fooled into accepting it as the same bytes.
    @Test func framesNeedTheirDictionary() throws {
        let d = try Self.trained()
        let other = try ZstdDictionary(ZstdDictionary.train(samples: Self.notes(200, seed: 7), capacity: 16 << 10)!)
        let note = Self.notes(1, seed: 5)[0]
        let p = try #require(Self.compress(note, .dictionaryZstd(d)))
        let plain = try? FrameCompressionTests.zstd(p, rawLength: note.count)
        #expect(plain != note)
        let wrong = try? Self.decompress(p, rawLength: note.count, with: other)
        #expect(wrong != note)
    }

    /// Spec §7.4: only a formatted dictionary (magic, Dictionary_ID ≠ 0, entropy tables that load) of 8 to
    /// 786,432 bytes.
    @Test func onlyFormattedDictionariesLoad() throws {
        let good = ZstdDictionary.train(samples: Self.notes(200), capacity: 16 << 10)!
        #expect(ZstdDictionary.id(of: good) != 0)
        func refused(_ bytes: [UInt8], _ words: String) {
            #expect {
                _ = try ZstdDictionary(bytes)
            } throws: { ($0 as? CompressionError)?.message.contains(words) == true }
        }
        refused(Array("just some text that is long enough".utf8), "magic")
        refused(Array(good.prefix(7)), "bytes")
        refused([UInt8](repeating: 0, count: ZstdDictionary.maxByteCount + 1), "bytes")
        var zeroID = good
        zeroID.replaceSubrange(4..<8, with: [0, 0, 0, 0])
        refused(zeroID, "Dictionary_ID 0")
        var broken = good
        for i in 8..<min(64, broken.count) { broken[i] = 0xFF }
        refused(broken, "entropy tables")
        #expect(throws: Never.self) { _ = try ZstdDictionary(good) }
    }

    /// Every check of plain zstd holds for codec 4 (Spec §6.2 rules 6, 7): truncations, trailing bytes, a
    /// Dictionary_ID field, a bomb that declares more than raw_len.
    @Test func malformedFramesAreRefused() throws {
        let d = try Self.trained()
        let note = Self.notes(1, seed: 11)[0]
        let p = try #require(Self.compress(note, .dictionaryZstd(d)))
        for cut in 0..<p.count {
            #expect(throws: CompressionError.self) {
                _ = try Self.decompress(Array(p.prefix(cut)), rawLength: note.count, with: d)
            }
        }
        #expect(throws: CompressionError.self) { _ = try Self.decompress(p + [0], rawLength: note.count, with: d) }
        #expect(throws: CompressionError.self) { _ = try Self.decompress(p, rawLength: note.count - 1, with: d) }
        var named = p
        named[4] |= 0x03
        named.insert(contentsOf: [1, 2, 3, 4], at: 5)
        #expect {
            _ = try Self.decompress(named, rawLength: note.count, with: d)
        } throws: { "\($0)".contains("Dictionary_ID") }
    }

    @Test func trainingNeedsSamples() {
        #expect(ZstdDictionary.train(samples: []) == nil)
        #expect(ZstdDictionary.train(samples: Self.notes(3)) == nil)
    }
}
