internal import CSodium
import SealbakSync

/// Errors of the crypto layer. Authentication failures are deliberately uninformative.
package struct CryptoError: Error, Hashable, Sendable, CustomStringConvertible {
    package enum Code: Hashable, Sendable {
        case authenticationFailed
        case unavailable
        case outOfMemory
        case invalidParameters
    }

    package var code: Code
    package var message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { message }

    package static let authenticationFailed = CryptoError(.authenticationFailed, "authentication failed")
}

/// libsodium's one-time initialisation.
package enum Sodium {
    private static let initialised: Bool = sodium_init() >= 0

    /// Ensures `sodium_init()` ran; traps if libsodium cannot initialise (no entropy source).
    package static func ensureInitialised() {
        precondition(initialised, "libsodium failed to initialise")
    }

    /// Whether AES-256-GCM can run here (needs AES-NI and PCLMUL). Wraps `crypto_aead_aes256gcm_is_available`.
    package static var aes256gcmAvailable: Bool {
        ensureInitialised()
        return crypto_aead_aes256gcm_is_available() == 1
    }

    /// Constant-time equality. Wraps `sodium_memcmp`.
    package static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return sodium_memcmp(a, b, a.count) == 0
    }
}

/// Secret bytes in guarded memory (`sodium_malloc`): wiped and freed when the last reference goes.
///
/// Immutable after construction and therefore safe to share between worker threads. The memory is locked
/// against swapping by `sodium_malloc` where the system allows it, and excluded from core dumps.
package final class SecureBytes: @unchecked Sendable {  // immutable after init: the pointer and count never change
    private let pointer: UnsafeMutableRawPointer
    package let count: Int
    /// Guarded (`sodium_malloc`: guard pages, mlock) or plain heap memory. Both are wiped before release.
    private let guarded: Bool

    /// Test hook: called with the memory right after it is wiped and right before it is freed.
    package static let wipeObserver = Locked<(@Sendable (UnsafeRawBufferPointer) -> Void)?>(nil)

    /// Allocates `count` bytes and lets `initialize` fill them.
    ///
    /// - Parameter guarded: `true` (default) uses `sodium_malloc` (guard pages, locked against swap, excluded
    ///   from core dumps). `false` uses the ordinary heap and is meant for short-lived per-stream subkeys, created
    ///   by the thousand when packing small files: each `sodium_malloc`/`sodium_free` costs an `mmap`,
    ///   `mprotect` and `munmap` with TLB shootdowns across all cores. Both kinds are wiped before release.
    package init<E: Error>(
        count: Int,
        guarded: Bool = true,
        initialize: (UnsafeMutableRawBufferPointer) throws(E) -> Void
    ) throws(E) {
        Sodium.ensureInitialised()
        precondition(count > 0)
        let p: UnsafeMutableRawPointer
        if guarded {
            guard let g = sodium_malloc(count) else { fatalError("sodium_malloc(\(count)) failed: out of memory") }
            p = g
        } else {
            p = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
        }
        // Filled before the stored properties are set: a throwing `initialize` then frees the memory here, and
        // `deinit` (which runs once every stored property is set) does not free it a second time.
        do {
            try initialize(UnsafeMutableRawBufferPointer(start: p, count: count))
        } catch {
            sodium_memzero(p, count)
            if guarded { sodium_free(p) } else { p.deallocate() }
            throw error
        }
        self.pointer = p
        self.count = count
        self.guarded = guarded
    }

    /// Copies `bytes` into guarded memory. The caller should wipe its own copy.
    package convenience init(copying bytes: [UInt8]) {
        self.init(count: max(bytes.count, 1)) { buf in
            buf.initializeMemory(as: UInt8.self, repeating: 0)
            if !bytes.isEmpty {
                buf.copyMemory(
                    from: UnsafeRawBufferPointer(start: bytes.withUnsafeBytes { $0.baseAddress }, count: bytes.count)
                )
            }
        }
    }

    /// Random secret bytes.
    package convenience init(random count: Int, source: any RandomSource = SystemRandom()) {
        self.init(count: count) { buffer in
            var bytes = MutableRawSpan(_unsafeBytes: buffer)
            source.fill(&bytes)
        }
    }

    deinit {
        sodium_memzero(pointer, count)
        if let observer = SecureBytes.wipeObserver.withLock({ $0 }) {
            observer(UnsafeRawBufferPointer(start: pointer, count: count))
        }
        if guarded { sodium_free(pointer) } else { pointer.deallocate() }
    }

    package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// The secret as a `RawSpan`, for the codec APIs; it must not outlive `body`.
    func withBytes<R, E: Error>(_ body: (RawSpan) throws(E) -> R) throws(E) -> R {
        try body(RawSpan(_unsafeBytes: UnsafeRawBufferPointer(start: pointer, count: count)))
    }

    package var address: UnsafeRawPointer { UnsafeRawPointer(pointer) }

    /// Constant-time comparison with another secret.
    package func isEqual(to other: SecureBytes) -> Bool {
        count == other.count && sodium_memcmp(pointer, other.pointer, count) == 0
    }
}

/// Wipes a byte array in place (for transient copies that could not live in guarded memory).
package func wipe(_ bytes: inout [UInt8]) {
    let n = bytes.count
    bytes.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, n) }
    bytes.removeAll()
}

/// Where random bytes come from. The system source is the default; a seeded source exists for test vectors.
package protocol RandomSource: Sendable {
    /// Overwrites every byte of `buffer` with random bytes.
    func fill(_ buffer: inout MutableRawSpan)
}

extension RandomSource {
    package func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var span = out.mutableSpan
        var bytes = span.mutableBytes
        fill(&bytes)
        return out
    }
}

/// The operating system's CSPRNG. Wraps `randombytes_buf`.
package struct SystemRandom: RandomSource {
    package init() { Sodium.ensureInitialised() }
    package func fill(_ buffer: inout MutableRawSpan) {
        buffer.withUnsafeMutableBytes { b in
            if b.count > 0 { randombytes_buf(b.baseAddress!, b.count) }
        }
    }
}

/// A deterministic source for reproducible test vectors only: block i = ChaCha20(seed, nonce i).
/// Wraps `randombytes_buf_deterministic`. Never used by the command line.
package final class SeededRandom: RandomSource, Sendable {
    private let seed: [UInt8]
    private let counter = Locked<UInt64>(0)

    package init(seed: [UInt8]) {
        Sodium.ensureInitialised()
        precondition(seed.count == 32)
        self.seed = seed
    }

    package func fill(_ buffer: inout MutableRawSpan) {
        let n = counter.withLock { c -> UInt64 in
            c += 1
            return c
        }
        var blockSeed = [UInt8](repeating: 0, count: 32)
        var input = seed + (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) }
        crypto_generichash(&blockSeed, 32, &input, UInt64(input.count), nil, 0)
        buffer.withUnsafeMutableBytes { b in
            if b.count > 0 { randombytes_buf_deterministic(b.baseAddress!, b.count, blockSeed) }
        }
    }
}
