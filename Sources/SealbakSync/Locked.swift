import Foundation

/// sealbak's one lock idiom: a value reached only while its lock is held.
///
/// A pthread mutex (`NSLock`) rather than `Synchronization.Mutex`: ThreadSanitizer, which `scripts/test` runs,
/// follows pthread mutexes but not `Mutex`'s futex, and reported data races on values that `Mutex` did guard.
/// Types that keep mutable state in a `Locked` are checked `Sendable`; the unchecked conformance lives here once.
package final class Locked<Value>: @unchecked Sendable {  // `value` is only touched between lock() and unlock()
    private let lock = NSLock()
    private var value: Value

    /// `sending`, as for `Synchronization.Mutex`: the value (and what it refers to) is reached only through the lock
    /// from now on, which is what makes `Locked` sound for values that are not `Sendable` themselves.
    package init(_ value: sending Value) { self.value = value }

    /// Runs `body` with exclusive access to the value. Do not block in `body` on anything that may take this lock.
    package func withLock<R, E: Error>(_ body: (inout sending Value) throws(E) -> sending R) throws(E) -> sending R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

extension Locked where Value: Sendable {
    /// A copy of the value.
    package var current: Value { withLock { $0 } }
}
