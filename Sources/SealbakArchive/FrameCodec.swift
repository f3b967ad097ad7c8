import SealbakCompression
import SealbakCrypto
import SealbakFormat

/// Seals and opens single frames (Spec §6). Stateless apart from the (de)compressor passed in, so any
/// number of workers can use one value at once.
package struct FrameCodec: Sendable {
    package let suite: CipherSuite
    package let aead: AEAD
    package let archiveID: [UInt8]
    package let frameSize: Int

    package init(suite: CipherSuite, archiveID: [UInt8], frameSize: Int) throws(SealbakError) {
        self.suite = suite
        do {
            aead = try AEAD(suite == .aes256gcm ? .aes256gcm : .xchacha20poly1305)
        } catch {
            throw SealbakError(.unsupported, error.message)
        }
        self.archiveID = archiveID
        self.frameSize = frameSize
    }

    /// Compresses (when it shrinks) and encrypts `raw`, returning frame header ‖ ciphertext.
    package func seal(
        key: SecureBytes, streamID: UInt32, frameIndex: UInt64, isLast: Bool,
        raw: UnsafeRawBufferPointer, compression: CompressionAlgorithm, compressor: FrameCompressor
    ) -> [UInt8] {
        precondition(raw.count <= frameSize)
        let prefix = FormatV1.framePrefixByteCount
        var plain = [UInt8](repeating: 0, count: prefix + raw.count)
        var codec = CompressionCodec.stored
        let compressed: Int? = plain.withUnsafeMutableBytes { p in
            compressor.compress(raw, into: UnsafeMutableRawBufferPointer(rebasing: p[prefix...]), algorithm: compression)
        }
        if let compressed {
            plain.removeLast(raw.count - compressed)
            switch compression {
            case .zstd: codec = .zstd
            case .zlib: codec = .zlib
            case .stored: preconditionFailure()
            }
        } else if raw.count > 0 {
            plain.withUnsafeMutableBytes { p in UnsafeMutableRawBufferPointer(rebasing: p[prefix...]).copyMemory(from: raw) }
        }
        plain.withUnsafeMutableBytes { p in p.copyBytes(from: FramePlaintext.prefix(codec: codec, rawLength: raw.count)) }
        return sealEnvelope(key: key, streamID: streamID, frameIndex: frameIndex, isLast: isLast, plaintext: plain)
    }

    /// Encrypts an already-built frame plaintext (codec ‖ raw length ‖ payload) as frame `frameIndex` of a
    /// stream: used by rekey, which moves compressed payloads to a new key without recompressing them.
    package func sealEnvelope(key: SecureBytes, streamID: UInt32, frameIndex: UInt64, isLast: Bool, plaintext: [UInt8]) -> [UInt8] {
        let ctLength = plaintext.count + AEAD.tagByteCount
        var out = [UInt8](repeating: 0, count: FormatV1.frameHeaderByteCount + ctLength)
        let frameHeader = FrameHeader(ciphertextLength: ctLength, isLast: isLast).encoded()
        out.withUnsafeMutableBytes { $0.copyBytes(from: frameHeader) }
        let nonce = FrameBinding.nonce(suite: suite, streamID: streamID, frameIndex: frameIndex, isLast: isLast)
        let ad = FrameBinding.associatedData(archiveID: archiveID, streamID: streamID, frameIndex: frameIndex, isLast: isLast)
        plaintext.withUnsafeBytes { p in
            out.withUnsafeMutableBytes { o in
                aead.seal(key: key, nonce: nonce, associatedData: ad, plaintext: p, output: UnsafeMutableRawBufferPointer(rebasing: o[4...]))
            }
        }
        return out
    }

    /// Authenticates and decrypts one frame and checks its plaintext envelope (Spec §6.2) without
    /// decompressing it. Returns the envelope (codec ‖ raw length ‖ payload).
    package func openEnvelope(key: SecureBytes, streamID: UInt32, frameIndex: UInt64, isLast: Bool, ciphertext: [UInt8]) throws(FormatError) -> [UInt8] {
        try openAndParse(key: key, streamID: streamID, frameIndex: frameIndex, isLast: isLast, ciphertext: ciphertext).plain
    }

    /// Authenticates, decrypts and parses the envelope once; both `openEnvelope` and `open` build on it.
    private func openAndParse(key: SecureBytes, streamID: UInt32, frameIndex: UInt64, isLast: Bool, ciphertext: [UInt8]) throws(FormatError) -> (plain: [UInt8], envelope: FramePlaintext) {
        let nonce = FrameBinding.nonce(suite: suite, streamID: streamID, frameIndex: frameIndex, isLast: isLast)
        let ad = FrameBinding.associatedData(archiveID: archiveID, streamID: streamID, frameIndex: frameIndex, isLast: isLast)
        var plain = [UInt8](repeating: 0, count: ciphertext.count - AEAD.tagByteCount)
        var authFailed = false
        ciphertext.withUnsafeBytes { c in
            plain.withUnsafeMutableBytes { p in
                do { try aead.open(key: key, nonce: nonce, associatedData: ad, ciphertext: c, output: p) } catch { authFailed = true }
            }
        }
        if authFailed {
            throw FormatError(.payload, "frame \(frameIndex) failed authentication (wrong position, altered, or from another archive)")
        }
        var parsed: Result<FramePlaintext, FormatError>!
        plain.withUnsafeBytes { p in
            do throws(FormatError) { parsed = .success(try FramePlaintext.parse(p, frameSize: frameSize, frameIndex: frameIndex, isLast: isLast)) } catch { parsed = .failure(error) }
        }
        return (plain, try parsed.get())
    }

    /// Authenticates, decrypts and decompresses one frame's ciphertext. Releases nothing unless the tag verifies.
    package func open(
        key: SecureBytes, streamID: UInt32, frameIndex: UInt64, isLast: Bool,
        ciphertext: [UInt8], decompressor: FrameDecompressor
    ) throws(FormatError) -> [UInt8] {
        let (plain, env) = try openAndParse(key: key, streamID: streamID, frameIndex: frameIndex, isLast: isLast, ciphertext: ciphertext)
        var result: Result<[UInt8], FormatError> = .success([])
        plain.withUnsafeBytes { p in
            do throws(FormatError) {
                let payload = UnsafeRawBufferPointer(rebasing: p[env.payload])
                switch env.codec {
                case .stored:
                    result = .success(Array(payload))
                case .zstd, .zlib:
                    var raw = [UInt8](repeating: 0, count: env.rawLength)
                    var failure: CompressionError?
                    raw.withUnsafeMutableBytes { r in
                        do throws(CompressionError) {
                            if env.codec == .zstd { try decompressor.zstd(payload, into: r, maxWindow: frameSize) } else { try decompressor.zlib(payload, into: r) }
                        } catch { failure = error }
                    }
                    if let failure { throw FormatError(.payload, "frame \(frameIndex): \(failure.message)") }
                    result = .success(raw)
                }
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }
}

/// Runs work items on all cores and hands their results, in submission order, to one delivery closure.
///
/// At most `maxInFlight` items exist at once (submitted, running, or waiting for delivery), which bounds
/// memory regardless of input size. Delivery happens under a lock on whichever thread completes the next
/// item. The first error stops delivery; `submit` and `finish` then rethrow it.
package final class OrderedPipeline<Output: Sendable>: @unchecked Sendable {
    private let queue = DispatchQueue(label: "sealbak.frames", attributes: .concurrent)
    private let group = DispatchGroup()
    private let slots: DispatchSemaphore
    private let stateLock = NSLock()
    private let deliveryLock = NSLock()
    private var ready: [UInt64: Result<Output, any Error>] = [:]
    private var nextSubmit: UInt64 = 0
    private var nextDeliver: UInt64 = 0
    private var firstError: (any Error)?
    private var deliver: (Output) throws -> Void

    package init(maxInFlight: Int, deliver: @escaping (Output) throws -> Void) {
        slots = DispatchSemaphore(value: max(1, maxInFlight))
        self.deliver = deliver
    }

    /// Replaces the delivery closure; call before the first `submit`.
    package func setDelivery(_ deliver: @escaping (Output) throws -> Void) {
        self.deliver = deliver
    }

    package func submit(_ work: @escaping @Sendable () throws -> Output) throws {
        if let e = stateLock.withLock({ firstError }) { throw e }
        slots.wait()
        let seq = stateLock.withLock { () -> UInt64 in
            defer { nextSubmit += 1 }
            return nextSubmit
        }
        group.enter()
        queue.async {
            let r = Result { try work() }
            self.complete(seq, r)
            self.group.leave()
        }
    }

    private func complete(_ seq: UInt64, _ r: Result<Output, any Error>) {
        stateLock.withLock { ready[seq] = r }
        deliveryLock.lock()
        defer { deliveryLock.unlock() }
        while true {
            let item: Result<Output, any Error>? = stateLock.withLock {
                guard let v = ready.removeValue(forKey: nextDeliver) else { return nil }
                nextDeliver += 1
                return v
            }
            guard let item else { return }
            let failed = stateLock.withLock { firstError != nil }
            if !failed {
                do {
                    try deliver(try item.get())
                } catch {
                    stateLock.withLock { if firstError == nil { firstError = error } }
                }
            }
            slots.signal()
        }
    }

    /// Waits for every submitted item to be delivered; rethrows the first error.
    package func finish() throws {
        group.wait()
        if let e = stateLock.withLock({ firstError }) { throw e }
    }

    /// Waits for outstanding work without throwing (cleanup after an error elsewhere).
    package func drain() { group.wait() }

    /// Drains, then returns the pipeline's own first error if it has one (it came from an earlier item than
    /// anything the submitter saw later), else `other`.
    package func earliestError(orElse other: any Error) -> any Error {
        group.wait()
        return stateLock.withLock { firstError } ?? other
    }
}

/// A small pool so each worker reuses a zstd/zlib context instead of allocating one per frame.
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

import Dispatch
import Foundation
