import Foundation
import SealbakArchive
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakTestSupport
import Testing

/// Spec §14: chained archives read through their chain, from a pipe and through the index, and every way a chain can
/// be wrong is rejected with its class.
@Suite struct ChainTests {
    static let password = "password"
    static let secret = ArchiveSecret.password(Passphrase(string: password))
    static let vectors = SpecVectorTests.dir

    static func options(_ seed: String, parameters: ChunkerParameters = .standard) -> WriteOptions {
        var o = TestArchive.options(seed: seed)
        o.chain = .root(random: o.random, parameters: parameters)
        return o
    }

    /// The archive after `base` (same password), holding `entries`.
    static func next(_ entries: [TestEntry], after base: [UInt8], seed: String) throws -> [UInt8] {
        var o = TestArchive.options(seed: seed)
        let reader = try ArchiveReader(input: InputFile(bytes: base, name: "base", seekable: true), secret: secret)
        o.chain = try ChainWriteContext.continuing(from: reader)
        return try TestArchive.build(entries, options: o)
    }

    /// Every entry's content read sequentially from non-seekable input, and by random access entry by entry.
    static func readBothWays(
        _ bytes: [UInt8],
        chain: TestChain,
        password: String = password
    ) throws -> (sequential: [[UInt8]], random: [[UInt8]]) {
        let secret = ArchiveSecret.password(Passphrase(string: password))
        let pipe = try ArchiveReader(input: InputFile(bytes: bytes, name: "head", seekable: false), secret: secret)
        try chain.attach(to: pipe, secret: secret)
        let sink = MemorySink()
        try pipe.readAll(into: sink)
        let sequential = pipe.manifest.entries.indices.map { sink.data[$0] ?? [] }
        let file = try ArchiveReader(input: InputFile(bytes: bytes, name: "head", seekable: true), secret: secret)
        try chain.attach(to: file, secret: secret)
        var random: [[UInt8]] = []
        for i in file.manifest.entries.indices {
            let s = MemorySink()
            try file.readEntry(i, into: s)
            random.append(s.data[i] ?? [])
        }
        return (sequential, random)
    }

    /// The class of reading `bytes` sequentially from non-seekable input, every entry.
    static func sequentialClass(
        _ bytes: [UInt8],
        chain: TestChain,
        password: String = password
    ) throws
        -> FailureClass?
    {
        let secret = ArchiveSecret.password(Passphrase(string: password))
        return try TestReader.formatClass(
            failure {
                let r = try ArchiveReader(input: InputFile(bytes: bytes, name: "head", seekable: false), secret: secret)
                try chain.attach(to: r, secret: secret)
                try r.readAll(into: MemorySink())
            }
        )
    }

    static func failure(_ body: () throws -> Void) -> SealbakError? {
        do {
            try body()
            return nil
        } catch let e as SealbakError {
            return e
        } catch {
            return SealbakError(.internalError, "\(error)")
        }
    }

    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    // MARK: Vectors

    static func chainVectorNames(_ sub: String) -> [String] {
        SpecVectorTests.names(sub).filter { $0.hasPrefix("chain-") }
    }

    @Test func chainVectorsAreCommitted() {
        #expect(Self.chainVectorNames("valid") == ["chain-incremental", "chain-root"])
        #expect(Self.chainVectorNames("invalid").count >= 17)
    }

