import SealbakCompression
import SealbakCrypto
import SealbakFormat
import SealbakIO

/// Seals and opens single frames (Spec §6). Stateless apart from the (de)compressor passed in, so any
/// number of workers can use one value at once.
package struct FrameCodec: Sendable {
    package let suite: CipherSuite
    package let aead: AEAD
    package let archiveID: [UInt8]
    package let frameSize: Int
    /// The features the archive's header declares (Spec §3.4): which codecs its frames may use (codec 3 needs
    /// `.shuffle`), both when frames are sealed and when they are parsed.
    package let features: FormatFeatures

    /// A codec for the archive `header` describes.
    package init(header: ArchiveHeader) throws(SealbakError) {
        try self.init(suite: header.cipherSuite, archiveID: header.archiveID, frameSize: header.frameSize, features: header.features)
    }

    package init(suite: CipherSuite, archiveID: [UInt8], frameSize: Int, features: FormatFeatures) throws(SealbakError) {
        self.suite = suite
        do {
            aead = try AEAD(suite == .aes256gcm ? .aes256gcm : .xchacha20poly1305)
        } catch {
            throw SealbakError(.unsupported, error.message)
        }
        self.archiveID = archiveID
        self.frameSize = frameSize
        self.features = features
    }

    /// Compresses (when it shrinks) and encrypts `raw`, returning frame header ‖ ciphertext.
    ///
    /// One allocation, nothing zero-filled: the payload is compressed (or copied) straight into the output
    /// behind the frame header and prefix, and encrypted in place. `.shuffledZstd` asks for codec 3 (Spec §6.2),
    /// which the archive must declare (`features` contains `.shuffle`); a frame it does not shrink is stored.
    package func seal(
        key: SecureBytes, streamID: UInt32, frameIndex: UInt64, isLast: Bool,
        raw: UnsafeRawBufferPointer, compression: CompressionAlgorithm, compressor: FrameCompressor
    ) -> [UInt8] {
        precondition(raw.count <= frameSize)
        if case .shuffledZstd = compression {
            precondition(features.contains(.shuffle), "codec 3 in an archive that does not declare the shuffle feature")
        }
        let headerCount = FormatV1.frameHeaderByteCount, prefix = FormatV1.framePrefixByteCount
        let capacity = headerCount + prefix + raw.count + AEAD.tagByteCount
        return [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            let out = UnsafeMutableRawBufferPointer(buffer)
            let payload = UnsafeMutableRawBufferPointer(rebasing: out[(headerCount + prefix)..<(headerCount + prefix + raw.count)])
            var codec = CompressionCodec.stored
            var payloadCount = raw.count
            if let compressed = compressor.compress(raw, into: payload, algorithm: compression) {
                payloadCount = compressed
                switch compression {
                case .zstd: codec = .zstd
                case .zlib: codec = .zlib
                case .shuffledZstd: codec = .shuffledZstd
                case .stored: preconditionFailure()
                }
            } else if raw.count > 0 {
                payload.copyMemory(from: raw)
            }
            UnsafeMutableRawBufferPointer(rebasing: out[headerCount..<(headerCount + prefix)])
                .copyBytes(from: FramePlaintext.prefix(codec: codec, rawLength: raw.count))
            count = sealInPlace(key: key, streamID: streamID, frameIndex: frameIndex, isLast: isLast,
                                frame: out, plaintextCount: prefix + payloadCount)
        }
    }

    /// Encrypts an already-built frame plaintext (codec ‖ raw length ‖ payload) as frame `frameIndex` of a
    /// stream: used by rekey, which moves compressed payloads to a new key without recompressing them.
    package func sealEnvelope(key: SecureBytes, streamID: UInt32, frameIndex: UInt64, isLast: Bool, plaintext: [UInt8]) -> [UInt8] {
        let headerCount = FormatV1.frameHeaderByteCount
        return [UInt8](unsafeUninitializedCapacity: headerCount + plaintext.count + AEAD.tagByteCount) { buffer, count in
            let out = UnsafeMutableRawBufferPointer(buffer)
            plaintext.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: out[headerCount...]).copyMemory(from: $0) }
            count = sealInPlace(key: key, streamID: streamID, frameIndex: frameIndex, isLast: isLast,
                                frame: out, plaintextCount: plaintext.count)
        }
    }

    /// `frame` holds room for the frame header, then `plaintextCount` bytes of plaintext, then room for the tag.
    /// Writes the header, encrypts the plaintext in place (libsodium allows output == input) and returns the
    /// frame's length.
    private func sealInPlace(key: SecureBytes, streamID: UInt32, frameIndex: UInt64, isLast: Bool,
                             frame: UnsafeMutableRawBufferPointer, plaintextCount: Int) -> Int {
        let headerCount = FormatV1.frameHeaderByteCount
        let ctLength = plaintextCount + AEAD.tagByteCount
        frame.copyBytes(from: FrameHeader(ciphertextLength: ctLength, isLast: isLast).encoded())
        let nonce = FrameBinding.nonce(suite: suite, streamID: streamID, frameIndex: frameIndex, isLast: isLast)
        let ad = FrameBinding.associatedData(archiveID: archiveID, streamID: streamID, frameIndex: frameIndex, isLast: isLast)
        let body = UnsafeMutableRawBufferPointer(rebasing: frame[headerCount..<(headerCount + ctLength)])
        aead.seal(key: key, nonce: nonce, associatedData: ad,
                  plaintext: UnsafeRawBufferPointer(rebasing: body[0..<plaintextCount]), output: body)
        return headerCount + ctLength
    }

    /// Authenticates and decrypts one frame and checks its plaintext envelope (Spec §6.2) without
    /// decompressing it. Returns the envelope (codec ‖ raw length ‖ payload).
    package func openEnvelope(key: SecureBytes, streamID: UInt32, frameIndex: UInt64, isLast: Bool, ciphertext: [UInt8]) throws(FormatError) -> [UInt8] {
        try openAndParse(key: key, streamID: streamID, frameIndex: frameIndex, isLast: isLast, ciphertext: ciphertext).plain
    }

    /// Authenticates, decrypts and parses the envelope once; both `openEnvelope` and `open` build on it.
    private func openAndParse(key: SecureBytes, streamID: UInt32, frameIndex: UInt64, isLast: Bool, ciphertext: [UInt8]) throws(FormatError) -> (plain: [UInt8], envelope: FramePlaintext) {
        let nonce = FrameBinding.nonce(suite: suite, streamID: streamID, frameIndex: frameIndex, isLast: isLast)
        let ad = FrameBinding.associatedData(archiveID: archiveID, streamID: streamID, frameIndex: frameIndex, isLast: isLast)
        var authFailed = false
        // Uninitialised: libsodium writes every byte when the tag verifies; when it does not, the buffer is
        // reported empty and dropped.
        let plain = ciphertext.withUnsafeBytes { c in
            [UInt8](unsafeUninitializedCapacity: c.count - AEAD.tagByteCount) { p, count in
                do {
                    try aead.open(key: key, nonce: nonce, associatedData: ad, ciphertext: c, output: UnsafeMutableRawBufferPointer(p))
                    count = c.count - AEAD.tagByteCount
                } catch {
                    authFailed = true
                    count = 0
                }
            }
        }
        if authFailed {
            throw FormatError(.payload, "frame \(frameIndex) failed authentication (wrong position, altered, or from another archive)")
        }
        let parsed = plain.withUnsafeBytes { p in
            Result { () throws(FormatError) in
                try FramePlaintext.parse(p, frameSize: frameSize, frameIndex: frameIndex, isLast: isLast, features: features)
            }
        }
        return (plain, try parsed.get())
    }

    /// Authenticates, decrypts and decompresses one frame's ciphertext (codec 3: and unshuffles it; it is a codec only
    /// when `features` has `.shuffle`). Releases nothing unless the tag verifies.
    package func open(
        key: SecureBytes, streamID: UInt32, frameIndex: UInt64, isLast: Bool,
        ciphertext: [UInt8], decompressor: FrameDecompressor
    ) throws(FormatError) -> [UInt8] {
        var (plain, env) = try openAndParse(key: key, streamID: streamID, frameIndex: frameIndex, isLast: isLast, ciphertext: ciphertext)
        switch env.codec {
        case .stored:
            // The payload moves to the front of the same buffer: no second allocation.
            plain.removeSubrange(0..<env.payload.lowerBound)
            return plain
        case .zstd, .zlib, .shuffledZstd:
            var failure: CompressionError?
            let raw = plain.withUnsafeBytes { p in
                [UInt8](unsafeUninitializedCapacity: env.rawLength) { r, count in
                    let payload = UnsafeRawBufferPointer(rebasing: p[env.payload])
                    let output = UnsafeMutableRawBufferPointer(r)
                    do throws(CompressionError) {
                        switch env.codec {
                        case .zstd: try decompressor.zstd(payload, into: output, maxWindow: frameSize)
                        case .shuffledZstd: try decompressor.shuffledZstd(payload, into: output, maxWindow: frameSize)
                        case .zlib: try decompressor.zlib(payload, into: output)
                        case .stored: preconditionFailure()
                        }
                        count = env.rawLength
                    } catch {
                        failure = error
                        count = 0
                    }
                }
            }
            if let failure { throw FormatError(.payload, "frame \(frameIndex): \(failure.message)") }
            return raw
        }
    }
}
