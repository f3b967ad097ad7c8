import Foundation
import SealbakCrypto

// The codec's threading model, in one place.
//
// Who runs what:
// - The *feeder* is the thread that calls `submit` (the command's own thread). Pack: it reads the input and cuts
//   frames. Read: it reads frame headers and ciphertexts from the archive. It never compresses or encrypts.
// - *Workers*: `workers` long-lived threads named `sealbak-frame`, started on demand, run the submitted closures
//   (compress + encrypt, or decrypt + decompress). They are pure computation: they call no sink and do no I/O.
// - The *writer*: one thread named `sealbak-deliver` takes results in submission order and alone calls `deliver`
//   (SHA-256 of the plaintext, file writes, the pipe into pg_restore, S3 part buffering with its blocking wait).
//   A slow or blocking sink therefore stalls only the writer; the workers keep going until `maxInFlight` items
//   exist, and then the feeder waits in `submit`.
//
// Memory: at most `maxInFlight` items exist at once (submitted, running, or waiting for delivery).
// Errors: the first error (from a closure or from `deliver`) stops delivery; later results are discarded, and
// `submit`, `finish` and `earliestError` report it.
// Synchronisation: one `NSCondition` guards all state (the codec's one lock idiom: a pthread mutex, which
// ThreadSanitizer understands); nothing here is lock-free.

