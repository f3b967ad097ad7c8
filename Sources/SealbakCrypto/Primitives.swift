internal import COpenSSLCrypto
internal import CSodium

/// Argon2id password hashing (RFC 9106, version 0x13). Wraps `crypto_pwhash` with `ALG_ARGON2ID13`.
package enum Argon2id {
    package static let keyByteCount = 32

    /// Derives a 32-byte key-encryption key from `password`.
    /// - Parameters:
    ///   - opsLimit: passes (t); memLimitBytes: memory (m × 1024).
    /// - Throws: `CryptoError.outOfMemory` when the memory cannot be had, `.invalidParameters` outside libsodium's
    /// bounds.
    package static func deriveKey(
        password: SecureBytes,
        passwordLength: Int,
        salt: [UInt8],
        opsLimit: UInt64,
        memLimitBytes: UInt64
    ) throws(CryptoError) -> SecureBytes {
        Sodium.ensureInitialised()
        guard salt.count == Int(crypto_pwhash_SALTBYTES) else {
            throw CryptoError(.invalidParameters, "salt must be 16 bytes")
        }
        guard opsLimit >= UInt64(crypto_pwhash_argon2id_OPSLIMIT_MIN),
            memLimitBytes >= UInt64(crypto_pwhash_argon2id_MEMLIMIT_MIN),
            memLimitBytes <= UInt64(Int.max)
        else { throw CryptoError(.invalidParameters, "Argon2id parameters outside libsodium's bounds") }
        var status: Int32 = 0
        let key = SecureBytes(count: keyByteCount) { out in
            password.withUnsafeBytes { pw in
                status = crypto_pwhash(
                    out.baseAddress!,
                    UInt64(keyByteCount),
                    pw.baseAddress!.assumingMemoryBound(to: CChar.self),
                    UInt64(passwordLength),
                    salt,
                    opsLimit,
                    Int(memLimitBytes),
                    crypto_pwhash_ALG_ARGON2ID13
                )
            }
        }
        if status != 0 {
            throw CryptoError(
                .outOfMemory,
                "Argon2id could not allocate \(memLimitBytes >> 20) MiB; lower the KDF memory or free memory"
            )
        }
        return key
    }
}

/// Subkey derivation from the master key. Wraps `crypto_kdf_derive_from_key` (BLAKE2b with salt/personal).
package enum SubkeyDerivation {
    /// Contexts of Spec §5 (exactly 8 bytes each).
    package static let headerMACContext = "SBKhmac1"
    package static let streamContext = "SBKstrm1"

    /// - Parameter guarded: see `SecureBytes.init(count:guarded:initialize:)`; per-stream subkeys use `false`.
    package static func derive(master: SecureBytes, id: UInt64, context: String, guarded: Bool = true) -> SecureBytes {
        precondition(context.utf8.count == 8 && master.count == 32)
        let ctx = Array(context.utf8).map { CChar(bitPattern: $0) }
        return SecureBytes(count: 32, guarded: guarded) { out in
            master.withUnsafeBytes { mk in
                _ = crypto_kdf_derive_from_key(out.baseAddress!, 32, id, ctx, mk.baseAddress!)
            }
        }
    }
}

/// Keyed BLAKE2b-256 (the header MAC of Spec §3.3). Wraps `crypto_generichash`.
package enum Blake2bMAC {
    package static func mac(key: SecureBytes, message: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialised()
        var out = [UInt8](repeating: 0, count: 32)
        key.withUnsafeBytes { k in
            _ = crypto_generichash(&out, 32, message, UInt64(message.count), k.baseAddress!, k.count)
        }
        return out
    }

}

