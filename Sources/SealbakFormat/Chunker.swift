/// The sizes of content-defined chunking: no chunk is shorter than `minSize` (but the last) nor longer than
/// `maxSize`; on random input chunks average about `averageSize`.
package struct ChunkerParameters: Sendable, Hashable, CustomStringConvertible {
    package var minSize: Int
    package var averageSize: Int
    package var maxSize: Int

    /// 4 KiB / 16 KiB / 64 KiB.
    package static let standard = ChunkerParameters(minSize: 4096, averageSize: 16384, maxSize: 65536)

    /// The name of the algorithm in `text`: FastCDC with the gear table and masks of `Chunker`.
    package static let algorithm = "fastcdc-1"
    /// The largest `maxSize`: a chunk must fit one literal record (`ChunkRecords.maxLength`).
    package static let maxChunkSize = 1 << 24
    /// The smallest `minSize`: the gear hash's window is 64 bytes.
    package static let minChunkSize = 64

    /// - Precondition: `averageSize` is a power of two and `64 ≤ minSize < averageSize < maxSize ≤ 16 MiB`.
    package init(minSize: Int, averageSize: Int, maxSize: Int) {
        precondition(
            Self.isValid(minSize: minSize, averageSize: averageSize, maxSize: maxSize),
            "chunker sizes \(minSize)/\(averageSize)/\(maxSize) need 64 ≤ min < average < max ≤ 16 MiB, "
                + "average a power of two"
        )
        self.minSize = minSize
        self.averageSize = averageSize
        self.maxSize = maxSize
    }

    private static func isValid(minSize: Int, averageSize: Int, maxSize: Int) -> Bool {
        minChunkSize <= minSize && minSize < averageSize && averageSize < maxSize && maxSize <= maxChunkSize
            && averageSize.nonzeroBitCount == 1
    }

    /// `fastcdc-1 MIN AVG MAX` in decimal, e.g. `fastcdc-1 4096 16384 65536`.
    package var text: String { "\(Self.algorithm) \(minSize) \(averageSize) \(maxSize)" }

    package var description: String { text }

    /// Parses `text` exactly (single spaces, decimal without sign or leading zeros); nil on anything else or on
    /// sizes `init(minSize:averageSize:maxSize:)` would refuse.
    package init?(text: String) {
        let parts = text.utf8.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].elementsEqual(Self.algorithm.utf8) else { return nil }
        var sizes: [Int] = []
        for part in parts[1...] {
            guard !part.isEmpty, part.count <= 9, part.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                part.count == 1 || part.first != 0x30
            else { return nil }
            sizes.append(part.reduce(0) { $0 * 10 + Int($1 - 0x30) })
        }
        guard Self.isValid(minSize: sizes[0], averageSize: sizes[1], maxSize: sizes[2]) else { return nil }
        self.init(minSize: sizes[0], averageSize: sizes[1], maxSize: sizes[2])
    }

    /// log2(averageSize).
    package var averageBits: Int { averageSize.trailingZeroBitCount }

    /// The mask tested before `averageSize` bytes: the top `averageBits + 2` bits of the hash (harder to hit).
    package var smallMask: UInt64 { Chunker.topBits(averageBits + 2) }

    /// The mask tested from `averageSize` bytes on: the top `averageBits - 2` bits of the hash (easier to hit).
    package var largeMask: UInt64 { Chunker.topBits(averageBits - 2) }
}

