import Foundation
import SealbakCompression
import SealbakCrypto

// The codec's threading model, in one place.
//
// Who runs what:
// - The *feeder* is the thread that calls `submit` (the command's own thread). Pack: it reads the input and cuts
//   frames. Read: it reads frame headers and ciphertexts from the archive. It never compresses or encrypts.
// - *Workers*: `workers` long-lived threads named `sealbak-frame`, started on demand, run the submitted closures
//   (compress + encrypt, or decrypt + decompress). They are pure computation: they call no sink and do no I/O.
//   Each worker creates its own `FrameScratch` (its zstd/zlib contexts) and passes it to every closure it runs;
//   a scratch never leaves its thread, so no pool or lock is needed for them.
// - The *writer*: one thread named `sealbak-deliver` takes results in submission order and alone calls `deliver`
//   (SHA-256 of the plaintext, file writes, the pipe into pg_restore, S3 part buffering with its blocking wait).
//   A slow or blocking sink therefore stalls only the writer; the workers keep going until `maxInFlight` items
//   exist, and then the feeder waits in `submit`.
//
// Memory: at most `maxInFlight` items exist at once (submitted, running, or waiting for delivery).
// Errors: the first error (from a closure or from `deliver`) stops delivery; later results are discarded, and
// `submit`, `finish` and `earliestError` report it.
// Synchronisation: one pthread mutex guards all state, with one wait condition per kind of thread (workers, the
// writer, the feeder), each signalled only when what its thread waits for may have happened; the writer delivers
// every result that is ready per turn of the lock. ThreadSanitizer understands these; nothing here is lock-free.

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
        state.lock.lock()
        state.deliver = deliver
        state.lock.unlock()
    }

    /// Queues `work`; waits while `maxInFlight` items exist. Throws the pipeline's first error, if any. `work` is
    /// given the running worker's own `FrameScratch`.
    package func submit(_ work: @escaping @Sendable (FrameScratch) throws -> Output) throws {
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
    /// while `lock` is held, which is what makes it safe to share.
    // @unchecked: every stored property is touched only while `lock` is held.
    private final class State: @unchecked Sendable {
        /// One mutex, three wait conditions: each kind of thread waits on its own, and is woken only when what it
        /// waits for may have happened (a worker for queued work, the writer for the next result in order, the
        /// feeder for room or the end). One broadcast condition for all woke every thread on every event.
        let lock = MutexWithConditions(conditions: 3)
        static var workerWait: Int { 0 }
        static var writerWait: Int { 1 }
        static var feederWait: Int { 2 }

        let maxWorkers: Int
        let maxInFlight: Int
        var deliver: (Output) throws -> Void
        /// Rings of `maxInFlight` slots indexed by sequence number modulo `maxInFlight`: at most that many items
        /// exist at once, so a slot is free again before its number comes round. A slot's work is emptied when a
        /// worker takes it, so the frame a closure captured is freed as soon as its worker is done with it.
        var work: [(@Sendable (FrameScratch) throws -> Output)?]
        var results: [Result<Output, any Error>?]
        var nextSubmit: UInt64 = 0
        var nextTake: UInt64 = 0
        var nextDeliver: UInt64 = 0
        var firstError: (any Error)?
        var workers = 0
        var idleWorkers = 0
        var writerStarted = false
        var writerRunning = false
        var writerWaiting = false
        var feederWaiting = false
        var delivering = false
        /// No more work will come: threads exit once nothing is left for them.
        var closing = false
        /// The pipeline is gone: results are dropped without calling `deliver`.
        var abandoned = false

        init(workers: Int, maxInFlight: Int, deliver: @escaping (Output) throws -> Void) {
            maxWorkers = workers
            self.maxInFlight = maxInFlight
            self.deliver = deliver
            work = Array(repeating: nil, count: maxInFlight)
            results = Array(repeating: nil, count: maxInFlight)
        }

        private var inFlight: Int { Int(nextSubmit - nextDeliver) }
        private func slot(_ seq: UInt64) -> Int { Int(seq % UInt64(maxInFlight)) }

        /// Wakes the feeder if it waits (for room, in `drain` or in `abandon`); called with the lock held.
        private func wakeFeeder() {
            if feederWaiting { lock.broadcast(Self.feederWait) }
        }

        func submit(_ work: @escaping @Sendable (FrameScratch) throws -> Output) throws {
            lock.lock()
            defer { lock.unlock() }
            while inFlight >= maxInFlight && firstError == nil {
                feederWaiting = true
                lock.wait(Self.feederWait)
                feederWaiting = false
            }
            if let firstError { throw firstError }
            precondition(!closing, "submit after finish")
            self.work[slot(nextSubmit)] = work
            nextSubmit += 1
            if !writerStarted {
                writerStarted = true
                writerRunning = true
                start("sealbak-deliver") { $0.writerLoop() }
            }
            if idleWorkers > 0 {
                lock.signal(Self.workerWait)
            } else if workers < maxWorkers {
                workers += 1
                start("sealbak-frame") { $0.workerLoop() }
            }
        }

        private func start(_ name: String, _ body: @escaping @Sendable (State) -> Void) {
            let t = Thread { [self] in body(self) }
            t.name = name
            t.start()
        }

        /// Takes queued work in order and stores each result for the writer.
        func workerLoop() {
            let scratch = FrameScratch()
            lock.lock()
            while true {
                while nextTake == nextSubmit && !closing {
                    idleWorkers += 1
                    lock.wait(Self.workerWait)
                    idleWorkers -= 1
                }
                if nextTake == nextSubmit { break }
                let seq = nextTake
                nextTake += 1
                let taken = work[slot(seq)]!
                work[slot(seq)] = nil
                let skip = firstError != nil || abandoned
                lock.unlock()
                let result: Result<Output, any Error> =
                    skip ? .failure(CancellationError()) : Result { try taken(scratch) }
                lock.lock()
                results[slot(seq)] = result
                if seq == nextDeliver && writerWaiting { lock.signal(Self.writerWait) }
            }
            workers -= 1
            wakeFeeder()
            lock.unlock()
        }

        /// Delivers results in submission order, every result that is ready at once per turn of the lock; after
        /// the first error only counts them off.
        func writerLoop() {
            lock.lock()
            var batch: [Result<Output, any Error>] = []
            batch.reserveCapacity(maxInFlight)
            while true {
                while results[slot(nextDeliver)] == nil && !(closing && nextDeliver == nextSubmit) {
                    writerWaiting = true
                    lock.wait(Self.writerWait)
                    writerWaiting = false
                }
                var seq = nextDeliver
                while seq < nextSubmit, let item = results[slot(seq)] {
                    results[slot(seq)] = nil
                    batch.append(item)
                    seq += 1
                }
                if batch.isEmpty { break }
                if firstError == nil && !abandoned {
                    delivering = true
                    let deliver = self.deliver
                    lock.unlock()
                    var failure: (any Error)?
                    for item in batch where failure == nil {
                        do { try deliver(try item.get()) } catch { failure = error }
                    }
                    lock.lock()
                    delivering = false
                    if let failure, firstError == nil { firstError = failure }
                }
                batch.removeAll(keepingCapacity: true)
                nextDeliver = seq
                wakeFeeder()
                // An error releases a feeder waiting for room; workers waiting for work have nothing to skip.
            }
            writerRunning = false
            wakeFeeder()
            lock.unlock()
        }

        /// Waits for every item to be delivered (or dropped after an error), lets the threads exit and waits for
        /// them; returns the first error.
        func drain() -> (any Error)? {
            lock.lock()
            defer { lock.unlock() }
            closing = true
            lock.broadcast(Self.workerWait)
            lock.signal(Self.writerWait)
            while writerRunning || workers > 0 {
                feederWaiting = true
                lock.wait(Self.feederWait)
                feederWaiting = false
            }
            return firstError
        }

        /// The pipeline was released without `finish`/`drain`: drop what is left without delivering it. Waits
        /// for a delivery in progress, whose closure may refer to the pipeline's owner.
        func abandon() {
            lock.lock()
            defer { lock.unlock() }
            abandoned = true
            closing = true
            lock.broadcast(Self.workerWait)
            lock.signal(Self.writerWait)
            while delivering {
                feederWaiting = true
                lock.wait(Self.feederWait)
                feederWaiting = false
            }
        }
    }
}

