import Foundation
import SealbakArchive
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakTestSupport
import Testing

/// Spec §12: the committed vectors read as described, the invalid ones fail with their labelled class, and the
/// generator still produces exactly the committed bytes.
@Suite struct SpecVectorTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Spec/vectors")

    static func json(_ path: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as! [String: Any]
    }

    /// The chain a vector's references are resolved against (Spec §14.5): its `chain.base` (a path relative to the
    /// vector's folder), that base's own base, and so on.
    static func chain(_ meta: [String: Any], in sub: String) throws -> TestChain {
        var out = TestChain()
        var folder = dir.appendingPathComponent(sub)
        var next = (meta["chain"] as? [String: Any])?["base"] as? String
        while let path = next {
            let file = folder.appendingPathComponent(path).standardizedFileURL
            out.archives.append((file.lastPathComponent, try [UInt8](Data(contentsOf: file))))
            folder = file.deletingLastPathComponent()
            let baseMeta = try json(file.deletingPathExtension().appendingPathExtension("json"))
            next = (baseMeta["chain"] as? [String: Any])?["base"] as? String
        }
        return out
    }

    static func names(_ sub: String) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent(sub).path)) ?? []
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    @Test func enoughVectorsAreCommitted() {
        #expect(Self.names("valid").count >= 10)
        #expect(Self.names("invalid").count >= 25)
    }

    @Test(arguments: names("valid"))
    func validVectorReadsAsDescribed(_ name: String) throws {
        let meta = try Self.json(Self.dir.appendingPathComponent("valid/\(name).json"))
        let bytes = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("valid/\(name).sbk")))
        let expected = meta["entries"] as! [[String: Any]]
        var secrets: [ArchiveSecret] = (meta["passwords"] as! [String]).map { .password(Passphrase(string: $0)) }
        for id in meta["identities"] as? [[String: String]] ?? [] {
            let secret = SecureBytes(copying: Vectors.unhex(id["x25519_secret_key"]!))
            #expect(Recipients.encode(publicKey: X25519.publicKey(secret)) == id["public_key"])
            secrets.append(.identity(Identity(secret: secret, publicKey: X25519.publicKey(secret))))
        }
        #expect(!secrets.isEmpty)
        // Spec §3.4, §12: version-2 vectors give the version, the flags and every frame's codec; the others are version
        // 1.
        let header = try ArchiveHeader.parse(Array(bytes.prefix(Int(bytes[10]) | Int(bytes[11]) << 8)))
        #expect(Int(header.version) == meta["format_version"] as? Int ?? 1)
        #expect(Int(header.features.rawValue) == meta["flags"] as? Int ?? 0)
        if header.version > 1, let password = (meta["passwords"] as! [String]).first {
            let codecs = try ValidVector.frameCodecs(bytes, password: password)
            #expect(codecs == expected.map { $0["frame_codecs"] as? [Int] })
            #expect(
                !header.features.contains(.shuffle)
                    || codecs.joined().contains(Int(CompressionCodec.shuffledZstd.rawValue)),
                "\(name) has no codec-3 frame"
            )
        }
        // Spec §7.4: a dictionary vector gives the archive metadata as stored and the dictionary's id.
        if header.features.contains(.dictionary), let password = (meta["passwords"] as! [String]).first {
            let reader = try ArchiveReader(
                input: InputFile(bytes: bytes, name: name, seekable: true),
                secret: .password(Passphrase(string: password))
            )
            #expect(Int(try #require(reader.dictionary).id) == meta["dictionary_id"] as? Int)
            let metadata = try #require(meta["metadata"] as? [String: String])
            #expect(metadata[ArchiveDictionary.metadataKey] == reader.manifest.metadata[ArchiveDictionary.metadataKey])
            #expect(
                try ValidVector.frameCodecs(bytes, password: password).joined()
                    .contains(Int(CompressionCodec.dictionaryZstd.rawValue)),
                "\(name) has no codec-4 frame"
            )
        }
        // Spec §14: a chained vector gives its depth and base, and the kinds of every entry's records.
        let chain = try Self.chain(meta, in: "valid")
        if let c = meta["chain"] as? [String: Any], let password = (meta["passwords"] as! [String]).first {
            #expect(Int(header.base?.depth ?? 0) == c["depth"] as? Int)
            #expect(header.base?.isRoot == (c["base"] is NSNull))
            let kinds = try Vectors.recordKinds(bytes, password: password)
            #expect(kinds == expected.map { $0["records"] as! [String] })
        }
        for secret in secrets {
            let back = try TestReader.readAll(bytes, secret: secret, chain: chain)
            #expect(back.manifest.entries.count == expected.count)
            for (i, e) in expected.enumerated() {
                // Names are bytes (Spec §7.2): Swift's String == would equate NFC and NFD spellings.
                #expect(Array(back.manifest.entries[i].name.utf8) == Array((e["name"] as! String).utf8))
                #expect(back.manifest.entries[i].kind.name == e["kind"] as! String)
                #expect(back.data[i].count == e["size"] as! Int)
                #expect(
                    SHA256Hasher.hash(back.data[i]).map { String(format: "%02x", $0) }.joined() == e["sha256"]
                        as! String
                )
                if !header.features.contains(.chained) {
                    #expect(back.trailer.entries[i].sha256 == SHA256Hasher.hash(back.data[i]))
                }
            }
        }
    }

    @Test(arguments: names("invalid"))
    func invalidVectorFailsWithItsClass(_ name: String) throws {
        let meta = try Self.json(Self.dir.appendingPathComponent("invalid/\(name).json"))
        let bytes = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("invalid/\(name).sbk")))
        let chain = try Self.chain(meta, in: "invalid")
        let got = try TestReader.failureClass(bytes, password: meta["password"] as! String, chain: chain)
        #expect(got?.rawValue == meta["expected_error"] as? String, "\(name): \(meta["description"] ?? "")")
    }

    /// Spec §4.4 step 5: which `key` failure is reported (the reference exit codes differ: 64 for a mistyped code).
    @Test(arguments: names("invalid"))
    func keyFailureIsTheListedOne(_ name: String) throws {
        let meta = try Self.json(Self.dir.appendingPathComponent("invalid/\(name).json"))
        guard let reason = meta["key_failure"] as? String else { return }
        let bytes = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("invalid/\(name).sbk")))
        let error = try #require(TestReader.failure(bytes, password: meta["password"] as! String))
        #expect(error.formatClass == .key)
        switch KeyFailure(rawValue: reason) {
        case .mistypedCode:
            #expect(error.code == .usage && error.message.contains("mistyped"), "\(name): \(error.message)")
        case .wrongPassword:
            #expect(
                error.code == .wrongPassword && error.message.contains("wrong password"),
                "\(name): \(error.message)"
            )
        default: Issue.record("\(name): unexpected key_failure \(reason)")
        }
    }

    /// Spec §9.1, §8.3 step 8: where a vector gives `random_access_error`, the class does not depend on the procedure.
    /// A real pipe (sequential, §9.2) and a regular file read through its index (§8.3), every entry in order, report
    /// the same class; each entry read alone fails exactly when it is listed, with that class.
    @Test(arguments: names("invalid"))
    func pipeAndRandomAccessAgree(_ name: String) throws {
        let meta = try Self.json(Self.dir.appendingPathComponent("invalid/\(name).json"))
        guard let expected = meta["random_access_error"] as? String else { return }
        let bytes = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("invalid/\(name).sbk")))
        let password = meta["password"] as! String
        let chain = try Self.chain(meta, in: "invalid")
        #expect(
            try TestReader.pipeFailureClass(bytes, password: password, chain: chain)?.rawValue
                == meta["expected_error"] as? String,
            "\(name) from a pipe"
        )
        #expect(
            try TestReader.randomAccessFailureClass(bytes, password: password, chain: chain)?.rawValue == expected,
            "\(name) through the index"
        )
        let failing = Set(meta["random_access_failing_entries"] as! [Int])
        let count = (try? TestReader.entryCount(bytes, password: password)) ?? (failing.max().map { $0 + 1 } ?? 0)
        for i in 0..<count {
            let got = try TestReader.randomAccessFailureClass(bytes, password: password, entries: [i], chain: chain)
            #expect(got?.rawValue == (failing.contains(i) ? expected : nil), "\(name): entry \(i) read alone")
        }
    }

    @Test func generatorReproducesCommittedVectors() throws {
        for v in Vectors.valid() {
            let committed = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("valid/\(v.name).sbk")))
            #expect(try v.build() == committed, "valid/\(v.name).sbk is stale: run scripts/gen-vectors")
        }
        for v in try Vectors.invalid() {
            let committed = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("invalid/\(v.name).sbk")))
            #expect(v.bytes == committed, "invalid/\(v.name).sbk is stale: run scripts/gen-vectors")
        }
        for v in Vectors.conflicts() {
            let committed = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("conflict/\(v.name).sbk")))
            #expect(try v.build() == committed, "conflict/\(v.name).sbk is stale: run scripts/gen-vectors")
        }
    }

    /// Spec §13 rule 9: every conflict vector is a valid archive (a reader reads it, Spec §9), and the conflict it
    /// names is the one the format-level check finds. Refusing to unpack it is the extractor's job
    /// (Tests/SealbakCLITests/ConflictVectorTests.swift).
    @Test(arguments: names("conflict"))
    func conflictVectorReadsAndHasItsConflict(_ name: String) throws {
        let meta = try Self.json(Self.dir.appendingPathComponent("conflict/\(name).json"))
        let bytes = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("conflict/\(name).sbk")))
        #expect(meta["expected_error"] as? String == "conflict")
        let back = try TestReader.readAll(bytes, password: meta["password"] as! String)
        let expected = meta["conflict"] as! [String: Any]
        let found = try #require(EntryConflict.first(in: back.manifest.entries), "\(name): no conflict found")
        #expect(
            found == EntryConflict(outer: expected["outer_index"] as! Int, inner: expected["inner_index"] as! Int),
            "\(name)"
        )
        #expect(back.manifest.entries[found.outer].name == expected["outer"] as? String)
        #expect(back.manifest.entries[found.inner].name == expected["inner"] as? String)
    }

    /// The valid vectors have no conflicts (names-nfc-nfd: NFC and NFD spellings are unrelated byte strings).
    @Test(arguments: names("valid"))
    func validVectorsHaveNoConflicts(_ name: String) throws {
        let meta = try Self.json(Self.dir.appendingPathComponent("valid/\(name).json"))
        let bytes = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("valid/\(name).sbk")))
        guard let password = (meta["passwords"] as! [String]).first else { return }
        let back = try TestReader.readAll(bytes, password: password, chain: try Self.chain(meta, in: "valid"))
        #expect(EntryConflict.first(in: back.manifest.entries) == nil)
    }
}
