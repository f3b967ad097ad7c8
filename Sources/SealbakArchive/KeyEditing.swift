import CSealbakShims
import Foundation
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys

#if canImport(Glibc)
import Glibc
#endif

/// Key-slot changes that rewrite only the header (Spec §11.3, docs/keys.md).
///
/// Crash safety: the new archive is the new header followed by a copy of the old body, written to an unnamed
/// temp file (`O_TMPFILE`) in the same directory, fsynced, and renamed over the original. Until the rename the
/// original is untouched; after it the new file is complete. A crash at any point therefore leaves a file that
/// opens with the old password or with the new one, never neither, and no stray archive-like temp file. The
/// body is copied with `copy_file_range`, which clones extents on btrfs/XFS and copies in the kernel elsewhere.
package enum KeyEditing {
    /// An archive opened for a key change: its header and master key, and the slot the secret opened.
    package struct Unlocked {
        package var header: ArchiveHeader
        package var master: MasterKey
        package var openedSlot: KeySlot
        package var path: String
        /// Where `path` is (a remote archive's header is rewritten by its store).
        package var locations: ArchiveLocations
    }

    /// Reads the header of the archive `path` (in `locations`) and unlocks it with `secret`.
    package static func unlock(
        path: String,
        in locations: ArchiveLocations,
        secret: ArchiveSecret,
        limits: KDFLimits
    ) throws -> Unlocked {
        let input = try locations.input(path)
        guard input.isSeekable else {
            throw SealbakError(.usage, "key changes need a regular archive file, not \(input.path)")
        }
        let header = try ArchiveReader.readHeader(input)
        let (master, slot) = try secret.unlock(header: header, limits: limits, archive: path)
        return Unlocked(header: header, master: master, openedSlot: slot, path: path, locations: locations)
    }

    /// Adds a password slot; returns its id.
    package static func addPassword(
        _ u: Unlocked,
        passphrase: Passphrase,
        label: String,
        kdf: KDFParameters,
        random: any RandomSource = SystemRandom()
    ) throws -> UInt16 {
        var header = u.header
        guard header.slots.count < FormatV1.maxSlotCount else {
            throw SealbakError(
                .usage,
                "\(u.path) already has \(FormatV1.maxSlotCount) key slots, the maximum; remove one first"
            )
        }
        let id = (header.slots.map(\.id).max() ?? 0) &+ 1
        guard id != 0 else { throw SealbakError(.usage, "slot ids are exhausted in \(u.path)") }
        header.slots.append(
            try KeySlots.passwordSlot(
                id: id,
                label: label,
                createdUnix: now(),
                passphrase: passphrase,
                kdf: kdf,
                archiveID: header.archiveID,
                master: u.master,
                random: random
            )
        )
        try replaceHeader(u, with: header)
        return id
    }

    /// Adds a recovery-code slot; returns its id and the code to show the user once.
    package static func addRecoveryCode(
        _ u: Unlocked,
        label: String,
        kdf: KDFParameters,
        random: any RandomSource = SystemRandom()
    ) throws -> (UInt16, String) {
        var header = u.header
        guard header.slots.count < FormatV1.maxSlotCount else {
            throw SealbakError(
                .usage,
                "\(u.path) already has \(FormatV1.maxSlotCount) key slots, the maximum; remove one first"
            )
        }
        let id = (header.slots.map(\.id).max() ?? 0) &+ 1
        guard id != 0 else { throw SealbakError(.usage, "slot ids are exhausted in \(u.path)") }
        let code = RecoveryCode.generate(random: random)
        header.slots.append(
            try KeySlots.passwordSlot(
                id: id,
                label: label,
                createdUnix: now(),
                passphrase: code.secret,
                kdf: kdf,
                archiveID: header.archiveID,
                master: u.master,
                random: random,
                isRecovery: true
            )
        )
        try replaceHeader(u, with: header)
        return (id, code.display)
    }

    /// Gives slot `id` a new password (new salt and nonce; same id and label).
    package static func changePassword(
        _ u: Unlocked,
        slot id: UInt16,
        passphrase: Passphrase,
        kdf: KDFParameters?,
        random: any RandomSource = SystemRandom()
    ) throws {
        var header = u.header
        guard let i = header.slots.firstIndex(where: { $0.id == id }) else {
            throw SealbakError(.notFound, "\(u.path) has no key slot \(id); see sealbak key list")
        }
        guard case .password(let oldKDF, _, _, _) = header.slots[i].body, !header.slots[i].isRecovery else {
            throw SealbakError(.usage, "key slot \(id) of \(u.path) is not a password slot")
        }
        header.slots[i] = try KeySlots.passwordSlot(
            id: id,
            label: header.slots[i].label,
            createdUnix: now(),
            passphrase: passphrase,
            kdf: kdf ?? oldKDF,
            archiveID: header.archiveID,
            master: u.master,
            random: random
        )
        try replaceHeader(u, with: header)
    }

    /// Removes slot `id`; refuses to remove the last slot this sealbak can open the archive with.
    package static func removeSlot(_ u: Unlocked, slot id: UInt16) throws {
        var header = u.header
        guard let i = header.slots.firstIndex(where: { $0.id == id }) else {
            throw SealbakError(.notFound, "\(u.path) has no key slot \(id); see sealbak key list")
        }
        header.slots.remove(at: i)
        let usable = header.slots.filter { if case .unknown = $0.body { return false } else { return true } }
        if usable.isEmpty {
            throw SealbakError(
                .usage,
                "refusing to remove key slot \(id): it is the last slot that can open \(u.path); add another key first"
            )
        }
        try replaceHeader(u, with: header)
    }

    /// Seals `header` with the master key and writes it in front of the unchanged body (see the type's docs).
    package static func replaceHeader(_ u: Unlocked, with newHeader: ArchiveHeader) throws {
        var header = newHeader
        header.mac = u.master.mac(for: header)
        do throws(FormatError) { try header.validate() } catch {
            throw SealbakError(.internalError, "the new header would be invalid: \(error.message)")
        }
        let bytes = header.encoded()
        if ArchiveLocations.isRemote(u.path) {
            // A remote object: the store rewrites it, copying the body on the server side where it can.
            try u.locations.handler(for: u.path).replaceHeader(u.path, expected: u.header.encoded(), header: bytes)
            return
        }
        let src = open(u.path, O_RDONLY | O_CLOEXEC)
        if src < 0 { throw SealbakError.io("cannot open", path: u.path, errno: errno) }
        defer { close(src) }
        // One key change at a time: a second sealbak on the same file fails instead of losing one change.
        // (A change that replaced the file meanwhile is caught by the header comparison below.)
        if flock(src, LOCK_EX | LOCK_NB) != 0 {
            throw SealbakError(.io, "another sealbak is changing the keys of \(u.path); try again when it has finished")
        }
        var st = stat()
        fstat(src, &st)
        let oldLength = UInt64(u.header.byteCount)
        // The file must still hold the header we authenticated (someone may have changed it meanwhile).
        var current = [UInt8](repeating: 0, count: Int(oldLength))
        if pread(src, &current, current.count, 0) != current.count || current != u.header.encoded() {
            throw SealbakError(.io, "\(u.path) changed while sealbak was working on it; run the command again")
        }
        let bodyLength = UInt64(st.st_size) - oldLength
        let out = try AtomicOutput(path: u.path, overwrite: true, mode: mode_t(st.st_mode & 0o7777))
        do {
            // Same header length (e.g. a password change): clone the whole file where the file system can
            // (btrfs, XFS: copy-on-write, no data copied) and patch the header in the clone.
            if bytes.count == u.header.byteCount, sealbak_clone_file(src, out.fd) == 0 {
                Faults.point("rewrite: cloned")
                let n = bytes.withUnsafeBytes { pwrite(out.fd, $0.baseAddress, $0.count, 0) }
                if n != bytes.count {
                    throw SealbakError.io("cannot write the new header of", path: u.path, errno: errno)
                }
                Faults.point("rewrite: header patched")
                try out.commit()
                return
            }
            try out.write(bytes)
            Faults.point("rewrite: header written")
            try copyBody(from: src, offset: oldLength, count: bodyLength, to: out)
            Faults.point("rewrite: body copied")
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
    }

    private static func copyBody(from src: Int32, offset: UInt64, count: UInt64, to out: AtomicOutput) throws {
        let start = lseek(out.fd, 0, SEEK_CUR)
        if sealbak_copy_range(src, Int64(offset), out.fd, Int64(count)) == 0 { return }
        let e = errno
        guard e == ENOSYS || e == EXDEV || e == EINVAL || e == EOPNOTSUPP else {
            throw SealbakError.io("cannot copy the archive body to", path: out.path, errno: e)
        }
        // Fallback where copy_file_range is unavailable: continue with reads and writes from where it stopped.
        var done = UInt64(max(0, lseek(out.fd, 0, SEEK_CUR) - start))
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while done < count {
            let want = Int(min(UInt64(buffer.count), count - done))
            let n = buffer.withUnsafeMutableBytes { pread(src, $0.baseAddress, want, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SealbakError.io("cannot read", path: out.path, errno: errno)
            }
            if n == 0 { throw SealbakError(.io, "\(out.path) became shorter while sealbak was copying it") }
            try out.write(buffer.span.bytes.extracting(0..<n))
            done += UInt64(n)
        }
    }

    static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970) }
}