/// HMAC-SHA-256 (RFC 2104, FIPS 198-1) under one key, for many messages from many threads: a chunk's identity
/// (Spec §14.4). Over OpenSSL's SHA-256, which uses the CPU's SHA extensions; the key's inner and outer pads are
/// absorbed once, and each message starts from copies of those two states.
package final class KeyedSHA256: Sendable {
    // Set up in init and only read afterwards (EVP_MD_CTX_copy_ex reads its source).
    nonisolated(unsafe) private let inner: OpaquePointer
    nonisolated(unsafe) private let outer: OpaquePointer

    package init(key: SecureBytes) {
        OpenSSLLibrary.ensureInitialised()
        precondition(key.count <= 64)
        var ipad = [UInt8](repeating: 0x36, count: 64)
        var opad = [UInt8](repeating: 0x5C, count: 64)
        key.withUnsafeBytes { k in
            for i in 0..<k.count {
                ipad[i] ^= k[i]
                opad[i] ^= k[i]
            }
        }
        defer {
            wipe(&ipad)
            wipe(&opad)
        }
        guard let i = EVP_MD_CTX_new(), let o = EVP_MD_CTX_new(), EVP_DigestInit_ex(i, EVP_sha256(), nil) == 1,
            EVP_DigestInit_ex(o, EVP_sha256(), nil) == 1
        else { fatalError("OpenSSL cannot provide SHA-256") }
        EVP_DigestUpdate(i, ipad, 64)
        EVP_DigestUpdate(o, opad, 64)
        inner = i
        outer = o
    }

    deinit {
        EVP_MD_CTX_free(inner)
        EVP_MD_CTX_free(outer)
    }

    package func mac(_ message: RawSpan) -> [UInt8] {
        let c = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(c) }
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_MD_CTX_copy_ex(c, inner)
        message.withUnsafeBytes { m in if m.count > 0 { EVP_DigestUpdate(c, m.baseAddress, m.count) } }
        EVP_DigestFinal_ex(c, &digest, &length)
        EVP_MD_CTX_copy_ex(c, outer)
        EVP_DigestUpdate(c, digest, 32)
        EVP_DigestFinal_ex(c, &digest, &length)
        return digest
    }
}

/// OpenSSL's one-time initialisation (run by its first use) allocates error state owned by the thread that runs
/// it. Run it on a thread that lives as long as the process (the caller's), not on a pipeline thread that may still
/// be ending when the process exits: LeakSanitizer then reported that state as leaked, at random.
package enum OpenSSLLibrary {
    package static func ensureInitialised() { _ = initialised }
    private static let initialised: Void = { _ = SHA256Hasher.hash([]) }()
}

/// Streaming SHA-256 (FIPS 180-4). Wraps OpenSSL's `EVP_Digest*` with `EVP_sha256()`, which uses the CPU's
/// SHA extensions where present (libsodium's portable SHA-256 was the single-threaded bottleneck of pack).
package final class SHA256Hasher {
    private let context: OpaquePointer

    package init() {
        guard let c = EVP_MD_CTX_new(), EVP_DigestInit_ex(c, EVP_sha256(), nil) == 1 else {
            fatalError("OpenSSL could not initialise SHA-256")
        }
        context = c
    }

    deinit { EVP_MD_CTX_free(context) }

    package func update(_ bytes: RawSpan) {
        bytes.withUnsafeBytes { b in
            if b.count > 0 { EVP_DigestUpdate(context, b.baseAddress, b.count) }
        }
    }

    package func update(_ bytes: [UInt8]) {
        update(bytes.span.bytes)
    }

    /// Call once; the hasher is spent afterwards.
    package func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return out
    }

    package static func hash(_ bytes: [UInt8]) -> [UInt8] {
        let h = SHA256Hasher()
        h.update(bytes)
        return h.finalize()
    }
}

