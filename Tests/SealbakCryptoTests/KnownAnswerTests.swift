import Foundation
import SealbakCrypto
import SealbakSync
import Testing

/// Known-answer tests: each primitive sealbak uses gives the published output for published inputs, and every AEAD
/// refuses a single flipped bit anywhere. A wrong wrapper (swapped arguments, a truncated nonce, the IETF ChaCha
/// instead of XChaCha) fails here before it could write an archive nobody else can read.
@Suite struct KnownAnswerTests {
    static func hex(_ s: String) -> [UInt8] {
        let clean = s.filter { !$0.isWhitespace }
        return stride(from: 0, to: clean.count, by: 2).map { i in
            let a = clean.index(clean.startIndex, offsetBy: i)
            return UInt8(clean[a...clean.index(after: a)], radix: 16)!
        }
    }
    static func hex(_ b: [UInt8]) -> String { b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
    static func secret(_ b: [UInt8]) -> SecureBytes { SecureBytes(count: b.count) { $0.copyBytes(from: b) } }
    static func bytes(_ s: SecureBytes) -> [UInt8] { s.withUnsafeBytes { Array($0) } }

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1.
    @Test func xchacha20Poly1305() throws {
        let key = Self.hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        let nonce = Self.hex("404142434445464748494a4b4c4d4e4f5051525354555657")
        let aad = Self.hex("50515253c0c1c2c3c4c5c6c7")
        let plaintext = Array(
            ("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen "
                + "would be it.").utf8
        )
        let expected = Self.hex(
            """
            bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb\
            731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
            2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e
            c0875924c1c7987947deafd8780acf49
            """
        )
        let aead = try AEAD(.xchacha20poly1305)
        let sealed = aead.seal(key: Self.secret(key), nonce: nonce, associatedData: aad, plaintext: plaintext)
        #expect(Self.hex(sealed) == Self.hex(expected))
        #expect(
            Self.bytes(
                try aead.openSecret(key: Self.secret(key), nonce: nonce, associatedData: aad, ciphertext: expected)
            ) == plaintext
        )
        try Self.everyFlippedBitIsRefused(aead, key: key, nonce: nonce, aad: aad, sealed: expected)
    }

