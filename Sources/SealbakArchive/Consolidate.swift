import Foundation
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakSync

/// Writes the content of an archive (a chained one read through its chain, Spec §14) as a new archive: what
/// `sealbak consolidate` does so that old links of a chain can go, and what `rekey` does to an incremental archive.
/// The reader runs on a thread of its own and hands verified content to the writer through a bounded queue, so
/// memory stays bounded whatever the size.
package enum Consolidate {
    /// - Parameters:
    ///   - reader: the archive to copy (its chain attached when it has one).
    ///   - options: how the new archive is written; `options.chain` makes it a new chain root.
    /// - Returns: what was written. Nothing is committed: the caller verifies and commits its output.
    package static func copy(
        from reader: ArchiveReader,
        passwords: [PasswordSlotSpec],
        recipients: [[UInt8]],
        options: WriteOptions,
        sink: @escaping (UnsafeRawBufferPointer) throws -> Void
    ) throws -> WriteSummary {
        var manifest = reader.manifest
        manifest.metadata[ChainMetadata.chunkKeyName] = nil
        manifest.metadata[ChainMetadata.chunkerName] = nil
        let writer = try ArchiveWriter(
            manifest: manifest,
            passwords: passwords,
            recipients: recipients,
            options: options,
            sink: sink
        )
        let queue = ContentQueue(limit: 16 << 20)
        let failure = Locked<(any Error)?>(nil)
        let done = DispatchSemaphore(value: 0)
        // The reading thread owns the reader (and the queue's producing side) until `done` is signalled; this thread
        // does not touch the reader meanwhile.
        nonisolated(unsafe) let owned = reader
        let thread = Thread {
            do {
                try owned.readAll(into: queue)
                queue.finish(nil)
            } catch {
                failure.withLock { $0 = error }
                queue.finish(error)
            }
            done.signal()
        }
        thread.name = "sealbak-consolidate-read"
        thread.stackSize = 1 << 20
        thread.start()
        do {
            for i in manifest.entries.indices {
                try writer.writeEntry { buffer in try queue.read(entry: i, into: buffer) }
            }
            try queue.expectEnd()
            done.wait()
            if let error = failure.withLock({ $0 }) { throw error }
            return try writer.finish()
        } catch {
            queue.cancel()
            done.wait()
            writer.abandon()
            throw failure.withLock({ $0 }) ?? error
        }
    }
}

/// Verified entry content from the reading thread to the writing one, in order, at most `limit` bytes queued.
private final class ContentQueue: EntrySink, @unchecked Sendable {  // all state under `condition`
    private enum Item {
        case bytes([UInt8])
        case end
    }
    private let condition = NSCondition()
    private var items: [(entry: Int, item: Item)] = []
    private var head = 0
    private var queued = 0
    private let limit: Int
    private var finished = false
    private var failure: (any Error)?
    private var cancelled = false
    /// The item being consumed and how far.
    private var current: [UInt8] = []
    private var currentOffset = 0

    init(limit: Int) { self.limit = limit }

    // Reading thread.
    func wants(_ index: Int) -> Bool { true }
    func begin(_ index: Int) throws {}
    func write(_ index: Int, _ bytes: [UInt8]) throws { try push(index, .bytes(bytes), count: bytes.count) }
    func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws { try push(index, .end, count: 0) }

    private func push(_ entry: Int, _ item: Item, count: Int) throws {
        condition.lock()
        defer { condition.unlock() }
        while queued + count > limit && queued > 0 && !cancelled { condition.wait() }
        if cancelled { throw SealbakError(.internalError, "the copy was stopped") }
        items.append((entry, item))
        queued += count
        condition.broadcast()
    }

    func finish(_ error: (any Error)?) {
        condition.lock()
        finished = true
        failure = error
        condition.broadcast()
        condition.unlock()
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    // Writing thread.
    /// Fills `buffer` with the next bytes of `entry`; 0 at its end.
    func read(entry: Int, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if currentOffset < current.count {
            let n = min(buffer.count, current.count - currentOffset)
            current.withUnsafeBytes {
                buffer.baseAddress!.copyMemory(from: $0.baseAddress!.advanced(by: currentOffset), byteCount: n)
            }
            currentOffset += n
            return n
        }
        condition.lock()
        defer { condition.unlock() }
        while head == items.count {
            if finished {
                throw failure
                    ?? SealbakError(.internalError, "the archive being copied ended before entry \(entry) did")
            }
            condition.wait()
        }
        let (e, item) = items[head]
        guard e == entry else {
            throw SealbakError(.internalError, "the copy expected entry \(entry), the reader delivered \(e)")
        }
        items[head] = (e, .end)
        head += 1
        if head > 1024 {
            items.removeFirst(head)
            head = 0
        }
        switch item {
        case .end:
            return 0
        case .bytes(let bytes):
            queued -= bytes.count
            condition.broadcast()
            current = bytes
            let n = min(buffer.count, bytes.count)
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
            currentOffset = n
            return n
        }
    }

    /// After the last entry: the reader must have ended without error.
    func expectEnd() throws {
        condition.lock()
        defer { condition.unlock() }
        while !finished { condition.wait() }
        if let failure { throw failure }
    }
}