/// Runs work items on a fixed pool of worker threads and hands their results, in submission order, to one
/// delivery closure on a thread of its own. See the file header for the threading model.
package final class OrderedPipeline<Output: Sendable>: Sendable {
    private let state: State

    /// - Parameters:
    ///   - workers: worker threads (started as work arrives, never more than this).
    ///   - maxInFlight: the bound on items that exist at once.
    ///   - deliver: called on the writer thread, in submission order.
    package init(
        workers: Int = ProcessInfo.processInfo.activeProcessorCount,
        maxInFlight: Int,
        deliver: @escaping (Output) throws -> Void
    ) {
        // The delivery thread hashes; OpenSSL must not first initialise itself there (see OpenSSLLibrary).
        OpenSSLLibrary.ensureInitialised()
        state = State(workers: max(1, workers), maxInFlight: max(1, maxInFlight), deliver: deliver)
    }

    /// Replaces the delivery closure; call before the first `submit`.
    package func setDelivery(_ deliver: @escaping (Output) throws -> Void) {
        state.condition.withLock { state.deliver = deliver }
    }

    /// Queues `work`; waits while `maxInFlight` items exist. Throws the pipeline's first error, if any.
    package func submit(_ work: @escaping @Sendable () throws -> Output) throws {
        try state.submit(work)
    }

    /// Waits until every submitted item was delivered and stops the threads; rethrows the first error.
    package func finish() throws {
        if let e = state.drain() { throw e }
    }

    /// Waits for outstanding work without throwing (cleanup after an error elsewhere) and stops the threads.
    package func drain() { _ = state.drain() }

    /// Drains, then returns the pipeline's own first error if it has one (it came from an earlier item than
    /// anything the submitter saw later), else `other`.
    package func earliestError(orElse other: any Error) -> any Error {
        state.drain() ?? other
    }

    deinit { state.abandon() }

    /// The shared state, owned by the pipeline and its threads. Every stored property is read and written only
    /// while `condition` is locked, which is what makes it safe to share.
    // @unchecked: every stored property is touched only while `condition` is locked.
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        let maxWorkers: Int
        let maxInFlight: Int
        var deliver: (Output) throws -> Void
        /// Submitted work not yet taken by a worker starts at `queueHead`; taken slots are emptied at once, so the
        /// frame a closure captured is freed as soon as its worker is done with it.
        var queue: [(seq: UInt64, work: (@Sendable () throws -> Output)?)] = []
        var queueHead = 0
        var ready: [UInt64: Result<Output, any Error>] = [:]
        var nextSubmit: UInt64 = 0
        var nextDeliver: UInt64 = 0
        var firstError: (any Error)?
        var workers = 0
        var idleWorkers = 0
        var writerStarted = false
        var writerRunning = false
        var delivering = false
        /// No more work will come: threads exit once nothing is left for them.
        var closing = false
        /// The pipeline is gone: results are dropped without calling `deliver`.
        var abandoned = false

        init(workers: Int, maxInFlight: Int, deliver: @escaping (Output) throws -> Void) {
            maxWorkers = workers
            self.maxInFlight = maxInFlight
            self.deliver = deliver
        }

        private var inFlight: Int { Int(nextSubmit - nextDeliver) }

        func submit(_ work: @escaping @Sendable () throws -> Output) throws {
            condition.lock()
            defer { condition.unlock() }
            while inFlight >= maxInFlight && firstError == nil { condition.wait() }
            if let firstError { throw firstError }
            precondition(!closing, "submit after finish")
            queue.append((nextSubmit, work))
            nextSubmit += 1
            if !writerStarted {
                writerStarted = true
                writerRunning = true
                start("sealbak-deliver") { $0.writerLoop() }
            }
            if idleWorkers == 0 && workers < maxWorkers {
                workers += 1
                start("sealbak-frame") { $0.workerLoop() }
            }
            condition.broadcast()
        }

        private func start(_ name: String, _ body: @escaping @Sendable (State) -> Void) {
            let t = Thread { [self] in body(self) }
            t.name = name
            t.start()
        }

        /// Takes queued work in order and stores each result for the writer.
        func workerLoop() {
            condition.lock()
            while true {
                while queueHead == queue.count && !closing {
                    idleWorkers += 1
                    condition.wait()
                    idleWorkers -= 1
                }
                if queueHead == queue.count { break }
                let (seq, taken) = queue[queueHead]
                queue[queueHead].work = nil
                queueHead += 1
                let work = taken!
                if queueHead > 64 && queueHead * 2 > queue.count {
                    queue.removeFirst(queueHead)
                    queueHead = 0
                }
                let skip = firstError != nil || abandoned
                condition.unlock()
                let result: Result<Output, any Error> = skip ? .failure(CancellationError()) : Result { try work() }
                condition.lock()
                ready[seq] = result
                condition.broadcast()
            }
            workers -= 1
            condition.broadcast()
            condition.unlock()
        }

        /// Delivers results in submission order; after the first error only counts them off.
        func writerLoop() {
            condition.lock()
            while true {
                while ready[nextDeliver] == nil && !(closing && nextDeliver == nextSubmit) { condition.wait() }
                guard let item = ready.removeValue(forKey: nextDeliver) else { break }
                if firstError == nil && !abandoned {
                    delivering = true
                    let deliver = self.deliver
                    condition.unlock()
                    var failure: (any Error)?
                    do { try deliver(try item.get()) } catch { failure = error }
                    condition.lock()
                    delivering = false
                    if let failure, firstError == nil { firstError = failure }
                }
                nextDeliver += 1
                condition.broadcast()
            }
            writerRunning = false
            condition.broadcast()
            condition.unlock()
        }

        /// Waits for every item to be delivered (or dropped after an error), lets the threads exit and waits for
        /// them; returns the first error.
        func drain() -> (any Error)? {
            condition.lock()
            defer { condition.unlock() }
            closing = true
            condition.broadcast()
            while writerRunning || workers > 0 { condition.wait() }
            return firstError
        }

        /// The pipeline was released without `finish`/`drain`: drop what is left without delivering it. Waits
        /// for a delivery in progress, whose closure may refer to the pipeline's owner.
        func abandon() {
            condition.lock()
            defer { condition.unlock() }
            abandoned = true
            closing = true
            condition.broadcast()
            while delivering { condition.wait() }
        }
    }
}

/// A small pool so each worker reuses a zstd/zlib context instead of allocating one per frame. An item is taken
/// out under the lock and used by one thread until it is given back. (A bare lock rather than `Locked`: the items
/// are not `Sendable`, and region checking cannot see that each is handed to one thread at a time.)
// @unchecked: `items` only under `lock`; an item is used by one thread at a time.
package final class Pool<T: AnyObject>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    private let make: () -> T

    package init(_ make: @escaping () -> T) { self.make = make }

    package func with<R, E: Error>(_ body: (T) throws(E) -> R) throws(E) -> R {
        let item = lock.withLock { items.popLast() } ?? make()
        defer { lock.withLock { items.append(item) } }
        return try body(item)
    }
}
