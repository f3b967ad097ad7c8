import Foundation
import SealbakArchive
import SealbakCompression
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys

/// A valid test vector of Spec §12.
package struct ValidVector: Sendable {
    package var name: String
    package var description: String
    package var passwords: [String]
    package var entries: [TestEntry]
    package var options: WriteOptions
    package var metadata: Metadata = Metadata(["created-by": "sealbak vector generator"])
    /// X25519 secret keys (hex) whose public keys are recipients of the archive.
    package var identities: [String] = []
    /// Passwords that open the archive, when they differ from `passwords` (which become its type-1 slots): the
    /// spellings of a recovery code that `edit` adds as a type-3 slot.
    package var openWith: [String]?
    /// Re-encrypts the archive after `ArchiveWriter` wrote it (bytes no writer of sealbak emits, but valid).
    package var edit: (@Sendable (inout ArchiveForge) throws -> Void)?
    /// A chained archive (Spec §14): a root, or an incremental archive built on another valid vector.
    package var chain: ChainSpec?

    package enum ChainSpec: Sendable {
        /// The first archive of a chain, cutting chunks with these parameters.
        case root(ChunkerParameters)
        /// An archive whose base is the valid vector of this name.
        case incremental(base: String)
    }

    /// The valid vector this one's base record names, if any.
    package var chainBase: ValidVector? {
        guard case .incremental(let base) = chain else { return nil }
        return Vectors.valid().first { $0.name == base }!
    }

    /// The archives this vector's references may need, nearest base first, as a `TestChain` names them (the file
    /// names of the vectors).
    package func chainArchives() throws -> TestChain {
        var out = TestChain()
        var next = chainBase
        while let base = next {
            out.archives.append(("\(base.name).sbk", try base.build()))
            next = base.chainBase
        }
        return out
    }

    package var recipientKeys: [[UInt8]] {
        identities.map { X25519.publicKey(SecureBytes(copying: Vectors.unhex($0))) }
    }

    package func build() throws -> [UInt8] {
        var options = self.options
        switch chain {
        case nil: break
        case .root(let parameters): options.chain = .root(random: options.random, parameters: parameters)
        case .incremental:
            let base = chainBase!
            let input = InputFile(bytes: try base.build(), name: "\(base.name).sbk", seekable: true)
            let reader = try ArchiveReader(input: input, secret: .password(Passphrase(string: base.passwords[0])))
            options.chain = try ChainWriteContext.continuing(from: reader)
        }
        let bytes = try TestArchive.build(
            entries,
            passwords: passwords,
            recipients: recipientKeys,
            options: options,
            metadata: metadata
        )
        guard let edit else { return bytes }
        var forge = try ArchiveForge(bytes, password: passwords[0])
        try edit(&forge)
        return forge.assemble()
    }

    /// The codec byte of every frame of every entry of `bytes` (this vector, built), for the JSON of version-2
    /// vectors (Spec §12 `frame_codecs`).
    package static func frameCodecs(_ bytes: [UInt8], password: String) throws -> [[Int]] {
        try ArchiveForge(bytes, password: password).entries.map { $0.map { Int($0[0]) } }
    }

    package var compressionName: String {
        switch options.compression {
        case .zstd: "zstd"
        case .zlib: "zlib"
        case .stored: "stored"
        case .shuffledZstd: "shuffled zstd"
        case .dictionaryZstd: "dictionary zstd"
        }
    }
}

/// An invalid test vector: a valid one with exactly one defect, and the class a reader must report.
package struct InvalidVector: Sendable {
    package var name: String
    package var description: String
    package var base: String
    package var password: String
    package var expected: FailureClass
    package var bytes: [UInt8]
    /// The class a random-access reader (Spec §8.3) reports when it reads every entry, and the entries that fail
    /// when each is read alone (all others read fine): given where the class must not depend on the procedure.
    package var randomAccess: (expected: FailureClass, failingEntries: [Int])?
    /// For class `key`: which distinction of Spec §4.4 step 5 the reader reports.
    package var keyFailure: KeyFailure?
    /// For an incremental archive (Spec §14): its base, as a path relative to the `invalid/` folder.
    package var chainBase: String?
}

/// The messages of Spec §4.4 step 5 (all class `key`), in the order the spec checks them.
package enum KeyFailure: String, Sendable {
    case kdfCaps = "kdf-caps"
    case identityNeeded = "identity-needed"
    case unknownSlotTypes = "unknown-slot-types"
    case mistypedCode = "mistyped-code"
    case wrongPassword = "wrong-password"
}

/// An archive that reads without error (Spec §9) but that a conforming extractor MUST refuse to unpack, as a
/// whole and before it places anything, because two of its entries conflict (Spec §13 rule 9).
package struct ConflictVector: Sendable {
    package var name: String
    package var description: String
    package var entries: [TestEntry]
    /// The entry that may not be a non-directory (`outer`) and the entry below it (`inner`), by manifest index.
    package var outer: Int
    package var inner: Int

    package func build() throws -> [UInt8] {
        try TestArchive.build(
            entries,
            passwords: [Vectors.password],
            options: Vectors.opts(name),
            metadata: Metadata(["created-by": "sealbak vector generator"])
        )
    }
}

