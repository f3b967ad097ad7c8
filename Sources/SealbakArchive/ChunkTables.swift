import Foundation
import SealbakFormat
import SealbakIO

// Chunk tables in bounded memory (Spec §14.3, §14.8).
//
// A chain's chunk tables grow with its data: 64 bytes per chunk, 4 MiB per GiB at the standard chunk size. Held in
// memory, a writer of a 100 GiB chain would need hundreds of MiB for the base's table, the new archive's chunk list
// and its sorted index. Here every such table stays in memory only up to `ChunkTables.memoryRecords` records; beyond
// that it goes to an unnamed scratch file (`ScratchFile`) and is looked up a page at a time (`ChunkTable`). The new
// archive's chunks arrive in content order and are sorted in runs, then merged (`ChunkSorter`).
//
// Memory of a writer, whatever the data size: two tables of at most `memoryRecords` records, one sort run, one read
// buffer per run while merging, and half a byte per chunk for the ids that start the pages of a paged table. Disk:
// up to three times 64 bytes per chunk in TMPDIR.

/// Limits of the chunk tables kept in memory.
package enum ChunkTables {
    /// Records a table holds in memory before it moves to a scratch file: 4 MiB, the chunks of 1 GiB of data at the
    /// standard chunk size. Below it, lookups stay in memory (a paged lookup is a 4 KiB read from the page cache:
    /// on the 800 MB benchmark data set, a limit of 1 MiB made the incremental pack 0.25 s slower). The writer's
    /// and reader's options can lower it (tests).
    package static let memoryRecords = 65_536
    /// Records all the bases' tables of a chain being read keep in memory together (16 MiB): each base gets its share.
    package static let chainMemoryRecords = 4 * memoryRecords
    /// Records the sorter of a new archive's chunks sorts in memory at a time (2 MiB).
    package static let runRecords = 32_768
    /// The memory all the runs' read buffers share while they are merged.
    package static let mergeBufferBytes = 4 << 20
}

/// Bytes appended in order and read back by offset: in memory up to `memoryLimit` bytes, then all of them in a
/// scratch file, written in pieces of 1 MiB.
final class SpillBuffer {
    private let memoryLimit: Int
    private let purpose: String
    /// Everything while in memory; once spilled, the bytes not yet written to the file.
    private var memory: [UInt8] = []
    private(set) var file: ScratchFile?
    private var written: UInt64 = 0
    private(set) var count: UInt64 = 0

    init(memoryLimit: Int, purpose: String) {
        self.memoryLimit = memoryLimit
        self.purpose = purpose
    }

    func append(_ bytes: some Collection<UInt8>) throws {
        memory += bytes
        count += UInt64(bytes.count)
        if file == nil && memory.count > memoryLimit { file = try ScratchFile(purpose: purpose) }
        if file != nil && memory.count >= 1 << 20 { try flush() }
    }

    /// Writes what is buffered to the file (nothing while in memory).
    func flush() throws {
        guard let file, !memory.isEmpty else { return }
        try file.write(memory, at: written)
        written += UInt64(memory.count)
        memory.removeAll(keepingCapacity: true)
    }

    /// All the bytes, when they are still in memory.
    var inMemory: [UInt8]? { file == nil ? memory : nil }

    /// `n` bytes at `offset` (after `flush` once spilled).
    func read(at offset: UInt64, count n: Int) throws -> [UInt8] {
        guard let file else { return Array(memory[Int(offset)..<Int(offset) + n]) }
        precondition(memory.isEmpty, "flushed before reading")
        return try file.read(at: offset, count: n)
    }
}

/// Makes a `ChunkTable` of checked records given in ascending order: in memory while small, else paged from a
/// scratch file.
final class ChunkTableBuilder {
    private let spill: SpillBuffer
    private var pageIDs: [UInt8] = []
    private var count = 0

    init(memoryRecords: Int = ChunkTables.memoryRecords, purpose: String) {
        spill = SpillBuffer(memoryLimit: memoryRecords * ChunkTable.recordByteCount, purpose: purpose)
    }

    /// Appends whole records, checked and ascending (also across calls).
    func append(_ records: [UInt8]) throws {
        let size = ChunkTable.recordByteCount
        var i = (count + ChunkTable.pageRecords - 1) / ChunkTable.pageRecords * ChunkTable.pageRecords
        while i < count + records.count / size {
            let at = (i - count) * size
            pageIDs += records[at..<at + ChunkTable.idByteCount]
            i += ChunkTable.pageRecords
        }
        count += records.count / size
        try spill.append(records)
    }

    func finish() throws -> ChunkTable {
        guard let file = spill.file else { return ChunkTable(records: spill.inMemory ?? []) }
        try spill.flush()
        let size = UInt64(ChunkTable.recordByteCount)
        return ChunkTable(count: count, pageIDs: pageIDs) { first, n in
            try file.read(at: UInt64(first) * size, count: n * Int(size))
        }
    }
}

/// Sorts chunk records given in any order into ascending order, keeping of each id the record given first (Spec
/// §14.3), in bounded memory: runs of `runRecords` are sorted in memory and written out, then merged.
final class ChunkSorter {
    private let runRecords: Int
    private var run: [UInt8] = []
    private let spill: SpillBuffer
    /// The sorted runs written so far, as record ranges of `spill`.
    private var runs: [Range<Int>] = []
    private var spilledRecords = 0
    init(runRecords: Int = ChunkTables.runRecords) {
        self.runRecords = max(2, runRecords)
        // Runs are written in pieces anyway; the buffer only holds one piece.
        spill = SpillBuffer(memoryLimit: 0, purpose: "sorting the chunk index")
    }

