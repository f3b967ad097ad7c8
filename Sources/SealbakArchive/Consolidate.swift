import Foundation
import SealbakCompression
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
        sink: @escaping (RawSpan) throws -> Void
    ) throws -> WriteSummary {
        var manifest = reader.manifest
        manifest.metadata[ChainMetadata.chunkKeyName] = nil
        manifest.metadata[ChainMetadata.chunkerName] = nil
        var options = options
        // The dictionary was trained on these very files.
        if options.dictionary == nil { options.dictionary = reader.dictionary?.bytes }
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
        let cursor = ContentCursor(queue)
        var readerJoined = false
        do {
            for i in manifest.entries.indices {
                try writer.writeEntry { out in try cursor.read(entry: i, into: &out) }
            }
            try queue.expectEnd()
            done.wait()
            readerJoined = true
            if let error = failure.withLock({ $0 }) { throw error }
            return try writer.finish()
        } catch {
            queue.cancel()
            // `done` is signalled once: a failure after the reader ended (the trailer's write) must not wait again.
            if !readerJoined { done.wait() }
            writer.abandon()
            // The reader's own failure explains the writer's; its stop (our cancel) does not.
            let readerFailure = failure.withLock { $0 }
            throw readerFailure is ContentQueue.Stopped ? error : readerFailure ?? error
        }
    }
}

/// Verified entry content from the reading thread to the writing one, in order, at most `limit` bytes queued.
///
/// One producer (the reading thread, through `EntrySink`) and one consumer (the writing thread, through a
/// `ContentCursor`). Everything shared is in a `Locked`; the two semaphores only wake a side that said, under the
/// lock, that it is about to wait (a signal given before the wait is kept, so no wake-up is lost).
private final class ContentQueue: EntrySink, Sendable {
    private enum Item {
        case bytes([UInt8])
        case end
    }
    private struct State {
        var items: [(entry: Int, item: Item)] = []
        var head = 0
        var queued = 0
        var finished = false
        var failure: (any Error)?
        var cancelled = false
        var producer = WakeFlag()
        var consumer = WakeFlag()
    }
    private let state = Locked(State())
    private let roomMade = DispatchSemaphore(value: 0)
    private let itemAdded = DispatchSemaphore(value: 0)
    private let limit: Int
    /// What the reading side throws once the writing side gave up (never shown: the writer's error is).
    struct Stopped: Error {}

    init(limit: Int) { self.limit = limit }

    // Reading thread.
    func wants(_ index: Int) -> Bool { true }
    func begin(_ index: Int) throws {}
    func write(_ index: Int, _ bytes: [UInt8]) throws { try push(index, .bytes(bytes), count: bytes.count) }
    func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws { try push(index, .end, count: 0) }

    private func push(_ entry: Int, _ item: Item, count: Int) throws {
        while true {
            let (added, wake) = state.withLock { s -> (Bool?, Bool) in
                if s.cancelled { return (nil, false) }
                guard s.queued + count <= limit || s.queued == 0 else {
                    s.producer.waiting = true
                    return (false, false)
                }
                s.items.append((entry, item))
                s.queued += count
                return (true, s.consumer.take())
            }
            if wake { itemAdded.signal() }
            switch added {
            case nil: throw Stopped()
            case true?: return
            case false?: roomMade.wait()
            }
        }
    }

    /// The reading thread is done (`error` if it failed).
    func finish(_ error: (any Error)?) {
        let wake = state.withLock { s -> Bool in
            s.finished = true
            s.failure = error
            return s.consumer.take()
        }
        if wake { itemAdded.signal() }
    }

    /// The writing side gave up: a producer waiting for room stops.
    func cancel() {
        let wake = state.withLock { s -> Bool in
            s.cancelled = true
            return s.producer.take()
        }
        if wake { roomMade.signal() }
    }

    // Writing thread.
    /// The next item of `entry`: its bytes, or nil at its end.
    fileprivate func next(entry: Int) throws -> [UInt8]? {
        while true {
            let taken = try state.withLock { s throws -> (item: Item?, wake: Bool) in
                guard s.head < s.items.count else {
                    if s.finished {
                        throw s.failure
                            ?? SealbakError(.internalError, "the archive being copied ended before entry \(entry) did")
                    }
                    s.consumer.waiting = true
                    return (nil, false)
                }
                let (e, item) = s.items[s.head]
                guard e == entry else {
                    throw SealbakError(.internalError, "the copy expected entry \(entry), the reader delivered \(e)")
                }
                s.items[s.head] = (e, .end)
                s.head += 1
                if s.head > 1024 {
                    s.items.removeFirst(s.head)
                    s.head = 0
                }
                if case .bytes(let bytes) = item { s.queued -= bytes.count }
                return (item, s.producer.take())
            }
            if taken.wake { roomMade.signal() }
            switch taken.item {
            case nil: itemAdded.wait()
            case .end?: return nil
            case .bytes(let bytes)?: return bytes
            }
        }
    }

    /// After the last entry: the reader must have ended without error.
    func expectEnd() throws {
        while true {
            let outcome = state.withLock { s -> Result<Bool, any Error> in
                guard s.finished else {
                    s.consumer.waiting = true
                    return .success(false)
                }
                return s.failure.map { .failure($0) } ?? .success(true)
            }
            if try outcome.get() { return }
            itemAdded.wait()
        }
    }
}

/// The writing thread's position in the item it is copying out of a `ContentQueue`. Not shared: it lives on the
/// writing thread only.
private final class ContentCursor {
    private let queue: ContentQueue
    private var current: [UInt8] = []
    private var offset = 0

    init(_ queue: ContentQueue) { self.queue = queue }

    /// Appends the next bytes of `entry` to `out`; nothing at its end.
    func read(entry: Int, into out: inout OutputSpan<UInt8>) throws {
        while offset == current.count {
            guard let next = try queue.next(entry: entry) else { return }
            current = next
            offset = 0
        }
        offset += out.appendPrefix(of: current.span.extracting(offset...))
    }
}
