import SealbakCompression
import SealbakCrypto
import SealbakFormat

extension FrameCodec {
    /// Seals the end of an archive: `trailer` as the trailer stream (Spec §8.1), in frames of at most the frame
    /// size, then the footer that points to it (Spec §8.2). The one way the writer and rekey end an archive.
    ///
    /// - Parameters:
    ///   - trailer: the complete trailer; its `trailerOffset` (where the trailer stream starts, counted from the
    ///     end of the header) goes into the footer.
    ///   - key: the trailer stream's key.
    ///   - compression: how the frames are compressed (`.stored` keeps them uncompressed).
    ///   - write: receives each frame, then the footer, in order.
    /// - Returns: the length of the trailer stream (the footer's `trailer_length`).
    func sealTrailer(
        _ trailer: Trailer,
        key: SecureBytes,
        compression: CompressionAlgorithm,
        compressor: FrameCompressor,
        write: ([UInt8]) throws -> Void
    ) rethrows -> UInt64 {
        let bytes = trailer.encoded()
        let count = Int(FormatV1.frameCount(size: UInt64(bytes.count), frameSize: frameSize))
        var length: UInt64 = 0
        for i in 0..<count {
            let lo = i * frameSize
            let hi = min(bytes.count, lo + frameSize)
            let frame = seal(
                key: key,
                streamID: FormatV1.trailerStreamID,
                frameIndex: UInt64(i),
                isLast: i == count - 1,
                raw: bytes.span.bytes.extracting(lo..<hi),
                compression: compression,
                compressor: compressor
            )
            try write(frame)
            length += UInt64(frame.count)
        }
        try write(Footer(trailerOffset: trailer.trailerOffset, trailerLength: length).encoded())
        return length
    }
}