/// The AEAD of a cipher suite (Spec §3.1, §6.3), with a 32-byte key and a 16-byte tag appended.
package struct AEAD: Sendable {
    package enum Algorithm: Sendable {
        /// Wraps `crypto_aead_xchacha20poly1305_ietf_*` (24-byte nonce).
        case xchacha20poly1305
        /// Wraps `crypto_aead_aes256gcm_*` (12-byte nonce); needs `Sodium.aes256gcmAvailable`.
        case aes256gcm
    }

    package let algorithm: Algorithm
    package static let tagByteCount = 16

    package init(_ algorithm: Algorithm) throws(CryptoError) {
        Sodium.ensureInitialised()
        if algorithm == .aes256gcm && !Sodium.aes256gcmAvailable {
            throw CryptoError(
                .unavailable,
                "AES-256-GCM needs a CPU with AES-NI and PCLMUL, which this machine lacks; use XChaCha20-Poly1305"
            )
        }
        self.algorithm = algorithm
    }

    package var nonceByteCount: Int { algorithm == .aes256gcm ? 12 : 24 }

    /// Encrypts `plaintext` and appends ciphertext ‖ tag (`plaintext.byteCount + 16` bytes) to `output`.
    ///
    /// - Precondition: `output` has room for `plaintext.byteCount + tagByteCount` more bytes.
    package func seal(
        key: SecureBytes,
        nonce: [UInt8],
        associatedData: [UInt8],
        plaintext: RawSpan,
        into output: inout OutputRawSpan
    ) {
        precondition(output.freeCapacity >= plaintext.byteCount + AEAD.tagByteCount)
        plaintext.withUnsafeBytes { m in
            output.withUnsafeMutableBytes { out, initialized in
                let c = UnsafeMutableRawBufferPointer(rebasing: out[initialized...])
                encrypt(
                    key: key,
                    nonce: nonce,
                    associatedData: associatedData,
                    plaintext: m.baseAddress,
                    count: m.count,
                    output: c
                )
                initialized += m.count + AEAD.tagByteCount
            }
        }
    }

    /// Encrypts the bytes `buffer` holds in place and appends the tag: afterwards `buffer` holds ciphertext ‖ tag.
    /// The frame path uses it so that a frame is built in one allocation (libsodium allows output == input).
    ///
    /// - Precondition: `buffer` has room for `tagByteCount` more bytes.
    package func sealInPlace(key: SecureBytes, nonce: [UInt8], associatedData: [UInt8], _ buffer: inout OutputRawSpan) {
        precondition(buffer.freeCapacity >= AEAD.tagByteCount)
        buffer.withUnsafeMutableBytes { out, initialized in
            let body = UnsafeMutableRawBufferPointer(rebasing: out[0..<(initialized + AEAD.tagByteCount)])
            encrypt(
                key: key,
                nonce: nonce,
                associatedData: associatedData,
                plaintext: body.baseAddress,
                count: initialized,
                output: body
            )
            initialized += AEAD.tagByteCount
        }
    }

    /// The one call into libsodium's encryption; `plaintext` may be `output`'s own start (in place).
    private func encrypt(
        key: SecureBytes,
        nonce: [UInt8],
        associatedData: [UInt8],
        plaintext: UnsafeRawPointer?,
        count: Int,
        output: UnsafeMutableRawBufferPointer
    ) {
        precondition(nonce.count == nonceByteCount && output.count >= count + AEAD.tagByteCount)
        var outLength: UInt64 = 0
        let m = plaintext?.assumingMemoryBound(to: UInt8.self)
        let c = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
        key.withUnsafeBytes { k in
            let kp = k.baseAddress!.assumingMemoryBound(to: UInt8.self)
            switch algorithm {
            case .xchacha20poly1305:
                _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                    c,
                    &outLength,
                    m,
                    UInt64(count),
                    associatedData,
                    UInt64(associatedData.count),
                    nil,
                    nonce,
                    kp
                )
            case .aes256gcm:
                _ = crypto_aead_aes256gcm_encrypt(
                    c,
                    &outLength,
                    m,
                    UInt64(count),
                    associatedData,
                    UInt64(associatedData.count),
                    nil,
                    nonce,
                    kp
                )
            }
        }
    }

    /// Verifies and decrypts `ciphertext` (tag included) and appends the plaintext (`ciphertext.byteCount - 16`
    /// bytes) to `output`. Nothing is released when the tag does not verify: `output` is left as it was.
    ///
    /// - Precondition: `ciphertext` holds at least a tag; `output` has room for the plaintext.
    package func open(
        key: SecureBytes,
        nonce: [UInt8],
        associatedData: [UInt8],
        ciphertext: RawSpan,
        into output: inout OutputRawSpan
    ) throws(CryptoError) {
        precondition(nonce.count == nonceByteCount && ciphertext.byteCount >= AEAD.tagByteCount)
        precondition(output.freeCapacity >= ciphertext.byteCount - AEAD.tagByteCount)
        let status: Int32 = ciphertext.withUnsafeBytes { ct in
            output.withUnsafeMutableBytes { out, initialized in
                var outLength: UInt64 = 0
                let c = ct.baseAddress!.assumingMemoryBound(to: UInt8.self)
                let m = out.baseAddress.map { ($0 + initialized).assumingMemoryBound(to: UInt8.self) }
                let status: Int32 = key.withUnsafeBytes { k in
                    let kp = k.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    switch algorithm {
                    case .xchacha20poly1305:
                        return crypto_aead_xchacha20poly1305_ietf_decrypt(
                            m,
                            &outLength,
                            nil,
                            c,
                            UInt64(ct.count),
                            associatedData,
                            UInt64(associatedData.count),
                            nonce,
                            kp
                        )
                    case .aes256gcm:
                        return crypto_aead_aes256gcm_decrypt(
                            m,
                            &outLength,
                            nil,
                            c,
                            UInt64(ct.count),
                            associatedData,
                            UInt64(associatedData.count),
                            nonce,
                            kp
                        )
                    }
                }
                if status == 0 { initialized += ct.count - AEAD.tagByteCount }
                return status
            }
        }
        if status != 0 { throw CryptoError.authenticationFailed }
    }

    /// Convenience over arrays.
    package func seal(key: SecureBytes, nonce: [UInt8], associatedData: [UInt8], plaintext: [UInt8]) -> [UInt8] {
        seal(key: key, nonce: nonce, associatedData: associatedData, plaintext: plaintext.span.bytes)
    }

    /// Seals a secret (a wrapped key) into a new array.
    package func seal(key: SecureBytes, nonce: [UInt8], associatedData: [UInt8], plaintext: SecureBytes) -> [UInt8] {
        plaintext.withBytes { seal(key: key, nonce: nonce, associatedData: associatedData, plaintext: $0) }
    }

    private func seal(key: SecureBytes, nonce: [UInt8], associatedData: [UInt8], plaintext: RawSpan) -> [UInt8] {
        [UInt8](capacity: plaintext.byteCount + AEAD.tagByteCount) { out in
            out.withUnsafeMutableBufferPointer { buffer, count in
                let raw = UnsafeMutableRawBufferPointer(buffer)
                var output = OutputRawSpan(buffer: raw, initializedCount: 0)
                seal(key: key, nonce: nonce, associatedData: associatedData, plaintext: plaintext, into: &output)
                count = output.finalize(for: raw)
            }
        }
    }

    /// Convenience over arrays; the plaintext lands in guarded memory.
    package func openSecret(
        key: SecureBytes,
        nonce: [UInt8],
        associatedData: [UInt8],
        ciphertext: [UInt8]
    ) throws(CryptoError) -> SecureBytes {
        guard ciphertext.count > AEAD.tagByteCount else { throw CryptoError.authenticationFailed }
        return try SecureBytes(count: ciphertext.count - AEAD.tagByteCount) { out throws(CryptoError) in
            var output = OutputRawSpan(buffer: out, initializedCount: 0)
            try open(
                key: key,
                nonce: nonce,
                associatedData: associatedData,
                ciphertext: ciphertext.span.bytes,
                into: &output
            )
            _ = output.finalize(for: out)
        }
    }
}