    /// A valid chain vector reads to the content its JSON gives, from a pipe and entry by entry through the index, and
    /// met every record kind the JSON lists.
    @Test(arguments: chainVectorNames("valid"))
    func validChainVectorReadsBothWays(_ name: String) throws {
        let meta = try SpecVectorTests.json(Self.vectors.appendingPathComponent("valid/\(name).json"))
        let bytes = try [UInt8](Data(contentsOf: Self.vectors.appendingPathComponent("valid/\(name).sbk")))
        let password = (meta["passwords"] as! [String])[0]
        let chain = try SpecVectorTests.chain(meta, in: "valid")
        let expected = meta["entries"] as! [[String: Any]]
        let (sequential, random) = try Self.readBothWays(bytes, chain: chain, password: password)
        #expect(sequential == random)
        for (i, e) in expected.enumerated() {
            #expect(sequential[i].count == e["size"] as! Int, "\(name) entry \(i)")
            #expect(Self.hex(SHA256Hasher.hash(sequential[i])) == e["sha256"] as! String, "\(name) entry \(i)")
        }
        let kinds = Set(expected.flatMap { $0["records"] as! [String] })
        let depth = (meta["chain"] as! [String: Any])["depth"] as! Int
        #expect(kinds == (depth == 0 ? ["literal"] : ["literal", "reference"]))
        // The incremental vector has an entry with both kinds (references and literals) in one stream.
        if depth > 0 { #expect(expected.contains { Set($0["records"] as! [String]).count == 2 }) }
    }

    /// Every invalid chain vector fails with its class read sequentially from non-seekable input, and, where it gives
    /// one, with its random-access class through the index (Spec §9.1: the same class).
    @Test(arguments: chainVectorNames("invalid"))
    func invalidChainVectorFailsBothWays(_ name: String) throws {
        let meta = try SpecVectorTests.json(Self.vectors.appendingPathComponent("invalid/\(name).json"))
        let bytes = try [UInt8](Data(contentsOf: Self.vectors.appendingPathComponent("invalid/\(name).sbk")))
        let password = meta["password"] as! String
        let chain = try SpecVectorTests.chain(meta, in: "invalid")
        #expect(
            try Self.sequentialClass(bytes, chain: chain, password: password)?.rawValue
                == meta["expected_error"] as? String,
            "\(name): \(meta["description"] ?? "")"
        )
        if let random = meta["random_access_error"] as? String {
            #expect(
                try TestReader.randomAccessFailureClass(bytes, password: password, chain: chain)?.rawValue == random
            )
        }
    }

    /// The incremental invalid vectors name the committed root as their base (Spec §12).
    @Test func incrementalInvalidVectorsNameTheirBase() throws {
        for name in Self.chainVectorNames("invalid") {
            let meta = try SpecVectorTests.json(Self.vectors.appendingPathComponent("invalid/\(name).json"))
            let chain = (meta["chain"] as? [String: Any])?["base"] as? String
            #expect((meta["base"] as! String == "chain-incremental") == (chain == "../valid/chain-root.sbk"), "\(name)")
        }
    }

    // MARK: Round trips

    /// A chain of depth 3: an insertion in the middle of a 4 MiB file (most of it referenced), deleted, new and
    /// empty files, directories and symlinks; each link verifies as a file and reads back through its chain.
    @Test func chainOfDepthThreeRoundTrips() throws {
        let big = TestArchive.noise(4 << 20, seed: 31)
        let rootEntries = [
            TestEntry(.directory, "d"),
            TestEntry(.file, "d/big.bin", big),
            TestEntry(.file, "d/gone.txt", TestArchive.text(50_000)),
            TestEntry(.file, "d/empty"),
            TestEntry(.symlink, "d/link", link: "big.bin"),
        ]
        var o = Self.options("depth-3 root")
        o.frameSizeLog2 = 16
        let root = try TestArchive.build(rootEntries, options: o)
        let inserted = Array(big[..<(2 << 20)]) + TestArchive.noise(100, seed: 32) + Array(big[(2 << 20)...])
        let e1 = [
            TestEntry(.directory, "d"),
            TestEntry(.file, "d/big.bin", inserted),
            TestEntry(.file, "d/empty"),
            TestEntry(.symlink, "d/link", link: "big.bin"),
            TestEntry(.file, "d/new.txt", TestArchive.text(30_000)),
        ]
        let one = try Self.next(e1, after: root, seed: "depth-3 one")
        #expect(one.count * 4 < root.count, "incremental \(one.count) bytes, root \(root.count)")
        let e2 = [
            TestEntry(.directory, "d"),
            TestEntry(.directory, "d/sub"),
            TestEntry(.file, "d/big.bin", inserted),
            TestEntry(.file, "d/new.txt", TestArchive.text(30_000) + Array("more\n".utf8)),
            TestEntry(.file, "d/sub/empty"),
            TestEntry(.symlink, "d/sub/up", link: ".."),
        ]
        let two = try Self.next(e2, after: one, seed: "depth-3 two")
        let e3 = [
            TestEntry(.file, "d/big.bin", Array(inserted.dropFirst(7))),
            TestEntry(.file, "d/gone.txt", TestArchive.text(50_000)),
            TestEntry(.stream, "d/new.txt", TestArchive.text(30_000) + Array("more\n".utf8)),
        ]
        let three = try Self.next(e3, after: two, seed: "depth-3 three")
        let links: [(bytes: [UInt8], entries: [TestEntry], bases: [[UInt8]])] = [
            (root, rootEntries, []), (one, e1, [root]), (two, e2, [one, root]), (three, e3, [two, one, root]),
        ]
        for (depth, link) in links.enumerated() {
            let r = try ArchiveReader(
                input: InputFile(bytes: link.bytes, name: "l", seekable: true),
                secret: Self.secret
            )
            #expect(Int(r.header.base?.depth ?? 99) == depth)
            try r.verifyStored()
            let (sequential, random) = try Self.readBothWays(link.bytes, chain: TestChain(bases: link.bases))
            #expect(sequential == link.entries.map(\.data), "depth \(depth) sequential")
            #expect(random == link.entries.map(\.data), "depth \(depth) random access")
        }
        // Every reference of the last link points directly at the archive that stores the bytes (Spec §14.6).
        let forge = try ArchiveForge(three, password: Self.password)
        let ids = try [root, one, two].map { try ArchiveHeader.parse(Array($0.prefix(Int($0[10]) | Int($0[11]) << 8))) }
            .map(\.archiveID)
        for i in forge.contents.indices {
            for case .reference(let ref) in try forge.records(i) { #expect(ids.contains(ref.archiveID)) }
        }
    }

    /// Files of several 4 MiB blocks: each block is hashed on other threads while the next one is cut, two blocks at
    /// a time, and the content's SHA-256 must still see the blocks in order (a small last block is hashed on the
    /// writing thread, after the block before it). Each reads back whole through the chain, and the next archive refers
    /// to every chunk.
    @Test func filesOfManyBlocksAreHashedInOrder() throws {
        let entries = [
            TestEntry(.file, "three-blocks-and-a-small-one", TestArchive.noise((12 << 20) + (100 << 10), seed: 51)),
            TestEntry(.file, "two-blocks-and-a-large-one", TestArchive.noise((9 << 20) + (700 << 10), seed: 52)),
            TestEntry(.file, "small", TestArchive.text(20_000)),
        ]
        let root = try TestArchive.build(entries, options: Self.options("many blocks root"))
        let (sequential, random) = try Self.readBothWays(root, chain: TestChain(bases: []))
        #expect(sequential == entries.map(\.data))
        #expect(random == entries.map(\.data))
        let next = try Self.next(entries, after: root, seed: "many blocks next")
        #expect(next.count * 50 < root.count, "incremental \(next.count) bytes, root \(root.count)")
        let again = try Self.readBothWays(next, chain: TestChain(bases: [root]))
        #expect(again.sequential == entries.map(\.data))
        #expect(again.random == entries.map(\.data))
    }

    /// An unchanged multi-chunk file of an incremental archive is all references, one per chunk (each carries the
    /// chunk's identity, so the writer hashes every byte once).
    @Test func unchangedFileIsAllReferences() throws {
        let data = TestArchive.noise(256 << 10, seed: 41)
        let root = try TestArchive.build([TestEntry(.file, "f", data)], options: Self.options("compact root"))
        let next = try Self.next([TestEntry(.file, "f", data)], after: root, seed: "compact next")
        let records = try ArchiveForge(next, password: Self.password).records(0)
        let chunks = try ArchiveForge(root, password: Self.password).records(0).count
        #expect(records.allSatisfy { if case .reference = $0 { true } else { false } })
        #expect(records.count == chunks)
    }

    /// A file table record whose chunks do not add up to the file's size (a damaged or foreign state) is not used: the
    /// writer reads the file instead, and the archive holds its real content. One whose state differs is not used
    /// either; one that agrees is.
    @Test func aFileRecordWhoseChunksDoNotAddUpIsRead() throws {
        let data = TestArchive.noise(100_000, seed: 71)
        let root = try TestArchive.build([TestEntry(.file, "f", data)], options: Self.options("record root"))
        let base = try ArchiveReader(input: InputFile(bytes: root, name: "root", seekable: true), secret: Self.secret)
        var context = try ChainWriteContext.continuing(from: base)
        let table = try #require(context.baseIndex)
        // The file's chunks in content order: the table's positions sorted by where each chunk is.
        let positions = try (0..<table.chunkCount).sorted {
            try table.location(at: $0).offset < table.location(at: $1).offset
        }
        .map { UInt32($0) }
        var state = FileState()
        state.size = UInt64(data.count)
        state.inode = 9
        for (size, used) in [(UInt64(data.count), true), (UInt64(data.count) + 1, false)] {
            var st = state
            st.size = size
            context.files = ChainFileTable(
                [ChainFileRecord(name: "f", state: st, sha256: SHA256Hasher.hash(data), chunks: positions)]
            )
            var o = TestArchive.options(seed: "record next \(size)")
            o.chain = context
            let out = ByteCollector()
            let writer = try ArchiveWriter(
                manifest: TestArchive.manifest([TestEntry(.file, "f", data)], metadata: Metadata([:])),
                passwords: [PasswordSlotSpec(passphrase: Passphrase(string: Self.password))],
                options: o
            ) { out.append($0) }
            #expect(try writer.writeUnchangedEntry(st) == used)
            if !used { try writer.writeEntry(bytes: data) }
            try writer.finish()
            let again = try Self.readBothWays(out.bytes, chain: TestChain(bases: [root]))
            #expect(again.sequential == [data] && again.random == [data])
        }
    }

    /// The sink's calls run on a writing thread of their own (ChainedEntrySink): a sink that fails there must be the
    /// error the read reports, both ways, and it must get no call after the one that failed.
    @Test func aFailingSinkIsTheErrorReportedAndGetsNoMoreCalls() throws {
        struct DiskFull: Error {}
        final class FailingSink: EntrySink {
            let failAt: Int
            var callsAfterFailure = 0
            var failed = false
            init(failAt: Int) { self.failAt = failAt }
            func wants(_ index: Int) -> Bool { true }
            func begin(_ index: Int) throws { if failed { callsAfterFailure += 1 } }
            func write(_ index: Int, _ bytes: [UInt8]) throws {
                if failed { callsAfterFailure += 1 }
                if index == failAt {
                    failed = true
                    throw DiskFull()
                }
            }
            func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws { if failed { callsAfterFailure += 1 } }
        }
        let entries = (0..<30).map { TestEntry(.file, "f\($0)", TestArchive.text(3_000 + $0 * 101)) }
        let root = try TestArchive.build(entries, options: Self.options("failing sink root"))
        let next = try Self.next(entries, after: root, seed: "failing sink next")
        let chain = TestChain(bases: [root])
        for seekable in [false, true] {
            let sink = FailingSink(failAt: 17)
            let reader = try ArchiveReader(
                input: InputFile(bytes: next, name: "next", seekable: seekable),
                secret: Self.secret
            )
            try chain.attach(to: reader, secret: Self.secret)
            #expect(throws: DiskFull.self) {
                if seekable {
                    for i in entries.indices { try reader.readEntry(i, into: sink) }
                } else {
                    try reader.readAll(into: sink)
                }
            }
            #expect(sink.failed && sink.callsAfterFailure == 0)
        }
    }

    /// A sink failure on the writing thread came from content delivered before anything the reading thread fails on
    /// later (here the damaged footer): it is the error reported (Spec §9.2, the earliest failure).
    @Test func aSinkFailureBeatsALaterFormatError() throws {
        struct DiskFull: Error {}
        final class FailsAtEnd: EntrySink {
            let last: Int
            init(last: Int) { self.last = last }
            func wants(_ index: Int) -> Bool { true }
            func begin(_ index: Int) throws {}
            func write(_ index: Int, _ bytes: [UInt8]) throws {}
            func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws { if index == last { throw DiskFull() } }
        }
        let entries = (0..<5).map { TestEntry(.file, "f\($0)", TestArchive.text(2_000 + $0)) }
        let root = try TestArchive.build(entries, options: Self.options("earliest root"))
        var next = try Self.next(entries, after: root, seed: "earliest next")
        next[next.count - 1] ^= 0x01  // the footer
        let reader = try ArchiveReader(
            input: InputFile(bytes: next, name: "next", seekable: false),
            secret: Self.secret
        )
        try TestChain(bases: [root]).attach(to: reader, secret: Self.secret)
        #expect(throws: DiskFull.self) { try reader.readAll(into: FailsAtEnd(last: entries.count - 1)) }
    }

    // MARK: The base changes

    static let base: [UInt8] = try! TestArchive.build(
        [
            TestEntry(.file, "a.txt", TestArchive.text(20_000)),
            TestEntry(.directory, "d"),
            TestEntry(.file, "d/b.bin", TestArchive.noise(12_000, seed: 51)),
        ],
        options: options("base", parameters: Vectors.chainParameters)
    )
    static let incrementalEntries = [
        TestEntry(.file, "a.txt", TestArchive.text(20_000) + Array("tail\n".utf8)),
        TestEntry(.file, "d/b.bin", TestArchive.noise(12_000, seed: 51)),
        TestEntry(.file, "c.txt", Array("new\n".utf8)),
    ]
    static let incremental: [UInt8] = try! next(incrementalEntries, after: base, seed: "incremental")

    @Test func keySlotChangeOfTheBaseKeepsTheChain() throws {
        let path = NSTemporaryDirectory() + "sealbak-chain-\(UUID().uuidString).sbk"
        defer { unlink(path) }
        try Data(Self.base).write(to: URL(fileURLWithPath: path))
        let u = try KeyEditing.unlock(path: path, in: .local, secret: Self.secret, limits: .default)
        try KeyEditing.changePassword(
            u,
            slot: u.header.slots[0].id,
            passphrase: Passphrase(string: "new password"),
            kdf: TestArchive.cheapKDF
        )
        let rekeyed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(rekeyed != Self.base)
        let header = Int(Self.base[10]) | Int(Self.base[11]) << 8
        let newHeader = Int(rekeyed[10]) | Int(rekeyed[11]) << 8
        #expect(rekeyed[newHeader...] == Self.base[header...])
        // The base now opens with its new password; the head with its own.
        let head = try ArchiveReader(
            input: InputFile(bytes: Self.incremental, name: "h", seekable: true),
            secret: Self.secret
        )
        try head.attachChain(catalog: TestChain(bases: [rekeyed]).catalog) { _, input in
            try ArchiveReader(input: input, secret: .password(Passphrase(string: "new password")))
        }
        let sink = MemorySink()
        try head.readAll(into: sink)
        #expect(Self.incrementalEntries.indices.map { sink.data[$0] ?? [] } == Self.incrementalEntries.map(\.data))
    }

    /// Any change to the base's bytes after its header: the incremental archive either fails (class chain, or the
    /// base's own failure) or, when the change is in bytes the reader never needs, reads its exact content. A change
    /// in the base's trailer or footer always fails.
    @Test func changesToTheBaseAfterItsHeaderAreCaught() throws {
        let header = Int(Self.base[10]) | Int(Self.base[11]) << 8
        let layout = try ArchiveLayout(Self.base, entryCount: 3)
        let trailerStart = layout.trailer[0].offset
        var failures: [String] = []
        for offset in stride(from: header, to: Self.base.count, by: 13) {
            var b = Self.base
            b[offset] ^= 0x20
            let chain = TestChain(bases: [b])
            var content: [[UInt8]]?
            let e = Self.failure { content = try Self.readBothWays(Self.incremental, chain: chain).sequential }
            let got = try TestReader.formatClass(e)
            if let got {
                if ![.chain, .payload, .trailer, .truncated].contains(got) { failures.append("\(offset): \(got)") }
            } else if offset >= trailerStart {
                failures.append("\(offset) (trailer or footer): accepted")
            } else if content != Self.incrementalEntries.map(\.data) {
                failures.append("\(offset): wrong content")
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(20))")
    }

    @Test func missingBaseIsChainNamingIt() throws {
        let header = try ArchiveHeader.parse(
            Array(Self.incremental.prefix(Int(Self.incremental[10]) | Int(Self.incremental[11]) << 8))
        )
        for chain in [TestChain(), TestChain(bases: [Self.incremental])] {
            let e = try #require(TestReader.failure(Self.incremental, password: Self.password, chain: chain))
            #expect(e.code == .chain)
            #expect(e.message.contains(Self.hex(header.base!.archiveID)), "\(e.message)")
            #expect(
                try TestReader.randomAccessFailureClass(Self.incremental, password: Self.password, chain: chain)
                    == .chain
            )
        }
        // Without any catalog at all.
        let r = try ArchiveReader(
            input: InputFile(bytes: Self.incremental, name: "h", seekable: true),
            secret: Self.secret
        )
        let e = try #require(
            Self.failure {
                try r.attachChain(catalog: nil) { _, i in try ArchiveReader(input: i, secret: Self.secret) }
            }
        )
        #expect(e.code == .chain && e.message.contains(Self.hex(header.base!.archiveID)))
        let unattached = try #require(Self.failure { try r.readAll(into: MemorySink()) })
        #expect(unattached.code == .chain)
    }

    @Test func truncatedIncrementalIsRejected() throws {
        let chain = TestChain(bases: [Self.base])
        var accepted: [Int] = []
        for length in stride(from: 0, to: Self.incremental.count, by: 97) {
            let cut = Array(Self.incremental.prefix(length))
            if try Self.sequentialClass(cut, chain: chain) == nil { accepted.append(length) }
            if length > 0, try TestReader.randomAccessFailureClass(cut, password: Self.password, chain: chain) == nil {
                accepted.append(length)
            }
        }
        #expect(accepted.isEmpty, "\(accepted)")
    }

    /// A damaged frame of the base that a reference of the incremental archive needs is rejected when the
    /// incremental archive is read, from a pipe and through the index, never with success.
    @Test func damagedReferencedFramesOfTheBaseAreRejected() throws {
        let forge = try ArchiveForge(Self.incremental, password: Self.password)
        let baseHeader = try ArchiveHeader.parse(Array(Self.base.prefix(Int(Self.base[10]) | Int(Self.base[11]) << 8)))
        var frames: Set<[Int]> = []
        let frameSize = UInt64(forge.frameSize)
        for i in forge.contents.indices {
            for case .reference(let r) in try forge.records(i) where r.archiveID == baseHeader.archiveID {
                for k in (r.offset / frameSize)...((r.offset + UInt64(r.length) - 1) / frameSize) {
                    frames.insert([Int(r.entry), Int(k)])
                }
            }
        }
        #expect(frames.count >= 3)
        let layout = try ArchiveLayout(Self.base, entryCount: 3)
        for f in frames.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let span = layout.entries[f[0]][f[1]]
            var b = Self.base
            b[span.offset + span.length - 5] ^= 0x01
            let chain = TestChain(bases: [b])
            let sequential = try Self.sequentialClass(Self.incremental, chain: chain)
            let random = try TestReader.randomAccessFailureClass(
                Self.incremental,
                password: Self.password,
                chain: chain
            )
            #expect(sequential == .payload || sequential == .trailer, "frame \(f): \(String(describing: sequential))")
            #expect(random == .payload || random == .trailer, "frame \(f): \(String(describing: random))")
        }
    }

    @Test func eachLinkVerifiesAsAFile() throws {
        for bytes in [Self.base, Self.incremental] {
            let r = try ArchiveReader(input: InputFile(bytes: bytes, name: "l", seekable: false), secret: Self.secret)
            try r.verifyStored()
            #expect(r.chunkIndex != nil)
        }
        // A damaged frame of the incremental archive's index stream fails its own verification.
        let layout = try ArchiveLayout(Self.incremental, entryCount: Self.incrementalEntries.count)
        var b = Self.incremental
        let f = layout.index![0]
        b[f.offset + f.length - 1] ^= 0x01
        let r = try ArchiveReader(input: InputFile(bytes: b, name: "l", seekable: false), secret: Self.secret)
        #expect(try TestReader.formatClass(Self.failure { try r.verifyStored() }) == .payload)
    }
}

