import Foundation
import SealbakArchive
import SealbakCompression
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakTestSupport
import Testing

/// Archives with the shuffle codec (Spec §3.4 feature bit 0, §6.2 codec 3): when the writer declares it, what it
/// does to the bytes and the size, and that header MAC, rekey and key changes treat version and flags right.
@Suite struct ShuffleArchiveTests {
    static let fs = 4096

    static func header(_ bytes: [UInt8]) throws -> ArchiveHeader {
        try ArchiveHeader.parse(Array(bytes.prefix(Int(bytes[10]) | Int(bytes[11]) << 8)))
    }

    static func codecs(_ bytes: [UInt8], password: String = "password") throws -> [[Int]] {
        try ValidVector.frameCodecs(bytes, password: password)
    }

    /// Sizes around the lanes (0...7 bytes: nothing or one partial number), not multiples of 4, a frame-size
    /// multiple, and several frames with a tail; float data and noise (frames that stay stored).
    @Test func shuffledEntriesRoundTripAtEverySize() throws {
        let floats = TestArchive.gaussianFloats(3 * Self.fs)
        let sizes = Array(0...7) + [13, 4095, Self.fs, Self.fs + 1, 2 * Self.fs, 3 * Self.fs - 2, 3 * Self.fs + 3]
        var entries: [TestEntry] = []
        for n in sizes {
            entries.append(TestEntry(.file, "v\(n).f32", Array(floats.prefix(n))))
            entries.append(TestEntry(.file, "noise\(n).npy", TestArchive.noise(n, seed: UInt64(n) + 3)))
        }
        entries.append(TestEntry(.stream, "stdin.f32", Array(floats.prefix(2 * Self.fs + 6))))
        entries.append(TestEntry(.file, "notes.txt", TestArchive.text(5000)))
        entries.append(TestEntry(.directory, "dir.npy"))
        let bytes = try TestArchive.build(entries, options: TestArchive.options(shuffle: .vectorFiles))
        let h = try Self.header(bytes)
        #expect(h.version == 2 && h.features == .shuffle && bytes[8] == 2 && bytes[12] == 1)
        let back = try TestReader.readAll(bytes)
        for (i, e) in entries.enumerated() {
            #expect(back.data[i] == e.data, "\(e.name)")
            #expect(back.trailer.entries[i].sha256 == SHA256Hasher.hash(e.data))
        }
        // Random access unshuffles the same way.
        #expect(try TestReader.randomAccessFailureClass(bytes, password: "password") == nil)
        let codecs = try Self.codecs(bytes)
        let shuffled = Int(CompressionCodec.shuffledZstd.rawValue)
        for (i, e) in entries.enumerated() {
            if e.name.hasSuffix(".f32") {
                // Every frame of float data shrinks shuffled, except a last frame of a few bytes (stored).
                for (k, codec) in codecs[i].enumerated() where min(Self.fs, e.data.count - k * Self.fs) >= 1024 {
                    #expect(codec == shuffled, "\(e.name) frame \(k): \(codecs[i])")
                }
            }
            if e.name == "notes.txt" {
                #expect(codecs[i] == [Int(CompressionCodec.zstd.rawValue), Int(CompressionCodec.zstd.rawValue)])
            }
            if e.name.hasPrefix("noise") || e.kind == .directory {
                #expect(codecs[i].allSatisfy { $0 == 0 }, "\(e.name) is stored")
            }
        }
    }