/// X25519 (RFC 7748). Wraps `crypto_scalarmult_base` and `crypto_scalarmult`.
package enum X25519 {
    /// A new secret scalar (guarded memory) and its public key.
    package static func generate(random: any RandomSource = SystemRandom()) -> (secret: SecureBytes, publicKey: [UInt8])
    {
        let secret = SecureBytes(random: 32, source: random)
        return (secret, publicKey(secret))
    }

    package static func publicKey(_ secret: SecureBytes) -> [UInt8] {
        var pk = [UInt8](repeating: 0, count: 32)
        secret.withUnsafeBytes { s in
            _ = crypto_scalarmult_base(&pk, s.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        return pk
    }

    /// The shared secret, or nil for a low-order public key (all-zero result), which must be rejected.
    package static func sharedSecret(_ secret: SecureBytes, _ publicKey: [UInt8]) -> SecureBytes? {
        precondition(publicKey.count == 32)
        var ok = true
        let shared = SecureBytes(count: 32) { out in
            secret.withUnsafeBytes { s in
                ok =
                    crypto_scalarmult(
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        s.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        publicKey
                    ) == 0
            }
        }
        return ok ? shared : nil
    }
}

/// Keyed BLAKE2b-256 with a secret key over a public message (KEK derivation for recipient slots).
extension Blake2bMAC {
    package static func derive(key: SecureBytes, message: [UInt8]) -> SecureBytes {
        SecureBytes(count: 32) { out in
            key.withUnsafeBytes { k in
                _ = crypto_generichash(
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    32,
                    message,
                    UInt64(message.count),
                    k.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    k.count
                )
            }
        }
    }
}

/// HMAC-SHA-256 (RFC 2104) over libsodium, with keys of any length: the key chain of AWS Signature Version 4.
package enum HMACSHA256 {
    package static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialised()
        var state = crypto_auth_hmacsha256_state()
        var out = [UInt8](repeating: 0, count: 32)
        crypto_auth_hmacsha256_init(&state, key, key.count)
        crypto_auth_hmacsha256_update(&state, message, UInt64(message.count))
        crypto_auth_hmacsha256_final(&state, &out)
        return out
    }
}
