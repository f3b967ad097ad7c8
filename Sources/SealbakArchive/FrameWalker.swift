import SealbakFormat
import SealbakIO

/// Walks the frames of one stream (Spec §6.1): reads and checks each cleartext frame header, reads or skips the
/// ciphertext, and hands the frame to the caller, which decrypts it (or not). The one frame loop behind every
/// reading path: sequential reading (Spec §9.2), reading through the index (Spec §8.3), the placement check of
/// Spec §8.3 step 8, and rekey.
struct FrameWalker {
    let input: InputFile
    let frameSize: Int
    /// The archive as errors name it.
    let archive: String

    /// Where the frames of a stream are.
    enum Extent {
        /// From the sequential input's position on; the stream ends with its last frame and running out of input
        /// is truncation (Spec §9.2).
        case sequential
        /// Exactly the absolute byte range `offset ..< offset + length` of a seekable input, as the trailer places
        /// the stream (Spec §8.3): the last frame must end at its end.
        case range(offset: UInt64, length: UInt64)
    }

    /// One frame of the stream.
    struct Frame {
        /// The frame's index in its stream.
        let index: UInt64
        let isLast: Bool
        /// The ciphertext; empty when the walk skips ciphertexts.
        let ciphertext: [UInt8]
        /// Absolute offset of the frame header.
        let offset: UInt64
    }

    /// Calls `body` with every frame of one stream, in order, up to and including its last frame.
    ///
    /// - Parameters:
    ///   - extent: where the stream's frames are.
    ///   - context: the stream as errors name it ("the manifest", "entry 3 (…)", "the trailer").
    ///   - isTrailer: the trailer stream: a frame header the format rejects there is a `trailer` failure (Spec §9),
    ///     not the class the frame-header rule gives.
    ///   - readCiphertext: false skips every ciphertext (streams nobody wants; the placement check).
    ///   - outOfRange: for `.range`: the error for a stream that does not fit its range exactly (the input ends,
    ///     a frame runs past the end, bytes follow the last frame); nil for the errors of Spec §8.3 naming the frame.
    /// - Throws: `SealbakError` with the format class of the first problem, or what `body` throws.
    func walk(
        _ extent: Extent,
        context: String,
        isTrailer: Bool = false,
        readCiphertext: Bool = true,
        outOfRange: (() -> SealbakError)? = nil,
        _ body: (Frame) throws -> Void
    ) throws {
        func fail(_ cls: FormatError.Class, _ message: String, at offset: UInt64) -> SealbakError {
            SealbakError.format(FormatError(cls, message, offset: offset), archive: archive, context: context)
        }
        func header(_ bytes: [UInt8], at offset: UInt64) throws(SealbakError) -> FrameHeader {
            do throws(FormatError) { return try FrameHeader.parse(bytes, frameSize: frameSize) } catch {
                throw fail(isTrailer ? .trailer : error.errorClass, error.message, at: offset)
            }
        }
        let headerLength = FormatV1.frameHeaderByteCount
        var index: UInt64 = 0
        switch extent {
        case .sequential:
            while true {
                let at = input.position
                let headerBytes = try input.read(upTo: headerLength)
                if headerBytes.count < headerLength {
                    throw fail(.truncated, "archive ends where frame \(index) should start", at: at)
                }
                let fh = try header(headerBytes, at: at)
                var ciphertext: [UInt8] = []
                if readCiphertext {
                    ciphertext = try input.read(upTo: fh.ciphertextLength)
                    if ciphertext.count < fh.ciphertextLength {
                        throw fail(.truncated, "archive ends inside frame \(index)", at: input.position)
                    }
                } else if try input.skip(UInt64(fh.ciphertextLength)) < UInt64(fh.ciphertextLength) {
                    throw fail(.truncated, "archive ends inside frame \(index)", at: input.position)
                }
                try body(Frame(index: index, isLast: fh.isLast, ciphertext: ciphertext, offset: at))
                if fh.isLast { return }
                index += 1
                if index >= FormatV1.maxFramesPerStream {
                    throw fail(.payload, "stream has more than 2^32 frames", at: at)
                }
            }
        case .range(let offset, let length):
            func outside(_ cls: FormatError.Class, _ message: String, at offset: UInt64) -> SealbakError {
                outOfRange?() ?? fail(cls, message, at: offset)
            }
            var at = offset
            let end = offset + length
            while true {
                if end - at < UInt64(headerLength) {
                    throw outside(.trailer, "stream ends before its last frame", at: at)
                }
                let headerBytes = try input.read(at: at, count: headerLength)
                if headerBytes.count < headerLength {
                    throw outside(.truncated, "archive ends inside a frame header", at: at)
                }
                let fh = try header(headerBytes, at: at)
                let start = at
                at += UInt64(headerLength)
                if end - at < UInt64(fh.ciphertextLength) {
                    throw outside(.trailer, "frame \(index) runs past the end of its stream", at: at)
                }
                var ciphertext: [UInt8] = []
                if readCiphertext {
                    ciphertext = try input.read(at: at, count: fh.ciphertextLength)
                    if ciphertext.count < fh.ciphertextLength {
                        throw outside(.truncated, "archive ends inside frame \(index)", at: at)
                    }
                }
                at += UInt64(fh.ciphertextLength)
                try body(Frame(index: index, isLast: fh.isLast, ciphertext: ciphertext, offset: start))
                if fh.isLast {
                    if at != end { throw outside(.trailer, "stream has bytes after its last frame", at: at) }
                    return
                }
                index += 1
                if index >= FormatV1.maxFramesPerStream {
                    throw fail(.payload, "stream has more than 2^32 frames", at: at)
                }
            }
        }
    }
}
