import Foundation
import SealbakCompression
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys

/// Real key rotation (Spec §11.3, docs/keys.md): a new master key and archive id, every frame re-encrypted.
///
/// Frames are authenticated with the old keys and their compressed payloads re-encrypted under the new ones,
/// without decompressing or recompressing. The new header keeps the old one's features (Spec §3.4, §11.3):
/// the envelopes keep their codecs, and codec 3 is valid only where the shuffle feature is declared. Ciphertext lengths
/// do not change, so every offset stays valid; only
/// the trailer (which names the archive id) is rebuilt. The result is written to an atomic output and fully
/// verified with the new key (every tag, every entry's SHA-256, trailer, footer) before it replaces anything.
package enum Rekey {
    package struct Summary: Sendable {
        package var bytes: UInt64
        package var frames: Int
        package var droppedSlots: [KeySlot]
        package var newArchiveID: [UInt8]
        /// The header the rotation started from, as it is in the file (for `KeyChangeLock.checkUnchanged`).
        package var oldHeader: [UInt8]
    }

    /// - Parameters:
    ///   - path: the archive (a regular file or a remote object in `locations`).
    ///   - locations: where `path` is.
    ///   - current: a secret that opens it.
    ///   - newPassword: the password of the new archive's password slot (its KDF: `kdf`, else the old slot's);
    ///     nil for none. Recipient (public-key) slots are carried over, re-wrapped to the same public keys.
    ///   - output: where the new archive goes (may be `path` itself; nothing is replaced before verification).
    package static func run(
        path: String,
        in locations: ArchiveLocations,
        current: ArchiveSecret,
        newPassword: Passphrase?,
        kdf: KDFParameters?,
        output: any ArchiveOutput,
        options: ReadOptions = ReadOptions(),
        random: any RandomSource = SystemRandom()
    ) throws -> Summary {
        // Pass 1 (through the reader): unlock, authenticate the header, decode the manifest.
        let reader = try ArchiveReader(input: try locations.input(path), secret: current, options: options)
        let old = reader.header
        let oldMaster = reader.masterKey
        let entryCount = reader.manifest.entries.count
        let newMaster = MasterKey.generate(random: random)
        let newID = random.bytes(FormatV1.archiveIDByteCount)
        var slots: [KeySlot] = []
        var kept: Set<UInt16> = []
        if let newPassword {
            var slotKDF = KeySlots.defaultKDF
            var label = "password"
            if case .password(let oldKDF, _, _, _) = reader.unlockedSlot.body, !reader.unlockedSlot.isRecovery {
                slotKDF = oldKDF
                label = reader.unlockedSlot.label
            }
            slots.append(
                try KeySlots.passwordSlot(
                    id: 1,
                    label: label,
                    createdUnix: KeyEditing.now(),
                    passphrase: newPassword,
                    kdf: kdf ?? slotKDF,
                    archiveID: newID,
                    master: newMaster,
                    random: random
                )
            )
        }
        for s in old.slots {
            guard case .x25519(let recipient, _, _, _) = s.body else { continue }
            slots.append(
                try Recipients.slot(
                    id: UInt16(slots.count + 1),
                    label: s.label,
                    createdUnix: s.createdUnix,
                    recipient: recipient,
                    archiveID: newID,
                    master: newMaster,
                    random: random
                )
            )
            kept.insert(s.id)
        }
        guard !slots.isEmpty else {
            throw SealbakError(.usage, "the rotated archive would have no key: give a new password")
        }
        var header = ArchiveHeader(
            features: old.features,
            cipherSuite: old.cipherSuite,
            frameSizeLog2: old.frameSizeLog2,
            archiveID: newID,
            createdUnix: old.createdUnix,
            slots: slots,
            base: old.base
        )
        header.mac = newMaster.mac(for: header)
        try output.write(header.encoded())

        // Pass 2: every stream, frame by frame.
        let input = try locations.input(path)
        _ = try input.skip(UInt64(old.byteCount))
        let oldCodec = try FrameCodec(header: old)
        let newCodec = try FrameCodec(header: header)
        var frames = 0
        let decompressor = FrameDecompressor()
        let walker = FrameWalker(input: input, frameSize: old.frameSize, archive: path)
        func fail(_ e: FormatError, _ context: String) -> SealbakError {
            SealbakError.format(e, archive: path, context: context)
        }

        /// Calls `body` with each frame's index, last flag and old envelope (or, with `decompress`, its plaintext).
        func eachFrame(
            _ streamID: UInt32,
            _ context: String,
            decompress: Bool = false,
            _ body: (UInt64, Bool, [UInt8]) throws -> Void
        ) throws {
            let oldKey = oldMaster.streamKey(streamID)
            // Unlike the reader, rekey reports a rejected trailer frame with the class of the rule that rejected it
            // (as it always has), not as `trailer`.
            try walker.walk(.sequential, context: context) { frame in
                let envelope: [UInt8]
                do throws(FormatError) {
                    envelope =
                        decompress
                        ? try oldCodec.open(
                            key: oldKey,
                            streamID: streamID,
                            frameIndex: frame.index,
                            isLast: frame.isLast,
                            ciphertext: frame.ciphertext,
                            decompressor: decompressor
                        )
                        : try oldCodec.openEnvelope(
                            key: oldKey,
                            streamID: streamID,
                            frameIndex: frame.index,
                            isLast: frame.isLast,
                            ciphertext: frame.ciphertext
                        )
                } catch { throw fail(FormatError(error.errorClass, error.message, offset: frame.offset), context) }
                try body(frame.index, frame.isLast, envelope)
                frames += 1
            }
        }

        for (streamID, context) in [(FormatV1.manifestStreamID, "the manifest")]
            + (0..<entryCount).map({ (UInt32($0), "entry \($0)") })
        {
            let newKey = newMaster.streamKey(streamID)
            try eachFrame(streamID, context) { index, last, envelope in
                try output.write(
                    newCodec.sealEnvelope(
                        key: newKey,
                        streamID: streamID,
                        frameIndex: index,
                        isLast: last,
                        plaintext: envelope
                    )
                )
            }
        }
        // The trailer: decode, swap in the new archive id, re-encrypt (stored frames).
        let trailerBody = output.bytesWritten - UInt64(header.byteCount)
        var trailerPlain: [UInt8] = []
        try eachFrame(FormatV1.trailerStreamID, "the trailer", decompress: true) { _, _, plain in
            guard UInt64(trailerPlain.count + plain.count) <= FormatV1.maxTrailerByteCount else {
                throw fail(FormatError(.trailer, "trailer exceeds its size limit"), "the trailer")
            }
            trailerPlain += plain
        }
        var trailer: Trailer
        do throws(FormatError) { trailer = try Trailer.parse(trailerPlain, frameSize: old.frameSize) } catch {
            throw fail(error.inPlaintext("trailer"), "the trailer")
        }
        guard trailer.archiveID == old.archiveID, trailer.trailerOffset == trailerBody else {
            throw fail(FormatError(.trailer, "the trailer does not describe this archive"), "the trailer")
        }
        trailer.archiveID = newID
        let newTrailerKey = newMaster.streamKey(FormatV1.trailerStreamID)
        _ = try newCodec.sealTrailer(trailer, key: newTrailerKey, compression: .stored, compressor: FrameCompressor()) {
            try output.write($0)
        }
        let footer = try input.read(upTo: FormatV1.footerByteCount + 1)
        guard footer.count == FormatV1.footerByteCount, (try? Footer.parse(footer)) != nil else {
            throw fail(FormatError(.trailer, "the footer is missing, damaged or followed by extra bytes"), "the footer")
        }
        // The slot that was opened is "replaced" only when it was a password slot and a new password was given.
        let replaced =
            (newPassword != nil && !reader.unlockedSlot.isRecovery
                && { if case .password = reader.unlockedSlot.body { return true } else { return false } }())
            ? reader.unlockedSlot.id : nil
        return Summary(
            bytes: output.bytesWritten,
            frames: frames,
            droppedSlots: old.slots.filter { !kept.contains($0.id) && $0.id != replaced },
            newArchiveID: newID,
            oldHeader: old.encoded()
        )
    }
}