extension ChainTests {
    /// Spec §14.3, §9.2: without an index stream, a sequential reader meets the trailer's first frame where the index
    /// stream must start and its tag fails under the index stream's key (`payload`, the class the vector gives); a
    /// random-access reader reads the trailer through the footer and finds no room for an index stream (`trailer`).
    @Test func missingIndexStreamClassDependsOnTheProcedure() throws {
        let url = Self.vectors.appendingPathComponent("invalid/chain-index-stream-missing.sbk")
        let bytes = try [UInt8](Data(contentsOf: url))
        #expect(try Self.sequentialClass(bytes, chain: TestChain(), password: Vectors.password) == .payload)
        #expect(try TestReader.randomAccessFailureClass(bytes, password: Vectors.password) == .trailer)
    }
}

extension ChainTests {
    /// The fuzz target's chain round trip (fuzz/Sources/FuzzRoundTrip, selector 0xF0) over every edit kind and edge
    /// sizes: empty content, content shorter than a chunk, edits at the start and past the end.
    @Test func fuzzChainRoundTripHoldsForEveryEditKind() {
        for choice: UInt8 in [0x00, 0x01, 0x02, 0x03, 0x10, 0x21, 0x42, 0x73] {
            for size in [0, 1, 63, 700, 9000] {
                for position: [UInt8] in [[0, 0], [0xFF, 0xFF]] {
                    let data = [choice] + position + [0x30, 0x02] + TestArchive.noise(size, seed: UInt64(size + 1))
                    FuzzTargets.roundTrip([0xF0] + data)
                }
            }
        }
    }
}

