import Foundation
import SealbakArchive
import SealbakCompression
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakTestSupport
import Testing

/// Archives with a zstd dictionary (Spec §3.4 feature bit 2, §6.2 codec 4, §7.4): which frames use it, that every way
/// of reading finds it (sequential, random access, through a chain whose archives each have their own), that rekey,
/// key changes and consolidate keep it, and that the manifest can never depend on it.
@Suite struct DictionaryArchiveTests {
    static let fs = 4096

    static var notes: [[UInt8]] { Vectors.dictionaryNotes }

    static func options(seed: String, dictionary: [UInt8]? = Vectors.dictionaryVectorDictionary) -> WriteOptions {
        var o = TestArchive.options(seed: seed)
        o.dictionary = dictionary
        return o
    }

    static func entries() -> [TestEntry] {
        var e = notes.enumerated().map { i, n in TestEntry(.file, "notes/\(i).md", n) }
        e += [
            TestEntry(.directory, "empty-dir"),
            TestEntry(.file, "empty.md", []),
            TestEntry(.file, "long.md", Array(notes.joined().prefix(3 * Self.fs + 100))),
            TestEntry(.stream, "stdin.md", notes[3] + notes[4]),
            TestEntry(.file, "noise.bin", TestArchive.noise(1000, seed: 4)),
        ]
        return e
    }

