import SealbakCrypto
import SealbakFormat
import SealbakIO

/// The archive's random 256-bit master key and the subkeys derived from it (Spec §5).
package final class MasterKey: Sendable {
    package let key: SecureBytes

    package init(_ key: SecureBytes) {
        precondition(key.count == 32)
        self.key = key
    }

    package static func generate(random: any RandomSource) -> MasterKey {
        MasterKey(SecureBytes(random: 32, source: random))
    }

    package var headerMACKey: SecureBytes {
        SubkeyDerivation.derive(master: key, id: 0, context: SubkeyDerivation.headerMACContext)
    }

    /// The key of stream `id`: an entry index, or the manifest / trailer stream id.
    package func streamKey(_ id: UInt32) -> SecureBytes {
        SubkeyDerivation.derive(master: key, id: UInt64(id), context: SubkeyDerivation.streamContext, guarded: false)
    }

    /// The master key wrapped for `slot` under `kek` (Spec §4.2, §4.6.2): XChaCha20-Poly1305 with the slot's
    /// associated data, so a wrapped key cannot be moved to another slot or archive.
    package func wrapped(for slot: KeySlot, kek: SecureBytes, nonce: [UInt8], archiveID: [UInt8]) -> [UInt8] {
        try! AEAD(.xchacha20poly1305).seal(
            key: kek,
            nonce: nonce,
            associatedData: slot.wrapAssociatedData(archiveID: archiveID),
            plaintext: key
        )
    }

    /// Computes the header MAC over everything before it (Spec §3.3).
    package func mac(for header: ArchiveHeader) -> [UInt8] {
        Blake2bMAC.mac(key: headerMACKey, message: header.encodedWithoutMAC())
    }
}

/// The most Argon2id work a reader agrees to do for one slot (Spec §4.3). Raise it with `--max-kdf-*`.
package struct KDFLimits: Sendable {
    package var maxOpsLimit: UInt32
    package var maxMemLimitKiB: UInt64

    package init(maxOpsLimit: UInt32 = 10, maxMemLimitKiB: UInt64 = 4 << 20) {
        self.maxOpsLimit = maxOpsLimit
        self.maxMemLimitKiB = maxMemLimitKiB
    }

    package static let `default` = KDFLimits()

    func allows(_ p: KDFParameters) -> Bool { p.opsLimit <= maxOpsLimit && UInt64(p.memLimitKiB) <= maxMemLimitKiB }
}

/// A secret typed by the user, in guarded memory. `bytes.count` is the exact length in bytes (UTF-8).
package struct Passphrase: Sendable {
    package let bytes: SecureBytes
    package init(_ bytes: SecureBytes) { self.bytes = bytes }

    /// Copies a string's UTF-8 into guarded memory (tests and vector generation; the CLI reads straight into
    /// guarded memory instead).
    package init(string: String) {
        precondition(!string.isEmpty, "empty passwords are not allowed")
        var raw = Array(string.utf8)
        bytes = SecureBytes(copying: raw)
        wipe(&raw)
    }
}