package enum Vectors {
    package static let password = "correct horse battery staple"
    /// The X25519 secret key of the recipient vectors (test only).
    package static let identity = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"

    package static func unhex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    static func opts(
        _ name: String,
        suite: CipherSuite = .xchacha20poly1305,
        compression: CompressionAlgorithm = .zstd(level: 3),
        shuffle: ShuffleSelection = .off
    ) -> WriteOptions {
        TestArchive.options(
            suite: suite,
            compression: compression,
            frameSizeLog2: 12,
            seed: "sealbak vector " + name,
            shuffle: shuffle
        )
    }

    /// The float32 entry of `valid/shuffle-codec` (Spec §12): 2 full frames and 3,075 bytes, 3 bytes into a number
    /// (a last frame of 1,027 bytes did not shrink, so it was stored and the tail rule went untested).
    package static let shuffleFloats = Array(TestArchive.gaussianFloats(2817, seed: 11).prefix(2 * 4096 + 3075))

    /// The notes of `valid/dictionary-codec` (Spec §12): generated text over one vocabulary, 600 to 3,000 bytes each,
    /// and note 5 of 5,000 bytes (one full frame and a last one).
    package static let dictionaryNotes: [[UInt8]] = {
        let words = [
            "vector", "chunk", "embedding", "index", "backup", "archive", "frame", "restore", "query", "row", "the",
            "of", "a", "database", "document", "model", "retrieval", "answer", "context", "token",
        ]
        var state: UInt64 = 0x5EA1_B0C5
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33)
        }
        return (0..<24).map { i in
            let size = i == 5 ? 5000 : 600 + next() % 2400
            var text = "# Note \(i)\n\n"
            while text.utf8.count < size { text += words[next() % words.count] + (next() % 12 == 0 ? ".\n" : " ") }
            return Array(text.utf8.prefix(size))
        }
    }()

    /// The dictionary of `valid/dictionary-codec`: 4 KiB trained on its notes (deterministic for one libzstd).
    package static let dictionaryVectorDictionary: [UInt8] = ZstdDictionary.train(
        samples: dictionaryNotes,
        capacity: 4096
    )!

    /// The valid vectors (frame size 4096 so that frame edges are cheap to reach).
    package static func valid() -> [ValidVector] {
        let fs = 4096
        var v: [ValidVector] = []
        func add(
            _ name: String,
            _ description: String,
            _ entries: [TestEntry],
            passwords: [String] = [password],
            suite: CipherSuite = .xchacha20poly1305,
            compression: CompressionAlgorithm = .zstd(level: 3),
            metadata: Metadata? = nil
        ) {
            var vec = ValidVector(
                name: name,
                description: description,
                passwords: passwords,
                entries: entries,
                options: opts(name, suite: suite, compression: compression)
            )
            if let metadata { vec.metadata = metadata }
            v.append(vec)
        }
        add("empty-archive", "an archive with no entries", [])
        add("empty-entry", "one file of zero bytes (a single empty stored frame)", [TestEntry(.file, "empty.txt")])
        add(
            "one-frame",
            "one file of exactly one frame (4096 bytes)",
            [TestEntry(.file, "one-frame.bin", TestArchive.noise(fs, seed: 2))]
        )
        add(
            "frame-plus-one",
            "one file of 4097 bytes: a full frame and a 1-byte last frame",
            [TestEntry(.file, "frame-plus-one.bin", TestArchive.noise(fs + 1, seed: 3))]
        )
        add(
            "multi-frame-text",
            "compressible text over several frames, zstd",
            [TestEntry(.file, "dump.sql", TestArchive.text(3 * fs + 123))]
        )
        add(
            "aes-256-gcm",
            "cipher suite 2 (AES-256-GCM) with text and noise",
            [
                TestEntry(.file, "a.txt", TestArchive.text(fs + 10)),
                TestEntry(.file, "b.bin", TestArchive.noise(100, seed: 4)),
            ],
            suite: .aes256gcm
        )
        add(
            "compression-zlib",
            "zlib (RFC 1950) frames",
            [TestEntry(.file, "notes.txt", TestArchive.text(2 * fs + 7))],
            compression: .zlib(level: 6)
        )
        add(
            "compression-stored",
            "no compression: every frame stored",
            [TestEntry(.file, "notes.txt", TestArchive.text(2 * fs + 7))],
            compression: .stored
        )
        add(
            "incompressible",
            "zstd requested on random bytes: frames fall back to stored",
            [TestEntry(.file, "embeddings.f32", TestArchive.noise(2 * fs + 512, seed: 5))]
        )
        add(
            "two-key-slots",
            "two password slots open the same archive (passwords[0] and passwords[1])",
            [TestEntry(.file, "secret.env", Array("API_KEY=not-a-real-key\n".utf8))],
            passwords: [password, "second password"]
        )
        var recipient = ValidVector(
            name: "x25519-recipient",
            description: "one password slot and one X25519 recipient slot (secret key in identities[0])",
            passwords: [password],
            entries: [TestEntry(.file, "db.dump", TestArchive.noise(5000, seed: 12))],
            options: opts("x25519-recipient")
        )
        recipient.identities = [identity]
        v.append(recipient)
        var recipientOnly = ValidVector(
            name: "x25519-only",
            description: "only an X25519 recipient slot: no password opens it (secret key in identities[0])",
            passwords: [],
            entries: [TestEntry(.file, "notes.txt", TestArchive.text(3000))],
            options: opts("x25519-only")
        )
        recipientOnly.identities = [identity]
        v.append(recipientOnly)
        var many: [TestEntry] = [
            TestEntry(.directory, "app"), TestEntry(.directory, "app/config"), TestEntry(.directory, "app/docs"),
        ]
        for i in 0..<30 { many.append(TestEntry(.file, "app/docs/page-\(i).md", TestArchive.text(37 * i))) }
        many.append(TestEntry(.symlink, "app/docs/latest.md", link: "page-29.md"))
        many.append(TestEntry(.file, "app/config/settings.json", Array("{\"top_k\": 8}\n".utf8), mode: 0o600))
        many.append(TestEntry(.stream, "app/db.dump", TestArchive.noise(fs * 2, seed: 6), mode: 0o600))
        add("many-entries", "36 entries: directories, files, a symlink and a stream", many)
        add(
            "metadata-unicode",
            "archive and entry metadata, non-ASCII names",
            [
                TestEntry(
                    .file,
                    "données/résumé-日本.txt",
                    Array("héllo\n".utf8),
                    metadata: Metadata(["kind": "config", "secrets": "1"])
                )
            ],
            metadata: Metadata([
                "created-by": "sealbak vector generator", "host": "vector-host", "plan": "{\"components\": []}",
            ])
        )

        // §6.2 rule 7: a zstd frame whose window is exactly the frame size (not single-segment) is valid.
        var windowAtCap = ValidVector(
            name: "zstd-window-at-cap",
            description:
                "every zstd frame re-headed: not single-segment, Window_Size 4096 = frame_size (the largest "
                + "allowed), Frame_Content_Size present",
            passwords: [password],
            entries: [TestEntry(.file, "dump.sql", TestArchive.text(3 * fs + 123))],
            options: opts("zstd-window-at-cap")
        )
        windowAtCap.edit = { forge in
            forge.entries[0] = try forge.entries[0].map {
                $0[0] == CompressionCodec.zstd.rawValue ? try ArchiveForge.reheadedZstd($0, windowLog: 12) : $0
            }
        }
        v.append(windowAtCap)

        // §7.2, §13: names are bytes. NFC "é" (c3 a9) and NFD "é" (65 cc 81) are different names, and a file named
        // with one spelling is not an ancestor of an entry below the other: nothing here conflicts.
        add(
            "names-nfc-nfd",
            "NFC and NFD spellings of the same text are different entries (names are bytes): a directory \"\u{e9}\" "
                + "with a file in it, and a file \"e\u{301}\"",
            [
                TestEntry(.directory, "\u{e9}"), TestEntry(.file, "\u{e9}/nfc.txt", Array("NFC\n".utf8)),
                TestEntry(.file, "e\u{301}", Array("NFD\n".utf8)),
            ]
        )

        // §4.4, §4.5.3: a recovery slot opens with the code in any accepted spelling; a type-1 password that is
        // shaped like a code with a wrong checksum still opens its slot (typos are reported only after every slot).
        let code = recoveryCode
        var recovery = ValidVector(
            name: "recovery-code",
            description:
                "a password slot and a recovery-code slot (type 3): the password and the code (grouped, bare, lower "
                + "case with o for 0 and l for 1) open it",
            passwords: [password],
            entries: [TestEntry(.file, "notes.txt", TestArchive.text(3000))],
            options: opts("recovery-code")
        )
        recovery.openWith = [
            password, code.display, code.canonical,
            code.display.lowercased().replacingOccurrences(of: "0", with: "o").replacingOccurrences(of: "1", with: "l"),
        ]
        recovery.edit = { forge in try addRecoverySlot(&forge, code: code.canonical) }
        v.append(recovery)
        var shaped = ValidVector(
            name: "password-shaped-like-code",
            description:
                "the type-1 slot's password is 28 code characters with a wrong checksum (a mistyped code) and the "
                + "archive has a recovery slot: the password still opens its slot",
            passwords: [codeShapedPassword],
            entries: [TestEntry(.file, "notes.txt", TestArchive.text(3000))],
            options: opts("password-shaped-like-code")
        )
        shaped.edit = { forge in try addRecoverySlot(&forge, code: code.canonical) }
        v.append(shaped)

        // §3.4, §6.2: format version 2 with feature bit 0; the float32 entry in codec-3 frames, the text in zstd.
        v.append(
            ValidVector(
                name: "shuffle-codec",
                description:
                    "format version 2, feature bit 0 (shuffle): embeddings.f32 (Gaussian float32, 11267 bytes: the "
                    + "last frame ends 3 bytes into a number) in codec-3 frames (zstd over the 4-byte-shuffled "
                    + "bytes), notes.txt in zstd frames",
                passwords: [password],
                entries: [
                    TestEntry(.file, "embeddings.f32", shuffleFloats),
                    TestEntry(.file, "notes.txt", TestArchive.text(3000)),
                ],
                options: opts("shuffle-codec", shuffle: .vectorFiles)
            )
        )

        // §3.4, §6.2, §7.4: format version 2 with feature bit 2; frames smaller than a frame in codec 4 (zstd with the
        // archive's dictionary), the full frame of the larger note in zstd.
        var dictionaryOptions = opts("dictionary-codec")
        dictionaryOptions.dictionary = dictionaryVectorDictionary
        v.append(
            ValidVector(
                name: "dictionary-codec",
                description:
                    "format version 2, feature bit 2 (dictionary): a 4 KiB zstd dictionary trained on the notes in the "
                    + "archive metadata (sealbak.zstd-dictionary, base64); every note smaller than a frame is one "
                    + "codec-4 frame, note-05.md (5000 bytes) a full zstd frame and a codec-4 last frame",
                passwords: [password],
                entries: dictionaryNotes.enumerated().map { i, text in
                    TestEntry(.file, "notes/note-\(i < 10 ? "0" : "")\(i).md", text)
                },
                options: dictionaryOptions
            )
        )

        // §14: a chain of two archives. Small chunks (256 / 1024 / 4096) so that a few kilobytes make several.
        var root = ValidVector(
            name: "chain-root",
            description:
                "the root of a chain (format version 2, feature bit 1, chain depth 0): every chunk a literal, "
                + "chunker fastcdc-1 256 1024 4096",
            passwords: [password],
            entries: chainRootEntries,
            options: opts("chain-root")
        )
        root.chain = .root(chainParameters)
        v.append(root)
        var incremental = ValidVector(
            name: "chain-incremental",
            description:
                "an incremental archive (chain depth 1) whose base is chain-root: notes.txt and db.dump unchanged "
                + "(references), 100 bytes inserted in the middle of dump.sql (references and literals), new.bin "
                + "new (literals), old.log deleted",
            passwords: [password],
            entries: chainIncrementalEntries,
            options: opts("chain-incremental")
        )
        incremental.chain = .incremental(base: "chain-root")
        v.append(incremental)
        return v
    }

    /// The chunking parameters of the chain vectors.
    package static let chainParameters = ChunkerParameters(minSize: 256, averageSize: 1024, maxSize: 4096)

    /// The content of `app/dump.sql` in the chain root (several chunks).
    static let chainDump = TestArchive.text(10_000)

    package static let chainRootEntries: [TestEntry] = [
        TestEntry(.directory, "app"),
        TestEntry(.file, "app/dump.sql", chainDump),
        TestEntry(.file, "app/notes.txt", TestArchive.noise(3000, seed: 21)),
        TestEntry(.file, "app/old.log", TestArchive.noise(2000, seed: 22)),
        TestEntry(.file, "app/empty.txt"),
        TestEntry(.symlink, "app/latest", link: "dump.sql"),
        TestEntry(.stream, "app/db.dump", TestArchive.noise(6000, seed: 23), mode: 0o600),
    ]

    package static let chainIncrementalEntries: [TestEntry] = [
        TestEntry(.directory, "app"),
        TestEntry(
            .file,
            "app/dump.sql",
            Array(chainDump[..<5000]) + Array(repeating: UInt8(ascii: "+"), count: 100) + Array(chainDump[5000...])
        ),
        TestEntry(.file, "app/notes.txt", TestArchive.noise(3000, seed: 21)),
        TestEntry(.file, "app/new.bin", TestArchive.noise(1500, seed: 24)),
        TestEntry(.file, "app/empty.txt"),
        TestEntry(.symlink, "app/latest", link: "dump.sql"),
        TestEntry(.stream, "app/db.dump", TestArchive.noise(6000, seed: 23), mode: 0o600),
    ]

    /// The kind of every record of every entry of a chained archive (`literal`, `reference`; Spec §14.2), read
    /// without the chain: for the JSON of the chain vectors.
    package static func recordKinds(_ bytes: [UInt8], password: String) throws -> [[String]] {
        let forge = try ArchiveForge(bytes, password: password)
        return try forge.contents.indices.map { i in
            try forge.records(i).map {
                switch $0 {
                case .literal: "literal"
                case .reference: "reference"
                }
            }
        }
    }

    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    /// The recovery code of the recovery vectors (seeded, so the same every run).
    package static let recoveryCode: (display: String, canonical: String) = {
        let (display, secret) = RecoveryCode.generate(
            random: SeededRandom(seed: SHA256Hasher.hash(Array("sealbak vector recovery code".utf8)))
        )
        return (display, secret.bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) })
    }()

    /// `recoveryCode` with data character 5 replaced by the next alphabet character: a single typo (§4.5.3).
    package static let mistypedRecoveryCode: String = {
        var c = Array(recoveryCode.canonical)
        c[5] = alphabet[(alphabet.firstIndex(of: c[5])! + 1) % 32]
        return String(c)
    }()

    /// 28 code characters whose last check character is wrong: a password shaped like a mistyped code.
    package static let codeShapedPassword: String = {
        var c = Array(recoveryCode.canonical)
        c[0] = alphabet[(alphabet.firstIndex(of: c[0])! + 7) % 32]
        c[27] = alphabet[(alphabet.firstIndex(of: c[27])! + 1) % 32]
        return String(c)
    }()

    /// Adds a type-3 slot for `code` (canonical form) after the existing slots: a header-only change (§11.3).
    static func addRecoverySlot(_ forge: inout ArchiveForge, code: String) throws {
        let slot = try KeySlots.passwordSlot(
            id: (forge.header.slots.map(\.id).max() ?? 0) + 1,
            label: "recovery code",
            createdUnix: TestArchive.fixedTime,
            passphrase: Passphrase(string: code),
            kdf: TestArchive.cheapKDF,
            archiveID: forge.header.archiveID,
            master: forge.master,
            random: SeededRandom(seed: SHA256Hasher.hash(Array("sealbak vector recovery slot".utf8))),
            isRecovery: true
        )
        forge.setSlots(forge.header.slots + [slot])
    }

    /// Archives that read without error but whose entries conflict (Spec §13 rule 9): extractors MUST refuse them.
    package static func conflicts() -> [ConflictVector] {
        let x = Array("x\n".utf8)
        return [
            ConflictVector(
                name: "file-then-child",
                description: "file \"a\", then file \"a/b\" below it",
                entries: [TestEntry(.file, "a", x), TestEntry(.file, "a/b", x)],
                outer: 0,
                inner: 1
            ),
            ConflictVector(
                name: "child-then-file",
                description: "file \"a/b\", then file \"a\" (order does not matter)",
                entries: [TestEntry(.file, "a/b", x), TestEntry(.file, "a", x)],
                outer: 1,
                inner: 0
            ),
            ConflictVector(
                name: "stream-then-child",
                description: "stream \"s\", then directory \"s/d\"",
                entries: [TestEntry(.stream, "s", x), TestEntry(.directory, "s/d")],
                outer: 0,
                inner: 1
            ),
            ConflictVector(
                name: "deep-below-file",
                description: "directory \"a\", file \"a/b\", then file \"a/b/c/d\" two levels below the file",
                entries: [TestEntry(.directory, "a"), TestEntry(.file, "a/b", x), TestEntry(.file, "a/b/c/d", x)],
                outer: 1,
                inner: 2
            ),
            ConflictVector(
                name: "symlink-dot-then-child",
                description: "symlink \"a\" -> \".\" (rule 5 would restore it), then file \"a/b\"",
                entries: [TestEntry(.symlink, "a", link: "."), TestEntry(.file, "a/b", x)],
                outer: 0,
                inner: 1
            ),
            ConflictVector(
                name: "skipped-symlink-then-child",
                description: "symlink \"a\" -> \"/tmp\" (rule 5 skips it), then file \"a/b\": still a conflict",
                entries: [TestEntry(.symlink, "a", link: "/tmp"), TestEntry(.file, "a/b", x)],
                outer: 0,
                inner: 1
            ),
            ConflictVector(
                name: "directory-through-symlink",
                description:
                    "directory \"d\", symlink \"a\" -> \"d\", then directory \"a/sub\" and file \"a/sub/f\" reached "
                    + "through the link",
                entries: [
                    TestEntry(.directory, "d"), TestEntry(.symlink, "a", link: "d"), TestEntry(.directory, "a/sub"),
                    TestEntry(.file, "a/sub/f", x),
                ],
                outer: 1,
                inner: 2
            ),
        ]
    }

    package static func invalid() throws -> [InvalidVector] {
        let valid = Dictionary(uniqueKeysWithValues: valid().map { ($0.name, $0) })
        let text = valid["multi-frame-text"]!
        let textBytes = try text.build()
        let textLayout = try ArchiveLayout(textBytes, entryCount: text.entries.count)
        let many = valid["many-entries"]!
        let manyBytes = try many.build()
        let manyLayout = try ArchiveLayout(manyBytes, entryCount: many.entries.count)
        var out: [InvalidVector] = []
        var built: [String: [UInt8]] = ["multi-frame-text": textBytes, "many-entries": manyBytes]
        func bytes(of base: String) throws -> [UInt8] {
            if let b = built[base] { return b }
            let b = try valid[base]!.build()
            built[base] = b
            return b
        }
        func add(
            _ name: String,
            _ expected: FailureClass,
            _ description: String,
            base: String = "multi-frame-text",
            password: String = Vectors.password,
            randomAccess: (FailureClass, [Int])? = nil,
            key: KeyFailure? = nil,
            _ mutate: (inout [UInt8]) throws -> Void
        ) rethrows {
            var b = try! bytes(of: base)
            try mutate(&b)
            let chainBase = valid[base]!.chainBase.map { "../valid/\($0.name).sbk" }
            out.append(
                InvalidVector(
                    name: name,
                    description: description,
                    base: base,
                    password: password,
                    expected: expected,
                    bytes: b,
                    randomAccess: randomAccess.map { (expected: $0.0, failingEntries: $0.1) },
                    keyFailure: key,
                    chainBase: chainBase
                )
            )
        }
        /// Re-encrypts `base` after `edit` (a writer that knows the password wrote these bytes).
        func forged(
            _ base: String,
            _ edit: (inout ArchiveForge) throws -> Void,
            trailer: (inout Trailer) -> Void = { _ in }
        ) throws -> [UInt8] {
            var forge = try ArchiveForge(try bytes(of: base), password: valid[base]!.passwords[0])
            try edit(&forge)
            return forge.assemble(editTrailer: trailer)
        }
        let allMany = Array(many.entries.indices)
        let h = textLayout.headerLength
        let slot = 41  // first slot envelope
        let labelLength = Int(textBytes[slot + 12])
        let body = slot + 13 + labelLength + 2  // first byte of the password slot body

        // header
        add("bad-magic", .header, "first magic byte changed") { $0[0] ^= 0xFF }
        add("version-zero", .header, "format version 0") {
            $0[8] = 0
            $0[9] = 0
        }
        add("header-flags", .header, "reserved header flags set") { $0[12] = 1 }
        add("unknown-cipher", .header, "cipher suite 3 does not exist") { $0[14] = 3 }
        add("frame-size-too-small", .header, "frame size 2^11 is below the minimum") { $0[15] = 11 }
        add("frame-size-too-large", .header, "frame size 2^25 is above the maximum") { $0[15] = 25 }
        add("slot-count-zero", .header, "slot count 0") { $0[40] = 0 }
        add("slot-flags", .header, "reserved slot flags set") { $0[slot + 1] = 1 }
        add("slot-id-zero", .header, "slot id 0 (ids must be non-zero and increasing)") {
            $0[slot + 2] = 0
            $0[slot + 3] = 0
        }
        add("slot-label-too-long", .header, "slot label length 65 (limit 64)") { $0[slot + 12] = 65 }
        add("slot-body-length", .header, "password slot body length 96 instead of 97") { $0[body - 2] = 96 }
        add("kdf-parallelism", .header, "Argon2id parallelism 2 (only 1 is defined)") { $0[body + 8] = 2 }
        add("kdf-memory-below-minimum", .header, "Argon2id memory 4 KiB (minimum 8)") {
            $0[body + 4] = 4
            $0[body + 5] = 0
            $0[body + 6] = 0
            $0[body + 7] = 0
        }
        add("header-length-short", .truncated, "header length claims more bytes than the file has") {
            $0[10] = 0xFF
            $0[11] = 0xFF
            $0.removeSubrange(100...)
        }
        add("header-length-long", .header, "header length 1 larger than the slots and MAC it holds") { b in
            let n = (Int(b[10]) | Int(b[11]) << 8) + 1
            b[10] = UInt8(n & 0xFF)
            b[11] = UInt8(n >> 8)
        }
        // version
        // Version 2 exists since the shuffle feature (Spec §3.4): with flags 0 it declares no feature, which only
        // version 1 may do (class header). The bytes are the same as when this vector meant "newer sealbak".
        add(
            "version-two",
            .header,
            "format version 2 with flags 0: a version-2 header must declare a feature (Spec §3.4 rule 1)"
        ) { $0[8] = 2 }
        // key
        add(
            "wrong-password",
            .key,
            "the archive is intact; the password given is wrong",
            password: "wrong password",
            key: .wrongPassword
        ) { _ in }
        add("wrapped-key-altered", .key, "one byte of the wrapped master key flipped", key: .wrongPassword) {
            $0[body + 49 + 5] ^= 0x01
        }
        add("salt-altered", .key, "one byte of the Argon2id salt flipped", key: .wrongPassword) { $0[body + 9] ^= 0x01 }
        add(
            "archive-id-altered",
            .key,
            "archive id changed (it is bound into the key slot's associated data)",
            key: .wrongPassword
        ) { $0[16] ^= 0x01 }
        // mac
        add("created-altered", .mac, "creation time changed: only the header MAC catches it") { $0[32] ^= 0x01 }
        add("label-altered", .mac, "slot label changed: only the header MAC catches it") { $0[slot + 13] ^= 0x20 }
        add("header-mac-altered", .mac, "last byte of the header MAC flipped") { $0[h - 1] ^= 0x01 }
        // payload
        add("manifest-bit-flip", .payload, "one bit of the manifest ciphertext flipped") {
            $0[textLayout.manifest[0].offset + 20] ^= 0x04
        }
        add("entry-bit-flip", .payload, "one bit of an entry frame's ciphertext flipped", randomAccess: (.payload, [0]))
        { $0[textLayout.entries[0][1].offset + 30] ^= 0x80 }
        add(
            "entry-tag-flip",
            .payload,
            "last byte of frame 0's tag flipped: random access cannot tell this from a misplaced entry until it "
                + "walks the frame headers (§8.3 step 8)",
            randomAccess: (.payload, [0])
        ) { b in
            let f = textLayout.entries[0][0]
            b[f.offset + f.length - 1] ^= 0x01
        }
        add("frames-swapped", .payload, "frames 0 and 1 of an entry swapped") { b in
            let f0 = textLayout.entries[0][0]
            let f1 = textLayout.entries[0][1]
            let a = Array(b[f0.offset..<f0.offset + f0.length])
            let c = Array(b[f1.offset..<f1.offset + f1.length])
            b.replaceSubrange(f0.offset..<f1.offset + f1.length, with: c + a)
        }
        add("frame-duplicated", .payload, "frame 0 of an entry repeated in place of frame 1") { b in
            let f0 = textLayout.entries[0][0]
            let f1 = textLayout.entries[0][1]
            b.replaceSubrange(f1.offset..<f1.offset + f1.length, with: Array(b[f0.offset..<f0.offset + f0.length]))
        }
        add("frame-dropped", .payload, "frame 1 of an entry removed") { b in
            let f1 = textLayout.entries[0][1]
            b.removeSubrange(f1.offset..<f1.offset + f1.length)
        }
        add("last-flag-cleared", .payload, "the last-frame flag of an entry's last frame cleared") { b in
            b[textLayout.entries[0].last!.offset + 3] &= 0x7F
        }
        add("frame-length-altered", .payload, "a frame header's length set below the minimum") { b in
            let o = textLayout.entries[0][0].offset
            b[o] = 3
            b[o + 1] = 0
            b[o + 2] = 0
        }
        add(
            "entries-swapped",
            .payload,
            "the streams of two entries with equal-length streams swapped",
            base: "many-entries"
        ) { b in
            // page-1 and page-2 entries hold 37 and 74 bytes: find two file streams of equal encoded length.
            var chosen: (Range<Int>, Range<Int>)?
            outer: for i in manyLayout.entries.indices {
                for j in manyLayout.entries.indices where j > i {
                    let ri = manyLayout.streamRange(manyLayout.entries[i])
                    let rj = manyLayout.streamRange(manyLayout.entries[j])
                    if ri.count == rj.count && many.entries[i].kind == .file && many.entries[j].kind == .file
                        && many.entries[i].data != many.entries[j].data
                    {
                        chosen = (ri, rj)
                        break outer
                    }
                }
            }
            let (ri, rj) = chosen!
            let a = Array(b[ri])
            let c = Array(b[rj])
            b.replaceSubrange(rj, with: a)
            b.replaceSubrange(ri, with: c)
        }
        // A second archive with the same password and same layout: its entry stream spliced in.
        var other = text
        other.options = opts("multi-frame-text other archive")
        let otherBytes = try other.build()
        let otherLayout = try ArchiveLayout(otherBytes, entryCount: other.entries.count)
        add(
            "spliced-from-other-archive",
            .payload,
            "entry stream replaced by the same entry from another archive with the same password"
        ) { b in
            let r = textLayout.streamRange(textLayout.entries[0])
            b.replaceSubrange(r, with: otherBytes[otherLayout.streamRange(otherLayout.entries[0])])
        }
        // truncated
        add("empty-file", .truncated, "zero bytes") { $0 = [] }
        add("truncated-in-header", .truncated, "cut inside the key slot") { $0.removeSubrange(80...) }
        add("truncated-in-frame", .truncated, "cut in the middle of an entry frame") {
            $0.removeSubrange((textLayout.entries[0][1].offset + 100)...)
        }
        add("truncated-at-frame-boundary", .truncated, "cut right after an entry's last frame (trailer missing)") { b in
            b.removeSubrange(textLayout.trailer[0].offset...)
        }
        add("truncated-footer", .truncated, "the last 10 bytes of the footer missing") { $0.removeLast(10) }
        add("footer-missing", .truncated, "the whole footer missing") { $0.removeLast(FormatV1.footerByteCount) }
        // trailer
        add("trailer-bit-flip", .trailer, "one bit of the trailer ciphertext flipped") {
            $0[textLayout.trailer[0].offset + 10] ^= 0x01
        }
        add("footer-magic", .trailer, "footer magic changed") { $0[$0.count - 1] ^= 0x01 }
        add("footer-offset", .trailer, "footer's trailer offset changed") { b in b[textLayout.footerOffset] ^= 0x01 }
        add("footer-length", .trailer, "footer's trailer length changed") { b in b[textLayout.footerOffset + 8] ^= 0x01
        }
        add("bytes-after-footer", .trailer, "one byte appended after the footer") { $0.append(0) }

        // §4.1 (item: label is UTF-8) and §3.1 step 4 order (slot type 0 is checked before the fields after it).
        add("slot-label-not-utf8", .header, "first byte of the slot label replaced by 0xFF (labels are UTF-8)") {
            $0[slot + 13] = 0xFF
        }
        add(
            "slot-type-zero",
            .header,
            "slot type 0, also with reserved slot flags set: the type is checked first (field order)"
        ) { b in
            b[slot] = 0
            b[slot + 1] = 1
        }

        // §4.4 step 5 (d)/(e): a mistyped recovery code is refused only after every slot was tried.
        add(
            "recovery-code-mistyped",
            .key,
            "a recovery code with one mistyped character, for an archive with a recovery slot: reported as a "
                + "mistyped code",
            base: "recovery-code",
            password: mistypedRecoveryCode,
            key: .mistypedCode
        ) { _ in }
        add(
            "recovery-code-mistyped-no-recovery-slot",
            .key,
            "the same mistyped code for an archive without a recovery slot: a wrong password",
            password: mistypedRecoveryCode,
            key: .wrongPassword
        ) { _ in }

        // §6.2 rule 7: Window_Size at most frame_size; no Dictionary_ID field, even one holding 0.
        let zstdFrame = 1  // a zstd frame of multi-frame-text's entry (frame 1 of 4)
        let textFrames = try ArchiveForge(textBytes, password: password).entries[0]
        precondition(textFrames[zstdFrame][0] == CompressionCodec.zstd.rawValue)
        add(
            "zstd-window-over-cap",
            .payload,
            "one zstd frame re-headed with Window_Size 8192, twice the frame size; it decodes fine in libzstd",
            randomAccess: (.payload, [0])
        ) { b in
            b = try! forged(
                "multi-frame-text",
                { $0.entries[0][zstdFrame] = try ArchiveForge.reheadedZstd($0.entries[0][zstdFrame], windowLog: 13) }
            )
        }
        add(
            "zstd-dictionary-id-zero",
            .payload,
            "one zstd frame re-headed with a 1-byte Dictionary_ID field holding 0 (window 4096, allowed)",
            randomAccess: (.payload, [0])
        ) { b in
            b = try! forged(
                "multi-frame-text",
                {
                    $0.entries[0][zstdFrame] = try ArchiveForge.reheadedZstd(
                        $0.entries[0][zstdFrame],
                        windowLog: 12,
                        dictionaryIDBytes: 1
                    )
                }
            )
        }

        // §7.2: byte-equal names are duplicates (class payload, before anything is extracted).
        let page1 = many.entries.firstIndex { $0.name == "app/docs/page-1.md" }!
        let page2 = page1 + 1
        add(
            "duplicate-name",
            .payload,
            "entry \"app/docs/page-2.md\" renamed to \"app/docs/page-1.md\", the name of the entry before it",
            base: "many-entries",
            randomAccess: (.payload, allMany)
        ) { b in
            b = try! forged(
                "many-entries",
                { f in
                    var m = TestArchive.manifest(many.entries, metadata: many.metadata)
                    m.entries[page2].name = m.entries[page1].name
                    f.setManifest(m)
                }
            )
        }

        // §8.2, §9.2 step 10, §8.3 step 8: an entry stream that disagrees with the trailer is class trailer, read
        // from a pipe or through the index alike.
        let dir = many.entries.firstIndex { $0.kind == .directory }!
        add(
            "directory-with-data",
            .trailer,
            "directory \"app\" has a 2-byte stream; the trailer records its size (2)",
            base: "many-entries",
            randomAccess: (.trailer, allMany)
        ) { b in
            b = try! forged("many-entries", { $0.setEntry(dir, data: Array("x\n".utf8)) })
        }
        add(
            "directory-with-data-recorded-empty",
            .trailer,
            "directory \"app\" has a 2-byte stream; the trailer records size 0 and the SHA-256 of nothing",
            base: "many-entries",
            randomAccess: (.trailer, [dir])
        ) { b in
            b = try! forged(
                "many-entries",
                { $0.setEntry(dir, data: Array("x\n".utf8)) },
                trailer: { t in
                    t.entries[dir].size = 0
                    t.entries[dir].sha256 = SHA256Hasher.hash([])
                }
            )
        }
        add(
            "entry-extent-shifted",
            .trailer,
            "the trailer moves the boundary between \"page-1.md\" and \"page-2.md\" 10 bytes later (offsets stay "
                + "contiguous); random access to page-2 alone must walk the frame headers to tell",
            base: "many-entries",
            randomAccess: (.trailer, [page1, page2])
        ) { b in
            b = try! forged(
                "many-entries",
                { _ in },
                trailer: { t in
                    t.entries[page1].length += 10
                    t.entries[page2].offset += 10
                    t.entries[page2].length -= 10
                }
            )
        }
        add(
            "entry-size-mismatch",
            .trailer,
            "the trailer records the entry's size one byte short",
            randomAccess: (.trailer, [0])
        ) { b in
            b = try! forged("multi-frame-text", { _ in }, trailer: { $0.entries[0].size -= 1 })
        }
        add(
            "entry-sha256-mismatch",
            .trailer,
            "the trailer records a SHA-256 with one bit flipped",
            randomAccess: (.trailer, [0])
        ) { b in
            b = try! forged("multi-frame-text", { _ in }, trailer: { $0.entries[0].sha256[0] ^= 0x01 })
        }

        // §3.1, §3.4: versions and required features. version-two (above) is version 2 with flags 0: class header.
        add("version-three", .version, "format version 3: made by a newer sealbak") { $0[8] = 3 }
        add(
            "feature-bit-unknown",
            .version,
            "format version 2 with flags 0x0008: feature bit 3 is reserved, so made by a newer sealbak"
        ) { b in
            b[8] = 2
            b[12] = 0x08
        }
        add(
            "feature-bit-unknown-with-shuffle",
            .version,
            "flags 0x8001: bit 0 (shuffle) is known, bit 15 is not, so made by a newer sealbak",
            base: "shuffle-codec"
        ) { $0[13] = 0x80 }
        add(
            "shuffle-feature-stripped",
            .mac,
            "version 2 → 1 and flags 0x0001 → 0 in the header of the shuffle vector, MAC not recomputed",
            base: "shuffle-codec"
        ) { b in
            b[8] = 1
            b[12] = 0
        }
        add(
            "shuffle-feature-added",
            .mac,
            "version 1 → 2 and flags 0 → 0x0001 in a version-1 archive, MAC not recomputed"
        ) { b in
            b[8] = 2
            b[12] = 0x01
        }
        // §6.2 rule 1: codec 3 only where the header declares feature bit 0.
        add(
            "shuffle-codec-in-version-1",
            .payload,
            "the shuffle vector re-headed as version 1 (flags 0) with a valid MAC: its codec-3 frames are payload",
            base: "shuffle-codec",
            randomAccess: (.payload, [0])
        ) { b in
            b = try! forged("shuffle-codec", { $0.setFeatures([]) })
        }
        // §6.2: the frame yields Unshuffle(zstd content); zstd data of the raw bytes decodes, then unshuffles to other
        // bytes than the trailer's SHA-256 is of. A reader that skips the unshuffle accepts this and fails the valid
        // vector.
        add(
            "shuffle-codec-not-shuffled",
            .trailer,
            "frame 0 of embeddings.f32 is codec 3 whose zstd data holds the raw bytes, not their shuffle: it "
                + "decodes, unshuffles to other bytes, and the entry's SHA-256 differs from the trailer's",
            base: "shuffle-codec",
            randomAccess: (.trailer, [0])
        ) { b in
            b = try! forged(
                "shuffle-codec",
                { f in
                    let raw = Array(f.contents[0][0..<f.frameSize])
                    let payload = [UInt8](byteCapacity: raw.count) { out in
                        let n = FrameCompressor().compress(raw.span.bytes, into: &out, algorithm: .zstd(level: 3))
                        precondition(n != nil)
                    }
                    precondition(f.entries[0][0][0] == CompressionCodec.shuffledZstd.rawValue)
                    f.entries[0][0] = FramePlaintext.prefix(codec: .shuffledZstd, rawLength: raw.count) + payload
                }
            )
        }
        // §6.2 rule 1, §7.4: codec 4 only where the header declares feature bit 2, and then only with a dictionary.
        add(
            "dictionary-codec-in-version-1",
            .payload,
            "the dictionary vector re-headed as version 1 (flags 0) with a valid MAC: its codec-4 frames are payload",
            base: "dictionary-codec",
            randomAccess: (.payload, Array(dictionaryNotes.indices))
        ) { b in
            b = try! forged("dictionary-codec", { $0.setFeatures([]) })
        }
        func dictionaryManifest(_ edit: (inout Manifest) -> Void) -> (inout ArchiveForge) throws -> Void {
            let reader = try! ArchiveReader(
                input: InputFile(bytes: try! bytes(of: "dictionary-codec"), name: "vector", seekable: true),
                secret: .password(Passphrase(string: password))
            )
            var manifest = reader.manifest
            edit(&manifest)
            return { $0.setManifest(manifest) }
        }
        add(
            "dictionary-missing",
            .payload,
            "feature bit 2 declared, but the archive metadata has no sealbak.zstd-dictionary",
            base: "dictionary-codec"
        ) { b in
            b = try! forged("dictionary-codec", dictionaryManifest { $0.metadata[ArchiveDictionary.metadataKey] = nil })
        }
        add(
            "dictionary-base64-not-canonical",
            .payload,
            "sealbak.zstd-dictionary is base64 whose last character before the padding has a padding bit set: it "
                + "decodes, but it is not the one canonical encoding",
            base: "dictionary-codec"
        ) { b in
            b = try! forged(
                "dictionary-codec",
                dictionaryManifest { m in
                    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
                    var text = Array(m.metadata[ArchiveDictionary.metadataKey]!)
                    let at = text.lastIndex { $0 != "=" }!
                    precondition(text.count - at - 1 == 2, "4096 bytes end with two padding characters")
                    text[at] = alphabet[alphabet.firstIndex(of: text[at])! ^ 1]
                    m.metadata[ArchiveDictionary.metadataKey] = String(text)
                }
            )
        }
        add(
            "dictionary-not-a-dictionary",
            .payload,
            "sealbak.zstd-dictionary is canonical base64 of 4096 bytes of text: no dictionary magic (37 A4 30 EC)",
            base: "dictionary-codec"
        ) { b in
            b = try! forged(
                "dictionary-codec",
                dictionaryManifest {
                    $0.metadata[ArchiveDictionary.metadataKey] = ArchiveDictionary.encode(TestArchive.text(4096))
                }
            )
        }
        add(
            "dictionary-codec-in-manifest",
            .payload,
            "the manifest stream in codec-4 frames compressed with the archive's own dictionary: only entry streams "
                + "may use codec 4, and the dictionary is not known while the manifest is read",
            base: "dictionary-codec"
        ) { b in
            b = try! forged(
                "dictionary-codec",
                { f in
                    let reader = try ArchiveReader(
                        input: InputFile(bytes: try bytes(of: "dictionary-codec"), name: "vector", seekable: true),
                        secret: .password(Passphrase(string: password))
                    )
                    let plain = reader.manifest.encoded()
                    let d = try ZstdDictionary(dictionaryVectorDictionary, level: 3)
                    f.manifest = f.storedFrames(plain).map { frame in
                        let raw = Array(frame[FormatV1.framePrefixByteCount...])
                        let payload = [UInt8](byteCapacity: raw.count) { out in
                            precondition(
                                FrameCompressor().compress(raw.span.bytes, into: &out, algorithm: .dictionaryZstd(d))
                                    != nil
                            )
                        }
                        return FramePlaintext.prefix(codec: .dictionaryZstd, rawLength: raw.count) + payload
                    }
                }
            )
        }
        // §6.2 rule 7 c holds for codec 4 too: the dictionary is the archive's, never named in a frame.
        add(
            "dictionary-codec-with-dictionary-id",
            .payload,
            "frame 0 of notes/note-00.md is codec 4 with a 4-byte Dictionary_ID field (the dictionary's id) inserted "
                + "into its zstd frame header",
            base: "dictionary-codec",
            randomAccess: (.payload, [0])
        ) { b in
            b = try! forged(
                "dictionary-codec",
                { f in
                    var env = f.entries[0][0]
                    precondition(env[0] == CompressionCodec.dictionaryZstd.rawValue)
                    let p = FormatV1.framePrefixByteCount
                    precondition(env[p + 4] & 0x23 == 0x20, "single-segment, no Dictionary_ID field")
                    env[p + 4] |= 0x03
                    let id = ZstdDictionary.id(of: dictionaryVectorDictionary)
                    env.insert(contentsOf: [UInt8].le(UInt64(id), count: 4), at: p + 5)
                    f.entries[0][0] = env
                }
            )
        }
        for d in try chainDefects() {
            add(d.name, d.expected, d.description, base: d.base, randomAccess: d.randomAccess) { b in
                b = try! forged(d.base, d.edit, trailer: d.trailer)
            }
        }
        return out
    }
}