/// A pthread mutex with several condition variables over it, so that threads waiting for different things can be
/// woken separately (`NSCondition` has one of each). ThreadSanitizer follows pthread mutexes and conditions. Not
/// `Sendable` itself: it is shared only as a part of the pipeline's `State`, whose conformance it makes true.
package final class MutexWithConditions {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let conditions: UnsafeMutablePointer<pthread_cond_t>
    private let count: Int

    package init(conditions count: Int) {
        self.count = count
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        conditions = .allocate(capacity: count)
        for i in 0..<count { pthread_cond_init(conditions + i, nil) }
    }

    deinit {
        for i in 0..<count { pthread_cond_destroy(conditions + i) }
        conditions.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func lock() { pthread_mutex_lock(mutex) }
    package func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits on condition `i`; the mutex must be held. Wake-ups may be spurious: wait in a loop on the predicate.
    package func wait(_ i: Int) { pthread_cond_wait(conditions + i, mutex) }
    package func signal(_ i: Int) { pthread_cond_signal(conditions + i) }
    package func broadcast(_ i: Int) { pthread_cond_broadcast(conditions + i) }
}

/// The compression contexts of one thread: a zstd/zlib compressor and decompressor, made when first used and kept
/// for every later frame (making them per frame costs an allocation and a first touch of their windows each time).
/// Not `Sendable`: each pipeline worker creates one on its own thread and hands it only to the closures it runs;
/// single-threaded paths keep their own.
package final class FrameScratch {
    package private(set) lazy var compressor = FrameCompressor()
    package private(set) lazy var decompressor = FrameDecompressor()

    package init() {}
}