    @Test func smallFramesUseTheDictionaryAndReadBackEveryWay() throws {
        let entries = Self.entries()
        let bytes = try TestArchive.build(entries, options: Self.options(seed: "dictionary round trip"))
        let header = try ShuffleArchiveTests.header(bytes)
        #expect(header.version == 2 && header.features == .dictionary)
        let back = try TestReader.readAll(bytes)
        #expect(back.data == entries.map(\.data))
        #expect(
            back.manifest.metadata[ArchiveDictionary.metadataKey]
                == ArchiveDictionary.encode(Vectors.dictionaryVectorDictionary)
        )
        #expect(try TestReader.randomAccessFailureClass(bytes, password: "password") == nil)
        #expect(try TestReader.pipeFailureClass(bytes, password: "password") == nil)
        let codecs = try ShuffleArchiveTests.codecs(bytes)
        let (stored, zstd, dictionary) = (0, Int(CompressionCodec.zstd.rawValue), 4)
        for (i, e) in entries.enumerated() {
            // Full frames in codec 1, a shorter last frame (or a whole small file) in codec 4.
            let full = Array(repeating: zstd, count: e.data.count / Self.fs)
            switch e.name {
            case "noise.bin", "empty.md", "empty-dir": #expect(codecs[i] == [stored], "\(e.name)")
            default: #expect(codecs[i] == full + (e.data.count % Self.fs > 0 ? [dictionary] : []), "\(e.name)")
            }
        }
        // The same files without a dictionary: version 1, and larger.
        let without = try TestArchive.build(entries, options: Self.options(seed: "no dictionary", dictionary: nil))
        #expect(try ShuffleArchiveTests.header(without).version == 1)
        #expect(try TestReader.readAll(without).data == entries.map(\.data))
    }

    /// Only zstd archives get the feature; with the shuffle codec, vector files keep codec 3.
    @Test func theFeatureGoesWithZstdOnlyAndBesideTheShuffleCodec() throws {
        let entries = [
            TestEntry(.file, "a.md", Self.notes[0]),
            TestEntry(.file, "emb.npy", TestArchive.gaussianFloats(Self.fs / 4 - 10)),
        ]
        for compression in [CompressionAlgorithm.zlib(level: 6), .stored] {
            var o = Self.options(seed: "not zstd")
            o.compression = compression
            let bytes = try TestArchive.build(entries, options: o)
            #expect(try ShuffleArchiveTests.header(bytes).features == [])
            let back = try TestReader.readAll(bytes)
            #expect(back.manifest.metadata[ArchiveDictionary.metadataKey] == nil)
        }
        var o = Self.options(seed: "with shuffle")
        o.shuffle = .vectorFiles
        let bytes = try TestArchive.build(entries, options: o)
        #expect(try ShuffleArchiveTests.header(bytes).features == [.shuffle, .dictionary])
        #expect(try ShuffleArchiveTests.codecs(bytes) == [[4], [3]])
        #expect(try TestReader.readAll(bytes).data == entries.map(\.data))
    }

    /// A writer never lets a copied manifest bring a dictionary key along that it does not use.
    @Test func aCopiedKeyIsDropped() throws {
        var metadata = Metadata(["created-by": "sealbak test"])
        metadata[ArchiveDictionary.metadataKey] = ArchiveDictionary.encode(Vectors.dictionaryVectorDictionary)
        let bytes = try TestArchive.build(
            [TestEntry(.file, "a.md", Self.notes[0])],
            options: Self.options(seed: "copied key", dictionary: nil),
            metadata: metadata
        )
        let back = try TestReader.readAll(bytes)
        #expect(back.manifest.metadata[ArchiveDictionary.metadataKey] == nil)
        #expect(try ShuffleArchiveTests.header(bytes).version == 1)
    }

    /// Each archive of a chain has its own dictionary; references into a base decode its frames with the base's.
    @Test func eachArchiveOfAChainUsesItsOwnDictionary() throws {
        let first = ZstdDictionary.train(samples: Array(Self.notes.prefix(20)), capacity: 4096)!
        let second = ZstdDictionary.train(samples: Array(Self.notes.suffix(20)), capacity: 4096)!
        #expect(first != second)
        let e1 = Self.entries()
        var o = Self.options(seed: "chain root", dictionary: first)
        o.chain = .root(random: o.random)
        let root = try TestArchive.build(e1, options: o)
        var e2 = e1
        e2[0] = TestEntry(.file, "notes/0.md", Self.notes[0] + Array(" and a sentence added tonight.\n".utf8))
        e2.append(TestEntry(.file, "new.md", Self.notes[7] + Self.notes[8]))
        var o2 = Self.options(seed: "chain next", dictionary: second)
        let base = try ArchiveReader(
            input: InputFile(bytes: root, name: "root", seekable: true),
            secret: .password(Passphrase(string: "password"))
        )
        o2.chain = try ChainWriteContext.continuing(from: base)
        let next = try TestArchive.build(e2, options: o2)
        #expect(try ShuffleArchiveTests.header(next).features == [.chained, .dictionary])
        let chain = TestChain(bases: [root])
        #expect(try TestReader.readAll(next, chain: chain).data == e2.map(\.data))
        #expect(try TestReader.randomAccessFailureClass(next, password: "password", chain: chain) == nil)
    }

    @Test func rekeyKeyChangesAndConsolidateKeepTheDictionary() throws {
        let entries = Self.entries()
        let bytes = try TestArchive.build(entries, options: Self.options(seed: "rekey"))
        let (out, _, edited) = try ShuffleArchiveTests.rotateThenAddPassword(bytes)
        #expect(try ShuffleArchiveTests.header(out).features == .dictionary)
        #expect(try ShuffleArchiveTests.codecs(out, password: "new") == ShuffleArchiveTests.codecs(bytes))
        #expect(try TestReader.readAll(out, password: "new").data == entries.map(\.data))

        #expect(try ShuffleArchiveTests.header(edited).features == .dictionary)
        #expect(try TestReader.readAll(edited, password: "second").data == entries.map(\.data))

        let reader = try ArchiveReader(
            input: InputFile(bytes: bytes, name: "a", seekable: true),
            secret: .password(Passphrase(string: "password"))
        )
        let copy = ByteCollector()
        _ = try Consolidate.copy(
            from: reader,
            passwords: [PasswordSlotSpec(passphrase: Passphrase(string: "copy"))],
            recipients: [],
            options: TestArchive.options(seed: "consolidate"),
            sink: { copy.append($0) }
        )
        #expect(try ShuffleArchiveTests.header(copy.bytes).features == .dictionary)
        let back = try TestReader.readAll(copy.bytes, password: "copy")
        #expect(back.data == entries.map(\.data))
        #expect(
            back.manifest.metadata[ArchiveDictionary.metadataKey]
                == ArchiveDictionary.encode(Vectors.dictionaryVectorDictionary)
        )
    }

    /// Spec §6.2 rule 1, §7.4: the manifest is read before the dictionary is known, so a codec-4 manifest frame is
    /// payload, even in an archive that declares the feature and holds a good dictionary.
    @Test func aManifestFrameInCodecFourIsPayload() throws {
        var o = Self.options(seed: "manifest codec 4")
        o.frameSizeLog2 = 16
        let bytes = try TestArchive.build([TestEntry(.file, "a.md", Self.notes[0])], options: o)
        var forge = try ArchiveForge(bytes, password: "password")
        let reader = try ArchiveReader(
            input: InputFile(bytes: bytes, name: "a", seekable: true),
            secret: .password(Passphrase(string: "password"))
        )
        let plain = reader.manifest.encoded()
        let d = try ZstdDictionary(Vectors.dictionaryVectorDictionary, level: 3)
        let payload = [UInt8](byteCapacity: plain.count) { out in
            precondition(FrameCompressor().compress(plain.span.bytes, into: &out, algorithm: .dictionaryZstd(d)) != nil)
        }
        #expect(forge.manifest.count == 1)
        forge.manifest = [FramePlaintext.prefix(codec: .dictionaryZstd, rawLength: plain.count) + payload]
        let forged = forge.assemble()
        let e = TestReader.failure(forged)
        #expect(try TestReader.formatClass(e) == .payload)
        #expect(e?.message.contains("codec 4") == true, "\(String(describing: e?.message))")
    }

    /// The dictionary codec is the writer's choice per frame; a whole-archive `.dictionaryZstd` or bytes that are not
    /// a dictionary are usage errors, before anything is written.
    @Test func theWriterRefusesWhatItCannotDeclare() throws {
        var o = Self.options(seed: "refused")
        o.compression = .dictionaryZstd(try ZstdDictionary(Vectors.dictionaryVectorDictionary, level: 3))
        #expect {
            _ = try TestArchive.build([TestEntry(.file, "a.md", Self.notes[0])], options: o)
        } throws: { ($0 as? SealbakError)?.code == .usage }
        var bad = Self.options(seed: "not a dictionary", dictionary: TestArchive.text(4096))
        bad.compression = .zstd(level: 3)
        #expect {
            _ = try TestArchive.build([TestEntry(.file, "a.md", Self.notes[0])], options: bad)
        } throws: { ($0 as? SealbakError)?.code == .usage && "\($0)".contains("dictionary") }
    }
}