/// The writer's chain state file (`ChainState`): its file table survives a round trip, a state written before file
/// tables existed is still read, and a damaged one, or one whose table points outside its chunk table, is refused.
@Suite struct ChainStateFileTests {
    static func state(files: [ChainFileRecord]) -> ChainState {
        let a = [UInt8](repeating: 0xA1, count: 16)
        let chunks = (0..<3).map { i in
            (
                id: [UInt8](repeating: UInt8(i + 1), count: 32),
                location: ChunkLocation(archiveID: a, entry: 1, offset: UInt64(i) * 10, length: 10)
            )
        }
        return ChainState(
            archiveID: a,
            trailerSHA256: [UInt8](repeating: 7, count: 32),
            depth: 2,
            chunkKey: SecureBytes(count: 32) { $0.initializeMemory(as: UInt8.self, repeating: 9) },
            parameters: .standard,
            index: ChunkIndex(
                entries: [LogicalEntry(size: 30, sha256: [UInt8](repeating: 3, count: 32))],
                chunks: chunks
            ),
            files: ChainFileTable(files)
        )
    }

    static func file(chunks: [UInt32], size: UInt64) -> ChainFileRecord {
        var st = FileState()
        st.size = size
        st.mtimeSeconds = 1_700_000_000
        st.mtimeNanoseconds = 123_456_789
        st.ctimeSeconds = 1_700_000_001
        st.ctimeNanoseconds = 987_654_321
        st.inode = 42
        st.device = 0x803
        return ChainFileRecord(
            name: "app/docs/é.md",
            state: st,
            sha256: [UInt8](repeating: 5, count: 32),
            chunks: chunks
        )
    }

