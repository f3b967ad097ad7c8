import Foundation
import SealbakCompression
import Testing

/// The 4-lane byte shuffle of codec 3 (Spec §6.2): known answers, every length against the definition, and the
/// shuffled zstd round trip through the frame (de)compressor with the checks of plain zstd.
@Suite struct ByteShuffleTests {
    /// Spec §6.2, literally: `Shuffle(x)[b·m + i] = x[4i + b]`, the last n mod 4 bytes unchanged.
    static func reference(_ x: [UInt8]) -> [UInt8] {
        let m = x.count / 4
        var y = x
        for b in 0..<4 { for i in 0..<m { y[b * m + i] = x[4 * i + b] } }
        return y
    }

    /// Deterministic float32 values near a Gaussian (sum of uniforms), little-endian: what embeddings look like.
    static func floats(_ count: Int, seed: UInt64 = 7) -> [UInt8] {
        var s = seed | 1
        func next() -> Float {
            s ^= s << 13
            s ^= s >> 7
            s ^= s << 17
            return Float(s >> 40) / Float(1 << 24)
        }
        var out: [UInt8] = []
        out.reserveCapacity(count * 4)
        for _ in 0..<count {
            let v = (next() + next() + next() + next() - 2) * 1.7
            withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 }
        }
        return out
    }

    /// The example of Spec §6.2 (n = 11, m = 2).
    @Test func specExample() {
        let x: [UInt8] = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a]
        #expect(ByteShuffle.shuffled(x) == [0x00, 0x04, 0x01, 0x05, 0x02, 0x06, 0x03, 0x07, 0x08, 0x09, 0x0a])
        #expect(ByteShuffle.unshuffled(ByteShuffle.shuffled(x)) == x)
    }

    /// 9 numbers and 2 tail bytes: 8 numbers take the word path, the 9th the byte loop.
    @Test func knownAnswerAcrossTheWordPath() {
        let x = (0..<38).map { UInt8($0) }
        let expected: [UInt8] = [
            0, 4, 8, 12, 16, 20, 24, 28, 32,
            1, 5, 9, 13, 17, 21, 25, 29, 33,
            2, 6, 10, 14, 18, 22, 26, 30, 34,
            3, 7, 11, 15, 19, 23, 27, 31, 35,
            36, 37,
        ]
        #expect(ByteShuffle.shuffled(x) == expected)
        #expect(ByteShuffle.unshuffled(expected) == x)
    }

    /// Every length from 0 to 300 (0...7 included: no lanes at all below 4), and frame-size multiples with
    /// and without a tail, against the definition.
    @Test func everyLengthMatchesTheDefinition() {
        var lengths = Array(0...300)
        lengths += [4096, 4096 + 1, 4096 + 3, 1 << 20, (1 << 20) - 1]
        let source = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 9) }
        for n in lengths {
            let x = Array(source.prefix(n))
            let y = ByteShuffle.shuffled(x)
            #expect(y == Self.reference(x), "shuffle of \(n) bytes")
            #expect(ByteShuffle.unshuffled(y) == x, "unshuffle of \(n) bytes")
        }
        for n in 0..<4 {
            let x = Array(source.prefix(n))
            #expect(ByteShuffle.shuffled(x) == x, "n < 4 is the identity")
        }
    }

    /// Codec 3's compressor side and reader side: zstd of the shuffled bytes, decoded and unshuffled, with the
    /// frame-header checks of plain zstd (the window bound applies unchanged).
    @Test func shuffledZstdRoundTripsAndIsChecked() throws {
        for n in [4096, 4096 * 3 + 2, 1 << 20] {
            let input = Self.floats(n / 4) + Array(repeating: 0x5A, count: n % 4)
            let c = try #require(FrameCompressionTests.compress(input, .shuffledZstd(level: 3)), "\(n) bytes shrink")
            // The payload is a plain zstd frame of the shuffled bytes.
            #expect(try FrameCompressionTests.zstd(c, rawLength: input.count) == ByteShuffle.shuffled(input))
            #expect(try Self.unshuffledZstd(c, rawLength: input.count) == input)
            #expect(throws: CompressionError.self) { try Self.unshuffledZstd(c, rawLength: input.count + 1) }
            if input.count > 4096 {
                #expect(throws: CompressionError.self) {
                    try Self.unshuffledZstd(c, rawLength: input.count, maxWindow: 4096)
                }
            }
        }
        // A frame that does not shrink is stored by the caller (nil), as for plain zstd.
        #expect(FrameCompressionTests.compress(Array(0..<3), .shuffledZstd(level: 3)) == nil)
        #expect(throws: CompressionError.self) { try Self.unshuffledZstd([1, 2, 3], rawLength: 8) }
    }

    /// The reason for codec 3: Gaussian float32 data compresses clearly better shuffled.
    @Test func shuffledFloatsCompressBetter() throws {
        let input = Self.floats(256 * 1024)  // 1 MiB
        let plain = try #require(FrameCompressionTests.compress(input, .zstd(level: 3)))
        let shuffled = try #require(FrameCompressionTests.compress(input, .shuffledZstd(level: 3)))
        #expect(Double(shuffled.count) < 0.97 * Double(plain.count), "shuffled \(shuffled.count), plain \(plain.count)")
    }

    static func unshuffledZstd(
        _ payload: [UInt8],
        rawLength: Int,
        maxWindow: Int = 1 << 20
    ) throws(CompressionError) -> [UInt8] {
        let d = FrameDecompressor()
        return try [UInt8](byteCapacity: rawLength) { o throws(CompressionError) in
            try d.shuffledZstd(payload.span.bytes, into: &o, maxWindow: maxWindow)
        }
    }
}
