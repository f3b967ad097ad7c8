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
    /// The archive's zstd dictionary (Spec §6.2 codec 4, §7.4): known once the manifest is read, so a manifest frame
    /// can never use it.
    package private(set) var dictionary: ZstdDictionary?

    /// A codec for the archive `header` describes.
    package init(header: ArchiveHeader) throws(SealbakError) {
        try self.init(
            suite: header.cipherSuite,
            archiveID: header.archiveID,
            frameSize: header.frameSize,
            features: header.features
        )
    }

    package init(suite: CipherSuite, archiveID: [UInt8], frameSize: Int, features: FormatFeatures) throws(SealbakError)
    {
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

    /// This codec with the archive's dictionary, which only an archive that declares the dictionary feature has.
    package func with(dictionary: ZstdDictionary) -> FrameCodec {
        precondition(features.contains(.dictionary))
        var c = self
        c.dictionary = dictionary
        return c
    }

    /// Compresses (when it shrinks) and encrypts `raw`, returning frame header ‖ ciphertext.
    ///
    /// One allocation, nothing zero-filled: the payload is compressed (or copied) straight into the output
    /// behind the frame header and prefix, and encrypted in place. `.shuffledZstd` asks for codec 3 (Spec §6.2),
    /// which the archive must declare (`features` contains `.shuffle`); a frame it does not shrink is stored.
    package func seal(
        key: SecureBytes,
        streamID: UInt32,
        frameIndex: UInt64,
        isLast: Bool,
        raw: RawSpan,
        compression: CompressionAlgorithm,
        compressor: FrameCompressor
    ) -> [UInt8] {
        precondition(raw.byteCount <= frameSize)
        var compression = compression
        switch compression {
        case .shuffledZstd:
            precondition(features.contains(.shuffle), "codec 3 in an archive that does not declare the shuffle feature")
        case .dictionaryZstd(let d):
            precondition(features.contains(.dictionary), "codec 4 in an archive without the dictionary feature")
            // A full frame has history enough of its own: the dictionary is for small files and last frames.
            if raw.byteCount == frameSize { compression = .zstd(level: d.level) }
        default: break
        }
        let headerCount = FormatV1.frameHeaderByteCount
        let prefix = FormatV1.framePrefixByteCount
        let rawCount = raw.byteCount
        return [UInt8](byteCapacity: headerCount + prefix + rawCount + AEAD.tagByteCount) { frame in
            // Header room first: its length is known only once the payload is.
            frame.append(repeating: 0, count: headerCount, as: UInt8.self)
            let prefixStart = frame.byteCount
            frame.append(repeating: 0, count: prefix, as: UInt8.self)
            var codec = CompressionCodec.stored
            if compressor.compress(raw, into: &frame, algorithm: compression) != nil {
                switch compression {
                case .zstd: codec = .zstd
                case .zlib: codec = .zlib
                case .shuffledZstd: codec = .shuffledZstd
                case .dictionaryZstd: codec = .dictionaryZstd
                case .stored: preconditionFailure()
                }
            } else if rawCount > 0 {
                raw.withUnsafeBytes { r in
                    frame.withUnsafeMutableBytes { out, initialized in
                        UnsafeMutableRawBufferPointer(rebasing: out[initialized..<(initialized + r.count)])
                            .copyMemory(from: r)
                        initialized += r.count
                    }
                }
            }
            frame.withUnsafeMutableBytes { out, _ in
                UnsafeMutableRawBufferPointer(rebasing: out[prefixStart..<(prefixStart + prefix)])
                    .copyBytes(from: FramePlaintext.prefix(codec: codec, rawLength: rawCount))
            }
            sealInPlace(key: key, streamID: streamID, frameIndex: frameIndex, isLast: isLast, frame: &frame)
        }
    }

    /// Encrypts an already-built frame plaintext (codec ‖ raw length ‖ payload) as frame `frameIndex` of a
    /// stream: used by rekey, which moves compressed payloads to a new key without recompressing them.
    package func sealEnvelope(
        key: SecureBytes,
        streamID: UInt32,
        frameIndex: UInt64,
        isLast: Bool,
        plaintext: [UInt8]
    ) -> [UInt8] {
        let headerCount = FormatV1.frameHeaderByteCount
        return [UInt8](byteCapacity: headerCount + plaintext.count + AEAD.tagByteCount) { frame in
            frame.append(repeating: 0, count: headerCount, as: UInt8.self)
            plaintext.withUnsafeBytes { p in
                frame.withUnsafeMutableBytes { out, initialized in
                    UnsafeMutableRawBufferPointer(rebasing: out[initialized..<(initialized + p.count)])
                        .copyMemory(from: p)
                    initialized += p.count
                }
            }
            sealInPlace(key: key, streamID: streamID, frameIndex: frameIndex, isLast: isLast, frame: &frame)
        }
    }

    /// `frame` holds room for the frame header, then the plaintext, and has room left for the tag. Encrypts the
    /// plaintext in place, appends the tag and writes the header.
    private func sealInPlace(
        key: SecureBytes,
        streamID: UInt32,
        frameIndex: UInt64,
        isLast: Bool,
        frame: inout OutputRawSpan
    ) {
        let headerCount = FormatV1.frameHeaderByteCount
        let ctLength = frame.byteCount - headerCount + AEAD.tagByteCount
        let nonce = FrameBinding.nonce(suite: suite, streamID: streamID, frameIndex: frameIndex, isLast: isLast)
        let ad = FrameBinding.associatedData(
            archiveID: archiveID,
            streamID: streamID,
            frameIndex: frameIndex,
            isLast: isLast
        )
        frame.withUnsafeMutableBytes { out, initialized in
            // The body is an OutputRawSpan of its own whose initialised bytes are the plaintext.
            let bodyRegion = UnsafeMutableRawBufferPointer(rebasing: out[headerCount...])
            var body = OutputRawSpan(buffer: bodyRegion, initializedCount: initialized - headerCount)
            aead.sealInPlace(key: key, nonce: nonce, associatedData: ad, &body)
            initialized = headerCount + body.finalize(for: bodyRegion)
            UnsafeMutableRawBufferPointer(rebasing: out[0..<headerCount])
                .copyBytes(from: FrameHeader(ciphertextLength: ctLength, isLast: isLast).encoded())
        }
    }

    /// Authenticates and decrypts one frame and checks its plaintext envelope (Spec §6.2) without
    /// decompressing it. Returns the envelope (codec ‖ raw length ‖ payload).
    package func openEnvelope(
        key: SecureBytes,
        streamID: UInt32,
        frameIndex: UInt64,
        isLast: Bool,
        ciphertext: [UInt8]
    ) throws(FormatError) -> [UInt8] {
        try openAndParse(key: key, streamID: streamID, frameIndex: frameIndex, isLast: isLast, ciphertext: ciphertext)
            .plain
    }

    /// Authenticates, decrypts and parses the envelope once; both `openEnvelope` and `open` build on it.
    private func openAndParse(
        key: SecureBytes,
        streamID: UInt32,
        frameIndex: UInt64,
        isLast: Bool,
        ciphertext: [UInt8]
    ) throws(FormatError) -> (plain: [UInt8], envelope: FramePlaintext) {
        let nonce = FrameBinding.nonce(suite: suite, streamID: streamID, frameIndex: frameIndex, isLast: isLast)
        let ad = FrameBinding.associatedData(
            archiveID: archiveID,
            streamID: streamID,
            frameIndex: frameIndex,
            isLast: isLast
        )
        // Uninitialised: libsodium writes every byte when the tag verifies; when it does not, nothing is appended
        // and the buffer is dropped.
        let plain: [UInt8]
        do {
            plain = try [UInt8](byteCapacity: ciphertext.count - AEAD.tagByteCount) { out throws(CryptoError) in
                try aead.open(key: key, nonce: nonce, associatedData: ad, ciphertext: ciphertext.span.bytes, into: &out)
            }
        } catch {
            throw FormatError(
                .payload,
                "frame \(frameIndex) failed authentication (wrong position, altered, or from another archive)"
            )
        }
        let envelope = try FramePlaintext.parse(
            plain.span.bytes,
            frameSize: frameSize,
            frameIndex: frameIndex,
            isLast: isLast,
            features: features
        )
        return (plain, envelope)
    }

    /// Authenticates, decrypts and decompresses one frame's ciphertext (codec 3: and unshuffles it; it is a codec only
    /// when `features` has `.shuffle`). Releases nothing unless the tag verifies.
    package func open(
        key: SecureBytes,
        streamID: UInt32,
        frameIndex: UInt64,
        isLast: Bool,
        ciphertext: [UInt8],
        decompressor: FrameDecompressor
    ) throws(FormatError) -> [UInt8] {
        var (plain, env) = try openAndParse(
            key: key,
            streamID: streamID,
            frameIndex: frameIndex,
            isLast: isLast,
            ciphertext: ciphertext
        )
        switch env.codec {
        case .stored:
            // The payload moves to the front of the same buffer: no second allocation.
            plain.removeSubrange(0..<env.payload.lowerBound)
            return plain
        case .zstd, .zlib, .shuffledZstd, .dictionaryZstd:
            if env.codec == .dictionaryZstd {
                // Spec §6.2 rule 1, §7.4: only entry streams (ids below the special ones), and only once the
                // manifest has given the dictionary.
                guard streamID < FormatV1.indexStreamID, let _ = dictionary else {
                    throw FormatError(
                        .payload,
                        "frame \(frameIndex) uses codec 4 (dictionary zstd), which only entry streams may use"
                    )
                }
            }
            do {
                return try [UInt8](byteCapacity: env.rawLength) { output throws(CompressionError) in
                    let payload = plain.span.bytes.extracting(env.payload)
                    switch env.codec {
                    case .zstd: try decompressor.zstd(payload, into: &output, maxWindow: frameSize)
                    case .shuffledZstd: try decompressor.shuffledZstd(payload, into: &output, maxWindow: frameSize)
                    case .dictionaryZstd:
                        try decompressor.dictionaryZstd(
                            payload,
                            into: &output,
                            maxWindow: frameSize,
                            dictionary: dictionary!
                        )
                    case .zlib: try decompressor.zlib(payload, into: &output)
                    case .stored: preconditionFailure()
                    }
                }
            } catch {
                throw FormatError(.payload, "frame \(frameIndex): \(error.message)")
            }
        }
    }
}