    /// The GCM specification (McGrew and Viega), test case 16: AES-256, 96-bit IV, AAD, a partial last block.
    @Test func aes256GCM() throws {
        guard let aead = try? AEAD(.aes256gcm) else {
            // Only on CPUs without AES-NI/PCLMUL, where sealbak refuses the suite (exit 6) and never uses it.
            return
        }
        let key = Self.hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
        let nonce = Self.hex("cafebabefacedbaddecaf888")
        let aad = Self.hex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        let plaintext = Self.hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                + "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        )
        let expected = Self.hex(
            """
            522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
            8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662
            76fc6ece0f4e1768cddf8853bb2d551b
            """
        )
        let sealed = aead.seal(key: Self.secret(key), nonce: nonce, associatedData: aad, plaintext: plaintext)
        #expect(Self.hex(sealed) == Self.hex(expected))
        #expect(
            Self.bytes(
                try aead.openSecret(key: Self.secret(key), nonce: nonce, associatedData: aad, ciphertext: expected)
            ) == plaintext
        )
        try Self.everyFlippedBitIsRefused(aead, key: key, nonce: nonce, aad: aad, sealed: expected)
    }

    /// A flipped bit in the ciphertext, the tag, the associated data, the nonce or the key: refused, nothing released.
    static func everyFlippedBitIsRefused(
        _ aead: AEAD,
        key: [UInt8],
        nonce: [UInt8],
        aad: [UInt8],
        sealed: [UInt8]
    ) throws {
        func refused(_ k: [UInt8], _ n: [UInt8], _ a: [UInt8], _ c: [UInt8]) -> Bool {
            (try? aead.openSecret(key: secret(k), nonce: n, associatedData: a, ciphertext: c)) == nil
        }
        for i in 0..<sealed.count * 8 {
            var c = sealed
            c[i / 8] ^= 1 << UInt8(i % 8)
            #expect(refused(key, nonce, aad, c), "ciphertext bit \(i)")
        }
        for i in 0..<aad.count * 8 {
            var a = aad
            a[i / 8] ^= 1 << UInt8(i % 8)
            #expect(refused(key, nonce, a, sealed), "aad bit \(i)")
        }
        for i in 0..<nonce.count * 8 {
            var n = nonce
            n[i / 8] ^= 1 << UInt8(i % 8)
            #expect(refused(key, n, aad, sealed), "nonce bit \(i)")
        }
        for i in stride(from: 0, to: key.count * 8, by: 7) {
            var k = key
            k[i / 8] ^= 1 << UInt8(i % 8)
            #expect(refused(k, nonce, aad, sealed), "key bit \(i)")
        }
        #expect(refused(key, nonce, aad, Array(sealed.dropLast())), "truncated")
        #expect(refused(key, nonce, aad + [0], sealed), "longer aad")
    }

    /// RFC 7748 §6.1 (both directions) and §5.2's rejection of a low-order point (an all-zero shared secret).
    @Test func x25519() {
        let alice = Self.hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        let bob = Self.hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
        let alicePublic = X25519.publicKey(Self.secret(alice))
        let bobPublic = X25519.publicKey(Self.secret(bob))
        #expect(Self.hex(alicePublic) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        #expect(Self.hex(bobPublic) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        #expect(X25519.sharedSecret(Self.secret(alice), bobPublic).map { Self.hex(Self.bytes($0)) } == shared)
        #expect(X25519.sharedSecret(Self.secret(bob), alicePublic).map { Self.hex(Self.bytes($0)) } == shared)
        // Points of small order give an all-zero secret: refused (a recipient slot could otherwise be opened by
        // anyone).
        for lowOrder in [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        ] {
            #expect(X25519.sharedSecret(Self.secret(alice), Self.hex(lowOrder)) == nil, "\(lowOrder)")
        }
    }

    /// Argon2id v1.3 with parallelism 1 (what libsodium computes), against outputs of the reference implementation
    /// (the P-H-C `argon2` command, `-id -p 1 -l 32 -r`): an independent implementation agreeing byte for byte.
    @Test func argon2id() throws {
        let cases: [(password: String, salt: String, passes: UInt64, memoryKiB: UInt64, key: String)] = [
            (
                "password", "somesaltsomesalt", 2, 65536,
                "fc33b78139231d34b71626bd6245c1d72efa190ad605c3d8166a72adcedfa2c2"
            ),
            (
                "correct horse battery staple", "sixteen byte sal", 3, 8,
                "8641611764cc4619afc782e0fdd59c10c3bd5b0c8db8321eba11a190150a056e"
            ),
        ]
        for c in cases {
            let pw = Array(c.password.utf8)
            let key = try Argon2id.deriveKey(
                password: Self.secret(pw),
                passwordLength: pw.count,
                salt: Array(c.salt.utf8),
                opsLimit: c.passes,
                memLimitBytes: c.memoryKiB * 1024
            )
            #expect(Self.hex(Self.bytes(key)) == c.key, "\(c.password) t=\(c.passes) m=\(c.memoryKiB) KiB")
        }
        #expect(throws: CryptoError.self) {
            try Argon2id.deriveKey(
                password: Self.secret([1]),
                passwordLength: 1,
                salt: [UInt8](repeating: 0, count: 15),
                opsLimit: 1,
                memLimitBytes: 8192
            )
        }
    }

    /// FIPS 180-2 (SHA-256 of "abc" and of the two-block message) and RFC 4231 test case 1 and 2 (HMAC-SHA-256).
    @Test func sha256AndHMAC() {
        #expect(
            Self.hex(SHA256Hasher.hash(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )
        #expect(
            Self.hex(SHA256Hasher.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
        // Split updates give the same digest as one.
        let h = SHA256Hasher()
        for b in "abc".utf8 { h.update([b]) }
        #expect(Self.hex(h.finalize()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            Self.hex(HMACSHA256.mac(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        )
        #expect(
            Self.hex(HMACSHA256.mac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        )
    }

    /// `KeyedSHA256` (chunk identities, Spec §14.4, over OpenSSL) is HMAC-SHA-256: RFC 4231 test cases 1, 2 and 4,
    /// the same key for many messages and from many threads, and equal to libsodium's HMAC for every length around
    /// the 64-byte block.
    @Test func keyedSHA256IsHMAC() {
        func keyed(_ key: [UInt8]) -> KeyedSHA256 { KeyedSHA256(key: SecureBytes(copying: key)) }
        let k1 = keyed([UInt8](repeating: 0x0b, count: 20))
        #expect(
            Self.hex(k1.mac(Array("Hi There".utf8).span.bytes))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        )
        #expect(
            Self.hex(keyed(Array("Jefe".utf8)).mac(Array("what do ya want for nothing?".utf8).span.bytes))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        )
        let k4 = keyed((1...25).map { UInt8($0) })
        #expect(
            Self.hex(k4.mac([UInt8](repeating: 0xcd, count: 50).span.bytes))
                == "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
        )
        let key = (0..<32).map { UInt8($0 * 7 & 0xff) }
        let shared = keyed(key)
        for n in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000] {
            let m = (0..<n).map { UInt8($0 & 0xff) }
            #expect(shared.mac(m.span.bytes) == HMACSHA256.mac(key: key, message: m))
        }
        let expected = HMACSHA256.mac(key: key, message: Array("same".utf8))
        let results = Locked([[UInt8]]())
        DispatchQueue.concurrentPerform(iterations: 64) { _ in
            let mac = shared.mac(Array("same".utf8).span.bytes)
            results.withLock { $0.append(mac) }
        }
        #expect(results.withLock { $0 }.allSatisfy { $0 == expected })
    }
}
