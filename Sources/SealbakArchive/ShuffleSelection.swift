import SealbakFormat

/// Which entries a writer compresses with the shuffle codec: zstd over 4-byte-shuffled frames (codec 3, feature
/// bit 0 of Spec §3.4, §6.2).
///
/// The writer must declare the feature in the header, before it has read any data, so the choice is made from
/// the manifest alone: by entry name. An archive in which no entry is selected is written as version 1,
/// byte for byte as without this option.
///
/// Why these names (measured with zstd -3 on 1 MiB frames, docs/benchmark-2026-11-30-shuffle.md): arrays of
/// 4-byte numbers compress 8–10% smaller shuffled (Gaussian float32 embeddings 92.4% → 85.2% of their size,
/// hnswlib's `data_level0.bin` 92.0% → 82.8%); shuffling never lost more than 0.01% on any `.npy` dtype tried
/// (float64, float16 and int64 gain too; int8 and uint8 are even). Files with other content lose: Chroma's
/// `length.bin` grew by 25% and its `index_metadata.pickle` by 15%, so nothing is selected by folder alone.
package enum ShuffleSelection: String, Sendable, Hashable, CaseIterable {
    /// No entry: the archive is version 1 (`pack --no-shuffle`, for readers older than format version 2).
    case off
    /// File and stream entries named like arrays of 4-byte numbers (`isVectorFile`). What `pack` uses.
    case vectorFiles
    /// Every file and stream entry (tests).
    case all

    /// The zstd level of shuffled frames, whatever level the other frames get. On shuffled float data level 1
    /// compresses best of all levels measured and is the fastest: Gaussian float32 84.1% of the input at level 1,
    /// 85.2% at 3, 84.6% at 19; hnswlib data_level0.bin 81.7%, 82.8%, 82.2% (1 MiB frames). Level 3 costs 2–3
    /// times the CPU of level 1 there (its matches in the sign/exponent lane cost more than they save), level 19
    /// over 100 times; level 1 runs about as fast as zstd -3 on the unshuffled bytes. Integer arrays (ids) lose < 2% at
    /// level 1 against 3 (int64 ids: 0.147% against 0.144% of the input).
    package static let zstdLevel: Int32 = 1

    /// Whether the frames of `entry` are compressed shuffled.
    package func selects(_ entry: ManifestEntry) -> Bool {
        guard entry.kind == .file || entry.kind == .stream else { return false }
        switch self {
        case .off: return false
        case .vectorFiles: return Self.isVectorFile(entry.name)
        case .all: return true
        }
    }

    /// Names whose content is an array of 4-byte numbers (float32 or int32), aligned to 4 bytes from the
    /// start of the file (so every frame's lanes line up, frame sizes being multiples of 4):
    /// - `*.npy` (NumPy; the header is padded to a multiple of 16 or 64 bytes), `*.fvecs`, `*.ivecs` (records
    ///   of a 4-byte dimension and 4-byte values), `*.f32` (raw float32);
    /// - `data_level0.bin`: hnswlib's level-0 graph and vectors, as in Chroma's index segments (per element a
    ///   4-byte link count, 4-byte neighbour ids, float32 values and an 8-byte label);
    /// - Qdrant's dense vector storage: `matrix.dat` (a 4-byte header, then the vectors) and `chunk_N.mmap`, in a
    ///   folder `vector_storage` or `vector_storage-NAME` of a segment.
    /// Extensions are matched without regard to case. `.bvecs` (1-byte values after a 4-byte dimension) is not
    /// selected: its records do not keep numbers aligned.
    package static func isVectorFile(_ name: String) -> Bool {
        // On the UTF-8 bytes: this runs for every entry before any data is read, and the same test on `String`
        // (split, lowercased, hasSuffix) took 40 ms of a pack of 8,000 files.
        var name = name  // withUTF8 makes a bridged string contiguous; a native one already is
        return name.withUTF8 { isVectorFile(utf8: $0) }
    }

    private static func isVectorFile(utf8 name: UnsafeBufferPointer<UInt8>) -> Bool {
        let slash = UInt8(ascii: "/")
        let baseStart = (name.lastIndex(of: slash) ?? -1) + 1
        let base = name[baseStart...]
        /// Whether `bytes` equal `lowercase` (lowercase ASCII), ignoring ASCII case.
        func equalIgnoringCase(_ bytes: some Collection<UInt8>, _ lowercase: String.UTF8View) -> Bool {
            bytes.count == lowercase.count
                && zip(bytes, lowercase).allSatisfy { b, c in (b >= 0x41 && b <= 0x5A ? b | 0x20 : b) == c }
        }
        /// Whether `base` ends with `suffix` (lowercase ASCII), ignoring ASCII case.
        func baseEnds(with suffix: String, exact: Bool = false) -> Bool {
            let s = suffix.utf8
            guard base.count >= s.count, !exact || base.count == s.count else { return false }
            return equalIgnoringCase(base.suffix(s.count), s)
        }
        for ext in [".npy", ".fvecs", ".ivecs", ".f32"] where base.count > ext.utf8.count && baseEnds(with: ext) {
            return true
        }
        if baseEnds(with: "data_level0.bin", exact: true) { return true }
        var inVectorStorage = false
        let folder = Array("vector_storage".utf8)
        var componentStart = 0
        for i in 0..<baseStart where name[i] == slash {
            let component = name[componentStart..<i]
            if component.starts(with: folder)
                && (component.count == folder.count || component[componentStart + folder.count] == UInt8(ascii: "-"))
            {
                inVectorStorage = true
                break
            }
            componentStart = i + 1
        }
        guard inVectorStorage else { return false }
        if baseEnds(with: "matrix.dat", exact: true) { return true }
        let prefix = "chunk_".utf8
        guard base.count > prefix.count + ".mmap".utf8.count, baseEnds(with: ".mmap"),
            equalIgnoringCase(base.prefix(prefix.count), prefix)
        else { return false }
        let digits = base.dropFirst(prefix.count).dropLast(".mmap".utf8.count)
        return digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }
}
