import Foundation
import SealbakArchive
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakTestSupport
import Testing

@testable import SealbakArchive

/// Chunk tables in bounded memory (`ChunkTables`): the sorter's runs, paged tables and the index reader give exactly
/// what the in-memory forms give, and a chain written and read through scratch files is byte for byte the chain
/// written in memory.
@Suite struct ChunkTableTests {
    static func id(_ n: Int) -> [UInt8] {
        TestArchive.noise(32, seed: UInt64(n) &+ 1000)
    }

    static let archive = [UInt8](repeating: 0xA7, count: 16)

    static func location(_ n: Int) -> ChunkLocation {
        ChunkLocation(archiveID: archive, entry: UInt32(n % 5), offset: UInt64(n) * 100, length: UInt32(1 + n % 999))
    }

    /// `count` chunks in random order, every seventh one a repeat of an earlier id at another place.
    static func chunks(_ count: Int) -> [(id: [UInt8], location: ChunkLocation)] {
        (0..<count).map { n in (n % 7 == 6 ? id(n / 2) : id(n), location(n)) }
    }

    static func paged(_ chunks: [(id: [UInt8], location: ChunkLocation)], run: Int, memory: Int) throws -> ChunkTable {
        let sorter = ChunkSorter(runRecords: run)
        for c in chunks { try sorter.append(id: c.id, location: c.location) }
        let builder = ChunkTableBuilder(memoryRecords: memory, purpose: "a test")
        try sorter.finish(into: builder)
        return try builder.finish()
    }

    @Test(arguments: [0, 1, 63, 64, 65, 130, 1000])
    func sortedRunsAndPagesMatchTheIndexInMemory(count: Int) throws {
        let chunks = Self.chunks(count)
        let expected = ChunkIndex(entries: [], chunks: chunks).table
        let table = try Self.paged(chunks, run: 37, memory: 10)
        #expect(table.isPaged == (expected.count > 10))
        #expect(table.count == expected.count)
        #expect(try table.records(0..<table.count) == expected.records(0..<expected.count))
        // Every id is found where the in-memory table has it, and ids just beside them are not found.
        for i in 0..<expected.count {
            let id = try expected.chunkID(at: i)
            #expect(try table.index(of: id) == i)
            #expect(try table.location(of: id) == expected.location(at: i))
            var below = id
            below[31] &-= 1
            var above = id
            above[31] &+= 1
            #expect(try table.index(of: below) == expected.index(of: below))
            #expect(try table.index(of: above) == expected.index(of: above))
        }
        #expect(try table.index(of: [UInt8](repeating: 0, count: 32)) == nil)
        #expect(try table.index(of: [UInt8](repeating: 0xFF, count: 32)) == nil)
        #expect(try table.index(of: [1, 2, 3]) == nil)
        // Of repeated ids the first one given is kept, across runs too.
        var first: [[UInt8]: ChunkLocation] = [:]
        for c in chunks where first[c.id] == nil { first[c.id] = c.location }
        #expect(first.count == table.count)
        for (id, location) in first { #expect(try table.location(of: id) == location) }
    }

    /// The index stream's plaintext fed a few bytes at a time (as frames of any size arrive) gives the index the whole
    /// parse gives, paged; a broken one fails with the whole parse's class and offset.
    @Test func theIndexReaderFedInPiecesMatchesTheWholeParse() throws {
        let entries = [LogicalEntry(size: 7, sha256: Array(0..<32)), LogicalEntry(size: 0, sha256: Array(32..<64))]
        let bytes = try ChunkIndex(entries: entries, chunks: Self.chunks(300)).encoded()
        var state: UInt64 = 77
        func read(_ bytes: [UInt8]) throws -> ChunkIndex {
            var reader = ChunkIndexReader(expectedEntryCount: 2, memoryRecords: 16)
            var at = 0
            while at < bytes.count {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let n = min(bytes.count - at, 1 + Int(state >> 33) % 100)
                try reader.feed(Array(bytes[at..<at + n]))
                at += n
            }
            return try reader.finish()
        }
        let index = try read(bytes)
        #expect(index.table.isPaged)
        #expect(try index == ChunkIndex.parse(bytes, expectedEntryCount: 2))
        let c = 4 + 2 * 40 + 8 + 100 * 64
        var swapped = bytes
        swapped.replaceSubrange(c..<c + 128, with: Array(bytes[c + 64..<c + 128]) + Array(bytes[c..<c + 64]))
        for broken in [swapped, Array(bytes.dropLast(3)), bytes + [0], Array(bytes.prefix(50))] {
            var whole: FormatError?
            do { _ = try ChunkIndex.parse(broken, expectedEntryCount: 2) } catch { whole = error }
            var pieces: FormatError?
            do { _ = try read(broken) } catch { pieces = error as? FormatError }
            #expect(whole != nil && pieces?.errorClass == whole?.errorClass && pieces?.offset == whole?.offset)
        }
    }

    /// A chain state whose chunk table and file table are larger than their memory limits is read into scratch files,
    /// equal to the state written.
    @Test func aLargeChainStateIsReadIntoAPagedTable() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let chunks = Self.chunks(500)
        let index = ChunkIndex(entries: [LogicalEntry(size: 1, sha256: Array(0..<32))], chunks: chunks)
        var st = FileState()
        st.size = 7
        let state = ChainState(
            archiveID: Self.archive,
            trailerSHA256: Array(0..<32),
            depth: 3,
            chunkKey: SecureBytes(count: 32) { $0.initializeMemory(as: UInt8.self, repeating: 1) },
            parameters: .standard,
            index: index,
            files: ChainFileTable(
                (0..<3000).map { n in
                    ChainFileRecord(
                        name: "f\(n)",
                        state: st,
                        sha256: Array(0..<32),
                        chunks: (0..<100).map { UInt32((n + $0) % 400) }
                    )
                }
            )
        )
        let path = dir + "/state"
        try state.save(path: path)
        let loaded = try #require(try ChainState.load(path: path, memoryRecords: 32))
        #expect(loaded.index.table.isPaged && loaded.files.isPaged)
        #expect(try loaded.files.record(named: "f2999")?.chunks == (0..<100).map { UInt32((2999 + $0) % 400) })
        #expect(try loaded.files.record(named: "f3000") == nil)
        #expect(loaded.index == index && loaded.files == state.files && loaded.depth == 3)
        #expect(try loaded.encoded() == state.encoded())
    }