    /// The writer decides from the manifest: no selected entry, or shuffle off, gives exactly the bytes a writer
    /// without the feature writes (version 1, flags 0).
    @Test func versionOneWhenNothingIsSelectedOrShuffleIsOff() throws {
        let floats = TestArchive.gaussianFloats(2000)
        let plainNames = [
            TestEntry(.file, "model/weights.bin", floats), TestEntry(.file, "a.txt", TestArchive.text(900)),
        ]
        let off = try TestArchive.build(plainNames, options: TestArchive.options(seed: "v1", shuffle: .off))
        let none = try TestArchive.build(plainNames, options: TestArchive.options(seed: "v1", shuffle: .vectorFiles))
        #expect(off == none)
        #expect(try Self.header(none).version == 1 && none[8] == 1 && none[12] == 0 && none[13] == 0)

        let vector = [TestEntry(.file, "emb.npy", floats)]
        let noShuffle = try TestArchive.build(vector, options: TestArchive.options(seed: "v1", shuffle: .off))
        #expect(try Self.header(noShuffle).features == [])
        #expect(try Self.codecs(noShuffle)[0].allSatisfy { $0 != Int(CompressionCodec.shuffledZstd.rawValue) })
        #expect(try TestReader.readAll(noShuffle).data[0] == floats)
        // Shuffle is zstd's: with zlib or no compression the archive stays version 1.
        for compression in [CompressionAlgorithm.zlib(level: 6), .stored] {
            let b = try TestArchive.build(
                vector,
                options: TestArchive.options(compression: compression, shuffle: .vectorFiles)
            )
            #expect(try Self.header(b).version == 1, "\(compression)")
        }
        // Asking for codec 3 for a whole archive (manifest and trailer included) is refused.
        #expect(throws: SealbakError.self) {
            try TestArchive.build(vector, options: TestArchive.options(compression: .shuffledZstd(level: 3)))
        }
    }

    /// The reason for the feature: Gaussian float32 data (deterministic) gives a clearly smaller archive.
    @Test func gaussianFloatsMakeASmallerArchive() throws {
        let data = TestArchive.gaussianFloats(1 << 18, seed: 5)  // 1 MiB
        let entries = [TestEntry(.file, "embeddings.npy", data)]
        let plain = try TestArchive.build(entries, options: TestArchive.options(frameSizeLog2: 16, shuffle: .off))
        let shuffled = try TestArchive.build(
            entries,
            options: TestArchive.options(frameSizeLog2: 16, shuffle: .vectorFiles)
        )
        #expect(
            Double(shuffled.count) < 0.97 * Double(plain.count),
            "shuffled \(shuffled.count) bytes, plain \(plain.count)"
        )
        #expect(try TestReader.readAll(shuffled).data[0] == data)
    }

    /// Spec §3.4 rule 5: version and flags are under the header MAC. Removing the feature (version 1, flags 0) or
    /// adding it to a version-1 archive parses, opens the slot, and fails the MAC; other flag values fail parsing.
    @Test func tamperedVersionAndFlagsAreDetected() throws {
        let v2 = try TestArchive.build(
            [TestEntry(.file, "e.f32", TestArchive.gaussianFloats(3000))],
            options: TestArchive.options(shuffle: .vectorFiles)
        )
        let v1 = try TestArchive.build([TestEntry(.file, "e.txt", TestArchive.text(3000))])
        func tampered(_ b: [UInt8], version: UInt8, flags: UInt16) -> [UInt8] {
            var b = b
            b[8] = version
            b[12] = UInt8(flags & 0xFF)
            b[13] = UInt8(flags >> 8)
            return b
        }
        #expect(try TestReader.failureClass(v2) == nil && TestReader.failureClass(v1) == nil)
        #expect(try TestReader.failureClass(tampered(v2, version: 1, flags: 0)) == .mac)
        #expect(try TestReader.failureClass(tampered(v1, version: 2, flags: 1)) == .mac)
        #expect(try TestReader.failureClass(tampered(v2, version: 2, flags: 0)) == .header)
        #expect(try TestReader.failureClass(tampered(v2, version: 1, flags: 1)) == .header)
        #expect(try TestReader.failureClass(tampered(v2, version: 2, flags: 9)) == .version)
        // Bit 2 (dictionary) is known: adding it is a MAC failure like adding any known feature.
        #expect(try TestReader.failureClass(tampered(v2, version: 2, flags: 5)) == .mac)
        // Bit 1 (chained) is known but needs a base record this header lacks.
        #expect(try TestReader.failureClass(tampered(v2, version: 2, flags: 3)) == .header)
        #expect(try TestReader.failureClass(tampered(v2, version: 3, flags: 1)) == .version)
    }

    /// Spec §11.3: rotation re-encrypts the codec-3 envelopes as they are and keeps version and flags; a header-only
    /// key change keeps them too.
    /// Rotates `bytes` (password "password") to the password "new", then adds the password "second" to the rotated
    /// archive (a header-only change): the archive after each step, and how many frames the rotation moved.
    static func rotateThenAddPassword(_ bytes: [UInt8]) throws -> (rotated: [UInt8], frames: Int, edited: [UInt8]) {
        let dir = NSTemporaryDirectory() + "sealbak-rotate-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/a.sbk"
        let rotated = dir + "/b.sbk"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let output = try AtomicOutput(path: rotated, overwrite: false)
        let summary = try Rekey.run(
            path: path,
            in: .local,
            current: .password(Passphrase(string: "password")),
            newPassword: Passphrase(string: "new"),
            kdf: TestArchive.cheapKDF,
            output: output
        )
        try output.commit()
        let out = try [UInt8](Data(contentsOf: URL(fileURLWithPath: rotated)))
        let u = try KeyEditing.unlock(
            path: rotated,
            in: .local,
            secret: .password(Passphrase(string: "new")),
            limits: .default
        )
        _ = try KeyEditing.addPassword(
            u,
            passphrase: Passphrase(string: "second"),
            label: "second",
            kdf: TestArchive.cheapKDF
        )
        let edited = try [UInt8](Data(contentsOf: URL(fileURLWithPath: rotated)))
        return (out, summary.frames, edited)
    }

    @Test func rekeyAndKeyChangesKeepTheFeature() throws {
        let entries = [
            TestEntry(.file, "vectors/emb.npy", TestArchive.gaussianFloats(3 * Self.fs / 4 + 1)),
            TestEntry(.file, "notes.txt", TestArchive.text(6000)),
        ]
        let bytes = try TestArchive.build(entries, options: TestArchive.options(shuffle: .vectorFiles))
        let before = try Self.codecs(bytes)
        #expect(before[0].contains(Int(CompressionCodec.shuffledZstd.rawValue)))

        let (out, frames, edited) = try Self.rotateThenAddPassword(bytes)
        #expect(frames > 0)
        let h = try Self.header(out)
        let oldID = try Self.header(bytes).archiveID
        #expect(h.version == 2 && h.features == .shuffle && h.archiveID != oldID)
        #expect(try Self.codecs(out, password: "new") == before)
        let back = try TestReader.readAll(out, password: "new")
        #expect(back.data == entries.map(\.data))
        #expect(try TestReader.failureClass(out, password: "password") == .key)

        // A header-only change (key add) rewrites the slots and keeps version and flags.
        #expect(try Self.header(edited).features == .shuffle && edited[8] == 2)
        #expect(try TestReader.readAll(edited, password: "second").data == entries.map(\.data))
    }

    /// The byte-level `isVectorFile` agrees with the rule as written on `String`s, over names built from the parts
    /// that matter (case, extensions, folders, digits) and a few non-ASCII ones.
    @Test func vectorFileNamesAgreeWithTheStringRule() {
        func reference(_ name: String) -> Bool {
            let components = name.split(separator: "/", omittingEmptySubsequences: false)
            guard let base = components.last?.lowercased() else { return false }
            for ext in [".npy", ".fvecs", ".ivecs", ".f32"] where base.hasSuffix(ext) && base.count > ext.count {
                return true
            }
            if base == "data_level0.bin" { return true }
            guard components.dropLast().contains(where: { $0 == "vector_storage" || $0.hasPrefix("vector_storage-") })
            else { return false }
            if base == "matrix.dat" { return true }
            guard base.hasPrefix("chunk_") && base.hasSuffix(".mmap") else { return false }
            let digits = base.dropFirst("chunk_".count).dropLast(".mmap".count)
            return !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber }
        }
        let folders = [
            "", "a/", "vector_storage/", "vector_storage-x/", "vector_storagex/", "Vector_Storage/", "/", "é/",
        ]
        let bases = [
            "e.npy", "E.NPY", ".npy", "x.fvecs", "x.IVECS", "x.f32", "x.F32", "data_level0.bin", "DATA_LEVEL0.BIN",
            "xdata_level0.bin", "matrix.dat", "MATRIX.DAT", "chunk_1.mmap", "CHUNK_12.MMAP", "chunk_.mmap",
            "chunk_a.mmap", "chunk.mmap", "chunk_1.mmapx", "ü.npy", "", "npy", "x.np",
        ]
        for f in folders {
            for g in folders {
                for b in bases {
                    let name = f + g + b
                    #expect(ShuffleSelection.isVectorFile(name) == reference(name), "\(name)")
                }
            }
        }
    }

    /// Which names `pack` shuffles (ShuffleSelection.isVectorFile).
    @Test func vectorFileNames() {
        for name in [
            "emb.npy", "a/b/EMB.NPY", "sift_base.fvecs", "gt.ivecs", "x.f32", "chroma/c/0c6f/data_level0.bin",
            "qdrant/q/collections/docs/0/segments/s1/vector_storage/matrix.dat",
            "qdrant/q/collections/docs/0/segments/s1/vector_storage-image/vectors/chunk_0.mmap",
            "storage/vector_storage/vectors/chunk_12.mmap",
        ] {
            #expect(ShuffleSelection.isVectorFile(name), "\(name)")
        }
        for name in [
            "emb.npz", "x.bvecs", "data_level0.bin.bak", "chroma/c/0c6f/length.bin", "chroma/c/0c6f/link_lists.bin",
            "matrix.dat", "segments/s1/payload_storage/matrix.dat", "vector_storage/chunk_a.mmap",
            "vector_storage/chunk_.mmap", "vector_storage/vectors/status.dat", ".npy", "notes.txt", "x.f16",
        ] {
            #expect(!ShuffleSelection.isVectorFile(name), "\(name)")
        }
        let dir = ManifestEntry(
            kind: .directory,
            name: "d.npy",
            mode: 0o755,
            mtimeSeconds: 0,
            mtimeNanoseconds: 0,
            linkTarget: "",
            metadata: Metadata()
        )
        #expect(!ShuffleSelection.all.selects(dir) && !ShuffleSelection.vectorFiles.selects(dir))
    }
}
