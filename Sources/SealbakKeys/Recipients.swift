import Foundation
import SealbakCrypto
import SealbakFormat
import SealbakIO

#if canImport(Glibc)
import Glibc
#endif

/// X25519 recipients (Spec §4.6, docs/keys.md): anyone with a public key can write an archive that only the
/// holder of the matching identity can open.
package enum Recipients {
    static let publicKeyPrefix = "sbkpk1"
    static let base32 = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    /// `sbkpk1` + base32 (RFC 4648 alphabet, lower case, no padding) of the 32-byte key and a 4-byte checksum
    /// (the first 4 bytes of SHA-256("sealbak public key" ‖ key)).
    package static func encode(publicKey: [UInt8]) -> String {
        let data = publicKey + checksum(publicKey)
        var out = Array(publicKeyPrefix.utf8)
        var acc: UInt32 = 0
        var bits = 0
        for b in data {
            acc = acc << 8 | UInt32(b)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(base32[Int(acc >> UInt32(bits) & 31)])
            }
        }
        if bits > 0 { out.append(base32[Int(acc << UInt32(5 - bits) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    package static func decode(publicKey text: String) throws(SealbakError) -> [UInt8] {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard s.hasPrefix(publicKeyPrefix) else {
            throw SealbakError(
                .usage,
                "\(text) is not a sealbak public key (they start with \(publicKeyPrefix); see sealbak keygen)"
            )
        }
        // 36 bytes = 288 bits = exactly 58 base32 characters, the last carrying 3 bits and 2 zero bits.
        let body = Array(s.utf8.dropFirst(publicKeyPrefix.count))
        guard body.count == 58 else {
            throw SealbakError(.usage, "the public key \(text) has the wrong length (mistyped or truncated)")
        }
        var acc: UInt32 = 0
        var bits = 0
        var out: [UInt8] = []
        for c in body {
            guard let v = base32.firstIndex(of: c) else {
                throw SealbakError(.usage, "the public key \(text) contains an invalid character")
            }
            acc = acc << 5 | UInt32(v)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(acc >> UInt32(bits) & 0xFF))
            }
        }
        guard out.count == 36, acc & ((1 << UInt32(bits)) - 1) == 0,
            checksum(Array(out.prefix(32))) == Array(out.suffix(4))
        else {
            throw SealbakError(.usage, "the public key \(text) is mistyped or truncated (checksum mismatch)")
        }
        return Array(out.prefix(32))
    }

    static func checksum(_ key: [UInt8]) -> [UInt8] {
        Array(SHA256Hasher.hash(Array("sealbak public key".utf8) + key).prefix(4))
    }

    /// KEK = BLAKE2b-256(key: X25519(secret, peer), message: "SBK1x25519" ‖ ephemeral ‖ recipient).
    static func kek(shared: SecureBytes, ephemeral: [UInt8], recipient: [UInt8]) -> SecureBytes {
        Blake2bMAC.derive(key: shared, message: Array("SBK1x25519".utf8) + ephemeral + recipient)
    }

    /// A recipient slot wrapping `master` for `recipient`.
    package static func slot(
        id: UInt16,
        label: String,
        createdUnix: UInt64,
        recipient: [UInt8],
        archiveID: [UInt8],
        master: MasterKey,
        random: any RandomSource
    ) throws(SealbakError) -> KeySlot {
        let (ephemeralSecret, ephemeral) = X25519.generate(random: random)
        guard let shared = X25519.sharedSecret(ephemeralSecret, recipient) else {
            throw SealbakError(.usage, "the recipient public key is invalid (a low-order point)")
        }
        let kek = kek(shared: shared, ephemeral: ephemeral, recipient: recipient)
        let nonce = random.bytes(KeySlot.wrapNonceByteCount)
        var slot = KeySlot(
            id: id,
            createdUnix: createdUnix,
            label: label,
            body: .x25519(recipient: recipient, ephemeral: ephemeral, nonce: nonce, wrappedKey: [])
        )
        let wrapped = master.wrapped(for: slot, kek: kek, nonce: nonce, archiveID: archiveID)
        slot.body = .x25519(recipient: recipient, ephemeral: ephemeral, nonce: nonce, wrappedKey: wrapped)
        return slot
    }

    /// Opens the first recipient slot meant for `identity` and verifies the header MAC.
    package static func unlock(
        header: ArchiveHeader,
        identity: Identity,
        archive: String
    ) throws(SealbakError) -> (MasterKey, KeySlot) {
        let aead = try! AEAD(.xchacha20poly1305)
        var sawRecipient = false
        for slot in header.slots {
            guard case .x25519(let recipient, let ephemeral, let nonce, let wrapped) = slot.body else { continue }
            sawRecipient = true
            guard Sodium.constantTimeEqual(recipient, identity.publicKey),
                let shared = X25519.sharedSecret(identity.secret, ephemeral)
            else { continue }
            let kek = kek(shared: shared, ephemeral: ephemeral, recipient: recipient)
            guard
                let mk = try? aead.openSecret(
                    key: kek,
                    nonce: nonce,
                    associatedData: slot.wrapAssociatedData(archiveID: header.archiveID),
                    ciphertext: wrapped
                )
            else {
                continue
            }
            let master = MasterKey(mk)
            if !Sodium.constantTimeEqual(master.mac(for: header), header.mac) {
                throw SealbakError.format(FormatError(.mac, "header MAC mismatch"), archive: archive)
            }
            return (master, slot)
        }
        if !sawRecipient {
            throw SealbakError(
                .wrongIdentity,
                "\(archive): the archive has no public-key recipients; open it with a password instead of --identity",
                formatClass: .key
            )
        }
        throw SealbakError(
            .wrongIdentity,
            "\(archive): wrong identity: no key slot is for \(encode(publicKey: identity.publicKey))",
            formatClass: .key
        )
    }
}

/// An X25519 identity: the secret scalar (guarded memory) and its public key. Stored in a text file (Spec §4.6).
package struct Identity: Sendable {
    package let secret: SecureBytes
    package let publicKey: [UInt8]

    static let header = "SEALBAK-IDENTITY-1"

    package init(secret: SecureBytes, publicKey: [UInt8]) {
        self.secret = secret
        self.publicKey = publicKey
    }

    package static func generate() -> Identity {
        let (s, p) = X25519.generate()
        return Identity(secret: s, publicKey: p)
    }

    /// The identity file text. With a passphrase the secret is wrapped with Argon2id + XChaCha20-Poly1305.
    package func fileText(
        passphrase: Passphrase?,
        kdf: KDFParameters,
        random: any RandomSource = SystemRandom()
    ) throws(SealbakError) -> String {
        let pk = Recipients.encode(publicKey: publicKey)
        var lines = [
            "# sealbak identity (X25519). Keep this file secret; it opens archives packed for:", "# public key: \(pk)",
        ]
        if let passphrase {
            let salt = random.bytes(16)
            let nonce = random.bytes(24)
            let kek = try KeySlots.deriveKEK(passphrase: passphrase, kdf: kdf, salt: salt)
            let aead = try! AEAD(.xchacha20poly1305)
            let sealed = aead.seal(
                key: kek,
                nonce: nonce,
                associatedData: Array("SBK1identity".utf8) + publicKey,
                plaintext: secret
            )
            let blob =
                [UInt8].le(UInt64(kdf.opsLimit), count: 4) + .le(UInt64(kdf.memLimitKiB), count: 4) + salt + nonce
                + sealed
            lines.append("\(Identity.header) argon2id \(Data(blob).base64EncodedString())")
        } else {
            var raw = secret.withUnsafeBytes { Array($0) }
            lines.append("\(Identity.header) plain \(Data(raw).base64EncodedString())")
            wipe(&raw)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads an identity file; `passphrase` is asked for only when the file is protected. The file's bytes and
    /// every decoded copy of the secret are wiped after use.
    package static func load(path: String, limits: KDFLimits, passphrase: () throws -> Passphrase) throws -> Identity {
        var raw = try readSecretFile(path)
        defer { wipe(&raw) }
        let lines = raw.split(separator: UInt8(ascii: "\n"))
        let marker = Array((header + " ").utf8)
        guard let line = lines.first(where: { $0.starts(with: marker) }) else {
            throw SealbakError(.usage, "\(path) is not a sealbak identity file (made by sealbak keygen)")
        }
        let parts = line.split(separator: UInt8(ascii: " "))
        guard parts.count == 3, var blob = base64Decode(Array(parts[2])) else {
            throw SealbakError(.usage, "\(path): the identity line is damaged")
        }
        defer { wipe(&blob) }
        let secret: SecureBytes
        switch String(decoding: parts[1], as: UTF8.self) {
        case "plain":
            guard blob.count == 32 else { throw SealbakError(.usage, "\(path): the identity line is damaged") }
            secret = SecureBytes(copying: blob)
        case "argon2id":
            guard blob.count == 4 + 4 + 16 + 24 + 48 else {
                throw SealbakError(.usage, "\(path): the identity line is damaged")
            }
            let ops = UInt32(blob[0]) | UInt32(blob[1]) << 8 | UInt32(blob[2]) << 16 | UInt32(blob[3]) << 24
            let mem = UInt32(blob[4]) | UInt32(blob[5]) << 8 | UInt32(blob[6]) << 16 | UInt32(blob[7]) << 24
            let kdf = KDFParameters(opsLimit: ops, memLimitKiB: mem)
            guard ops >= 1, mem >= 8, limits.allows(kdf) else {
                throw SealbakError(.unsupported, "\(path): the identity's KDF cost is outside the allowed range")
            }
            let salt = Array(blob[8..<24])
            let nonce = Array(blob[24..<48])
            let sealed = Array(blob[48...])
            // The public key is bound as associated data: recover it from the comment line.
            let pkMarker = Array("# public key: ".utf8)
            guard let pkLine = lines.first(where: { $0.starts(with: pkMarker) }) else {
                throw SealbakError(.usage, "\(path): the public key line is missing")
            }
            let pk = try Recipients.decode(publicKey: String(decoding: pkLine.dropFirst(pkMarker.count), as: UTF8.self))
            let kek = try KeySlots.deriveKEK(passphrase: try passphrase(), kdf: kdf, salt: salt)
            do {
                secret = try AEAD(.xchacha20poly1305).openSecret(
                    key: kek,
                    nonce: nonce,
                    associatedData: Array("SBK1identity".utf8) + pk,
                    ciphertext: sealed
                )
            } catch {
                throw SealbakError(.wrongPassword, "\(path): wrong password for this identity file")
            }
        default:
            throw SealbakError(
                .usage,
                "\(path): unknown identity protection \(String(decoding: parts[1], as: UTF8.self))"
            )
        }
        return Identity(secret: secret, publicKey: X25519.publicKey(secret))
    }

    private static func readSecretFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SealbakError.io("cannot read the identity file", path: path, errno: errno) }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: 4096)
        var n = 0
        while n < out.count {
            let r = out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + n, $0.count - n) }
            if r < 0 {
                if errno == EINTR { continue }
                throw SealbakError.io("cannot read the identity file", path: path, errno: errno)
            }
            if r == 0 { break }
            n += r
        }
        out.removeLast(out.count - n)
        return out
    }

    /// Standard base64 (RFC 4648 §4) with padding; nil on any other character.
    static func base64Decode(_ text: [UInt8]) -> [UInt8]? {
        func value(_ c: UInt8) -> UInt32? {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): 62
            case UInt8(ascii: "/"): 63
            default: nil
            }
        }
        var t = text
        while t.last == UInt8(ascii: "\r") || t.last == UInt8(ascii: " ") { t.removeLast() }
        guard t.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < t.count {
            let chunk = t[i..<i + 4]
            let pads = chunk.filter { $0 == UInt8(ascii: "=") }.count
            if pads > 0 && i + 4 != t.count { return nil }
            var acc: UInt32 = 0
            for (k, c) in chunk.enumerated() {
                if c == UInt8(ascii: "=") {
                    guard k >= 4 - pads else { return nil }
                    acc <<= 6
                    continue
                }
                guard let v = value(c) else { return nil }
                acc = acc << 6 | v
            }
            out.append(UInt8(acc >> 16 & 0xFF))
            if pads < 2 { out.append(UInt8(acc >> 8 & 0xFF)) }
            if pads < 1 { out.append(UInt8(acc & 0xFF)) }
            i += 4
        }
        return out
    }
}