    /// A scratch file has no name from the start: nothing of it is left in its directory, even while it is open.
    @Test func aScratchFileHasNoName() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = try ScratchFile(purpose: "a test", directory: dir)
        let bytes = TestArchive.noise(100_000, seed: 9)
        try file.write(bytes, at: 0)
        try file.write([1, 2, 3], at: 200_000)
        #expect(try file.read(at: 0, count: bytes.count) == bytes)
        #expect(try file.read(at: 200_000, count: 3) == [1, 2, 3])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        #expect(throws: SealbakError.self) { try file.read(at: 200_000, count: 4) }
        // A directory that cannot hold it: the message names it and says how to use another one.
        do {
            _ = try ScratchFile(purpose: "a test", directory: dir + "/missing")
            Issue.record("a scratch file was made in a missing directory")
        } catch {
            #expect(
                error.message.contains(dir + "/missing") && error.message.contains("set TMPDIR"),
                "\(error.message)"
            )
        }
    }

    /// A chain written and read with tables of at most 16 records in memory (every table, run and id list goes
    /// through scratch files) is byte for byte the chain written in memory, and reads back the same, both ways.
    @Test func aChainThroughScratchFilesIsTheChainInMemory() throws {
        let big = TestArchive.noise(3 << 20, seed: 61)
        let first = [
            TestEntry(.directory, "d"),
            TestEntry(.file, "d/big.bin", big),
            TestEntry(.file, "d/notes.txt", TestArchive.text(200_000)),
            TestEntry(.stream, "dump", TestArchive.noise(1 << 20, seed: 62)),
        ]
        let changed = Array(big[..<(1 << 20)]) + TestArchive.noise(5_000, seed: 63) + Array(big[(1 << 20)...])
        let second = [
            TestEntry(.directory, "d"),
            TestEntry(.file, "d/big.bin", changed),
            TestEntry(.file, "d/notes.txt", TestArchive.text(200_000) + Array("more".utf8)),
            TestEntry(.stream, "dump", TestArchive.noise(1 << 20, seed: 62)),
        ]
        var reading = ReadOptions()
        func chain(memory: Int) throws -> (root: [UInt8], next: [UInt8]) {
            var o = ChainTests.options("scratch root")
            o.chunkTableMemoryRecords = memory
            let root = try TestArchive.build(first, options: o)
            reading.chunkTableMemoryRecords = memory
            let base = try ArchiveReader(
                input: InputFile(bytes: root, name: "root", seekable: true),
                secret: ChainTests.secret,
                options: reading
            )
            var n = TestArchive.options(seed: "scratch next")
            n.chain = try ChainWriteContext.continuing(from: base)
            #expect(n.chain?.baseIndex?.table.isPaged == (memory < 100))
            n.chunkTableMemoryRecords = memory
            return (root, try TestArchive.build(second, options: n))
        }
        let inMemory = try chain(memory: ChunkTables.memoryRecords)
        let scratch = try chain(memory: 16)
        #expect(scratch.root == inMemory.root)
        #expect(scratch.next == inMemory.next)
        reading.chunkTableMemoryRecords = 16
        let chainOfNext = TestChain(bases: [scratch.root])
        let pipe = try ArchiveReader(
            input: InputFile(bytes: scratch.next, name: "next", seekable: false),
            secret: ChainTests.secret,
            options: reading
        )
        try chainOfNext.attach(to: pipe, secret: ChainTests.secret, options: reading)
        let sink = MemorySink()
        try pipe.readAll(into: sink)
        #expect(second.indices.map { sink.data[$0] ?? [] } == second.map(\.data))
        #expect(pipe.chunkIndex?.table.isPaged == true)
        let file = try ArchiveReader(
            input: InputFile(bytes: scratch.next, name: "next", seekable: true),
            secret: ChainTests.secret,
            options: reading
        )
        try chainOfNext.attach(to: file, secret: ChainTests.secret, options: reading)
        for i in second.indices {
            let s = MemorySink()
            try file.readEntry(i, into: s)
            #expect((s.data[i] ?? []) == second[i].data, "entry \(i)")
        }
    }
}
