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

    package static let zstdLevels: ClosedRange<Int32> = 1...19
    package static let zlibLevels: ClosedRange<Int32> = 1...9
}

/// Compresses one frame at a time with a reusable context. Not thread-safe: one per worker.
package final class FrameCompressor {
    private var cctx: OpaquePointer?

    package init() {}

    deinit { if let cctx { ZSTD_freeCCtx(cctx) } }

    /// Compresses `input` into `output` if the result is strictly smaller than the input.
    ///
    /// - Returns: the compressed byte count, or nil when compression does not shrink the input (the caller
    ///   then stores the frame raw, Spec §6.2).
    package func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, algorithm: CompressionAlgorithm) -> Int? {
        guard input.count > 1, let src = input.baseAddress, let dst = output.baseAddress else { return nil }
        let capacity = min(output.count, input.count - 1)
        switch algorithm {
        case .stored:
            return nil
        case .zstd(let level):
            if cctx == nil { cctx = ZSTD_createCCtx() }
            guard let cctx else { return nil }
            let n = ZSTD_compressCCtx(cctx, dst, capacity, src, input.count, level)
            if ZSTD_isError(n) != 0 || n == 0 || n >= input.count { return nil }
            return n
        case .zlib(let level):
            var destLength = uLongf(capacity)
            let status = compress2(dst.assumingMemoryBound(to: Bytef.self), &destLength, src.assumingMemoryBound(to: Bytef.self), uLong(input.count), level)
            if status != Z_OK || destLength == 0 || Int(destLength) >= input.count { return nil }
            return Int(destLength)
        }
    }
}

/// Decompresses one frame at a time into a buffer of exactly the declared raw length.
package final class FrameDecompressor {
    private var dctx: OpaquePointer?

    package init() {}

    deinit { if let dctx { ZSTD_freeDCtx(dctx) } }

    /// Decompresses a zstd payload: it must be exactly one zstd frame that yields exactly `output.count` bytes.
    /// Output never exceeds `output.count`, so a decompression bomb fails instead of allocating.
    package func zstd(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(CompressionError) {
        guard let src = input.baseAddress, input.count > 0, let dst = output.baseAddress else { throw CompressionError("empty zstd payload") }
        let frameLength = ZSTD_findFrameCompressedSize(src, input.count)
        if ZSTD_isError(frameLength) != 0 || frameLength != input.count {
            throw CompressionError("zstd payload is not exactly one zstd frame")
        }
        if dctx == nil { dctx = ZSTD_createDCtx() }
        guard let dctx else { throw CompressionError("cannot allocate a zstd context") }
        let n = ZSTD_decompressDCtx(dctx, dst, output.count, src, input.count)
        if ZSTD_isError(n) != 0 {
            throw CompressionError("zstd payload does not decompress: \(String(cString: ZSTD_getErrorName(n)))")
        }
        if n != output.count { throw CompressionError("zstd payload yields \(n) bytes, the frame declares \(output.count)") }
    }

    /// Decompresses a zlib (RFC 1950) payload that must be consumed entirely and yield exactly `output.count` bytes.
    package func zlib(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(CompressionError) {
        guard let src = input.baseAddress, input.count > 0, let dst = output.baseAddress else { throw CompressionError("empty zlib payload") }
        var destLength = uLongf(output.count)
        var sourceLength = uLong(input.count)
        let status = uncompress2(dst.assumingMemoryBound(to: Bytef.self), &destLength, src.assumingMemoryBound(to: Bytef.self), &sourceLength)
        switch status {
        case Z_OK: break
        case Z_BUF_ERROR: throw CompressionError("zlib payload is incomplete or yields more than the frame declares")
        case Z_DATA_ERROR: throw CompressionError("zlib payload is corrupt")
        case Z_MEM_ERROR: throw CompressionError("out of memory while decompressing zlib")
        default: throw CompressionError("zlib error \(status)")
        }
        if Int(sourceLength) != input.count { throw CompressionError("zlib payload has trailing bytes") }
        if Int(destLength) != output.count { throw CompressionError("zlib payload yields \(destLength) bytes, the frame declares \(output.count)") }
    }
}
