import ArgumentParser
import Foundation
import SealbakArchive
import SealbakFormat
import SealbakIO
import SealbakKeys

struct RekeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Rotate all keys: new master key, new archive id, every frame re-encrypted. Revokes every other key.",
        discussion: """
            Use it when a password or key may have leaked. The new archive has one password slot (the new password) \
            and the same public-key recipients, re-wrapped; every other slot is dropped, so old passwords, recovery \
            codes and copies of old headers no longer open it (remove a recipient with key remove before rekey to \
            revoke it). Payloads are moved to the new keys without recompression. The new archive is verified \
            completely before it replaces ARCHIVE (or is written to OUT); until then ARCHIVE is untouched.

            Examples:
              sealbak rekey backup.sbk                               # asks for the current and a new password
              sealbak rekey backup.sbk --output rotated.sbk --new-password-file new.pw
            """
    )

    @Argument(help: ArgumentHelp("The archive.", valueName: "ARCHIVE"))
    var archive: String

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("Write the rotated archive to OUT instead of replacing ARCHIVE.", valueName: "OUT")
    )
    var output: String?

    @Flag(name: .long, help: "Keep the current password for the new archive (when a different key leaked).")
    var keepPassword = false

    @Flag(name: .long, help: "Replace OUT if it exists.")
    var force = false

    @Flag(name: [.short, .long], help: "Less output.")
    var quiet = false

    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var newPassword: NewPasswordOptions
    @OptionGroup var kdf: KDFOptions
    @OptionGroup var reading: ReadingOptions
    @OptionGroup(title: "Object storage uploads") var s3Upload: S3UploadOptions
    @OptionGroup(title: "Output") var report: OutputOptions

    func run() throws {
        try reportingErrors(json: report.json ? "rekey" : nil) {
            let target = output ?? archive
            let locations = reading.s3.connection(upload: s3Upload).locations
            // Held until the rotated archive is in place: no key change can slip in between (docs/keys.md).
            let lock = ArchiveLocations.isRemote(archive) ? nil : try KeyChangeLock(path: archive)
            let out = try locations.output(target, overwrite: output == nil || force, staged: true)
            let limits = reading.readOptions.limits
            let current = try password.withSecret(what: "current password", limits: limits) { secret in
                // On a terminal, check the password against the header now, so a typo can be typed again.
                if password.prompts && !ArchiveLocations.isRemote(archive) {
                    _ = try KeyEditing.unlock(path: archive, in: locations, secret: secret, limits: limits)
                }
                return secret
            }
            let new: Passphrase?
            if keepPassword {
                guard case .password(let p) = current, case .notACode = RecoveryCode.parse(p) else {
                    throw SealbakError(
                        .usage,
                        "--keep-password needs the archive opened with a password (not a recovery code or identity); "
                            + "give a new password instead"
                    )
                }
                new = p
            } else if case .identity = current, !newPassword.given {
                new = nil  // recipients only
            } else {
                new = try newPassword.read()
            }
            if try ArchiveReader.readHeader(try locations.input(archive)).base != nil {
                try rekeyChained(current: current, new: new, out: out, locations: locations, lock: lock)
                return
            }
            do {
                let summary = try Rekey.run(
                    path: archive,
                    in: locations,
                    current: current,
                    newPassword: new,
                    kdf: kdf.explicit,
                    output: out,
                    options: reading.readOptions
                )
                // Verify everything with the new key before anything is replaced.
                let check = try ArchiveReader(
                    input: try out.readBack(),
                    secret: new.map { .password($0) } ?? current,
                    options: reading.readOptions
                )
                try check.readAll(into: DiscardSink())
                // The archive must still be the one that was read: a key change that finished meanwhile wins.
                if output == nil { try lock?.checkUnchanged(header: summary.oldHeader) }
                try out.commit()
                if report.json {
                    JSONOutput.emit(
                        "rekey",
                        [
                            "archive": archive, "output": target, "id": hex(summary.newArchiveID),
                            "frames": summary.frames,
                            "dropped_slots": summary.droppedSlots.map(slotJSON),
                        ]
                    )
                }
                printError(
                    "sealbak: rekeyed \(archive) -> \(target): new archive id \(hex(summary.newArchiveID)), "
                        + "\(summary.frames) frames re-encrypted and verified"
                )
                for s in summary.droppedSlots {
                    printError(
                        "sealbak: dropped key slot \(s.id) (\(slotTypeName(s)), label \"\(s.label)\"): it no longer "
                            + "opens the new archive"
                    )
                }
                if output != nil {
                    printError(
                        "sealbak: \(archive) itself is unchanged and still opens with the old keys; delete it if "
                            + "they leaked"
                    )
                }
            } catch {
                out.abandon()
                throw error
            }
        }
    }

    /// An incremental archive is re-encrypted by writing its content, read through its chain, as one full archive
    /// (Spec §14.8): its chunks live in other files under other keys, which rotation must not depend on.
    private func rekeyChained(
        current: ArchiveSecret,
        new: Passphrase?,
        out: any ArchiveOutput,
        locations: ArchiveLocations,
        lock: KeyChangeLock?
    ) throws {
        do {
            let reader = try ArchiveReader(
                input: try locations.input(archive),
                secret: current,
                options: reading.readOptions
            )
            try reader.attachChain(catalog: chainCatalog(for: archive, chain: reading.chainFrom, reading: reading)) {
                _,
                input in try ArchiveReader(input: input, secret: current, options: reading.readOptions)
            }
            var options = WriteOptions()
            if let k = kdf.explicit { options.kdf = k }
            if let threads = reading.threads { options.threads = max(1, threads) }
            let summary = try Consolidate.copy(
                from: reader,
                passwords: new.map { [PasswordSlotSpec(passphrase: $0)] } ?? [],
                recipients: recipientKeys(reader.header),
                options: options,
                sink: { try out.write($0) }
            )
            let check = try ArchiveReader(
                input: try out.readBack(),
                secret: new.map { .password($0) } ?? current,
                options: reading.readOptions
            )
            try check.readAll(into: DiscardSink())
            if output == nil { try lock?.checkUnchanged(header: reader.header.encoded()) }
            try out.commit()
            if report.json {
                JSONOutput.emit(
                    "rekey",
                    [
                        "archive": archive, "output": output ?? archive, "id": hex(summary.archiveID),
                        "dropped_slots": [] as [Any], "consolidated": true,
                    ]
                )
            }
            printError(
                "sealbak: rekeyed incremental \(archive) -> \(output ?? archive): its content, read through its "
                    + "chain of \(reader.chain?.bases.count ?? 0) base archive(s), is now one full archive with the "
                    + "new archive id \(hex(summary.archiveID)), verified; the chain's other archives keep their keys"
            )
        } catch {
            out.abandon()
            throw error
        }
    }
}