/// One invalid chain vector: a valid chain vector re-encrypted after an edit.
struct ChainDefect {
    var name: String
    var expected: FailureClass
    var description: String
    var base: String
    var randomAccess: (FailureClass, [Int])?
    var edit: (inout ArchiveForge) throws -> Void
    var trailer: (inout Trailer) -> Void
}

extension Vectors {
    /// Spec §14: one defect each in a chain root or in the incremental archive built on it (whose base is
    /// `valid/chain-root.sbk`).
    static func chainDefects() throws -> [ChainDefect] {
        var out: [ChainDefect] = []
        let root = "chain-root"
        let incremental = "chain-incremental"
        let rootEntries = chainRootEntries
        let entries = chainIncrementalEntries
        let dump = rootEntries.firstIndex { $0.name == "app/dump.sql" }!
        let notes = entries.firstIndex { $0.name == "app/notes.txt" }!
        let all = Array(entries.indices)
        let allRoot = Array(rootEntries.indices)
        let rootForge = try ArchiveForge(try valid().first { $0.name == root }!.build(), password: password)
        func chainAdd(
            _ name: String,
            _ expected: FailureClass,
            _ description: String,
            base: String,
            randomAccess: (FailureClass, [Int])? = nil,
            _ edit: @escaping (inout ArchiveForge) throws -> Void,
            trailer: @escaping (inout Trailer) -> Void = { _ in }
        ) throws {
            out.append(
                ChainDefect(
                    name: name,
                    expected: expected,
                    description: description,
                    base: base,
                    randomAccess: randomAccess,
                    edit: edit,
                    trailer: trailer
                )
            )
        }
        func base(_ f: ArchiveForge) -> BaseRecord { f.header.base! }

        // §14.1: the base record (class header, checked after the slots, before any key is tried).
        try chainAdd(
            "chain-root-hash-nonzero",
            .header,
            "a root's base record (depth 0, base archive id zero) with a non-zero base trailer SHA-256; MAC recomputed",
            base: root
        ) { f in
            f.setBase(
                BaseRecord(
                    archiveID: [UInt8](repeating: 0, count: 16),
                    trailerSHA256: [1] + [UInt8](repeating: 0, count: 31),
                    depth: 0
                )
            )
        }
        try chainAdd(
            "chain-root-id-nonzero",
            .header,
            "a base record of depth 0 with a non-zero base archive id (hash zero); MAC recomputed",
            base: root
        ) { f in
            f.setBase(
                BaseRecord(
                    archiveID: [UInt8](repeating: 0x5A, count: 16),
                    trailerSHA256: [UInt8](repeating: 0, count: 32),
                    depth: 0
                )
            )
        }
        try chainAdd(
            "chain-base-is-self",
            .header,
            "the incremental archive's base record names its own archive id (hash and depth 1 kept); MAC recomputed",
            base: incremental
        ) { f in
            var b = base(f)
            b.archiveID = f.header.archiveID
            f.setBase(b)
        }
        try chainAdd(
            "chain-depth-over-limit",
            .header,
            "the incremental archive's base record has chain depth 1025 (limit 1024); MAC recomputed",
            base: incremental
        ) { f in
            var b = base(f)
            b.depth = 1025
            f.setBase(b)
        }

        // §14.2: record rules (class payload), in the root so that no base is involved.
        func editRecords(_ edit: @escaping (inout [UInt8]) -> Void) -> (inout ArchiveForge) throws -> Void {
            { f in
                var records = f.contents[dump]
                edit(&records)
                f.setEntry(dump, data: records)
            }
        }
        try chainAdd(
            "chain-record-tag-3",
            .payload,
            "the first record of app/dump.sql has tag 3 (1: literal, 2: reference)",
            base: root,
            randomAccess: (.payload, [dump]),
            editRecords { $0[0] = 3 }
        )
        try chainAdd(
            "chain-record-reserved-byte",
            .payload,
            "the byte after the tag of app/dump.sql's first record (a literal) is 1 instead of 0",
            base: root,
            randomAccess: (.payload, [dump]),
            editRecords { $0[1] = 1 }
        )
        try chainAdd(
            "chain-literal-length-zero",
            .payload,
            "the first record of app/dump.sql is a literal of length 0",
            base: root,
            randomAccess: (.payload, [dump]),
            editRecords { $0.replaceSubrange(4..<8, with: [0, 0, 0, 0]) }
        )
        try chainAdd(
            "chain-record-truncated",
            .payload,
            "the record stream of app/dump.sql ends one byte before the end of its last literal",
            base: root,
            randomAccess: (.payload, [dump]),
            editRecords { $0.removeLast() }
        )

        // §14.3: the index stream.
        let entryBytes = 4 + ChunkIndex.entryByteCount * rootEntries.count
        try chainAdd(
            "chain-index-unsorted",
            .payload,
            "chunks 0 and 1 of the root's index stream swapped: ids not strictly ascending",
            base: root,
            randomAccess: (.payload, allRoot)
        ) { f in
            var i = f.index!
            let c0 = entryBytes + 8
            let first = Array(i[c0..<c0 + 64])
            i.replaceSubrange(c0..<c0 + 64, with: i[c0 + 64..<c0 + 128])
            i.replaceSubrange(c0 + 64..<c0 + 128, with: first)
            f.index = i
        }
        try chainAdd(
            "chain-index-entry-count",
            .payload,
            "the root's index stream gives entry_count 8, the manifest 7",
            base: root,
            randomAccess: (.payload, allRoot)
        ) { f in f.index![0] += 1 }
        try chainAdd(
            "chain-index-content-sha256",
            .trailer,
            "the root's index stream records a content SHA-256 of app/dump.sql with one bit flipped",
            base: root,
            randomAccess: (.trailer, [dump])
        ) { f in f.index![4 + ChunkIndex.entryByteCount * dump + 8] ^= 0x01 }
        try chainAdd(
            "chain-index-stream-missing",
            .payload,
            "no index stream: the trailer follows the last entry stream and its trailer_offset is that stream's end. "
                + "A sequential reader meets the trailer's first frame where the index stream must be: its tag fails "
                + "under the index stream's key (payload). A random-access reader finds trailer_offset = the end "
                + "of the last entry stream in the trailer (trailer, Spec §14.3 / §8.2 item 7)",
            base: root
        ) { f in f.index = nil }
        try chainAdd(
            "chain-trailer-offset-at-streams-end",
            .trailer,
            "the index stream is present but the trailer's trailer_offset is the end of the last entry stream (§8.2 "
                + "item 7 as §14.3 amends it); the footer points to the trailer",
            base: root,
            randomAccess: (.trailer, allRoot)
        ) { _ in
        } trailer: { t in
            t.trailerOffset = t.streamsEnd
        }

        // §14.2, §14.5: references of the incremental archive (its base is valid/chain-root.sbk).
        func editReference(_ edit: @escaping (inout ChunkReference) -> Void) -> (inout ArchiveForge) throws -> Void {
            { f in
                var records = try f.records(notes)
                guard case .reference(var r) = records[0] else { preconditionFailure("notes.txt is one reference") }
                edit(&r)
                records[0] = .reference(r)
                f.setRecords(notes, records)
            }
        }
        let rootNotes = rootEntries.firstIndex { $0.name == "app/notes.txt" }!
        let rootNotesStream = UInt64(rootForge.contents[rootNotes].count)
        try chainAdd(
            "chain-reference-chunk-id",
            .payload,
            "app/notes.txt's reference has a chunk_id with one bit flipped: the referenced bytes do not hash to it",
            base: incremental,
            randomAccess: (.payload, [notes]),
            editReference { $0.chunkID[0] ^= 0x01 }
        )
        try chainAdd(
            "chain-reference-past-end",
            .chain,
            "app/notes.txt's reference ends one byte past the end of the base entry's stream (offset + length = size "
                + "+ 1)",
            base: incremental,
            randomAccess: (.chain, [notes]),
            editReference { $0.offset = rootNotesStream + 1 - UInt64($0.length) }
        )
        try chainAdd(
            "chain-reference-unknown-archive",
            .chain,
            "app/notes.txt's reference names archive 5a5a…5a, which is not in the chain",
            base: incremental,
            randomAccess: (.chain, [notes]),
            editReference { $0.archiveID = [UInt8](repeating: 0x5A, count: 16) }
        )
        try chainAdd(
            "chain-reference-to-directory",
            .chain,
            "app/notes.txt's reference names entry 0 of the base, a directory",
            base: incremental,
            randomAccess: (.chain, [notes]),
            editReference { $0.entry = 0 }
        )

        // §14.5: the base found is not the one the base record names.
        try chainAdd(
            "chain-base-trailer-hash-differs",
            .chain,
            "the incremental archive's base record names a base trailer SHA-256 with one bit flipped; MAC recomputed",
            base: incremental,
            randomAccess: (.chain, all)
        ) { f in
            var b = base(f)
            b.trailerSHA256[0] ^= 0x01
            f.setBase(b)
        }
        try chainAdd(
            "chain-base-depth-differs",
            .chain,
            "the incremental archive's base record says chain depth 2 (its base is a root, depth 0); MAC recomputed",
            base: incremental,
            randomAccess: (.chain, all)
        ) { f in
            var b = base(f)
            b.depth = 2
            f.setBase(b)
        }
        try chainAdd(
            "chain-base-missing",
            .chain,
            "the incremental archive's base record names archive 5a5a…5a, which is nowhere: the base is missing; MAC "
                + "recomputed",
            base: incremental,
            randomAccess: (.chain, all)
        ) { f in
            var b = base(f)
            b.archiveID = [UInt8](repeating: 0x5A, count: 16)
            f.setBase(b)
        }
        return out
    }
}