    func append(id: [UInt8], location: ChunkLocation) throws {
        ChunkIndex.appendRecord(id: id, location: location, to: &run)
        if run.count == runRecords * ChunkTable.recordByteCount { try spillRun() }
    }

    /// The current run, sorted by id, each id once (the record given first).
    private func sortedRun() -> [UInt8] {
        let sorted = ChunkTable.sortedUnique(run)
        run.removeAll(keepingCapacity: true)
        return sorted
    }

    private func spillRun() throws {
        let sorted = sortedRun()
        let n = sorted.count / ChunkTable.recordByteCount
        try spill.append(sorted)
        runs.append(spilledRecords..<spilledRecords + n)
        spilledRecords += n
    }

    /// Hands every record, ascending, each id once, to `builder`.
    func finish(into builder: ChunkTableBuilder) throws {
        if runs.isEmpty {
            try builder.append(sortedRun())
            return
        }
        if !run.isEmpty { try spillRun() }
        try spill.flush()
        try merge(into: builder)
    }

    /// A k-way merge of the runs through a binary heap of the runs' current records; of equal ids the one of the
    /// earlier run wins (runs are in the order their records were given).
    private func merge(into builder: ChunkTableBuilder) throws {
        let size = ChunkTable.recordByteCount
        // Records read per run at a time: the runs share `mergeBufferBytes` (at the largest index, 512 runs of 8 KiB).
        let perRun = max(16, min(512, ChunkTables.mergeBufferBytes / size / runs.count))
        var buffers = [[UInt8]](repeating: [], count: runs.count)
        var positions = [Int](repeating: 0, count: runs.count)  // within the buffer, in records
        var next = runs.map(\.lowerBound)  // the next record of the run to read into its buffer
        func refill(_ r: Int) throws -> Bool {
            let n = min(perRun, runs[r].upperBound - next[r])
            if n == 0 { return false }
            buffers[r] = try spill.read(at: UInt64(next[r] * size), count: n * size)
            next[r] += n
            positions[r] = 0
            return true
        }
        func less(_ a: Int, _ b: Int) -> Bool {
            let c = buffers[a].withUnsafeBufferPointer { x in
                buffers[b].withUnsafeBufferPointer { y in
                    ChunkTable.compare(x.baseAddress! + positions[a] * size, y.baseAddress! + positions[b] * size)
                }
            }
            return c != 0 ? c < 0 : a < b
        }
        var heap: [Int] = []
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < heap.count && less(heap[l], heap[m]) { m = l }
                if r < heap.count && less(heap[r], heap[m]) { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for r in runs.indices where try refill(r) { heap.append(r) }
        for i in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(i) }
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        var lastID: [UInt8] = []
        while let r = heap.first {
            let at = positions[r] * size
            let id = buffers[r][at..<at + ChunkTable.idByteCount]
            if lastID.isEmpty || !lastID.elementsEqual(id) {
                out += buffers[r][at..<at + size]
                lastID = Array(id)
                if out.count >= 1 << 20 {
                    try builder.append(out)
                    out.removeAll(keepingCapacity: true)
                }
            }
            positions[r] += 1
            if positions[r] * size == buffers[r].count, try !refill(r) {
                heap[0] = heap[heap.count - 1]
                heap.removeLast()
            }
            if !heap.isEmpty { siftDown(0) }
        }
        try builder.append(out)
    }
}

/// Reads an index stream's plaintext as it is decrypted, piece by piece, into a `ChunkIndex` whose table goes to a
/// scratch file once it is large.
struct ChunkIndexReader {
    private var parser: ChunkIndexParser
    private let builder: ChunkTableBuilder

    init(expectedEntryCount: Int, memoryRecords: Int = ChunkTables.memoryRecords) {
        parser = ChunkIndexParser(expectedEntryCount: expectedEntryCount)
        builder = ChunkTableBuilder(memoryRecords: memoryRecords, purpose: "a chunk index")
    }

    /// - Throws: `FormatError` (class `payload`, offsets inside the plaintext) or an I/O error of the scratch file.
    mutating func feed(_ bytes: [UInt8]) throws {
        let records = try parser.feed(bytes)
        if !records.isEmpty { try builder.append(records) }
    }

    func finish() throws -> ChunkIndex {
        let entries = try parser.finish()
        return ChunkIndex(entries: entries, table: try builder.finish())
    }
}

/// What a chained archive's writer records of the chunks it places: every chunk with its place, sorted into the
/// index stream at the end, and the chunk ids of each file in order, for the chain state's file table.
final class ChainChunkLog {
    let sorter: ChunkSorter
    /// Files' chunk ids, 32 bytes each, in the order they were placed.
    let ids: SpillBuffer

    init(memoryRecords: Int) {
        sorter = ChunkSorter(runRecords: min(memoryRecords, ChunkTables.runRecords))
        ids = SpillBuffer(memoryLimit: memoryRecords * ChunkTable.idByteCount, purpose: "the chunk ids of files")
    }

    /// Records a chunk placed at `location`; `keepID`: also in the current file's list of ids.
    func add(id: [UInt8], location: ChunkLocation, keepID: Bool) throws {
        try sorter.append(id: id, location: location)
        if keepID { try ids.append(id) }
    }
}
