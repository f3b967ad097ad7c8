internal import CZlib
internal import CZstd

/// Errors from decompressing a frame payload. Messages name the codec and never include data.
package struct CompressionError: Error, Hashable, Sendable, CustomStringConvertible {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}

/// The algorithms of Spec §6.2 (mirrors `CompressionCodec` of the format layer without depending on it).
package enum CompressionAlgorithm: Sendable, Hashable {
    case zstd(level: Int32)
    case zlib(level: Int32)
    case stored
    /// zstd over the 4-byte-shuffled input (`ByteShuffle`): codec 3, only in archives that declare the shuffle
    /// feature (Spec §3.4, §6.2).
    case shuffledZstd(level: Int32)
    /// zstd with the archive's dictionary, at the dictionary's level: codec 4, only in archives that declare the
    /// dictionary feature (Spec §3.4, §6.2).
    case dictionaryZstd(ZstdDictionary)

    package static let zstdLevels: ClosedRange<Int32> = 1...19
    package static let zlibLevels: ClosedRange<Int32> = 1...9
}

/// Compresses one frame at a time with a reusable context. Not thread-safe: one per worker.
package final class FrameCompressor {
    private var cctx: OpaquePointer?
    /// The shuffled copy of the input for `.shuffledZstd`; grows to the largest frame compressed.
    private var scratch = ScratchBuffer()

    package init() {}

    deinit { if let cctx { ZSTD_freeCCtx(cctx) } }

    /// Compresses `input` and appends the result to `output` if it is strictly smaller than the input; the free
    /// capacity of `output` bounds it as well.
    ///
    /// - Returns: the compressed byte count, or nil when compression does not shrink the input (the caller
    ///   then stores the frame raw, Spec §6.2). `output` is then left as it was.
    package func compress(_ input: RawSpan, into output: inout OutputRawSpan, algorithm: CompressionAlgorithm) -> Int? {
        input.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out, initialized in
                let free = UnsafeMutableRawBufferPointer(rebasing: out[initialized...])
                guard let n = compress(input, into: free, algorithm: algorithm) else { return nil }
                initialized += n
                return n
            }
        }
    }

    private func compress(
        _ input: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer,
        algorithm: CompressionAlgorithm
    ) -> Int? {
        guard input.count > 1, let src = input.baseAddress, let dst = output.baseAddress else { return nil }
        let capacity = min(output.count, input.count - 1)
        switch algorithm {
        case .stored:
            return nil
        case .zstd(let level):
            return zstd(src, count: input.count, into: dst, capacity: capacity, level: level)
        case .dictionaryZstd(let dictionary):
            return zstd(src, count: input.count, into: dst, capacity: capacity, dictionary: dictionary)
        case .shuffledZstd(let level):
            let shuffled = scratch.buffer(input.count)
            ByteShuffle.shuffle(input, into: shuffled)
            let out = UnsafeMutableRawBufferPointer(start: dst, count: capacity)
            return zstdByLane(UnsafeRawBufferPointer(shuffled), into: out, level: level)
        case .zlib(let level):
            var destLength = uLongf(capacity)
            let status = compress2(
                dst.assumingMemoryBound(to: Bytef.self),
                &destLength,
                src.assumingMemoryBound(to: Bytef.self),
                uLong(input.count),
                level
            )
            if status != Z_OK || destLength == 0 || Int(destLength) >= input.count { return nil }
            return Int(destLength)
        }
    }

    /// One zstd frame of `count` bytes with the frame size given (`ZSTD_compressCCtx`, Spec §6.2 rule 7); nil when
    /// it does not shrink the input.
    private func zstd(
        _ src: UnsafeRawPointer,
        count: Int,
        into dst: UnsafeMutableRawPointer,
        capacity: Int,
        level: Int32
    ) -> Int? {
        if cctx == nil { cctx = ZSTD_createCCtx() }
        guard let cctx else { return nil }
        let n = ZSTD_compressCCtx(cctx, dst, capacity, src, count, level)
        if ZSTD_isError(n) != 0 || n == 0 || n >= count { return nil }
        return n
    }

    /// One zstd frame of `count` bytes compressed with `dictionary` (Spec §6.2 codec 4): the size pledged (so the frame
    /// is single-segment with Frame_Content_Size), no Dictionary_ID field; nil when it does not shrink the input.
    private func zstd(
        _ src: UnsafeRawPointer,
        count: Int,
        into dst: UnsafeMutableRawPointer,
        capacity: Int,
        dictionary: ZstdDictionary
    ) -> Int? {
        if cctx == nil { cctx = ZSTD_createCCtx() }
        guard let cctx, let cdict = dictionary.compressionDictionary else { return nil }
        ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters)
        defer { ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters) }
        guard ZSTD_isError(ZSTD_CCtx_refCDict(cctx, cdict)) == 0,
            ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_dictIDFlag, 0)) == 0,
            ZSTD_isError(
                // ZSTD_c_forceAttachDict, a C macro for this parameter that Swift does not import.
                ZSTD_CCtx_setParameter(cctx, ZSTD_c_experimentalParam4, Int32(ZSTD_dictForceAttach.rawValue))
            ) == 0,
            ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cctx, UInt64(count))) == 0
        else { return nil }
        let n = ZSTD_compress2(cctx, dst, capacity, src, count)
        if ZSTD_isError(n) != 0 || n == 0 || n >= count { return nil }
        return n
    }

    /// One zstd frame of the shuffled bytes whose blocks end at the lane boundaries (a flush after lanes 0, 1, 2).
    ///
    /// zstd codes the literals of a block with one Huffman table, and a block holds at most 128 KiB: in one shot, a
    /// frame below 512 KiB mixes the compressible sign/exponent lane with the random mantissa lanes in one block,
    /// and shuffling gains ~1% instead of ~8% (Gaussian float32, 64 KiB frames). Flushing per lane gives each lane
    /// its own blocks at every frame size. Still one frame with the size pledged: single-segment, Window_Size and
    /// Frame_Content_Size = the input's size, no dictionary (Spec §6.2 rule 7). nil when it does not shrink.
    private func zstdByLane(
        _ input: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer,
        level: Int32
    ) -> Int? {
        if cctx == nil { cctx = ZSTD_createCCtx() }
        guard let cctx, let src = input.baseAddress, let dst = output.baseAddress else { return nil }
        ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters)
        defer { ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters) }
        guard ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) == 0,
            ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cctx, UInt64(input.count))) == 0
        else { return nil }
        var out = ZSTD_outBuffer(dst: dst, size: output.count, pos: 0)
        let m = input.count / ByteShuffle.laneCount
        for lane in 0..<ByteShuffle.laneCount {
            // The last lane carries the n % 4 tail bytes.
            let lo = lane * m
            let hi = lane == ByteShuffle.laneCount - 1 ? input.count : (lane + 1) * m
            var inBuffer = ZSTD_inBuffer(src: src + lo, size: hi - lo, pos: 0)
            let directive = lane == ByteShuffle.laneCount - 1 ? ZSTD_e_end : ZSTD_e_flush
            while true {
                let remaining = ZSTD_compressStream2(cctx, &out, &inBuffer, directive)
                if ZSTD_isError(remaining) != 0 { return nil }
                if remaining == 0 { break }
                // Output full before the lane is out: the frame would not be smaller than the input.
                if out.pos == out.size { return nil }
            }
        }
        return out.pos > 0 && out.pos < input.count ? out.pos : nil
    }
}

