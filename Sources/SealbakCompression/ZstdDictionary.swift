internal import CZstd

/// A Zstandard dictionary (RFC 8878 §5) shared by the frames of one archive (Spec §6.2, codec 4): loaded once for
/// compression (at one level) and once for decompression, and used read-only by any number of threads at once (libzstd
/// documents both digested forms as shareable).
package final class ZstdDictionary: Sendable, Hashable {
    /// The dictionary as stored in the archive.
    package let bytes: [UInt8]
    /// RFC 8878 §5 Dictionary_ID (never 0 for a formatted dictionary).
    package let id: UInt32
    /// The level frames are compressed at with it (the writer's zstd level); 0 for a reader's.
    package let level: Int32
    // Created in init and only read afterwards; freed in deinit.
    nonisolated(unsafe) private let ddict: OpaquePointer
    nonisolated(unsafe) private let cdict: OpaquePointer?

    /// The largest dictionary accepted: its base64 text must fit one metadata value (1 MiB, Spec §7.3).
    package static let maxByteCount = 786_432
    /// RFC 8878 §5: a formatted dictionary starts with 37 A4 30 EC.
    static let magic: [UInt8] = [0x37, 0xA4, 0x30, 0xEC]

    /// Loads `bytes`, which must be a formatted Zstandard dictionary (magic, a Dictionary_ID other than 0, entropy
    /// tables that libzstd accepts, content). `level`: the zstd level frames are compressed at with it; nil for a
    /// dictionary that only decompresses.
    package init(_ bytes: [UInt8], level: Int32? = nil) throws(CompressionError) {
        guard bytes.count >= 8, bytes.count <= Self.maxByteCount else {
            throw CompressionError("the zstd dictionary is \(bytes.count) bytes (8 to \(Self.maxByteCount) allowed)")
        }
        guard Array(bytes[0..<4]) == Self.magic else {
            throw CompressionError("the zstd dictionary does not start with the dictionary magic 37 A4 30 EC")
        }
        let id = bytes.withUnsafeBytes { ZSTD_getDictID_fromDict($0.baseAddress, $0.count) }
        guard id != 0 else { throw CompressionError("the zstd dictionary has Dictionary_ID 0") }
        // With the magic present, libzstd loads the entropy tables and fails (nil) when they do not parse.
        guard let d = bytes.withUnsafeBytes({ ZSTD_createDDict($0.baseAddress, $0.count) }) else {
            throw CompressionError("the zstd dictionary's entropy tables do not load")
        }
        var c: OpaquePointer? = nil
        if let level {
            c = bytes.withUnsafeBytes { ZSTD_createCDict($0.baseAddress, $0.count, level) }
            if c == nil {
                ZSTD_freeDDict(d)
                throw CompressionError("the zstd dictionary does not load for compression")
            }
        }
        self.bytes = bytes
        self.id = id
        self.level = level ?? 0
        ddict = d
        cdict = c
    }

    deinit {
        ZSTD_freeDDict(ddict)
        if let cdict { ZSTD_freeCDict(cdict) }
    }

    /// The Dictionary_ID of a formatted dictionary (0 for anything else).
    package static func id(of bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { ZSTD_getDictID_fromDict($0.baseAddress, $0.count) }
    }

    package static func == (a: ZstdDictionary, b: ZstdDictionary) -> Bool { a === b }
    package func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }

    var compressionDictionary: OpaquePointer? { cdict }
    var decompressionDictionary: OpaquePointer { ddict }

    /// Trains a dictionary of at most `capacity` bytes on `samples` (FastCover with fixed parameters: tens of
    /// milliseconds for a few MiB of samples); nil when they are too few or too small to train on.
    package static func train(samples: [[UInt8]], capacity: Int = 64 << 10) -> [UInt8]? {
        train(joined: Array(samples.joined()), sizes: samples.map(\.count), capacity: capacity)
    }

    /// Trains on samples stored back to back in `joined`, `sizes` giving their lengths in order.
    package static func train(joined: [UInt8], sizes: [Int], capacity: Int = 64 << 10) -> [UInt8]? {
        guard sizes.count >= 16, joined.count >= capacity, sizes.reduce(0, +) == joined.count else { return nil }
        var dictionary = [UInt8](repeating: 0, count: capacity)
        var params = ZDICT_fastCover_params_t()
        params.k = 200
        params.d = 8
        params.f = 18
        params.accel = 4
        params.steps = 0
        params.nbThreads = 0
        params.splitPoint = 1.0
        params.zParams.compressionLevel = 3
        params.zParams.notificationLevel = 0
        let n = dictionary.withUnsafeMutableBytes { d in
            joined.withUnsafeBytes { j in
                sizes.withUnsafeBufferPointer { s in
                    ZDICT_trainFromBuffer_fastCover(
                        d.baseAddress,
                        d.count,
                        j.baseAddress,
                        s.baseAddress,
                        UInt32(s.count),
                        params
                    )
                }
            }
        }
        guard ZDICT_isError(n) == 0, n >= 8 else { return nil }
        return Array(dictionary[0..<n])
    }
}
