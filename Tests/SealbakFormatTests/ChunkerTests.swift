import SealbakFormat
import Testing

/// SplitMix64 bytes: a fixed pseudo-random input for the tests of this module.
struct TestBytes {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count + 8)
        while out.count < count {
            let v = next()
            for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
        }
        return Array(out.prefix(count))
    }
}

/// FastCDC (Spec: the `Chunker` documentation is the definition).
@Suite struct ChunkerTests {
    /// Chunk lengths of the whole of `data`, feeding at most `maxSize` bytes each time as a writer would.
    static func lengths(_ data: [UInt8], _ p: ChunkerParameters = .standard) -> [Int] {
        var out: [Int] = []
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + p.maxSize)
            let n = Chunker.chunkLength(data.span.bytes.extracting(offset..<end), parameters: p)
            precondition(n > 0)
            out.append(n)
            offset += n
        }
        return out
    }

    /// The documented algorithm, written as plainly as possible.
    static func reference(_ data: ArraySlice<UInt8>, _ p: ChunkerParameters) -> Int {
        if data.count <= p.minSize { return data.count }
        let n = min(data.count, p.maxSize)
        let bits = p.averageSize.trailingZeroBitCount
        let small = ~UInt64(0) << UInt64(64 - (bits + 2))
        let large = ~UInt64(0) << UInt64(64 - (bits - 2))
        var hash: UInt64 = 0
        for i in p.minSize..<n {
            hash = (hash << 1) &+ Chunker.gear[Int(data[data.startIndex + i])]
            if hash & (i < p.averageSize ? small : large) == 0 { return i + 1 }
        }
        return n
    }

    @Test func gearTableIsSplitMix64SeededWithSBKcdc01() {
        var g = TestBytes(seed: 0x5342_4B63_6463_3031)
        let expected = (0..<256).map { _ in g.next() }
        #expect(Chunker.gear == expected)
        #expect(Chunker.gear.count == 256 && Set(Chunker.gear).count == 256)
        #expect(Array("SBKcdc01".utf8) == [0x53, 0x42, 0x4B, 0x63, 0x64, 0x63, 0x30, 0x31])
        // Pinned so that a change to the generator cannot go unnoticed.
        #expect(Chunker.gear[0] == 0x8A12_21B3_16AA_ED66, "\(String(Chunker.gear[0], radix: 16))")
        #expect(Chunker.gear[255] == 0xE7A0_EEA9_573B_91EA, "\(String(Chunker.gear[255], radix: 16))")
    }

    @Test func masksAreTheTopBits() {
        let p = ChunkerParameters.standard
        #expect(p.smallMask == 0xFFFF_0000_0000_0000)
        #expect(p.largeMask == 0xFFF0_0000_0000_0000)
    }

    @Test func matchesThePlainReferenceImplementation() {
        var g = TestBytes(seed: 7)
        let params = [
            ChunkerParameters.standard, ChunkerParameters(minSize: 64, averageSize: 128, maxSize: 256),
            ChunkerParameters(minSize: 1000, averageSize: 2048, maxSize: 9000),
        ]
        for p in params {
            let data = g.bytes(p.maxSize * 40)
            var offset = 0
            while offset < data.count {
                let end = min(data.count, offset + p.maxSize)
                let n = Chunker.chunkLength(data.span.bytes.extracting(offset..<end), parameters: p)
                #expect(n == Self.reference(data[offset..<end], p), "\(p) at \(offset)")
                offset += n
            }
        }
    }

    /// The chunker reads two bytes per turn; every input length (odd and even, either side of the average and
    /// the maximum) must still cut where the one-byte reference does.
    @Test func everyInputLengthMatchesTheReference() {
        var g = TestBytes(seed: 11)
        let p = ChunkerParameters(minSize: 64, averageSize: 128, maxSize: 256)
        for trial in 0..<200 {
            let data = g.bytes(300)
            for count in 60...300 where count % 7 == trial % 7 || count > 250 || count < 70 {
                let n = Chunker.chunkLength(data.span.bytes.extracting(0..<count), parameters: p)
                #expect(n == Self.reference(data[0..<count], p), "trial \(trial), \(count) bytes")
            }
        }
    }

    @Test func shortInputsAreOneChunk() {
        let p = ChunkerParameters.standard
        var g = TestBytes(seed: 1)
        for count in [0, 1, 100, 4095, 4096] {
            let data = g.bytes(count)
            #expect(Chunker.chunkLength(data.span.bytes, parameters: p) == count)
        }
        // Constant input never hits the mask: maxSize, or the whole of a shorter last piece.
        let zeros = [UInt8](repeating: 0, count: 100_000)
        #expect(Chunker.chunkLength(zeros.span.bytes, parameters: p) == 65536)
        #expect(Chunker.chunkLength(zeros.span.bytes.extracting(0..<5000), parameters: p) == 5000)
    }

    @Test func deterministicAndWithinBounds() {
        var g = TestBytes(seed: 2)
        let data = g.bytes(4 << 20)
        let a = Self.lengths(data)
        #expect(a == Self.lengths(data))
        #expect(a.reduce(0, +) == data.count)
        for n in a.dropLast() { #expect(n >= 4096 && n <= 65536) }
        #expect(a.last! >= 1 && a.last! <= 65536)
    }

    @Test func meanChunkSizeIsNearTheAverage() {
        var g = TestBytes(seed: 3)
        for p in [ChunkerParameters.standard, ChunkerParameters(minSize: 2048, averageSize: 8192, maxSize: 32768)] {
            let data = g.bytes(8 << 20)
            let a = Self.lengths(data, p)
            let mean = Double(data.count) / Double(a.count)
            #expect(mean >= 0.75 * Double(p.averageSize) && mean <= 1.5 * Double(p.averageSize), "\(p): \(mean)")
        }
    }

    @Test func insertionChangesAtMostThreeChunks() {
        var g = TestBytes(seed: 4)
        let data = g.bytes(8 << 20)
        var edited = data
        edited.insert(contentsOf: g.bytes(100), at: data.count / 2 + 12345)
        func chunks(_ d: [UInt8]) -> [ArraySlice<UInt8>] {
            var offset = 0
            return Self.lengths(d).map { n in
                defer { offset += n }
                return d[offset..<offset + n]
            }
        }
        let before = Set(chunks(data).map { Array($0) })
        let after = chunks(edited)
        let changed = after.filter { !before.contains(Array($0)) }.count
        #expect(changed <= 3, "\(changed) of \(after.count) chunks changed")
    }

    /// A regression pin: the boundaries of 1 MiB of SplitMix64(seed 42) bytes (each output little-endian) with the
    /// standard sizes, as computed by an independent Python implementation of the documented algorithm.
    @Test func pinnedBoundaries() {
        var g = TestBytes(seed: 42)
        let data = g.bytes(1 << 20)
        #expect(Self.lengths(data) == Self.pinned, "\(Self.lengths(data))")
    }

    static let pinned: [Int] = [
        20575, 17056, 22708, 4970, 23405, 13192, 17582, 7292, 19450, 22038, 17468, 17117, 16965, 6972, 14053, 19949,
        5204, 21844, 22254, 17355, 17117, 21316, 15704, 17012, 7918, 19596, 21392, 17016, 16655, 12365, 21387, 16746,
        19933, 21167, 16859, 16616, 11629, 21234, 19106, 24092, 14270, 22664, 18465, 18031, 31957, 19484, 8383, 21763,
        16880, 27577, 22539, 22939, 14020, 12895, 11980, 5586, 17702, 18004, 19557, 17522, 4049,
    ]

    @Test func textRoundTripsAndRejectsEverythingElse() {
        #expect(ChunkerParameters.standard.text == "fastcdc-1 4096 16384 65536")
        #expect(ChunkerParameters(text: "fastcdc-1 4096 16384 65536") == .standard)
        let small = ChunkerParameters(minSize: 64, averageSize: 128, maxSize: 16_777_216)
        #expect(ChunkerParameters(text: small.text) == small)
        for bad in [
            "", "fastcdc-1", "fastcdc-1 4096 16384", "fastcdc-2 4096 16384 65536", "fastcdc-1  4096 16384 65536",
            "fastcdc-1 4096 16384 65536 ", " fastcdc-1 4096 16384 65536", "fastcdc-1 04096 16384 65536",
            "fastcdc-1 +4096 16384 65536", "fastcdc-1 4096 16000 65536", "fastcdc-1 32 64 65536",
            "fastcdc-1 16384 16384 65536", "fastcdc-1 4096 65536 65536", "fastcdc-1 4096 16384 16777217",
            "fastcdc-1 4096 16384 99999999999999999999", "fastcdc-1 4096 16384 6553a", "FASTCDC-1 4096 16384 65536",
        ] {
            #expect(ChunkerParameters(text: bad) == nil, "\(bad)")
        }
    }
}
