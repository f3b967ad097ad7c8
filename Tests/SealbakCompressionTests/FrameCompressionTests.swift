import SealbakCompression
import Testing

/// One frame at a time, bounded: round trips at every level, decompression bombs and oversized windows refused
/// before any allocation, every truncation and malformed header refused with an error (never a crash), and a
/// payload that is more or less than one frame refused.
@Suite struct FrameCompressionTests {
    static func text(_ n: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(n)
        var i = 0
        while out.count < n {
            out += Array("row \(i), embedding chunk \(i % 97): the quick brown fox jumps over the lazy dog\n".utf8)
            i += 1
        }
        return Array(out.prefix(n))
    }

    static func compress(_ input: [UInt8], _ algorithm: CompressionAlgorithm) -> [UInt8]? {
        var shrank = false
        let out = [UInt8](byteCapacity: input.count + 1024) { o in
            shrank = FrameCompressor().compress(input.span.bytes, into: &o, algorithm: algorithm) != nil
        }
        return shrank ? out : nil
    }

    static func zstd(_ payload: [UInt8], rawLength: Int, maxWindow: Int = 1 << 20) throws(CompressionError) -> [UInt8] {
        let d = FrameDecompressor()
        return try [UInt8](byteCapacity: rawLength) { o throws(CompressionError) in
            try d.zstd(payload.span.bytes, into: &o, maxWindow: maxWindow)
        }
    }

    static func zlib(_ payload: [UInt8], rawLength: Int) throws(CompressionError) -> [UInt8] {
        try [UInt8](byteCapacity: rawLength) { o throws(CompressionError) in
            try FrameDecompressor().zlib(payload.span.bytes, into: &o)
        }
    }

    @Test func roundTripsAtEveryLevel() throws {
        let input = Self.text(300_000)
        for level in CompressionAlgorithm.zstdLevels {
            let c = try #require(Self.compress(input, .zstd(level: level)))
            #expect(try Self.zstd(c, rawLength: input.count) == input, "zstd level \(level)")
        }
        for level in CompressionAlgorithm.zlibLevels {
            let c = try #require(Self.compress(input, .zlib(level: level)))
            #expect(try Self.zlib(c, rawLength: input.count) == input, "zlib level \(level)")
        }
        // Data that does not shrink, and tiny inputs, are stored raw (nil), never expanded.
        var noise = [UInt8](repeating: 0, count: 65536)
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in noise.indices {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            noise[i] = UInt8(truncatingIfNeeded: x)
        }
        #expect(Self.compress(noise, .zstd(level: 3)) == nil && Self.compress(noise, .zlib(level: 6)) == nil)
        #expect(Self.compress([42], .zstd(level: 3)) == nil && Self.compress(input, .stored) == nil)
    }

    /// 64 MiB of zeros compress to a few KiB; declared as a 1 MiB frame they are refused, without a 64 MiB buffer.
    @Test func bombsAndOversizedWindowsAreRefused() throws {
        let big = [UInt8](repeating: 0, count: 64 << 20)
        let zBomb = try #require(Self.compress(big, .zstd(level: 3)))
        #expect(zBomb.count < 64 << 10)
        #expect(throws: CompressionError.self) { try Self.zstd(zBomb, rawLength: 1 << 20, maxWindow: 1 << 20) }
        // window
        #expect(throws: CompressionError.self) { try Self.zstd(zBomb, rawLength: 64 << 20, maxWindow: 1 << 20) }
        let lBomb = try #require(Self.compress(big, .zlib(level: 9)))
        #expect(throws: CompressionError.self) { try Self.zlib(lBomb, rawLength: 1 << 20) }
        // One byte fewer or more than the frame declares: refused, both codecs.
        let input = Self.text(100_000)
        let z = try #require(Self.compress(input, .zstd(level: 3)))
        let l = try #require(Self.compress(input, .zlib(level: 6)))
        for n in [input.count - 1, input.count + 1] {
            #expect(throws: CompressionError.self) { try Self.zstd(z, rawLength: n) }
            #expect(throws: CompressionError.self) { try Self.zlib(l, rawLength: n) }
        }
    }

    /// Every prefix of a valid payload, fed to the decoder as if the frame ended there: an error, never a crash
    /// and never a success (the AEAD authenticates lengths too; this holds even without it).
    @Test func everyTruncationIsRefused() throws {
        let input = Self.text(20_000)
        let z = try #require(Self.compress(input, .zstd(level: 19)))
        let l = try #require(Self.compress(input, .zlib(level: 9)))
        for n in 0..<z.count {
            #expect(throws: CompressionError.self, "zstd prefix \(n)") {
                try Self.zstd(Array(z.prefix(n)), rawLength: input.count)
            }
        }
        for n in 0..<l.count {
            #expect(throws: CompressionError.self, "zlib prefix \(n)") {
                try Self.zlib(Array(l.prefix(n)), rawLength: input.count)
            }
        }
        // Every single-byte change either fails or yields exactly the declared length (no overrun, no crash).
        for i in z.indices {
            var bad = z
            bad[i] ^= 0x5A
            if let out = try? Self.zstd(bad, rawLength: input.count) { #expect(out.count == input.count) }
        }
    }

    /// Spec §6.2 rule 7: exactly one zstd frame, reserved bit clear, no Dictionary_ID field, window within the frame
    /// size, content size (if present) equal to the frame's; and a zlib payload consumed entirely.
    @Test func malformedFramesAreRefusedByName() throws {
        let input = Self.text(50_000)
        let z = try #require(Self.compress(input, .zstd(level: 3)))
        func refused(_ payload: [UInt8], _ words: String) {
            do {
                _ = try Self.zstd(payload, rawLength: input.count)
                Issue.record("accepted: \(words)")
            } catch {
                #expect(error.message.contains(words), "\(error.message)")
            }
        }
        refused(z + z, "not exactly one zstd frame")
        refused(z + [0], "not exactly one zstd frame")
        refused([0x50, 0x2A, 0x4D, 0x18] + z.dropFirst(4), "magic")  // a skippable frame's magic
        var reserved = z
        reserved[4] |= 0x08
        refused(reserved, "reserved bit")
        var dictionary = z
        dictionary[4] = (dictionary[4] & ~0x03) | 0x01  // a 1-byte Dictionary_ID field
        refused(dictionary, "dictionary")
        refused(Array(z.prefix(4)), "shorter than a zstd frame header")
        #expect(throws: CompressionError.self) { try Self.zstd(z, rawLength: input.count, maxWindow: 1024) }
        let l = try #require(Self.compress(input, .zlib(level: 6)))
        #expect(throws: CompressionError.self) { try Self.zlib(l + [0], rawLength: input.count) }
        #expect(throws: CompressionError.self) { try Self.zlib([], rawLength: input.count) }
    }
}