    @Test func theFileTableSurvivesARoundTrip() throws {
        let s = Self.state(files: [Self.file(chunks: [2, 0, 1], size: 30), Self.file(chunks: [], size: 0)])
        let parsed = try #require(try ChainState.parse(try s.encoded()))
        #expect(try parsed.files.records() == s.files.records())
        #expect(parsed.index == s.index && parsed.depth == 2 && parsed.archiveID == s.archiveID)
    }

    @Test func aVersion1StateIsStillRead() throws {
        // Version 1: the same fields, then the index stream to the end, then the SHA-256 (no length, no file table).
        let s = Self.state(files: [])
        var v1 = Array("SBKCHST1".utf8) + s.archiveID + s.trailerSHA256 + [2, 0]
        s.chunkKey.withUnsafeBytes { v1 += $0 }
        let text = Array(s.parameters.text.utf8)
        v1 += [UInt8(text.count), 0] + text + (try s.index.encoded())
        v1 += SHA256Hasher.hash(v1)
        let parsed = try #require(try ChainState.parse(v1))
        #expect(parsed.index == s.index && parsed.files.isEmpty)
    }

    @Test func damagedOrInconsistentStatesAreRefused() throws {
        let good = try Self.state(files: [Self.file(chunks: [0, 1], size: 20)]).encoded()
        #expect(try ChainState.parse(good) != nil)
        var flipped = good
        flipped[good.count / 2] ^= 1
        #expect(try ChainState.parse(flipped) == nil)
        #expect(try ChainState.parse(Array(good.dropLast(5))) == nil)
        // A table position outside the chunk table. (Chunks that do not add up to the file's size are refused where
        // the writer uses the record: it then reads the file, `ChainTests.aFileRecordWhoseChunksDoNotAddUpIsRead`.)
        #expect(try ChainState.parse(Self.state(files: [Self.file(chunks: [3], size: 10)]).encoded()) == nil)
    }
}