/// Content-defined chunking: FastCDC (Xia et al., "FastCDC: a Fast and Efficient Content-Defined Chunking
/// Approach", USENIX ATC 2016) with normalized chunking level 2.
///
/// The algorithm, so that another implementation cuts at exactly the same places:
/// - The gear table `gear[0...255]` holds the first 256 outputs of SplitMix64 seeded with
///   `0x5342_4B63_6463_3031` ("SBKcdc01"): for each output, `state += 0x9E37_79B9_7F4A_7C15`, `z = state`,
///   `z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9`, `z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB`,
///   output `z ^ (z >> 31)` (all arithmetic modulo 2^64); `gear[i]` is output i + 1.
/// - A chunk starts at byte 0 of `data`. With `n = min(data.count, maxSize)`: if `data.count ≤ minSize` the chunk is
///   all of it. Otherwise `hash = 0`, and for `i` from `minSize` to `n - 1`: `hash = (hash << 1) + gear[data[i]]`
///   (mod 2^64); the chunk ends after byte `i` (its length is `i + 1`) as soon as `hash & mask == 0`, where `mask`
///   is `smallMask` (the top log2(average) + 2 bits) while `i < averageSize` and `largeMask` (the top
///   log2(average) − 2 bits) from there on. Without such an `i`, the length is `n`.
package enum Chunker {
    /// `n` one-bits at the top of a UInt64.
    package static func topBits(_ n: Int) -> UInt64 { n == 0 ? 0 : ~UInt64(0) << UInt64(64 - n) }

    /// The 256-entry gear table (see the type's documentation).
    package static let gear: [UInt64] = {
        var state: UInt64 = 0x5342_4B63_6463_3031
        return (0..<256).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }()

    /// The length of the chunk that starts at `data[0]`.
    ///
    /// `min(data.count, maxSize)` when `data.count ≤ minSize` or no cut point is found. `data` may be shorter than
    /// `maxSize` only at the end of the input: otherwise the caller passes at least `maxSize` bytes.
    package static func chunkLength(_ data: RawSpan, parameters: ChunkerParameters) -> Int {
        let count = data.byteCount
        if count <= parameters.minSize { return count }
        let end = min(count, parameters.maxSize)
        let normal = min(parameters.averageSize, end)
        let smallMask = parameters.smallMask
        let largeMask = parameters.largeMask
        return gear.withUnsafeBufferPointer { gear in
            data.withUnsafeBytes { bytes in
                let g = gear.baseAddress!
                let p = bytes.baseAddress!
                var hash: UInt64 = 0
                var i = parameters.minSize
                // Two bytes per turn: both positions' hashes are computed from `hash` at once ((h << 1) + g0 and
                // (h << 2) + (g0 << 1) + g1), so the dependency chain is one shift and one add per two bytes instead
                // of per byte. Every position is still checked, in order: the cut points are those of the one-byte
                // loop, bit for bit.
                while i &+ 1 < normal {
                    let g0 = g[Int(p.load(fromByteOffset: i, as: UInt8.self))]
                    let g1 = g[Int(p.load(fromByteOffset: i &+ 1, as: UInt8.self))]
                    let h1 = (hash &<< 1) &+ g0
                    let h2 = (hash &<< 2) &+ ((g0 &<< 1) &+ g1)
                    if h1 & smallMask == 0 { return i &+ 1 }
                    if h2 & smallMask == 0 { return i &+ 2 }
                    hash = h2
                    i &+= 2
                }
                if i < normal {
                    hash = (hash &<< 1) &+ g[Int(p.load(fromByteOffset: i, as: UInt8.self))]
                    if hash & smallMask == 0 { return i &+ 1 }
                    i &+= 1
                }
                while i &+ 1 < end {
                    let g0 = g[Int(p.load(fromByteOffset: i, as: UInt8.self))]
                    let g1 = g[Int(p.load(fromByteOffset: i &+ 1, as: UInt8.self))]
                    let h1 = (hash &<< 1) &+ g0
                    let h2 = (hash &<< 2) &+ ((g0 &<< 1) &+ g1)
                    if h1 & largeMask == 0 { return i &+ 1 }
                    if h2 & largeMask == 0 { return i &+ 2 }
                    hash = h2
                    i &+= 2
                }
                if i < end {
                    hash = (hash &<< 1) &+ g[Int(p.load(fromByteOffset: i, as: UInt8.self))]
                    if hash & largeMask == 0 { return i &+ 1 }
                }
                return end
            }
        }
    }
}
