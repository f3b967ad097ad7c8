/// The 4-lane byte shuffle of codec 3 (Spec §6.2), as in the shuffle filters of Blosc and HDF5.
///
/// For `n` bytes and `m = n / 4`, byte `b` of every 4-byte number goes to lane `b`:
/// `shuffled[b·m + i] = raw[4i + b]`; the last `n % 4` bytes stay where they are. Arrays of float32 or int32
/// then have their sign and exponent bytes side by side, which zstd compresses much better.
///
/// Both directions run on raw buffers without allocating: 8 numbers (32 bytes) per step as four 64-bit words,
/// each pair of words transposed as two 4×4 byte matrices with shifts and masks (several GB/s on one core,
/// docs/benchmark-2026-11-30-shuffle.md), then a byte loop for the last numbers and the tail.
package enum ByteShuffle {
    /// Bytes per number: the lane count.
    package static let laneCount = 4

    /// Appends the shuffle of `input` to `output` (Spec §6.2 `Shuffle`).
    ///
    /// - Precondition: `output` has room for `input.byteCount` more bytes.
    package static func shuffle(_ input: RawSpan, into output: inout OutputRawSpan) {
        append(input, to: &output, transform: shuffle)
    }

    /// Runs `transform` from `input` into the next `input.byteCount` bytes of `output`, which it initialises.
    private static func append(
        _ input: RawSpan,
        to output: inout OutputRawSpan,
        transform: (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Void
    ) {
        input.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out, initialized in
                precondition(out.count - initialized >= input.count, "the output needs room for the input's size")
                transform(
                    input,
                    UnsafeMutableRawBufferPointer(rebasing: out[initialized..<(initialized + input.count)])
                )
                initialized += input.count
            }
        }
    }

    /// The buffers do not overlap.
    static func shuffle(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count == input.count, "shuffle needs an output of the input's size")
        let n = input.count
        let m = n / laneCount
        guard let src = input.baseAddress, let out = output.baseAddress else { return }
        let l0 = out
        let l1 = out + m
        let l2 = out + 2 * m
        let l3 = out + 3 * m
        var i = 0
        while i + 8 <= m {
            // Numbers i ..< i+4 in (x1, y1), i+4 ..< i+8 in (x2, y2); after the transposes x holds lanes 0 and 1,
            // y lanes 2 and 3, 4 bytes each (low half: lane 0 or 2).
            var x1 = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt64.self))
            var y1 = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i + 8, as: UInt64.self))
            var x2 = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i + 16, as: UInt64.self))
            var y2 = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i + 24, as: UInt64.self))
            transpose4x4(&x1, &y1)
            transpose4x4(&x2, &y2)
            l0.storeBytes(of: (x1 & 0xFFFF_FFFF | x2 << 32).littleEndian, toByteOffset: i, as: UInt64.self)
            l1.storeBytes(of: (x1 >> 32 | (x2 >> 32) << 32).littleEndian, toByteOffset: i, as: UInt64.self)
            l2.storeBytes(of: (y1 & 0xFFFF_FFFF | y2 << 32).littleEndian, toByteOffset: i, as: UInt64.self)
            l3.storeBytes(of: (y1 >> 32 | (y2 >> 32) << 32).littleEndian, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < m {
            l0.storeBytes(of: src.load(fromByteOffset: 4 * i, as: UInt8.self), toByteOffset: i, as: UInt8.self)
            l1.storeBytes(of: src.load(fromByteOffset: 4 * i + 1, as: UInt8.self), toByteOffset: i, as: UInt8.self)
            l2.storeBytes(of: src.load(fromByteOffset: 4 * i + 2, as: UInt8.self), toByteOffset: i, as: UInt8.self)
            l3.storeBytes(of: src.load(fromByteOffset: 4 * i + 3, as: UInt8.self), toByteOffset: i, as: UInt8.self)
            i += 1
        }
        for j in (4 * m)..<n { output[j] = input[j] }
    }

    /// Appends the unshuffle of `input` to `output` (Spec §6.2 `Unshuffle`): the inverse of `shuffle`.
    ///
    /// - Precondition: `output` has room for `input.byteCount` more bytes.
    package static func unshuffle(_ input: RawSpan, into output: inout OutputRawSpan) {
        append(input, to: &output, transform: unshuffle)
    }

    /// The buffers do not overlap.
    static func unshuffle(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count == input.count, "unshuffle needs an output of the input's size")
        let n = input.count
        let m = n / laneCount
        guard let src = input.baseAddress, let out = output.baseAddress else { return }
        let l0 = src
        let l1 = src + m
        let l2 = src + 2 * m
        let l3 = src + 3 * m
        var i = 0
        while i + 8 <= m {
            let a = UInt64(littleEndian: l0.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let b = UInt64(littleEndian: l1.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let c = UInt64(littleEndian: l2.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let d = UInt64(littleEndian: l3.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            // The transpose is its own inverse: rebuild the shuffle's (x, y) pairs and transpose them back.
            var x1 = a & 0xFFFF_FFFF | b << 32
            var y1 = c & 0xFFFF_FFFF | d << 32
            var x2 = a >> 32 | (b >> 32) << 32
            var y2 = c >> 32 | (d >> 32) << 32
            transpose4x4(&x1, &y1)
            transpose4x4(&x2, &y2)
            out.storeBytes(of: x1.littleEndian, toByteOffset: 4 * i, as: UInt64.self)
            out.storeBytes(of: y1.littleEndian, toByteOffset: 4 * i + 8, as: UInt64.self)
            out.storeBytes(of: x2.littleEndian, toByteOffset: 4 * i + 16, as: UInt64.self)
            out.storeBytes(of: y2.littleEndian, toByteOffset: 4 * i + 24, as: UInt64.self)
            i += 8
        }
        while i < m {
            out.storeBytes(of: l0.load(fromByteOffset: i, as: UInt8.self), toByteOffset: 4 * i, as: UInt8.self)
            out.storeBytes(of: l1.load(fromByteOffset: i, as: UInt8.self), toByteOffset: 4 * i + 1, as: UInt8.self)
            out.storeBytes(of: l2.load(fromByteOffset: i, as: UInt8.self), toByteOffset: 4 * i + 2, as: UInt8.self)
            out.storeBytes(of: l3.load(fromByteOffset: i, as: UInt8.self), toByteOffset: 4 * i + 3, as: UInt8.self)
            i += 1
        }
        for j in (4 * m)..<n { output[j] = input[j] }
    }

    /// `shuffle` into a new array.
    package static func shuffled(_ bytes: [UInt8]) -> [UInt8] {
        [UInt8](byteCapacity: bytes.count) { out in shuffle(bytes.span.bytes, into: &out) }
    }

    /// `unshuffle` into a new array.
    package static func unshuffled(_ bytes: [UInt8]) -> [UInt8] {
        [UInt8](byteCapacity: bytes.count) { out in unshuffle(bytes.span.bytes, into: &out) }
    }

    /// Transposes the 4×4 byte matrix whose rows are four little-endian numbers: `x` holds rows 0 and 1 (bytes
    /// 0–3 and 4–7), `y` rows 2 and 3. Afterwards `x` holds columns 0 and 1, `y` columns 2 and 3. Two steps:
    /// swap the off-diagonal 2×2 blocks (16-bit halves), then transpose each 2×2 block (single bytes).
    @inline(__always)
    private static func transpose4x4(_ x: inout UInt64, _ y: inout UInt64) {
        let t = (x >> 16 ^ y) & 0x0000_FFFF_0000_FFFF
        y ^= t
        x ^= t << 16
        let u = (x >> 24 ^ x) & 0x0000_0000_FF00_FF00
        x ^= u ^ u << 24
        let v = (y >> 24 ^ y) & 0x0000_0000_FF00_FF00
        y ^= v ^ v << 24
    }
}
