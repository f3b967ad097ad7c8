/// The 4-byte cleartext frame header (Spec §6.1): bit 31 is the last-frame flag, bits 0–30 the ciphertext length.
package struct FrameHeader: Hashable, Sendable {
    package var ciphertextLength: Int
    package var isLast: Bool

    package init(ciphertextLength: Int, isLast: Bool) {
        self.ciphertextLength = ciphertextLength
        self.isLast = isLast
    }

    /// Smallest valid ciphertext: codec byte, raw length, empty payload, tag.
    package static let minCiphertextLength = FormatV1.framePrefixByteCount + FormatV1.tagByteCount

    package static func maxCiphertextLength(frameSize: Int) -> Int {
        FormatV1.framePrefixByteCount + frameSize + FormatV1.tagByteCount
    }

    package func encoded() -> [UInt8] {
        let word = UInt32(ciphertextLength) | (isLast ? 0x8000_0000 : 0)
        return .le(UInt64(word), count: 4)
    }

    /// Decodes and range-checks a frame header from the first 4 bytes of `bytes`.
    ///
    /// - Precondition: `bytes` holds at least 4 bytes.
    package static func parse(_ bytes: RawSpan, frameSize: Int) throws(FormatError) -> FrameHeader {
        precondition(bytes.byteCount >= 4)
        let word = UInt32(littleEndian: bytes.unsafeLoadUnaligned(as: UInt32.self))
        let length = Int(word & 0x7FFF_FFFF)
        guard length >= minCiphertextLength, length <= maxCiphertextLength(frameSize: frameSize) else {
            throw FormatError(
                .payload,
                "frame length \(length) is outside "
                    + "\(minCiphertextLength)...\(maxCiphertextLength(frameSize: frameSize))"
            )
        }
        return FrameHeader(ciphertextLength: length, isLast: word & 0x8000_0000 != 0)
    }

    package static func parse(_ bytes: [UInt8], frameSize: Int) throws(FormatError) -> FrameHeader {
        try parse(bytes.span.bytes, frameSize: frameSize)
    }
}

/// Nonce and associated data of one frame (Spec §6.3).
package enum FrameBinding {
    /// The 12-byte STREAM nonce: LE32(stream id) ‖ LE64(frame index | last << 63).
    package static func nonce12(streamID: UInt32, frameIndex: UInt64, isLast: Bool) -> [UInt8] {
        precondition(frameIndex < FormatV1.maxFramesPerStream)
        let word = frameIndex | (isLast ? 1 << 63 : 0)
        return .le(UInt64(streamID), count: 4) + .le(word, count: 8)
    }

    /// The nonce for a cipher suite: the 12-byte STREAM nonce, zero-padded to 24 bytes for XChaCha20.
    package static func nonce(suite: CipherSuite, streamID: UInt32, frameIndex: UInt64, isLast: Bool) -> [UInt8] {
        let n = nonce12(streamID: streamID, frameIndex: frameIndex, isLast: isLast)
        switch suite {
        case .aes256gcm: return n
        case .xchacha20poly1305: return n + [UInt8](repeating: 0, count: 12)
        }
    }

    /// AAD = archive id ‖ LE32(stream id) ‖ LE64(frame index) ‖ u8(last).
    package static func associatedData(
        archiveID: [UInt8],
        streamID: UInt32,
        frameIndex: UInt64,
        isLast: Bool
    ) -> [UInt8] {
        archiveID + .le(UInt64(streamID), count: 4) + .le(frameIndex, count: 8) + [isLast ? 1 : 0]
    }
}

/// The decrypted frame plaintext: codec ‖ LE32(raw length) ‖ payload (Spec §6.2).
package struct FramePlaintext: Sendable {
    package var codec: CompressionCodec
    package var rawLength: Int
    /// Range of the payload inside the buffer it was parsed from.
    package var payload: Range<Int>

    /// Validates the envelope of a decrypted frame against the canonical rules of Spec §6.2.
    ///
    /// - Parameter features: the features the archive's header declares (Spec §3.4): codec 3 is a codec only
    ///   in an archive that declares `.shuffle`; anywhere else it fails rule 1 like an unknown codec.
    package static func parse(
        _ plaintext: RawSpan,
        frameSize: Int,
        frameIndex: UInt64,
        isLast: Bool,
        features: FormatFeatures
    ) throws(FormatError) -> FramePlaintext {
        try plaintext.withUnsafeBytes { plaintext throws(FormatError) in
            try parse(plaintext, frameSize: frameSize, frameIndex: frameIndex, isLast: isLast, features: features)
        }
    }

    private static func parse(
        _ plaintext: UnsafeRawBufferPointer,
        frameSize: Int,
        frameIndex: UInt64,
        isLast: Bool,
        features: FormatFeatures
    ) throws(FormatError) -> FramePlaintext {
        guard plaintext.count >= FormatV1.framePrefixByteCount else {
            throw FormatError(.payload, "frame plaintext shorter than its 5-byte prefix")
        }
        guard let codec = CompressionCodec(rawValue: plaintext[0]) else {
            throw FormatError(.payload, "unknown compression codec \(plaintext[0])")
        }
        guard features.isSuperset(of: codec.requiredFeatures) else {
            throw FormatError(
                .payload,
                "codec \(codec.rawValue) (\(codec.name)) needs feature \(codec.requiredFeatures), which this "
                    + "archive's header does not declare"
            )
        }
        let raw = Int(plaintext[1]) | Int(plaintext[2]) << 8 | Int(plaintext[3]) << 16 | Int(plaintext[4]) << 24
        let payloadLength = plaintext.count - FormatV1.framePrefixByteCount
        guard raw <= frameSize else {
            throw FormatError(.payload, "frame raw length \(raw) exceeds the frame size \(frameSize)")
        }
        if !isLast && raw != frameSize {
            throw FormatError(
                .payload,
                "a frame that is not the last must hold exactly \(frameSize) bytes, holds \(raw)"
            )
        }
        if raw == 0 && (frameIndex != 0 || codec != .stored) {
            throw FormatError(.payload, "an empty frame is allowed only as the single stored frame of an empty stream")
        }
        switch codec {
        case .stored:
            guard payloadLength == raw else {
                throw FormatError(.payload, "stored frame payload is \(payloadLength) bytes, raw length says \(raw)")
            }
        case .zstd, .zlib, .shuffledZstd, .dictionaryZstd:
            guard payloadLength >= 1, payloadLength < raw else {
                throw FormatError(
                    .payload,
                    "compressed frame payload (\(payloadLength) bytes) is not smaller than its raw length \(raw)"
                )
            }
        }
        return FramePlaintext(codec: codec, rawLength: raw, payload: FormatV1.framePrefixByteCount..<plaintext.count)
    }

    package static func prefix(codec: CompressionCodec, rawLength: Int) -> [UInt8] {
        [codec.rawValue] + .le(UInt64(rawLength), count: 4)
    }
}

extension FormatV1 {
    /// Number of frames of a stream holding `size` plaintext bytes: max(1, ceil(size / frameSize)).
    package static func frameCount(size: UInt64, frameSize: Int) -> UInt64 {
        // (size - 1) / frameSize + 1 cannot overflow, unlike (size + frameSize - 1) / frameSize (found by fuzzing).
        size == 0 ? 1 : (size - 1) / UInt64(frameSize) + 1
    }
}