/// The key-change lock of an archive file, held for a whole `rekey` (docs/keys.md).
///
/// Key changes take an exclusive `flock` on the archive while they rewrite it, so two of them never run at once
/// (the second fails and says so). `rekey` takes it before it reads the archive and holds it until the rotated
/// archive replaced the old one; just before that, `checkUnchanged` makes sure the file is still the one whose
/// header it read: a `key passwd` (or anything else) that replaced the file meanwhile is not silently undone.
package final class KeyChangeLock {
    private let fd: Int32
    private let path: String
    private let inode: UInt64

    /// Opens and locks `path`; fails at once when another key change holds the lock.
    package init(path: String) throws(SealbakError) {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SealbakError.io("cannot open", path: path, errno: errno) }
        self.path = path
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw SealbakError(.io, "another sealbak is changing the keys of \(path); try again when it has finished")
        }
        var st = stat()
        fstat(fd, &st)
        inode = UInt64(st.st_ino)
    }

    deinit { close(fd) }

    /// Throws unless `path` is still the locked file and starts with `header` (the header that was read).
    package func checkUnchanged(header: [UInt8]) throws(SealbakError) {
        Faults.point("rekey: before the header check")
        var st = stat()
        let now = open(path, O_RDONLY | O_CLOEXEC)
        defer { if now >= 0 { close(now) } }
        var current = [UInt8](repeating: 0, count: header.count)
        guard now >= 0, fstat(now, &st) == 0, UInt64(st.st_ino) == inode,
            pread(now, &current, current.count, 0) == current.count, current == header
        else {
            throw SealbakError(
                .io,
                "\(path) changed while sealbak was rotating its keys (another key change finished "
                    + "meanwhile?); nothing was replaced: run sealbak rekey again"
            )
        }
    }
}
