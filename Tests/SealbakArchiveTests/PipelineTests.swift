import Foundation
import SealbakSync
import Testing

@testable import SealbakArchive

/// The frame pipeline's contract, checked directly: results arrive in submission order on one thread, at most
/// `maxInFlight` items exist at once, the first error stops delivery and is the one reported, and a pipeline
/// released without `finish` neither hangs nor delivers.
@Suite struct PipelineTests {
    struct Boom: Error, Equatable { let seq: Int }

    /// Work of very different lengths, so later items often finish before earlier ones.
    static func spin(_ seq: Int) -> Int {
        var x = UInt64(seq) &+ 1
        for _ in 0..<((seq * 7919) % 5_000) { x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407 }
        return seq &+ Int(x & 0)
    }

    @Test(arguments: [(1, 1), (1, 8), (2, 2), (4, 3), (8, 64)])
    func deliversInOrderWithinTheBound(workers: Int, maxInFlight: Int) throws {
        let delivered = Locked<[Int]>([])
        let threads = Locked(Set<UInt>())
        let pipeline = OrderedPipeline<Int>(workers: workers, maxInFlight: maxInFlight) { seq in
            delivered.withLock { $0.append(seq) }
            threads.withLock { _ = $0.insert(UInt(pthread_self())) }
        }
        var most = 0
        for seq in 0..<2_000 {
            try pipeline.submit { _ in Self.spin(seq) }
            // Admitted items not yet delivered (deliveries only grow, so this never overstates).
            most = max(most, seq + 1 - delivered.withLock { $0.count })
        }
        try pipeline.finish()
        #expect(delivered.current == Array(0..<2_000))
        #expect(most <= maxInFlight)
        #expect(threads.current.count == 1)
        #expect(!threads.current.contains(UInt(pthread_self())))
    }

    @Test func theFirstFailingItemIsTheErrorReportedAndLaterItemsAreNotDelivered() throws {
        let delivered = Locked<[Int]>([])
        let pipeline = OrderedPipeline<Int>(workers: 4, maxInFlight: 6) { seq in delivered.withLock { $0.append(seq) } }
        var submitError: (any Error)?
        for seq in 0..<500 {
            do {
                try pipeline.submit { _ in
                    if seq == 137 || seq == 301 { throw Boom(seq: seq) }
                    return Self.spin(seq)
                }
            } catch {
                submitError = error
                break
            }
        }
        let finishError = #expect(throws: Boom.self) { try pipeline.finish() }
        #expect(finishError == Boom(seq: 137))
        if let submitError { #expect(submitError as? Boom == Boom(seq: 137)) }
        #expect(delivered.current == Array(0..<137))
    }

    @Test func anErrorFromDeliveryStopsThePipeline() throws {
        let delivered = Locked(0)
        let pipeline = OrderedPipeline<Int>(workers: 2, maxInFlight: 4) { seq in
            if seq == 50 { throw Boom(seq: seq) }
            delivered.withLock { $0 += 1 }
        }
        let error = #expect(throws: Boom.self) {
            for seq in 0..<10_000 { try pipeline.submit { _ in seq } }
            try pipeline.finish()
        }
        #expect(error == Boom(seq: 50))
        #expect(delivered.current == 50)
        #expect(pipeline.earliestError(orElse: Boom(seq: -1)) as? Boom == Boom(seq: 50))
    }

    @Test func aReleasedPipelineDeliversNothingMoreAndDoesNotHang() throws {
        let delivered = Locked(0)
        do {
            let pipeline = OrderedPipeline<Int>(workers: 3, maxInFlight: 8) { _ in delivered.withLock { $0 += 1 } }
            for seq in 0..<8 { try pipeline.submit { _ in Self.spin(seq * 1_000) } }
        }
        let settled = delivered.current
        Thread.sleep(forTimeInterval: 0.05)
        #expect(delivered.current == settled)
        #expect(settled <= 8)
    }

    @Test func aSlowDeliveryHoldsTheFeederAtTheBound() throws {
        // The writer blocks (as a full pipe into pg_restore would): the feeder must stop at `maxInFlight`.
        let gate = DispatchSemaphore(value: 0)
        let submitted = Locked(0)
        let pipeline = OrderedPipeline<Int>(workers: 2, maxInFlight: 5) { _ in gate.wait() }
        let feeder = Thread {
            for seq in 0..<20 {
                try? pipeline.submit { _ in seq }
                submitted.withLock { $0 += 1 }
            }
        }
        feeder.start()
        // The writer holds item 0 in `deliver`; items 0-4 exist, so the sixth submit waits until one is delivered.
        var waited = 0
        while submitted.current < 5 && waited < 2_000 {
            Thread.sleep(forTimeInterval: 0.001)
            waited += 1
        }
        Thread.sleep(forTimeInterval: 0.05)
        #expect(submitted.current == 5)
        for _ in 0..<20 { gate.signal() }
        while submitted.current < 20 { Thread.sleep(forTimeInterval: 0.001) }
        try pipeline.finish()
        #expect(submitted.current == 20)
    }

    /// Each worker hands its own scratch (its compression contexts) to the work it runs, and no other thread ever
    /// sees that scratch: the contexts need no lock because they never cross threads.
    @Test func eachWorkerKeepsItsOwnScratch() throws {
        let seen = Locked<[ObjectIdentifier: Set<UInt>]>([:])
        let pipeline = OrderedPipeline<Int>(workers: 3, maxInFlight: 16) { _ in }
        for seq in 0..<3_000 {
            try pipeline.submit { scratch in
                let id = ObjectIdentifier(scratch)
                seen.withLock { _ = $0[id, default: []].insert(UInt(pthread_self())) }
                return Self.spin(seq)
            }
        }
        try pipeline.finish()
        let map = seen.withLock { $0 }
        #expect(!map.isEmpty && map.count <= 3)
        #expect(map.values.allSatisfy { $0.count == 1 })
        #expect(Set(map.values.flatMap { $0 }).count == map.count)
    }
}