/// A reusable heap buffer owned by one (de)compressor: allocated on first use, grown when a larger frame comes,
/// freed with its owner. Its contents are frame plaintext, which the frame buffers themselves hold as well.
struct ScratchBuffer: ~Copyable {
    private var storage: UnsafeMutableRawBufferPointer?

    /// The first `count` bytes of the buffer (uninitialised on first use), `count` > 0.
    mutating func buffer(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if let storage, storage.count >= count { return UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]) }
        storage?.deallocate()
        let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        storage = grown
        return grown
    }

    deinit { storage?.deallocate() }
}

/// Decompresses one frame at a time into a buffer of exactly the declared raw length.
package final class FrameDecompressor {
    private var dctx: OpaquePointer?
    /// The shuffled bytes of a codec-3 frame before `ByteShuffle.unshuffle`; grows to the largest frame.
    private var scratch = ScratchBuffer()

    package init() {}

    deinit { if let dctx { ZSTD_freeDCtx(dctx) } }

    /// Decompresses a zstd payload: it must be exactly one zstd frame whose header passes `ZstdFrameHeader.check`
    /// and that yields exactly `output.freeCapacity` bytes (Spec §6.2 rule 7, in that order), which are appended
    /// to `output`. Output never exceeds that, so a decompression bomb fails instead of allocating. On failure
    /// `output` is left as it was.
    ///
    /// - Parameter maxWindow: the largest Window_Size accepted: the archive's frame size.
    package func zstd(_ input: RawSpan, into output: inout OutputRawSpan, maxWindow: Int) throws(CompressionError) {
        try input.withUnsafeBytes { input throws(CompressionError) in
            try output.withUnsafeMutableBytes { out, initialized throws(CompressionError) in
                try zstd(
                    input,
                    into: UnsafeMutableRawBufferPointer(rebasing: out[initialized...]),
                    maxWindow: maxWindow
                )
                initialized = out.count
            }
        }
    }

    /// Decompresses a codec-4 payload with the archive's dictionary: one zstd frame, checked exactly as `zstd` checks
    /// it (no Dictionary_ID field either: the dictionary is the archive's), appended to `output` (Spec §6.2).
    package func dictionaryZstd(
        _ input: RawSpan,
        into output: inout OutputRawSpan,
        maxWindow: Int,
        dictionary: ZstdDictionary
    ) throws(CompressionError) {
        try input.withUnsafeBytes { input throws(CompressionError) in
            try output.withUnsafeMutableBytes { out, initialized throws(CompressionError) in
                try zstd(
                    input,
                    into: UnsafeMutableRawBufferPointer(rebasing: out[initialized...]),
                    maxWindow: maxWindow,
                    dictionary: dictionary
                )
                initialized = out.count
            }
        }
    }

    private func zstd(
        _ input: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer,
        maxWindow: Int,
        dictionary: ZstdDictionary? = nil
    ) throws(CompressionError) {
        guard let src = input.baseAddress, input.count > 0, let dst = output.baseAddress else {
            throw CompressionError("empty zstd payload")
        }
        try ZstdFrameHeader.parse(input).check(maxWindow: UInt64(maxWindow), rawLength: UInt64(output.count))
        let frameLength = ZSTD_findFrameCompressedSize(src, input.count)
        if ZSTD_isError(frameLength) != 0 || frameLength != input.count {
            throw CompressionError("zstd payload is not exactly one zstd frame")
        }
        if dctx == nil { dctx = ZSTD_createDCtx() }
        guard let dctx else { throw CompressionError("cannot allocate a zstd context") }
        let n =
            if let dictionary {
                ZSTD_decompress_usingDDict(
                    dctx,
                    dst,
                    output.count,
                    src,
                    input.count,
                    dictionary.decompressionDictionary
                )
            } else {
                ZSTD_decompressDCtx(dctx, dst, output.count, src, input.count)
            }
        if ZSTD_isError(n) != 0 {
            throw CompressionError("zstd payload does not decompress: \(String(cString: ZSTD_getErrorName(n)))")
        }
        if n != output.count {
            throw CompressionError("zstd payload yields \(n) bytes, the frame declares \(output.count)")
        }
    }

    /// Decompresses a codec-3 payload: one zstd frame, checked exactly as `zstd` checks it, whose
    /// `output.freeCapacity` bytes are unshuffled and appended to `output` (Spec §6.2). Memory: one extra buffer
    /// of that size, reused.
    package func shuffledZstd(
        _ input: RawSpan,
        into output: inout OutputRawSpan,
        maxWindow: Int
    ) throws(CompressionError) {
        guard output.freeCapacity > 0 else { throw CompressionError("empty shuffled zstd frame") }
        let shuffled = scratch.buffer(output.freeCapacity)
        try input.withUnsafeBytes { input throws(CompressionError) in
            try zstd(input, into: shuffled, maxWindow: maxWindow)
        }
        ByteShuffle.unshuffle(RawSpan(_unsafeBytes: UnsafeRawBufferPointer(shuffled)), into: &output)
    }

    /// Decompresses a zlib (RFC 1950) payload that must be consumed entirely and yield exactly `output.freeCapacity`
    /// bytes, which are appended to `output`. On failure `output` is left as it was.
    package func zlib(_ input: RawSpan, into output: inout OutputRawSpan) throws(CompressionError) {
        try input.withUnsafeBytes { input throws(CompressionError) in
            try output.withUnsafeMutableBytes { out, initialized throws(CompressionError) in
                try zlib(input, into: UnsafeMutableRawBufferPointer(rebasing: out[initialized...]))
                initialized = out.count
            }
        }
    }

    private func zlib(
        _ input: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(CompressionError) {
        guard let src = input.baseAddress, input.count > 0, let dst = output.baseAddress else {
            throw CompressionError("empty zlib payload")
        }
        var destLength = uLongf(output.count)
        var sourceLength = uLong(input.count)
        let status = uncompress2(
            dst.assumingMemoryBound(to: Bytef.self),
            &destLength,
            src.assumingMemoryBound(to: Bytef.self),
            &sourceLength
        )
        switch status {
        case Z_OK: break
        case Z_BUF_ERROR: throw CompressionError("zlib payload is incomplete or yields more than the frame declares")
        case Z_DATA_ERROR: throw CompressionError("zlib payload is corrupt")
        case Z_MEM_ERROR: throw CompressionError("out of memory while decompressing zlib")
        default: throw CompressionError("zlib error \(status)")
        }
        if Int(sourceLength) != input.count { throw CompressionError("zlib payload has trailing bytes") }
        if Int(destLength) != output.count {
            throw CompressionError("zlib payload yields \(destLength) bytes, the frame declares \(output.count)")
        }
    }
}

/// The header of a Zstandard frame (RFC 8878 §3.1.1.1), read by hand so that every field Spec §6.2 rule 7
/// constrains is visible: libzstd's `ZSTD_getFrameHeader` is outside its stable API and reports an absent
/// Dictionary_ID and a present one of value 0 alike.
package struct ZstdFrameHeader: Hashable, Sendable {
    /// RFC 8878 §3.1.1: 0xFD2FB528, stored little-endian (28 B5 2F FD).
    package static let magic: UInt32 = 0xFD2F_B528

    /// Frame_Header_Descriptor.
    package var descriptor: UInt8
    /// Window_Size in bytes: from Window_Descriptor, or Frame_Content_Size when Single_Segment_Flag is set.
    package var windowSize: UInt64
    /// Size of the Dictionary_ID field (0, 1, 2 or 4 bytes) and its value.
    package var dictionaryIDFieldSize: Int
    package var dictionaryID: UInt32
    /// Frame_Content_Size, when the field is present.
    package var contentSize: UInt64?
    /// Bytes of the header: magic, descriptor, window descriptor, dictionary id, content size.
    package var byteCount: Int

    package var singleSegment: Bool { descriptor & 0x20 != 0 }
    package var hasChecksum: Bool { descriptor & 0x04 != 0 }
    /// Bit 3 of the descriptor, which RFC 8878 reserves (must be 0).
    package var reservedBitSet: Bool { descriptor & 0x08 != 0 }

    /// Reads the frame header at the start of `payload`.
    ///
    /// - Throws: when the payload does not start with the zstd frame magic (a skippable frame included) or ends
    ///   inside the frame header.
    package static func parse(_ payload: RawSpan) throws(CompressionError) -> ZstdFrameHeader {
        try payload.withUnsafeBytes { p throws(CompressionError) in try parse(p) }
    }

    static func parse(_ payload: UnsafeRawBufferPointer) throws(CompressionError) -> ZstdFrameHeader {
        func le(_ at: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(payload[at + i]) << (8 * UInt64(i)) }
            return v
        }
        guard payload.count >= 5 else { throw CompressionError("zstd payload is shorter than a zstd frame header") }
        guard le(0, 4) == UInt64(magic) else {
            throw CompressionError("zstd payload does not start with the zstd frame magic")
        }
        let fhd = payload[4]
        let single = fhd & 0x20 != 0
        let didSize = [0, 1, 2, 4][Int(fhd & 0x03)]
        let fcsSize = [single ? 1 : 0, 2, 4, 8][Int(fhd >> 6)]
        let size = 5 + (single ? 0 : 1) + didSize + fcsSize
        guard payload.count >= size else { throw CompressionError("zstd payload ends inside its frame header") }
        var at = 5
        var window: UInt64 = 0
        if !single {
            let wd = payload[at]
            let windowLog = 10 + UInt64(wd >> 3)
            let base: UInt64 = 1 << windowLog
            window = base + (base / 8) * UInt64(wd & 0x07)
            at += 1
        }
        let did = UInt32(le(at, didSize))
        at += didSize
        var fcs: UInt64? = nil
        if fcsSize > 0 { fcs = le(at, fcsSize) + (fcsSize == 2 ? 256 : 0) }
        if single { window = fcs! }
        return ZstdFrameHeader(
            descriptor: fhd,
            windowSize: window,
            dictionaryIDFieldSize: didSize,
            dictionaryID: did,
            contentSize: fcs,
            byteCount: size
        )
    }

    /// Spec §6.2 rule 7 (b)–(e), in this order: reserved bit clear, no Dictionary_ID field (not even one that holds
    /// 0), Window_Size at most `maxWindow` (the frame size), Frame_Content_Size (if present) equal to `rawLength`.
    package func check(maxWindow: UInt64, rawLength: UInt64) throws(CompressionError) {
        if reservedBitSet { throw CompressionError("zstd frame header has its reserved bit set") }
        if dictionaryIDFieldSize != 0 {
            throw CompressionError(
                "zstd frame names a dictionary (Dictionary_ID field of \(dictionaryIDFieldSize) bytes, value "
                    + "\(dictionaryID)); frames must not have that field"
            )
        }
        if windowSize > maxWindow {
            throw CompressionError(
                "zstd frame asks for a \(windowSize)-byte window, more than the frame size \(maxWindow)"
            )
        }
        if let contentSize, contentSize != rawLength {
            throw CompressionError("zstd frame declares \(contentSize) content bytes, the frame declares \(rawLength)")
        }
    }
}
