import Foundation
import SealbakSync
import Testing

@testable import SealbakArchive

/// The chained restore's writing thread: jobs run in order on one thread that is not the submitter's, the queued
/// weight never exceeds the limit, `drain` returns only when everything ran, and `close` lets the thread go.
@Suite struct OrderedWorkerTests {
    @Test(arguments: [1, 3, 40])
    func runsInOrderWithinTheLimit(limit: Int) {
        let worker = OrderedWorker(name: "test-worker", limit: limit)
        let ran = Locked<[Int]>([])
        let threads = Locked(Set<UInt>())
        let queued = Locked(0)
        let most = Locked(0)
        for i in 0..<200 {
            let units = i % 4 + 1
            queued.withLock { q in
                q += min(units, limit)
                let now = q
                most.withLock { $0 = max($0, now) }
            }
            worker.submit(units: units) {
                threads.withLock { _ = $0.insert(UInt(pthread_self())) }
                ran.withLock { $0.append(i) }
                queued.withLock { $0 -= min(units, limit) }
            }
        }
        worker.drain()
        #expect(ran.current == Array(0..<200))
        #expect(threads.current.count == 1 && !threads.current.contains(UInt(pthread_self())))
        // Counted before the job is admitted, so this may overstate by the job that waits for room.
        #expect(most.current <= limit + 4)
        worker.close()
    }

    @Test func drainWaitsForASlowJobAndCloseEndsTheThread() {
        let worker = OrderedWorker(name: "test-worker", limit: 4)
        let done = Locked(false)
        worker.submit(units: 1) {
            usleep(50_000)
            done.withLock { $0 = true }
        }
        worker.drain()
        #expect(done.current)
        worker.drain()  // nothing queued: returns at once
        worker.close()
    }
}