package enum KeySlots {
    /// Argon2id defaults for passwords: close to libsodium's MODERATE (3 passes, 256 MiB).
    package static let defaultKDF = KDFParameters(opsLimit: 3, memLimitKiB: 256 * 1024)
    /// Recovery codes carry 130 random bits, so stretching adds little: one pass over 64 MiB.
    package static let recoveryKDF = KDFParameters(opsLimit: 1, memLimitKiB: 64 * 1024)

    /// Makes a password slot that wraps `master` (Spec §4.2).
    package static func passwordSlot(
        id: UInt16,
        label: String,
        createdUnix: UInt64,
        passphrase: Passphrase,
        kdf: KDFParameters,
        archiveID: [UInt8],
        master: MasterKey,
        random: any RandomSource,
        isRecovery: Bool = false
    ) throws(SealbakError) -> KeySlot {
        let salt = random.bytes(KeySlot.saltByteCount)
        let nonce = random.bytes(KeySlot.wrapNonceByteCount)
        var slot = KeySlot(
            id: id,
            createdUnix: createdUnix,
            label: label,
            body: .password(kdf: kdf, salt: salt, nonce: nonce, wrappedKey: []),
            isRecovery: isRecovery
        )
        let kek = try deriveKEK(passphrase: passphrase, kdf: kdf, salt: salt)
        let wrapped = master.wrapped(for: slot, kek: kek, nonce: nonce, archiveID: archiveID)
        slot.body = .password(kdf: kdf, salt: salt, nonce: nonce, wrappedKey: wrapped)
        return slot
    }

    static func deriveKEK(passphrase: Passphrase, kdf: KDFParameters, salt: [UInt8]) throws(SealbakError) -> SecureBytes
    {
        do {
            return try Argon2id.deriveKey(
                password: passphrase.bytes,
                passwordLength: passphrase.bytes.count,
                salt: salt,
                opsLimit: UInt64(kdf.opsLimit),
                memLimitBytes: kdf.memLimitBytes
            )
        } catch {
            throw SealbakError(.io, "key derivation failed: \(error.message)")
        }
    }

    /// Finds the slot the passphrase opens, unwraps the master key and verifies the header MAC (Spec §4.4).
    ///
    /// - Throws: `.wrongPassword` when no slot opens; `.unsupported` when the only candidate slots exceed
    ///   `limits`; `.corrupt` (class `mac`) when a slot opens but the header MAC fails.
    package static func unlock(
        header: ArchiveHeader,
        passphrase: Passphrase,
        limits: KDFLimits,
        archive: String
    ) throws(SealbakError) -> (MasterKey, KeySlot) {
        let aead = try! AEAD(.xchacha20poly1305)
        // A well-formed recovery code opens recovery slots in its canonical form. Whatever was typed is also tried
        // as a password first, so a password that happens to look like a code still works; a typo is reported
        // only when nothing opens.
        let parsed = RecoveryCode.parse(passphrase)
        var recovery: Passphrase? = nil
        if case .code(let canonical) = parsed { recovery = canonical }
        var overCap: [(KeySlot, KDFParameters)] = []
        var sawPasswordSlot = false
        var kdfFailure: SealbakError?
        for slot in header.slots {
            guard case .password(let kdf, let salt, let nonce, let wrapped) = slot.body else { continue }
            sawPasswordSlot = true
            let secret: Passphrase
            if slot.isRecovery {
                guard let recovery else { continue }
                secret = recovery
            } else {
                secret = passphrase
            }
            if !limits.allows(kdf) {
                overCap.append((slot, kdf))
                continue
            }
            let kek: SecureBytes
            do { kek = try deriveKEK(passphrase: secret, kdf: kdf, salt: salt) } catch {
                kdfFailure = error  // e.g. not enough memory for this slot: another slot may still open
                continue
            }
            guard
                let mk = try? aead.openSecret(
                    key: kek,
                    nonce: nonce,
                    associatedData: slot.wrapAssociatedData(archiveID: header.archiveID),
                    ciphertext: wrapped
                )
            else { continue }
            let master = MasterKey(mk)
            if !Sodium.constantTimeEqual(master.mac(for: header), header.mac) {
                throw SealbakError.format(FormatError(.mac, "header MAC mismatch"), archive: archive)
            }
            return (master, slot)
        }
        if let (slot, kdf) = overCap.first {
            throw SealbakError(
                .unsupported,
                "\(archive): key slot \(slot.id) asks for Argon2id with \(kdf.memLimitKiB / 1024) MiB and "
                    + "\(kdf.opsLimit) passes, above this reader's cap of \(limits.maxMemLimitKiB / 1024) MiB and "
                    + "\(limits.maxOpsLimit) passes. If you trust this archive, raise the cap with "
                    + "--max-kdf-memory MIB / --max-kdf-passes N",
                formatClass: .key
            )
        }
        if let kdfFailure { throw kdfFailure }
        if !sawPasswordSlot
            && header.slots.contains(where: { if case .x25519 = $0.body { return true } else { return false } })
        {
            throw SealbakError(
                .wrongPassword,
                "\(archive): this archive has no password slot, only public-key recipients; open it with --identity "
                    + "FILE",
                formatClass: .key
            )
        }
        if !sawPasswordSlot {
            throw SealbakError(
                .unsupported,
                "\(archive): no key slot of a type this sealbak implements; upgrade sealbak",
                formatClass: .key
            )
        }
        if case .typo = parsed, header.slots.contains(where: \.isRecovery) {
            throw SealbakError(
                .usage,
                "\(archive): this looks like a recovery code but its checksum does not match: a character is "
                    + "mistyped. Check each group of four",
                formatClass: .key
            )
        }
        throw SealbakError(.wrongPassword, "\(archive): wrong password (no key slot opens with it)", formatClass: .key)
    }
}
