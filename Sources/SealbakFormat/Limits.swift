/// Constants and hard limits of format version 1, which version 2 shares (Spec §2, §3.4, §10).
package enum FormatV1 {
    /// `89 53 42 4B 0D 0A 1A 0A`: "\x89SBK\r\n\x1a\n" (detects text-mode and 7-bit transfers like PNG's).
    package static let magic: [UInt8] = [0x89, 0x53, 0x42, 0x4B, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The version of an archive that declares no feature (Spec §3.4 rule 3).
    package static let version: UInt16 = 1
    /// Version 1 plus required features in the header's flags (Spec §3.4).
    package static let featuresVersion: UInt16 = 2
    /// The newest version this implementation reads; a larger one is class `version` (Spec §3.1).
    package static let newestVersion: UInt16 = 2
    /// Bytes of the fixed part of the header, before the key slots.
    package static let fixedHeaderByteCount = 41
    package static let headerMACByteCount = 32
    package static let maxHeaderByteCount = 65_535
    package static let archiveIDByteCount = 16
    package static let minSlotCount = 1
    package static let maxSlotCount = 32
    package static let maxLabelByteCount = 64
    package static let minFrameSizeLog2: UInt8 = 12
    package static let maxFrameSizeLog2: UInt8 = 24
    package static let defaultFrameSizeLog2: UInt8 = 20

    /// Frame header: one little-endian UInt32 (Spec §6.1).
    package static let frameHeaderByteCount = 4
    /// Codec byte + raw length (Spec §6.2).
    package static let framePrefixByteCount = 5
    package static let tagByteCount = 16
    /// Frame indices are below 2^32 (Spec §6.3).
    package static let maxFramesPerStream: UInt64 = 1 << 32

    package static let maxEntryCount: UInt32 = 1 << 24
    package static let maxNameByteCount = 4096
    package static let maxLinkByteCount = 4096
    package static let maxMetadataPairs = 1024
    package static let maxMetadataKeyByteCount = 128
    package static let maxMetadataValueByteCount = 1 << 20
    /// Decoded manifest plaintext cap (Spec §7).
    package static let maxManifestByteCount: UInt64 = 256 << 20
    /// Decoded trailer plaintext cap: fixed part + 56 bytes per entry.
    package static var maxTrailerByteCount: UInt64 { UInt64(trailerFixedByteCount) + UInt64(maxEntryCount) * 56 }
    package static let trailerFixedByteCount = 4 + 16 + 8 + 8 + 8
    package static let footerByteCount = 24
    package static let footerMagic: [UInt8] = Array("SBKFOOT1".utf8)
    package static let trailerEndMagic: [UInt8] = Array("SBKEND01".utf8)

    /// Stream identifiers of Spec §5.
    package static let manifestStreamID: UInt32 = 0xFFFF_FFFE
    package static let trailerStreamID: UInt32 = 0xFFFF_FFFF
    /// The chunk index stream of a chained archive (`FormatFeatures.chained`).
    package static let indexStreamID: UInt32 = 0xFFFF_FFFD

    /// The longest chain of base archives a chained archive may declare (its base record's `chain_depth`).
    package static let maxChainDepth: UInt16 = 1024
    /// Decoded chunk index plaintext cap; a reader accumulating the index stream's frames checks it.
    package static let maxIndexPlaintext: UInt64 = 1 << 30

    /// Argon2id bounds a writer may use (libsodium's minimum; Spec §4.2).
    package static let minOpsLimit: UInt32 = 1
    package static let minMemLimitKiB: UInt32 = 8
}

/// Cipher suites (Spec §3.1).
package enum CipherSuite: UInt8, Sendable, CaseIterable {
    case xchacha20poly1305 = 1
    case aes256gcm = 2

    package var name: String {
        switch self {
        case .xchacha20poly1305: "XChaCha20-Poly1305"
        case .aes256gcm: "AES-256-GCM"
        }
    }
}

/// Per-frame compression codecs (Spec §6.2).
package enum CompressionCodec: UInt8, Sendable, CaseIterable {
    case stored = 0
    case zstd = 1
    case zlib = 2
    /// zstd over the 4-byte-shuffled raw bytes; only in archives that declare `FormatFeatures.shuffle`.
    case shuffledZstd = 3
    /// zstd with the archive's dictionary; only in archives that declare `FormatFeatures.dictionary`.
    case dictionaryZstd = 4

    package var name: String {
        switch self {
        case .stored: "stored"
        case .zstd: "zstd"
        case .zlib: "zlib"
        case .shuffledZstd: "shuffled zstd"
        case .dictionaryZstd: "dictionary zstd"
        }
    }

    /// The feature an archive must declare for frames to use this codec (Spec §3.4), if any.
    package var requiredFeatures: FormatFeatures {
        switch self {
        case .shuffledZstd: .shuffle
        case .dictionaryZstd: .dictionary
        default: []
        }
    }
}

/// The required features of a version-2 header: bit i of the header's flags is feature i (Spec §3.4).
///
/// An archive without features is version 1 with flags 0; with any, version 2. A reader rejects a set bit it
/// does not implement (class `version`), so every bit here changes what a reader must do.
package struct FormatFeatures: OptionSet, Hashable, Sendable, CustomStringConvertible {
    package let rawValue: UInt16

    package init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Bit 0: frames may use codec 3, zstd over 4-byte-shuffled bytes (Spec §6.2).
    package static let shuffle = FormatFeatures(rawValue: 1 << 0)

    /// Bit 1: an incremental archive. The header carries a base record (`BaseRecord`), entry streams are chunk
    /// records (`ChunkRecords`) that may refer to chunks of earlier archives, and a chunk index stream follows.
    package static let chained = FormatFeatures(rawValue: 1 << 1)

    /// Bit 2: frames may use codec 4, zstd with the archive's dictionary, which the archive metadata holds
    /// (Spec §6.2, §7.4).
    package static let dictionary = FormatFeatures(rawValue: 1 << 2)

    /// Every feature this implementation reads and writes. Bits 3...15 are reserved (Spec §3.4).
    package static let implemented: FormatFeatures = [.shuffle, .chained, .dictionary]

    /// The format version a header with these features has: 1 without any, 2 otherwise (Spec §3.4 rule 3).
    package var formatVersion: UInt16 { isEmpty ? FormatV1.version : FormatV1.featuresVersion }

    /// Feature names, lowest bit first (`shuffle`, `chained`, `dictionary`, or `bit N` for one this implementation does
    /// not know).
    package var names: [String] {
        (0..<16).compactMap { bit -> String? in
            guard rawValue & (1 << bit) != 0 else { return nil }
            return Self.name(ofBit: bit)
        }
    }

    /// The name of feature bit `bit`: `shuffle`, `chained`, `dictionary`, or `bit N`.
    package static func name(ofBit bit: Int) -> String {
        switch bit {
        case 0: "shuffle"
        case 1: "chained"
        case 2: "dictionary"
        default: "bit \(bit)"
        }
    }

    package var description: String { names.isEmpty ? "none" : names.joined(separator: ", ") }
}
